//! SMS through an HTTP gateway, since providers differ: the configured URL and body
//! template get `{phone}` and `{text}` filled in (percent-encoded in the URL, JSON-escaped
//! or form-encoded in the body), sent with the configured method and headers. A 2xx answer
//! (containing `success_contains`, when set) is a delivery.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use super::{snippet, Delivery, SendError};
use crate::config::{HttpMethod, SmsConfig, SmsEncoding};

/// The URL and body a delivery becomes.
pub fn render(cfg: &SmsConfig, phone: &str, text: &str) -> (String, Option<String>) {
    let url = cfg
        .url
        .replace(
            "{phone}",
            &utf8_percent_encode(phone, NON_ALPHANUMERIC).to_string(),
        )
        .replace(
            "{text}",
            &utf8_percent_encode(text, NON_ALPHANUMERIC).to_string(),
        );
    let escape = |v: &str| match cfg.encoding {
        SmsEncoding::Json => {
            let quoted = serde_json::Value::String(v.to_string()).to_string();
            quoted[1..quoted.len() - 1].to_string()
        }
        SmsEncoding::Form => utf8_percent_encode(v, NON_ALPHANUMERIC).to_string(),
    };
    let body = cfg.body_template.as_ref().map(|t| {
        t.replace("{phone}", &escape(phone))
            .replace("{text}", &escape(text))
    });
    (url, body)
}

pub(crate) async fn send(
    http: &reqwest::Client,
    cfg: &SmsConfig,
    d: Delivery<'_>,
) -> Result<(), SendError> {
    let phone = d
        .recipient
        .phone
        .as_deref()
        .ok_or(SendError::MissingAddress {
            channel: "sms",
            what: "phone number",
        })?;
    let (url, body) = render(cfg, phone, &d.notification.plain());
    let mut req = match cfg.method {
        HttpMethod::Get => http.get(&url),
        HttpMethod::Post => http.post(&url),
        HttpMethod::Put => http.put(&url),
    };
    for (name, value) in &cfg.headers {
        req = req.header(name.as_str(), value.expose());
    }
    if let Some(body) = body {
        let content_type = match cfg.encoding {
            SmsEncoding::Json => "application/json",
            SmsEncoding::Form => "application/x-www-form-urlencoded",
        };
        req = req
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
    }
    let resp = req.send().await.map_err(SendError::from_http)?;
    let status = resp.status();
    let text = resp.text().await.map_err(SendError::from_http)?;
    if !status.is_success() {
        return Err(SendError::Status {
            status: status.as_u16(),
            body: snippet(&text),
        });
    }
    match &cfg.success_contains {
        Some(needle) if !text.contains(needle.as_str()) => Err(SendError::Answer(format!(
            "sms gateway: {}",
            snippet(&text)
        ))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn placeholders_are_escaped_for_their_place() {
        let mut cfg = SmsConfig {
            url: "http://gw/send?to={phone}".into(),
            method: HttpMethod::Post,
            body_template: Some(r#"{"to":"{phone}","msg":"{text}"}"#.into()),
            encoding: SmsEncoding::Json,
            headers: BTreeMap::new(),
            success_contains: None,
        };
        let (url, body) = render(&cfg, "+8613812345678", "say \"hi\"\n电梯");
        assert_eq!(url, "http://gw/send?to=%2B8613812345678");
        let body = body.unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(v["msg"], "say \"hi\"\n电梯");
        cfg.encoding = SmsEncoding::Form;
        cfg.body_template = Some("to={phone}&msg={text}".into());
        let (_, body) = render(&cfg, "138", "a b&c");
        assert_eq!(body.as_deref(), Some("to=138&msg=a%20b%26c"));
    }
}
