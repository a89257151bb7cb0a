//! Ticket events: what happened to a ticket, as published to the alert stream (SSE), the
//! stations' MQTT topics and QuestDB, and kept in the store's durable event log so a
//! client can resume after the last id it saw.

use crate::request::Priority;
use crate::sla::SlaPolicy;
use crate::state::{Ticket, TicketState};
use serde::{Deserialize, Serialize};

/// How many ticket events the durable log keeps for clients resuming a stream.
pub const EVENT_LOG_KEEP: i64 = 100_000;

/// The MQTT topic of a station's alerts.
pub fn alerts_topic(station: &str) -> String {
    format!("stations/{station}/alerts")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketEventKind {
    /// A new ticket.
    Raised,
    /// One more occurrence on an active ticket.
    Repeated,
    ConditionCleared,
    Transition,
    /// Unacknowledged ticket, again.
    Reminder,
    /// An SLA target was missed; `escalation_level`/`audience` say who is told now.
    Escalated,
    /// A rule's notification for the station.
    Notification,
    /// What a rule would have raised during a maintenance window or while the device
    /// reported a maintenance mode: no ticket, only this record (`audience` is
    /// `window:<id>` or `mode:<mode>`).
    Suppressed,
}

impl TicketEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketEventKind::Raised => "raised",
            TicketEventKind::Repeated => "repeated",
            TicketEventKind::ConditionCleared => "condition_cleared",
            TicketEventKind::Transition => "transition",
            TicketEventKind::Reminder => "reminder",
            TicketEventKind::Escalated => "escalated",
            TicketEventKind::Notification => "notification",
            TicketEventKind::Suppressed => "suppressed",
        }
    }

    /// Whether crews' devices get this event on the station's MQTT alert topic.
    pub fn is_alert(self) -> bool {
        matches!(
            self,
            TicketEventKind::Raised
                | TicketEventKind::Reminder
                | TicketEventKind::Escalated
                | TicketEventKind::Notification
        )
    }
}

/// Something that happened to a ticket, for the alert stream (SSE) and MQTT
/// (`topic`, i.e. `stations/{station}/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// Id in the ticket store's durable event log: monotonic, so a client can resume
    /// after the last id it saw. `None` only when the log could not be written.
    #[serde(default)]
    pub event_id: Option<i64>,
    pub kind: TicketEventKind,
    pub ts_ms: i64,
    pub ticket_id: Option<i64>,
    pub device_id: String,
    pub rule_id: String,
    pub station: String,
    pub compound: String,
    pub priority: Priority,
    pub state: Option<TicketState>,
    pub topic: String,
    pub escalation_level: u32,
    /// Name of the escalation level this event is for (`station`, `street_platform`, ...).
    pub audience: String,
    pub message: String,
}

impl TicketEvent {
    /// An event about ticket `t`, addressed to its current escalation level.
    pub fn of(
        kind: TicketEventKind,
        t: &Ticket,
        ts_ms: i64,
        policy: &SlaPolicy,
        message: String,
    ) -> Self {
        TicketEvent {
            event_id: None,
            kind,
            ts_ms,
            ticket_id: Some(t.id),
            device_id: t.device_id.clone(),
            rule_id: t.rule_id.clone(),
            station: t.station.clone(),
            compound: t.compound.clone(),
            priority: t.priority,
            state: Some(t.state),
            topic: alerts_topic(&t.station),
            escalation_level: t.escalation_level,
            audience: policy.level_name(t.escalation_level),
            message,
        }
    }
}
