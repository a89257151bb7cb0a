//! Email over SMTP with `lettre`: a plain-text message to the recipient's address, sent
//! through the configured relay (plain SMTP, optional AUTH). The Message-ID is derived from
//! the delivery key, so a repeat after a crash is recognisable.

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sha2::{Digest, Sha256};
use std::time::Duration;

use super::{Delivery, SendError};
use crate::config::EmailConfig;

/// The message a delivery becomes.
pub fn build_message(cfg: &EmailConfig, d: Delivery<'_>) -> Result<Message, SendError> {
    let to_addr = d
        .recipient
        .email
        .as_deref()
        .ok_or(SendError::MissingAddress {
            channel: "email",
            what: "email address",
        })?;
    let from: Mailbox = cfg
        .from
        .parse()
        .map_err(|_| SendError::BadAddress("the configured sender".into()))?;
    let to: Mailbox = format!("{} <{}>", d.recipient.name, to_addr)
        .parse()
        .or_else(|_| to_addr.parse())
        .map_err(|_| SendError::BadAddress(format!("recipient {}", d.recipient.id)))?;
    let digest = hex::encode(Sha256::digest(d.key.as_bytes()));
    Message::builder()
        .from(from)
        .to(to)
        .subject(d.notification.headline())
        .message_id(Some(format!("<{}@steward>", &digest[..32])))
        .header(ContentType::TEXT_PLAIN)
        .body(d.notification.plain())
        .map_err(|e| SendError::BadAddress(e.to_string()))
}

pub(crate) async fn send(
    cfg: &EmailConfig,
    d: Delivery<'_>,
    timeout: Duration,
) -> Result<(), SendError> {
    let message = build_message(cfg, d)?;
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(cfg.host.as_str())
        .port(cfg.port)
        .timeout(Some(timeout));
    if let (Some(user), Some(password)) = (&cfg.username, &cfg.password) {
        builder = builder.credentials(Credentials::new(
            user.clone(),
            password.expose().to_string(),
        ));
    }
    let transport = builder.build();
    transport
        .send(message)
        .await
        .map(|_| ())
        .map_err(|e| SendError::Smtp {
            message: e.to_string(),
            permanent: e.is_permanent(),
        })
}
