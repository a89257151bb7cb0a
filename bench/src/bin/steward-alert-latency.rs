//! Alert latency: from the publish of a reading that trips a P1 rule (a smoke detector's
//! `alarm`) to the ticket event arriving on the SSE alert stream, while the hub carries a
//! steady background load of realistic telemetry from the other devices.
//!
//! `cargo run --release -p steward-bench --bin steward-alert-latency -- --background 10000`

use anyhow::{Context, Result};
use clap::Parser;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_device_sim::{devices_from_estate, run_load, LoadConfig};
use steward_estate::{DeviceKind, EstateFile};
use steward_tests::{load_estate, now_ms, HubSandbox, TestClient};

#[derive(Parser)]
struct Args {
    /// Background messages per second from the other devices (QoS 1).
    #[arg(long, default_value_t = 10_000)]
    background: u64,
    /// Devices in the estate (background publishers plus alarm triggers).
    #[arg(long, default_value_t = 512)]
    devices: usize,
    /// Alarms to trigger, each on a different smoke detector.
    #[arg(long, default_value_t = 200)]
    alarms: usize,
    /// Pause between two alarms, ms.
    #[arg(long, default_value_t = 50)]
    gap_ms: u64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let estate_text = load_estate(args.devices);
    let estate = EstateFile::parse(&estate_text)?;
    let all = devices_from_estate(&estate);
    // Triggers: the first `alarms` smoke detectors; everything else is background.
    let triggers: Vec<_> = all
        .iter()
        .filter(|d| d.kind == DeviceKind::Smoke)
        .take(args.alarms)
        .cloned()
        .collect();
    anyhow::ensure!(
        triggers.len() == args.alarms,
        "only {} smoke detectors in {} devices",
        triggers.len(),
        args.devices
    );
    let background: Vec<_> = all
        .iter()
        .filter(|d| !triggers.iter().any(|t| t.id == d.id))
        .cloned()
        .collect();
    let sb = HubSandbox::start_with(&estate_text, |c| {
        c.questdb.managed.max_heap = "1g".into();
    })
    .await?;

    // The alert stream, as a crew's dashboard would hold it.
    let sent_at: Arc<parking_lot::Mutex<HashMap<String, Instant>>> = Default::default();
    let latencies: Arc<parking_lot::Mutex<Vec<f64>>> = Default::default();
    let mut resp = reqwest::Client::new()
        .get(sb.api("/api/v1/alerts/stream?priority=P1"))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?
        .error_for_status()?;
    let reader = {
        let sent_at = sent_at.clone();
        let latencies = latencies.clone();
        tokio::spawn(async move {
            let mut pending = String::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                let now = Instant::now();
                pending.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = pending.find('\n') {
                    let line: String = pending.drain(..=end).collect();
                    let Some(data) = line.trim_end().strip_prefix("data:") else {
                        continue;
                    };
                    let Ok(ev) = serde_json::from_str::<serde_json::Value>(data.trim()) else {
                        continue;
                    };
                    if ev["kind"] != "raised" {
                        continue;
                    }
                    let device = ev["device_id"].as_str().unwrap_or_default();
                    if let Some(t) = sent_at.lock().remove(device) {
                        latencies
                            .lock()
                            .push(now.duration_since(t).as_secs_f64() * 1000.0);
                    }
                }
            }
        })
    };

    let load = {
        let cfg = LoadConfig {
            broker: sb.mqtt_addr(),
            connections: background.len(),
            devices: background,
            rate: args.background,
            total: None,
            duration: Some(
                Duration::from_millis(args.gap_ms * args.alarms as u64) + Duration::from_secs(8),
            ),
            qos: 1,
            seed: 5,
            progress: false,
        };
        tokio::spawn(run_load(cfg))
    };
    let mut clients = Vec::new();
    for t in &triggers {
        let secret = t.secret.clone().context("trigger without secret")?;
        clients.push(TestClient::connect(&sb.mqtt_addr(), &t.id, &t.id, &secret).await?);
    }
    // Let the background load reach its rate first.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ingested_before = sb.hub.ingest_metrics.received.get();
    let bg_start = Instant::now();
    for (t, c) in triggers.iter().zip(&clients) {
        let body = serde_json::json!({"ts": now_ms(), "metrics": {"alarm": true}}).to_string();
        sent_at.lock().insert(t.id.clone(), Instant::now());
        c.publish(&format!("devices/{}/telemetry", t.id), body)
            .await?;
        tokio::time::sleep(Duration::from_millis(args.gap_ms)).await;
    }
    let bg_rate = (sb.hub.ingest_metrics.received.get() - ingested_before) as f64
        / bg_start.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !sent_at.lock().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missed = sent_at.lock().len();
    let report = load.await??;
    reader.abort();
    let mut l = latencies.lock().clone();
    l.sort_by(|a, b| a.total_cmp(b));
    println!("| figure | value |\n|---|---|");
    println!(
        "| alarms triggered / seen on the stream | {} / {} |",
        args.alarms,
        l.len()
    );
    println!("| background load while triggering (ingest) | {bg_rate:.0} msg/s |");
    println!(
        "| background load generator | {} sent, {} acked, {:.0} msg/s |",
        report.sent,
        report.acked,
        report.rate()
    );
    println!("| latency p50 | {:.2} ms |", percentile(&l, 50.0));
    println!("| latency p95 | {:.2} ms |", percentile(&l, 95.0));
    println!("| latency p99 | {:.2} ms |", percentile(&l, 99.0));
    println!(
        "| latency max | {:.2} ms |",
        l.last().copied().unwrap_or(f64::NAN)
    );
    if missed > 0 {
        println!("| alarms not seen within 10 s | {missed} |");
    }
    sb.shutdown().await;
    Ok(())
}
