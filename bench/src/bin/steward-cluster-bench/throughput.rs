//! Throughput end to end: the warm-up, the measured burst, the milestones, the CPU
//! split per component and thread, the PUBACK probe.

use super::*;

pub(crate) async fn throughput(
    args: &Args,
    bed: &ClusterBed,
    devices: &[SimDevice],
    probe: &SimDevice,
    tck: f64,
) -> Result<()> {
    let addrs = bed.mqtt_addrs();
    warm_up(args, bed, devices, &addrs).await?;

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
    print_cpu(&comps, (&cpu0, &cpu1), (machine0, machine1), tck, target);
    print_threads(&comps, &threads0, &threads1, tck, target);
    print_log_warnings(bed);
    Ok(())
}

/// The warm-up load, then the pauses: until the clock has passed its timestamps, and
/// `--pause-s`.
async fn warm_up(
    args: &Args,
    bed: &ClusterBed,
    devices: &[SimDevice],
    addrs: &[String],
) -> Result<()> {
    if args.warmup > 0 {
        let base = Progress::read(bed).await;
        let t = Instant::now();
        let (sent, _) = load_split(addrs, devices, args.warmup, 0, None, 1).await?;
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

    Ok(())
}

/// The CPU table: per component over the run, and the rest of the machine.
pub(crate) fn print_cpu(
    comps: &Components,
    (cpu0, cpu1): (&[f64], &[f64]),
    (machine0, machine1): ((f64, f64), (f64, f64)),
    tck: f64,
    target: u64,
) {
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
        .zip(cpu0)
        .zip(cpu1)
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
}

/// The busiest threads of each component over the run (threads that ended during it are
/// missed; the nodes' threads live as long as the node).
pub(crate) fn print_threads(
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
pub(crate) fn print_log_warnings(bed: &ClusterBed) {
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
pub(crate) async fn ticket_count(bed: &ClusterBed) -> String {
    match bed.tickets().await {
        Ok(t) => t.len().to_string(),
        Err(e) => format!("unreadable ({e:#})"),
    }
}

/// Counters read while a run goes.
#[derive(Clone, Default)]
pub(crate) struct Progress {
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
    pub(crate) async fn read(bed: &ClusterBed) -> Progress {
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

pub(crate) async fn wait_progress(
    bed: &ClusterBed,
    base: &Progress,
    n: u64,
    limit: Duration,
) -> Progress {
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
pub(crate) async fn load_split(
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
pub(crate) async fn probe_latency(
    addr: String,
    dev: SimDevice,
    stop: Arc<AtomicBool>,
) -> Result<Vec<f64>> {
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
