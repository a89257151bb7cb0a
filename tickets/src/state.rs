//! The ticket lifecycle and what a ticket is: states and legal moves, the ticket with its
//! audit trail, list filters, and residents' reports.

use crate::request::Priority;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Open,
    Acknowledged,
    Dispatched,
    OnSite,
    Resolved,
    Closed,
    OnHold,
    Cancelled,
}

impl TicketState {
    pub const ALL: [TicketState; 8] = [
        TicketState::Open,
        TicketState::Acknowledged,
        TicketState::Dispatched,
        TicketState::OnSite,
        TicketState::Resolved,
        TicketState::Closed,
        TicketState::OnHold,
        TicketState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::Acknowledged => "acknowledged",
            TicketState::Dispatched => "dispatched",
            TicketState::OnSite => "on_site",
            TicketState::Resolved => "resolved",
            TicketState::Closed => "closed",
            TicketState::OnHold => "on_hold",
            TicketState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TicketState> {
        TicketState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Still needs work: at most one such ticket per (device, rule).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TicketState::Open
                | TicketState::Acknowledged
                | TicketState::Dispatched
                | TicketState::OnSite
                | TicketState::OnHold
        )
    }

    /// The lifecycle of DESIGN.md section 6. `open -> resolved` is allowed for conditions
    /// that clear themselves (offline -> online) and fixes made remotely.
    pub fn can_go_to(self, to: TicketState) -> bool {
        use TicketState::*;
        matches!(
            (self, to),
            (Open, Acknowledged | OnHold | Cancelled | Resolved)
                | (
                    Acknowledged,
                    Dispatched | OnSite | OnHold | Cancelled | Resolved
                )
                | (Dispatched, OnSite | OnHold | Cancelled | Resolved)
                | (OnSite, Resolved | OnHold)
                | (
                    OnHold,
                    Acknowledged | Dispatched | OnSite | Cancelled | Resolved
                )
                | (Resolved, Closed)
        )
    }
}

impl std::fmt::Display for TicketState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    pub id: i64,
    pub device_id: String,
    pub rule_id: String,
    pub kind: String,
    pub compound: String,
    pub building: String,
    /// Responsible station the ticket is routed to.
    pub station: String,
    pub priority: Priority,
    pub title: String,
    pub detail: String,
    pub state: TicketState,
    pub opened_ms: i64,
    pub last_seen_ms: i64,
    pub occurrences: i64,
    /// Whether the rule's condition still holds.
    pub condition_active: bool,
    pub cleared_ms: Option<i64>,
    pub acknowledged_ms: Option<i64>,
    pub dispatched_ms: Option<i64>,
    pub on_site_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub closed_ms: Option<i64>,
    pub cancelled_ms: Option<i64>,
    pub ack_due_ms: i64,
    pub on_site_due_ms: Option<i64>,
    pub resolve_due_ms: Option<i64>,
    pub ack_breached: bool,
    pub on_site_breached: bool,
    pub resolve_breached: bool,
    /// 1 = the responsible station; each SLA breach moves one level up.
    pub escalation_level: u32,
    pub reminders: i64,
    /// Previous ticket of the same device and rule resolved within 7 days before this one.
    pub repeat_of: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub ticket_id: i64,
    pub ts_ms: i64,
    pub actor: String,
    /// raised, transition, condition_cleared, sla_breach.
    pub action: String,
    pub from_state: Option<TicketState>,
    pub to_state: Option<TicketState>,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketDetail {
    pub ticket: Ticket,
    pub audit: Vec<AuditRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RaiseOutcome {
    pub ticket: Ticket,
    /// False when an active ticket was found and its occurrence count raised.
    pub created: bool,
    /// The trigger is no newer than what the device's latest ticket of the rule already
    /// counted (a message sent again after a crash or a reconnect): nothing changed.
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClearOutcome {
    pub ticket: Ticket,
    /// Set when the rule's `on_clear` moved the ticket on.
    pub new_state: Option<TicketState>,
}

/// Filters of [`TicketStore::list`]; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketFilter {
    pub station: Option<String>,
    pub compound: Option<String>,
    pub device_id: Option<String>,
    pub rule_id: Option<String>,
    pub priority: Option<Priority>,
    pub state: Option<TicketState>,
    /// Any of these priorities (with `priority`, both must hold).
    pub priorities: Vec<Priority>,
    /// Any of these states (with `state`, both must hold).
    pub states: Vec<TicketState>,
    /// Only tickets that still need work.
    pub active_only: bool,
    /// Opened at or after, ms.
    pub from_ms: Option<i64>,
    /// Opened before, ms.
    pub to_ms: Option<i64>,
    /// Newest first; at most this many (default 500).
    pub limit: Option<u32>,
    /// Skip this many of the matching tickets first (paging).
    pub offset: Option<u32>,
    /// Restrict to what a caller may see: when set, a ticket must be routed to one of
    /// `stations`, belong to one of `compounds` or be of one of `buildings`. Empty lists
    /// then match nothing.
    pub within: Option<TicketScope>,
}

/// Part of the estate a ticket list is restricted to (see [`TicketFilter::within`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketScope {
    pub stations: Vec<String>,
    pub compounds: Vec<String>,
    /// A building captain's buildings.
    pub buildings: Vec<String>,
}

/// A fault reported by a resident (not by a device): opens a ticket for the compound's
/// station. Repeated reports of the same category in the same compound while a ticket is
/// active add an occurrence and an audit record to that ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentReport {
    pub compound: String,
    /// Station responsible for the compound, from the estate.
    pub station: String,
    /// One of a fixed list the API validates, e.g. `lift`.
    pub category: String,
    pub priority: Priority,
    pub title: String,
    /// Description, location and contact as the resident gave them.
    pub detail: String,
    pub ts_ms: i64,
    /// Set when a building captain files the report: the ticket is the building's
    /// (kind `captain`), kept apart from residents' reports of the compound.
    pub building: Option<String>,
}

impl ResidentReport {
    /// Pseudo device id of a compound's resident reports, or of a building's captain
    /// reports (no device is involved).
    pub fn device_id(&self) -> String {
        match &self.building {
            Some(b) => format!("captain:{b}"),
            None => format!("resident:{}", self.compound),
        }
    }

    /// A captain's P1 and P2 of one category are separate tickets, so a P1 is never
    /// folded into an open P2.
    pub fn rule_id(&self) -> String {
        match &self.building {
            Some(_) => format!(
                "captain-{}-{}",
                self.category,
                self.priority.as_str().to_ascii_lowercase()
            ),
            None => format!("resident-{}", self.category),
        }
    }

    pub fn kind(&self) -> &'static str {
        match &self.building {
            Some(_) => CAPTAIN_KIND,
            None => RESIDENT_KIND,
        }
    }
}

/// Ticket kind of building captains' hazard reports.
pub const CAPTAIN_KIND: &str = "captain";

/// Ticket kind of resident reports.
pub const RESIDENT_KIND: &str = "resident";
