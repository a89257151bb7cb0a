//! Escalation and delivery counters, registered on the hub's Prometheus registry.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    pub tier: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabel {
    pub channel: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Clone, Default)]
pub struct EscalationMetrics {
    /// Deliveries queued by the ladder, per tier (a reminder counts like a first notice).
    pub notices: Family<TierLabel, Counter>,
    /// Steps that reached nobody: no one in the audience, or a person with no channel.
    pub unreachable: Counter,
    /// Delivery attempts copied from the outbox, per channel and outcome.
    pub attempts: Family<AttemptLabel, Counter>,
    /// Deliveries in the outbox per state (pending, delivered, dead).
    pub deliveries: Family<StateLabel, Gauge>,
    /// Tickets acknowledged through a one-time link.
    pub link_acks: Counter,
    /// Links refused (bad signature, expired, used).
    pub link_refused: Counter,
    pub policy_reloads: Family<OutcomeLabel, Counter>,
    /// Failed ladder rounds (a database error); the next tick tries again.
    pub errors: Counter,
}

impl EscalationMetrics {
    pub fn new(reg: &mut Registry) -> Self {
        let m = EscalationMetrics::default();
        reg.register(
            "steward_escalation_notices",
            "Deliveries queued by the escalation ladder, per tier",
            m.notices.clone(),
        );
        reg.register(
            "steward_escalation_unreachable",
            "Escalation steps that reached nobody (empty audience or no channel)",
            m.unreachable.clone(),
        );
        reg.register(
            "steward_notify_attempts",
            "Notification delivery attempts, per channel and outcome",
            m.attempts.clone(),
        );
        reg.register(
            "steward_notify_deliveries",
            "Notification deliveries in the outbox, per state",
            m.deliveries.clone(),
        );
        reg.register(
            "steward_escalation_link_acks",
            "Tickets acknowledged through a one-time link",
            m.link_acks.clone(),
        );
        reg.register(
            "steward_escalation_link_refused",
            "Acknowledgement links refused (bad signature, expired or already used)",
            m.link_refused.clone(),
        );
        reg.register(
            "steward_escalation_policy_reloads",
            "Escalation policy reloads, per outcome",
            m.policy_reloads.clone(),
        );
        reg.register(
            "steward_escalation_errors",
            "Escalation rounds that failed (retried on the next tick)",
            m.errors.clone(),
        );
        m
    }
}
