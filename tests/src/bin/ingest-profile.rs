//! Per-message cost of the ingest hot path, stage by stage, on one thread and without
//! I/O: decode (topic + JSON + validation), + ILP encoding, + rules device state.
//! Run plainly for ns/message, or under `valgrind --tool=callgrind` for instruction counts.
//!
//! `cargo run --release -p steward-tests --bin ingest-profile -- --messages 200000`

use clap::Parser;
use std::time::Instant;
use steward_device_sim::DeviceModel;
use steward_estate::{EstateFile, Registry};
use steward_ingest::{contract, IngestConfig};
use steward_rules::DeviceStates;
use steward_storage::questdb::ilp;
use steward_tests::load_estate;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    #[arg(long, default_value_t = 100)]
    devices: usize,
    /// Only run this stage: decode, encode or state (default: all, cumulatively).
    #[arg(long)]
    stage: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let estate = EstateFile::parse(&load_estate(args.devices))?;
    let registry = Registry::open_in_memory()?;
    registry.apply(&estate)?;
    let now = steward_estate::clock::now_ms();
    // Realistic payloads of the four kinds from the simulator's models.
    let mut models: Vec<DeviceModel> = estate
        .devices
        .iter()
        .map(|d| DeviceModel::new(&d.id, d.kind, 1))
        .collect();
    let mut msgs = Vec::with_capacity(args.messages);
    let start_ts = now - 3_600_000;
    for i in 0..args.messages {
        let n = models.len();
        let m = &mut models[i % n];
        let ts = start_ts + (i / n) as i64 * 10;
        let topic = format!("devices/{}/telemetry", m.id());
        let metrics = m.metrics_at(ts);
        let seq = m.next_seq();
        msgs.push((
            topic,
            steward_device_sim::telemetry_payload(ts, seq, &metrics),
        ));
    }
    let bytes: usize = msgs.iter().map(|(_, p)| p.len()).sum();
    println!(
        "{} messages, {} devices, mean payload {} bytes",
        msgs.len(),
        args.devices,
        bytes / msgs.len()
    );
    let cfg = IngestConfig::default();
    let stages: Vec<&str> = match args.stage.as_deref() {
        Some(s) => vec![s],
        None => vec!["decode", "encode", "state"],
    };
    for stage in stages {
        let dir = registry.directory();
        let states = DeviceStates::new();
        let mut buf = steward_storage::new_buffer();
        let mut accepted = 0usize;
        let t = Instant::now();
        for (topic, payload) in &msgs {
            let d = contract::decode(topic.as_bytes(), payload, &dir, now, &cfg);
            accepted += d.readings.len();
            if stage != "decode" {
                for r in &d.readings {
                    ilp::append_reading(&mut buf, r, now * 1000)?;
                }
                if buf.len() > 8 << 20 {
                    buf.clear();
                }
            }
            if stage == "state" {
                states.apply(&d);
            }
        }
        let el = t.elapsed();
        println!(
            "{stage:>7}: {:>6.0} ns/msg  {:>9.0} msg/s on one core  (accepted {accepted})",
            el.as_nanos() as f64 / msgs.len() as f64,
            msgs.len() as f64 / el.as_secs_f64()
        );
    }
    Ok(())
}
