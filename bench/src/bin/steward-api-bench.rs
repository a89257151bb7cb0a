//! API latency: the history query (24 h of 1 Hz readings of one device, `SAMPLE BY 1m`)
//! and the ticket list, each under concurrent requests, against a real hub and QuestDB.
//!
//! `cargo run --release -p steward-bench --bin steward-api-bench`

use anyhow::Result;
use clap::Parser;
use std::time::{Duration, Instant};
use steward_estate::DeviceKind;
use steward_tests::{now_ms, HubSandbox, TEST_ESTATE};
use steward_tickets::{Priority, Raise};

#[derive(Parser)]
struct Args {
    /// Requests per figure.
    #[arg(long, default_value_t = 400)]
    requests: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Tickets in the store for the list figure.
    #[arg(long, default_value_t = 20_000)]
    tickets: usize,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[(((p / 100.0) * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)]
}

/// Run `n` GETs of `url` with `concurrency` in flight; latencies in ms, sorted.
async fn measure(
    url: String,
    token: &str,
    n: usize,
    concurrency: usize,
) -> Result<(Vec<f64>, f64)> {
    let client = reqwest::Client::new();
    let start = Instant::now();
    let per = n / concurrency;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (client, url, token) = (client.clone(), url.clone(), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                let r = client.get(&url).bearer_auth(&token).send().await?;
                anyhow::ensure!(r.status().is_success(), "{url}: {}", r.status());
                let _ = r.bytes().await?;
                out.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            anyhow::Ok(out)
        }));
    }
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await??);
    }
    let rate = all.len() as f64 / start.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.total_cmp(b));
    Ok((all, rate))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let sb = HubSandbox::start_with(TEST_ESTATE, |c| {
        c.questdb.managed.max_heap = "1g".into();
    })
    .await?;
    let token = sb.hub.admin_token.clone();

    // 24 h of one reading a second for pump-1, published over MQTT as batches.
    let pump = sb.device("pump-1", "pump-1-secret").await?;
    let day_ms = 86_400_000;
    let t0 = now_ms() - day_ms - 60_000;
    let per_msg = 480; // divides 86,400
    let mut sent = 0;
    for chunk in 0..(86_400 / per_msg) {
        let batch: Vec<serde_json::Value> = (0..per_msg)
            .map(|i| {
                let s = (chunk * per_msg + i) as i64;
                serde_json::json!({"ts": t0 + s * 1000, "seq": s,
                    "metrics": {"running": true, "outlet_pressure_mpa": 0.4 + (s % 60) as f64 / 1000.0}})
            })
            .collect();
        pump.publish(
            "devices/pump-1/telemetry",
            serde_json::Value::Array(batch).to_string(),
        )
        .await?;
        sent += 1;
    }
    pump.wait_acks(sent).await?;
    sb.wait_count(
        "SELECT count() FROM pump_telemetry WHERE device_id = 'pump-1'",
        86_400,
        Duration::from_secs(120),
    )
    .await?;

    // Tickets: many raised straight into the store (as the rules stage would).
    let policy = sb.config.rules.sla_policy();
    for i in 0..args.tickets {
        let (compound, station) = if i % 2 == 0 {
            ("cmp-1", "st-north")
        } else {
            ("cmp-2", "st-acme")
        };
        sb.hub.tickets.raise(
            &Raise {
                device_id: format!("bench-{i}"),
                rule_id: "bench".into(),
                kind: DeviceKind::Pump,
                compound: compound.into(),
                building: "b-1".into(),
                station: station.into(),
                priority: [Priority::P1, Priority::P2, Priority::P3][i % 3],
                title: "bench ticket".into(),
                detail: String::new(),
                ts_ms: now_ms() - (i as i64) * 1000,
            },
            &policy,
        )?;
    }

    let from = t0;
    let to = t0 + day_ms;
    let history = sb.api(&format!(
        "/api/v1/devices/pump-1/history?metric=outlet_pressure_mpa&from={from}&to={to}&every=1m"
    ));
    let tickets = sb.api("/api/v1/tickets?station=st-north&state=open,acknowledged&limit=100");
    // Warm both paths (QuestDB compiles its query the first time).
    measure(history.clone(), &token, 20, 2).await?;
    measure(tickets.clone(), &token, 20, 2).await?;
    let (h, h_rate) = measure(history, &token, args.requests, args.concurrency).await?;
    let (t, t_rate) = measure(tickets, &token, args.requests, args.concurrency).await?;
    println!("| query | requests | in flight | p50 ms | p95 ms | p99 ms | req/s |");
    println!("|---|---|---|---|---|---|---|");
    for (name, l, rate) in [
        (
            "history: 24 h of 1 Hz, SAMPLE BY 1m (1,440 buckets)",
            &h,
            h_rate,
        ),
        (
            "ticket list: one station, open+acknowledged, 100 of the newest",
            &t,
            t_rate,
        ),
    ] {
        println!(
            "| {name} | {} | {} | {:.2} | {:.2} | {:.2} | {rate:.0} |",
            l.len(),
            args.concurrency,
            pct(l, 50.0),
            pct(l, 95.0),
            pct(l, 99.0)
        );
    }
    println!("({} tickets in the store)", args.tickets);
    sb.shutdown().await;
    Ok(())
}
