//! Work orders: tickets of kind `work_order` that a planned round (steward-rounds) opens
//! for its checklist. They go through the desk like any ticket, so they show in lists and
//! alert streams and their resolve deadline counts in the rating (docs/rating.md).

use crate::desk::TicketDesk;
use crate::request::Priority;
use crate::state::RaiseOutcome;
use crate::TicketError;
use tracing::info;

/// What opening a work order (or a round's corrective ticket) needs. `(device_id, rule_id)` names the round: opening the
/// same pair again returns the ticket already opened (active or not), so a round opened
/// twice (a restart between the two stores) makes one ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkOrder {
    /// The asset the round covers (a device id, or `building:<id>` / `compound:<id>`).
    pub device_id: String,
    /// `round:<round id>`.
    pub rule_id: String,
    /// Device kind of the asset, or `building` / `compound`.
    pub kind: String,
    pub compound: String,
    pub building: String,
    pub station: String,
    pub priority: Priority,
    pub title: String,
    pub detail: String,
    pub ts_ms: i64,
    /// `work_order` for a round; `incident` for the corrective ticket of a failed item.
    pub ticket_kind: String,
    /// A round's SLA to complete: both the acknowledge and the resolve deadline (a
    /// planned job has no separate "on site" stage) and no reminders. `None` keeps the
    /// SLA targets of the priority, as for any incident.
    pub resolve_due_ms: Option<i64>,
}

impl TicketDesk {
    /// Open a round's work order (or find the one already opened) and publish it.
    pub fn open_work_order(&self, w: &WorkOrder) -> Result<RaiseOutcome, TicketError> {
        let o = self.store().open_work_order(w, self.sla_policy())?;
        if o.created {
            info!(ticket = o.ticket.id, kind = %w.ticket_kind, asset = %w.device_id, round = %w.rule_id, station = %w.station, "planned ticket opened");
            self.announce_raise(&o, w.ts_ms, w.title.clone());
        }
        Ok(o)
    }
}
