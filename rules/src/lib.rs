//! The rules stage: turns what ingest decoded (readings, events, status changes) and the
//! silences between them into conditions on devices, and conditions into maintenance
//! tickets routed to the responsible repair station, with SLA clocks, reminders,
//! escalation, an audit trail and a monthly service rating.
//!
//! - [`RulePack`]: rule files (TOML, a small typed condition language), validated against
//!   the metric catalogue when loaded; [`RulePack::default_pack`] is DESIGN.md section 5.
//! - [`Engine`]: pure, deterministic evaluation driven by event time and `tick(now_ms)`.
//! - [`TicketStore`]: tickets and their audit trail in SQLite, plus persisted rule state
//!   and the durable log of published [`TicketEvent`]s (ids for resumable alert streams).
//! - [`RulesService`]: the engine on its own thread behind a bounded queue
//!   ([`RulesSink`] for ingest, [`RulesHandle`] for the hub), with an injectable [`Clock`].
//! - [`TicketDesk`]: what the API uses: move tickets, and open them from residents'
//!   reports ([`ResidentReport`]), published like the rules' own.
//! - [`backtest`]: replay QuestDB history through a pack.
//! - [`DeviceStates`]: the latest state of every device, read by the API.
//!
//! Boundaries: rules consume what ingest decoded (through [`steward_estate::DecodedSink`]);
//! they may not write to QuestDB's telemetry tables, talk to MQTT clients directly (alerts
//! and device commands leave through [`TicketEvent`]s and the [`CommandSink`] the hub
//! implements) or change the estate.

mod backtest;
mod engine;
mod metrics;
mod pack;
mod service;
mod state;
mod store;

pub use backtest::{
    backtest, backtest_decoded, event_rows, status_rows, telemetry_rows, BacktestTicket,
};
pub use engine::{alerts_topic, Action, Clear, Engine, Notification, Raise};
pub use metrics::{PriorityLabel, RulesMetrics, StageLabel, StateLabel};
pub use pack::{CommandDef, CommandTarget, OnClear, Priority, Rule, RulePack, DEFAULT_PACK};
pub use service::{
    CommandSink, Dispatcher, NoCommands, RulesConfig, RulesHandle, RulesService, RulesSink,
    TicketDesk, TicketEvent, TicketEventKind, RESIDENT_ACTOR,
};
pub use state::{DeviceState, DeviceStates, Liveness};
pub use steward_estate::clock::{Clock, ManualClock, SystemClock};
pub use store::{
    month_range, rate, stars_for, AuditRecord, ClearOutcome, RaiseOutcome, Rating, ResidentReport,
    SlaConfig, SlaEvent, SlaPolicy, SlaStage, Targets, Ticket, TicketDetail, TicketError,
    TicketFilter, TicketScope, TicketState, TicketStore, EVENT_LOG_KEEP, RESIDENT_KIND,
    SYSTEM_ACTOR,
};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A rule file that is not valid TOML.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    /// A rule that does not validate: names the file, the rule and the key.
    #[error("{file}: rule {rule}: {key}: {message}")]
    Rule {
        file: String,
        rule: String,
        key: String,
        message: String,
    },
    /// A problem in a rule file outside any one rule.
    #[error("{file}: {key}: {message}")]
    File {
        file: String,
        key: String,
        message: String,
    },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid rules configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error("questdb: {0}")]
    QuestDb(String),
    #[error("rules service: {0}")]
    Service(String),
}
