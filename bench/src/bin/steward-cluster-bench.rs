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
    /// The workers' `cluster.session_timeout` in seconds (default 6; both consumer
    /// groups; the failover part then waits this long for a killed worker).
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

// ---------------------------------------------------------------- throughput

async fn throughput(
    args: &Args,
    bed: &ClusterBed,
    devices: &[SimDevice],
    probe: &SimDevice,
    tck: f64,
) -> Result<()> {
    let addrs = bed.mqtt_addrs();
    if args.warmup > 0 {
        let base = Progress::read(bed).await;
        let t = Instant::now();
        let (sent, _) = load_split(&addrs, devices, args.warmup, 0, None, 1).await?;
        let p = wait_progress(bed, &base, sent, Duration::from_secs(600)).await;
        eprintln!(
            "warm-up: {sent} messages; rows {} records {} after {:.1}s ({:.0} msg/s)",
            p.rows - base.rows,
            p.records - base.records,
            t.elapsed().as_secs_f64(),
            sent as f64 / t.elapsed().as_secs_f64()
        );
        // The load generator's timestamps run ahead of the clock by about one ms per
        // message per device: wait until the clock has passed them, so that no measured
        // row shares a (ts, device_id) DEDUP key with a warm-up row.
        let ahead = args.warmup / devices.len().max(1) as u64 + 1_000;
        tokio::time::sleep(Duration::from_millis(ahead)).await;
    }
    if args.pause_s > 0 {
        eprintln!(
            "pausing {} s; pids: {:?}",
            args.pause_s,
            Components::of(bed)?.pids()
        );
        tokio::time::sleep(Duration::from_secs(args.pause_s)).await;
    }

    let comps = Components::of(bed)?;
    let base = Progress::read(bed).await;
    let tickets_before = ticket_count(bed).await;
    let cpu0 = comps.sample();
    let threads0 = comps.threads();
    let machine0 = machine_ticks();
    let start = Instant::now();
    let stop_probe = Arc::new(AtomicBool::new(false));
    let mut probe_task = Some(tokio::spawn(probe_latency(
        addrs[0].clone(),
        probe.clone(),
        stop_probe.clone(),
    )));
    let loads = {
        let (addrs, devices, total) = (addrs.clone(), devices.to_vec(), args.messages);
        tokio::spawn(async move { load_split(&addrs, &devices, total, 0, None, 7).await })
    };
    // Milestones, polled: every message acknowledged by Kafka (front ends' produced
    // counter), committed by the rule workers, visible as a row.
    let mut acked_at = None;
    let (mut produced_at, mut records_at, mut rows_at) = (None, None, None);
    let mut written_at = None;
    let mut max_in_flight = 0.0f64;
    let mut loads = Some(loads);
    let (mut sent, mut acked) = (args.messages, 0);
    let mut metric_failures = 0;
    let mut probe_acks = 0u64;
    let mut probe_lat = Vec::new();
    let mut last_print = Instant::now();
    let mut now = base.clone();
    let deadline = Instant::now() + Duration::from_secs(900);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if loads.as_ref().is_some_and(|l| l.is_finished()) {
            if let Some(l) = loads.take() {
                (sent, acked) = l.await??;
            }
            acked_at = Some(start.elapsed().as_secs_f64());
            stop_probe.store(true, Ordering::Relaxed);
            if let Some(t) = probe_task.take() {
                probe_lat = t.await??;
            }
            probe_acks = probe_lat.len() as u64;
        }
        now = Progress::read(bed).await;
        metric_failures += now.failed;
        if now.failed > 0 {
            continue;
        }
        max_in_flight = max_in_flight.max(now.in_flight);
        let target = sent + probe_acks;
        let el = start.elapsed().as_secs_f64();
        if loads.is_none() {
            if produced_at.is_none() && now.produced - base.produced >= target as f64 {
                produced_at = Some(el);
            }
            if records_at.is_none() && now.records - base.records >= target as f64 {
                records_at = Some(el);
            }
            if written_at.is_none() && now.written - base.written >= target as f64 {
                written_at = Some(el);
            }
            if rows_at.is_none() && now.rows - base.rows >= target as i64 {
                rows_at = Some(el);
            }
            if records_at.is_some() && rows_at.is_some() {
                break;
            }
        }
        if last_print.elapsed() > Duration::from_secs(5) {
            last_print = Instant::now();
            eprintln!(
                "  {el:.0}s: produced {} committed {} written {} rows {} in flight {}",
                now.produced - base.produced,
                now.records - base.records,
                now.written - base.written,
                now.rows - base.rows,
                now.in_flight
            );
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu1 = comps.sample();
    let threads1 = comps.threads();
    let machine1 = machine_ticks();
    if loads.is_some() {
        bail!("the load did not finish within the deadline");
    }
    let target = sent + probe_acks;
    let done = (now.records - base.records) as u64;
    let rows = (now.rows - base.rows) as u64;
    let tickets_after = ticket_count(bed).await;
    let pg_committed = pg_offsets(bed)
        .map(|m| m.values().sum::<i64>())
        .unwrap_or(-1);

    println!("\n## Throughput, cluster mode end to end\n");
    println!(
        "{} devices ({} load connections over {} front ends, QoS 1, <= 1000 in flight each) + 1 latency probe; {} workers",
        args.devices,
        devices.len(),
        addrs.len(),
        bed.workers.iter().flatten().count()
    );
    println!(
        "\n| messages | seconds | **msg/s** | load generator done | all produced (Kafka acks, PUBACKs due) | all committed (rules, PostgreSQL) | all rows written (QuestDB acked) | all rows visible (QuestDB) |\n|---|---|---|---|---|---|---|---|"
    );
    let f = |v: Option<f64>| v.map(|s| format!("{s:.2}s")).unwrap_or_else(|| "-".into());
    println!(
        "| {target} | {secs:.2} | **{:.0}** | {} | {} | {} | {} | {} |",
        target.min(done).min(rows) as f64 / secs,
        f(acked_at),
        f(produced_at),
        f(records_at),
        f(written_at),
        f(rows_at)
    );
    println!(
        "\nrecords committed by the rules {done}, rows {rows} of {target} sent ({sent} load + {probe_acks} probe); offsets summed in PostgreSQL {pg_committed}; tickets {tickets_before} -> {tickets_after}; most messages in flight to Kafka {max_in_flight}; the load generator had {acked} PUBACKs of {sent} when it stopped waiting (10 s after its last publish); failed /metrics reads {metric_failures}"
    );
    let mut lat = probe_lat;
    lat.sort_by(|a, b| a.total_cmp(b));
    if !lat.is_empty() {
        println!(
            "PUBACK latency of the probe (one QoS 1 publish at a time, every 50 ms, under the load), ms: p50 {:.1} p90 {:.1} p99 {:.1} max {:.1} (n={})",
            pct(&lat, 50.0),
            pct(&lat, 90.0),
            pct(&lat, 99.0),
            lat[lat.len() - 1],
            lat.len()
        );
    }
    let busy = (machine1.0 - machine0.0) / tck;
    let all = (machine1.1 - machine0.1) / tck;
    println!(
        "\nCPU over the run: machine busy {busy:.1} of {all:.1} core-seconds ({:.0} %)\n",
        100.0 * busy / all.max(1e-9)
    );
    println!("| component | CPU s | share of busy | CPU µs / message | cores per 100K msg/s |\n|---|---|---|---|---|");
    let mut sum = 0.0;
    for (name, a, b) in comps
        .names
        .iter()
        .zip(&cpu0)
        .zip(&cpu1)
        .map(|((n, a), b)| (n, a, b))
    {
        let s = (b - a) / tck;
        sum += s;
        let us = s * 1e6 / target as f64;
        println!(
            "| {name} | {s:.2} | {:.0} % | {us:.1} | {:.2} |",
            100.0 * s / busy.max(1e-9),
            us / 10.0
        );
    }
    let other = busy - sum;
    println!(
        "| other processes on the machine | {other:.2} | {:.0} % | {:.1} | |",
        100.0 * other / busy.max(1e-9),
        other * 1e6 / target as f64
    );
    let us = sum * 1e6 / target as f64;
    println!(
        "| **cluster + load generator** | {sum:.2} | | **{us:.1}** | **{:.2}** |",
        us / 10.0
    );
    print_threads(&comps, &threads0, &threads1, tck, target);
    print_log_warnings(bed);
    Ok(())
}

/// The busiest threads of each component over the run (threads that ended during it are
/// missed; the nodes' threads live as long as the node).
fn print_threads(
    comps: &Components,
    before: &HashMap<(usize, String), f64>,
    after: &HashMap<(usize, String), f64>,
    tck: f64,
    msgs: u64,
) {
    println!("\nBusiest threads (CPU µs per message; thread names with digits folded to #):\n");
    for (c, name) in comps.names.iter().enumerate() {
        let mut v: Vec<(&str, f64)> = after
            .iter()
            .filter(|((i, _), _)| *i == c)
            .map(|((_, t), b)| {
                let a = before.get(&(c, t.clone())).copied().unwrap_or(0.0);
                (t.as_str(), (b - a) / tck * 1e6 / msgs as f64)
            })
            .filter(|(_, us)| *us > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top: Vec<String> = v
            .iter()
            .take(8)
            .map(|(t, us)| format!("{t} {us:.1}"))
            .collect();
        println!("- {name}: {}", top.join(", "));
    }
}

/// The warnings and errors the nodes and Kafka brokers logged, counted by message (times,
/// numbers and addresses folded), to stderr: what went wrong under the load.
fn print_log_warnings(bed: &ClusterBed) {
    let mut logs: Vec<(String, std::path::PathBuf)> = Vec::new();
    for (i, f) in bed.frontends.iter().enumerate() {
        if let Some(f) = f {
            logs.push((format!("front end {i}"), f.log.clone()));
        }
    }
    for (i, w) in bed.workers.iter().enumerate() {
        if let Some(w) = w {
            logs.push((format!("worker {i}"), w.log.clone()));
        }
    }
    for i in 0..bed.kafka.nodes() {
        logs.push((
            format!("kafka {i}"),
            bed.kafka.node_dir(i).join("kafka.log"),
        ));
    }
    for (name, path) in logs {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        {
            // Drop the time stamp; fold digits so repeats of one message count together.
            let body = line.split_once(' ').map_or(line, |(_, b)| b);
            let mut key = String::new();
            for ch in body.chars().take(160) {
                if ch.is_ascii_digit() {
                    if !key.ends_with('#') {
                        key.push('#');
                    }
                } else {
                    key.push(ch);
                }
            }
            *counts.entry(key).or_insert(0) += 1;
        }
        let mut v: Vec<(u32, String)> = counts.into_iter().map(|(k, n)| (n, k)).collect();
        v.sort_by_key(|b| std::cmp::Reverse(b.0));
        for (n, k) in v.iter().take(4) {
            eprintln!("log {name}: {n} x {k}");
        }
    }
}

/// Tickets through the API of a node, or why they could not be read.
async fn ticket_count(bed: &ClusterBed) -> String {
    match bed.tickets().await {
        Ok(t) => t.len().to_string(),
        Err(e) => format!("unreadable ({e:#})"),
    }
}

/// Counters read while a run goes.
#[derive(Clone, Default)]
struct Progress {
    produced: f64,
    in_flight: f64,
    records: f64,
    /// Rows the storage writers had acknowledged by QuestDB (committed to its WAL).
    written: f64,
    rows: i64,
    /// Reads of a node's /metrics that failed (5 s timeout): the sums above are then low.
    failed: u32,
}

impl Progress {
    async fn read(bed: &ClusterBed) -> Progress {
        let mut p = Progress::default();
        let mut add = |v: Option<f64>, to: &mut f64| match v {
            Some(v) => *to += v,
            None => p.failed += 1,
        };
        for f in bed.frontends.iter().flatten() {
            let (mut a, mut b) = (0.0, 0.0);
            add(
                metric(&f.api_addr, "steward_cluster_produced_total").await,
                &mut a,
            );
            add(
                metric(&f.api_addr, "steward_cluster_in_flight").await,
                &mut b,
            );
            p.produced += a;
            p.in_flight += b;
        }
        for w in bed.workers.iter().flatten() {
            let mut a = 0.0;
            add(
                metric(&w.api_addr, "steward_cluster_worker_records_total").await,
                &mut a,
            );
            p.records += a;
            let mut b = 0.0;
            add(
                metric(&w.api_addr, "steward_ingest_rows_written_total").await,
                &mut b,
            );
            p.written += b;
        }
        p.rows = telemetry_rows(bed).await;
        p
    }
}

async fn wait_progress(bed: &ClusterBed, base: &Progress, n: u64, limit: Duration) -> Progress {
    let deadline = Instant::now() + limit;
    loop {
        let p = Progress::read(bed).await;
        let done = p.records - base.records >= n as f64 && p.rows - base.rows >= n as i64;
        if done || Instant::now() > deadline {
            return p;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// `total` messages (or a steady `rate` for `duration`) from the devices, which are dealt
/// round robin to the front ends, one device-sim load per front end, all at once.
/// Returns the messages sent.
async fn load_split(
    addrs: &[String],
    devices: &[SimDevice],
    total: u64,
    rate: u64,
    duration: Option<Duration>,
    seed: u64,
) -> Result<(u64, u64)> {
    let k = addrs.len().max(1);
    let mut tasks = Vec::new();
    for (i, addr) in addrs.iter().enumerate() {
        let mine: Vec<SimDevice> = devices.iter().skip(i).step_by(k).cloned().collect();
        let cfg = LoadConfig {
            broker: addr.clone(),
            connections: mine.len(),
            devices: mine,
            rate: rate / k as u64,
            total: (total > 0).then(|| total / k as u64 + u64::from((i as u64) < total % k as u64)),
            duration,
            qos: 1,
            seed: seed + i as u64,
            progress: false,
        };
        tasks.push(tokio::spawn(run_load(cfg)));
    }
    let (mut sent, mut acked) = (0, 0);
    for t in tasks {
        let r = t.await??;
        if r.connect_failures > 0 || r.errors > 0 || r.acked < r.sent {
            eprintln!(
                "load: sent {} acked {} errors {} connect failures {}",
                r.sent, r.acked, r.errors, r.connect_failures
            );
        }
        sent += r.sent;
        acked += r.acked;
    }
    Ok((sent, acked))
}

/// One QoS 1 publish at a time every 50 ms; returns the publish -> PUBACK times in ms.
async fn probe_latency(addr: String, dev: SimDevice, stop: Arc<AtomicBool>) -> Result<Vec<f64>> {
    let (host, port) = addr
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("bad address {addr}"))?;
    let mut opts = MqttOptions::new(&dev.id, host, port.parse()?);
    let secret = dev.secret.clone().unwrap_or_default();
    opts.set_credentials(&dev.id, &secret);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut ev) = AsyncClient::new(opts, 16);
    let topic = format!("devices/{}/telemetry", dev.id);
    let mut model = DeviceModel::new(&dev.id, dev.kind, 3);
    let mut out = Vec::new();
    let mut connected = false;
    let mut last_ts = 0;
    while !stop.load(Ordering::Relaxed) {
        if connected {
            let ts = steward_estate::clock::now_ms().max(last_ts + 1);
            last_ts = ts;
            let metrics = model.metrics_at(ts);
            let body = steward_device_sim::telemetry_payload(ts, model.next_seq(), &metrics);
            client
                .publish(&topic, QoS::AtLeastOnce, false, body)
                .await?;
        }
        let t = Instant::now();
        let got = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                match ev.poll().await? {
                    Event::Incoming(Packet::ConnAck(_)) if !connected => return Ok(false),
                    Event::Incoming(Packet::PubAck(_)) => {
                        return Ok::<bool, rumqttc::ConnectionError>(true)
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| anyhow!("probe: no PUBACK within 30 s"))??;
        if got {
            out.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        connected = true;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = client.disconnect().await;
    let _ = tokio::time::timeout(Duration::from_secs(1), ev.poll()).await;
    Ok(out)
}

// ---------------------------------------------------------------- failover

async fn failover(args: &Args, bed: &mut ClusterBed, devices: &[SimDevice]) -> Result<()> {
    let addrs = bed.mqtt_addrs();
    let steady = {
        let (addrs, devices, rate) = (addrs.clone(), devices.to_vec(), args.failover_rate);
        tokio::spawn(async move {
            load_split(
                &addrs,
                &devices,
                0,
                rate,
                Some(Duration::from_secs(24 * 3600)),
                11,
            )
            .await
        })
    };
    let r = failover_cycles(args, bed).await;
    steady.abort();
    let (took, owned, rebalanced, active) = r?;
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return "-".to_string();
        }
        format!(
            "{:.2} | {:.2} | {:.2} | {:.2}",
            v[0],
            pct(&v, 50.0),
            pct(&v, 99.0),
            v[v.len() - 1]
        )
    };
    println!(
        "\n## Failover: kill -9 a worker under {} msg/s\n",
        args.failover_rate
    );
    println!(
        "{} cycles; {active} of 12 partitions carried traffic; seconds from the kill:\n",
        took.len()
    );
    println!("| measure | min | median | p99 | max |\n|---|---|---|---|---|");
    println!("| survivors own all 12 partitions | {} |", stats(&owned));
    println!(
        "| **every partition with traffic committed new records** (processing again) | {} |",
        stats(&took)
    );
    println!(
        "| replacement worker started -> it owns partitions and all 12 are owned | {} |",
        stats(&rebalanced)
    );
    println!(
        "\neach cycle (s, processing again): {}",
        took.iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

type Cycles = (Vec<f64>, Vec<f64>, Vec<f64>, usize);

async fn failover_cycles(args: &Args, bed: &mut ClusterBed) -> Result<Cycles> {
    // Which partitions carry traffic at this rate (compounds hash to 12 partitions; a
    // partition may get none): those whose committed offset moves within a few seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = pg_offsets(bed)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = pg_offsets(bed)?;
    let active: Vec<i32> = b
        .iter()
        .filter(|(p, o)| a.get(p).is_none_or(|x| *o > x))
        .map(|(p, _)| *p)
        .collect();
    eprintln!("partitions with traffic: {active:?}");
    if active.is_empty() {
        bail!("no partition committed anything under the steady load");
    }
    let (mut took, mut owned_v, mut rebalanced) = (Vec::new(), Vec::new(), Vec::new());
    for cycle in 0..args.failovers {
        let victim = bed
            .workers
            .iter()
            .position(|w| w.is_some())
            .context("no live worker")?;
        let t0 = Instant::now();
        bed.kill_worker(victim)?;
        // After the kill (the process is reaped): nothing of the victim can commit now.
        let before = pg_offsets(bed)?;
        let mut owned_at = None;
        let mut done_at = None;
        // When each partition first committed after the kill: the survivor's own resume at
        // once, the victim's only once they moved.
        let mut advanced: BTreeMap<i32, f64> = BTreeMap::new();
        while t0.elapsed() < Duration::from_secs(180) {
            let owned = bed.owned_partitions().await;
            let el = t0.elapsed().as_secs_f64();
            let now = pg_offsets(bed)?;
            for p in &active {
                if now.get(p).copied().unwrap_or(-1) > before.get(p).copied().unwrap_or(-1) {
                    advanced.entry(*p).or_insert(el);
                }
            }
            if owned == PARTITIONS {
                owned_at.get_or_insert(el);
                if advanced.len() == active.len() {
                    done_at = Some(el);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut order: Vec<(f64, i32)> = advanced.iter().map(|(p, t)| (*t, *p)).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        eprintln!(
            "cycle {cycle}: first commit after the kill per partition (s): {}",
            order
                .iter()
                .map(|(t, p)| format!("p{p} {t:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (Some(o), Some(d)) = (owned_at, done_at) else {
            bail!("cycle {cycle}: partitions not processing again within 180 s (owned at {owned_at:?})");
        };
        owned_v.push(o);
        took.push(d);
        let t1 = Instant::now();
        let new = bed.add_worker().await?;
        let ok = steward_tests::wait_until(Duration::from_secs(180), || async {
            bed.owned_partitions().await == PARTITIONS
                && bed
                    .worker_metric(new, "steward_cluster_worker_partitions")
                    .await
                    .unwrap_or(0.0)
                    >= 1.0
        })
        .await;
        if !ok {
            bail!("cycle {cycle}: the replacement worker got no partitions within 180 s");
        }
        let r = t1.elapsed().as_secs_f64();
        rebalanced.push(r);
        eprintln!(
            "cycle {cycle}: killed worker {victim}; all owned after {o:.2}s, processing again after {d:.2}s; replacement {new} rebalanced in {r:.2}s"
        );
        // Let the new assignment settle (both workers committing) before the next kill.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok((took, owned_v, rebalanced, active.len()))
}

/// Every record of the telemetry topic, grouped by (MQTT topic, payload): how many
/// payloads occur more than once, and whether the copies have the same front-end receive
/// time (the same message produced again) or different ones (the front end received it
/// twice).
fn check_duplicates(bootstrap: &str) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-duplicates")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut high = HashMap::new();
    for p in 0..PARTITIONS as i32 {
        let (_, h) = c.fetch_watermarks(TOPIC, p, Duration::from_secs(10))?;
        high.insert(p, h);
        tpl.add_partition_offset(TOPIC, p, rdkafka::Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    // (MQTT topic, payload) -> (partition, offset, receive time) of each copy.
    type Copies = Vec<(i32, i64, Vec<u8>)>;
    let mut seen: HashMap<(Vec<u8>, Vec<u8>), Copies> = HashMap::new();
    let mut done: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while done.iter().filter(|(p, o)| **o + 1 >= high[*p]).count()
        < high.values().filter(|h| **h > 0).count()
        && Instant::now() < deadline
    {
        let Some(m) = c.poll(Duration::from_secs(1)) else {
            continue;
        };
        let m = m?;
        let (mut topic, mut rec) = (Vec::new(), Vec::new());
        if let Some(h) = m.headers() {
            for i in 0..h.count() {
                let x = h.get(i);
                match x.key {
                    "mqtt_topic" => topic = x.value.unwrap_or(&[]).to_vec(),
                    "received_us" => rec = x.value.unwrap_or(&[]).to_vec(),
                    _ => {}
                }
            }
        }
        let payload = m.payload().unwrap_or(&[]).to_vec();
        seen.entry((topic, payload))
            .or_default()
            .push((m.partition(), m.offset(), rec));
        done.insert(m.partition(), m.offset());
    }
    let total: usize = seen.values().map(Vec::len).sum();
    let (mut same, mut differ) = (0usize, 0usize);
    let mut examples = Vec::new();
    for (k, v) in &seen {
        if v.len() > 1 {
            if v.iter().all(|x| x.2 == v[0].2) {
                same += v.len() - 1;
            } else {
                differ += v.len() - 1;
            }
            if examples.len() < 5 {
                examples.push(format!(
                    "{} at {:?}",
                    String::from_utf8_lossy(&k.0),
                    v.iter()
                        .map(|x| format!("p{}@{} rx {}", x.0, x.1, String::from_utf8_lossy(&x.2)))
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    println!(
        "\nduplicates in the telemetry topic: {total} records, {} distinct (topic, payload); extra copies with the same receive time {same}, with another receive time {differ}",
        seen.len()
    );
    for e in examples {
        println!("  e.g. {e}");
    }
    Ok(())
}

/// Next offset of each partition of the rules group, as committed in PostgreSQL.
fn pg_offsets(bed: &ClusterBed) -> Result<BTreeMap<i32, i64>> {
    let out = std::process::Command::new("psql")
        .arg(bed.postgres.url())
        .args(["-Atc"])
        .arg(format!(
            "SELECT partition_id, next_offset FROM partition_offsets WHERE consumer_group = '{RULES_GROUP}' AND topic = '{TOPIC}'"
        ))
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((p, o)) = line.split_once('|') {
            m.insert(p.trim().parse()?, o.trim().parse()?);
        }
    }
    Ok(m)
}

async fn wait_partitions(bed: &ClusterBed, limit: Duration) -> Result<()> {
    if !steward_tests::wait_until(limit, || async {
        bed.owned_partitions().await == PARTITIONS
    })
    .await
    {
        bail!(
            "the workers own {} of 12 partitions",
            bed.owned_partitions().await
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- CPU accounting

/// The processes of each component: CPU is counted over each root and its descendants
/// (utime + stime of the live ones, plus cutime + cstime of what they reaped).
struct Components {
    names: Vec<String>,
    roots: Vec<Vec<u32>>,
    /// Count the root's descendants (false for this process: the JVMs, PostgreSQL and the
    /// nodes are its children, counted as their own components).
    tree: Vec<bool>,
}

impl Components {
    fn of(bed: &ClusterBed) -> Result<Components> {
        let mut names = Vec::new();
        let mut roots = Vec::new();
        let mut tree = Vec::new();
        names.push("Kafka (3 broker JVMs)".to_string());
        roots.push(
            (0..bed.kafka.nodes())
                .filter_map(|i| bed.kafka.pid(i))
                .collect(),
        );
        let pm = std::fs::read_to_string(bed.postgres.dir().join("data/postmaster.pid"))
            .context("reading postmaster.pid")?;
        let pm: u32 = pm.lines().next().unwrap_or("").trim().parse()?;
        names.push("PostgreSQL (postmaster + backends)".to_string());
        roots.push(vec![pm]);
        names.push("QuestDB (JVM)".to_string());
        roots.push(vec![find_by_cmdline(
            &bed.questdb.root().display().to_string(),
        )
        .context("QuestDB's java process not found")?]);
        for (i, f) in bed.frontends.iter().enumerate() {
            if let Some(f) = f {
                names.push(format!("front end {i} (steward)"));
                roots.push(vec![f.pid()]);
            }
        }
        for (i, w) in bed.workers.iter().enumerate() {
            if let Some(w) = w {
                names.push(format!("worker {i} (steward: rules + storage writer)"));
                roots.push(vec![w.pid()]);
            }
        }
        tree.resize(names.len(), true);
        names.push("load generator + probe + this bench (device-sim, one process)".to_string());
        roots.push(vec![std::process::id()]);
        tree.push(false);
        Ok(Components { names, roots, tree })
    }

    fn pids(&self) -> Vec<(String, Vec<u32>)> {
        self.names
            .iter()
            .cloned()
            .zip(self.roots.iter().cloned())
            .collect()
    }

    /// Clock ticks of each component now.
    fn sample(&self) -> Vec<f64> {
        let procs = all_procs();
        let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in &procs {
            kids.entry(p.ppid).or_default().push(*pid);
        }
        self.roots
            .iter()
            .zip(&self.tree)
            .map(|(roots, tree)| {
                let mut sum = 0u64;
                let mut stack = roots.clone();
                while let Some(pid) = stack.pop() {
                    if let Some(p) = procs.get(&pid) {
                        sum += if *tree { p.ticks } else { p.own };
                    }
                    if let Some(k) = kids.get(&pid).filter(|_| *tree) {
                        stack.extend(k);
                    }
                }
                sum as f64
            })
            .collect()
    }

    /// Clock ticks of every thread of each component's processes, by component and
    /// thread name (digits folded, so `rdk:broker3` and `rdk:broker7` add up).
    fn threads(&self) -> HashMap<(usize, String), f64> {
        let procs = all_procs();
        let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in &procs {
            kids.entry(p.ppid).or_default().push(*pid);
        }
        let mut out = HashMap::new();
        for (c, (roots, tree)) in self.roots.iter().zip(&self.tree).enumerate() {
            let mut stack = roots.clone();
            while let Some(pid) = stack.pop() {
                for (name, t) in thread_ticks(pid) {
                    *out.entry((c, name)).or_insert(0.0) += t;
                }
                if let Some(k) = kids.get(&pid).filter(|_| *tree) {
                    stack.extend(k);
                }
            }
        }
        out
    }
}

struct Proc {
    ppid: u32,
    /// utime + stime + cutime + cstime
    ticks: u64,
    /// utime + stime
    own: u64,
}

/// (thread name with digits folded to `#`, utime + stime) of each thread of `pid`.
fn thread_ticks(pid: u32) -> Vec<(String, f64)> {
    let mut v = Vec::new();
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return v;
    };
    for e in rd.flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (s.find('('), s.rfind(')')) else {
            continue;
        };
        let mut name = String::new();
        for ch in s[open + 1..close].chars() {
            if ch.is_ascii_digit() {
                if !name.ends_with('#') {
                    name.push('#');
                }
            } else {
                name.push(ch);
            }
        }
        let f: Vec<&str> = s[close + 1..].split_whitespace().collect();
        let n = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        v.push((name, n(11) + n(12)));
    }
    v
}

fn proc_stat(pid: u32) -> Option<Proc> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let n = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
    Some(Proc {
        ppid: n(1)? as u32,
        ticks: n(11)? + n(12)? + n(13)? + n(14)?,
        own: n(11)? + n(12)?,
    })
}

fn all_procs() -> HashMap<u32, Proc> {
    let mut m = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            if let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) {
                if let Some(p) = proc_stat(pid) {
                    m.insert(pid, p);
                }
            }
        }
    }
    m
}

fn find_by_cmdline(needle: &str) -> Option<u32> {
    let rd = std::fs::read_dir("/proc").ok()?;
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains("java") && cmd.contains(needle) {
            return Some(pid);
        }
    }
    None
}

/// (busy, total) clock ticks of the whole machine, from /proc/stat.
fn machine_ticks() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = s.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0.0) + v.get(4).copied().unwrap_or(0.0);
    (total - idle, total)
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn print_machine() {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {cores} cores ({model}); load average before the runs: {}",
        load.trim()
    );
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
