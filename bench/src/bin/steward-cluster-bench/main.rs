//! Cluster mode (issue 16) on one machine: 3 Kafka brokers (KRaft), PostgreSQL, QuestDB,
//! front ends and rule workers as `steward run` processes, all on loopback and sharing the
//! same cores with the load generator.
//!
//! 1. Throughput end to end: device-sim's load mode (QoS 1, up to 1,000 messages in flight
//!    per connection), half the devices on each front end, until every message is a row
//!    visible in QuestDB *and* a record the rule workers committed to PostgreSQL; CPU
//!    seconds per component from `/proc/<pid>/stat` (process and reaped children) before
//!    and after, so CPU microseconds per message per component.
//! 2. Failover: under a light steady load, kill -9 a worker, time until the survivors own
//!    every partition and every partition that carries traffic has committed new offsets
//!    in PostgreSQL; then start a replacement and wait for the rebalance. Repeated.
//!
//! The nodes are `steward run` processes: point `STEWARD_BIN` at a release build.
//!
//! ```sh
//! cargo build --release --bin steward && cp target/release/steward /tmp/steward-release
//! cargo build --release -p steward-bench --bin steward-cluster-bench
//! STEWARD_BIN=/tmp/steward-release target/release/steward-cluster-bench
//! ```

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_cluster::Role;
use steward_device_sim::{devices_from_estate, run_load, DeviceModel, LoadConfig, SimDevice};
use steward_estate::EstateFile;
use steward_tests::cluster::{ClusterBed, CLUSTER_ADMIN};
use steward_tests::process::HubProcess;
use steward_tests::Estate;

mod failover;
mod procs;
mod throughput;
use failover::*;
use procs::*;
use throughput::*;

#[derive(Parser)]
struct Args {
    /// Devices (one MQTT connection each) in compounds of 16 (8 smoke, 2 pump, 4 lift,
    /// 2 gate); the last one is the PUBACK latency probe, the others carry the load.
    #[arg(long, default_value_t = 512)]
    devices: usize,
    /// Messages in the measured run.
    #[arg(long, default_value_t = 300_000)]
    messages: u64,
    /// Messages before the measured run, so the JVMs (Kafka, QuestDB) have compiled
    /// their hot paths and the workers have loaded every compound's rule state.
    #[arg(long, default_value_t = 100_000)]
    warmup: u64,
    #[arg(long, default_value_t = 2)]
    frontends: usize,
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// Kill -9 / replace cycles in the failover part (0 skips it).
    #[arg(long, default_value_t = 10)]
    failovers: usize,
    /// Total msg/s of the steady load during the failover part.
    #[arg(long, default_value_t = 2_000)]
    failover_rate: u64,
    /// Skip the throughput part.
    #[arg(long)]
    no_throughput: bool,
    /// Pause the bench (everything running) after the warm-up for this many seconds, e.g.
    /// to attach `perf`; the pids are printed.
    #[arg(long, default_value_t = 0)]
    pause_s: u64,
    /// The workers' `ingest.flush_interval` in ms (the test bed's is 50).
    #[arg(long)]
    flush_ms: Option<u64>,
    /// After the throughput part, read the telemetry topic back and count records that
    /// carry the same MQTT topic and payload (duplicates), by whether their front-end
    /// receive times differ.
    #[arg(long)]
    check_duplicates: bool,
    /// The workers' `cluster.session_timeout` in seconds (default: the configuration's,
    /// 8 s; the rules consumer group; the failover part then waits this long for a
    /// killed worker).
    #[arg(long)]
    session_s: Option<u64>,
    /// How many of the workers also run the storage writer (default: all).
    #[arg(long)]
    storage_writers: Option<usize>,
}

const PARTITIONS: f64 = 12.0;
const TOPIC: &str = "steward.telemetry";
const RULES_GROUP: &str = "steward-rules";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.devices < 2 * args.frontends.max(1) {
        bail!("--devices: need at least two per front end");
    }
    let estate = Estate::load(args.devices);
    let file = EstateFile::parse(&estate.toml())?;
    let mut devices = devices_from_estate(&file);
    let probe = devices.pop().context("no devices")?;
    eprintln!(
        "starting the cluster: 3 Kafka, PostgreSQL, QuestDB, {} front ends, {} workers; {} devices in {} compounds",
        args.frontends,
        args.workers,
        args.devices,
        args.devices.div_ceil(16)
    );
    // Every error path returns through here, dropping the bed: its Drop kills the JVMs,
    // PostgreSQL and the nodes.
    let custom =
        args.flush_ms.is_some() || args.storage_writers.is_some() || args.session_s.is_some();
    let mut bed = if custom {
        // Workers with these settings, then the front ends, in the bed's order.
        let mut bed = ClusterBed::start(&estate, 0, 0).await?;
        for i in 0..args.workers {
            let (mut c, dir) = bed.node_config(Role::Worker)?;
            if let Some(ms) = args.flush_ms {
                c.ingest.flush_interval = Duration::from_millis(ms);
            }
            c.cluster.storage_writer = args.storage_writers.is_none_or(|n| i < n);
            if let Some(s) = args.session_s {
                c.cluster.session_timeout = Duration::from_secs(s);
            }
            let p = tokio::task::spawn_blocking(move || HubProcess::start(&c, &dir)).await??;
            bed.workers.push(Some(p));
        }
        for _ in 0..args.frontends {
            bed.add_frontend().await?;
        }
        bed
    } else {
        ClusterBed::start(&estate, args.frontends, args.workers).await?
    };
    let r = run(&args, &mut bed, devices, probe).await;
    // ClusterBed drops its temporary directory before it stops QuestDB, whose files then
    // survive in it (gigabytes after a run): remove it again once everything is stopped.
    let dir = bed.dir.path().to_path_buf();
    drop(bed);
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    r
}

async fn run(
    args: &Args,
    bed: &mut ClusterBed,
    devices: Vec<SimDevice>,
    probe: SimDevice,
) -> Result<()> {
    wait_partitions(bed, Duration::from_secs(180)).await?;
    let tck = clock_ticks();
    print_machine();
    if !args.no_throughput {
        throughput(args, bed, &devices, &probe, tck).await?;
    }
    if args.check_duplicates {
        let bootstrap = bed.kafka.bootstrap();
        tokio::task::spawn_blocking(move || check_duplicates(&bootstrap)).await??;
    }
    if args.failovers > 0 {
        failover(args, bed, &devices).await?;
    }
    Ok(())
}

// ---------------------------------------------------------------- helpers

/// A metric of the node at `api` (the sum over its label sets).
async fn metric(api: &str, series: &str) -> Option<f64> {
    // One client for every poll: building one loads the TLS roots, which cost the bench's
    // main thread ~10 µs per message of CPU the cluster then lacked.
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let text = CLIENT
        .get_or_init(reqwest::Client::new)
        .get(format!("http://{api}/metrics"))
        .bearer_auth(CLUSTER_ADMIN)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let mut sum = None;
    for line in text.lines() {
        if line.split([' ', '{']).next() == Some(series) {
            let v: f64 = line.rsplit(' ').next()?.parse().ok()?;
            sum = Some(sum.unwrap_or(0.0) + v);
        }
    }
    sum
}

/// Rows in the four telemetry tables (0 for a table QuestDB cannot count yet).
async fn telemetry_rows(bed: &ClusterBed) -> i64 {
    let mut rows = 0;
    for t in [
        "smoke_telemetry",
        "pump_telemetry",
        "lift_telemetry",
        "gate_telemetry",
    ] {
        rows += bed
            .count(&format!("SELECT count() FROM {t}"))
            .await
            .unwrap_or(0);
    }
    rows
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
