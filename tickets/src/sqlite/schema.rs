//! The SQLite schema of tickets, audit trail, event log and rule state, and the row
//! helpers every part of the SQLite store shares.

use crate::request::Priority;
use crate::sla::SlaClocks;
use crate::state::{Ticket, TicketState};
use crate::TicketError;
use rusqlite::{params, Connection, OptionalExtension, Row};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    compound TEXT NOT NULL,
    building TEXT NOT NULL,
    station TEXT NOT NULL,
    priority TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    state TEXT NOT NULL,
    active INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    occurrences INTEGER NOT NULL,
    condition_active INTEGER NOT NULL,
    cleared_ms INTEGER,
    acknowledged_ms INTEGER,
    dispatched_ms INTEGER,
    on_site_ms INTEGER,
    resolved_ms INTEGER,
    closed_ms INTEGER,
    cancelled_ms INTEGER,
    ack_due_ms INTEGER NOT NULL,
    on_site_due_ms INTEGER,
    resolve_due_ms INTEGER,
    ack_breached INTEGER NOT NULL DEFAULT 0,
    on_site_breached INTEGER NOT NULL DEFAULT 0,
    resolve_breached INTEGER NOT NULL DEFAULT 0,
    escalation_level INTEGER NOT NULL DEFAULT 1,
    reminders INTEGER NOT NULL DEFAULT 0,
    next_reminder_ms INTEGER,
    hold_since_ms INTEGER,
    next_check_ms INTEGER,
    repeat_of INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_active ON tickets(device_id, rule_id) WHERE active = 1;
CREATE INDEX IF NOT EXISTS tickets_check ON tickets(next_check_ms) WHERE active = 1;
CREATE INDEX IF NOT EXISTS tickets_station ON tickets(station, opened_ms);
CREATE INDEX IF NOT EXISTS tickets_compound ON tickets(compound, opened_ms);
CREATE INDEX IF NOT EXISTS tickets_device_rule ON tickets(device_id, rule_id, resolved_ms);
CREATE TABLE IF NOT EXISTS ticket_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_audit_ticket ON ticket_audit(ticket_id, id);
CREATE TABLE IF NOT EXISTS ticket_event_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_state (
    device_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    saved_ms INTEGER NOT NULL
);
";

/// Tables of the dispatcher's desk and resident tracking (issue 14). Only new tables, so
/// the same statements bring an existing database up to date.
pub(super) const DESK_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS ticket_callers (
    ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),
    source TEXT NOT NULL,
    name TEXT NOT NULL,
    phone TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ticket_holdings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    station TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER
);
CREATE INDEX IF NOT EXISTS ticket_holdings_ticket ON ticket_holdings(ticket_id, id);
CREATE INDEX IF NOT EXISTS ticket_holdings_station ON ticket_holdings(station);
CREATE TABLE IF NOT EXISTS ticket_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    from_id INTEGER NOT NULL REFERENCES tickets(id),
    to_id INTEGER NOT NULL REFERENCES tickets(id),
    relation TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_links_from ON ticket_links(from_id);
CREATE INDEX IF NOT EXISTS ticket_links_to ON ticket_links(to_id);
CREATE TABLE IF NOT EXISTS resident_codes (
    code TEXT PRIMARY KEY,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    category TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS resident_codes_ticket ON resident_codes(ticket_id);
CREATE TABLE IF NOT EXISTS resident_ratings (
    code TEXT PRIMARY KEY REFERENCES resident_codes(code),
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    station TEXT NOT NULL,
    stars INTEGER NOT NULL CHECK (stars BETWEEN 1 AND 5),
    comment TEXT NOT NULL,
    ts_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS resident_ratings_ticket ON resident_ratings(ticket_id);
";

pub(super) const COLS: &str =
    "id, device_id, rule_id, kind, compound, building, station, priority, title, \
    detail, state, opened_ms, last_seen_ms, occurrences, condition_active, cleared_ms, \
    acknowledged_ms, dispatched_ms, on_site_ms, resolved_ms, closed_ms, cancelled_ms, \
    ack_due_ms, on_site_due_ms, resolve_due_ms, ack_breached, on_site_breached, \
    resolve_breached, escalation_level, reminders, repeat_of, next_reminder_ms, hold_since_ms, \
    ticket_kind";

pub(super) fn from_row(r: &Row) -> rusqlite::Result<(Ticket, SlaClocks)> {
    let prio: String = r.get(7)?;
    let state: String = r.get(10)?;
    let bad = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(TicketError::Corrupt(what)),
        )
    };
    let t = Ticket {
        id: r.get(0)?,
        device_id: r.get(1)?,
        rule_id: r.get(2)?,
        kind: r.get(3)?,
        compound: r.get(4)?,
        building: r.get(5)?,
        station: r.get(6)?,
        priority: Priority::parse(&prio).ok_or_else(|| bad(format!("priority `{prio}`")))?,
        title: r.get(8)?,
        detail: r.get(9)?,
        state: TicketState::parse(&state).ok_or_else(|| bad(format!("state `{state}`")))?,
        opened_ms: r.get(11)?,
        last_seen_ms: r.get(12)?,
        occurrences: r.get(13)?,
        condition_active: r.get(14)?,
        cleared_ms: r.get(15)?,
        acknowledged_ms: r.get(16)?,
        dispatched_ms: r.get(17)?,
        on_site_ms: r.get(18)?,
        resolved_ms: r.get(19)?,
        closed_ms: r.get(20)?,
        cancelled_ms: r.get(21)?,
        ack_due_ms: r.get(22)?,
        on_site_due_ms: r.get(23)?,
        resolve_due_ms: r.get(24)?,
        ack_breached: r.get(25)?,
        on_site_breached: r.get(26)?,
        resolve_breached: r.get(27)?,
        escalation_level: r.get(28)?,
        reminders: r.get(29)?,
        repeat_of: r.get(30)?,
        ticket_kind: r.get(33)?,
    };
    Ok((
        t,
        SlaClocks {
            next_reminder_ms: r.get(31)?,
            hold_since_ms: r.get(32)?,
        },
    ))
}

/// Columns added after the first release, for databases created before them.
pub(super) fn migrate(conn: &Connection) -> Result<(), TicketError> {
    let has = |col: &str| -> Result<bool, TicketError> {
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM pragma_table_info('tickets') WHERE name = ?1",
            [col],
            |r| r.get(0),
        )?;
        Ok(n > 0)
    };
    if !has("ticket_kind")? {
        conn.execute_batch(
            "ALTER TABLE tickets ADD COLUMN ticket_kind TEXT NOT NULL DEFAULT 'incident'",
        )?;
    }
    Ok(())
}

/// `col IN (?n, ...)` with the values bound as parameters.
pub(super) fn any_of(
    col: &str,
    values: impl Iterator<Item = String>,
    args: &mut Vec<rusqlite::types::Value>,
) -> String {
    let marks: Vec<String> = values
        .map(|v| {
            args.push(rusqlite::types::Value::Text(v));
            format!("?{}", args.len())
        })
        .collect();
    if marks.is_empty() {
        // An empty `IN ()` is not valid SQL in every engine; an empty set matches nothing.
        format!("{col} IN (NULL)")
    } else {
        format!("{col} IN ({})", marks.join(","))
    }
}

pub(super) fn load(conn: &Connection, id: i64) -> Result<(Ticket, SlaClocks), TicketError> {
    conn.prepare_cached(&format!("SELECT {COLS} FROM tickets WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .ok_or(TicketError::NotFound(id))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn audit(
    conn: &Connection,
    ticket_id: i64,
    ts_ms: i64,
    actor: &str,
    action: &str,
    from: Option<TicketState>,
    to: Option<TicketState>,
    note: &str,
) -> Result<(), TicketError> {
    conn.prepare_cached(
        "INSERT INTO ticket_audit(ticket_id, ts_ms, actor, action, from_state, to_state, note)
         VALUES(?1,?2,?3,?4,?5,?6,?7)",
    )?
    .execute(params![
        ticket_id,
        ts_ms,
        actor,
        action,
        from.map(|s| s.as_str()),
        to.map(|s| s.as_str()),
        note
    ])?;
    Ok(())
}
