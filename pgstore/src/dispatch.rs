//! The dispatcher's desk and resident tracking: calls with their caller, transfers with
//! the holding history, merges, links, tracking codes, residents' ratings, and the
//! rating of a month that splits transferred tickets between the stations that held
//! them.

use crate::conn::Db;
use crate::lifecycle::{self, NewTicket};
use crate::schema::{audit, from_row, load, COLS};
use crate::PgStoreError;
use std::collections::HashMap;
use steward_tickets::{
    CallTicket, Caller, Holding, LinkRelation, RaiseOutcome, Rating, ResidentRating, SlaPolicy,
    Ticket, TicketError, TicketLink, TicketState, Tracked, CALL_KIND, SOURCE_PHONE,
};

type E = PgStoreError;

fn need_actor(id: i64, actor: &str) -> Result<(), E> {
    if actor.trim().is_empty() {
        return Err(TicketError::NoActor { id }.into());
    }
    Ok(())
}

fn refused(id: i64, message: impl Into<String>) -> E {
    TicketError::Refused {
        id,
        message: message.into(),
    }
    .into()
}

pub(crate) fn call_in(
    db: &mut Db,
    c: &CallTicket,
    policy: &SlaPolicy,
    actor: &str,
) -> Result<RaiseOutcome, E> {
    need_actor(0, actor)?;
    // Each call is its own ticket: a rule id no other ticket has keeps two calls about
    // the same compound and category from being folded into one.
    let rule_id = format!(
        "call-{}-{}",
        c.category,
        steward_tickets::new_tracking_code()
    );
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
    let o = lifecycle::raise(db, &new, policy, Some(actor))?;
    db.exec(
        "INSERT INTO ticket_callers(ticket_id, source, name, phone, ts_ms) VALUES($1,$2,$3,$4,$5)",
        &[
            &o.ticket.id,
            &SOURCE_PHONE,
            &c.caller.name,
            &c.caller.phone,
            &c.ts_ms,
        ],
    )?;
    Ok(o)
}

pub(crate) fn caller(db: &mut Db, id: i64) -> Result<Option<Caller>, E> {
    let row = db.opt(
        "SELECT name, phone, source FROM ticket_callers WHERE ticket_id=$1",
        &[&id],
    )?;
    row.map(|r| {
        Ok(Caller {
            name: r.try_get(0)?,
            phone: r.try_get(1)?,
            source: r.try_get(2)?,
        })
    })
    .transpose()
}

pub(crate) fn transfer(
    db: &mut Db,
    id: i64,
    station: &str,
    reason: &str,
    actor: &str,
    now_ms: i64,
) -> Result<Ticket, E> {
    need_actor(id, actor)?;
    let t = load(db, id)?.0;
    if !t.state.is_active() {
        return Err(refused(
            id,
            format!("a {} ticket cannot be transferred", t.state),
        ));
    }
    if t.station == station {
        return Err(refused(id, format!("already at station `{station}`")));
    }
    let held: i64 = db
        .one(
            "SELECT COUNT(*) FROM ticket_holdings WHERE ticket_id=$1",
            &[&id],
        )?
        .try_get(0)?;
    if held == 0 {
        // A ticket never moved has no history yet: its station held it from opening.
        db.exec(
            "INSERT INTO ticket_holdings(ticket_id, station, from_ms, to_ms) VALUES($1,$2,$3,$4)",
            &[&id, &t.station, &t.opened_ms, &now_ms.max(t.opened_ms)],
        )?;
    } else {
        db.exec(
            "UPDATE ticket_holdings SET to_ms = GREATEST(from_ms, $2)
             WHERE ticket_id=$1 AND to_ms IS NULL",
            &[&id, &now_ms],
        )?;
    }
    db.exec(
        "INSERT INTO ticket_holdings(ticket_id, station, from_ms, to_ms) VALUES($1,$2,$3,NULL)",
        &[&id, &station, &now_ms.max(t.opened_ms)],
    )?;
    // The SLA clock stays with the ticket: only the station changes.
    db.exec(
        "UPDATE tickets SET station=$2 WHERE id=$1",
        &[&id, &station],
    )?;
    let note = format!("from {} to {station}: {reason}", t.station);
    audit(db, id, now_ms, actor, "transferred", None, None, &note)?;
    Ok(load(db, id)?.0)
}

fn holding(r: &postgres::Row, first: usize) -> Result<Holding, E> {
    Ok(Holding {
        station: r.try_get(first)?,
        from_ms: r.try_get(first + 1)?,
        to_ms: r.try_get(first + 2)?,
    })
}

pub(crate) fn holdings(db: &mut Db, id: i64) -> Result<Vec<Holding>, E> {
    db.query(
        "SELECT station, from_ms, to_ms FROM ticket_holdings WHERE ticket_id=$1 ORDER BY id",
        &[&id],
    )?
    .iter()
    .map(|r| holding(r, 0))
    .collect()
}

pub(crate) fn merge(
    db: &mut Db,
    id: i64,
    into: i64,
    note: &str,
    actor: &str,
    now_ms: i64,
) -> Result<(Ticket, Ticket), E> {
    need_actor(id, actor)?;
    if id == into {
        return Err(
            TicketError::Invalid("into: a ticket cannot be merged into itself".into()).into(),
        );
    }
    load(db, id)?;
    let target = load(db, into)?.0;
    if matches!(target.state, TicketState::Cancelled) {
        return Err(refused(into, "cannot merge into a cancelled ticket"));
    }
    let reason = if note.trim().is_empty() {
        format!("merged into #{into}")
    } else {
        format!("merged into #{into}: {note}")
    };
    let source = lifecycle::transition(db, id, TicketState::Cancelled, actor, &reason, now_ms)?;
    // What the source's reporters said goes with the occurrences to the target.
    let detail: String = db
        .one("SELECT detail FROM tickets WHERE id=$1", &[&id])?
        .try_get(0)?;
    let mut texts = vec![detail];
    for r in db.query(
        "SELECT note FROM ticket_audit WHERE ticket_id=$1 AND action='reported' ORDER BY id",
        &[&id],
    )? {
        texts.push(r.try_get(0)?);
    }
    db.exec(
        "UPDATE tickets SET occurrences = occurrences + $2,
            last_seen_ms = GREATEST(last_seen_ms, $3) WHERE id = $1",
        &[&into, &source.occurrences, &source.last_seen_ms],
    )?;
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
    audit(db, into, now_ms, actor, "merged", None, None, &merged)?;
    insert_link(db, id, into, LinkRelation::Merged, actor, note, now_ms)?;
    db.exec(
        "UPDATE resident_codes SET ticket_id=$2 WHERE ticket_id=$1",
        &[&id, &into],
    )?;
    Ok((source, load(db, into)?.0))
}

fn insert_link(
    db: &mut Db,
    from: i64,
    to: i64,
    relation: LinkRelation,
    actor: &str,
    note: &str,
    now_ms: i64,
) -> Result<TicketLink, E> {
    let exists = db.opt(
        "SELECT id FROM ticket_links WHERE (from_id=$1 AND to_id=$2) OR (from_id=$2 AND to_id=$1)
         LIMIT 1",
        &[&from, &to],
    )?;
    if exists.is_some() && relation != LinkRelation::Merged {
        return Err(refused(from, format!("already linked to #{to}")));
    }
    db.exec(
        "INSERT INTO ticket_links(from_id, to_id, relation, ts_ms, actor, note)
         VALUES($1,$2,$3,$4,$5,$6)",
        &[&from, &to, &relation.as_str(), &now_ms, &actor, &note],
    )?;
    Ok(TicketLink {
        from,
        to,
        relation,
        ts_ms: now_ms,
        actor: actor.to_string(),
        note: note.to_string(),
    })
}

pub(crate) fn link(
    db: &mut Db,
    id: i64,
    other: i64,
    relation: LinkRelation,
    actor: &str,
    now_ms: i64,
) -> Result<TicketLink, E> {
    need_actor(id, actor)?;
    if id == other {
        return Err(
            TicketError::Invalid("ticket: a ticket cannot be linked to itself".into()).into(),
        );
    }
    if relation == LinkRelation::Merged {
        return Err(TicketError::Invalid(
            "relation: expected related or duplicate (merge has its own endpoint)".into(),
        )
        .into());
    }
    load(db, id)?;
    load(db, other)?;
    let l = insert_link(db, id, other, relation, actor, "", now_ms)?;
    let what = relation.as_str();
    let note = format!("{what} to #{other}");
    audit(db, id, now_ms, actor, "linked", None, None, &note)?;
    let note = format!("#{id} {what} to this");
    audit(db, other, now_ms, actor, "linked", None, None, &note)?;
    Ok(l)
}

pub(crate) fn links(db: &mut Db, id: i64) -> Result<Vec<TicketLink>, E> {
    db.query(
        "SELECT from_id, to_id, relation, ts_ms, actor, note FROM ticket_links
         WHERE from_id=$1 OR to_id=$1 ORDER BY id",
        &[&id],
    )?
    .iter()
    .map(|r| {
        let rel: String = r.try_get(2)?;
        let relation = LinkRelation::parse(&rel)
            .ok_or_else(|| E::corrupt(format!("link relation `{rel}`")))?;
        Ok(TicketLink {
            from: r.try_get(0)?,
            to: r.try_get(1)?,
            relation,
            ts_ms: r.try_get(3)?,
            actor: r.try_get(4)?,
            note: r.try_get(5)?,
        })
    })
    .collect()
}

pub(crate) fn add_tracking_code(
    db: &mut Db,
    code: &str,
    ticket_id: i64,
    category: &str,
    now_ms: i64,
) -> Result<(), E> {
    db.exec(
        "INSERT INTO resident_codes(code, ticket_id, category, created_ms) VALUES($1,$2,$3,$4)",
        &[&code.to_ascii_lowercase(), &ticket_id, &category, &now_ms],
    )?;
    Ok(())
}

pub(crate) fn track(db: &mut Db, code: &str) -> Result<Tracked, E> {
    let code = code.to_ascii_lowercase();
    let row = db
        .opt(
            "SELECT ticket_id, category, created_ms FROM resident_codes WHERE code=$1",
            &[&code],
        )?
        .ok_or_else(|| TicketError::UnknownCode(code.clone()))?;
    let (ticket_id, category, reported_ms): (i64, String, i64) =
        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    let ticket = load(db, ticket_id)?.0;
    let closure_note: Option<String> = db
        .opt(
            "SELECT note FROM ticket_audit WHERE ticket_id=$1 AND to_state='resolved'
             ORDER BY id DESC LIMIT 1",
            &[&ticket_id],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    let rating = db
        .opt(
            "SELECT ticket_id, station, stars, comment, ts_ms FROM resident_ratings WHERE code=$1",
            &[&code],
        )?
        .map(|r| -> Result<ResidentRating, E> {
            let stars: i64 = r.try_get(2)?;
            Ok(ResidentRating {
                code: code.clone(),
                ticket_id: r.try_get(0)?,
                station: r.try_get(1)?,
                stars: u8::try_from(stars).map_err(|_| E::corrupt(format!("stars {stars}")))?,
                comment: r.try_get(3)?,
                ts_ms: r.try_get(4)?,
            })
        })
        .transpose()?;
    Ok(Tracked {
        code,
        ticket,
        category,
        reported_ms,
        closure_note,
        rating,
    })
}

pub(crate) fn rate_by_resident(
    db: &mut Db,
    code: &str,
    stars: u8,
    comment: &str,
    now_ms: i64,
) -> Result<ResidentRating, E> {
    if !(1..=5).contains(&stars) {
        return Err(TicketError::Invalid("stars: expected 1 to 5".into()).into());
    }
    let tracked = track(db, code)?;
    let t = &tracked.ticket;
    if !matches!(t.state, TicketState::Resolved | TicketState::Closed) {
        return Err(refused(
            t.id,
            format!("not resolved yet ({}); rate it once it is", t.state),
        ));
    }
    if tracked.rating.is_some() {
        return Err(refused(t.id, "this report was already rated"));
    }
    let r = ResidentRating {
        code: tracked.code.clone(),
        ticket_id: t.id,
        station: t.station.clone(),
        stars,
        comment: comment.to_string(),
        ts_ms: now_ms,
    };
    db.exec(
        "INSERT INTO resident_ratings(code, ticket_id, station, stars, comment, ts_ms)
         VALUES($1,$2,$3,$4,$5,$6)",
        &[
            &r.code,
            &r.ticket_id,
            &r.station,
            &i64::from(r.stars),
            &r.comment,
            &r.ts_ms,
        ],
    )?;
    let note = if comment.is_empty() {
        format!("{stars} star(s)")
    } else {
        format!("{stars} star(s): {comment}")
    };
    audit(
        db,
        t.id,
        now_ms,
        steward_tickets::RESIDENT_ACTOR,
        "resident_rating",
        None,
        None,
        &note,
    )?;
    Ok(r)
}

/// The month's tickets of a station or compound with the part each is the scope's, and
/// the residents' stars counted for it (docs/rating.md).
pub(crate) fn rating(db: &mut Db, scope: &str, month: &str) -> Result<Rating, E> {
    let (from, to) = steward_tickets::month_range(month)?;
    // A station answers for every ticket it held, not only those it holds now.
    let tickets = db
        .query(
            &format!(
                "SELECT {COLS} FROM tickets WHERE (station = $1 OR compound = $1
                     OR id IN (SELECT ticket_id FROM ticket_holdings WHERE station = $1))
                   AND opened_ms >= $2 AND opened_ms < $3"
            ),
            &[&scope, &from, &to],
        )?
        .iter()
        .map(|r| from_row(r).map(|x| x.0))
        .collect::<Result<Vec<_>, E>>()?;
    let mut held: HashMap<i64, Vec<Holding>> = HashMap::new();
    for r in db.query(
        "SELECT h.ticket_id, h.station, h.from_ms, h.to_ms FROM ticket_holdings h
         JOIN tickets t ON t.id = h.ticket_id
         WHERE t.opened_ms >= $1 AND t.opened_ms < $2 ORDER BY h.id",
        &[&from, &to],
    )? {
        held.entry(r.try_get(0)?).or_default().push(holding(&r, 1)?);
    }
    let parts: Vec<(&Ticket, steward_tickets::Attribution)> = tickets
        .iter()
        .map(|t| {
            let a = if t.compound == scope {
                steward_tickets::Attribution::FULL
            } else {
                steward_tickets::attribute(t, held.get(&t.id).map_or(&[][..], Vec::as_slice), scope)
            };
            (t, a)
        })
        .collect();
    let stars = db
        .query(
            "SELECT r.stars FROM resident_ratings r JOIN tickets t ON t.id = r.ticket_id
             WHERE (r.station = $1 OR t.compound = $1) AND t.opened_ms >= $2 AND t.opened_ms < $3
             ORDER BY r.ts_ms",
            &[&scope, &from, &to],
        )?
        .iter()
        .map(|r| {
            let s: i64 = r.try_get(0)?;
            u8::try_from(s).map_err(|_| E::corrupt(format!("stars {s}")))
        })
        .collect::<Result<Vec<_>, E>>()?;
    Ok(steward_tickets::rate_split(scope, month, &parts, &stars))
}
