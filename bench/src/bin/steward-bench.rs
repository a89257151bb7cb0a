//! End-to-end benchmark: simulator load over TCP -> broker -> ingest -> QuestDB, next to
//! a baseline measured in the same run: raw rumqttd (publish -> in-process subscriber, no
//! decoding) under the same load, Mosquitto with a subscriber when it is installed, and
//! QuestDB alone taking the hub's rows (the ceiling storage sets on this machine).
//!
//! `cargo run --release -p steward-bench --bin steward-bench -- --messages 300000`

use anyhow::{Context, Result};
use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_device_sim::DeviceModel;
use steward_device_sim::{devices_from_estate, run_load, LoadConfig};
use steward_estate::{EstateFile, Registry};
use steward_ingest::{contract, AckMode, IngestConfig};
use steward_storage::questdb::{ilp, ManagedConfig, ManagedQuestDb, QuestDbClient};
use steward_tests::{load_estate, HubSandbox};

#[derive(Parser)]
struct Args {
    /// Messages per run.
    #[arg(long, default_value_t = 300_000)]
    messages: u64,
    /// Devices (and MQTT connections) publishing.
    #[arg(long, default_value_t = 100)]
    devices: usize,
    #[arg(long, default_value_t = 1)]
    qos: u8,
    /// Messages sent to the hub before the measured run, so QuestDB's JIT has compiled
    /// its hot paths (a cold JVM spends most of the first seconds compiling).
    #[arg(long, default_value_t = 200_000)]
    warmup: u64,
    /// Rows per QuestDB batch in the hub (`ingest.batch_rows`).
    #[arg(long, default_value_t = 50_000)]
    batch_rows: usize,
    /// Flush interval of a partial batch, ms (`ingest.flush_interval`).
    #[arg(long, default_value_t = 200)]
    flush_ms: u64,
    /// A setting of the hub's managed QuestDB (`questdb.managed.settings`), e.g.
    /// `--qdb QDB_SHARED_WORKER_COUNT=1`; repeatable.
    #[arg(long = "qdb", value_parser = parse_setting)]
    qdb: Vec<(String, String)>,
    /// Ack mode of the hub run (`ingest.ack`: spooled, synced, received); repeat it to
    /// run the hub once per mode in the same sitting, e.g. `--ack spooled --ack received`.
    #[arg(long = "ack", value_parser = parse_ack, default_value = "spooled")]
    acks: Vec<AckMode>,
    /// Skip the raw rumqttd baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Skip the Mosquitto baseline even if mosquitto is installed.
    #[arg(long)]
    no_mosquitto: bool,
    /// Skip the QuestDB-alone ceiling (the hub's rows, encoded before the clock starts,
    /// sent straight to a managed QuestDB).
    #[arg(long)]
    no_questdb_alone: bool,
    /// Also run the hub with a third-party load client (Debian's mosquitto_pub, driven by
    /// bench/load/mosquitto_pub_load.sh), as a check on our own load generator.
    #[arg(long)]
    third_party: bool,
    /// Also measure the pipeline users would build instead: Mosquitto + Node-RED writing
    /// to QuestDB (bench/nodered/measure.sh; needs `npm ci` there).
    #[arg(long)]
    nodered: bool,
}

fn parse_ack(s: &str) -> Result<AckMode, String> {
    steward_tests::crash::parse_mode(s).map_err(|e| e.to_string())
}

fn parse_setting(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .ok_or_else(|| format!("`{s}`: expected KEY=VALUE"))
}

#[derive(Clone, Copy, PartialEq)]
enum Client {
    DeviceSim,
    MosquittoPub,
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Run a bench script and parse the one JSON line it prints last.
async fn script_json(cmd: &mut tokio::process::Command) -> Result<serde_json::Value> {
    let out = cmd
        .stderr(std::process::Stdio::inherit())
        .output()
        .await
        .context("running bench script")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        anyhow::bail!("bench script failed ({}): {text}", out.status);
    }
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON result line")?;
    Ok(serde_json::from_str(line)?)
}

/// Mosquitto + Node-RED -> QuestDB, the pipeline a user would assemble instead.
async fn nodered(args: &Args) -> Result<Row> {
    let v = script_json(
        tokio::process::Command::new(repo_root().join("bench/nodered/measure.sh"))
            .args(["--messages", &args.messages.to_string()])
            .args(["--connections", &args.devices.min(64).to_string()])
            .args(["--qos", &args.qos.to_string()])
            .args(["--client", "mosquitto_pub"]),
    )
    .await?;
    Ok(Row {
        name: "Mosquitto + Node-RED -> QuestDB (row visible)".into(),
        msgs: v["rows"].as_u64().unwrap_or(0),
        secs: v["secs"].as_f64().unwrap_or(f64::NAN),
        note: format!("{} messages sent by mosquitto_pub", v["messages"]),
    })
}

struct Row {
    name: String,
    msgs: u64,
    secs: f64,
    note: String,
}

impl Row {
    fn rate(&self) -> f64 {
        self.msgs as f64 / self.secs
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let estate_text = load_estate(args.devices);
    let estate = EstateFile::parse(&estate_text)?;
    let devices = devices_from_estate(&estate);
    let mut rows = Vec::new();

    if !args.no_baseline {
        rows.push(raw_rumqttd(&args, &estate, devices.clone()).await?);
    }
    if !args.no_mosquitto {
        match mosquitto(&args, devices.clone()).await {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("mosquitto baseline skipped: {e:#}"),
        }
    }
    if args.nodered {
        match nodered(&args).await {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("node-red baseline skipped: {e:#}"),
        }
    }
    let alone = if args.no_questdb_alone {
        None
    } else {
        let r = questdb_alone(&args, &estate).await?;
        let rate = r.rate();
        rows.push(r);
        Some(rate)
    };
    let mut hub_rate = 0.0;
    for (i, ack) in args.acks.iter().enumerate() {
        rows.push(
            hub(
                &args,
                &estate_text,
                devices.clone(),
                Client::DeviceSim,
                *ack,
            )
            .await?,
        );
        if i == 0 {
            hub_rate = rows.last().map(|r| r.rate()).unwrap_or(0.0);
        }
    }
    if args.third_party {
        let ack = args.acks.first().copied().unwrap_or_default();
        match hub(&args, &estate_text, devices, Client::MosquittoPub, ack).await {
            Ok(r) => rows.push(r),
            Err(e) => eprintln!("third-party client run skipped: {e:#}"),
        }
    }

    let base = rows.first().map(|r| r.rate()).unwrap_or(1.0);
    println!();
    println!(
        "| run | messages | seconds | msg/s | ratio to first row | note |\n|---|---|---|---|---|---|"
    );
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.2} | {} |",
            r.name,
            r.msgs,
            r.secs,
            r.rate(),
            r.rate() / base,
            r.note
        );
    }
    if let Some(alone) = alone {
        println!(
            "\nhub / QuestDB alone = {:.2}: the share of what storage alone takes on this machine that the whole hub delivers",
            hub_rate / alone
        );
    }
    Ok(())
}

fn load(args: &Args, broker: String, devices: Vec<steward_device_sim::SimDevice>) -> LoadConfig {
    LoadConfig {
        broker,
        connections: devices.len(),
        devices,
        rate: 0,
        total: Some(args.messages),
        duration: None,
        qos: args.qos,
        seed: 7,
        progress: false,
    }
}

/// rumqttd with the same auth and an in-process subscriber that only counts.
async fn raw_rumqttd(
    args: &Args,
    estate: &EstateFile,
    devices: Vec<steward_device_sim::SimDevice>,
) -> Result<Row> {
    let registry = Registry::open_in_memory()?;
    registry.apply(estate)?;
    let cfg = steward_broker::BrokerConfig {
        v4_listen: "127.0.0.1:0".parse()?,
        v5_listen: None,
        ..Default::default()
    };
    let broker = steward_broker::Broker::start(&cfg, registry, Default::default())?;
    let (mut tx, mut rx) = broker.link("bench-counter")?;
    tx.subscribe("#")?;
    let count = Arc::new(AtomicU64::new(0));
    let c2 = count.clone();
    let counter = std::thread::spawn(move || {
        let _keep = tx;
        loop {
            match rx.recv_deadline(Instant::now() + Duration::from_millis(200)) {
                Ok(Some(steward_broker::Notification::Forward(_))) => {
                    c2.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Some(steward_broker::Notification::Unschedule)) => {
                    let _ = rx.ready();
                }
                Ok(_) => {}
                Err(steward_broker::LinkError::RecvTimeout(_)) => {
                    if c2.load(Ordering::Relaxed) == u64::MAX {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    let start = Instant::now();
    let report = run_load(load(args, broker.v4_addr.to_string(), devices)).await?;
    let target = report.sent;
    wait_for(
        || count.load(Ordering::Relaxed) >= target,
        Duration::from_secs(60),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    let got = count.load(Ordering::Relaxed);
    count.store(u64::MAX, Ordering::Relaxed);
    let _ = counter.join();
    broker.shutdown();
    eprintln!(
        "raw rumqttd: sent={} acked={} delivered={got}",
        report.sent, report.acked
    );
    Ok(Row {
        name: "raw rumqttd (publish -> in-process subscriber)".into(),
        msgs: got,
        secs,
        note: format!("acked {} of {} sent", report.acked, report.sent),
    })
}

async fn mosquitto(args: &Args, devices: Vec<steward_device_sim::SimDevice>) -> Result<Row> {
    let bin = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .context("mosquitto not installed (apt-get install mosquitto)")?;
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?.port()
    };
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_inflight_messages 1000\nmax_queued_messages 1000000\n"),
    )?;
    let mut child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut opts = rumqttc::MqttOptions::new("bench-sub", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut ev) = rumqttc::AsyncClient::new(opts, 1000);
    client.subscribe("#", rumqttc::QoS::AtMostOnce).await?;
    let count = Arc::new(AtomicU64::new(0));
    let c2 = count.clone();
    let sub = tokio::spawn(async move {
        while let Ok(e) = ev.poll().await {
            if let rumqttc::Event::Incoming(rumqttc::Packet::Publish(_)) = e {
                c2.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let report = run_load(load(args, format!("127.0.0.1:{port}"), devices)).await?;
    let target = report.sent;
    wait_for(
        || count.load(Ordering::Relaxed) >= target,
        Duration::from_secs(60),
    )
    .await;
    let secs = start.elapsed().as_secs_f64();
    let got = count.load(Ordering::Relaxed);
    sub.abort();
    let _ = child.kill();
    let _ = child.wait();
    Ok(Row {
        name: "Mosquitto (publish -> TCP subscriber)".into(),
        msgs: got,
        secs,
        note: format!("acked {} of {} sent", report.acked, report.sent),
    })
}

async fn hub(
    args: &Args,
    estate: &str,
    devices: Vec<steward_device_sim::SimDevice>,
    client: Client,
    ack: AckMode,
) -> Result<Row> {
    let sb = HubSandbox::start_with(estate, |c| {
        c.ingest.ack = ack;
        c.ingest.flush_interval = Duration::from_millis(args.flush_ms);
        c.ingest.batch_rows = args.batch_rows;
        c.questdb.managed.max_heap = "2g".into();
        c.questdb.managed.settings.extend(args.qdb.iter().cloned());
    })
    .await?;
    let count_rows = || telemetry_rows(&sb.hub.questdb);
    let mut base_rows = 0;
    if args.warmup > 0 {
        let mut cfg = load(args, sb.mqtt_addr(), devices.clone());
        cfg.total = Some(args.warmup);
        cfg.seed = 1;
        let w = run_load(cfg).await?;
        let deadline = Instant::now() + Duration::from_secs(120);
        while base_rows < w.sent as i64 && Instant::now() < deadline {
            base_rows = count_rows().await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!("hub warm-up: {} messages, {base_rows} rows visible", w.sent);
        // The load generator's timestamps run ahead of the clock by about one ms per
        // message per device; wait until the clock has passed them, so measured rows
        // never share a (ts, device_id) key with warm-up rows (DEDUP would merge them).
        let ahead_ms = args.warmup / args.devices.max(1) as u64 + 1_000;
        tokio::time::sleep(Duration::from_millis(ahead_ms)).await;
    }
    let base_received = sb.hub.ingest_metrics.received.get();
    let rules = sb.hub.rules_metrics.clone();
    let (base_rules_in, base_rules_dropped) = (rules.received.get(), rules.dropped.get());
    let base_written = sb.hub.ingest_metrics.storage.rows_written.get();
    let start = Instant::now();
    // Milestones: when ingest has seen every message and when QuestDB acknowledged every
    // row, next to when the rows became visible to queries.
    let m = sb.hub.ingest_metrics.clone();
    let total = args.messages;
    let watcher = tokio::spawn(async move {
        let (mut decoded_at, mut written_at) = (None, None);
        while written_at.is_none() && start.elapsed() < Duration::from_secs(180) {
            if decoded_at.is_none() && m.received.get() >= base_received + total {
                decoded_at = Some(start.elapsed().as_secs_f64());
            }
            if m.storage.rows_written.get() >= base_written + total {
                written_at = Some(start.elapsed().as_secs_f64());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (decoded_at, written_at)
    });
    let report = match client {
        Client::DeviceSim => run_load(load(args, sb.mqtt_addr(), devices)).await?,
        Client::MosquittoPub => {
            let estate_file = sb.dir.path().join("bench-estate.toml");
            std::fs::write(&estate_file, estate)?;
            let v = script_json(
                tokio::process::Command::new(repo_root().join("bench/load/mosquitto_pub_load.sh"))
                    .args(["--broker", &sb.mqtt_addr()])
                    .arg("--devices")
                    .arg(&estate_file)
                    .args(["--connections", &args.devices.to_string()])
                    .args(["--messages", &args.messages.to_string()])
                    .args(["--qos", &args.qos.to_string()]),
            )
            .await?;
            let sent = v["messages"].as_u64().unwrap_or(0);
            steward_device_sim::LoadReport {
                sent,
                acked: sent,
                errors: 0,
                elapsed: Duration::from_secs_f64(v["secs"].as_f64().unwrap_or(0.0)),
                connect_failures: 0,
            }
        }
    };
    let publish_secs = start.elapsed().as_secs_f64();
    let target = report.sent as i64;
    let mut rows = 0;
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        rows = count_rows().await - base_rows;
        if rows >= target {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let m = &sb.hub.ingest_metrics;
    eprintln!(
        "hub: sent={} acked={} received={} readings={} rejected={} rows_written={} committed={rows} publish_s={publish_secs:.2}",
        report.sent,
        report.acked,
        m.received.get(),
        m.readings_total(),
        m.rejected_total(),
        m.storage.rows_written.get()
    );
    let (decoded_at, written_at) = watcher.await.unwrap_or((None, None));
    let fmt = |v: Option<f64>| v.map(|s| format!("{s:.2}s")).unwrap_or_else(|| "-".into());
    // Every decoded message must have reached the rules too, or the figure would not be
    // end to end: say how many did and how many the rules queue dropped.
    let note = format!(
        "rows visible {rows} of {} sent; all acked by broker at {publish_secs:.2}s, decoded at {}, acked by QuestDB at {}; rules took {} messages, dropped {}",
        report.sent,
        fmt(decoded_at),
        fmt(written_at),
        rules.received.get() - base_rules_in,
        rules.dropped.get() - base_rules_dropped
    );
    sb.shutdown().await;
    Ok(Row {
        name: match client {
            Client::DeviceSim => format!(
                "Steward hub, ack={} (publish -> decode -> QuestDB row visible)",
                ack.as_str()
            ),
            Client::MosquittoPub => format!(
                "Steward hub, ack={}, load from mosquitto_pub (third-party client)",
                ack.as_str()
            ),
        },
        msgs: rows as u64,
        secs,
        note,
    })
}

/// QuestDB alone, the ceiling of the hub's end-to-end figure on this machine: the rows the
/// hub writes for the same load (simulator payloads of the four kinds, decoded and encoded by
/// the hub's own code *before* the clock starts), sent to a managed QuestDB with the hub's
/// settings and batch size, one request at a time like the hub's writer, until every row is
/// visible. No broker, no load generator, no rules share the cores.
async fn questdb_alone(args: &Args, estate: &EstateFile) -> Result<Row> {
    let cfg = ManagedConfig {
        temporary: true,
        root: None,
        max_heap: "2g".into(),
        settings: args.qdb.iter().cloned().collect(),
        ..ManagedConfig::default()
    };
    let qdb = tokio::task::spawn_blocking(move || ManagedQuestDb::start(&cfg)).await??;
    let client = QuestDbClient::new(qdb.http_addr)?;
    client.create_tables().await?;

    let registry = Registry::open_in_memory()?;
    registry.apply(estate)?;
    let dir = registry.directory();
    let ingest_cfg = IngestConfig::default();
    let mut models: Vec<DeviceModel> = estate
        .devices
        .iter()
        .map(|d| DeviceModel::new(&d.id, d.kind, 7))
        .collect();
    let n = models.len().max(1);
    // Like the load generator: each device's clock starts now and steps 1 ms a message.
    let start_ts = steward_estate::clock::now_ms();
    let mut encode = |from: u64, count: u64| -> Result<Vec<Vec<u8>>> {
        let now = steward_estate::clock::now_ms();
        let mut batches = Vec::new();
        let mut buf = steward_storage::new_buffer();
        for i in from..from + count {
            let m = &mut models[i as usize % n];
            let ts = start_ts + (i / n as u64) as i64;
            let topic = format!("devices/{}/telemetry", m.id());
            let metrics = m.metrics_at(ts);
            let payload = steward_device_sim::telemetry_payload(ts, m.next_seq(), &metrics);
            let d = contract::decode(topic.as_bytes(), &payload, &dir, now, &ingest_cfg);
            anyhow::ensure!(
                d.readings.len() == 1,
                "a simulated reading was not accepted: {:?}",
                d.rejects.first().map(|r| &r.detail)
            );
            for r in &d.readings {
                ilp::append_reading(&mut buf, r, now * 1000)?;
            }
            if buf.row_count() >= args.batch_rows {
                batches.push(buf.as_bytes().to_vec());
                buf.clear();
            }
        }
        if buf.row_count() > 0 {
            batches.push(buf.as_bytes().to_vec());
        }
        Ok(batches)
    };
    let warmup = encode(0, args.warmup)?;
    let measured = encode(args.warmup, args.messages)?;
    let bytes: usize = measured.iter().map(Vec::len).sum();

    let http = reqwest::Client::new();
    let url = format!("http://{}/write?precision=n", qdb.http_addr);
    let send = |batches: Vec<Vec<u8>>| {
        let (http, url) = (http.clone(), url.clone());
        async move {
            for b in batches {
                let resp = http.post(&url).body(b).send().await?;
                anyhow::ensure!(
                    resp.status().is_success(),
                    "QuestDB refused a batch: {} {}",
                    resp.status(),
                    resp.text().await.unwrap_or_default()
                );
            }
            anyhow::Ok(())
        }
    };
    let count_rows = || telemetry_rows(&client);
    let wait_rows = |target: i64| async move {
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut rows = 0;
        while Instant::now() < deadline {
            rows = count_rows().await;
            if rows >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        rows
    };
    send(warmup).await?;
    let base = wait_rows(args.warmup as i64).await;
    eprintln!("questdb alone warm-up: {base} rows visible");
    let start = Instant::now();
    send(measured).await?;
    let acked = start.elapsed().as_secs_f64();
    let rows = wait_rows(base + args.messages as i64).await - base;
    let secs = start.elapsed().as_secs_f64();
    drop(qdb);
    Ok(Row {
        name: "QuestDB alone (the hub's rows, encoded beforehand, ILP/HTTP -> row visible)"
            .into(),
        msgs: rows as u64,
        secs,
        note: format!(
            "rows visible {rows} of {}; {} MB of ILP in batches of {} rows, all acknowledged at {acked:.2}s",
            args.messages,
            bytes / 1_000_000,
            args.batch_rows
        ),
    })
}

/// Rows in the four telemetry tables (0 for a table QuestDB cannot count yet).
async fn telemetry_rows(client: &QuestDbClient) -> i64 {
    let mut rows = 0;
    for t in [
        "smoke_telemetry",
        "pump_telemetry",
        "lift_telemetry",
        "gate_telemetry",
    ] {
        let q = client.exec(&format!("SELECT count() FROM {t}")).await;
        rows += q.ok().and_then(|q| q.scalar_i64()).unwrap_or(0);
    }
    rows
}

async fn wait_for(f: impl Fn() -> bool, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !f() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
