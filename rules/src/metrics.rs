use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use steward_tickets::{
    Priority, PriorityLabel, SlaStage, StageLabel, StateLabel, TicketMetrics, TicketState,
};

/// Counters of the rules stage (`steward_rules_*`).
#[derive(Clone, Default)]
pub struct RulesMetrics {
    /// Decoded messages handed to the rules thread.
    pub received: Counter,
    /// Decoded messages dropped because the rules queue was full.
    pub dropped: Counter,
    pub evaluations: Counter,
    /// New tickets by priority.
    pub tickets_raised: Family<PriorityLabel, Counter>,
    /// Repeats counted on an already active ticket.
    pub occurrences: Counter,
    /// Triggers not counted again (messages sent again after a crash or reconnect).
    pub replayed_triggers: Counter,
    /// Ticket transitions by target state.
    pub transitions: Family<StateLabel, Counter>,
    pub sla_breaches: Family<StageLabel, Counter>,
    pub reminders: Counter,
    pub notifications: Counter,
    pub commands: Counter,
    /// Ticket store or persistence failures.
    pub errors: Counter,
    pub reloads: Counter,
    pub reload_errors: Counter,
    /// Devices with rule state.
    pub devices: Gauge,
    /// Tickets not opened: a maintenance window (`window`) or the device's mode
    /// (`device_mode`).
    pub suppressed: Family<ReasonLabel, Counter>,
}

/// Why a rule's ticket was suppressed: `window` or `device_mode`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

impl RulesMetrics {
    /// Suppressed tickets so far for `reason` (`window` or `device_mode`).
    pub fn suppressed(&self, reason: &'static str) -> u64 {
        self.suppressed.get_or_create(&ReasonLabel { reason }).get()
    }
}

impl RulesMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = RulesMetrics::default();
        for p in Priority::ALL {
            let _ = m.tickets_raised.get_or_create(&PriorityLabel {
                priority: p.as_str(),
            });
        }
        for s in TicketState::ALL {
            let _ = m.transitions.get_or_create(&StateLabel { to: s.as_str() });
        }
        for s in [SlaStage::Ack, SlaStage::OnSite, SlaStage::Resolve] {
            let _ = m
                .sla_breaches
                .get_or_create(&StageLabel { stage: s.as_str() });
        }
        let r = registry.sub_registry_with_prefix("steward_rules");
        r.register(
            "received",
            "Decoded messages handed to rules",
            m.received.clone(),
        );
        r.register(
            "dropped",
            "Decoded messages dropped: rules queue full",
            m.dropped.clone(),
        );
        r.register("evaluations", "Rule evaluations", m.evaluations.clone());
        r.register(
            "tickets_raised",
            "New tickets by priority",
            m.tickets_raised.clone(),
        );
        r.register(
            "occurrences",
            "Repeats counted on active tickets",
            m.occurrences.clone(),
        );
        r.register(
            "replayed_triggers",
            "Triggers not counted again: no newer than what their ticket already counted",
            m.replayed_triggers.clone(),
        );
        r.register(
            "transitions",
            "Ticket transitions by target state",
            m.transitions.clone(),
        );
        r.register(
            "sla_breaches",
            "SLA breaches by stage",
            m.sla_breaches.clone(),
        );
        r.register(
            "reminders",
            "Reminders for unacknowledged tickets",
            m.reminders.clone(),
        );
        r.register(
            "notifications",
            "Station notifications",
            m.notifications.clone(),
        );
        r.register("commands", "Device commands sent", m.commands.clone());
        r.register(
            "errors",
            "Ticket store or persistence failures",
            m.errors.clone(),
        );
        r.register("reloads", "Rule packs swapped in", m.reloads.clone());
        r.register(
            "reload_errors",
            "Rule packs refused on reload",
            m.reload_errors.clone(),
        );
        r.register("devices", "Devices with rule state", m.devices.clone());
        for reason in ["window", "device_mode"] {
            let _ = m.suppressed.get_or_create(&ReasonLabel { reason });
        }
        r.register(
            "suppressed",
            "Tickets rules did not open: maintenance window or device mode",
            m.suppressed.clone(),
        );
        m
    }

    /// The ticket desk's counters: the same series as this struct's ticket fields, so
    /// they keep their `steward_rules_*` names.
    pub fn tickets(&self) -> TicketMetrics {
        TicketMetrics {
            tickets_raised: self.tickets_raised.clone(),
            occurrences: self.occurrences.clone(),
            replayed_triggers: self.replayed_triggers.clone(),
            transitions: self.transitions.clone(),
            sla_breaches: self.sla_breaches.clone(),
            reminders: self.reminders.clone(),
            errors: self.errors.clone(),
        }
    }

    pub fn raised(&self, p: Priority) -> u64 {
        self.tickets_raised
            .get_or_create(&PriorityLabel {
                priority: p.as_str(),
            })
            .get()
    }
}
