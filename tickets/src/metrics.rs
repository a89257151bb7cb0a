//! Counters the ticket desk keeps. They are registered by whoever owns the prefix (the
//! rules stage registers them as `steward_rules_*`, their names since before tickets were
//! a crate of their own), so this crate only defines and counts them.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PriorityLabel {
    pub priority: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub to: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    pub stage: &'static str,
}

/// Handles on the ticket counters; clones count into the same series.
#[derive(Clone, Default, Debug)]
pub struct TicketMetrics {
    /// New tickets by priority.
    pub tickets_raised: Family<PriorityLabel, Counter>,
    /// Repeats counted on an already active ticket.
    pub occurrences: Counter,
    /// Triggers no newer than what their ticket already counted (messages sent again).
    pub replayed_triggers: Counter,
    /// Ticket transitions by target state.
    pub transitions: Family<StateLabel, Counter>,
    pub sla_breaches: Family<StageLabel, Counter>,
    pub reminders: Counter,
    /// Ticket store failures.
    pub errors: Counter,
}
