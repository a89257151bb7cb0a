//! WeCom (企业微信) and DingTalk (钉钉) group robots, in their documented formats:
//! - WeCom: `POST <url>?key=<key>` with `{"msgtype":"markdown","markdown":{"content":..}}`
//!   or `{"msgtype":"text","text":{"content":..,"mentioned_mobile_list":[..]}}`; content at
//!   most 4096 (markdown) or 2048 (text) bytes.
//! - DingTalk: `POST <url>?access_token=<token>[&timestamp=<ms>&sign=<sign>]` with
//!   `{"msgtype":"markdown","markdown":{"title":..,"text":..},"at":{..}}` or
//!   `{"msgtype":"text","text":{"content":..},"at":{..}}`; `sign` is the base64 of
//!   HMAC-SHA256(secret, timestamp + "\n" + secret), URL-encoded in the query.
//!
//! Both answer HTTP 200 with `{"errcode":0,"errmsg":"ok"}`; any other errcode is a failure.

use base64::Engine;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Sha256;

use super::{snippet, truncate_bytes, Delivery, SendError};
use crate::config::{DingtalkConfig, RobotFormat, WecomConfig};

const WECOM_MARKDOWN_MAX: usize = 4096;
const WECOM_TEXT_MAX: usize = 2048;

/// The DingTalk signature for `timestamp_ms`, base64 (the query encoding is done when the
/// URL is built).
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("hmac accepts any key length");
    m.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
}

/// The WeCom message for a delivery.
pub fn wecom_body(format: RobotFormat, d: Delivery<'_>) -> Value {
    match format {
        RobotFormat::Markdown => json!({
            "msgtype": "markdown",
            "markdown": {
                "content": truncate_bytes(&d.notification.markdown(), WECOM_MARKDOWN_MAX)
            }
        }),
        RobotFormat::Text => {
            let mut text = json!({
                "content": truncate_bytes(&d.notification.plain(), WECOM_TEXT_MAX)
            });
            if let Some(phone) = &d.recipient.phone {
                text["mentioned_mobile_list"] = json!([phone]);
            }
            json!({ "msgtype": "text", "text": text })
        }
    }
}

/// The DingTalk message for a delivery; a recipient's phone is @-mentioned.
pub fn dingtalk_body(format: RobotFormat, d: Delivery<'_>) -> Value {
    let n = d.notification;
    let phones: Vec<&str> = d.recipient.phone.iter().map(String::as_str).collect();
    let at = json!({ "atMobiles": phones, "isAtAll": false });
    match format {
        RobotFormat::Markdown => {
            let mut text = n.markdown();
            // DingTalk shows the mention only when the number is also in the text.
            for p in &phones {
                text.push_str(&format!("\n\n@{p}"));
            }
            json!({
                "msgtype": "markdown",
                "markdown": { "title": n.headline(), "text": text },
                "at": at
            })
        }
        RobotFormat::Text => json!({
            "msgtype": "text",
            "text": { "content": n.plain() },
            "at": at
        }),
    }
}

#[derive(Deserialize)]
struct RobotAnswer {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

async fn post_robot(
    channel: &'static str,
    req: reqwest::RequestBuilder,
    body: &Value,
) -> Result<(), SendError> {
    let resp = req.json(body).send().await.map_err(SendError::from_http)?;
    let status = resp.status();
    let text = resp.text().await.map_err(SendError::from_http)?;
    if !status.is_success() {
        return Err(SendError::Status {
            status: status.as_u16(),
            body: snippet(&text),
        });
    }
    let answer: RobotAnswer = serde_json::from_str(&text)
        .map_err(|_| SendError::Answer(format!("{channel} robot: {}", snippet(&text))))?;
    if answer.errcode == 0 {
        Ok(())
    } else {
        Err(SendError::Robot {
            channel,
            errcode: answer.errcode,
            errmsg: snippet(&answer.errmsg),
        })
    }
}

pub(crate) async fn send_wecom(
    http: &reqwest::Client,
    cfg: &WecomConfig,
    d: Delivery<'_>,
) -> Result<(), SendError> {
    let req = http.post(&cfg.url).query(&[("key", cfg.key.expose())]);
    post_robot("wecom", req, &wecom_body(cfg.format, d)).await
}

pub(crate) async fn send_dingtalk(
    http: &reqwest::Client,
    cfg: &DingtalkConfig,
    d: Delivery<'_>,
    now_ms: i64,
) -> Result<(), SendError> {
    let mut req = http
        .post(&cfg.url)
        .query(&[("access_token", cfg.access_token.expose())]);
    if let Some(secret) = &cfg.secret {
        let sign = dingtalk_sign(secret.expose(), now_ms);
        req = req.query(&[("timestamp", now_ms.to_string()), ("sign", sign)]);
    }
    post_robot("dingtalk", req, &dingtalk_body(cfg.format, d)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Notification, Recipient};

    #[test]
    fn dingtalk_sign_matches_the_documented_recipe() {
        // Python: base64.b64encode(hmac.new(b"SECtest", b"1700000000000\nSECtest",
        // hashlib.sha256).digest())
        assert_eq!(
            dingtalk_sign("SECtest", 1_700_000_000_000),
            "aZLLrriXgn05YbwaGR7knYsLeJADjr9NwLaNNKpxh4g="
        );
    }

    #[test]
    fn wecom_text_is_capped() {
        let n = Notification {
            ticket_id: "t".into(),
            tier: 0,
            round: 0,
            priority: "P1".into(),
            title: "困人".into(),
            text: "梯".repeat(2000),
            link: None,
        };
        let r = Recipient::new("c", "C").with_phone("13812345678");
        let d = Delivery {
            key: "k",
            notification: &n,
            recipient: &r,
        };
        let body = wecom_body(RobotFormat::Text, d);
        let content = body["text"]["content"].as_str().unwrap_or_default();
        assert!(content.len() <= WECOM_TEXT_MAX);
        assert_eq!(body["text"]["mentioned_mobile_list"][0], "13812345678");
        let md = wecom_body(RobotFormat::Markdown, d);
        assert_eq!(md["msgtype"], "markdown");
    }
}
