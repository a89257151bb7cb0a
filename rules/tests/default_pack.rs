//! The default pack against the simulator: every rule fires on its fault scenario, and a
//! day of normal operation of two whole compounds raises nothing.

mod common;

use common::*;
use serde_json::json;
use steward_device_sim::Fault;
use steward_rules::{Action, RulePack};
use steward_tickets::Priority;

/// Run the estate normally for `pre`, inject `fault` on `device`, run `post` more.
fn scenario(device: &str, fault: Fault, pre: i64, post: i64) -> Sim {
    let mut sim = Sim::default_pack(ALL_DEVICES);
    sim.run_for(pre);
    assert!(
        sim.raises().is_empty(),
        "raised before the fault: {:?}",
        sim.summary()
    );
    sim.fault(device, Some(fault));
    sim.run_for(fault.onset_time().as_millis() as i64 + post);
    assert!(sim.rejects.is_empty(), "rejects: {:?}", sim.rejects);
    sim
}

fn expect(sim: &Sim, device: &str, rule: &str) -> steward_tickets::Raise {
    sim.raised(device, rule)
        .unwrap_or_else(|| panic!("{rule} not raised on {device}; raised: {:?}", sim.summary()))
        .clone()
}

#[test]
fn pack_parses_and_covers_every_design_row() {
    let pack = RulePack::default_pack();
    let ids: Vec<&str> = pack.rules().iter().map(|r| r.id.as_str()).collect();
    for id in [
        "lift-trapped",
        "lift-safety-trip",
        "lift-door-fault",
        "smoke-fire-alarm",
        "smoke-co",
        "smoke-fault",
        "smoke-low-battery",
        "smoke-no-report",
        "pump-sump-high",
        "pump-dry-run",
        "pump-vibration-zone-d",
        "pump-vibration-zone-c",
        "pump-current-imbalance",
        "pump-bearing-hot",
        "gate-fire-not-free",
        "gate-forced-open",
        "gate-lockout",
        "gate-held-open",
        "gate-power-or-offline",
        "device-offline",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
    for r in pack.rules() {
        assert!(!r.source.is_empty(), "{} cites no source", r.id);
    }
}

#[test]
fn a_day_of_normal_operation_raises_nothing() {
    let mut sim = Sim::default_pack(ALL_DEVICES);
    sim.run_for(24 * HOUR);
    assert!(sim.rejects.is_empty(), "rejects: {:?}", sim.rejects);
    assert!(
        sim.actions.is_empty(),
        "normal operation raised: {:?}",
        sim.summary()
    );
    assert!(sim.engine.evaluations() > 100_000);
}

#[test]
fn lift_trapped() {
    let sim = scenario("lift-1", Fault::LiftTrapped, HOUR, 2 * MIN);
    let r = expect(&sim, "lift-1", "lift-trapped");
    assert_eq!(r.priority, Priority::P1);
    // cmp-1 has no property company: the street's fall-back station answers.
    assert_eq!(r.station, "st-north");
    assert!(
        sim.actions.iter().any(|a| matches!(a,
        Action::Notify(n) if n.topic == "stations/st-north/alerts" && n.rule_id == "lift-trapped"))
    );
}

#[test]
fn lift_alarm_button_at_a_landing_is_not_an_entrapment() {
    let sim = scenario("lift-1", Fault::LiftAlarmButton, HOUR, 5 * MIN);
    assert!(
        sim.raised("lift-1", "lift-trapped").is_none(),
        "{:?}",
        sim.summary()
    );
}

#[test]
fn lift_door_fault() {
    let sim = scenario("lift-1", Fault::LiftDoorFault, HOUR, 2 * MIN);
    assert_eq!(
        expect(&sim, "lift-1", "lift-door-fault").priority,
        Priority::P2
    );
}

#[test]
fn lift_safety_trip_from_events_and_from_telemetry() {
    let mut sim = Sim::default_pack(&["lift-1"]);
    sim.run_for(10 * MIN);
    let ts = sim.now + 500;
    sim.feed(
        "devices/lift-1/events",
        json!({"ts": ts, "event": "overspeed", "data": {"speed_m_s": 2.4}})
            .to_string()
            .as_bytes(),
        ts,
    );
    assert_eq!(
        expect(&sim, "lift-1", "lift-safety-trip").priority,
        Priority::P1
    );

    let mut sim = Sim::default_pack(&["lift-2"]);
    sim.run_for(10 * MIN);
    let ts = sim.now + 500;
    sim.feed(
        "devices/lift-2/telemetry",
        json!({"ts": ts, "metrics": {"moving": true, "door": "opening", "speed_m_s": 1.0}})
            .to_string()
            .as_bytes(),
        ts,
    );
    assert!(sim.rejects.is_empty(), "{:?}", sim.rejects);
    expect(&sim, "lift-2", "lift-safety-trip");
}

#[test]
fn smoke_fire_alarm_frees_the_gates_and_checks_them() {
    let sim = scenario("smoke-1", Fault::SmokeAlarm, HOUR, 3 * MIN);
    let r = expect(&sim, "smoke-1", "smoke-fire-alarm");
    assert_eq!(r.priority, Priority::P1);
    let commanded: Vec<(&str, &str)> = sim
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Command {
                device_id,
                topic,
                payload,
            } => {
                let p: serde_json::Value = serde_json::from_str(payload).expect("json payload");
                assert_eq!(p["mode"], "free_passage");
                assert_eq!(p["rule"], "smoke-fire-alarm");
                Some((device_id.as_str(), topic.as_str()))
            }
            _ => None,
        })
        .collect();
    // Only the gates of the alarm's compound.
    assert_eq!(
        commanded,
        vec![
            ("gate-1", "devices/gate-1/commands"),
            ("gate-2", "devices/gate-2/commands")
        ]
    );
    // The simulated gates ignore commands: after 90 s they are still not free.
    for g in ["gate-1", "gate-2"] {
        let t = expect(&sim, g, "gate-fire-not-free");
        assert_eq!(t.priority, Priority::P1);
        assert!(t.ts_ms >= r.ts_ms + 90_000, "gate ticket too early");
    }
    assert!(sim.raised("gate-9", "gate-fire-not-free").is_none());
}

#[test]
fn smoke_co_follows_ul2034_timing() {
    let sim = scenario("smoke-2", Fault::SmokeCo, HOUR, 10 * MIN);
    let r = expect(&sim, "smoke-2", "smoke-co");
    assert_eq!(r.priority, Priority::P1);
    let fault_at = T0 + HOUR;
    assert!(
        r.ts_ms >= fault_at + 4 * MIN,
        "CO alarm before 4 min at 400 ppm"
    );
    assert!(
        r.ts_ms <= fault_at + 6 * MIN,
        "CO alarm late: {}",
        r.ts_ms - fault_at
    );
}

#[test]
fn smoke_fault() {
    let sim = scenario("smoke-1", Fault::SmokeFault, HOUR, 2 * MIN);
    assert_eq!(
        expect(&sim, "smoke-1", "smoke-fault").priority,
        Priority::P2
    );
}

#[test]
fn smoke_low_battery() {
    let sim = scenario("smoke-9", Fault::SmokeLowBattery, HOUR, 2 * MIN);
    let r = expect(&sim, "smoke-9", "smoke-low-battery");
    assert_eq!(r.priority, Priority::P3);
    // cmp-2 has a property company: its station answers.
    assert_eq!(r.station, "st-acme");
}

#[test]
fn smoke_no_report_raises_and_resolves_itself() {
    let mut sim = scenario("smoke-1", Fault::Offline, HOUR, 3 * MIN);
    expect(&sim, "smoke-1", "smoke-no-report");
    assert!(
        sim.raised("smoke-1", "device-offline").is_none(),
        "one ticket per silence"
    );
    sim.fault("smoke-1", None);
    sim.run_for(2 * MIN);
    assert!(sim.actions.iter().any(|a| matches!(a,
        Action::Clear(c) if c.device_id == "smoke-1" && c.rule_id == "smoke-no-report"
            && c.on_clear == steward_tickets::OnClear::Resolve)));
}

#[test]
fn pump_sump_high_level() {
    let sim = scenario("pump-1", Fault::SumpHighLevel, HOUR, 3 * MIN);
    assert_eq!(
        expect(&sim, "pump-1", "pump-sump-high").priority,
        Priority::P1
    );
}

#[test]
fn pump_dry_run_against_its_learned_baseline() {
    let sim = scenario("pump-1", Fault::PumpDryRun, 8 * HOUR, 3 * MIN);
    assert_eq!(
        expect(&sim, "pump-1", "pump-dry-run").priority,
        Priority::P2
    );
}

#[test]
fn pump_vibration_zone_d_then_zone_c() {
    let sim = scenario("pump-9", Fault::PumpHighVibration, HOUR, 8 * HOUR);
    assert_eq!(
        expect(&sim, "pump-9", "pump-vibration-zone-d").priority,
        Priority::P2
    );
    // Zone C counts running time only: it takes more than one pump-down cycle.
    let c = expect(&sim, "pump-9", "pump-vibration-zone-c");
    assert_eq!(c.priority, Priority::P3);
}

#[test]
fn pump_bearing_hot() {
    let sim = scenario("pump-1", Fault::PumpBearingHot, HOUR, 2 * MIN);
    assert_eq!(
        expect(&sim, "pump-1", "pump-bearing-hot").priority,
        Priority::P2
    );
}

#[test]
fn pump_current_imbalance_needs_five_running_minutes() {
    let mut sim = Sim::default_pack(&["pump-9"]);
    let mut ts = sim.now;
    for i in 0..7 {
        ts += MIN;
        let m = json!({"ts": ts, "metrics": {"running": true, "current_imbalance_pct": 14.0, "power_kw": 2.0}});
        sim.feed("devices/pump-9/telemetry", m.to_string().as_bytes(), ts);
        if i < 5 {
            assert!(
                sim.raised("pump-9", "pump-current-imbalance").is_none(),
                "early at {i}"
            );
        }
    }
    assert_eq!(
        expect(&sim, "pump-9", "pump-current-imbalance").priority,
        Priority::P3
    );
}

#[test]
fn gate_forced_open() {
    let sim = scenario("gate-9", Fault::GateForced, HOUR, MIN);
    assert_eq!(
        expect(&sim, "gate-9", "gate-forced-open").priority,
        Priority::P2
    );
}

#[test]
fn gate_obstruction_lockout() {
    let sim = scenario("gate-1", Fault::GateObstruction, HOUR, MIN);
    assert_eq!(
        expect(&sim, "gate-1", "gate-lockout").priority,
        Priority::P2
    );
}

#[test]
fn gate_held_open() {
    let sim = scenario("gate-2", Fault::GateHeldOpen, HOUR, 2 * MIN);
    assert_eq!(
        expect(&sim, "gate-2", "gate-held-open").priority,
        Priority::P3
    );
}

#[test]
fn gate_offline_over_ten_minutes() {
    let sim = scenario("gate-1", Fault::Offline, HOUR, 9 * MIN);
    assert!(
        sim.raised("gate-1", "gate-power-or-offline").is_none(),
        "too early"
    );
    let mut sim = scenario("gate-1", Fault::Offline, HOUR, 12 * MIN);
    expect(&sim, "gate-1", "gate-power-or-offline");
    assert!(sim.raised("gate-1", "device-offline").is_none());
    // On battery for 10 min, reported by a gate that is otherwise fine.
    sim.fault("gate-1", None);
    let mut ts = sim.now;
    for _ in 0..12 {
        ts += MIN;
        let m = json!({"ts": ts, "metrics": {"on_battery": true}});
        sim.feed("devices/gate-2/telemetry", m.to_string().as_bytes(), ts);
    }
    expect(&sim, "gate-2", "gate-power-or-offline");
}

#[test]
fn device_offline_by_last_will_and_by_silence() {
    // Last will: at once.
    let mut sim = scenario("lift-1", Fault::Offline, HOUR, 0);
    let ts = sim.now;
    sim.feed("devices/lift-1/status", b"offline", ts);
    let r = expect(&sim, "lift-1", "device-offline");
    assert!(r.ts_ms - ts < 1_000);
    // Silence: after two reporting periods (pump-1 reports every 60 s).
    let sim = scenario("pump-1", Fault::Offline, HOUR, 3 * MIN);
    let r = expect(&sim, "pump-1", "device-offline");
    assert_eq!(r.priority, Priority::P3);
    // Two 60 s periods after its last report, which came at most a period before the fault.
    assert!(r.ts_ms > T0 + HOUR + MIN && r.ts_ms <= T0 + HOUR + 3 * MIN + 5_000);
}
