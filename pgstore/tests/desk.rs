//! The dispatcher's desk and resident tracking on the PostgreSQL store (the SQLite
//! store's tests, tickets/tests/desk.rs): calls with their caller, transfers (SLA due
//! times kept, the rating split by holding, against a hand-computed fixture), merges,
//! links, tracking codes and once-only resident ratings.

use std::sync::Arc;
use steward_estate::clock::ManualClock;
use steward_estate::DeviceKind;
use steward_tickets::*;

mod common;

/// 2025-03-03T00:00:00Z.
const T0: i64 = 1_740_960_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn raise(device: &str, p: Priority, ts: i64) -> Raise {
    Raise {
        device_id: device.into(),
        rule_id: "lift-trapped".into(),
        kind: DeviceKind::Lift,
        compound: "cmp-1".into(),
        building: "b-1".into(),
        station: "st-north".into(),
        priority: p,
        title: "test".into(),
        detail: "x=1".into(),
        ts_ms: ts,
    }
}

fn report(detail: &str, ts: i64) -> ResidentReport {
    ResidentReport {
        compound: "cmp-1".into(),
        building: None,
        station: "st-north".into(),
        category: "lift".into(),
        priority: Priority::P2,
        title: "resident report: lift".into(),
        detail: detail.into(),
        ts_ms: ts,
    }
}

fn call(p: Priority) -> CallTicket {
    CallTicket {
        compound: "cmp-1".into(),
        station: "st-north".into(),
        building: "b-2".into(),
        category: "lift".into(),
        priority: p,
        title: "phone call (lift): someone trapped".into(),
        detail: "someone trapped\nlocation: floor 7".into(),
        caller: Caller {
            name: "Wang Li".into(),
            phone: "13912345678".into(),
            source: SOURCE_PHONE.into(),
        },
        ts_ms: T0,
    }
}

fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() < 1e-9)
}

#[test]
fn a_call_opens_a_ticket_with_its_caller_kept_apart() {
    let s = common::pg();
    let o = s
        .call_in(&call(Priority::P1), &SlaPolicy::default(), "desk-1")
        .unwrap();
    assert!(o.created);
    let t = &o.ticket;
    assert_eq!((t.kind.as_str(), t.priority), (CALL_KIND, Priority::P1));
    assert_eq!(
        (t.station.as_str(), t.building.as_str()),
        ("st-north", "b-2")
    );
    assert_eq!(t.ack_due_ms, T0 + 5 * MIN);
    assert!(!t.detail.contains("139"), "no phone in the ticket text");
    let c = s.caller(t.id).unwrap().unwrap();
    assert_eq!((c.name.as_str(), c.source.as_str()), ("Wang Li", "phone"));
    assert_eq!(c.masked_phone(), "*********78");
    let audit = s.get(t.id).unwrap().audit;
    assert_eq!(
        (audit[0].actor.as_str(), audit[0].action.as_str()),
        ("desk-1", "raised")
    );
    // A second call about the same compound and category is a ticket of its own.
    let o2 = s
        .call_in(&call(Priority::P2), &SlaPolicy::default(), "desk-1")
        .unwrap();
    assert!(o2.created && o2.ticket.id != t.id);
    assert!(s.caller(o2.ticket.id).unwrap().is_some());
    let rule = s.raise(&raise("lift-1", Priority::P1, T0), &SlaPolicy::default());
    assert!(s.caller(rule.unwrap().ticket.id).unwrap().is_none());
}

/// The fixture of docs/rating.md, "Transferred tickets".
#[test]
fn transfer_keeps_the_sla_clock_and_the_rating_splits_by_holding() {
    use TicketState::*;
    let s = common::pg();
    let p = SlaPolicy::default();
    // A: P1 at T0 at st-north; to st-south at +2 min; south acknowledges at +4 (in
    // time, due +5); back to north at +10; north on site at +40 (late, due +30);
    // resolved at +60 (a P1 has no resolve target).
    let a = s.raise(&raise("lift-1", p1(), T0), &p).unwrap().ticket.id;
    let t = s
        .transfer(a, "st-south", "their lift", "desk-1", T0 + 2 * MIN)
        .unwrap();
    assert_eq!(t.station, "st-south");
    assert_eq!(
        (t.ack_due_ms, t.on_site_due_ms),
        (T0 + 5 * MIN, Some(T0 + 30 * MIN))
    );
    s.transition(a, Acknowledged, "south", "", T0 + 4 * MIN)
        .unwrap();
    let t = s
        .transfer(a, "st-north", "wrong station", "desk-1", T0 + 10 * MIN)
        .unwrap();
    assert_eq!(
        (t.ack_due_ms, t.on_site_due_ms),
        (T0 + 5 * MIN, Some(T0 + 30 * MIN))
    );
    s.transition(a, OnSite, "north", "", T0 + 40 * MIN).unwrap();
    s.transition(a, Resolved, "north", "fixed", T0 + 60 * MIN)
        .unwrap();
    assert_eq!(
        s.holdings(a).unwrap(),
        vec![
            Holding {
                station: "st-north".into(),
                from_ms: T0,
                to_ms: Some(T0 + 2 * MIN)
            },
            Holding {
                station: "st-south".into(),
                from_ms: T0 + 2 * MIN,
                to_ms: Some(T0 + 10 * MIN)
            },
            Holding {
                station: "st-north".into(),
                from_ms: T0 + 10 * MIN,
                to_ms: None
            },
        ]
    );
    let audit = s.get(a).unwrap().audit;
    assert!(audit
        .iter()
        .any(|r| r.action == "transferred" && r.note == "from st-north to st-south: their lift"));
    // Refused: to where it already is, and once it is no longer active.
    assert!(matches!(
        s.transfer(a, "st-north", "x", "desk-1", T0 + 61 * MIN),
        Err(TicketError::Refused { .. })
    ));
    // B: P1 a day later at north, never moved: ack 3, on site 20, resolved 30.
    let b0 = T0 + 24 * HOUR;
    let b = s.raise(&raise("lift-2", p1(), b0), &p).unwrap().ticket.id;
    s.transition(b, Acknowledged, "north", "", b0 + 3 * MIN)
        .unwrap();
    s.transition(b, OnSite, "north", "", b0 + 20 * MIN).unwrap();
    s.transition(b, Resolved, "north", "fixed", b0 + 30 * MIN)
        .unwrap();

    let north = s.rating("st-north", "2025-03").unwrap();
    assert_eq!((north.tickets, north.cancelled), (2, 0));
    // Ack verdicts: A's is south's; B met -> 1/1.
    assert_eq!(north.ack_within_sla, Some(1.0));
    // On site: A late (north held it at +40), B in time -> 1/2.
    assert_eq!(north.on_site_within_sla, Some(0.5));
    assert_eq!(north.resolved_within_sla, None);
    // Mean ack: A 4 min held half by north (w 0.5), B 3 min (w 1): (0.5*4 + 3) / 1.5.
    assert!(
        close(north.mean_ack_min, 5.0 / 1.5),
        "{:?}",
        north.mean_ack_min
    );
    // Mean resolve: A 60 min, north held 52 of them (w 52/60); B 30 min (w 1).
    let w = 52.0 / 60.0;
    assert!(close(north.mean_resolve_min, (w * 60.0 + 30.0) / (w + 1.0)));
    // 100 * (0.35*1 + 0.25*0.5 + 0.20*1) / 0.80 = 84.375 -> 4 stars.
    assert!(close(north.score, 84.375), "{:?}", north.score);
    assert_eq!(north.stars, Some(4));

    let south = s.rating("st-south", "2025-03").unwrap();
    assert_eq!(south.tickets, 1);
    assert_eq!(south.ack_within_sla, Some(1.0));
    assert_eq!(south.on_site_within_sla, None);
    assert!(close(south.mean_ack_min, 4.0));
    assert!(close(south.mean_resolve_min, 60.0));
    // 100 * (0.35*1 + 0.20*1) / 0.55 = 100.
    assert!(close(south.score, 100.0));

    // The compound sees both tickets whole.
    let cmp = s.rating("cmp-1", "2025-03").unwrap();
    assert_eq!(
        (cmp.ack_within_sla, cmp.on_site_within_sla),
        (Some(1.0), Some(0.5))
    );
    assert!(close(cmp.mean_ack_min, 3.5) && close(cmp.mean_resolve_min, 45.0));
}

fn p1() -> Priority {
    Priority::P1
}

#[test]
fn merge_moves_the_report_and_its_followers_to_the_target() {
    let s = common::pg();
    let p = SlaPolicy::default();
    let device = s.raise(&raise("lift-1", p1(), T0), &p).unwrap().ticket;
    let r = s
        .report(
            &report("lift stuck at floor 3", T0 + MIN),
            &p,
            RESIDENT_ACTOR,
        )
        .unwrap()
        .ticket;
    s.report(&report("still stuck", T0 + 2 * MIN), &p, RESIDENT_ACTOR)
        .unwrap();
    s.add_tracking_code("abcdefghij", r.id, "lift", T0 + MIN)
        .unwrap();

    assert!(matches!(
        s.merge(r.id, r.id, "", "desk-1", T0 + 3 * MIN),
        Err(TicketError::Invalid(_))
    ));
    let (src, dst) = s
        .merge(r.id, device.id, "same lift", "desk-1", T0 + 3 * MIN)
        .unwrap();
    assert_eq!(src.state, TicketState::Cancelled);
    assert_eq!(dst.occurrences, 3);
    let src_audit = s.get(r.id).unwrap().audit;
    let last = src_audit.last().unwrap();
    assert_eq!(last.to_state, Some(TicketState::Cancelled));
    assert_eq!(last.note, format!("merged into #{}: same lift", device.id));
    let dst_audit = s.get(device.id).unwrap().audit;
    let merged = dst_audit.iter().find(|a| a.action == "merged").unwrap();
    assert!(merged.note.contains("lift stuck at floor 3") && merged.note.contains("still stuck"));
    let links = s.links(device.id).unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(
        (links[0].from, links[0].to, links[0].relation),
        (r.id, device.id, LinkRelation::Merged)
    );
    assert_eq!(s.links(r.id).unwrap(), links);
    // The resident now follows the ticket the report went into.
    assert_eq!(s.track("ABCDEFGHIJ").unwrap().ticket.id, device.id);
    // A cancelled ticket takes no merge, and a cancelled source cannot be cancelled again.
    let other = s.raise(&raise("lift-2", p1(), T0), &p).unwrap().ticket;
    assert!(matches!(
        s.merge(other.id, r.id, "", "desk-1", T0 + 4 * MIN),
        Err(TicketError::Refused { .. })
    ));
    assert!(matches!(
        s.merge(r.id, other.id, "", "desk-1", T0 + 4 * MIN),
        Err(TicketError::IllegalTransition { .. })
    ));
    // Nothing of a refused merge stays.
    assert_eq!(s.ticket(other.id).unwrap().occurrences, 1);
}

#[test]
fn links_are_listed_from_both_ends_once() {
    let s = common::pg();
    let p = SlaPolicy::default();
    let a = s.raise(&raise("lift-1", p1(), T0), &p).unwrap().ticket.id;
    let b = s.raise(&raise("lift-2", p1(), T0), &p).unwrap().ticket.id;
    let l = s.link(a, b, LinkRelation::Related, "desk-1", T0).unwrap();
    assert_eq!(s.links(a).unwrap(), vec![l.clone()]);
    assert_eq!(s.links(b).unwrap(), vec![l]);
    assert!(matches!(
        s.link(b, a, LinkRelation::Duplicate, "desk-1", T0),
        Err(TicketError::Refused { .. })
    ));
    assert!(matches!(
        s.link(a, a, LinkRelation::Related, "desk-1", T0),
        Err(TicketError::Invalid(_))
    ));
    assert!(matches!(
        s.link(a, 999, LinkRelation::Related, "desk-1", T0),
        Err(TicketError::NotFound(999))
    ));
    assert!(s.get(b).unwrap().audit.iter().any(|r| r.action == "linked"));
}

#[test]
fn a_resident_rates_once_after_resolution_and_it_counts_for_the_station() {
    let s = common::pg();
    let (desk, clock) = {
        let clock = Arc::new(ManualClock::new(T0));
        let d = TicketDesk::new(
            Arc::new(s.clone()),
            SlaPolicy::default(),
            clock.clone(),
            TicketMetrics::default(),
        );
        (d, clock)
    };
    let (o, code) = desk.report_tracked(report("lift stuck", 0)).unwrap();
    assert!(is_tracking_code(&code));
    let tracked = s.track(&code).unwrap();
    assert_eq!(
        (tracked.ticket.id, tracked.category.as_str()),
        (o.ticket.id, "lift")
    );
    assert!(tracked.closure_note.is_none() && tracked.rating.is_none());
    assert!(matches!(
        s.track("zzzzzzzzzz"),
        Err(TicketError::UnknownCode(_))
    ));
    // Before resolution: refused.
    assert!(matches!(
        desk.rate_by_resident(&code, 4, ""),
        Err(TicketError::Refused { .. })
    ));
    clock.set(T0 + 10 * MIN);
    desk.transition(o.ticket.id, TicketState::Acknowledged, "north", "")
        .unwrap();
    clock.set(T0 + HOUR);
    desk.transition(
        o.ticket.id,
        TicketState::Resolved,
        "north",
        "replaced the door sensor",
    )
    .unwrap();
    assert_eq!(
        s.track(&code).unwrap().closure_note.as_deref(),
        Some("replaced the door sensor")
    );
    let before = s.rating("st-north", "2025-03").unwrap();
    assert_eq!((before.resident_ratings, before.resident_stars), (0, None));
    assert!(close(before.score, 100.0));
    assert!(matches!(
        desk.rate_by_resident(&code, 0, ""),
        Err(TicketError::Invalid(_))
    ));
    assert!(matches!(
        desk.rate_by_resident(&code, 6, ""),
        Err(TicketError::Invalid(_))
    ));
    let r = desk.rate_by_resident(&code, 4, "quick, thanks").unwrap();
    assert_eq!((r.stars, r.station.as_str()), (4, "st-north"));
    assert!(matches!(
        desk.rate_by_resident(&code, 5, ""),
        Err(TicketError::Refused { .. })
    ));
    let after = s.rating("st-north", "2025-03").unwrap();
    assert_eq!(
        (after.resident_ratings, after.resident_stars),
        (1, Some(4.0))
    );
    // 100 * (0.35*1 + 0.20*1 + 0.20*1 + 0.15*0.75) / 0.90 = 95.833...
    assert!(
        close(after.score, 100.0 * 0.8625 / 0.9),
        "{:?}",
        after.score
    );
    assert_eq!(s.rating("cmp-1", "2025-03").unwrap().resident_ratings, 1);
    assert_eq!(s.rating("st-south", "2025-03").unwrap().resident_ratings, 0);
}

#[test]
fn calls_and_transfers_are_published_like_other_ticket_changes() {
    let s = common::pg();
    let clock = Arc::new(ManualClock::new(T0));
    let desk = TicketDesk::new(
        Arc::new(s.clone()),
        SlaPolicy::default(),
        clock.clone(),
        TicketMetrics::default(),
    );
    let mut rx = desk.events();
    let t = desk.call_in(call(Priority::P1), "desk-1").unwrap();
    let ev = rx.try_recv().unwrap();
    assert_eq!(ev.kind, TicketEventKind::Raised);
    assert_eq!((ev.ticket_id, ev.priority), (Some(t.id), Priority::P1));
    assert_eq!(ev.topic, "stations/st-north/alerts");
    assert!(ev.event_id.is_some(), "logged for streams to resume from");
    assert!(
        !serde_json::to_string(&ev).unwrap().contains("1391234"),
        "no phone in events"
    );
    clock.set(T0 + MIN);
    desk.transfer(t.id, "st-south", "their lift", "desk-1")
        .unwrap();
    let (old, new) = (rx.try_recv().unwrap(), rx.try_recv().unwrap());
    assert_eq!(
        (old.kind, new.kind),
        (TicketEventKind::Transition, TicketEventKind::Transition)
    );
    assert_eq!(
        (old.station.as_str(), new.station.as_str()),
        ("st-north", "st-south")
    );
    assert_eq!(new.topic, "stations/st-south/alerts");
    // The SLA clock runs on: the unacknowledged P1 breaches at its original deadline.
    desk.sla_tick(T0 + 5 * MIN).unwrap();
    let mut escalated = false;
    while let Ok(e) = rx.try_recv() {
        escalated |= e.kind == TicketEventKind::Escalated && e.station == "st-south";
    }
    assert!(escalated, "the ack deadline set at opening still holds");
}
