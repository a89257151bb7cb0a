//! Publish -> PUBACK latency at a steady rate, for each ack mode (`ingest.ack`): what a
//! device waits for its acknowledgement when the hub acknowledges on receipt (`received`),
//! after the spool write (`spooled`), or after the spool write and an fsync (`synced`).
//!
//! Each mode gets its own hub (in-process, managed QuestDB). `--connections` devices
//! publish QoS 1 readings at `--rate` messages per second in all for `--secs` seconds
//! after a warm-up; the client event loop stamps each publish as it is written and each
//! PUBACK as it is read, matched by packet id.

use anyhow::{bail, Result};
use clap::Parser;
use parking_lot::Mutex;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_device_sim::{devices_from_estate, DeviceModel};
use steward_estate::EstateFile;
use steward_ingest::AckMode;
use steward_tests::crash::parse_modes;
use steward_tests::{load_estate, now_ms, HubSandbox};

#[derive(Parser)]
#[command(about = "Publish -> PUBACK latency per ack mode at a steady rate")]
struct Args {
    /// Messages per second, all connections together.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Publishing devices (one MQTT connection each).
    #[arg(long, default_value_t = 20)]
    connections: usize,
    /// Measured seconds per mode (after `--warmup-secs`).
    #[arg(long, default_value_t = 20)]
    secs: u64,
    #[arg(long, default_value_t = 5)]
    warmup_secs: u64,
    /// Ack modes, comma separated.
    #[arg(long, default_value = "received,spooled,synced")]
    modes: String,
    /// `ingest.spool_fsync`: fsync each spool segment when it is sealed (a batch).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    spool_fsync: bool,
}

/// Latencies (µs) of acknowledged publishes sent after the warm-up.
type Samples = Arc<Mutex<Vec<u64>>>;

/// What every publishing connection shares.
#[derive(Clone)]
struct Run {
    addr: String,
    per_s: f64,
    measure_from: Instant,
    stop: Arc<AtomicBool>,
    samples: Samples,
}

async fn device(
    run: Run,
    id: String,
    secret: String,
    kind: steward_estate::DeviceKind,
) -> Result<()> {
    let Run {
        addr,
        per_s,
        measure_from,
        stop,
        samples,
    } = run;
    let (host, port) = addr.rsplit_once(':').unwrap_or((&addr, "1883"));
    let mut opts = MqttOptions::new(&id, host, port.parse()?);
    opts.set_credentials(&id, &secret);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_inflight(1000);
    let (client, mut ev) = AsyncClient::new(opts, 10_000);
    let publisher = {
        let stop = stop.clone();
        let id = id.clone();
        tokio::spawn(async move {
            let mut model = DeviceModel::new(&id, kind, 7);
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / per_s));
            let mut ts = now_ms() - 3_600_000;
            let mut queued = std::collections::VecDeque::new();
            while !stop.load(Ordering::Relaxed) {
                tick.tick().await;
                if queued.is_empty() {
                    ts += 1;
                    queued.extend(model.tick(ts));
                }
                let Some(m) = queued.pop_front() else {
                    continue;
                };
                if client
                    .publish(m.topic, QoS::AtLeastOnce, false, m.payload)
                    .await
                    .is_err()
                {
                    break;
                }
            }
            let _ = client.disconnect().await;
        })
    };
    let mut sent: HashMap<u16, Instant> = HashMap::new();
    let mut local = Vec::new();
    loop {
        match ev.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                sent.insert(pkid, Instant::now());
            }
            Ok(Event::Incoming(Packet::PubAck(a))) => {
                if let Some(t) = sent.remove(&a.pkid) {
                    if t >= measure_from {
                        local.push(t.elapsed().as_micros() as u64);
                    }
                }
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
            Ok(_) => {}
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    eprintln!("{id}: {e}");
                }
                break;
            }
        }
    }
    let _ = publisher.await;
    samples.lock().extend(local);
    Ok(())
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

async fn run_mode(args: &Args, estate: &str, mode: AckMode) -> Result<String> {
    let sb = HubSandbox::start_with(estate, |c| {
        c.ingest.ack = mode;
        c.ingest.spool_fsync = args.spool_fsync;
        c.questdb.managed.max_heap = "1g".into();
    })
    .await?;
    let file = EstateFile::parse(estate)?;
    let devices = devices_from_estate(&file);
    let per_s = args.rate as f64 / args.connections as f64;
    let stop = Arc::new(AtomicBool::new(false));
    let samples: Samples = Default::default();
    let measure_from = Instant::now() + Duration::from_secs(args.warmup_secs);
    let run = Run {
        addr: sb.mqtt_addr(),
        per_s,
        measure_from,
        stop: stop.clone(),
        samples: samples.clone(),
    };
    let mut tasks = Vec::new();
    for d in devices
        .into_iter()
        .filter(|d| d.gateway.is_none())
        .take(args.connections)
    {
        let Some(secret) = d.secret.clone() else {
            continue;
        };
        tasks.push(tokio::spawn(device(
            run.clone(),
            d.id.clone(),
            secret,
            d.kind,
        )));
    }
    tokio::time::sleep(Duration::from_secs(args.warmup_secs + args.secs)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    sb.shutdown().await;
    let mut s = std::mem::take(&mut *samples.lock());
    if s.is_empty() {
        bail!("no acknowledged publish measured in mode {}", mode.as_str());
    }
    s.sort_unstable();
    let achieved = s.len() as f64 / args.secs as f64;
    Ok(format!(
        "| {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        mode.as_str(),
        achieved,
        s.len(),
        pct(&s, 0.5),
        pct(&s, 0.9),
        pct(&s, 0.99),
        pct(&s, 1.0)
    ))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let modes = parse_modes(&args.modes)?;
    let estate = load_estate(args.connections.max(1));
    let mut lines = Vec::new();
    for mode in modes {
        let line = run_mode(&args, &estate, mode).await?;
        eprintln!("{line}");
        lines.push(line);
    }
    println!(
        "\npublish -> PUBACK at {} msg/s offered over {} connections, {} s measured per mode, spool_fsync = {}\n",
        args.rate, args.connections, args.secs, args.spool_fsync
    );
    println!("| ack | msg/s acked | samples | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|");
    for l in lines {
        println!("{l}");
    }
    Ok(())
}
