//! Escalation to people: for every unacknowledged ticket, who is told at raise and who
//! next after each interval, by the policy of its priority; reminders repeat at every tier
//! reached until someone acknowledges. Recipients come from the estate's people (on-call
//! rota at the step's time, building captains, station head, grid manager, street duty
//! officer, district); each is reached on their channels through the notification outbox,
//! with a one-time signed link that acknowledges the ticket. Delivery attempts are copied
//! to the ticket's audit trail and handed to a delivery log.
//!
//! This stage decides who and when; it may not deliver (that is `steward-notify`), move
//! tickets other than acknowledging one through a valid link (through the ticket desk),
//! or touch the broker, ingest, rules or storage.

pub mod config;
pub mod estate_roster;
pub mod ladder;
pub mod link;
pub mod metrics;
pub mod policy;
pub mod roster;
pub mod service;
pub mod store;

pub use config::EscalationConfig;
pub use estate_roster::EstateRoster;
pub use link::{AckClaim, LinkError, LinkKey};
pub use metrics::EscalationMetrics;
pub use policy::{Audience, Policy, PolicyFile};
pub use roster::{Contact, Roster};
pub use service::{AckError, DeliveryLog, Escalation, LinkAck, NoLog, Parts};
pub use store::{link_key, EscalationStore};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EscalationError {
    #[error("invalid escalation policy: {}", .0.join("; "))]
    Policy(Vec<String>),
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("escalation database: {0}")]
    Db(#[from] rusqlite::Error),
    #[error(transparent)]
    Ticket(#[from] steward_tickets::TicketError),
    #[error(transparent)]
    Notify(#[from] steward_notify::NotifyError),
    #[error("escalation task failed: {0}")]
    Task(String),
}
