//! Outgoing webhooks: a JSON body, signed with HMAC-SHA256 over `timestamp + "." + body`
//! with the endpoint's secret. The receiver recomputes the signature with [`verify_webhook`],
//! which also refuses a timestamp outside its replay window.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;
use std::time::Duration;
use subtle::ConstantTimeEq;

use super::{snippet, Delivery, SendError};
use crate::config::WebhookConfig;

/// Unix seconds at signing.
pub const TIMESTAMP_HEADER: &str = "X-Steward-Timestamp";
/// `sha256=<hex of HMAC-SHA256(secret, timestamp + "." + body)>`.
pub const SIGNATURE_HEADER: &str = "X-Steward-Signature";
/// The delivery's idempotency key: the same for every attempt of one delivery.
pub const DELIVERY_HEADER: &str = "X-Steward-Delivery";
/// The replay window receivers should use unless they have a reason not to.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

type HmacSha256 = Hmac<Sha256>;

/// `sha256=<hex>` for a body sent at `timestamp_s` (Unix seconds).
pub fn sign_webhook(secret: &[u8], timestamp_s: i64, body: &[u8]) -> String {
    format!("sha256={}", hex::encode(mac(secret, timestamp_s, body)))
}

fn mac(secret: &[u8], timestamp_s: i64, body: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    let mut m = <HmacSha256 as Mac>::new_from_slice(secret).expect("hmac accepts any key length");
    m.update(timestamp_s.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().to_vec()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("timestamp header is not Unix seconds")]
    BadTimestamp,
    #[error("timestamp is {skew_s} s away from now, outside the {window_s} s replay window")]
    OutsideWindow { skew_s: i64, window_s: u64 },
    #[error("signature header is not `sha256=<hex>`")]
    BadSignatureFormat,
    #[error("signature does not match")]
    Mismatch,
}

/// What a receiver runs on each request: the raw body bytes as received, the two headers,
/// its own clock (Unix seconds) and replay window. Comparison is constant-time.
pub fn verify_webhook(
    secret: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_s: i64,
    window: Duration,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let skew_s = now_s.saturating_sub(ts).saturating_abs();
    if skew_s as u64 > window.as_secs() {
        return Err(VerifyError::OutsideWindow {
            skew_s,
            window_s: window.as_secs(),
        });
    }
    let presented = signature_header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(VerifyError::BadSignatureFormat)?;
    let expected = mac(secret, ts, body);
    if presented.len() == expected.len() && bool::from(presented.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// The JSON a webhook receives.
#[derive(Debug, Serialize)]
pub struct WebhookBody<'a> {
    pub delivery: &'a str,
    pub ticket_id: &'a str,
    pub tier: u32,
    /// Reminder number within the tier (0 = first notice).
    pub round: u32,
    pub priority: &'a str,
    pub title: &'a str,
    pub text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<&'a str>,
    pub recipient: WebhookRecipient<'a>,
    pub sent_at_ms: i64,
}

#[derive(Debug, Serialize)]
pub struct WebhookRecipient<'a> {
    pub id: &'a str,
    pub name: &'a str,
}

pub(crate) async fn send(
    http: &reqwest::Client,
    cfg: &WebhookConfig,
    d: Delivery<'_>,
    now_ms: i64,
) -> Result<(), SendError> {
    let n = d.notification;
    let body = serde_json::to_vec(&WebhookBody {
        delivery: d.key,
        ticket_id: &n.ticket_id,
        tier: n.tier,
        round: n.round,
        priority: &n.priority,
        title: &n.title,
        text: &n.text,
        link: n.link.as_deref(),
        recipient: WebhookRecipient {
            id: &d.recipient.id,
            name: &d.recipient.name,
        },
        sent_at_ms: now_ms,
    })
    .map_err(|e| SendError::Answer(format!("cannot encode body: {e}")))?;
    let ts = now_ms.div_euclid(1000);
    let signature = sign_webhook(cfg.secret.expose().as_bytes(), ts, &body);
    let resp = http
        .post(&cfg.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(TIMESTAMP_HEADER, ts.to_string())
        .header(SIGNATURE_HEADER, signature)
        .header(DELIVERY_HEADER, d.key)
        .body(body)
        .send()
        .await
        .map_err(SendError::from_http)?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    Err(SendError::Status {
        status: status.as_u16(),
        body: snippet(&text),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify() {
        let body = br#"{"ticket_id":"t-1"}"#;
        let sig = sign_webhook(b"s3cret", 1_700_000_000, body);
        assert!(sig.starts_with("sha256="));
        let w = DEFAULT_WINDOW;
        assert_eq!(
            verify_webhook(b"s3cret", "1700000000", &sig, body, 1_700_000_100, w),
            Ok(())
        );
        assert_eq!(
            verify_webhook(b"other", "1700000000", &sig, body, 1_700_000_100, w),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify_webhook(b"s3cret", "1700000000", &sig, b"{}", 1_700_000_100, w),
            Err(VerifyError::Mismatch)
        );
        assert!(matches!(
            verify_webhook(b"s3cret", "1700000000", &sig, body, 1_700_000_301, w),
            Err(VerifyError::OutsideWindow { skew_s: 301, .. })
        ));
        assert_eq!(
            verify_webhook(b"s3cret", "soon", &sig, body, 1_700_000_000, w),
            Err(VerifyError::BadTimestamp)
        );
        assert_eq!(
            verify_webhook(b"s3cret", "1700000000", "md5=00", body, 1_700_000_000, w),
            Err(VerifyError::BadSignatureFormat)
        );
    }

    #[test]
    fn known_vector() {
        // Python: hmac.new(b"key", b"1.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign_webhook(b"key", 1, b"{}"),
            "sha256=1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
        );
    }
}
