//! Maintenance windows and lift modes in the running service: what non-life-safety rules
//! would raise is held back, counted and published as a `suppressed` event; life-safety
//! rules always raise; a lift's mode survives a restart of the rules stage.

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_estate::{Registry, WindowDef};
use steward_ingest::contract::decode;
use steward_ingest::{DecodedSink, IngestConfig};
use steward_rules::*;
use steward_tickets::{SqliteTicketStore, TicketEvent, TicketEventKind};

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn send(sink: &mut RulesSink, registry: &Registry, topic: &str, body: serde_json::Value) {
    let dir = registry.directory();
    let payload = body.to_string();
    sink.accept(&decode(
        topic.as_bytes(),
        payload.as_bytes(),
        &dir,
        T0,
        &IngestConfig::default(),
    ));
    sink.flush();
}

fn start(registry: &Registry, db: &std::path::Path) -> (RulesSink, RulesHandle, RulesMetrics) {
    let cfg = RulesConfig {
        database: db.to_path_buf(),
        watch: false,
        tick_interval: Duration::from_millis(20),
        snapshot_interval: Duration::from_millis(100),
        ..Default::default()
    };
    let mut prom = prometheus_client::registry::Registry::default();
    let metrics = RulesMetrics::new(&mut prom);
    let (sink, handle) = RulesService::start_with_metrics(
        cfg,
        registry.clone(),
        Arc::new(SqliteTicketStore::open(db).unwrap()),
        Arc::new(ManualClock::new(T0)),
        Arc::new(NoCommands),
        metrics.clone(),
    )
    .unwrap();
    (sink, handle, metrics)
}

#[test]
fn windows_and_lift_modes_suppress_all_but_life_safety() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("tickets.db");
    let registry = registry();
    registry
        .create_window(
            &WindowDef {
                id: "w-b1".into(),
                building: Some("b-1".into()),
                from: "2025-03-02T00:00:00Z".into(),
                to: "2025-03-04T00:00:00Z".into(),
                reason: Some("pump room overhaul".into()),
                ..Default::default()
            },
            Some("test"),
        )
        .unwrap();
    let (mut sink, handle, metrics) = start(&registry, &db);
    let mut rx = handle.desk().events();
    let store = handle.desk().store().clone();
    let hot = |ts: i64| serde_json::json!({"ts": ts, "metrics": {"bearing_temp_c": 90.0}});

    // In the window: the pump's P2 is suppressed; the same rule outside it raises.
    send(&mut sink, &registry, "devices/pump-1/telemetry", hot(T0));
    send(&mut sink, &registry, "devices/pump-9/telemetry", hot(T0));
    // A fire alarm in the window's building is life safety: a P1.
    send(
        &mut sink,
        &registry,
        "devices/smoke-1/telemetry",
        serde_json::json!({"ts": T0, "metrics": {"alarm": true}}),
    );
    wait_until("fire ticket", || {
        store
            .active_for("smoke-1", "smoke-fire-alarm")
            .unwrap()
            .is_some()
    });
    wait_until("pump-9 ticket", || {
        store
            .active_for("pump-9", "pump-bearing-hot")
            .unwrap()
            .is_some()
    });
    wait_until("suppressed count", || metrics.suppressed("window") == 1);
    assert!(store
        .active_for("pump-1", "pump-bearing-hot")
        .unwrap()
        .is_none());
    let deadline = Instant::now() + Duration::from_secs(30);
    let e: TicketEvent = loop {
        match rx.try_recv() {
            Ok(e) if e.kind == TicketEventKind::Suppressed => break e,
            Ok(_) => {}
            Err(_) => {
                assert!(Instant::now() < deadline, "no suppressed event");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(
        (
            e.device_id.as_str(),
            e.rule_id.as_str(),
            e.audience.as_str()
        ),
        ("pump-1", "pump-bearing-hot", "window:w-b1")
    );
    assert!(e.ticket_id.is_none());
    assert!(e.message.contains("w-b1") && e.message.contains("pump room overhaul"));

    // lift-9 (b-2, no window) reports inspection: its door faults open nothing, a
    // trapped passenger still does.
    let lift = "devices/lift-9/telemetry";
    send(
        &mut sink,
        &registry,
        lift,
        serde_json::json!({"ts": T0 + 1_000, "metrics": {"mode": "inspection"}}),
    );
    for i in 0..3 {
        send(
            &mut sink,
            &registry,
            "devices/lift-9/events",
            serde_json::json!({"ts": T0 + 2_000 + i, "event": "door_fault"}),
        );
    }
    wait_until("mode suppression", || {
        metrics.suppressed("device_mode") >= 1
    });
    send(
        &mut sink,
        &registry,
        "devices/lift-9/events",
        serde_json::json!({"ts": T0 + 3_000, "event": "trapped"}),
    );
    wait_until("trapped ticket", || {
        store
            .active_for("lift-9", "lift-trapped")
            .unwrap()
            .is_some()
    });
    assert!(store
        .active_for("lift-9", "lift-door-fault")
        .unwrap()
        .is_none());
    handle.shutdown();

    // The mode is rule state: after a restart the lift is still in inspection, so a
    // safety-device trip during the inspection (not a life-safety rule) opens nothing.
    let (mut sink, handle, metrics) = start(&registry, &db);
    let store = handle.desk().store().clone();
    let trip = |ts: i64| serde_json::json!({"ts": ts, "event": "overspeed"});
    send(
        &mut sink,
        &registry,
        "devices/lift-9/events",
        trip(T0 + 10_000),
    );
    wait_until("mode suppression after restart", || {
        metrics.suppressed("device_mode") == 1
    });
    assert!(store
        .active_for("lift-9", "lift-safety-trip")
        .unwrap()
        .is_none());
    // Back to normal: the same trip opens a ticket.
    send(
        &mut sink,
        &registry,
        lift,
        serde_json::json!({"ts": T0 + 20_000, "metrics": {"mode": "normal"}}),
    );
    send(
        &mut sink,
        &registry,
        "devices/lift-9/events",
        trip(T0 + 30_000),
    );
    wait_until("safety trip ticket", || {
        store
            .active_for("lift-9", "lift-safety-trip")
            .unwrap()
            .is_some()
    });
    handle.shutdown();
}
