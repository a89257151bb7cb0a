//! Long-range history latency: 30 days of one device and of a compound of 40 devices,
//! under concurrent requests, against a real hub and QuestDB. The readings (one every
//! `--interval-s` seconds per device) are written straight into QuestDB with
//! `INSERT ... SELECT ... FROM long_sequence()`, a day at a time, so the hourly rollups
//! are built by QuestDB exactly as for ingested data; the figure is about reading them.
//! For comparison, the same ranges with a 30-minute bucket, which the rollups cannot serve
//! and so read raw rows.
//!
//! `cargo run --release -p steward-bench --bin steward-history-bench`

use anyhow::{ensure, Result};
use clap::Parser;
use std::time::{Duration, Instant};
use steward_tests::{now_ms, Device, Estate, HubSandbox};

#[derive(Parser)]
struct Args {
    /// Requests per rollup figure.
    #[arg(long, default_value_t = 400)]
    requests: usize,
    /// Requests per raw-rows figure (each scans many rows).
    #[arg(long, default_value_t = 40)]
    raw_requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Devices in the compound.
    #[arg(long, default_value_t = 40)]
    devices: usize,
    /// Days of history.
    #[arg(long, default_value_t = 30)]
    days: i64,
    /// Seconds between two readings of a device.
    #[arg(long, default_value_t = 10)]
    interval_s: i64,
}

const DAY_MS: i64 = 86_400_000;

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((p / 100.0) * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

/// Run `n` GETs of `url` with `concurrency` in flight; latencies in ms (sorted), req/s and
/// the size of the last body.
async fn measure(
    url: &str,
    token: &str,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<f64>, f64, usize)> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let per = n.div_ceil(concurrency);
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token) = (client.clone(), url.to_string(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per);
            let mut bytes = 0;
            for _ in 0..per {
                let t = Instant::now();
                let r = client.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
                bytes = r.bytes().await?.len();
                out.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok((out, bytes))
        }));
    }
    let mut all = Vec::with_capacity(n);
    let mut bytes = 0;
    for t in tasks {
        let (l, b) = t.await??;
        all.extend(l);
        bytes = b;
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((all, rate, bytes))
}

fn device_id(i: usize) -> String {
    format!("hp-{i:03}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let mut estate = Estate::new("st-1", "North")
        .compound("cmp-h", "Harbour Court")
        .building("b-h", "Block H", "cmp-h");
    for i in 0..args.devices {
        estate = estate.device(Device::new(&device_id(i), "pump", "b-h"));
    }
    let sb = HubSandbox::start_with(estate.toml(), |c| {
        c.questdb.managed.max_heap = "1g".into();
    })
    .await?;
    let token = sb.hub.admin_token.clone();

    // Day by day, oldest first, every device's reading of a tick next to each other.
    let now = now_ms();
    let t0 = now - args.days * DAY_MS;
    let per_day = DAY_MS / 1000 / args.interval_s;
    let n = args.devices as i64;
    let loaded = Instant::now();
    for day in 0..args.days {
        let start_us = (t0 + day * DAY_MS) * 1000;
        sb.sql(&format!(
            "INSERT INTO pump_telemetry (ts, device_id, compound_id, seq, running, outlet_pressure_mpa) \
             SELECT cast({start_us} + ((x - 1) / {n}) * {step} AS TIMESTAMP), \
             cast(concat('hp-', lpad(cast((x - 1) % {n} AS STRING), 3, '0')) AS SYMBOL), 'cmp-h', x, true, \
             0.4 + rnd_double() / 10 FROM long_sequence({rows})",
            step = args.interval_s * 1_000_000,
            rows = per_day * n,
        ))
        .await?;
    }
    let total = args.days * per_day * n;
    sb.wait_count(
        "SELECT count() FROM pump_telemetry",
        total,
        Duration::from_secs(1800),
    )
    .await?;
    sb.wait_count(
        "SELECT sum(readings) FROM pump_telemetry_1h",
        total,
        Duration::from_secs(1800),
    )
    .await?;
    ensure!(
        sb.count("SELECT count() FROM pump_telemetry WHERE device_id = 'hp-000'")
            .await?
            == args.days * per_day,
        "device ids as expected"
    );
    eprintln!(
        "{total} readings and their rollups in {:.0} s",
        loaded.elapsed().as_secs_f64()
    );

    let (from, to) = (t0, now);
    let q = format!("metric=outlet_pressure_mpa&from={from}&to={to}");
    let device = sb.api(&format!("/api/v1/devices/hp-000/history?{q}"));
    let compound = sb.api(&format!("/api/v1/compounds/cmp-h/history?{q}"));
    let cases = [
        (
            format!(
                "device, {} days, auto bucket: 3h (hourly rollup)",
                args.days
            ),
            device.clone(),
            args.requests,
        ),
        (
            format!(
                "compound of {} devices, {} days, auto bucket: 1d (daily rollup)",
                args.devices, args.days
            ),
            compound.clone(),
            args.requests,
        ),
        (
            format!(
                "compound of {} devices, {} days, every=3h (hourly rollup)",
                args.devices, args.days
            ),
            format!("{compound}&every=3h"),
            args.requests / 4,
        ),
        (
            format!("device, {} days, every=30m (raw rows)", args.days),
            format!("{device}&every=30m"),
            args.raw_requests,
        ),
        (
            format!(
                "compound of {} devices, {} days, every=30m (raw rows)",
                args.devices, args.days
            ),
            format!("{compound}&every=30m"),
            args.raw_requests,
        ),
    ];
    // The compound's query as the API sends it to QuestDB, straight to `/exec`: what of
    // the time is QuestDB's.
    let ids: Vec<String> = (0..args.devices)
        .map(|i| format!("'{}'", device_id(i)))
        .collect();
    let day_us = 86_400_000_000;
    let sql = format!(
        "SELECT cast(ts AS LONG) / 1000 ts_ms, device_id, avg, min, max, count FROM (\
         SELECT ts, device_id, sum(\"outlet_pressure_mpa_sum\") / sum(\"outlet_pressure_mpa_count\") avg, \
         min(\"outlet_pressure_mpa_min\") min, max(\"outlet_pressure_mpa_max\") max, \
         sum(\"outlet_pressure_mpa_count\") count FROM pump_telemetry_1d \
         WHERE device_id IN ({}) AND ts >= cast({} AS TIMESTAMP) AND ts < cast({} AS TIMESTAMP) \
         SAMPLE BY 1d ALIGN TO CALENDAR) ORDER BY ts_ms, device_id",
        ids.join(", "),
        from * 1000 / day_us * day_us,
        (to * 1000 + day_us - 1) / day_us * day_us,
    );
    let direct = reqwest::Url::parse_with_params(
        &format!("http://{}/exec", sb.hub.questdb_http),
        &[("query", sql.as_str())],
    )?;
    let cases = [(
        "QuestDB alone: the next row's query (compound, 1d buckets) straight to /exec".to_string(),
        direct.to_string(),
        args.requests,
    )]
    .into_iter()
    .chain(cases);
    println!("| query | requests | in flight | p50 ms | p95 ms | p99 ms | req/s | body bytes |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, url, requests) in cases {
        // Warm the path (QuestDB compiles a query the first time).
        measure(&url, &token, 4, 2).await?;
        let (l, rate, bytes) = measure(&url, &token, requests, args.concurrency).await?;
        println!(
            "| {name} | {} | {} | {:.2} | {:.2} | {:.2} | {rate:.0} | {bytes} |",
            l.len(),
            args.concurrency,
            pct(&l, 50.0),
            pct(&l, 95.0),
            pct(&l, 99.0)
        );
    }
    println!(
        "({total} raw readings: {} devices, one every {} s, {} days)",
        args.devices, args.interval_s, args.days
    );
    sb.shutdown().await;
    Ok(())
}
