//! The rules engine's output through the ticket desk: routing of real fault scenarios to
//! stations, and rule state saved in the ticket store surviving a restart. The ticket
//! domain itself is tested in the steward-tickets crate.

mod common;

use common::*;
use std::sync::Arc;
use steward_estate::DeviceKind;
use steward_rules::*;
use steward_tickets::{
    Priority, Raise, SlaPolicy, SqliteTicketStore, TicketDesk, TicketEventKind, TicketFilter,
    TicketState, TicketStore,
};

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

#[test]
fn routing_follows_the_estate_and_list_filters() {
    // Run two fault scenarios through the real engine and dispatcher.
    let mut sim = Sim::default_pack(ALL_DEVICES);
    sim.run_for(10 * MIN);
    let ts = sim.now;
    sim.feed("devices/lift-1/status", b"offline", ts);
    sim.feed("devices/lift-9/status", b"offline", ts);
    let store: Arc<dyn TicketStore> = Arc::new(SqliteTicketStore::open_in_memory().unwrap());
    let desk = TicketDesk::new(
        store.clone(),
        policy(),
        Arc::new(ManualClock::new(ts)),
        Default::default(),
    );
    let mut rx = desk.events();
    let d = Dispatcher::new(desk, Arc::new(NoCommands), RulesMetrics::default());
    d.apply(std::mem::take(&mut sim.actions));
    let north = store
        .list(&TicketFilter {
            station: Some("st-north".into()),
            ..Default::default()
        })
        .unwrap();
    let acme = store
        .list(&TicketFilter {
            station: Some("st-acme".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        north
            .iter()
            .map(|t| t.device_id.as_str())
            .collect::<Vec<_>>(),
        vec!["lift-1"]
    );
    assert_eq!(
        acme.iter()
            .map(|t| t.device_id.as_str())
            .collect::<Vec<_>>(),
        vec!["lift-9"]
    );
    assert_eq!(acme[0].compound, "cmp-2");
    let f = |f: TicketFilter| store.list(&f).unwrap().len();
    assert_eq!(
        f(TicketFilter {
            compound: Some("cmp-1".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        f(TicketFilter {
            priority: Some(Priority::P3),
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        f(TicketFilter {
            priority: Some(Priority::P1),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        f(TicketFilter {
            state: Some(TicketState::Open),
            active_only: true,
            ..Default::default()
        }),
        2
    );
    assert_eq!(
        f(TicketFilter {
            from_ms: Some(ts + 1),
            ..Default::default()
        }),
        0
    );
    assert_eq!(
        f(TicketFilter {
            from_ms: Some(ts),
            to_ms: Some(ts + 1),
            ..Default::default()
        }),
        2
    );
    let mut kinds = Vec::new();
    while let Ok(e) = rx.try_recv() {
        kinds.push((e.kind, e.topic));
    }
    assert!(kinds.contains(&(
        TicketEventKind::Raised,
        "stations/st-acme/alerts".to_string()
    )));
    assert!(kinds.contains(&(
        TicketEventKind::Notification,
        "stations/st-north/alerts".to_string()
    )));
}

#[test]
fn tickets_and_rule_state_survive_reopening_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tickets.db");
    let co = |sim: &mut Sim, from: i64, minutes: i64| {
        for i in 0..minutes {
            let ts = from + i * MIN;
            let m = serde_json::json!({"ts": ts, "metrics": {"co_ppm": 420.0}});
            sim.feed("devices/smoke-1/telemetry", m.to_string().as_bytes(), ts);
        }
    };
    let id = {
        let store = SqliteTicketStore::open(&path).unwrap();
        let id = store
            .raise(
                &raise("lift-1", "lift-trapped", Priority::P1, T0),
                &policy(),
            )
            .unwrap()
            .ticket
            .id;
        store
            .transition(id, TicketState::Acknowledged, "crew", "", T0 + MIN)
            .unwrap();
        // CO at 420 ppm for 3 minutes (readings at 0..2 min): not yet the 4 of UL 2034.
        let mut sim = Sim::default_pack(&[]);
        co(&mut sim, T0, 3);
        assert!(sim.raises().is_empty());
        store
            .save_rule_states(&sim.engine.take_dirty(), T0 + 3 * MIN)
            .unwrap();
        id
    };
    let store = SqliteTicketStore::open(&path).unwrap();
    let d = store.get(id).unwrap();
    assert_eq!(d.ticket.state, TicketState::Acknowledged);
    assert_eq!(d.audit.len(), 2);
    let mut sim = Sim::default_pack(&[]);
    assert_eq!(sim.engine.restore(store.load_rule_states().unwrap()), 1);
    co(&mut sim, T0 + 3 * MIN, 2);
    let r = sim
        .raised("smoke-1", "smoke-co")
        .expect("duration carried over the restart");
    assert_eq!(r.ts_ms, T0 + 4 * MIN);
    // Without the saved state the same readings are only the start of a duration.
    let mut fresh = Sim::default_pack(&[]);
    co(&mut fresh, T0 + 3 * MIN, 2);
    assert!(fresh.raises().is_empty());
}
