//! 60 simulated days of device-sim models with their self-tests on (smoke detectors test
//! themselves weekly, the pump runs its weekly test), fed to the rounds as ingest would:
//! every smoke and pump round is proved by telemetry alone, and a detector whose battery
//! runs low from April fails its April battery item, opening one corrective ticket.

use std::sync::Arc;
use steward_device_sim::{DeviceModel, Fault, SelfTests};
use steward_estate::clock::ManualClock;
use steward_estate::model::Value;
use steward_estate::{catalog, DeviceKind, EstateFile, Registry};
use steward_rounds::{Obs, RoundStore, Rounds, ScheduleSet};
use steward_tickets::{
    SlaPolicy, SqliteTicketStore, TicketDesk, TicketFilter, TicketMetrics, TicketStore,
};

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;
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
[[devices]]
id = "smoke-2"
kind = "smoke"
vendor = "acme"
building = "b-1"
secret = "device-secret-0123"
[[devices]]
id = "pump-1"
kind = "pump"
vendor = "acme"
building = "b-1"
secret = "device-secret-0123"
"#;

/// The shipped schedules of detectors and pumps (demo/rounds.toml).
fn schedules() -> ScheduleSet {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/rounds.toml");
    let mut set = ScheduleSet::load(&path).expect("demo/rounds.toml");
    set.schedules
        .retain(|s| s.id == "smoke-function-test" || s.id == "pump-weekly-run");
    set
}

/// A model's report as ingest would hand it over: catalogue metrics with their types.
fn obs(
    id: &str,
    kind: DeviceKind,
    ts_ms: i64,
    m: &serde_json::Map<String, serde_json::Value>,
) -> Obs {
    let values = catalog::metrics(kind)
        .iter()
        .filter_map(|spec| {
            let v = m.get(spec.name)?;
            let v = match v {
                serde_json::Value::Bool(b) => Value::Bool(*b),
                serde_json::Value::Number(n) => Value::Float(n.as_f64()?),
                _ => return None,
            };
            Some((spec.name, v))
        })
        .collect();
    Obs {
        device_id: id.into(),
        kind,
        ts_ms,
        event: None,
        values,
    }
}

#[test]
fn sixty_days_of_a_simulated_fleet_prove_their_rounds() {
    let clock = Arc::new(ManualClock::new(T0));
    let tickets = SqliteTicketStore::open_in_memory().expect("tickets");
    let desk = TicketDesk::new(
        Arc::new(tickets.clone()),
        SlaPolicy::default(),
        clock.clone(),
        TicketMetrics::default(),
    );
    let registry = Registry::open_in_memory().expect("registry");
    registry
        .apply(&EstateFile::parse(ESTATE).expect("estate"))
        .expect("apply");
    let rounds = Rounds::new(
        RoundStore::open_in_memory().expect("store"),
        desk,
        registry,
        schedules(),
    )
    .expect("rounds");
    let tests = SelfTests {
        smoke_test_every_ms: Some(7 * DAY),
        pump_run_every_ms: Some(7 * DAY),
    };
    let mut fleet: Vec<(DeviceModel, DeviceKind, i64)> = [
        ("smoke-1", DeviceKind::Smoke, 10 * MIN),
        ("smoke-2", DeviceKind::Smoke, 10 * MIN),
        ("pump-1", DeviceKind::Pump, MIN),
    ]
    .into_iter()
    .map(|(id, kind, every)| {
        let mut m = DeviceModel::new(id, kind, 42);
        m.set_self_tests(tests);
        (m, kind, every)
    })
    .collect();
    let mut t = T0;
    let mut last_gen = T0 - DAY;
    while t < T0 + 60 * DAY {
        clock.set(t);
        if t - last_gen >= 3_600_000 {
            rounds.generate(t).expect("generate");
            last_gen = t;
        }
        if t == T0 + 31 * DAY {
            // From April 1st smoke-2's battery reads low.
            fleet[1].0.set_fault(Some(Fault::SmokeLowBattery));
        }
        let mut batch = Vec::new();
        for (m, kind, every) in &mut fleet {
            if (t - T0) % *every != 0 {
                continue;
            }
            let metrics = m.metrics_at(t);
            for e in m.take_events() {
                batch.push(Obs {
                    device_id: m.id().into(),
                    kind: *kind,
                    ts_ms: e.ts,
                    event: Some(e.event.to_string()),
                    values: Vec::new(),
                });
            }
            batch.push(obs(m.id(), *kind, t, &metrics));
        }
        rounds.observe(&batch).expect("observe");
        t += MIN;
    }

    let all = rounds.store().list(None, t, 1000).expect("list");
    let mut got: Vec<String> = all
        .iter()
        .map(|r| format!("{} {} {}", r.asset, r.period, r.status))
        .collect();
    got.sort();
    let mut want = vec![
        "smoke-1 2026-03 done".to_string(),
        "smoke-1 2026-04 done".into(),
        "smoke-2 2026-03 done".into(),
        "smoke-2 2026-04 failed".into(),
    ];
    for monday in [
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
        "2026-04-06",
        "2026-04-13",
        "2026-04-20",
        "2026-04-27",
    ] {
        want.push(format!("pump-1 {monday} done"));
    }
    want.sort();
    assert_eq!(got, want);
    for r in &all {
        for i in rounds.store().detail(r.id).expect("detail").items {
            assert_eq!(i.actor.as_deref(), Some("telemetry"), "{r:?} {i:?}");
        }
    }
    let corrective: Vec<String> = tickets
        .list(&TicketFilter::default())
        .expect("tickets")
        .into_iter()
        .filter(|t| t.ticket_kind == "incident")
        .map(|t| format!("{} {}", t.device_id, t.title))
        .collect();
    assert_eq!(
        corrective,
        vec!["smoke-2 Smoke detector function test failed: Battery above its low-battery level (2.7 V) (smoke-2)"]
    );
}
