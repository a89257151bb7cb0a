use super::thresholds::*;
use super::*;
use steward_estate::catalog::{self, MetricType};

/// 2025-06-15 00:00:00 UTC (08:00 local): a fixed start keeps the tests reproducible.
const T0: i64 = 1_749_945_600_000;
const MIN: i64 = 60_000;
const HOUR: i64 = 60 * MIN;

struct Run {
    samples: Vec<(i64, Map<String, Value>)>,
    events: Vec<SimEvent>,
}

impl Run {
    fn events_named(&self, name: &str) -> usize {
        self.events.iter().filter(|e| e.event == name).count()
    }
    fn last(&self) -> &Map<String, Value> {
        &self.samples.last().expect("at least one sample").1
    }
}

fn run(model: &mut DeviceModel, from: i64, to: i64, step: i64) -> Run {
    let mut samples = Vec::new();
    let mut t = from;
    while t <= to {
        samples.push((t, model.metrics_at(t)));
        t += step;
    }
    Run {
        samples,
        events: model.take_events(),
    }
}

fn b(m: &Map<String, Value>, k: &str) -> bool {
    m.get(k)
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("{k} is not a bool in {m:?}"))
}
fn f(m: &Map<String, Value>, k: &str) -> f64 {
    m.get(k)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("{k} is not a number in {m:?}"))
}
fn s<'a>(m: &'a Map<String, Value>, k: &str) -> &'a str {
    m.get(k)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{k} is not a string in {m:?}"))
}

/// Every metric is in the catalogue, of its type and within its range; every metric but
/// the optional `fault_code` is present.
fn check_metrics(kind: DeviceKind, m: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in m {
        let spec =
            catalog::metric(kind, name).ok_or_else(|| format!("{kind}: unknown metric {name}"))?;
        let ok = match spec.ty {
            MetricType::Bool => value.is_boolean(),
            MetricType::Float { min, max } => value
                .as_f64()
                .is_some_and(|v| v.is_finite() && v >= min && v <= max),
            MetricType::Int { min, max } => value.as_i64().is_some_and(|v| v >= min && v <= max),
            MetricType::Enum(values) => value.as_str().is_some_and(|v| values.contains(&v)),
            MetricType::Text { max_len } => value.as_str().is_some_and(|v| v.len() <= max_len),
        };
        if !ok {
            return Err(format!("{kind}: {name}={value} outside {:?}", spec.ty));
        }
    }
    for spec in catalog::metrics(kind) {
        if spec.name != "fault_code" && !m.contains_key(spec.name) {
            return Err(format!("{kind}: missing {}", spec.name));
        }
    }
    Ok(())
}

fn check_events(kind: DeviceKind, events: &[SimEvent]) {
    let mut last = i64::MIN;
    for e in events {
        assert!(
            catalog::events(kind).contains(&e.event),
            "{kind}: event {} not in catalogue",
            e.event
        );
        assert!(e.ts > last, "{kind}: event timestamps must increase");
        last = e.ts;
    }
}

#[test]
fn same_seed_same_payloads() {
    for kind in DeviceKind::ALL {
        let mut a = DeviceModel::new("dev-1", kind, 42);
        let mut b = DeviceModel::new("dev-1", kind, 42);
        let mut c = DeviceModel::new("dev-1", kind, 43);
        let mut d = DeviceModel::new("dev-2", kind, 42);
        let (mut same_c, mut same_d) = (true, true);
        for i in 0..240 {
            let t = T0 + i * 30_000;
            if i == 120 {
                let fault = Fault::ALL.into_iter().find(|f| f.kind() == Some(kind));
                a.set_fault(fault);
                b.set_fault(fault);
            }
            let ma = a.tick(t);
            assert_eq!(ma, b.tick(t), "{kind} diverged at tick {i}");
            same_c &= ma == c.tick(t);
            same_d &= ma == d.tick(t);
        }
        assert!(!same_c, "{kind}: another seed must give other payloads");
        assert!(!same_d, "{kind}: another id must give other payloads");
    }
}

#[test]
fn tick_publishes_contract_v1() {
    let mut m = DeviceModel::new("gate-7", DeviceKind::Gate, 1);
    let mut seqs = Vec::new();
    let mut saw_event = false;
    for i in 0..200 {
        for msg in m.tick(T0 + i * 30_000) {
            assert!(!msg.retain);
            let doc: Value = serde_json::from_slice(&msg.payload).expect("payload is json");
            match msg.topic.as_str() {
                "devices/gate-7/telemetry" => {
                    assert!(doc["ts"].as_i64().is_some());
                    seqs.push(doc["seq"].as_u64().expect("seq"));
                    assert!(doc["metrics"].is_object());
                }
                "devices/gate-7/events" => {
                    saw_event = true;
                    assert!(doc["ts"].as_i64().is_some());
                    assert!(catalog::GATE_EVENTS.contains(&doc["event"].as_str().unwrap_or("")));
                    assert!(doc["data"].is_object());
                }
                other => panic!("unexpected topic {other}"),
            }
        }
    }
    assert_eq!(seqs, (1..=200).collect::<Vec<u64>>());
    assert!(saw_event, "a gate at rush hour sees people");
}

#[test]
fn metrics_in_catalogue_and_range_for_a_day() {
    for kind in DeviceKind::ALL {
        for interval_s in [10, 60, 300] {
            let mut m = DeviceModel::new(&format!("{kind}-range"), kind, 7);
            let r = run(&mut m, T0, T0 + 24 * HOUR, interval_s * 1000);
            for (t, metrics) in &r.samples {
                if let Err(e) = check_metrics(kind, metrics) {
                    panic!("interval {interval_s}s at {t}: {e}");
                }
            }
            check_events(kind, &r.events);
        }
    }
}

#[test]
fn metrics_stay_in_range_under_every_fault() {
    for fault in Fault::ALL {
        for kind in DeviceKind::ALL.into_iter().filter(|k| fault.applies_to(*k)) {
            let mut m = DeviceModel::new("faulty", kind, 3);
            let mut r = run(&mut m, T0, T0 + HOUR, 10_000);
            m.set_fault(Some(fault));
            let r2 = run(&mut m, T0 + HOUR + 10_000, T0 + 7 * HOUR, 10_000);
            m.set_fault(None);
            let r3 = run(&mut m, T0 + 7 * HOUR + 10_000, T0 + 9 * HOUR, 10_000);
            r.samples.extend(r2.samples.into_iter().chain(r3.samples));
            r.events.extend(r2.events.into_iter().chain(r3.events));
            for (t, metrics) in &r.samples {
                if let Err(e) = check_metrics(kind, metrics) {
                    panic!("{fault} at {t}: {e}");
                }
            }
            check_events(kind, &r.events);
        }
    }
}

#[test]
fn normal_smoke_trips_no_rule() {
    for seed in 0..5 {
        let mut m = DeviceModel::new("smoke-1", DeviceKind::Smoke, seed);
        let r = run(&mut m, T0, T0 + 24 * HOUR, 10_000);
        let temps: Vec<f64> = r
            .samples
            .iter()
            .map(|(_, m)| f(m, "temperature_c"))
            .collect();
        for (_, x) in &r.samples {
            for flag in ["alarm", "pre_alarm", "fault", "tamper", "dirty"] {
                assert!(!b(x, flag), "{flag} in normal operation");
            }
            assert!(f(x, "co_ppm") < 70.0);
            assert!(f(x, "obscuration_pct_per_m") < 1.0);
            assert!(f(x, "battery_v") > SMOKE_LOW_BATTERY_V + 0.1);
        }
        let (lo, hi) = min_max(&temps);
        assert!(lo > 10.0 && hi < 35.0, "indoor temperature {lo}..{hi}");
        assert!(hi - lo > 1.0, "a daily cycle shows");
        assert!(r.events.is_empty(), "no smoke events: {:?}", r.events);
    }
}

#[test]
fn normal_pump_trips_no_rule() {
    for seed in 0..5 {
        let mut m = DeviceModel::new("pump-1", DeviceKind::Pump, seed);
        let r = run(&mut m, T0, T0 + 24 * HOUR, 10_000);
        let running: Vec<&Map<String, Value>> = r
            .samples
            .iter()
            .map(|(_, m)| m)
            .filter(|m| b(m, "running"))
            .collect();
        assert!(
            !running.is_empty() && running.len() < r.samples.len() / 2,
            "seed {seed}: the pump cycles ({} of {} samples running)",
            running.len(),
            r.samples.len()
        );
        let baseline = median(running.iter().map(|m| f(m, "power_kw")).collect());
        for x in &running {
            assert!(f(x, "power_kw") >= DRY_RUN_POWER_SHARE * baseline);
            assert!(f(x, "flow_m3h") > 5.0);
            assert!(f(x, "outlet_pressure_mpa") > f(x, "inlet_pressure_mpa"));
            assert!(f(x, "current_a") > 1.0);
        }
        for (_, x) in &r.samples {
            assert!(f(x, "vibration_mm_s") < 1.8);
            assert!(f(x, "level_m") < SUMP_HIGH_HIGH_M);
            assert!(f(x, "level_m") > 0.3);
            assert!(f(x, "bearing_temp_c") < 80.0);
            assert!(f(x, "current_imbalance_pct") < 10.0);
            assert!(!x.contains_key("fault_code"));
            if !b(x, "running") {
                assert_eq!(f(x, "power_kw"), 0.0);
                assert_eq!(f(x, "flow_m3h"), 0.0);
                assert!(f(x, "outlet_pressure_mpa") > 0.05, "static head held");
            }
        }
        let starts = f(r.last(), "starts") - f(&r.samples[0].1, "starts");
        assert!(starts >= 5.0, "seed {seed}: {starts} starts a day");
        assert!(r.events_named("started") >= 5 && r.events_named("stopped") >= 5);
        assert_eq!(
            r.events.len(),
            r.events_named("started") + r.events_named("stopped")
        );
    }
}

#[test]
fn normal_lift_trips_no_rule() {
    for seed in 0..5 {
        let mut m = DeviceModel::new("lift-1", DeviceKind::Lift, seed);
        let r = run(&mut m, T0, T0 + 24 * HOUR, 5_000);
        let (mut moving, mut occupied, mut open, mut up, mut down) = (0, 0, 0, 0, 0);
        for (t, x) in &r.samples {
            assert!(!b(x, "trapped") && !b(x, "alarm_button"), "at {t}");
            assert_eq!(s(x, "mode"), "normal");
            assert!(!x.contains_key("fault_code"));
            if b(x, "moving") {
                moving += 1;
                assert_eq!(s(x, "door"), "closed", "door open while moving at {t}");
                assert_ne!(s(x, "direction"), "idle");
                assert!(f(x, "speed_m_s") > 0.0 && f(x, "speed_m_s") <= 2.5);
                match s(x, "direction") {
                    "up" => up += 1,
                    _ => down += 1,
                }
            } else {
                assert!(
                    b(x, "in_landing_zone"),
                    "stopped outside a landing zone at {t}"
                );
                assert_eq!(s(x, "direction"), "idle");
                assert!(f(x, "levelling_error_mm").abs() < 10.0);
                assert_eq!(f(x, "speed_m_s"), 0.0);
            }
            if b(x, "occupied") {
                occupied += 1;
                assert!(f(x, "load_pct") > 0.0);
            }
            if s(x, "door") == "open" {
                open += 1;
            }
        }
        assert!(
            moving > 50 && up > 10 && down > 10,
            "seed {seed}: lift travels"
        );
        assert!(occupied > 50, "seed {seed}: passengers ride");
        assert!(
            occupied < r.samples.len() / 2,
            "seed {seed}: not always busy"
        );
        assert!(open > 20, "seed {seed}: doors open at stops");
        assert!(r.events.is_empty(), "no lift events: {:?}", r.events);
        let floors: Vec<f64> = r.samples.iter().map(|(_, x)| f(x, "floor")).collect();
        let (lo, hi) = min_max(&floors);
        assert!(hi > lo, "visits several floors");
    }
}

#[test]
fn normal_gate_trips_no_rule() {
    for seed in 0..5 {
        let mut m = DeviceModel::new("gate-1", DeviceKind::Gate, seed);
        let r = run(&mut m, T0, T0 + 24 * HOUR, 5_000);
        let mut moving_run = 0;
        let (mut open, mut closed) = (0, 0);
        for (t, x) in &r.samples {
            assert!(f(x, "held_open_s") < 300.0, "held open at {t}");
            assert!(f(x, "held_open_s") <= GATE_MAX_NORMAL_OPEN_S);
            assert_eq!(s(x, "mode"), "normal");
            assert!(!b(x, "on_battery"));
            match s(x, "state") {
                "opening" | "closing" => {
                    moving_run += 1;
                    assert!(f(x, "motor_current_a") > 1.0);
                    assert!(!b(x, "locked"));
                }
                st => {
                    moving_run = 0;
                    assert_eq!(f(x, "motor_current_a"), 0.0);
                    assert_eq!(b(x, "locked"), st == "closed");
                    if st == "open" {
                        open += 1;
                    } else {
                        closed += 1;
                    }
                }
            }
            // UL 325 motor run limit of 75 s, with 5 s samples.
            assert!(moving_run * 5 < 75, "motor runs too long at {t}");
        }
        assert!(
            open > 20 && closed > 1000,
            "seed {seed}: open {open} closed {closed}"
        );
        assert!(r.events_named("access_granted") > 100, "seed {seed}");
        assert!(r.events_named("access_denied") >= 1, "seed {seed}");
        assert_eq!(
            r.events_named("forced_open") + r.events_named("obstruction"),
            0
        );
    }
}

/// Run `kind` normally for `warm`, then with `fault` for `span`, sampling every 10 s.
fn with_fault(
    kind: DeviceKind,
    fault: Fault,
    seed: u64,
    warm: i64,
    span: i64,
) -> (DeviceModel, Run, Run) {
    let mut m = DeviceModel::new(&format!("{kind}-f"), kind, seed);
    let before = run(&mut m, T0, T0 + warm, 10_000);
    m.try_set_fault(Some(fault)).expect("fault fits the kind");
    let after = run(&mut m, T0 + warm + 10_000, T0 + warm + span, 10_000);
    (m, before, after)
}

/// The condition of the default rule pack (`rules/packs/default.toml`) a fault stands for,
/// as seen in one report and the events since the fault began.
fn shows_condition(fault: Fault, x: &Map<String, Value>, run: &Run, baseline_kw: f64) -> bool {
    let n = |name| run.events_named(name);
    match fault {
        Fault::LiftTrapped => {
            b(x, "trapped")
                && b(x, "occupied")
                && !b(x, "moving")
                && !b(x, "in_landing_zone")
                && s(x, "door") == "closed"
                && n("alarm_button") >= 1
        }
        Fault::LiftAlarmButton => b(x, "alarm_button") && n("alarm_button") >= 1,
        Fault::LiftDoorFault => n("door_fault") >= 3,
        Fault::PumpDryRun => b(x, "running") && f(x, "power_kw") < 0.5 * baseline_kw,
        Fault::PumpHighVibration => b(x, "running") && f(x, "vibration_mm_s") > 4.5,
        Fault::PumpBearingHot => f(x, "bearing_temp_c") > 80.0,
        Fault::SumpHighLevel => f(x, "level_m") >= SUMP_HIGH_HIGH_M && !b(x, "running"),
        Fault::SmokeAlarm => b(x, "alarm") && f(x, "obscuration_pct_per_m") >= 8.0,
        Fault::SmokeCo => f(x, "co_ppm") >= 400.0,
        Fault::SmokeFault => b(x, "fault"),
        Fault::SmokeLowBattery => f(x, "battery_v") < SMOKE_LOW_BATTERY_V,
        Fault::GateForced => s(x, "state") == "open" && b(x, "locked") && n("forced_open") == 1,
        Fault::GateObstruction => n("obstruction") >= 2,
        Fault::GateHeldOpen => s(x, "state") == "open" && f(x, "held_open_s") > 300.0,
        Fault::Offline => true,
    }
}

#[test]
fn every_fault_shows_its_condition_by_onset_time() {
    for fault in Fault::ALL {
        let Some(kind) = fault.kind() else { continue };
        for seed in 0..10 {
            let mut m = DeviceModel::new(&format!("{kind}-{seed}"), kind, seed);
            // Long enough for a pump to have run a few times, giving its baseline power.
            let warm = if kind == DeviceKind::Pump {
                12 * HOUR
            } else {
                30 * MIN
            };
            let before = run(&mut m, T0, T0 + warm, 10_000);
            let running_power: Vec<f64> = before
                .samples
                .iter()
                .filter(|(_, x)| kind == DeviceKind::Pump && b(x, "running"))
                .map(|(_, x)| f(x, "power_kw"))
                .collect();
            let baseline = if running_power.is_empty() {
                0.0
            } else {
                median(running_power)
            };
            m.set_fault(Some(fault));
            let onset = fault.onset_time().as_millis() as i64;
            let after = run(&mut m, T0 + warm + 10_000, T0 + warm + onset, 10_000);
            assert!(
                shows_condition(fault, after.last(), &after, baseline),
                "{fault} seed {seed}: not shown after {:?}: {:?} events {:?}",
                fault.onset_time(),
                after.last(),
                after.events.iter().map(|e| e.event).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn lift_trapped() {
    for seed in 0..10 {
        let (mut m, _, after) = with_fault(
            DeviceKind::Lift,
            Fault::LiftTrapped,
            seed,
            30 * MIN,
            10 * MIN,
        );
        for (t, x) in &after.samples {
            assert!(
                b(x, "trapped") && b(x, "alarm_button") && b(x, "occupied"),
                "at {t}"
            );
            assert!(!b(x, "moving") && !b(x, "in_landing_zone"), "at {t}: {x:?}");
            assert_eq!(s(x, "door"), "closed");
            assert!(f(x, "levelling_error_mm").abs() > LIFT_LANDING_ZONE_M * 1000.0);
        }
        assert!(after.events_named("alarm_button") >= 1);
        assert_eq!(after.events_named("trapped"), 1);
        m.set_fault(None);
        let end = T0 + 40 * MIN;
        let rescued = run(&mut m, end + 10_000, end + 3 * MIN, 10_000);
        assert_eq!(rescued.events_named("released"), 1);
        for (t, x) in &rescued.samples {
            assert!(!b(x, "trapped") && !b(x, "alarm_button"), "at {t}");
            assert!(
                b(x, "moving") || b(x, "in_landing_zone"),
                "seed {seed} at {t}: {x:?}"
            );
        }
    }
}

#[test]
fn lift_alarm_button_at_landing() {
    let (_, _, after) = with_fault(
        DeviceKind::Lift,
        Fault::LiftAlarmButton,
        1,
        30 * MIN,
        5 * MIN,
    );
    for (_, x) in &after.samples {
        assert!(b(x, "alarm_button") && b(x, "in_landing_zone") && !b(x, "trapped"));
        assert_eq!(s(x, "door"), "open");
    }
    assert_eq!(after.events_named("alarm_button"), 1);
}

#[test]
fn lift_door_fault() {
    let (_, _, after) = with_fault(
        DeviceKind::Lift,
        Fault::LiftDoorFault,
        1,
        30 * MIN,
        10 * MIN,
    );
    assert!(after.events_named("door_fault") >= 3);
    let x = after.last();
    assert_eq!(s(x, "mode"), "out_of_service");
    assert_eq!(s(x, "door"), "open");
    assert_eq!(s(x, "fault_code"), "door_lock_fault");
}

#[test]
fn pump_dry_run() {
    for seed in 0..5 {
        let (_, before, after) = with_fault(
            DeviceKind::Pump,
            Fault::PumpDryRun,
            seed,
            12 * HOUR,
            90 * MIN,
        );
        let baseline = median(
            before
                .samples
                .iter()
                .filter(|(_, x)| b(x, "running"))
                .map(|(_, x)| f(x, "power_kw"))
                .collect(),
        );
        assert!(
            after.samples.iter().all(|(_, x)| b(x, "running")),
            "seed {seed}"
        );
        let x = after.last();
        assert!(
            f(x, "power_kw") < 0.5 * baseline,
            "seed {seed}: {} of {baseline}",
            f(x, "power_kw")
        );
        assert!(f(x, "flow_m3h") < 2.0);
    }
}

#[test]
fn pump_high_vibration_and_hot_bearing() {
    for seed in 0..5 {
        let (_, _, after) = with_fault(
            DeviceKind::Pump,
            Fault::PumpHighVibration,
            seed,
            HOUR,
            30 * MIN,
        );
        assert!(
            b(&after.samples[0].1, "running"),
            "fault scenario starts the pump"
        );
        for (_, x) in after.samples.iter().filter(|(_, x)| b(x, "running")) {
            assert!(f(x, "vibration_mm_s") > 4.5);
        }
        let (_, _, after) = with_fault(
            DeviceKind::Pump,
            Fault::PumpBearingHot,
            seed,
            HOUR,
            30 * MIN,
        );
        let hottest = after
            .samples
            .iter()
            .map(|(_, x)| f(x, "bearing_temp_c"))
            .fold(f64::MIN, f64::max);
        assert!(hottest > 80.0, "seed {seed}: bearing {hottest}");
    }
}

#[test]
fn sump_high_level() {
    let (_, _, after) = with_fault(DeviceKind::Pump, Fault::SumpHighLevel, 2, HOUR, 20 * MIN);
    let x = after.last();
    assert!(f(x, "level_m") >= SUMP_HIGH_HIGH_M);
    assert!(!b(x, "running"));
    assert_eq!(s(x, "fault_code"), "overload_trip");
    assert_eq!(after.events_named("fault"), 1);
}

#[test]
fn smoke_faults() {
    let (mut m, _, after) = with_fault(DeviceKind::Smoke, Fault::SmokeAlarm, 1, HOUR, 5 * MIN);
    for (_, x) in &after.samples {
        assert!(b(x, "alarm") && b(x, "pre_alarm"));
        assert!(f(x, "obscuration_pct_per_m") >= SMOKE_ALARM_OBSCURATION);
    }
    assert_eq!(after.events_named("alarm"), 1);
    m.set_fault(None);
    let end = T0 + 65 * MIN;
    let cleared = run(&mut m, end + 10_000, end + 20 * MIN, 10_000);
    assert!(!b(cleared.last(), "alarm"));
    assert_eq!(cleared.events_named("alarm_cleared"), 1);

    let (_, _, after) = with_fault(DeviceKind::Smoke, Fault::SmokeCo, 1, HOUR, 15 * MIN);
    assert!(after.samples.iter().all(|(_, x)| f(x, "co_ppm") >= 400.0));
    assert!(after.samples.iter().all(|(_, x)| !b(x, "alarm")));

    let (_, _, after) = with_fault(DeviceKind::Smoke, Fault::SmokeFault, 1, HOUR, 5 * MIN);
    assert!(after.samples.iter().all(|(_, x)| b(x, "fault")));
    assert_eq!(after.events_named("fault"), 1);

    let (_, _, after) = with_fault(DeviceKind::Smoke, Fault::SmokeLowBattery, 1, HOUR, 5 * MIN);
    assert!(after
        .samples
        .iter()
        .all(|(_, x)| f(x, "battery_v") < SMOKE_LOW_BATTERY_V));
}

#[test]
fn gate_faults() {
    let (_, _, after) = with_fault(DeviceKind::Gate, Fault::GateForced, 1, HOUR, 5 * MIN);
    for (_, x) in &after.samples {
        assert_eq!(s(x, "state"), "open");
        assert!(b(x, "locked"));
    }
    assert_eq!(after.events_named("forced_open"), 1);

    let (_, _, after) = with_fault(DeviceKind::Gate, Fault::GateObstruction, 1, HOUR, 5 * MIN);
    assert_eq!(
        after.events_named("obstruction"),
        2,
        "lockout after two in a row"
    );
    let x = after.last();
    assert_eq!(s(x, "state"), "open");
    assert!(f(x, "held_open_s") > 60.0);

    let (mut m, _, after) = with_fault(DeviceKind::Gate, Fault::GateHeldOpen, 1, HOUR, 10 * MIN);
    let x = after.last();
    assert_eq!(s(x, "state"), "open");
    assert!(f(x, "held_open_s") > 300.0);
    m.set_fault(None);
    let end = T0 + 70 * MIN;
    let closed = run(&mut m, end + 10_000, end + 2 * MIN, 10_000);
    assert_eq!(s(closed.last(), "state"), "closed");
}

#[test]
fn offline_silences_tick_and_wrong_kind_is_refused() {
    let mut m = DeviceModel::new("smoke-9", DeviceKind::Smoke, 1);
    assert_eq!(m.tick(T0).len(), 1);
    m.set_fault(Some(Fault::Offline));
    assert!(m.tick(T0 + MIN).is_empty());
    m.set_fault(None);
    let msgs = m.tick(T0 + 2 * MIN);
    let doc: Value = serde_json::from_slice(&msgs[0].payload).expect("json");
    assert_eq!(doc["seq"], 2, "silence does not consume sequence numbers");

    let err = m
        .try_set_fault(Some(Fault::LiftTrapped))
        .expect_err("a smoke detector cannot be trapped")
        .to_string();
    assert!(err.contains("needs a lift device"), "{err}");
    m.set_fault(Some(Fault::GateForced));
    assert_eq!(m.fault(), None, "ignored");
}

#[test]
fn far_jump_catches_up_quickly() {
    let mut m = DeviceModel::new("lift-1", DeviceKind::Lift, 1);
    m.metrics_at(T0);
    let x = m.metrics_at(T0 + 365 * 24 * HOUR);
    check_metrics(DeviceKind::Lift, &x).expect("valid after a jump");
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(*x), hi.max(*x)))
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "no samples for a median");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
