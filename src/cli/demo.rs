//! `steward demo`: the hub with the demo estate, a managed QuestDB and simulated devices,
//! until Ctrl-C or `--duration`.

use super::{runtime, shutdown_signal};
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;
use steward::{demo, Hub};
use steward_device_sim::{Fault, FleetReport, SimError};
use steward_estate::{DeviceKind, EstateFile};
use tokio::task::JoinHandle;

pub struct DemoArgs {
    pub dir: Option<PathBuf>,
    pub mqtt_port: u16,
    pub api_port: u16,
    pub speed: f64,
    pub duration: Option<Duration>,
    pub faults: Vec<String>,
    pub no_sim: bool,
    /// Cluster mode: Kafka, PostgreSQL, front ends and workers (`demo_cluster`).
    pub cluster: bool,
}

pub fn run(a: DemoArgs) -> Result<()> {
    runtime()?.block_on(run_demo(a))
}

async fn run_demo(a: DemoArgs) -> Result<()> {
    let faults = parse_faults(&a.faults)?;
    if !(a.speed > 0.0 && a.speed <= 10_000.0) {
        bail!("--speed: must be in (0, 10000]");
    }
    let temp = tempfile::tempdir()?;
    let dir = a.dir.unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let mut cfg = demo::demo_config(&dir, a.mqtt_port, a.api_port)?;
    let (inbox, inbox_task) = super::inbox::start().await?;
    demo::with_demo_inbox(&mut cfg, &format!("http://{inbox}/"))?;
    eprintln!("starting QuestDB and the hub (the first run fetches the QuestDB jar with Maven)...");
    let hub = Hub::start(cfg).await?;
    let estate = EstateFile::parse(demo::DEMO_ESTATE)?;
    print_banner(&hub, &estate);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim = if a.no_sim {
        None
    } else {
        let cfg = steward_device_sim::FleetConfig {
            broker: hub.mqtt_addr.to_string(),
            devices: steward_device_sim::devices_from_estate(&estate),
            gateways: steward_device_sim::gateways_from_estate(&estate),
            seed: 42,
            speed: a.speed,
            faults,
            duration: None,
            qos: 1,
            self_tests: Default::default(),
        };
        Some(tokio::spawn(steward_device_sim::run_fleet(cfg, async {
            let _ = stop_rx.await;
        })))
    };
    match a.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = shutdown_signal() => {}
            }
        }
        None => shutdown_signal().await,
    }
    let _ = stop_tx.send(());
    if let Some(sim) = sim {
        stop_simulator(sim).await;
    }
    let m = hub.ingest_metrics.clone();
    hub.shutdown().await;
    eprintln!(
        "ingest: received={} readings={} rejected={} rows_written={}",
        m.received.get(),
        m.readings_total(),
        m.rejected_total(),
        m.storage.rows_written.get()
    );
    inbox_task.abort();
    drop(temp);
    Ok(())
}

/// The faults `demo --fault` injects, by device kind, for `demo --help`.
pub fn faults_help() -> String {
    let mut out = String::from("Faults (--fault NAME or NAME=DEVICE_ID):\n");
    let kinds = DeviceKind::ALL.into_iter().map(Some).chain([None]);
    for kind in kinds {
        let names: Vec<&str> = Fault::ALL
            .iter()
            .filter(|f| f.kind() == kind)
            .map(|f| f.name())
            .collect();
        if names.is_empty() {
            continue;
        }
        let label = kind.map_or("any device".to_string(), |k| k.to_string());
        out.push_str(&format!("  {label:<11} {}\n", names.join(", ")));
    }
    out
}

/// `--fault NAME` or `--fault NAME=DEVICE`.
pub(super) fn parse_faults(faults: &[String]) -> Result<Vec<(Fault, Option<String>)>> {
    faults
        .iter()
        .map(|f| {
            let (name, target) = match f.split_once('=') {
                Some((n, t)) => (n, Some(t.to_string())),
                None => (f.as_str(), None),
            };
            name.parse::<Fault>()
                .map(|fault| (fault, target))
                .map_err(|e| anyhow::anyhow!("--fault {f}: {e}"))
        })
        .collect()
}

/// Where everything listens and a few commands to try, on standard output.
fn print_banner(hub: &Hub, estate: &EstateFile) {
    println!();
    println!("Steward demo is running.");
    println!("  MQTT (3.1.1 and 5): {}", hub.mqtt_addr);
    if let Some(v5) = hub.mqtt_v5_addr {
        println!("  MQTT (5 only)     : {v5}");
    }
    println!("  dashboard         : http://{}/dashboard/", hub.api_addr);
    println!("  API               : http://{}", hub.api_addr);
    println!("  API docs          : http://{}/api/docs", hub.api_addr);
    println!("  admin token       : {}", hub.admin_token);
    println!("  QuestDB console   : http://{}", hub.questdb_http);
    if let Some(pg) = hub.questdb_pg {
        println!("  QuestDB PG wire   : {pg} (user admin, password quest)");
    }
    println!(
        "  estate            : {} compounds, {} devices",
        estate.compounds.len(),
        estate.devices.len()
    );
    println!();
    println!("Try:");
    println!(
        "  curl -H 'Authorization: Bearer {}' http://{}/api/v1/devices",
        hub.admin_token, hub.api_addr
    );
    println!(
        "  curl -H 'Authorization: Bearer {}' 'http://{}/api/v1/tickets?active=true'",
        hub.admin_token, hub.api_addr
    );
    println!(
        "  curl -N 'http://{}/api/v1/alerts/stream?access_token={}'   # live alerts (SSE)",
        hub.api_addr, hub.admin_token
    );
    println!("  curl http://{}/metrics", hub.api_addr);
    println!(
        "  curl -H 'Authorization: Bearer {}' http://{}/api/v1/stations/st-riverside/on-call",
        hub.admin_token, hub.api_addr
    );
    println!(
        "  curl -G http://{}/exec --data-urlencode 'query=SELECT * FROM lift_telemetry LIMIT -10'",
        hub.questdb_http
    );
    println!("Notifications to the estate's people (escalation) print here as `notify ...`");
    println!("lines; open a link in a browser to acknowledge that ticket.");
    println!("Ctrl-C stops the demo.");
    println!();
}

/// Waits (bounded) for the simulator, already told to stop, and reports what it sent.
pub(super) async fn stop_simulator(sim: JoinHandle<Result<FleetReport, SimError>>) {
    match tokio::time::timeout(Duration::from_secs(10), sim).await {
        Ok(Ok(Ok(report))) => eprintln!(
            "simulator: published={} acked={} errors={}",
            report.published, report.acked, report.errors
        ),
        Ok(Ok(Err(e))) => eprintln!("simulator error: {e}"),
        _ => eprintln!("simulator did not stop in time"),
    }
}
