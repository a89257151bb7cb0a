//! Self-tests prove planned rounds (docs/rounds.md): smoke detectors send a `test` event
//! every interval and pumps do a test run with pressure, at times fixed by the seed.

use steward_device_sim::{DeviceModel, SelfTests, PUMP_TEST_RUN_MS};
use steward_estate::DeviceKind;

const DAY: i64 = 86_400_000;
const MIN: i64 = 60_000;
/// 2026-03-01T00:00:00Z.
const T0: i64 = 1_772_323_200_000;

fn tests() -> SelfTests {
    SelfTests {
        smoke_test_every_ms: Some(30 * DAY),
        pump_run_every_ms: Some(7 * DAY),
    }
}

/// Times of the `test` events of a detector over 60 days, reporting every 10 minutes.
fn smoke_tests(seed: u64) -> Vec<i64> {
    let mut m = DeviceModel::new("smoke-1", DeviceKind::Smoke, seed);
    m.set_self_tests(tests());
    let mut out = Vec::new();
    let mut t = T0;
    while t < T0 + 60 * DAY {
        m.metrics_at(t);
        out.extend(
            m.take_events()
                .into_iter()
                .filter(|e| e.event == "test")
                .map(|e| e.ts),
        );
        t += 10 * MIN;
    }
    out
}

#[test]
fn smoke_detectors_test_themselves_on_a_seeded_schedule() {
    let a = smoke_tests(7);
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[1] - a[0], 30 * DAY);
    assert_eq!(smoke_tests(7), a, "the same seed gives the same times");
    assert_ne!(smoke_tests(8), a, "another seed moves them");
    // Off by default.
    let mut m = DeviceModel::new("smoke-1", DeviceKind::Smoke, 7);
    let mut t = T0;
    while t < T0 + 40 * DAY {
        m.metrics_at(t);
        assert!(m.take_events().iter().all(|e| e.event != "test"));
        t += 60 * MIN;
    }
}

#[test]
fn pumps_run_a_weekly_test_with_pressure() {
    let mut m = DeviceModel::new("pump-1", DeviceKind::Pump, 3);
    m.set_self_tests(tests());
    let mut starts = Vec::new();
    let mut samples = Vec::new();
    let mut t = T0;
    while t < T0 + 15 * DAY {
        let metrics = m.metrics_at(t);
        samples.push((t, metrics));
        for e in m.take_events() {
            if e.event == "started" && e.data.get("test") == Some(&serde_json::json!(true)) {
                starts.push(e.ts);
            }
        }
        t += MIN;
    }
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert_eq!(starts[1] - starts[0], 7 * DAY);
    for s in &starts {
        let during: Vec<_> = samples
            .iter()
            .filter(|(t, _)| *t > *s && *t < s + PUMP_TEST_RUN_MS)
            .collect();
        assert!(during.len() >= 4, "samples during the run at {s}");
        for (t, x) in during {
            assert_eq!(x["running"], serde_json::json!(true), "running at {t}");
            let p = x["outlet_pressure_mpa"].as_f64().expect("pressure");
            assert!((0.2..=1.6).contains(&p), "outlet {p} MPa at {t}");
        }
    }
}
