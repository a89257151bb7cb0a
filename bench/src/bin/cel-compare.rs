//! Which expression language for rules: CEL (cel-interpreter, a well-kept crate) or the
//! small typed DSL of `rules/`? Same readings (simulated compounds, 6 h), same conditions
//! of the default pack written as CEL, one core. CEL only evaluates the stateless
//! predicate; hysteresis, durations, windows and silence would still have to be built
//! around it, while the DSL figure includes all of that state.
//!
//! `cargo run --release -p steward-bench --bin cel-compare`

use cel_interpreter::{Context, Program, Value as Cel};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;
use steward_device_sim::DeviceModel;
use steward_estate::{DeviceKind, EstateFile, Registry};
use steward_ingest::contract::decode;
use steward_ingest::{Decoded, IngestConfig, Value};
use steward_rules::{Engine, RulePack};

const T0: i64 = 1_740_960_000_000;

/// The default pack's per-reading predicates, as CEL over the reading's metrics
/// (`has()` guards metrics a reading may omit).
fn cel_rules(kind: DeviceKind) -> Vec<&'static str> {
    match kind {
        DeviceKind::Smoke => vec![
            "has(m.alarm) && m.alarm",
            "has(m.co_ppm) && m.co_ppm >= 70.0",
            "(has(m.fault) && m.fault) || (has(m.tamper) && m.tamper) || (has(m.dirty) && m.dirty)",
            "has(m.battery_v) && m.battery_v < 2.7",
        ],
        DeviceKind::Pump => vec![
            "has(m.level_m) && m.level_m >= 1.8",
            "has(m.running) && !m.running && has(m.outlet_pressure_mpa) && m.outlet_pressure_mpa < 0.05",
            "has(m.vibration_mm_s) && m.vibration_mm_s > 4.5",
            "has(m.vibration_mm_s) && m.vibration_mm_s > 1.8",
            "has(m.current_imbalance_pct) && m.current_imbalance_pct > 10.0",
            "has(m.bearing_temp_c) && m.bearing_temp_c > 80.0",
        ],
        DeviceKind::Lift => vec![
            "has(m.trapped) && m.trapped",
            "has(m.alarm_button) && m.alarm_button && has(m.moving) && !m.moving && has(m.in_landing_zone) && !m.in_landing_zone && has(m.occupied) && m.occupied && has(m.door) && m.door == 'closed'",
            "has(m.door) && m.door == 'open' && has(m.moving) && m.moving",
        ],
        DeviceKind::Gate => vec![
            "has(m.held_open_s) && m.held_open_s > 300.0",
            "has(m.on_battery) && m.on_battery",
            "has(m.mode) && m.mode != 'free_passage'",
        ],
    }
}

fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Bool(b) => Cel::Bool(*b),
        Value::Float(f) => Cel::Float(*f),
        Value::Int(i) => Cel::Int(*i),
        Value::Sym(s) => Cel::String(Arc::new(s.to_string())),
        Value::Text(t) => Cel::String(Arc::new(t.clone())),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut est = String::from("[[stations]]\nid = \"st\"\nname = \"s\"\n[[streets]]\nid = \"s\"\nname = \"s\"\nfallback_station = \"st\"\n[[communities]]\nid = \"c\"\nname = \"c\"\nstreet = \"s\"\n");
    for c in 0..20 {
        est += &format!("[[compounds]]\nid = \"cmp-{c}\"\nname = \"C\"\ncommunity = \"c\"\n[[buildings]]\nid = \"b-{c}\"\nname = \"B\"\ncompound = \"cmp-{c}\"\n");
        for (k, n) in [("smoke", 8), ("pump", 2), ("lift", 4), ("gate", 2)] {
            for i in 0..n {
                est += &format!("[[devices]]\nid = \"{k}-{c}-{i}\"\nkind = \"{k}\"\nvendor = \"v\"\nbuilding = \"b-{c}\"\nsecret = \"bench-secret\"\n");
            }
        }
    }
    let registry = Registry::open_in_memory()?;
    registry.apply(&EstateFile::parse(&est)?)?;
    let dir = registry.directory();
    let cfg = IngestConfig::default();
    let mut input: Vec<Decoded> = Vec::new();
    for d in dir.devices.values() {
        let mut m = DeviceModel::new(&d.id, d.kind, 1);
        let mut t = T0;
        while t < T0 + 6 * 3_600_000 {
            for msg in m.tick(t) {
                input.push(decode(msg.topic.as_bytes(), &msg.payload, &dir, t, &cfg));
            }
            t += 60_000;
        }
    }
    let readings: usize = input.iter().map(|d| d.readings.len()).sum();

    let programs: HashMap<DeviceKind, Vec<Program>> = DeviceKind::ALL
        .iter()
        .map(|k| {
            let ps = cel_rules(*k)
                .into_iter()
                .map(|src| Program::compile(src).expect("valid CEL"))
                .collect();
            (*k, ps)
        })
        .collect();
    let start = Instant::now();
    let mut hits = 0usize;
    for d in &input {
        for r in &d.readings {
            let metrics: HashMap<String, Cel> = r
                .values
                .iter()
                .map(|(n, v)| (n.to_string(), to_cel(v)))
                .collect();
            let mut ctx = Context::default();
            ctx.add_variable_from_value("m", metrics);
            for p in &programs[&r.kind] {
                if matches!(p.execute(&ctx), Ok(Cel::Bool(true))) {
                    hits += 1;
                }
            }
        }
    }
    let cel_secs = start.elapsed().as_secs_f64();

    let mut engine = Engine::new(Arc::new(RulePack::default_pack()));
    let start = Instant::now();
    let mut actions = 0usize;
    for d in &input {
        actions += engine.on_decoded(d, &dir).len();
    }
    let dsl_secs = start.elapsed().as_secs_f64();
    println!("{readings} readings of {} devices", dir.devices.len());
    println!(
        "CEL (cel-interpreter 0.10, stateless predicates only): {:.0} readings/s ({hits} true)",
        readings as f64 / cel_secs
    );
    println!(
        "typed DSL (full default pack with hysteresis, durations, windows): {:.0} readings/s ({actions} actions)",
        readings as f64 / dsl_secs
    );
    Ok(())
}
