//! Planned maintenance and inspection rounds: schedules (TOML, validated, hot reloaded)
//! say what is inspected or maintained, how often, by whom (the station or the building
//! captain) and within what time; due rounds become checklist work orders (tickets of
//! kind `work_order`) through the ticket desk; telemetry proves items on its own (a smoke
//! detector's `test` event, a battery voltage, a fire pump's test run with its pressure),
//! with the evidence recorded, and a failed item opens a corrective ticket linked to the
//! round. It also computes the monthly PM-compliance report (docs/rounds.md).
//!
//! - [`ScheduleSet`]: the schedule file; [`Cadence`] and [`Period`]: when rounds are due.
//! - [`Rounds`]: generation (idempotent per schedule, asset and period, driven by the
//!   caller's clock), evidence, hand-ticked items, the report.
//! - [`RoundStore`]: rounds and items in the stage's own SQLite file.
//! - [`start`]: the running stage; [`RoundsSink`] is the [`DecodedSink`] ingest feeds.
//!
//! Boundaries: this crate depends on `tickets` and `estate` only. It opens and resolves
//! tickets through the [`TicketDesk`] (never the ticket tables), reads the estate through
//! the registry, and never reaches ingest, the broker, the API or the rules engine; it
//! receives telemetry only as [`Decoded`] messages handed over by ingest.
//!
//! [`DecodedSink`]: steward_estate::DecodedSink
//! [`Decoded`]: steward_estate::Decoded
//! [`TicketDesk`]: steward_tickets::TicketDesk

mod engine;
mod evidence;
mod period;
mod report;
mod schedule;
mod service;
mod store;

pub use engine::{Rounds, Verdict, TELEMETRY_ACTOR};
pub use evidence::{check, Filter, Obs, RoundsSink};
pub use period::{Cadence, Period};
pub use report::{ComplianceLine, ComplianceReport};
pub use schedule::{Assignee, Item, Per, Proof, Schedule, ScheduleSet};
pub use service::{start, RoundsConfig, RoundsHandle};
pub use store::{Round, RoundDetail, RoundItem, RoundStore};

#[derive(Debug, thiserror::Error)]
pub enum RoundsError {
    /// The schedule file is unreadable or invalid; each problem names its key.
    #[error("{file}: {}", problems.join("; "))]
    Schedule { file: String, problems: Vec<String> },
    #[error("round {0} not found")]
    NotFound(i64),
    #[error("round {round} has no checklist item `{item}`")]
    NoItem { round: i64, item: String },
    #[error("round {round} item `{item}` is already {state}")]
    Decided {
        round: i64,
        item: String,
        state: String,
    },
    #[error("rounds database: {0}")]
    Database(#[from] rusqlite::Error),
    #[error(transparent)]
    Tickets(#[from] steward_tickets::TicketError),
    #[error("cannot start the rounds thread: {0}")]
    Start(String),
}

/// An instant for evidence texts, RFC 3339 in UTC.
pub(crate) fn fmt_ts(ts_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts_ms)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts_ms.to_string())
}
