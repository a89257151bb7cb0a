//! Reads: one ticket, its audit trail, the active ticket of a device and rule, and
//! filtered lists.

use crate::conn::Db;
use crate::schema::{any_of, from_row, load, COLS};
use crate::PgStoreError;
use postgres::types::ToSql;
use steward_tickets::{AuditRecord, Ticket, TicketDetail, TicketFilter, TicketState};

type E = PgStoreError;

/// A ticket with its audit trail, oldest record first.
pub(crate) fn get(db: &mut Db, id: i64) -> Result<TicketDetail, E> {
    let ticket = load(db, id)?.0;
    let rows = db.query(
        "SELECT id, ticket_id, ts_ms, actor, action, from_state, to_state, note
         FROM ticket_audit WHERE ticket_id = $1 ORDER BY id",
        &[&id],
    )?;
    let audit = rows
        .iter()
        .map(|r| {
            let from: Option<String> = r.try_get(5)?;
            let to: Option<String> = r.try_get(6)?;
            Ok(AuditRecord {
                id: r.try_get(0)?,
                ticket_id: r.try_get(1)?,
                ts_ms: r.try_get(2)?,
                actor: r.try_get(3)?,
                action: r.try_get(4)?,
                from_state: from.as_deref().and_then(TicketState::parse),
                to_state: to.as_deref().and_then(TicketState::parse),
                note: r.try_get(7)?,
            })
        })
        .collect::<Result<Vec<_>, E>>()?;
    Ok(TicketDetail { ticket, audit })
}

/// The active ticket of a device and rule, if any.
pub(crate) fn active_for(db: &mut Db, device_id: &str, rule_id: &str) -> Result<Option<Ticket>, E> {
    let row = db.opt(
        &format!("SELECT {COLS} FROM tickets WHERE device_id=$1 AND rule_id=$2 AND active"),
        &[&device_id, &rule_id],
    )?;
    row.map(|r| from_row(&r).map(|x| x.0)).transpose()
}

/// Tickets matching every given filter, newest first.
pub(crate) fn list(db: &mut Db, f: &TicketFilter) -> Result<Vec<Ticket>, E> {
    let mut sql = format!("SELECT {COLS} FROM tickets WHERE TRUE");
    let mut args: Vec<Box<dyn ToSql + Sync>> = Vec::new();
    let mut add = |cond: &str, v: Box<dyn ToSql + Sync>, sql: &mut String| {
        args.push(v);
        sql.push_str(&format!(" AND {cond} ${}", args.len()));
        args.len()
    };
    if let Some(s) = &f.station {
        add("station =", Box::new(s.clone()), &mut sql);
    }
    if let Some(s) = &f.compound {
        add("compound =", Box::new(s.clone()), &mut sql);
    }
    if let Some(s) = &f.device_id {
        add("device_id =", Box::new(s.clone()), &mut sql);
    }
    if let Some(s) = &f.rule_id {
        add("rule_id =", Box::new(s.clone()), &mut sql);
    }
    if let Some(p) = f.priority {
        add("priority =", Box::new(p.as_str().to_string()), &mut sql);
    }
    if let Some(s) = f.state {
        add("state =", Box::new(s.as_str().to_string()), &mut sql);
    }
    if f.active_only {
        sql.push_str(" AND active");
    }
    if let Some(t) = f.from_ms {
        add("opened_ms >=", Box::new(t), &mut sql);
    }
    if let Some(t) = f.to_ms {
        add("opened_ms <", Box::new(t), &mut sql);
    }
    let mut any = |col: &str, values: Vec<String>| {
        args.push(Box::new(values));
        any_of(col, args.len())
    };
    if !f.priorities.is_empty() {
        let v = f
            .priorities
            .iter()
            .map(|p| p.as_str().to_string())
            .collect();
        let c = any("priority", v);
        sql.push_str(&format!(" AND {c}"));
    }
    if !f.states.is_empty() {
        let v = f.states.iter().map(|s| s.as_str().to_string()).collect();
        let c = any("state", v);
        sql.push_str(&format!(" AND {c}"));
    }
    if let Some(w) = &f.within {
        let a = any("station", w.stations.clone());
        let b = any("compound", w.compounds.clone());
        let c = any("building", w.buildings.clone());
        sql.push_str(&format!(" AND ({a} OR {b} OR {c})"));
    }
    sql.push_str(&format!(
        " ORDER BY opened_ms DESC, id DESC LIMIT {} OFFSET {}",
        f.limit.unwrap_or(500).min(100_000),
        f.offset.unwrap_or(0)
    ));
    let params: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| b.as_ref()).collect();
    db.dynamic(&sql, &params)?
        .iter()
        .map(|r| from_row(r).map(|x| x.0))
        .collect()
}
