//! The row helpers every part of the store shares (the tables are in `ddl`).

use crate::conn::Db;
use crate::sla::SlaClocks;
use crate::PgStoreError;
use postgres::Row;
use steward_tickets::{Priority, Ticket, TicketError, TicketState};

type E = PgStoreError;

pub(crate) const COLS: &str =
    "id, device_id, rule_id, kind, compound, building, station, priority, title, \
    detail, state, opened_ms, last_seen_ms, occurrences, condition_active, cleared_ms, \
    acknowledged_ms, dispatched_ms, on_site_ms, resolved_ms, closed_ms, cancelled_ms, \
    ack_due_ms, on_site_due_ms, resolve_due_ms, ack_breached, on_site_breached, \
    resolve_breached, escalation_level, reminders, repeat_of, next_reminder_ms, hold_since_ms, \
    ticket_kind";

pub(crate) fn from_row(r: &Row) -> Result<(Ticket, SlaClocks), E> {
    let prio: String = r.try_get(7)?;
    let state: String = r.try_get(10)?;
    let level: i64 = r.try_get(28)?;
    let t = Ticket {
        id: r.try_get(0)?,
        device_id: r.try_get(1)?,
        rule_id: r.try_get(2)?,
        kind: r.try_get(3)?,
        compound: r.try_get(4)?,
        building: r.try_get(5)?,
        station: r.try_get(6)?,
        priority: Priority::parse(&prio).ok_or_else(|| E::corrupt(format!("priority `{prio}`")))?,
        title: r.try_get(8)?,
        detail: r.try_get(9)?,
        state: TicketState::parse(&state).ok_or_else(|| E::corrupt(format!("state `{state}`")))?,
        opened_ms: r.try_get(11)?,
        last_seen_ms: r.try_get(12)?,
        occurrences: r.try_get(13)?,
        condition_active: r.try_get(14)?,
        cleared_ms: r.try_get(15)?,
        acknowledged_ms: r.try_get(16)?,
        dispatched_ms: r.try_get(17)?,
        on_site_ms: r.try_get(18)?,
        resolved_ms: r.try_get(19)?,
        closed_ms: r.try_get(20)?,
        cancelled_ms: r.try_get(21)?,
        ack_due_ms: r.try_get(22)?,
        on_site_due_ms: r.try_get(23)?,
        resolve_due_ms: r.try_get(24)?,
        ack_breached: r.try_get(25)?,
        on_site_breached: r.try_get(26)?,
        resolve_breached: r.try_get(27)?,
        escalation_level: u32::try_from(level)
            .map_err(|_| E::corrupt(format!("escalation level {level}")))?,
        reminders: r.try_get(29)?,
        repeat_of: r.try_get(30)?,
        ticket_kind: r.try_get(33)?,
    };
    Ok((
        t,
        SlaClocks {
            next_reminder_ms: r.try_get(31)?,
            hold_since_ms: r.try_get(32)?,
        },
    ))
}

/// `col = ANY($n)` with the values bound as one array parameter; an empty set matches
/// nothing.
pub(crate) fn any_of(col: &str, n: usize) -> String {
    format!("{col} = ANY(${n})")
}

pub(crate) fn load(db: &mut Db, id: i64) -> Result<(Ticket, SlaClocks), E> {
    let row = db
        .opt(&format!("SELECT {COLS} FROM tickets WHERE id = $1"), &[&id])?
        .ok_or(E::Ticket(TicketError::NotFound(id)))?;
    from_row(&row)
}

/// Append an audit record.
#[allow(clippy::too_many_arguments)]
pub(crate) fn audit(
    db: &mut Db,
    ticket_id: i64,
    ts_ms: i64,
    actor: &str,
    action: &str,
    from: Option<TicketState>,
    to: Option<TicketState>,
    note: &str,
) -> Result<(), E> {
    db.exec(
        "INSERT INTO ticket_audit(ticket_id, ts_ms, actor, action, from_state, to_state, note)
         VALUES($1,$2,$3,$4,$5,$6,$7)",
        &[
            &ticket_id,
            &ts_ms,
            &actor,
            &action,
            &from.map(|s| s.as_str()),
            &to.map(|s| s.as_str()),
            &note,
        ],
    )?;
    Ok(())
}
