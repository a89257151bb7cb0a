//! Notification delivery: takes a notification for one recipient on one configured endpoint,
//! keeps it in a durable SQLite outbox and sends it over the endpoint's channel (signed
//! outgoing webhook, WeCom or DingTalk group robot, SMTP email, SMS through an HTTP gateway
//! template), retrying with exponential backoff and jitter until it is delivered or
//! dead-lettered. Every attempt is recorded and readable per ticket.
//!
//! This stage only delivers what it is given: it may not decide who is told or when (that
//! is escalation, in tickets and rules), and it may not touch rules, the broker, ingest or
//! storage. It depends on `steward-estate` for the clock only. Secrets never leave it: they
//! are redacted in `Debug`, kept out of bodies, logs and recorded errors, and contact details
//! are masked in logs and in the attempt record.

pub mod channel;
pub mod config;
pub mod message;
pub mod outbox;
pub mod worker;

pub use channel::webhook::{sign_webhook, verify_webhook, VerifyError};
pub use channel::{Channels, SendError};
pub use config::{ChannelKind, EndpointConfig, NotifyConfig, OutboxConfig, Secret};
pub use message::{mask_email, mask_phone, Notification, Recipient};
pub use outbox::{AttemptEntry, AttemptRecord, DeliveryRecord, DeliveryState, Enqueued, Outbox};
pub use worker::{Backoff, Dispatcher};

use std::path::PathBuf;

/// Errors of the notification stage (sending errors are [`SendError`], recorded on the
/// delivery rather than returned).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid notification config: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error("unknown endpoint `{0}`")]
    UnknownEndpoint(String),
    #[error("outbox database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("cannot encode a delivery: {0}")]
    Encode(String),
    #[error("outbox record {id}: {message}")]
    Corrupt { id: i64, message: String },
    #[error("cannot build the http client: {0}")]
    HttpClient(String),
    #[error("outbox task failed: {0}")]
    Task(String),
}
