//! The durable ticket event log and the rules' saved per-device state in SQLite.

use crate::events::{TicketEvent, EVENT_LOG_KEEP};
use crate::TicketError;
use rusqlite::{params, Connection};

/// Append `event` (JSON) and hand its id to `publish` while the caller still holds the
/// connection, so ids are published in order (see [`TicketStore::append_event`]).
///
/// [`TicketStore::append_event`]: crate::TicketStore::append_event
pub(super) fn append_event(
    conn: &Connection,
    event: &TicketEvent,
    publish: &mut dyn FnMut(i64),
) -> Result<i64, TicketError> {
    let json = serde_json::to_string(event).map_err(|e| TicketError::Encode(e.to_string()))?;
    conn.prepare_cached("INSERT INTO ticket_event_log(ts_ms, event) VALUES(?1, ?2)")?
        .execute(params![event.ts_ms, json])?;
    let id = conn.last_insert_rowid();
    if id % 1_000 == 0 {
        conn.prepare_cached("DELETE FROM ticket_event_log WHERE id <= ?1")?
            .execute([id - EVENT_LOG_KEEP])?;
    }
    publish(id);
    Ok(id)
}

/// The id of the newest logged event (0 when none).
pub(super) fn last_event_id(conn: &Connection) -> Result<i64, TicketError> {
    let id = conn
        .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM ticket_event_log")?
        .query_row([], |r| r.get(0))?;
    Ok(id)
}

/// Logged events with an id above `after_id`, oldest first, at most `limit`.
pub(super) fn events_after(
    conn: &Connection,
    after_id: i64,
    limit: u32,
) -> Result<Vec<TicketEvent>, TicketError> {
    let mut st =
        conn.prepare("SELECT id, event FROM ticket_event_log WHERE id > ?1 ORDER BY id LIMIT ?2")?;
    let rows = st
        .query_map(params![after_id, limit], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(id, json)| {
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

pub(super) fn save_rule_states(
    conn: &mut Connection,
    rows: &[(String, String)],
    now_ms: i64,
) -> Result<(), TicketError> {
    if rows.is_empty() {
        return Ok(());
    }
    let tx = conn.savepoint()?;
    {
        let mut st = tx.prepare(
            "INSERT INTO rule_state(device_id, state, saved_ms) VALUES(?1, ?2, ?3)
             ON CONFLICT(device_id) DO UPDATE SET state=excluded.state, saved_ms=excluded.saved_ms",
        )?;
        for (id, json) in rows {
            st.execute(params![id, json, now_ms])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub(super) fn load_rule_states(conn: &Connection) -> Result<Vec<(String, String)>, TicketError> {
    let mut st = conn.prepare("SELECT device_id, state FROM rule_state ORDER BY device_id")?;
    let rows = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}
