//! Writes of the ticket lifecycle in SQLite: open (or repeat), condition cleared, and
//! moves between states, each with its audit record, all-or-nothing (a savepoint).

use super::schema::{audit, load};
use crate::request::{Clear, OnClear, Priority};
use crate::sla::{apply_transition, next_check, SlaPolicy};
use crate::state::{ClearOutcome, RaiseOutcome, Ticket, TicketState};
use crate::{TicketError, SYSTEM_ACTOR};
use rusqlite::{params, Connection, OptionalExtension};

/// A ticket resolved this recently before a new one of the same device and rule makes the
/// new one a repeat failure (docs/rating.md).
const WEEK_MS: i64 = 7 * 86_400_000;

/// What opening a ticket needs, whatever raised it.
pub(super) struct NewTicket<'a> {
    pub(super) device_id: &'a str,
    pub(super) rule_id: &'a str,
    pub(super) kind: &'a str,
    pub(super) compound: &'a str,
    pub(super) building: &'a str,
    pub(super) station: &'a str,
    pub(super) priority: Priority,
    pub(super) title: &'a str,
    pub(super) detail: &'a str,
    pub(super) ts_ms: i64,
}

/// `repeat_actor`: when set, a repeat keeps the ticket's detail and records the new
/// one in the audit trail under this actor (each resident's words are kept); when not,
/// a repeat replaces the detail with the latest metric values.
pub(super) fn raise(
    conn: &mut Connection,
    r: &NewTicket,
    policy: &SlaPolicy,
    repeat_actor: Option<&str>,
) -> Result<RaiseOutcome, TicketError> {
    let tx = conn.savepoint()?;
    if repeat_actor.is_none() {
        // A device whose PUBACK was still held when the hub died (or when its connection
        // dropped) sends the message again; the rules see it a second time, with the
        // same device time. What the latest ticket already counted is not counted again.
        let latest: Option<(i64, i64)> = tx
            .prepare_cached(
                "SELECT id, last_seen_ms FROM tickets WHERE device_id=?1 AND rule_id=?2
                 ORDER BY id DESC LIMIT 1",
            )?
            .query_row(params![r.device_id, r.rule_id], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        if let Some((id, _)) = latest.filter(|(_, seen)| *seen >= r.ts_ms) {
            let ticket = load(&tx, id)?.0;
            return Ok(RaiseOutcome {
                ticket,
                created: false,
                replayed: true,
            });
        }
    }
    let existing: Option<i64> = tx
        .prepare_cached("SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2 AND active=1")?
        .query_row(params![r.device_id, r.rule_id], |row| row.get(0))
        .optional()?;
    let (id, created) = match existing {
        Some(id) => {
            match repeat_actor {
                None => {
                    tx.prepare_cached(
                        "UPDATE tickets SET occurrences = occurrences + 1,
                            last_seen_ms = MAX(last_seen_ms, ?2), condition_active = 1,
                            detail = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![id, r.ts_ms, r.detail])?;
                }
                Some(actor) => {
                    tx.prepare_cached(
                        "UPDATE tickets SET occurrences = occurrences + 1,
                            last_seen_ms = MAX(last_seen_ms, ?2), condition_active = 1
                         WHERE id = ?1",
                    )?
                    .execute(params![id, r.ts_ms])?;
                    audit(&tx, id, r.ts_ms, actor, "reported", None, None, r.detail)?;
                }
            }
            (id, false)
        }
        None => {
            let repeat_of: Option<i64> = tx
                .prepare_cached(
                    "SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2
                       AND resolved_ms IS NOT NULL AND resolved_ms >= ?3 AND resolved_ms <= ?4
                     ORDER BY resolved_ms DESC LIMIT 1",
                )?
                .query_row(
                    params![r.device_id, r.rule_id, r.ts_ms - WEEK_MS, r.ts_ms],
                    |row| row.get(0),
                )
                .optional()?;
            let t = policy.sla.targets(r.priority);
            let ack_due = r.ts_ms + t.ack_ms;
            let next_reminder = r.ts_ms + policy.reminder_interval_ms.max(1_000);
            let mut next = ack_due.min(next_reminder);
            for d in [t.on_site_ms, t.resolve_ms].into_iter().flatten() {
                next = next.min(r.ts_ms + d);
            }
            tx.prepare_cached(
                "INSERT INTO tickets(device_id, rule_id, kind, compound, building, station,
                    priority, title, detail, state, active, opened_ms, last_seen_ms,
                    occurrences, condition_active, ack_due_ms, on_site_due_ms,
                    resolve_due_ms, next_reminder_ms, next_check_ms, repeat_of)
                 VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,'open',1,?10,?10,1,1,?11,?12,?13,?14,?15,?16)",
            )?
            .execute(params![
                r.device_id,
                r.rule_id,
                r.kind,
                r.compound,
                r.building,
                r.station,
                r.priority.as_str(),
                r.title,
                r.detail,
                r.ts_ms,
                ack_due,
                t.on_site_ms.map(|d| r.ts_ms + d),
                t.resolve_ms.map(|d| r.ts_ms + d),
                next_reminder,
                next,
                repeat_of,
            ])?;
            let id = tx.last_insert_rowid();
            audit(
                &tx,
                id,
                r.ts_ms,
                repeat_actor.unwrap_or(SYSTEM_ACTOR),
                "raised",
                None,
                Some(TicketState::Open),
                r.detail,
            )?;
            (id, true)
        }
    };
    let ticket = load(&tx, id)?.0;
    tx.commit()?;
    Ok(RaiseOutcome {
        ticket,
        created,
        replayed: false,
    })
}

/// Record that the condition cleared; resolve or close when the rule says so.
pub(super) fn condition_cleared(
    conn: &mut Connection,
    c: &Clear,
) -> Result<Option<ClearOutcome>, TicketError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2 AND active=1")?
        .query_row(params![c.device_id, c.rule_id], |row| row.get(0))
        .optional()?;
    let Some(id) = id else {
        return Ok(None);
    };
    {
        let tx = conn.savepoint()?;
        tx.prepare_cached(
            "UPDATE tickets SET condition_active = 0, cleared_ms = ?2 WHERE id = ?1",
        )?
        .execute(params![id, c.ts_ms])?;
        audit(
            &tx,
            id,
            c.ts_ms,
            SYSTEM_ACTOR,
            "condition_cleared",
            None,
            None,
            "condition no longer holds",
        )?;
        tx.commit()?;
    }
    let mut new_state = None;
    if matches!(c.on_clear, OnClear::Resolve | OnClear::Close) {
        let note = "condition cleared";
        transition(conn, id, TicketState::Resolved, SYSTEM_ACTOR, note, c.ts_ms)?;
        new_state = Some(TicketState::Resolved);
        if c.on_clear == OnClear::Close {
            transition(conn, id, TicketState::Closed, SYSTEM_ACTOR, note, c.ts_ms)?;
            new_state = Some(TicketState::Closed);
        }
    }
    Ok(Some(ClearOutcome {
        ticket: load(conn, id)?.0,
        new_state,
    }))
}

/// Move a ticket along its lifecycle; illegal moves are refused and change nothing.
pub(super) fn transition(
    conn: &mut Connection,
    id: i64,
    to: TicketState,
    actor: &str,
    note: &str,
    now_ms: i64,
) -> Result<Ticket, TicketError> {
    if actor.trim().is_empty() {
        return Err(TicketError::NoActor { id });
    }
    let tx = conn.savepoint()?;
    let (mut t, mut c) = load(&tx, id)?;
    let from = t.state;
    if !from.can_go_to(to) {
        return Err(TicketError::IllegalTransition { id, from, to });
    }
    apply_transition(&mut t, &mut c, to, now_ms);
    tx.prepare_cached(
        "UPDATE tickets SET state=?2, active=?3, acknowledged_ms=?4, dispatched_ms=?5,
            on_site_ms=?6, resolved_ms=?7, closed_ms=?8, cancelled_ms=?9, ack_due_ms=?10,
            on_site_due_ms=?11, resolve_due_ms=?12, next_reminder_ms=?13,
            hold_since_ms=?14, next_check_ms=?15
         WHERE id=?1",
    )?
    .execute(params![
        id,
        to.as_str(),
        to.is_active(),
        t.acknowledged_ms,
        t.dispatched_ms,
        t.on_site_ms,
        t.resolved_ms,
        t.closed_ms,
        t.cancelled_ms,
        t.ack_due_ms,
        t.on_site_due_ms,
        t.resolve_due_ms,
        c.next_reminder_ms,
        c.hold_since_ms,
        next_check(&t, &c),
    ])?;
    audit(
        &tx,
        id,
        now_ms,
        actor,
        "transition",
        Some(from),
        Some(to),
        note,
    )?;
    tx.commit()?;
    Ok(t)
}
