//! Reads of the SQLite ticket store: one ticket, its audit trail, filtered lists and the
//! month of tickets a rating is computed from.

use super::schema::{any_of, from_row, load, COLS};
use crate::rating::Rating;
use crate::state::{AuditRecord, Ticket, TicketDetail, TicketFilter, TicketState};
use crate::TicketError;
use rusqlite::{params, Connection, OptionalExtension};

pub(super) fn ticket(conn: &Connection, id: i64) -> Result<Ticket, TicketError> {
    Ok(load(conn, id)?.0)
}

/// A ticket with its audit trail, oldest record first.
pub(super) fn get(conn: &Connection, id: i64) -> Result<TicketDetail, TicketError> {
    let ticket = load(conn, id)?.0;
    let mut st = conn.prepare(
        "SELECT id, ticket_id, ts_ms, actor, action, from_state, to_state, note
         FROM ticket_audit WHERE ticket_id = ?1 ORDER BY id",
    )?;
    let audit = st
        .query_map([id], |r| {
            let from: Option<String> = r.get(5)?;
            let to: Option<String> = r.get(6)?;
            Ok(AuditRecord {
                id: r.get(0)?,
                ticket_id: r.get(1)?,
                ts_ms: r.get(2)?,
                actor: r.get(3)?,
                action: r.get(4)?,
                from_state: from.as_deref().and_then(TicketState::parse),
                to_state: to.as_deref().and_then(TicketState::parse),
                note: r.get(7)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(TicketDetail { ticket, audit })
}

/// The active ticket of a device and rule, if any.
pub(super) fn active_for(
    conn: &Connection,
    device_id: &str,
    rule_id: &str,
) -> Result<Option<Ticket>, TicketError> {
    let id: Option<i64> = conn
        .prepare_cached("SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2 AND active=1")?
        .query_row(params![device_id, rule_id], |r| r.get(0))
        .optional()?;
    id.map(|id| load(conn, id).map(|x| x.0)).transpose()
}

/// Tickets matching every given filter, newest first.
pub(super) fn list(conn: &Connection, f: &TicketFilter) -> Result<Vec<Ticket>, TicketError> {
    let mut sql = format!("SELECT {COLS} FROM tickets WHERE 1=1");
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    let mut add = |cond: &str, v: rusqlite::types::Value| {
        args.push(v);
        sql.push_str(&format!(" AND {cond} ?{}", args.len()));
    };
    use rusqlite::types::Value as V;
    if let Some(s) = &f.station {
        add("station =", V::Text(s.clone()));
    }
    if let Some(s) = &f.compound {
        add("compound =", V::Text(s.clone()));
    }
    if let Some(s) = &f.device_id {
        add("device_id =", V::Text(s.clone()));
    }
    if let Some(s) = &f.rule_id {
        add("rule_id =", V::Text(s.clone()));
    }
    if let Some(p) = f.priority {
        add("priority =", V::Text(p.as_str().into()));
    }
    if let Some(s) = f.state {
        add("state =", V::Text(s.as_str().into()));
    }
    if f.active_only {
        add("active =", V::Integer(1));
    }
    if let Some(t) = f.from_ms {
        add("opened_ms >=", V::Integer(t));
    }
    if let Some(t) = f.to_ms {
        add("opened_ms <", V::Integer(t));
    }
    if !f.priorities.is_empty() {
        let c = any_of(
            "priority",
            f.priorities.iter().map(|p| p.as_str().to_string()),
            &mut args,
        );
        sql.push_str(&format!(" AND {c}"));
    }
    if !f.states.is_empty() {
        let c = any_of(
            "state",
            f.states.iter().map(|s| s.as_str().to_string()),
            &mut args,
        );
        sql.push_str(&format!(" AND {c}"));
    }
    if let Some(w) = &f.within {
        let a = any_of("station", w.stations.iter().cloned(), &mut args);
        let b = any_of("compound", w.compounds.iter().cloned(), &mut args);
        let c = any_of("building", w.buildings.iter().cloned(), &mut args);
        sql.push_str(&format!(" AND ({a} OR {b} OR {c})"));
    }
    sql.push_str(&format!(
        " ORDER BY opened_ms DESC, id DESC LIMIT {} OFFSET {}",
        f.limit.unwrap_or(500).min(100_000),
        f.offset.unwrap_or(0)
    ));
    let mut st = conn.prepare(&sql)?;
    let rows = st
        .query_map(rusqlite::params_from_iter(args), |r| {
            from_row(r).map(|x| x.0)
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Service rating of a station or a compound (whichever `scope` names) for a month
/// `YYYY-MM` (UTC), by the formula in docs/rating.md: a transferred ticket counts for
/// each station that held it, split as [`dispatch::rating`](super::dispatch) says.
pub(super) fn rating(conn: &Connection, scope: &str, month: &str) -> Result<Rating, TicketError> {
    super::dispatch::rating(conn, scope, month)
}
