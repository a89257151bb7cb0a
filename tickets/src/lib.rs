//! The ticket domain: maintenance tickets from the moment a condition (or a resident)
//! raises one until it is closed, with an audit record per change, SLA clocks with
//! reminders and escalation, the monthly service rating, and the durable log of ticket
//! events that alert streams resume from.
//!
//! - [`TicketState`], [`Ticket`], [`AuditRecord`]: the lifecycle of DESIGN.md section 6.
//! - [`SlaConfig`], [`SlaPolicy`]: targets per priority, reminders, escalation levels.
//! - [`rate`]: the rating arithmetic of docs/rating.md.
//! - [`TicketEvent`]: what happened to a ticket, as published and logged.
//! - [`TicketStore`]: the storage seam (object safe, shared as `Arc<dyn TicketStore>`);
//!   [`SqliteTicketStore`] implements it for one hub. It also keeps the rules' saved
//!   per-device state, opaque to this crate.
//! - [`TicketDesk`]: every change someone must hear of (rules raising and clearing, the
//!   SLA clock, crews and residents through the API) goes through it and is published.
//! - The dispatcher's desk and resident tracking (`dispatch`, docs/dispatch.md): tickets
//!   from phone calls with their [`Caller`] kept apart, transfers with a [`Holding`]
//!   history the rating splits by ([`attribute`], [`rate_split`]), merges and
//!   [`TicketLink`]s, and residents' tracking codes and once-only [`ResidentRating`]s.
//!
//! Boundaries: this crate knows the estate's types and nothing of the stages around it.
//! It does not evaluate rules (it is told to [`Raise`] and [`Clear`]), talk to MQTT or
//! QuestDB (events leave through the desk's channel), or serve HTTP.

mod desk;
mod dispatch;
mod events;
mod metrics;
mod rating;
mod request;
mod sla;
mod sqlite;
mod state;
mod store;
mod work_order;

pub use desk::TicketDesk;
pub use events::{alerts_topic, TicketEvent, TicketEventKind, EVENT_LOG_KEEP};
pub use metrics::{PriorityLabel, StageLabel, StateLabel, TicketMetrics};
pub use rating::{month_range, rate, rate_split, stars_for, Rating};
pub use request::{Clear, OnClear, Priority, Raise};
pub use sla::{SlaConfig, SlaEvent, SlaPolicy, SlaStage, Targets};
/// The SLA clock's arithmetic on a ticket, for stores outside this crate (PostgreSQL), so
/// every store decides reminders and breaches alike.
pub mod sla_clock {
    pub use crate::sla::{apply_transition, next_check, tick, SlaClocks};
}
pub use sqlite::SqliteTicketStore;
pub use state::{
    AuditRecord, ClearOutcome, RaiseOutcome, ResidentReport, Ticket, TicketDetail, TicketFilter,
    TicketScope, TicketState, CAPTAIN_KIND, RESIDENT_KIND, TICKET_KIND_INCIDENT,
    TICKET_KIND_WORK_ORDER,
};
pub use store::TicketStore;
pub use work_order::WorkOrder;

// The dispatcher's desk and resident tracking (issue 14).
pub use dispatch::{
    attribute, holder_at, is_tracking_code, mask_phone, new_tracking_code, Attribution, CallTicket,
    Caller, Holding, LinkRelation, ResidentRating, TicketLink, Tracked, CALL_KIND, SOURCE_PHONE,
    TRACKING_CODE_LEN,
};

/// Actor recorded for changes the rules make on their own.
pub const SYSTEM_ACTOR: &str = "rules";

/// Actor recorded for tickets opened by resident reports.
pub const RESIDENT_ACTOR: &str = "resident";

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("ticket {0} not found")]
    NotFound(i64),
    #[error("ticket {id}: illegal transition from {from} to {to}")]
    IllegalTransition {
        id: i64,
        from: TicketState,
        to: TicketState,
    },
    #[error("ticket {id}: actor must not be empty")]
    NoActor { id: i64 },
    #[error("invalid month `{0}` (expected YYYY-MM)")]
    BadMonth(String),
    /// The store's database failed (whichever database the store uses).
    #[error("ticket database: {0}")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("ticket database holds an invalid value: {0}")]
    Corrupt(String),
    /// A logged ticket event that no longer decodes.
    #[error("ticket event log row {id}: {message}")]
    EventLog { id: i64, message: String },
    /// A ticket event that cannot be encoded for the log.
    #[error("cannot encode ticket event: {0}")]
    Encode(String),
    /// A desk or resident request the ticket's state refuses (merge into a cancelled
    /// ticket, transfer of a closed one, a second rating, rating before resolution).
    #[error("ticket {id}: {message}")]
    Refused { id: i64, message: String },
    /// A request that is wrong whatever the state (names the field).
    #[error("{0}")]
    Invalid(String),
    /// A tracking code no report was given.
    #[error("no report has tracking code `{0}`")]
    UnknownCode(String),
}
