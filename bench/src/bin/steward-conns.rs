//! Many concurrent device connections, each publishing one QoS 1 reading every
//! `--interval` seconds, against the hub running as its own process: reports the hub's
//! resident memory per connection and whether every reading landed.
//!
//! The clients speak MQTT 3.1.1 directly over tokio sockets (a few hundred bytes each),
//! because tens of thousands of full client event loops in one process would measure the
//! load generator instead of the hub.

use anyhow::{bail, Context, Result};
use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_storage::questdb::QuestDbClient;
use steward_tests::process::{rss_kib, HubProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Parser)]
#[command(about = "Concurrent device connections against the hub: memory and delivery")]
struct Args {
    /// Connections to open (capped by this process's and the hub's open-file limit).
    #[arg(long, default_value_t = 50_000)]
    connections: usize,
    /// Seconds between two readings of one device.
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// Publishing rounds after every connection is up.
    #[arg(long, default_value_t = 3)]
    rounds: u64,
    /// New connections per second while ramping up.
    #[arg(long, default_value_t = 1_000)]
    ramp: u64,
}

fn open_file_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024)
}

fn put_str(buf: &mut Vec<u8>, s: &[u8]) {
    buf.extend_from_slice(&(s.len() as u16).to_be_bytes());
    buf.extend_from_slice(s);
}

fn put_len(buf: &mut Vec<u8>, mut len: usize) {
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        buf.push(b);
        if len == 0 {
            break;
        }
    }
}

fn connect_packet(id: &str, secret: &str) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(4); // 3.1.1
    body.push(0xC2); // username, password, clean session
    body.extend_from_slice(&120u16.to_be_bytes()); // keep-alive, s
    put_str(&mut body, id.as_bytes());
    put_str(&mut body, id.as_bytes());
    put_str(&mut body, secret.as_bytes());
    let mut p = vec![0x10];
    put_len(&mut p, body.len());
    p.extend_from_slice(&body);
    p
}

fn publish_packet(topic: &str, pkid: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, topic.as_bytes());
    body.extend_from_slice(&pkid.to_be_bytes());
    body.extend_from_slice(payload);
    let mut p = vec![0x32]; // PUBLISH, QoS 1
    put_len(&mut p, body.len());
    p.extend_from_slice(&body);
    p
}

fn reading(kind: &str, ts: i64, seq: u64) -> String {
    let metrics = match kind {
        "smoke" => r#"{"alarm": false, "co_ppm": 0.5, "battery_v": 3.0}"#,
        "pump" => r#"{"running": true, "outlet_pressure_mpa": 0.45}"#,
        "lift" => r#"{"floor": 3, "moving": false, "door": "closed"}"#,
        _ => r#"{"state": "closed", "locked": true}"#,
    };
    format!(r#"{{"ts": {ts}, "seq": {seq}, "metrics": {metrics}}}"#)
}

struct Stats {
    retries: AtomicU64,
    connected: AtomicU64,
    failed: AtomicU64,
    acked: AtomicU64,
}

async fn connect_once(addr: &str, id: &str, secret: &str) -> Result<TcpStream> {
    let mut s = TcpStream::connect(addr).await?;
    s.write_all(&connect_packet(id, secret)).await?;
    let mut ack = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), s.read_exact(&mut ack)).await??;
    if ack != [0x20, 0x02, 0x00, 0x00] {
        bail!("{id}: CONNACK {ack:?}");
    }
    Ok(s)
}

struct Plan {
    addr: String,
    interval: Duration,
    rounds: u64,
    stats: Stats,
}

/// One device: connect, then a reading every `interval` (first one after `offset`).
async fn device(
    plan: Arc<Plan>,
    id: String,
    secret: String,
    kind: String,
    offset: Duration,
) -> Result<()> {
    let (interval, rounds, stats) = (plan.interval, plan.rounds, &plan.stats);
    let addr = &plan.addr;
    // Like a real device: a refused or reset connection is retried with back-off (the
    // listen backlog overflows while thousands connect at once).
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 0;
    let mut s = loop {
        attempt += 1;
        match connect_once(addr, &id, &secret).await {
            Ok(s) => break s,
            Err(e) if attempt >= 8 => return Err(e),
            Err(e) => {
                if stats.retries.fetch_add(1, Ordering::Relaxed) < 3 {
                    eprintln!("connect retried: {e:#}");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(8));
            }
        }
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(offset).await;
    let topic = format!("devices/{id}/telemetry");
    for round in 0..rounds {
        let pkid = (round % 65_000 + 1) as u16;
        // The device's own clock: rules judge silence by the readings' timestamps.
        let body = reading(&kind, steward_tests::now_ms(), round);
        s.write_all(&publish_packet(&topic, pkid, body.as_bytes()))
            .await?;
        let mut puback = [0u8; 4];
        s.read_exact(&mut puback).await?;
        if puback[0] == 0x40 {
            stats.acked.fetch_add(1, Ordering::Relaxed);
        }
        tokio::time::sleep(interval).await;
    }
    // Stay connected until the measurement ends (the task is aborted then).
    let mut rest = [0u8; 64];
    loop {
        if s.read(&mut rest).await? == 0 {
            return Ok(());
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    steward_tests::init_logging();
    let args = Args::parse();
    // Each connection holds one descriptor here and one in the hub (same limits).
    let limit = open_file_limit();
    let n = args.connections.min(limit.saturating_sub(1_000) as usize);
    if n < args.connections {
        eprintln!(
            "open-file limit {limit}: measuring {n} connections instead of {}",
            args.connections
        );
    }
    let estate = steward_tests::load_estate(n);
    let file = steward_tests::EstateFile::parse(&estate)?;
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("estate.toml"), &estate)?;
    let config = hub_config(dir.path())?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&config, dir.path()))?;
    let pid = hub.pid();
    let rss_idle = rss_kib(pid);
    let interval = Duration::from_secs(args.interval);
    let plan = Arc::new(Plan {
        addr: hub.mqtt_addr.clone(),
        interval,
        rounds: args.rounds,
        stats: Stats {
            retries: AtomicU64::new(0),
            connected: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            acked: AtomicU64::new(0),
        },
    });
    let stats = &plan.stats;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(n);
    for (i, d) in file.devices.iter().take(n).enumerate() {
        let Some(secret) = d.secret.clone() else {
            continue;
        };
        // Spread each round of readings evenly over the interval.
        let offset = interval.mul_f64((i as f64) / (n as f64));
        let plan2 = plan.clone();
        let fut = device(
            plan.clone(),
            d.id.clone(),
            secret,
            d.kind.as_str().to_string(),
            offset,
        );
        tasks.push(tokio::spawn(async move {
            if let Err(e) = fut.await {
                if plan2.stats.failed.fetch_add(1, Ordering::Relaxed) < 5 {
                    eprintln!("device failed: {e:#}");
                }
            }
        }));
        if (i as u64 + 1).is_multiple_of(args.ramp.max(1)) {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    while stats.connected.load(Ordering::Relaxed) + stats.failed.load(Ordering::Relaxed) < n as u64
        && start.elapsed() < Duration::from_secs(600)
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ramp_secs = start.elapsed().as_secs_f64();
    let rss_connected = rss_kib(pid);
    let expected = stats.connected.load(Ordering::Relaxed) * args.rounds;
    let mut rss_peak = rss_connected;
    let deadline = Instant::now() + interval * (args.rounds as u32 + 2);
    while stats.acked.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        rss_peak = rss_peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let q = QuestDbClient::new(
        hub_questdb(&hub)
            .await
            .context("questdb address from the hub")?,
    )?;
    let rows = stored_rows(&q, &stats.acked).await;
    let connected = stats.connected.load(Ordering::Relaxed);
    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| connections open | {connected} of {n} (failed {}) |",
        stats.failed.load(Ordering::Relaxed)
    );
    println!(
        "| ramp-up | {ramp_secs:.1} s ({} connection retries) |",
        stats.retries.load(Ordering::Relaxed)
    );
    println!("| hub RSS idle | {} MiB |", rss_idle / 1024);
    println!(
        "| hub RSS with all connected | {} MiB |",
        rss_connected / 1024
    );
    println!(
        "| hub RSS peak while publishing | {} MiB |",
        rss_peak / 1024
    );
    let per_conn = (rss_peak.saturating_sub(rss_idle)) as f64 / connected.max(1) as f64;
    println!("| hub RSS at the end | {} MiB |", rss_kib(pid) / 1024);
    println!("| hub RSS per connection | {per_conn:.1} KiB |");
    if (connected as usize) < args.connections {
        // The open-file limit capped the run: say what the measured slope gives at the
        // number asked for, marked as a projection.
        println!(
            "| hub RSS projected at {} connections (idle + slope) | {:.0} MiB |",
            args.connections,
            (rss_idle as f64 + per_conn * args.connections as f64) / 1024.0
        );
    }
    println!(
        "| readings acked / stored | {} / {rows} |",
        stats.acked.load(Ordering::Relaxed)
    );
    for t in tasks {
        t.abort();
    }
    // What the rest of the hub made of the load: rules keeping up, tickets, broker log.
    print_hub_metrics(&hub).await;
    print_hub_warnings(&hub.log);
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(60)))?;
    Ok(())
}

/// The hub's configuration for this run: everything under `dir`, ephemeral ports.
fn hub_config(dir: &std::path::Path) -> Result<steward::HubConfig> {
    let mut config = steward::HubConfig::default();
    config.estate.file = Some(dir.join("estate.toml"));
    config.estate.database = dir.join("steward.db");
    config.rules.database = dir.join("tickets.db");
    config.notify.outbox.database = dir.join("notify.db");
    config.escalation.database = dir.join("escalation.db");
    config.ingest.spool_dir = dir.join("spool");
    config.questdb.managed.root = Some(dir.join("questdb"));
    config.questdb.managed.max_heap = "1g".into();
    config.broker.v4_listen = "127.0.0.1:0".parse()?;
    config.broker.v5_listen = Some("127.0.0.1:0".parse()?);
    config.api.listen = "127.0.0.1:0".parse()?;
    config.api.admin_token = "conns-bench-admin-token".into();
    Ok(config)
}

/// Telemetry rows in QuestDB, polled until they reach the acked count or a minute has
/// passed.
async fn stored_rows(q: &QuestDbClient, acked: &AtomicU64) -> i64 {
    let mut rows = 0;
    let row_deadline = Instant::now() + Duration::from_secs(60);
    while rows < acked.load(Ordering::Relaxed) as i64 && Instant::now() < row_deadline {
        rows = 0;
        for t in [
            "smoke_telemetry",
            "pump_telemetry",
            "lift_telemetry",
            "gate_telemetry",
        ] {
            rows += q
                .exec(&format!("SELECT count() FROM {t}"))
                .await
                .ok()
                .and_then(|r| r.scalar_i64())
                .unwrap_or(0);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    rows
}

async fn print_hub_metrics(hub: &HubProcess) {
    if let Ok(resp) = reqwest::get(format!("http://{}/metrics", hub.api_addr)).await {
        let text = resp.text().await.unwrap_or_default();
        for l in text.lines().filter(|l| {
            [
                "steward_rules_received_total",
                "steward_rules_dropped_total",
                "steward_rules_tickets_raised_total",
                "steward_ingest_link_lost_total",
            ]
            .iter()
            .any(|m| l.starts_with(m))
        }) {
            eprintln!("hub metric: {l}");
        }
    }
}

/// Dropped connections are the hub's doing or the client's: the hub's own warnings,
/// grouped by message, say which.
fn print_hub_warnings(log: &std::path::Path) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    for line in text
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
    {
        // Drop the timestamp and the per-connection fields so alike lines group.
        let msg: String = line
            .split_whitespace()
            .skip(1)
            .filter(|w| !w.contains('='))
            .collect::<Vec<_>>()
            .join(" ");
        *counts.entry(msg).or_default() += 1;
    }
    let mut v: Vec<_> = counts.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (msg, n) in v.iter().take(8) {
        eprintln!("hub warning x{n}: {msg}");
    }
}

/// The hub prints QuestDB's address in its banner; the process helper keeps the log.
async fn hub_questdb(hub: &HubProcess) -> Result<std::net::SocketAddr> {
    let log = std::fs::read_to_string(&hub.log)?;
    let addr = log
        .lines()
        .find_map(|l| l.split("questdb http://").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .context("no questdb address in the hub banner")?;
    Ok(addr.parse()?)
}
