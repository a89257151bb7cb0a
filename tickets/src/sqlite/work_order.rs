//! Opening a round's ticket in SQLite: a ticket opened like a rule's, then given its
//! ticket kind and (for a work order) the round's deadline, in one savepoint.

use super::lifecycle::{raise, NewTicket};
use super::schema::load;
use crate::sla::{next_check, SlaPolicy};
use crate::state::RaiseOutcome;
use crate::work_order::WorkOrder;
use crate::TicketError;
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn open_work_order(
    conn: &mut Connection,
    w: &WorkOrder,
    policy: &SlaPolicy,
) -> Result<RaiseOutcome, TicketError> {
    let existing: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2 ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![w.device_id, w.rule_id], |r| r.get(0))
        .optional()?;
    if let Some(id) = existing {
        return Ok(RaiseOutcome {
            ticket: load(conn, id)?.0,
            created: false,
            replayed: false,
        });
    }
    // One outer savepoint by hand: `raise` takes the connection and nests its own.
    conn.execute_batch("SAVEPOINT work_order")?;
    match open_new(conn, w, policy) {
        Ok(ticket) => {
            conn.execute_batch("RELEASE work_order")?;
            Ok(RaiseOutcome {
                ticket,
                created: true,
                replayed: false,
            })
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK TO work_order; RELEASE work_order");
            Err(e)
        }
    }
}

fn open_new(
    conn: &mut Connection,
    w: &WorkOrder,
    policy: &SlaPolicy,
) -> Result<crate::state::Ticket, TicketError> {
    let new = NewTicket {
        device_id: &w.device_id,
        rule_id: &w.rule_id,
        kind: &w.kind,
        compound: &w.compound,
        building: &w.building,
        station: &w.station,
        priority: w.priority,
        title: &w.title,
        detail: &w.detail,
        ts_ms: w.ts_ms,
    };
    let id = raise(conn, &new, policy, None)?.ticket.id;
    let Some(due) = w.resolve_due_ms else {
        conn.prepare_cached("UPDATE tickets SET ticket_kind=?2, condition_active=0 WHERE id=?1")?
            .execute(params![id, w.ticket_kind])?;
        return Ok(load(conn, id)?.0);
    };
    let (mut t, mut c) = load(conn, id)?;
    // A planned job is not an alarm: no reminders to acknowledge it.
    c.next_reminder_ms = None;
    t.ack_due_ms = due;
    t.on_site_due_ms = None;
    t.resolve_due_ms = Some(due);
    conn.prepare_cached(
        "UPDATE tickets SET ticket_kind=?2, ack_due_ms=?3, on_site_due_ms=NULL,
            resolve_due_ms=?3, condition_active=0, next_reminder_ms=NULL, next_check_ms=?4
         WHERE id=?1",
    )?
    .execute(params![id, w.ticket_kind, due, next_check(&t, &c)])?;
    Ok(load(conn, id)?.0)
}
