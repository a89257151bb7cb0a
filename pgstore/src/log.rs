//! The SLA clock's writes, the durable ticket event log and the rules' saved
//! per-device state.

use crate::conn::Db;
use crate::schema::{audit, from_row, COLS};
use crate::sla::{self, next_check};
use crate::PgStoreError;
use steward_tickets::{
    SlaEvent, SlaPolicy, TicketError, TicketEvent, EVENT_LOG_KEEP, SYSTEM_ACTOR,
};

type E = PgStoreError;

/// Reminders and SLA breaches due at `now_ms`. A breach escalates one level and is
/// written to the audit trail; reminders repeat until the ticket is acknowledged.
pub(crate) fn sla_tick(db: &mut Db, now_ms: i64, policy: &SlaPolicy) -> Result<Vec<SlaEvent>, E> {
    // Locked rows: two nodes ticking at once must not remind or escalate twice; the
    // second skips what the first is working on, its next tick sees the result.
    let rows = db.query(
        &format!(
            "SELECT {COLS} FROM tickets WHERE active AND next_check_ms <= $1 ORDER BY id
             FOR UPDATE SKIP LOCKED"
        ),
        &[&now_ms],
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (mut t, mut c) = from_row(&row)?;
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
                    db,
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
        db.exec(
            "UPDATE tickets SET reminders=$2, next_reminder_ms=$3, ack_breached=$4,
                on_site_breached=$5, resolve_breached=$6, escalation_level=$7,
                next_check_ms=$8 WHERE id=$1",
            &[
                &t.id,
                &t.reminders,
                &c.next_reminder_ms,
                &t.ack_breached,
                &t.on_site_breached,
                &t.resolve_breached,
                &i64::from(t.escalation_level),
                &next_check(&t, &c),
            ],
        )?;
    }
    Ok(out)
}

/// Append `event` (JSON); the caller publishes the id after the commit, still holding
/// the connection, so ids are published in order.
pub(crate) fn append_event(db: &mut Db, event: &TicketEvent) -> Result<i64, E> {
    let json = serde_json::to_string(event).map_err(|e| TicketError::Encode(e.to_string()))?;
    let id: i64 = db
        .one(
            "INSERT INTO ticket_event_log(ts_ms, event) VALUES($1, $2) RETURNING id",
            &[&event.ts_ms, &json],
        )?
        .try_get(0)?;
    if id % 1_000 == 0 {
        db.exec(
            "DELETE FROM ticket_event_log WHERE id <= $1",
            &[&(id - EVENT_LOG_KEEP)],
        )?;
    }
    Ok(id)
}

/// The id of the newest logged event (0 when none).
pub(crate) fn last_event_id(db: &mut Db) -> Result<i64, E> {
    Ok(db
        .one(
            "SELECT COALESCE(MAX(id), 0)::BIGINT FROM ticket_event_log",
            &[],
        )?
        .try_get(0)?)
}

/// Logged events with an id above `after_id`, oldest first, at most `limit`.
pub(crate) fn events_after(db: &mut Db, after_id: i64, limit: u32) -> Result<Vec<TicketEvent>, E> {
    let rows = db.query(
        "SELECT id, event FROM ticket_event_log WHERE id > $1 ORDER BY id LIMIT $2",
        &[&after_id, &i64::from(limit)],
    )?;
    rows.iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            let json: String = r.try_get(1)?;
            let mut ev: TicketEvent =
                serde_json::from_str(&json).map_err(|e| TicketError::EventLog {
                    id,
                    message: e.to_string(),
                })?;
            ev.event_id = Some(id);
            Ok(ev)
        })
        .collect()
}

pub(crate) fn save_rule_states(
    db: &mut Db,
    rows: &[(String, String)],
    now_ms: i64,
) -> Result<(), E> {
    if rows.is_empty() {
        return Ok(());
    }
    // One statement for the lot; a device named twice keeps its last state (one
    // INSERT .. ON CONFLICT may not touch a row twice).
    let mut last: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
    for (id, json) in rows {
        last.insert(id, json);
    }
    let (ids, states): (Vec<&str>, Vec<&str>) = last.into_iter().unzip();
    db.exec(
        "INSERT INTO rule_state(device_id, state, saved_ms)
         SELECT d, s, $3 FROM UNNEST($1::TEXT[], $2::TEXT[]) AS u(d, s)
         ON CONFLICT(device_id) DO UPDATE SET state=excluded.state, saved_ms=excluded.saved_ms",
        &[&ids, &states, &now_ms],
    )?;
    Ok(())
}

pub(crate) fn load_rule_states(db: &mut Db) -> Result<Vec<(String, String)>, E> {
    let rows = db.query(
        "SELECT device_id, state FROM rule_state ORDER BY device_id",
        &[],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Saved states of these devices only, by device id.
pub(crate) fn load_rule_states_for(
    db: &mut Db,
    ids: &[String],
) -> Result<Vec<(String, String)>, E> {
    let rows = db.query(
        "SELECT device_id, state FROM rule_state WHERE device_id = ANY($1) ORDER BY device_id",
        &[&ids],
    )?;
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}
