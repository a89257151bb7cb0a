//! Typed notification config: the outbox's retry policy and the named endpoints, each on
//! one channel. It is meant to be the hub config's `[notify]` section, so messages name
//! keys as `notify.<path>`. Unknown keys are refused; secrets are redacted in `Debug`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::NotifyError;

/// A credential from the config (webhook secret, robot key or token, SMTP password, SMS
/// gateway header). `Debug` shows `***`; the value is read only where it is used.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(default)]
    pub outbox: OutboxConfig,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub endpoints: BTreeMap<String, EndpointConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxConfig {
    /// SQLite file of the outbox (pending deliveries, attempts, dead letters).
    pub database: PathBuf,
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubles per attempt up to `max_backoff`, with jitter.
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// How often the worker looks for due deliveries when nothing wakes it.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Deliveries sent concurrently per round, so one slow endpoint does not hold the rest.
    pub batch: usize,
    /// Timeout of one HTTP request or SMTP session.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            database: PathBuf::from("var/notify.db"),
            max_attempts: 10,
            initial_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            poll_interval: Duration::from_secs(1),
            batch: 32,
            request_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelKind {
    Webhook,
    Wecom,
    Dingtalk,
    Email,
    Sms,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Wecom => "wecom",
            ChannelKind::Dingtalk => "dingtalk",
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
        }
    }
}

/// One endpoint; `channel = "..."` picks the variant.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "channel", rename_all = "lowercase")]
pub enum EndpointConfig {
    Webhook(WebhookConfig),
    Wecom(WecomConfig),
    Dingtalk(DingtalkConfig),
    Email(EmailConfig),
    Sms(SmsConfig),
}

impl EndpointConfig {
    pub fn kind(&self) -> ChannelKind {
        match self {
            EndpointConfig::Webhook(_) => ChannelKind::Webhook,
            EndpointConfig::Wecom(_) => ChannelKind::Wecom,
            EndpointConfig::Dingtalk(_) => ChannelKind::Dingtalk,
            EndpointConfig::Email(_) => ChannelKind::Email,
            EndpointConfig::Sms(_) => ChannelKind::Sms,
        }
    }
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// HMAC-SHA256 key shared with the receiver.
    pub secret: Secret,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RobotFormat {
    #[default]
    Markdown,
    Text,
}

pub const WECOM_URL: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";
pub const DINGTALK_URL: &str = "https://oapi.dingtalk.com/robot/send";

fn wecom_url() -> String {
    WECOM_URL.to_string()
}

fn dingtalk_url() -> String {
    DINGTALK_URL.to_string()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WecomConfig {
    /// The robot's send URL without its query (the key goes in `key`).
    #[serde(default = "wecom_url")]
    pub url: String,
    pub key: Secret,
    #[serde(default)]
    pub format: RobotFormat,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DingtalkConfig {
    #[serde(default = "dingtalk_url")]
    pub url: String,
    pub access_token: Secret,
    /// The robot's signing secret (`SEC...`); without it the URL is not signed.
    #[serde(default)]
    pub secret: Option<Secret>,
    #[serde(default)]
    pub format: RobotFormat,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    pub host: String,
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// Sender mailbox, e.g. `Steward <steward@example.com>`.
    pub from: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
}

fn smtp_port() -> u16 {
    25
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsEncoding {
    /// Placeholders are JSON-string escaped (the template supplies the quotes).
    #[default]
    Json,
    /// Placeholders are form-urlencoded.
    Form,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    #[default]
    Post,
    Put,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmsConfig {
    /// Gateway URL; may hold `{phone}` and `{text}` (percent-encoded when substituted).
    pub url: String,
    #[serde(default)]
    pub method: HttpMethod,
    /// Request body with `{phone}` and `{text}`; none for a GET gateway.
    #[serde(default)]
    pub body_template: Option<String>,
    #[serde(default)]
    pub encoding: SmsEncoding,
    /// Extra request headers (an API key, usually); values are secrets.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// When set, a 2xx answer whose body lacks this text is a failure (gateways that
    /// answer 200 with an error code).
    #[serde(default)]
    pub success_contains: Option<String>,
}

/// A URL without its query and fragment, for `Debug`: receivers and SMS gateways often
/// take a token in the query.
pub fn redact_url(url: &str) -> String {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    if end < url.len() {
        format!("{}?***", &url[..end])
    } else {
        url.to_string()
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &redact_url(&self.url))
            .field("secret", &self.secret)
            .finish()
    }
}

impl std::fmt::Debug for SmsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsConfig")
            .field("url", &redact_url(&self.url))
            .field("method", &self.method)
            .field("body_template", &self.body_template)
            .field("encoding", &self.encoding)
            .field("headers", &self.headers)
            .field("success_contains", &self.success_contains)
            .finish()
    }
}

impl NotifyConfig {
    /// Parse the `[notify]` section's TOML on its own; errors name the key's path.
    pub fn parse(text: &str) -> Result<NotifyConfig, NotifyError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| NotifyError::Config(vec![e.to_string()]))?;
        let cfg: NotifyConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = inner.lines().last().unwrap_or("").trim().to_string();
            NotifyError::Config(vec![format!("notify.{path}: {inner}")])
        })?;
        let errors = cfg.validate();
        if errors.is_empty() {
            Ok(cfg)
        } else {
            Err(NotifyError::Config(errors))
        }
    }

    /// Every problem, each naming its key (`notify.endpoints.<name>.<key>: reason`).
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        let o = &self.outbox;
        if o.max_attempts == 0 {
            errors.push("notify.outbox.max_attempts: must be at least 1".into());
        }
        if o.initial_backoff.is_zero() {
            errors.push("notify.outbox.initial_backoff: must be above zero".into());
        }
        if o.max_backoff < o.initial_backoff {
            errors.push("notify.outbox.max_backoff: must not be below initial_backoff".into());
        }
        if o.poll_interval.is_zero() {
            errors.push("notify.outbox.poll_interval: must be above zero".into());
        }
        if o.batch == 0 {
            errors.push("notify.outbox.batch: must be at least 1".into());
        }
        if o.request_timeout.is_zero() {
            errors.push("notify.outbox.request_timeout: must be above zero".into());
        }
        for (name, endpoint) in &self.endpoints {
            let key = format!("notify.endpoints.{name}");
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                errors.push(format!(
                    "{key}: endpoint names use letters, digits, '-' and '_'"
                ));
            }
            endpoint.validate(&key, &mut errors);
        }
        errors
    }
}

fn check_url(key: &str, url: &str, errors: &mut Vec<String>) {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {}
        Ok(u) => errors.push(format!(
            "{key}: scheme `{}` is not http or https",
            u.scheme()
        )),
        Err(e) => errors.push(format!("{key}: not a URL ({e})")),
    }
}

fn check_secret(key: &str, secret: &Secret, errors: &mut Vec<String>) {
    if secret.expose().trim().is_empty() {
        errors.push(format!("{key}: must not be empty"));
    }
}

impl EndpointConfig {
    fn validate(&self, key: &str, errors: &mut Vec<String>) {
        match self {
            EndpointConfig::Webhook(c) => {
                check_url(&format!("{key}.url"), &c.url, errors);
                check_secret(&format!("{key}.secret"), &c.secret, errors);
            }
            EndpointConfig::Wecom(c) => {
                check_url(&format!("{key}.url"), &c.url, errors);
                check_secret(&format!("{key}.key"), &c.key, errors);
            }
            EndpointConfig::Dingtalk(c) => {
                check_url(&format!("{key}.url"), &c.url, errors);
                check_secret(&format!("{key}.access_token"), &c.access_token, errors);
                if let Some(s) = &c.secret {
                    check_secret(&format!("{key}.secret"), s, errors);
                }
            }
            EndpointConfig::Email(c) => {
                if c.host.trim().is_empty() {
                    errors.push(format!("{key}.host: must not be empty"));
                }
                if c.port == 0 {
                    errors.push(format!("{key}.port: must not be 0"));
                }
                if c.from.parse::<lettre::message::Mailbox>().is_err() {
                    errors.push(format!("{key}.from: not a mailbox (`Name <user@host>`)"));
                }
                if c.username.is_some() != c.password.is_some() {
                    errors.push(format!("{key}.password: username and password go together"));
                }
            }
            EndpointConfig::Sms(c) => {
                // The template is checked with placeholders filled in, as it will be sent.
                check_url(
                    &format!("{key}.url"),
                    &c.url.replace("{phone}", "0").replace("{text}", "x"),
                    errors,
                );
                let body = c.body_template.as_deref().unwrap_or("");
                if !c.url.contains("{phone}") && !body.contains("{phone}") {
                    errors.push(format!(
                        "{key}.body_template: neither url nor body_template has {{phone}}"
                    ));
                }
                if !c.url.contains("{text}") && !body.contains("{text}") {
                    errors.push(format!(
                        "{key}.body_template: neither url nor body_template has {{text}}"
                    ));
                }
                if c.method == HttpMethod::Get && c.body_template.is_some() {
                    errors.push(format!("{key}.body_template: a GET gateway takes no body"));
                }
                for name in c.headers.keys() {
                    if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                        errors.push(format!("{key}.headers.{name}: not a header name"));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[outbox]
max_attempts = 5
initial_backoff = "2s"

[endpoints.crew-hook]
channel = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "whsec-123"

[endpoints.captains]
channel = "dingtalk"
access_token = "tok-abc"
secret = "SECxyz"

[endpoints.station-group]
channel = "wecom"
key = "key-789"
format = "text"

[endpoints.mail]
channel = "email"
host = "127.0.0.1"
port = 2525
from = "Steward <steward@example.com>"
username = "steward"
password = "mail-pass"

[endpoints.sms]
channel = "sms"
url = "http://127.0.0.1:9/sms?apikey=sms-url-key"
body_template = '{"to":"{phone}","content":"{text}"}'
headers = { Authorization = "Bearer sms-key" }
"#;

    #[test]
    fn parses_every_channel_and_hides_secrets() {
        let cfg = NotifyConfig::parse(SAMPLE).expect("valid");
        assert_eq!(cfg.outbox.max_attempts, 5);
        assert_eq!(cfg.outbox.initial_backoff, Duration::from_secs(2));
        assert_eq!(cfg.endpoints.len(), 5);
        match &cfg.endpoints["captains"] {
            EndpointConfig::Dingtalk(d) => assert_eq!(d.url, DINGTALK_URL),
            other => panic!("{other:?}"),
        }
        let debug = format!("{cfg:?}");
        for secret in [
            "whsec-123",
            "tok-abc",
            "SECxyz",
            "key-789",
            "mail-pass",
            "sms-key",
            "sms-url-key",
        ] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn unknown_key_is_named() {
        let text = "[endpoints.hook]\nchannel = \"webhook\"\nurl = \"http://x\"\nsecret = \"s\"\nsecrte = \"t\"\n";
        let err = NotifyConfig::parse(text)
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("notify.endpoints.hook"), "{err}");
        assert!(err.contains("secrte"), "{err}");
        let err = NotifyConfig::parse("[outbox]\nmax_attempt = 3\n")
            .expect_err("unknown key")
            .to_string();
        assert!(err.contains("max_attempt"), "{err}");
        let err = NotifyConfig::parse("[endpoints.x]\nchannel = \"pigeon\"\n")
            .expect_err("unknown channel")
            .to_string();
        assert!(err.contains("pigeon"), "{err}");
    }

    #[test]
    fn validation_names_each_key() {
        let text = r#"
[outbox]
max_attempts = 0

[endpoints.hook]
channel = "webhook"
url = "ftp://x"
secret = ""

[endpoints.mail]
channel = "email"
host = ""
from = "not a mailbox"

[endpoints.sms]
channel = "sms"
url = "http://gw/send"
body_template = "{text}"
"#;
        let NotifyError::Config(errors) = NotifyConfig::parse(text).expect_err("invalid") else {
            panic!("not a config error");
        };
        for key in [
            "notify.outbox.max_attempts",
            "notify.endpoints.hook.url",
            "notify.endpoints.hook.secret",
            "notify.endpoints.mail.host",
            "notify.endpoints.mail.from",
            "notify.endpoints.sms.body_template: neither url nor body_template has {phone}",
        ] {
            assert!(
                errors.iter().any(|e| e.starts_with(key)),
                "{key}: {errors:?}"
            );
        }
    }
}
