//! The SLA arithmetic the store persists: a copy of the crate-private part of
//! `tickets/src/sla.rs` (`SlaClocks`, `next_check`, `tick`, `apply_transition`), kept
//! identical so both stores decide the same. If the tickets crate exports them one day,
//! this module goes.

use steward_tickets::{SlaEvent, SlaPolicy, SlaStage, Ticket, TicketState};

/// What the SLA clock keeps of a ticket besides the public [`Ticket`] (stores persist it
/// next to the ticket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SlaClocks {
    pub(crate) next_reminder_ms: Option<i64>,
    pub(crate) hold_since_ms: Option<i64>,
}

/// When the SLA clock next needs to look at a ticket.
pub(crate) fn next_check(t: &Ticket, c: &SlaClocks) -> Option<i64> {
    if !t.state.is_active() || t.state == TicketState::OnHold {
        return None;
    }
    let mut next: Option<i64> = None;
    let mut consider = |x: Option<i64>| {
        if let Some(x) = x {
            next = Some(next.map_or(x, |n| n.min(x)));
        }
    };
    if t.acknowledged_ms.is_none() {
        consider(c.next_reminder_ms);
        if !t.ack_breached {
            consider(Some(t.ack_due_ms));
        }
    }
    if t.on_site_ms.is_none() && !t.on_site_breached {
        consider(t.on_site_due_ms);
    }
    if t.resolved_ms.is_none() && !t.resolve_breached {
        consider(t.resolve_due_ms);
    }
    next
}

/// What the SLA clock does to one ticket at `now_ms`: at most one reminder while it is
/// unacknowledged, and one breach per stage whose target passed, each escalating one
/// level (up to the last). Returns the events in that order; the caller persists `t`, `c`
/// and an audit record per breach.
pub(crate) fn tick(
    t: &mut Ticket,
    c: &mut SlaClocks,
    now_ms: i64,
    policy: &SlaPolicy,
) -> Vec<SlaEvent> {
    let mut out = Vec::new();
    let max_level = policy.levels.len().max(1) as u32;
    if t.acknowledged_ms.is_none() {
        if let Some(r) = c.next_reminder_ms.filter(|r| *r <= now_ms) {
            t.reminders += 1;
            // One reminder however long the clock was stopped, then the cadence.
            let every = policy.reminder_interval_ms.max(1_000);
            let behind = (now_ms - r) / every;
            c.next_reminder_ms = Some(r + (behind + 1) * every);
            out.push(SlaEvent::Reminder {
                ticket: t.clone(),
                ts_ms: now_ms,
            });
        }
    }
    let mut breaches = Vec::new();
    if t.acknowledged_ms.is_none() && !t.ack_breached && t.ack_due_ms <= now_ms {
        t.ack_breached = true;
        breaches.push(SlaStage::Ack);
    }
    if t.on_site_ms.is_none()
        && !t.on_site_breached
        && t.on_site_due_ms.is_some_and(|d| d <= now_ms)
    {
        t.on_site_breached = true;
        breaches.push(SlaStage::OnSite);
    }
    if t.resolved_ms.is_none()
        && !t.resolve_breached
        && t.resolve_due_ms.is_some_and(|d| d <= now_ms)
    {
        t.resolve_breached = true;
        breaches.push(SlaStage::Resolve);
    }
    for stage in breaches {
        t.escalation_level = (t.escalation_level + 1).min(max_level);
        out.push(SlaEvent::Breach {
            ticket: t.clone(),
            stage,
            level: t.escalation_level,
            audience: policy.level_name(t.escalation_level),
            ts_ms: now_ms,
        });
    }
    out
}

/// Move `t` to `to` at `now_ms` (the caller checked the move is legal): stamps the stage
/// times and, when leaving on-hold, pushes the open deadlines back by the time held.
pub(crate) fn apply_transition(t: &mut Ticket, c: &mut SlaClocks, to: TicketState, now_ms: i64) {
    if t.state == TicketState::OnHold {
        // Time on hold (waiting for parts, access) does not count against the SLA.
        let held = (now_ms - c.hold_since_ms.unwrap_or(now_ms)).max(0);
        if t.acknowledged_ms.is_none() {
            t.ack_due_ms += held;
            c.next_reminder_ms = c.next_reminder_ms.map(|x| x + held);
        }
        if t.on_site_ms.is_none() {
            t.on_site_due_ms = t.on_site_due_ms.map(|x| x + held);
        }
        if t.resolved_ms.is_none() {
            t.resolve_due_ms = t.resolve_due_ms.map(|x| x + held);
        }
        c.hold_since_ms = None;
    }
    let set = |slot: &mut Option<i64>| {
        if slot.is_none() {
            *slot = Some(now_ms);
        }
    };
    match to {
        TicketState::Acknowledged => set(&mut t.acknowledged_ms),
        TicketState::Dispatched => set(&mut t.dispatched_ms),
        TicketState::OnSite => set(&mut t.on_site_ms),
        TicketState::Resolved => set(&mut t.resolved_ms),
        TicketState::Closed => set(&mut t.closed_ms),
        TicketState::Cancelled => set(&mut t.cancelled_ms),
        TicketState::OnHold => c.hold_since_ms = Some(now_ms),
        TicketState::Open => {}
    }
    // Dispatching or arriving implies the alert was seen.
    if matches!(to, TicketState::Dispatched | TicketState::OnSite) {
        set(&mut t.acknowledged_ms);
    }
    t.state = to;
}
