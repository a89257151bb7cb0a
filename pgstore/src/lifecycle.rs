//! Writes of the ticket lifecycle: open (or repeat), condition cleared, moves between
//! states with their audit records, and a round's work order. The caller runs each in
//! one transaction (see `PgTicketStore::run`), so every one is all-or-nothing.

use crate::conn::Db;
use crate::schema::{audit, load};
use crate::sla::{apply_transition, next_check};
use crate::PgStoreError;
use steward_tickets::{
    Clear, ClearOutcome, OnClear, Priority, RaiseOutcome, SlaPolicy, Ticket, TicketError,
    TicketState, WorkOrder, SYSTEM_ACTOR,
};

type E = PgStoreError;

/// A ticket resolved this recently before a new one of the same device and rule makes the
/// new one a repeat failure (docs/rating.md).
const WEEK_MS: i64 = 7 * 86_400_000;

/// What opening a ticket needs, whatever raised it.
pub(crate) struct NewTicket<'a> {
    pub(crate) device_id: &'a str,
    pub(crate) rule_id: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) compound: &'a str,
    pub(crate) building: &'a str,
    pub(crate) station: &'a str,
    pub(crate) priority: Priority,
    pub(crate) title: &'a str,
    pub(crate) detail: &'a str,
    pub(crate) ts_ms: i64,
}

const ACTIVE_ID: &str = "SELECT id FROM tickets WHERE device_id=$1 AND rule_id=$2 AND active";

/// `repeat_actor`: when set, a repeat keeps the ticket's detail and records the new
/// one in the audit trail under this actor (each resident's words are kept); when not,
/// a repeat replaces the detail with the latest metric values.
pub(crate) fn raise(
    db: &mut Db,
    r: &NewTicket,
    policy: &SlaPolicy,
    repeat_actor: Option<&str>,
) -> Result<RaiseOutcome, E> {
    if repeat_actor.is_none() {
        // A device whose PUBACK was still held when the hub died (or when its connection
        // dropped) sends the message again; the rules see it a second time, with the
        // same device time. What the latest ticket already counted is not counted again.
        let latest = db.opt(
            "SELECT id, last_seen_ms FROM tickets WHERE device_id=$1 AND rule_id=$2
             ORDER BY id DESC LIMIT 1",
            &[&r.device_id, &r.rule_id],
        )?;
        if let Some(row) = latest {
            let (id, seen): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            if seen >= r.ts_ms {
                return Ok(RaiseOutcome {
                    ticket: load(db, id)?.0,
                    created: false,
                    replayed: true,
                });
            }
        }
    }
    let existing = db.opt(ACTIVE_ID, &[&r.device_id, &r.rule_id])?;
    let (id, created) = match existing {
        Some(row) => {
            let id: i64 = row.try_get(0)?;
            match repeat_actor {
                None => {
                    db.exec(
                        "UPDATE tickets SET occurrences = occurrences + 1,
                            last_seen_ms = GREATEST(last_seen_ms, $2), condition_active = TRUE,
                            detail = $3
                         WHERE id = $1",
                        &[&id, &r.ts_ms, &r.detail],
                    )?;
                }
                Some(actor) => {
                    db.exec(
                        "UPDATE tickets SET occurrences = occurrences + 1,
                            last_seen_ms = GREATEST(last_seen_ms, $2), condition_active = TRUE
                         WHERE id = $1",
                        &[&id, &r.ts_ms],
                    )?;
                    audit(db, id, r.ts_ms, actor, "reported", None, None, r.detail)?;
                }
            }
            (id, false)
        }
        None => (insert(db, r, policy, repeat_actor)?, true),
    };
    Ok(RaiseOutcome {
        ticket: load(db, id)?.0,
        created,
        replayed: false,
    })
}

fn insert(
    db: &mut Db,
    r: &NewTicket,
    policy: &SlaPolicy,
    repeat_actor: Option<&str>,
) -> Result<i64, E> {
    let repeat_of: Option<i64> = db
        .opt(
            "SELECT id FROM tickets WHERE device_id=$1 AND rule_id=$2
               AND resolved_ms IS NOT NULL AND resolved_ms >= $3 AND resolved_ms <= $4
             ORDER BY resolved_ms DESC LIMIT 1",
            &[&r.device_id, &r.rule_id, &(r.ts_ms - WEEK_MS), &r.ts_ms],
        )?
        .map(|row| row.try_get(0))
        .transpose()?;
    let t = policy.sla.targets(r.priority);
    let ack_due = r.ts_ms + t.ack_ms;
    let next_reminder = r.ts_ms + policy.reminder_interval_ms.max(1_000);
    let mut next = ack_due.min(next_reminder);
    for d in [t.on_site_ms, t.resolve_ms].into_iter().flatten() {
        next = next.min(r.ts_ms + d);
    }
    let row = db.one(
        "INSERT INTO tickets(device_id, rule_id, kind, compound, building, station,
            priority, title, detail, state, active, opened_ms, last_seen_ms,
            occurrences, condition_active, ack_due_ms, on_site_due_ms,
            resolve_due_ms, next_reminder_ms, next_check_ms, repeat_of)
         VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,'open',TRUE,$10,$10,1,TRUE,$11,$12,$13,$14,$15,$16)
         RETURNING id",
        &[
            &r.device_id,
            &r.rule_id,
            &r.kind,
            &r.compound,
            &r.building,
            &r.station,
            &r.priority.as_str(),
            &r.title,
            &r.detail,
            &r.ts_ms,
            &ack_due,
            &t.on_site_ms.map(|d| r.ts_ms + d),
            &t.resolve_ms.map(|d| r.ts_ms + d),
            &next_reminder,
            &next,
            &repeat_of,
        ],
    )?;
    let id: i64 = row.try_get(0)?;
    audit(
        db,
        id,
        r.ts_ms,
        repeat_actor.unwrap_or(SYSTEM_ACTOR),
        "raised",
        None,
        Some(TicketState::Open),
        r.detail,
    )?;
    Ok(id)
}

/// Record that the condition cleared; resolve or close when the rule says so.
pub(crate) fn condition_cleared(db: &mut Db, c: &Clear) -> Result<Option<ClearOutcome>, E> {
    let Some(row) = db.opt(ACTIVE_ID, &[&c.device_id, &c.rule_id])? else {
        return Ok(None);
    };
    let id: i64 = row.try_get(0)?;
    db.exec(
        "UPDATE tickets SET condition_active = FALSE, cleared_ms = $2 WHERE id = $1",
        &[&id, &c.ts_ms],
    )?;
    audit(
        db,
        id,
        c.ts_ms,
        SYSTEM_ACTOR,
        "condition_cleared",
        None,
        None,
        "condition no longer holds",
    )?;
    let mut new_state = None;
    if matches!(c.on_clear, OnClear::Resolve | OnClear::Close) {
        let note = "condition cleared";
        transition(db, id, TicketState::Resolved, SYSTEM_ACTOR, note, c.ts_ms)?;
        new_state = Some(TicketState::Resolved);
        if c.on_clear == OnClear::Close {
            transition(db, id, TicketState::Closed, SYSTEM_ACTOR, note, c.ts_ms)?;
            new_state = Some(TicketState::Closed);
        }
    }
    Ok(Some(ClearOutcome {
        ticket: load(db, id)?.0,
        new_state,
    }))
}

/// Move a ticket along its lifecycle; illegal moves are refused and change nothing.
pub(crate) fn transition(
    db: &mut Db,
    id: i64,
    to: TicketState,
    actor: &str,
    note: &str,
    now_ms: i64,
) -> Result<Ticket, E> {
    if actor.trim().is_empty() {
        return Err(TicketError::NoActor { id }.into());
    }
    // Locked so two nodes moving one ticket at once apply their moves one after the
    // other, each checking the state the other left.
    let row = db
        .opt(
            &format!(
                "SELECT {} FROM tickets WHERE id = $1 FOR UPDATE",
                crate::schema::COLS
            ),
            &[&id],
        )?
        .ok_or(E::Ticket(TicketError::NotFound(id)))?;
    let (mut t, mut c) = crate::schema::from_row(&row)?;
    let from = t.state;
    if !from.can_go_to(to) {
        return Err(TicketError::IllegalTransition { id, from, to }.into());
    }
    apply_transition(&mut t, &mut c, to, now_ms);
    db.exec(
        "UPDATE tickets SET state=$2, active=$3, acknowledged_ms=$4, dispatched_ms=$5,
            on_site_ms=$6, resolved_ms=$7, closed_ms=$8, cancelled_ms=$9, ack_due_ms=$10,
            on_site_due_ms=$11, resolve_due_ms=$12, next_reminder_ms=$13,
            hold_since_ms=$14, next_check_ms=$15
         WHERE id=$1",
        &[
            &id,
            &to.as_str(),
            &to.is_active(),
            &t.acknowledged_ms,
            &t.dispatched_ms,
            &t.on_site_ms,
            &t.resolved_ms,
            &t.closed_ms,
            &t.cancelled_ms,
            &t.ack_due_ms,
            &t.on_site_due_ms,
            &t.resolve_due_ms,
            &c.next_reminder_ms,
            &c.hold_since_ms,
            &next_check(&t, &c),
        ],
    )?;
    audit(
        db,
        id,
        now_ms,
        actor,
        "transition",
        Some(from),
        Some(to),
        note,
    )?;
    Ok(t)
}

/// Open a round's ticket (a ticket opened like a rule's, then given its ticket kind and,
/// for a work order, the round's deadline), or return the one already opened for the
/// same device and rule, whatever its state.
pub(crate) fn open_work_order(
    db: &mut Db,
    w: &WorkOrder,
    policy: &SlaPolicy,
) -> Result<RaiseOutcome, E> {
    let existing = db.opt(
        "SELECT id FROM tickets WHERE device_id=$1 AND rule_id=$2 ORDER BY id DESC LIMIT 1",
        &[&w.device_id, &w.rule_id],
    )?;
    if let Some(row) = existing {
        let id: i64 = row.try_get(0)?;
        return Ok(RaiseOutcome {
            ticket: load(db, id)?.0,
            created: false,
            replayed: false,
        });
    }
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
    let id = raise(db, &new, policy, None)?.ticket.id;
    let Some(due) = w.resolve_due_ms else {
        db.exec(
            "UPDATE tickets SET ticket_kind=$2, condition_active=FALSE WHERE id=$1",
            &[&id, &w.ticket_kind],
        )?;
        return created(db, id);
    };
    let (mut t, mut c) = load(db, id)?;
    // A planned job is not an alarm: no reminders to acknowledge it.
    c.next_reminder_ms = None;
    t.ack_due_ms = due;
    t.on_site_due_ms = None;
    t.resolve_due_ms = Some(due);
    db.exec(
        "UPDATE tickets SET ticket_kind=$2, ack_due_ms=$3, on_site_due_ms=NULL,
            resolve_due_ms=$3, condition_active=FALSE, next_reminder_ms=NULL, next_check_ms=$4
         WHERE id=$1",
        &[&id, &w.ticket_kind, &due, &next_check(&t, &c)],
    )?;
    created(db, id)
}

fn created(db: &mut Db, id: i64) -> Result<RaiseOutcome, E> {
    Ok(RaiseOutcome {
        ticket: load(db, id)?.0,
        created: true,
        replayed: false,
    })
}
