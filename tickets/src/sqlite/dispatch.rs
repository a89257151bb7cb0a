//! The dispatcher's desk and resident tracking in SQLite: calls with their caller,
//! transfers with the holding history, merges, links, tracking codes and residents'
//! ratings. Tables in [`DESK_SCHEMA`](super::schema::DESK_SCHEMA).

use super::lifecycle::{self, NewTicket};
use super::schema::{audit, load};
use crate::dispatch::{
    CallTicket, Caller, Holding, LinkRelation, ResidentRating, TicketLink, Tracked, CALL_KIND,
    SOURCE_PHONE,
};
use crate::sla::SlaPolicy;
use crate::state::{RaiseOutcome, Ticket, TicketState};
use crate::TicketError;
use rusqlite::{params, Connection, OptionalExtension};

/// Run `f` inside a named savepoint: functions of the lifecycle open savepoints of their
/// own on the connection, which nest inside this one.
fn atomically<T>(
    conn: &mut Connection,
    f: impl FnOnce(&mut Connection) -> Result<T, TicketError>,
) -> Result<T, TicketError> {
    conn.execute_batch("SAVEPOINT desk")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE desk")?;
            Ok(v)
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO desk; RELEASE desk")?;
            Err(e)
        }
    }
}

fn need_actor(id: i64, actor: &str) -> Result<(), TicketError> {
    if actor.trim().is_empty() {
        return Err(TicketError::NoActor { id });
    }
    Ok(())
}

pub(super) fn call_in(
    conn: &mut Connection,
    c: &CallTicket,
    policy: &SlaPolicy,
    actor: &str,
) -> Result<RaiseOutcome, TicketError> {
    need_actor(0, actor)?;
    // Each call is its own ticket: a rule id no other ticket has keeps two calls about
    // the same compound and category from being folded into one.
    let rule_id = format!("call-{}-{}", c.category, crate::new_tracking_code());
    let device_id = format!("call:{}", c.compound);
    let new = NewTicket {
        device_id: &device_id,
        rule_id: &rule_id,
        kind: CALL_KIND,
        compound: &c.compound,
        building: &c.building,
        station: &c.station,
        priority: c.priority,
        title: &c.title,
        detail: &c.detail,
        ts_ms: c.ts_ms,
    };
    atomically(conn, |conn| {
        let o = lifecycle::raise(conn, &new, policy, Some(actor))?;
        conn.prepare_cached(
            "INSERT INTO ticket_callers(ticket_id, source, name, phone, ts_ms)
             VALUES(?1,?2,?3,?4,?5)",
        )?
        .execute(params![
            o.ticket.id,
            SOURCE_PHONE,
            c.caller.name,
            c.caller.phone,
            c.ts_ms
        ])?;
        Ok(o)
    })
}

pub(super) fn caller(conn: &Connection, id: i64) -> Result<Option<Caller>, TicketError> {
    Ok(conn
        .prepare_cached("SELECT name, phone, source FROM ticket_callers WHERE ticket_id=?1")?
        .query_row([id], |r| {
            Ok(Caller {
                name: r.get(0)?,
                phone: r.get(1)?,
                source: r.get(2)?,
            })
        })
        .optional()?)
}

pub(super) fn transfer(
    conn: &mut Connection,
    id: i64,
    station: &str,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Ticket, TicketError> {
    need_actor(id, actor)?;
    let tx = conn.savepoint()?;
    let t = load(&tx, id)?.0;
    let refuse = |message: String| Err(TicketError::Refused { id, message });
    if !t.state.is_active() {
        return refuse(format!("a {} ticket cannot be transferred", t.state));
    }
    if t.station == station {
        return refuse(format!("already at station `{station}`"));
    }
    let held: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM ticket_holdings WHERE ticket_id=?1")?
        .query_row([id], |r| r.get(0))?;
    if held == 0 {
        // A ticket never moved has no history yet: its station held it from opening.
        tx.prepare_cached(
            "INSERT INTO ticket_holdings(ticket_id, station, from_ms, to_ms) VALUES(?1,?2,?3,?4)",
        )?
        .execute(params![id, t.station, t.opened_ms, now_ms.max(t.opened_ms)])?;
    } else {
        tx.prepare_cached(
            "UPDATE ticket_holdings SET to_ms = MAX(from_ms, ?2)
             WHERE ticket_id=?1 AND to_ms IS NULL",
        )?
        .execute(params![id, now_ms])?;
    }
    tx.prepare_cached(
        "INSERT INTO ticket_holdings(ticket_id, station, from_ms, to_ms) VALUES(?1,?2,?3,NULL)",
    )?
    .execute(params![id, station, now_ms.max(t.opened_ms)])?;
    // The SLA clock stays with the ticket: only the station changes.
    tx.prepare_cached("UPDATE tickets SET station=?2 WHERE id=?1")?
        .execute(params![id, station])?;
    let note = format!("from {} to {station}: {reason}", t.station);
    audit(&tx, id, now_ms, actor, "transferred", None, None, &note)?;
    let t = load(&tx, id)?.0;
    tx.commit()?;
    Ok(t)
}

pub(super) fn holdings(conn: &Connection, id: i64) -> Result<Vec<Holding>, TicketError> {
    let mut st = conn.prepare_cached(
        "SELECT station, from_ms, to_ms FROM ticket_holdings WHERE ticket_id=?1 ORDER BY id",
    )?;
    let rows = st
        .query_map([id], |r| {
            Ok(Holding {
                station: r.get(0)?,
                from_ms: r.get(1)?,
                to_ms: r.get(2)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

pub(super) fn merge(
    conn: &mut Connection,
    id: i64,
    into: i64,
    note: &str,
    actor: &str,
    now_ms: i64,
) -> Result<(Ticket, Ticket), TicketError> {
    need_actor(id, actor)?;
    if id == into {
        return Err(TicketError::Invalid(
            "into: a ticket cannot be merged into itself".into(),
        ));
    }
    atomically(conn, |conn| {
        load(conn, id)?;
        let target = load(conn, into)?.0;
        if matches!(target.state, TicketState::Cancelled) {
            return Err(TicketError::Refused {
                id: into,
                message: "cannot merge into a cancelled ticket".into(),
            });
        }
        let reason = if note.trim().is_empty() {
            format!("merged into #{into}")
        } else {
            format!("merged into #{into}: {note}")
        };
        let source =
            lifecycle::transition(conn, id, TicketState::Cancelled, actor, &reason, now_ms)?;
        // What the source's reporters said goes with the occurrences to the target.
        let mut texts = vec![source_detail(conn, id)?];
        {
            let mut st = conn.prepare_cached(
                "SELECT note FROM ticket_audit WHERE ticket_id=?1 AND action='reported' ORDER BY id",
            )?;
            for n in st.query_map([id], |r| r.get::<_, String>(0))? {
                texts.push(n?);
            }
        }
        conn.prepare_cached(
            "UPDATE tickets SET occurrences = occurrences + ?2,
                last_seen_ms = MAX(last_seen_ms, ?3) WHERE id = ?1",
        )?
        .execute(params![into, source.occurrences, source.last_seen_ms])?;
        let merged = format!(
            "#{id} merged in ({} occurrence(s)){}\n{}",
            source.occurrences,
            if note.trim().is_empty() {
                String::new()
            } else {
                format!(": {note}")
            },
            texts.join("\n---\n")
        );
        audit(conn, into, now_ms, actor, "merged", None, None, &merged)?;
        insert_link(conn, id, into, LinkRelation::Merged, actor, note, now_ms)?;
        conn.prepare_cached("UPDATE resident_codes SET ticket_id=?2 WHERE ticket_id=?1")?
            .execute(params![id, into])?;
        Ok((source, load(conn, into)?.0))
    })
}

fn source_detail(conn: &Connection, id: i64) -> Result<String, TicketError> {
    Ok(conn
        .prepare_cached("SELECT detail FROM tickets WHERE id=?1")?
        .query_row([id], |r| r.get(0))?)
}

fn insert_link(
    conn: &Connection,
    from: i64,
    to: i64,
    relation: LinkRelation,
    actor: &str,
    note: &str,
    now_ms: i64,
) -> Result<TicketLink, TicketError> {
    let exists: Option<i64> = conn
        .prepare_cached(
            "SELECT id FROM ticket_links WHERE (from_id=?1 AND to_id=?2) OR (from_id=?2 AND to_id=?1)",
        )?
        .query_row(params![from, to], |r| r.get(0))
        .optional()?;
    if exists.is_some() && relation != LinkRelation::Merged {
        return Err(TicketError::Refused {
            id: from,
            message: format!("already linked to #{to}"),
        });
    }
    conn.prepare_cached(
        "INSERT INTO ticket_links(from_id, to_id, relation, ts_ms, actor, note)
         VALUES(?1,?2,?3,?4,?5,?6)",
    )?
    .execute(params![from, to, relation.as_str(), now_ms, actor, note])?;
    Ok(TicketLink {
        from,
        to,
        relation,
        ts_ms: now_ms,
        actor: actor.to_string(),
        note: note.to_string(),
    })
}

pub(super) fn link(
    conn: &mut Connection,
    id: i64,
    other: i64,
    relation: LinkRelation,
    actor: &str,
    now_ms: i64,
) -> Result<TicketLink, TicketError> {
    need_actor(id, actor)?;
    if id == other {
        return Err(TicketError::Invalid(
            "ticket: a ticket cannot be linked to itself".into(),
        ));
    }
    if relation == LinkRelation::Merged {
        return Err(TicketError::Invalid(
            "relation: expected related or duplicate (merge has its own endpoint)".into(),
        ));
    }
    let tx = conn.savepoint()?;
    load(&tx, id)?;
    load(&tx, other)?;
    let l = insert_link(&tx, id, other, relation, actor, "", now_ms)?;
    let what = relation.as_str();
    audit(
        &tx,
        id,
        now_ms,
        actor,
        "linked",
        None,
        None,
        &format!("{what} to #{other}"),
    )?;
    audit(
        &tx,
        other,
        now_ms,
        actor,
        "linked",
        None,
        None,
        &format!("#{id} {what} to this"),
    )?;
    tx.commit()?;
    Ok(l)
}

pub(super) fn links(conn: &Connection, id: i64) -> Result<Vec<TicketLink>, TicketError> {
    let mut st = conn.prepare_cached(
        "SELECT from_id, to_id, relation, ts_ms, actor, note FROM ticket_links
         WHERE from_id=?1 OR to_id=?1 ORDER BY id",
    )?;
    let rows = st
        .query_map([id], |r| {
            let rel: String = r.get(2)?;
            Ok((r.get(0)?, r.get(1)?, rel, r.get(3)?, r.get(4)?, r.get(5)?))
        })?
        .collect::<Result<Vec<(i64, i64, String, i64, String, String)>, _>>()?;
    rows.into_iter()
        .map(|(from, to, rel, ts_ms, actor, note)| {
            let relation = LinkRelation::parse(&rel)
                .ok_or_else(|| TicketError::Corrupt(format!("link relation `{rel}`")))?;
            Ok(TicketLink {
                from,
                to,
                relation,
                ts_ms,
                actor,
                note,
            })
        })
        .collect()
}

pub(super) fn add_tracking_code(
    conn: &Connection,
    code: &str,
    ticket_id: i64,
    category: &str,
    now_ms: i64,
) -> Result<(), TicketError> {
    conn.prepare_cached(
        "INSERT INTO resident_codes(code, ticket_id, category, created_ms) VALUES(?1,?2,?3,?4)",
    )?
    .execute(params![
        code.to_ascii_lowercase(),
        ticket_id,
        category,
        now_ms
    ])?;
    Ok(())
}

pub(super) fn track(conn: &Connection, code: &str) -> Result<Tracked, TicketError> {
    let code = code.to_ascii_lowercase();
    let row: Option<(i64, String, i64)> = conn
        .prepare_cached("SELECT ticket_id, category, created_ms FROM resident_codes WHERE code=?1")?
        .query_row([&code], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    let (ticket_id, category, reported_ms) =
        row.ok_or_else(|| TicketError::UnknownCode(code.clone()))?;
    let ticket = load(conn, ticket_id)?.0;
    let closure_note: Option<String> = conn
        .prepare_cached(
            "SELECT note FROM ticket_audit WHERE ticket_id=?1 AND to_state='resolved'
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([ticket_id], |r| r.get(0))
        .optional()?;
    let rating = conn
        .prepare_cached(
            "SELECT ticket_id, station, stars, comment, ts_ms FROM resident_ratings WHERE code=?1",
        )?
        .query_row([&code], |r| {
            Ok(ResidentRating {
                code: code.clone(),
                ticket_id: r.get(0)?,
                station: r.get(1)?,
                stars: r.get(2)?,
                comment: r.get(3)?,
                ts_ms: r.get(4)?,
            })
        })
        .optional()?;
    Ok(Tracked {
        code,
        ticket,
        category,
        reported_ms,
        closure_note,
        rating,
    })
}

pub(super) fn rate_by_resident(
    conn: &mut Connection,
    code: &str,
    stars: u8,
    comment: &str,
    now_ms: i64,
) -> Result<ResidentRating, TicketError> {
    if !(1..=5).contains(&stars) {
        return Err(TicketError::Invalid("stars: expected 1 to 5".into()));
    }
    let tx = conn.savepoint()?;
    let tracked = track(&tx, code)?;
    let t = &tracked.ticket;
    if !matches!(t.state, TicketState::Resolved | TicketState::Closed) {
        return Err(TicketError::Refused {
            id: t.id,
            message: format!("not resolved yet ({}); rate it once it is", t.state),
        });
    }
    if tracked.rating.is_some() {
        return Err(TicketError::Refused {
            id: t.id,
            message: "this report was already rated".into(),
        });
    }
    let r = ResidentRating {
        code: tracked.code.clone(),
        ticket_id: t.id,
        station: t.station.clone(),
        stars,
        comment: comment.to_string(),
        ts_ms: now_ms,
    };
    tx.prepare_cached(
        "INSERT INTO resident_ratings(code, ticket_id, station, stars, comment, ts_ms)
         VALUES(?1,?2,?3,?4,?5,?6)",
    )?
    .execute(params![
        r.code,
        r.ticket_id,
        r.station,
        r.stars,
        r.comment,
        r.ts_ms
    ])?;
    let note = if comment.is_empty() {
        format!("{stars} star(s)")
    } else {
        format!("{stars} star(s): {comment}")
    };
    audit(
        &tx,
        t.id,
        now_ms,
        crate::RESIDENT_ACTOR,
        "resident_rating",
        None,
        None,
        &note,
    )?;
    tx.commit()?;
    Ok(r)
}

/// The month's tickets of a station or compound with the part each is the scope's, and
/// the residents' stars counted for it (docs/rating.md).
pub(super) fn rating(
    conn: &Connection,
    scope: &str,
    month: &str,
) -> Result<crate::Rating, TicketError> {
    use super::schema::{from_row, COLS};
    use std::collections::HashMap;
    let (from, to) = crate::month_range(month)?;
    // A station answers for every ticket it held, not only those it holds now.
    let mut st = conn.prepare(&format!(
        "SELECT {COLS} FROM tickets WHERE (station = ?1 OR compound = ?1
             OR id IN (SELECT ticket_id FROM ticket_holdings WHERE station = ?1))
           AND opened_ms >= ?2 AND opened_ms < ?3"
    ))?;
    let tickets = st
        .query_map(params![scope, from, to], |r| from_row(r).map(|x| x.0))?
        .collect::<Result<Vec<_>, _>>()?;
    let mut held: HashMap<i64, Vec<Holding>> = HashMap::new();
    {
        let mut st = conn.prepare(
            "SELECT h.ticket_id, h.station, h.from_ms, h.to_ms FROM ticket_holdings h
             JOIN tickets t ON t.id = h.ticket_id
             WHERE t.opened_ms >= ?1 AND t.opened_ms < ?2 ORDER BY h.id",
        )?;
        let rows = st.query_map(params![from, to], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                Holding {
                    station: r.get(1)?,
                    from_ms: r.get(2)?,
                    to_ms: r.get(3)?,
                },
            ))
        })?;
        for row in rows {
            let (id, h) = row?;
            held.entry(id).or_default().push(h);
        }
    }
    let parts: Vec<(&Ticket, crate::Attribution)> = tickets
        .iter()
        .map(|t| {
            let a = if t.compound == scope {
                crate::Attribution::FULL
            } else {
                crate::attribute(t, held.get(&t.id).map_or(&[][..], Vec::as_slice), scope)
            };
            (t, a)
        })
        .collect();
    let mut st = conn.prepare(
        "SELECT r.stars FROM resident_ratings r JOIN tickets t ON t.id = r.ticket_id
         WHERE (r.station = ?1 OR t.compound = ?1) AND t.opened_ms >= ?2 AND t.opened_ms < ?3
         ORDER BY r.ts_ms",
    )?;
    let stars = st
        .query_map(params![scope, from, to], |r| r.get::<_, u8>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::rate_split(scope, month, &parts, &stars))
}
