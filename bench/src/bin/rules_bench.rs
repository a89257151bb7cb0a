//! Throughput of the default pack on one thread: simulated telemetry of a mixed estate is
//! decoded up front, then pushed through `Engine::on_decoded` (plus a tick per simulated
//! second) and timed.
//!
//! `cargo run --release -p steward-bench --bin rules_bench -- [compounds] [hours]`

use std::sync::Arc;
use std::time::Instant;
use steward_device_sim::DeviceModel;
use steward_estate::{DeviceKind, EstateFile, Registry};
use steward_ingest::contract::decode;
use steward_ingest::{Decoded, IngestConfig};
use steward_rules::{Engine, RulePack};

const T0: i64 = 1_740_960_000_000;

fn estate(compounds: usize) -> String {
    let mut s = String::from(
        "[[stations]]\nid = \"st-1\"\nname = \"North\"\n[[streets]]\nid = \"street-1\"\nname = \"Riverside\"\nfallback_station = \"st-1\"\n[[communities]]\nid = \"com-1\"\nname = \"Elm\"\nstreet = \"street-1\"\n",
    );
    for c in 0..compounds {
        s += &format!("[[compounds]]\nid = \"cmp-{c}\"\nname = \"C{c}\"\ncommunity = \"com-1\"\n[[buildings]]\nid = \"b-{c}\"\nname = \"B{c}\"\ncompound = \"cmp-{c}\"\n");
        // A typical compound: detectors outnumber everything else.
        for (kind, n) in [("smoke", 8), ("pump", 2), ("lift", 4), ("gate", 2)] {
            for i in 0..n {
                s += &format!("[[devices]]\nid = \"{kind}-{c}-{i}\"\nkind = \"{kind}\"\nvendor = \"v\"\nbuilding = \"b-{c}\"\nsecret = \"bench-secret\"\nreport_interval_s = 60\n");
            }
        }
    }
    s
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let compounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let hours: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(6);
    let registry = Registry::open_in_memory()?;
    registry.apply(&EstateFile::parse(&estate(compounds))?)?;
    let dir = registry.directory();
    let cfg = IngestConfig::default();

    // In id order, so each device's start offset (and the input) is the same every run;
    // the directory's map iterates in a different order per process.
    let mut devices: Vec<_> = dir.devices.values().collect();
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    let mut models: Vec<(DeviceModel, i64)> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            (
                DeviceModel::new(&d.id, d.kind, 1),
                T0 + (i as i64 * 997) % 60_000,
            )
        })
        .collect();
    println!("simulating {} devices for {hours} h ...", models.len());
    let end = T0 + hours * 3_600_000;
    let mut input: Vec<(i64, Decoded)> = Vec::new();
    for (m, first) in &mut models {
        let mut t = *first;
        while t < end {
            for msg in m.tick(t) {
                input.push((t, decode(msg.topic.as_bytes(), &msg.payload, &dir, t, &cfg)));
            }
            t += 60_000;
        }
    }
    input.sort_by_key(|(t, _)| *t);
    let readings: usize = input
        .iter()
        .map(|(_, d)| d.readings.len() + d.events.len())
        .sum();
    let by_kind = |k: DeviceKind| dir.devices.values().filter(|d| d.kind == k).count();
    println!(
        "{readings} readings and events ({} smoke, {} pump, {} lift, {} gate devices)",
        by_kind(DeviceKind::Smoke),
        by_kind(DeviceKind::Pump),
        by_kind(DeviceKind::Lift),
        by_kind(DeviceKind::Gate)
    );

    // Readings alone: what each message costs the rules thread at any rate.
    let mut engine = Engine::new(Arc::new(RulePack::default_pack()));
    let mut actions = 0usize;
    let started = Instant::now();
    for (_, d) in &input {
        actions += engine.on_decoded(d, &dir).len();
    }
    let only_readings = started.elapsed().as_secs_f64();
    println!(
        "readings only: {readings} in {only_readings:.3} s = {:.0} readings/s on one core ({} evaluations, {actions} actions)",
        readings as f64 / only_readings,
        engine.evaluations()
    );

    // With the once-a-second tick (silences, durations, SLA) over the simulated hours:
    // the tick cost is per second of wall time in the hub, whatever the message rate.
    let mut engine = Engine::new(Arc::new(RulePack::default_pack()));
    let mut actions = 0usize;
    let mut next_tick = T0 + 1_000;
    let started = Instant::now();
    for (t, d) in &input {
        while next_tick <= *t {
            actions += engine.tick(next_tick, &dir).len();
            next_tick += 1_000;
        }
        actions += engine.on_decoded(d, &dir).len();
    }
    let secs = started.elapsed().as_secs_f64();
    let ticks = (next_tick - T0) / 1_000;
    let per_tick_us = (secs - only_readings).max(0.0) / ticks as f64 * 1e6;
    println!(
        "with ticks: {ticks} ticks over {} devices cost {per_tick_us:.0} us each ({:.2} us per device per second of wall time); {actions} actions",
        dir.devices.len(),
        per_tick_us / dir.devices.len() as f64
    );
    Ok(())
}
