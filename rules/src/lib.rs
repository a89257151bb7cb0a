//! The rules stage: turns what ingest decoded (readings, events, status changes) and the
//! silences between them into conditions on devices, and conditions into requests to the
//! ticket domain (`steward_tickets`): raise a ticket routed to the responsible repair
//! station, clear it, notify the station, or send a device a command.
//!
//! - [`RulePack`]: rule files (TOML, a small typed condition language), validated against
//!   the metric catalogue when loaded; [`RulePack::default_pack`] is DESIGN.md section 5.
//! - [`Engine`]: pure, deterministic evaluation driven by event time and `tick(now_ms)`.
//! - [`RulesService`]: the engine on its own thread behind a bounded queue
//!   ([`RulesSink`] for ingest, [`RulesHandle`] for the hub), with an injectable [`Clock`];
//!   it raises and clears through the `TicketDesk` over any `TicketStore`, and keeps its
//!   per-device state there across restarts.
//! - [`backtest`]: replay QuestDB history through a pack.
//! - [`DeviceStates`]: the latest state of every device, read by the API.
//! - [`screen`]: maintenance windows and lift modes hold back tickets of rules that are
//!   not `life_safety` (recorded as `suppressed` ticket events and counted).
//!
//! Boundaries: rules consume what ingest decoded (through [`steward_estate::DecodedSink`]);
//! they own no ticket logic (lifecycle, SLA, rating and the event log are
//! `steward_tickets`'), and may not write to QuestDB's telemetry tables, talk to MQTT
//! clients directly (alerts and device commands leave through ticket events and the
//! [`CommandSink`] the hub implements) or change the estate.

mod backtest;
mod engine;
mod metrics;
mod pack;
mod service;
mod state;
mod suppress;

pub use backtest::{
    backtest, backtest_decoded, event_rows, status_rows, telemetry_rows, BacktestTicket,
};
pub use engine::{Action, Engine, Notification};
pub use metrics::{ReasonLabel, RulesMetrics};
pub use pack::{CommandDef, CommandTarget, Rule, RulePack, DEFAULT_PACK};
pub use service::{
    CommandSink, Dispatcher, NoCommands, RulesConfig, RulesHandle, RulesService, RulesSink,
};
pub use state::{DeviceState, DeviceStates, Liveness};
pub use steward_estate::clock::{Clock, ManualClock, SystemClock};
pub use suppress::{screen, under_maintenance, Because, Suppressed, MAINTENANCE_MODES};

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
    // The io error is part of the message, not a `source`, so a printed error chain says
    // it once.
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("invalid rules configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    #[error(transparent)]
    Ticket(#[from] steward_tickets::TicketError),
    #[error("questdb: {0}")]
    QuestDb(String),
    #[error("rules service: {0}")]
    Service(String),
}
