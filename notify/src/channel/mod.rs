//! The channels: each turns one delivery into its wire format and sends it once. Retrying
//! is the outbox's business; a channel only says whether a failure may pass on retry.

pub mod email;
pub mod robots;
pub mod sms;
pub mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use steward_estate::clock::Clock;

use crate::config::{EndpointConfig, NotifyConfig};
use crate::message::{Notification, Recipient};
use crate::NotifyError;

/// One delivery as a channel sees it.
#[derive(Debug, Clone, Copy)]
pub struct Delivery<'a> {
    /// The idempotency key, sent along where the format allows so receivers can drop a
    /// repeat (a crash between sending and recording the outcome resends once).
    pub key: &'a str,
    pub notification: &'a Notification,
    pub recipient: &'a Recipient,
}

/// Why one attempt failed. Messages never carry a secret: URLs (which hold robot keys and
/// tokens) are stripped from transport errors.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("unknown endpoint `{0}`")]
    UnknownEndpoint(String),
    #[error("recipient has no {what} for the {channel} channel")]
    MissingAddress {
        channel: &'static str,
        what: &'static str,
    },
    #[error("invalid address: {0}")]
    BadAddress(String),
    #[error("request failed: {0}")]
    Transport(String),
    #[error("http status {status}: {body}")]
    Status { status: u16, body: String },
    #[error("{channel} robot answered errcode {errcode}: {errmsg}")]
    Robot {
        channel: &'static str,
        errcode: i64,
        errmsg: String,
    },
    #[error("unexpected answer: {0}")]
    Answer(String),
    #[error("smtp: {message}")]
    Smtp { message: String, permanent: bool },
}

impl SendError {
    /// A failure no retry can fix: the delivery goes to the dead letters at once.
    pub fn is_permanent(&self) -> bool {
        match self {
            SendError::UnknownEndpoint(_)
            | SendError::MissingAddress { .. }
            | SendError::BadAddress(_) => true,
            SendError::Smtp { permanent, .. } => *permanent,
            _ => false,
        }
    }

    pub(crate) fn from_http(e: reqwest::Error) -> Self {
        SendError::Transport(e.without_url().to_string())
    }
}

/// Answer bodies are kept short in errors.
pub(crate) fn snippet(body: &str) -> String {
    const MAX: usize = 200;
    if body.len() <= MAX {
        return body.to_string();
    }
    let mut end = MAX;
    while !body.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &body[..end])
}

/// Cut `s` to at most `max` bytes on a character boundary.
pub(crate) fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The configured endpoints and one HTTP client for all of them.
pub struct Channels {
    http: reqwest::Client,
    endpoints: BTreeMap<String, EndpointConfig>,
    timeout: std::time::Duration,
    clock: Arc<dyn Clock>,
}

impl Channels {
    /// Channels with a plain HTTP client. Endpoints on `https` need a client built with TLS
    /// ([`Channels::with_client`]).
    pub fn new(cfg: &NotifyConfig, clock: Arc<dyn Clock>) -> Result<Channels, NotifyError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.outbox.request_timeout)
            .build()
            .map_err(|e| NotifyError::HttpClient(e.without_url().to_string()))?;
        Ok(Self::with_client(cfg, clock, http))
    }

    pub fn with_client(
        cfg: &NotifyConfig,
        clock: Arc<dyn Clock>,
        http: reqwest::Client,
    ) -> Channels {
        Channels {
            http,
            endpoints: cfg.endpoints.clone(),
            timeout: cfg.outbox.request_timeout,
            clock,
        }
    }

    pub fn endpoint(&self, name: &str) -> Option<&EndpointConfig> {
        self.endpoints.get(name)
    }

    /// Send one delivery over the named endpoint, once.
    pub async fn send(&self, endpoint: &str, d: Delivery<'_>) -> Result<(), SendError> {
        let Some(cfg) = self.endpoints.get(endpoint) else {
            return Err(SendError::UnknownEndpoint(endpoint.to_string()));
        };
        let now_ms = self.clock.now_ms();
        let attempt = async {
            match cfg {
                EndpointConfig::Webhook(c) => webhook::send(&self.http, c, d, now_ms).await,
                EndpointConfig::Wecom(c) => robots::send_wecom(&self.http, c, d).await,
                EndpointConfig::Dingtalk(c) => {
                    robots::send_dingtalk(&self.http, c, d, now_ms).await
                }
                EndpointConfig::Email(c) => email::send(c, d, self.timeout).await,
                EndpointConfig::Sms(c) => sms::send(&self.http, c, d).await,
            }
        };
        // One bound for the whole attempt: a peer that accepts and then stalls (an SMTP
        // server that never answers a command) must not hold the dispatcher's round.
        let bound = self.timeout + std::time::Duration::from_secs(1);
        tokio::time::timeout(bound, attempt)
            .await
            .unwrap_or_else(|_| {
                Err(SendError::Transport(format!(
                    "no answer within {} s",
                    bound.as_secs()
                )))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate_bytes("电梯困人", 7), "电梯");
        assert_eq!(truncate_bytes("abc", 7), "abc");
        assert!(snippet(&"x".repeat(500)).ends_with("..."));
    }
}
