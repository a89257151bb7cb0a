//! The running stage: decoded messages handed to its sink close items on the stage's
//! thread, and the schedule file is reloaded when it changes (an invalid change keeps the
//! running schedules).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_estate::clock::ManualClock;
use steward_estate::model::{DeviceEvent, Reading, Value};
use steward_estate::{Decoded, DecodedSink, DeviceKind, EstateFile, Registry};
use steward_rounds::{start, RoundsConfig};
use steward_tickets::{SlaPolicy, SqliteTicketStore, TicketDesk, TicketMetrics};

/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200_000;

const ESTATE: &str = r#"
[[stations]]
id = "st-1"
name = "North"
[[streets]]
id = "street-1"
name = "Riverside"
fallback_station = "st-1"
[[communities]]
id = "com-1"
name = "Elm"
street = "street-1"
[[compounds]]
id = "cmp-1"
name = "Elm Court"
community = "com-1"
[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"
[[devices]]
id = "smoke-1"
kind = "smoke"
vendor = "acme"
building = "b-1"
secret = "device-secret-0123"
"#;

const ONE: &str = r#"
[[schedule]]
id = "smoke-monthly"
name = "Smoke detector function test"
kinds = ["smoke"]
cadence = "monthly"
by = "station"
complete_within = "20days"
[[schedule.item]]
id = "function-test"
text = "Detector tested"
proof = { event = "test" }
"#;

fn wait(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !check() {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_sink_feeds_evidence_and_the_file_reloads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let schedules = dir.path().join("rounds.toml");
    std::fs::write(&schedules, ONE).expect("write");
    let clock = Arc::new(ManualClock::new(T0 + 3_600_000));
    let tickets = SqliteTicketStore::open_in_memory().expect("tickets");
    let desk = TicketDesk::new(
        Arc::new(tickets),
        SlaPolicy::default(),
        clock.clone(),
        TicketMetrics::default(),
    );
    let registry = Registry::open_in_memory().expect("registry");
    registry
        .apply(&EstateFile::parse(ESTATE).expect("estate"))
        .expect("apply");
    let cfg = RoundsConfig {
        schedules: Some(schedules.clone()),
        watch_interval: Duration::from_millis(100),
        generate_interval: Duration::from_millis(100),
        ..Default::default()
    };
    assert!(cfg.validate().is_empty());
    let (mut sink, handle) =
        start(&cfg, &dir.path().join("rounds.db"), registry, desk, clock).expect("starts");
    let rounds = handle.rounds().clone();
    wait("the round is made", || {
        rounds
            .store()
            .list(Some("open"), T0, 10)
            .expect("list")
            .len()
            == 1
    });

    // A reading of another kind and an unrelated event are filtered out on ingest's
    // thread; the `test` event closes the item.
    let decoded = Decoded {
        readings: vec![Reading {
            device_id: "lift-9".into(),
            compound: "cmp-1".into(),
            kind: DeviceKind::Lift,
            ts_ms: T0 + 7_200_000,
            seq: None,
            values: vec![("door_open", Value::Bool(true))],
            extras: None,
        }],
        events: vec![
            DeviceEvent {
                device_id: "smoke-1".into(),
                compound: "cmp-1".into(),
                kind: DeviceKind::Smoke,
                ts_ms: T0 + 7_200_000,
                event: "tamper".into(),
                data: "{}".into(),
            },
            DeviceEvent {
                device_id: "smoke-1".into(),
                compound: "cmp-1".into(),
                kind: DeviceKind::Smoke,
                ts_ms: T0 + 7_300_000,
                event: "test".into(),
                data: "{}".into(),
            },
        ],
        ..Default::default()
    };
    sink.accept(&decoded);
    sink.flush();
    wait("the item is proved", || {
        rounds
            .store()
            .list(Some("done"), T0, 10)
            .expect("list")
            .len()
            == 1
    });

    // An invalid change is refused and the running schedules kept; a valid one reloads.
    std::fs::write(&schedules, ONE.replace("monthly\"", "fortnightly\"")).expect("write");
    wait("the invalid change is seen", || {
        handle.reload_errors.load(Ordering::SeqCst) == 1
    });
    assert_eq!(rounds.schedules().schedules.len(), 1);
    let two = format!(
        "{ONE}\n{}",
        ONE.replace("smoke-monthly", "smoke-quarterly")
            .replace("\"monthly\"", "\"quarterly\"")
            // Q1 started in January: a deadline past March 1st.
            .replace("20days", "100days")
    );
    std::fs::write(&schedules, two).expect("write");
    wait("the file is reloaded", || {
        rounds.schedules().schedules.len() == 2
    });
    wait("the new schedule's round is made", || {
        rounds.store().list(None, T0, 10).expect("list").len() == 2
    });
    drop(sink);
    handle.shutdown();
}
