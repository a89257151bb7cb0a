//! The SQLite store's tests (tickets/tests/tickets.rs) run against the PostgreSQL store:
//! lifecycle, dedup, SLA reminders and escalation, rating arithmetic, resident reports,
//! the event log and batches, each on its own server.

mod common;

use std::sync::Arc;
use steward_estate::clock::ManualClock;
use steward_estate::DeviceKind;
use steward_pgstore::PgTicketStore;
use steward_tickets::*;

const T0: i64 = 1_740_960_000_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

fn raise(device: &str, rule: &str, p: Priority, ts: i64) -> Raise {
    Raise {
        device_id: device.into(),
        rule_id: rule.into(),
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

fn policy() -> SlaPolicy {
    SlaPolicy::default()
}

/// A desk over `store` whose clock stands at `now_ms` until the test moves it.
fn desk(store: &PgTicketStore, policy: SlaPolicy, now_ms: i64) -> (TicketDesk, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(now_ms));
    let d = TicketDesk::new(
        Arc::new(store.clone()),
        policy,
        clock.clone(),
        TicketMetrics::default(),
    );
    (d, clock)
}

#[test]
fn lifecycle_with_audit_trail_and_refused_moves() {
    let s = common::pg();
    let t = s
        .raise(
            &raise("lift-1", "lift-trapped", Priority::P1, T0),
            &policy(),
        )
        .unwrap();
    assert!(t.created);
    let id = t.ticket.id;
    assert_eq!(t.ticket.state, TicketState::Open);
    assert_eq!(t.ticket.ack_due_ms, T0 + 5 * MIN);
    assert_eq!(t.ticket.on_site_due_ms, Some(T0 + 30 * MIN));

    let err = s
        .transition(id, TicketState::OnSite, "crew-7", "", T0)
        .unwrap_err();
    assert!(matches!(
        err,
        TicketError::IllegalTransition {
            from: TicketState::Open,
            to: TicketState::OnSite,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("ticket {id}: illegal transition from open to on_site")
    );
    assert!(matches!(
        s.transition(id, TicketState::Acknowledged, " ", "", T0),
        Err(TicketError::NoActor { .. })
    ));

    let steps = [
        (TicketState::Acknowledged, "crew-7", "on it", 2 * MIN),
        (TicketState::Dispatched, "dispatcher", "van 3", 3 * MIN),
        (TicketState::OnSite, "crew-7", "arrived", 20 * MIN),
        (
            TicketState::Resolved,
            "crew-7",
            "released passenger, reset controller",
            40 * MIN,
        ),
        (TicketState::Closed, "manager", "checked", 60 * MIN),
    ];
    for (to, actor, note, at) in steps {
        s.transition(id, to, actor, note, T0 + at).unwrap();
    }
    let d = s.get(id).unwrap();
    assert_eq!(d.ticket.state, TicketState::Closed);
    assert_eq!(d.ticket.acknowledged_ms, Some(T0 + 2 * MIN));
    assert_eq!(d.ticket.on_site_ms, Some(T0 + 20 * MIN));
    assert_eq!(d.audit.len(), 6);
    assert_eq!(d.audit[0].action, "raised");
    assert_eq!(d.audit[0].actor, SYSTEM_ACTOR);
    assert_eq!(d.audit[3].from_state, Some(TicketState::Dispatched));
    assert_eq!(d.audit[3].to_state, Some(TicketState::OnSite));
    assert_eq!(d.audit[3].actor, "crew-7");
    assert_eq!(d.audit[4].note, "released passenger, reset controller");
    // Closed and cancelled are final.
    for to in TicketState::ALL {
        assert!(s.transition(id, to, "x", "", T0).is_err(), "closed -> {to}");
    }
    let c = s
        .raise(
            &raise("lift-1", "lift-trapped", Priority::P1, T0 + HOUR),
            &policy(),
        )
        .unwrap();
    s.transition(
        c.ticket.id,
        TicketState::Cancelled,
        "crew",
        "false alarm",
        T0 + HOUR,
    )
    .unwrap();
    assert!(s
        .transition(c.ticket.id, TicketState::Open, "x", "", T0)
        .is_err());
    assert!(matches!(s.get(9999), Err(TicketError::NotFound(9999))));
}

#[test]
fn one_active_ticket_per_device_and_rule() {
    let s = common::pg();
    let a = s
        .raise(
            &raise("lift-1", "lift-door-fault", Priority::P2, T0),
            &policy(),
        )
        .unwrap();
    let b = s
        .raise(
            &raise("lift-1", "lift-door-fault", Priority::P2, T0 + MIN),
            &policy(),
        )
        .unwrap();
    assert!(!b.created);
    assert_eq!(a.ticket.id, b.ticket.id);
    assert_eq!(b.ticket.occurrences, 2);
    assert_eq!(b.ticket.last_seen_ms, T0 + MIN);
    // Another rule or device is another ticket.
    let c = s
        .raise(
            &raise("lift-2", "lift-door-fault", Priority::P2, T0),
            &policy(),
        )
        .unwrap();
    assert!(c.created);
    // Cleared, recorded, still open for the crew.
    let cl = s
        .condition_cleared(&Clear {
            device_id: "lift-1".into(),
            rule_id: "lift-door-fault".into(),
            on_clear: OnClear::Record,
            ts_ms: T0 + 2 * MIN,
        })
        .unwrap()
        .unwrap();
    assert_eq!(cl.new_state, None);
    assert_eq!(cl.ticket.state, TicketState::Open);
    assert!(!cl.ticket.condition_active);
    assert_eq!(cl.ticket.cleared_ms, Some(T0 + 2 * MIN));
    assert!(s
        .get(a.ticket.id)
        .unwrap()
        .audit
        .iter()
        .any(|r| r.action == "condition_cleared"));
    // Once resolved, a repeat within 7 days is a new ticket marked as a repeat failure.
    s.transition(a.ticket.id, TicketState::Resolved, "crew", "", T0 + HOUR)
        .unwrap();
    let d = s
        .raise(
            &raise(
                "lift-1",
                "lift-door-fault",
                Priority::P2,
                T0 + 3 * 24 * HOUR,
            ),
            &policy(),
        )
        .unwrap();
    assert!(d.created);
    assert_eq!(d.ticket.repeat_of, Some(a.ticket.id));
    s.transition(
        d.ticket.id,
        TicketState::Resolved,
        "crew",
        "",
        T0 + 3 * 24 * HOUR,
    )
    .unwrap();
    let e = s
        .raise(
            &raise(
                "lift-1",
                "lift-door-fault",
                Priority::P2,
                T0 + 11 * 24 * HOUR,
            ),
            &policy(),
        )
        .unwrap();
    assert_eq!(e.ticket.repeat_of, None, "8 days later is not a repeat");
}

#[test]
fn rule_that_clears_itself_resolves_its_ticket() {
    let s = common::pg();
    let t = s
        .raise(
            &raise("pump-1", "device-offline", Priority::P3, T0),
            &policy(),
        )
        .unwrap();
    let c = s
        .condition_cleared(&Clear {
            device_id: "pump-1".into(),
            rule_id: "device-offline".into(),
            on_clear: OnClear::Resolve,
            ts_ms: T0 + 5 * MIN,
        })
        .unwrap()
        .unwrap();
    assert_eq!(c.new_state, Some(TicketState::Resolved));
    let d = s.get(t.ticket.id).unwrap();
    assert_eq!(d.ticket.state, TicketState::Resolved);
    assert_eq!(d.audit.last().unwrap().actor, SYSTEM_ACTOR);
    // Nothing active any more: a clear has nothing to act on.
    assert!(s
        .condition_cleared(&Clear {
            device_id: "pump-1".into(),
            rule_id: "device-offline".into(),
            on_clear: OnClear::Resolve,
            ts_ms: T0 + 6 * MIN
        })
        .unwrap()
        .is_none());
}

#[test]
fn reminders_repeat_until_acknowledged() {
    let s = common::pg();
    let p = policy();
    let id = s
        .raise(&raise("lift-1", "lift-door-fault", Priority::P2, T0), &p)
        .unwrap()
        .ticket
        .id;
    let reminders = |at: i64| {
        s.sla_tick(at, &p)
            .unwrap()
            .into_iter()
            .filter(|e| matches!(e, SlaEvent::Reminder { .. }))
            .count()
    };
    assert_eq!(reminders(T0 + 4 * MIN), 0);
    assert_eq!(reminders(T0 + 5 * MIN), 1);
    assert_eq!(reminders(T0 + 7 * MIN), 0);
    assert_eq!(reminders(T0 + 10 * MIN), 1);
    // A long pause gives one reminder, not a burst.
    assert_eq!(reminders(T0 + 27 * MIN), 1);
    assert_eq!(s.ticket(id).unwrap().reminders, 3);
    s.transition(id, TicketState::Acknowledged, "crew", "", T0 + 28 * MIN)
        .unwrap();
    assert_eq!(reminders(T0 + 40 * MIN), 0);
    assert_eq!(reminders(T0 + 3 * HOUR), 0);
}

#[test]
fn breaches_escalate_one_level_each_and_are_audited() {
    let s = common::pg();
    let p = policy();
    let (d, _) = desk(&s, p.clone(), T0);
    let mut rx = d.events();
    let id = s
        .raise(&raise("lift-1", "lift-trapped", Priority::P1, T0), &p)
        .unwrap()
        .ticket
        .id;
    d.sla_tick(T0 + 5 * MIN).unwrap();
    let t = s.ticket(id).unwrap();
    assert!(t.ack_breached);
    assert_eq!(t.escalation_level, 2);
    let esc: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
        .filter(|e| e.kind == TicketEventKind::Escalated)
        .collect();
    assert_eq!(esc.len(), 1);
    assert_eq!(esc[0].audience, "street_platform");
    assert_eq!(esc[0].escalation_level, 2);
    // Acknowledged late; nobody on site by 30 min: the next level.
    s.transition(id, TicketState::Acknowledged, "crew", "late", T0 + 8 * MIN)
        .unwrap();
    d.sla_tick(T0 + 29 * MIN).unwrap();
    assert_eq!(s.ticket(id).unwrap().escalation_level, 2);
    d.sla_tick(T0 + 30 * MIN).unwrap();
    let t = s.ticket(id).unwrap();
    assert!(t.on_site_breached);
    assert_eq!(t.escalation_level, 3);
    let audit = s.get(id).unwrap().audit;
    let breaches: Vec<_> = audit.iter().filter(|r| r.action == "sla_breach").collect();
    assert_eq!(breaches.len(), 2);
    assert!(
        breaches[1]
            .note
            .contains("on_site target missed; escalated to level 3 (district)"),
        "{}",
        breaches[1].note
    );
    // Nothing more to miss for a P1 with no resolve target.
    assert!(s.sla_tick(T0 + 30 * HOUR, &p).unwrap().is_empty());
    assert_eq!(
        d.metrics()
            .sla_breaches
            .get_or_create(&StageLabel { stage: "ack" })
            .get(),
        1
    );
}

#[test]
fn on_hold_stops_the_sla_clock() {
    let s = common::pg();
    let p = policy();
    let id = s
        .raise(&raise("pump-1", "pump-bearing-hot", Priority::P2, T0), &p)
        .unwrap()
        .ticket
        .id;
    s.transition(id, TicketState::Acknowledged, "crew", "", T0 + 10 * MIN)
        .unwrap();
    s.transition(
        id,
        TicketState::OnHold,
        "crew",
        "waiting for bearing",
        T0 + HOUR,
    )
    .unwrap();
    assert!(s.sla_tick(T0 + 5 * HOUR, &p).unwrap().is_empty(), "paused");
    let t = s
        .transition(
            id,
            TicketState::Dispatched,
            "crew",
            "part arrived",
            T0 + 6 * HOUR,
        )
        .unwrap();
    assert_eq!(t.resolve_due_ms, Some(T0 + 4 * HOUR + 5 * HOUR));
    assert!(s.sla_tick(T0 + 8 * HOUR, &p).unwrap().is_empty());
    assert_eq!(s.sla_tick(T0 + 9 * HOUR, &p).unwrap().len(), 1);
}

#[test]
fn rating_arithmetic_on_known_tickets() {
    let s = common::pg();
    let p = policy();
    let go = |id: i64, steps: &[(TicketState, i64)]| {
        for (to, at) in steps {
            s.transition(id, *to, "crew", "", *at).unwrap();
        }
    };
    use TicketState::*;
    // P1 in time: ack 3 min, on site 20 min, resolved 60 min.
    let t1 = s
        .raise(&raise("lift-1", "lift-trapped", Priority::P1, T0), &p)
        .unwrap()
        .ticket
        .id;
    go(
        t1,
        &[
            (Acknowledged, T0 + 3 * MIN),
            (OnSite, T0 + 20 * MIN),
            (Resolved, T0 + 60 * MIN),
        ],
    );
    // P1 late on both: ack 10 min, on site 40 min, resolved 120 min.
    let b = T0 + 24 * HOUR;
    let t2 = s
        .raise(&raise("lift-2", "lift-trapped", Priority::P1, b), &p)
        .unwrap()
        .ticket
        .id;
    go(
        t2,
        &[
            (Acknowledged, b + 10 * MIN),
            (OnSite, b + 40 * MIN),
            (Resolved, b + 120 * MIN),
        ],
    );
    // P2 in time: ack 20 min, resolved 3 h.
    let c = T0 + 48 * HOUR;
    let t3 = s
        .raise(&raise("pump-1", "pump-bearing-hot", Priority::P2, c), &p)
        .unwrap()
        .ticket
        .id;
    go(
        t3,
        &[(Acknowledged, c + 20 * MIN), (Resolved, c + 3 * HOUR)],
    );
    // P3 cancelled: not rated.
    let t4 = s
        .raise(&raise("smoke-1", "smoke-low-battery", Priority::P3, c), &p)
        .unwrap()
        .ticket
        .id;
    go(t4, &[(Cancelled, c + MIN)]);
    // The P2 again 2 days after it was resolved: a repeat failure; ack 10 min, resolved 1 h.
    let e = c + 3 * HOUR + 48 * HOUR;
    let t5 = s
        .raise(&raise("pump-1", "pump-bearing-hot", Priority::P2, e), &p)
        .unwrap()
        .ticket
        .id;
    go(t5, &[(Acknowledged, e + 10 * MIN), (Resolved, e + HOUR)]);
    assert_eq!(s.ticket(t5).unwrap().repeat_of, Some(t3));

    let r = s.rating("st-north", "2025-03").unwrap();
    assert_eq!(r.tickets, 5);
    assert_eq!(r.cancelled, 1);
    assert_eq!(r.ack_within_sla, Some(0.75));
    assert_eq!(r.on_site_within_sla, Some(0.5));
    assert_eq!(r.resolved_within_sla, Some(1.0));
    assert_eq!(r.mean_ack_min, Some(10.75));
    assert_eq!(r.mean_resolve_min, Some(105.0));
    assert_eq!(r.repeat_failures, 1);
    assert_eq!(r.repeat_rate, Some(0.25));
    // 100 * (0.35*0.75 + 0.25*0.5 + 0.20*1.0 + 0.20*0.75) = 73.75 -> 3 stars.
    assert!((r.score.unwrap() - 73.75).abs() < 1e-9, "{:?}", r.score);
    assert_eq!(r.stars, Some(3));
    assert_eq!(s.rating("cmp-1", "2025-03").unwrap().score, r.score);
    let none = s.rating("st-north", "2025-04").unwrap();
    assert_eq!((none.tickets, none.stars), (0, None));
    assert!(matches!(
        s.rating("st-north", "2025-13"),
        Err(TicketError::BadMonth(_))
    ));
    assert!(matches!(
        s.rating("st-north", "March"),
        Err(TicketError::BadMonth(_))
    ));
    assert_eq!(
        [
            stars_for(95.0),
            stars_for(80.0),
            stars_for(64.9),
            stars_for(50.0),
            stars_for(10.0)
        ],
        [5, 4, 2, 2, 1]
    );
}

#[test]
fn resident_reports_open_one_ticket_per_compound_and_category() {
    let s = common::pg();
    let report = |detail: &str, ts: i64| ResidentReport {
        compound: "cmp-1".into(),
        station: "st-north".into(),
        category: "lift".into(),
        priority: Priority::P2,
        title: "resident report: lift".into(),
        detail: detail.into(),
        ts_ms: ts,
        building: None,
    };
    let first = s
        .report(
            &report("lift stuck at floor 3", T0),
            &policy(),
            RESIDENT_ACTOR,
        )
        .unwrap();
    assert!(first.created);
    assert_eq!(first.ticket.kind, RESIDENT_KIND);
    assert_eq!(first.ticket.station, "st-north");
    assert_eq!(first.ticket.device_id, "resident:cmp-1");
    let second = s
        .report(
            &report("lift still stuck", T0 + MIN),
            &policy(),
            RESIDENT_ACTOR,
        )
        .unwrap();
    assert!(!second.created);
    assert_eq!(second.ticket.id, first.ticket.id);
    assert_eq!(second.ticket.occurrences, 2);
    assert_eq!(
        second.ticket.detail, "lift stuck at floor 3",
        "the first report's words stay on the ticket"
    );
    let detail = s.get(first.ticket.id).unwrap();
    let reported: Vec<&str> = detail
        .audit
        .iter()
        .map(|a| (a.action.as_str(), a.actor.as_str(), a.note.as_str()))
        .filter(|(action, _, _)| *action == "reported")
        .map(|(_, actor, note)| {
            assert_eq!(actor, RESIDENT_ACTOR);
            note
        })
        .collect();
    assert_eq!(reported, vec!["lift still stuck"]);
}

#[test]
fn captain_reports_are_the_buildings_and_kept_apart_by_priority() {
    let s = common::pg();
    let report = |priority: Priority, building: Option<&str>, ts: i64| ResidentReport {
        compound: "cmp-1".into(),
        station: "st-north".into(),
        category: "fire_safety".into(),
        priority,
        title: "hazard".into(),
        detail: "smoke in the stairwell".into(),
        ts_ms: ts,
        building: building.map(String::from),
    };
    let p2 = s
        .report(
            &report(Priority::P2, Some("b-1"), T0),
            &policy(),
            "captain:p-chen",
        )
        .unwrap();
    let p1 = s
        .report(
            &report(Priority::P1, Some("b-1"), T0 + 1),
            &policy(),
            "captain:p-chen",
        )
        .unwrap();
    let resident = s
        .report(
            &report(Priority::P2, None, T0 + 2),
            &policy(),
            RESIDENT_ACTOR,
        )
        .unwrap();
    assert!(p2.created && p1.created && resident.created);
    assert_eq!(p1.ticket.kind, CAPTAIN_KIND);
    assert_eq!(p1.ticket.building, "b-1");
    assert_eq!(p1.ticket.priority, Priority::P1);
    assert_eq!(resident.ticket.building, "");
    let audit = s.get(p1.ticket.id).unwrap().audit;
    assert_eq!(audit[0].actor, "captain:p-chen");
    let mine: Vec<i64> = s
        .list(&TicketFilter {
            within: Some(TicketScope {
                buildings: vec!["b-1".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(mine, vec![p1.ticket.id, p2.ticket.id]);
}

#[test]
fn list_filters_any_of_states_scope_and_paging() {
    let s = common::pg();
    let mut ids = Vec::new();
    for (i, (station, compound)) in [
        ("st-north", "cmp-1"),
        ("st-north", "cmp-1"),
        ("st-acme", "cmp-2"),
        ("st-acme", "cmp-3"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = raise(&format!("dev-{i}"), "r", Priority::P2, T0 + i as i64 * MIN);
        r.station = station.into();
        r.compound = compound.into();
        ids.push(s.raise(&r, &policy()).unwrap().ticket.id);
    }
    s.transition(ids[0], TicketState::Acknowledged, "crew", "", T0 + 10 * MIN)
        .unwrap();
    s.transition(ids[3], TicketState::Cancelled, "crew", "", T0 + 10 * MIN)
        .unwrap();
    let list =
        |f: TicketFilter| -> Vec<i64> { s.list(&f).unwrap().into_iter().map(|t| t.id).collect() };
    assert_eq!(
        list(TicketFilter {
            states: vec![TicketState::Acknowledged, TicketState::Cancelled],
            ..Default::default()
        }),
        vec![ids[3], ids[0]]
    );
    assert_eq!(
        list(TicketFilter {
            within: Some(TicketScope {
                stations: vec![],
                compounds: vec!["cmp-1".into(), "cmp-3".into()],
                buildings: vec![],
            }),
            ..Default::default()
        }),
        vec![ids[3], ids[1], ids[0]]
    );
    assert_eq!(
        list(TicketFilter {
            within: Some(TicketScope {
                stations: vec!["st-acme".into()],
                compounds: vec![],
                buildings: vec![],
            }),
            ..Default::default()
        }),
        vec![ids[3], ids[2]]
    );
    assert!(list(TicketFilter {
        within: Some(TicketScope::default()),
        ..Default::default()
    })
    .is_empty());
    assert_eq!(
        list(TicketFilter {
            limit: Some(2),
            offset: Some(1),
            ..Default::default()
        }),
        vec![ids[2], ids[1]]
    );
    // Filter values are bound, never spliced into the SQL.
    assert!(list(TicketFilter {
        compound: Some("cmp-1' OR '1'='1".into()),
        ..Default::default()
    })
    .is_empty());
}

#[test]
fn published_events_carry_their_durable_log_id_in_order() {
    let store = common::pg();
    let (d, _) = desk(&store, policy(), 2_000);
    let mut rx = d.events();
    d.raise(&raise("lift-1", "lift-trapped", Priority::P1, 1_000))
        .unwrap();
    let id = store.list(&TicketFilter::default()).unwrap()[0].id;
    d.transition(id, TicketState::Acknowledged, "crew-7", "on our way")
        .unwrap();
    let mut live = Vec::new();
    while let Ok(e) = rx.try_recv() {
        live.push(e);
    }
    let kinds: Vec<_> = live.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![TicketEventKind::Raised, TicketEventKind::Transition]
    );
    let ids: Vec<i64> = live.iter().filter_map(|e| e.event_id).collect();
    assert_eq!(ids.len(), 2, "every event has an id");
    assert!(ids[0] < ids[1]);
    // The log returns the same events, with the same ids, after any id.
    let logged = store.events_after(0, 10).unwrap();
    assert_eq!(
        logged.iter().filter_map(|e| e.event_id).collect::<Vec<_>>(),
        ids
    );
    assert_eq!(d.events_after(0, 10).unwrap(), live);
    let after_first = store.events_after(ids[0], 10).unwrap();
    assert_eq!(after_first.len(), 1);
    let replayed = &after_first[0];
    assert_eq!(replayed.state, Some(TicketState::Acknowledged));
    assert_eq!(replayed.ticket_id, Some(id));
}

#[test]
fn a_batch_commits_once_and_publishes_only_after_the_commit() {
    let store = common::pg();
    let (d, clock) = desk(&store, policy(), 2_000);
    let mut rx = d.events();
    // A power cut: a thousand devices go silent at once.
    d.begin_batch();
    for i in 0..1000 {
        d.raise(&raise(
            &format!("pump-{i}"),
            "device-offline",
            Priority::P3,
            1_000 + i,
        ))
        .unwrap();
    }
    // A bad transition inside the batch fails alone; the batch goes on.
    assert!(d
        .transition(1, TicketState::Closed, "crew-7", "skip ahead")
        .is_err());
    assert!(
        rx.try_recv().is_err(),
        "nothing is published before the batch is committed"
    );
    // Another connection does not see the uncommitted batch.
    let mut other = common::client(&store);
    let committed = |c: &mut postgres::Client| common::count(c, "SELECT count(*) FROM tickets");
    assert_eq!(committed(&mut other), 0);
    d.end_batch();
    assert_eq!(
        committed(&mut other),
        1000,
        "one commit made the whole batch durable"
    );
    let mut published = Vec::new();
    while let Ok(e) = rx.try_recv() {
        published.push(e);
    }
    assert_eq!(published.len(), 1000);
    assert!(published.windows(2).all(|w| w[0].event_id < w[1].event_id));
    // Outside a batch, operations commit and publish one by one as before.
    let id = store.list(&TicketFilter::default()).unwrap()[0].id;
    clock.set(3_000);
    d.transition(id, TicketState::Acknowledged, "crew-7", "on our way")
        .unwrap();
    assert_eq!(
        rx.try_recv().unwrap().state,
        Some(TicketState::Acknowledged)
    );
}

#[test]
fn a_month_of_fresh_unacknowledged_tickets_is_not_rated_yet() {
    let s = common::pg();
    let p = policy();
    // Two P1s just opened: no acknowledge, on-site or resolve verdict exists yet; the
    // repeat figure alone (perfect) must not make the month 100 and 5 stars.
    s.raise(&raise("lift-1", "lift-trapped", Priority::P1, T0), &p)
        .unwrap();
    s.raise(&raise("smoke-1", "smoke-alarm", Priority::P1, T0 + MIN), &p)
        .unwrap();
    let r = s.rating("st-north", "2025-03").unwrap();
    assert_eq!(r.tickets, 2);
    assert_eq!((r.ack_within_sla, r.on_site_within_sla), (None, None));
    assert_eq!((r.score, r.stars), (None, None), "{r:?}");
}

#[test]
fn a_trigger_sent_again_is_not_counted_again() {
    let s = common::pg();
    let p = policy();
    let first = s
        .raise(&raise("lift-1", "lift-trapped", Priority::P1, T0), &p)
        .unwrap();
    assert!(first.created && !first.replayed);
    let again = s
        .raise(&raise("lift-1", "lift-trapped", Priority::P1, T0), &p)
        .unwrap();
    assert!(again.replayed && !again.created);
    assert_eq!(again.ticket.id, first.ticket.id);
    assert_eq!(again.ticket.occurrences, 1, "a copy adds no occurrence");
    let later = s
        .raise(&raise("lift-1", "lift-trapped", Priority::P1, T0 + MIN), &p)
        .unwrap();
    assert!(!later.replayed && !later.created);
    assert_eq!(later.ticket.occurrences, 2, "a newer trigger counts");
    // An older copy after the newer one is still a copy.
    let old = s
        .raise(
            &raise("lift-1", "lift-trapped", Priority::P1, T0 + 30_000),
            &p,
        )
        .unwrap();
    assert!(old.replayed);
    assert_eq!(old.ticket.occurrences, 2);
}
