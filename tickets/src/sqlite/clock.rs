//! The SLA clock over SQLite: finds the tickets due at `now_ms`, applies
//! [`sla::tick`](crate::sla) to each and persists the result with an audit record per
//! breach, in one savepoint.

use super::schema::{audit, from_row, COLS};
use crate::sla::{self, next_check, SlaEvent, SlaPolicy};
use crate::{TicketError, SYSTEM_ACTOR};
use rusqlite::{params, Connection};

/// Reminders and SLA breaches due at `now_ms`. A breach escalates one level and is
/// written to the audit trail; reminders repeat until the ticket is acknowledged.
pub(super) fn sla_tick(
    conn: &mut Connection,
    now_ms: i64,
    policy: &SlaPolicy,
) -> Result<Vec<SlaEvent>, TicketError> {
    let tx = conn.savepoint()?;
    let due = {
        let mut st = tx.prepare(&format!(
            "SELECT {COLS} FROM tickets WHERE active = 1 AND next_check_ms <= ?1 ORDER BY id"
        ))?;
        let rows = st
            .query_map([now_ms], from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        rows
    };
    let mut out = Vec::new();
    for (mut t, mut c) in due {
        let events = sla::tick(&mut t, &mut c, now_ms, policy);
        for e in &events {
            if let SlaEvent::Breach {
                stage,
                level,
                audience,
                ..
            } = e
            {
                let note = format!(
                    "{} target missed; escalated to level {level} ({audience})",
                    stage.as_str()
                );
                audit(
                    &tx,
                    t.id,
                    now_ms,
                    SYSTEM_ACTOR,
                    "sla_breach",
                    None,
                    None,
                    &note,
                )?;
            }
        }
        out.extend(events);
        tx.prepare_cached(
            "UPDATE tickets SET reminders=?2, next_reminder_ms=?3, ack_breached=?4,
                on_site_breached=?5, resolve_breached=?6, escalation_level=?7,
                next_check_ms=?8 WHERE id=?1",
        )?
        .execute(params![
            t.id,
            t.reminders,
            c.next_reminder_ms,
            t.ack_breached,
            t.on_site_breached,
            t.resolve_breached,
            t.escalation_level,
            next_check(&t, &c),
        ])?;
    }
    tx.commit()?;
    Ok(out)
}
