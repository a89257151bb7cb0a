//! The hub killed or stopped under load, or QuestDB gone for a minute, as a separate
//! process (`steward run`) against an external QuestDB that outlives it: what the broker
//! acknowledged must be in QuestDB exactly once after a restart, and tickets with their
//! audit trail must survive.

use anyhow::{Context, Result};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_device_sim::{DeviceModel, Fault};
use steward_estate::DeviceKind;
use steward_storage::questdb::QuestDbClient;
use steward_tests::crash::{
    hub_config, metric, stored, wait_stored, CpuHog, CrashEnv, Load, CRASH_ADMIN,
};
use steward_tests::process::{rss_kib, HubProcess};
use steward_tests::{now_ms, wait_until, TestClient, TEST_ESTATE};

async fn trap_passenger(hub: &HubProcess) -> Result<()> {
    let lift = TestClient::connect(&hub.mqtt_addr, "lift-1", "lift-1", "lift-1-secret").await?;
    let mut model = DeviceModel::new("lift-1", DeviceKind::Lift, 11);
    let start = now_ms() - 5 * 60_000;
    let mut published = 0;
    for step in 0..30 {
        if step == 12 {
            model.set_fault(Some(Fault::LiftTrapped));
        }
        for m in model.tick(start + step * 5_000) {
            lift.publish(&m.topic, m.payload).await?;
            published += 1;
        }
    }
    lift.wait_acks(published).await?;
    lift.disconnect().await;
    Ok(())
}

async fn api(hub: &HubProcess, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
    let http = reqwest::Client::new();
    let url = format!("http://{}{path}", hub.api_addr);
    let req = match method {
        "POST" => http.post(url).json(&body.unwrap_or(Value::Null)),
        _ => http.get(url),
    };
    let resp = req.bearer_auth(CRASH_ADMIN).send().await?;
    Ok(resp.json().await?)
}

async fn lift_ticket(hub: &HubProcess) -> Result<Option<Value>> {
    let list = api(hub, "GET", "/api/v1/tickets?device_id=lift-1", None).await?;
    let found = list
        .as_array()
        .or_else(|| list["tickets"].as_array())
        .and_then(|a| {
            a.iter()
                .find(|t| t["rule_id"] == json!("lift-trapped"))
                .cloned()
        });
    Ok(found)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_keeps_tickets_and_every_spooled_reading() -> Result<()> {
    let env = CrashEnv::start().await?;
    let q = QuestDbClient::new(env.questdb.http_addr)?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;

    // A ticket with an audit trail, before the crash.
    trap_passenger(&hub).await?;
    let ticket = Mutex::new(None);
    wait_until(Duration::from_secs(20), || async {
        let found = lift_ticket(&hub).await.ok().flatten();
        let done = found.is_some();
        *ticket.lock() = found;
        done
    })
    .await;
    let id = ticket
        .lock()
        .as_ref()
        .map(|t| t["id"].clone())
        .context("no lift-trapped ticket before the crash")?;
    let moved = api(
        &hub,
        "POST",
        &format!("/api/v1/tickets/{id}/transition"),
        Some(json!({"to": "acknowledged", "actor": "crew-7", "note": "on our way"})),
    )
    .await?;
    assert_eq!(moved["state"], json!("acknowledged"), "{moved}");

    // Steady load, then SIGKILL in the middle of it, with another process keeping both
    // cores busy: the default ack mode (`spooled`) acknowledges only what is on disk, so
    // a busy machine must lose nothing either.
    let hog = CpuHog::start();
    let t0 = now_ms() - 3_600_000;
    let load = Load::start(&hub, t0, 500).await?;
    load.wait_acked(3_000).await?;
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| hub.kill())?;
    let acked = load.finish().await?;
    let saturated = hog.is_some();
    drop(hog);
    let total_acked: u64 = acked.iter().sum();
    assert!(total_acked > 1000, "load ran: {acked:?}");
    let (before_restart, _) = stored(&q, t0, &acked).await?;

    // Restart on the same data: the spool is sent again, the ticket is still there.
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    let (present, dups) = wait_stored(&q, t0, &acked, Duration::from_secs(90)).await;
    let recovered_in = killed_at.elapsed();
    let lost = total_acked - present;
    println!(
        "SIGKILL (cores saturated: {saturated}): acked {total_acked}, in QuestDB before restart \
         {before_restart}, after {present}, lost {lost}, duplicates {dups}, recovered in {recovered_in:.1?}"
    );
    assert_eq!(dups, 0, "a replayed segment must not duplicate rows");
    assert_eq!(lost, 0, "every acknowledged message survives a SIGKILL");

    let after = lift_ticket(&hub)
        .await?
        .context("ticket gone after SIGKILL")?;
    assert_eq!(after["id"], id);
    assert_eq!(after["state"], json!("acknowledged"));
    let detail = api(&hub, "GET", &format!("/api/v1/tickets/{id}"), None).await?;
    assert!(
        detail["audit"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["actor"] == json!("crew-7"))),
        "audit trail survives: {detail}"
    );
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_flushes_everything_and_exits_promptly() -> Result<()> {
    let env = CrashEnv::start().await?;
    let q = QuestDbClient::new(env.questdb.http_addr)?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    let mqtt = hub.mqtt_addr.clone();
    let t0 = now_ms() - 3_600_000;
    let load = Load::start(&hub, t0, 500).await?;
    load.wait_acked(2_000).await?;
    let (code, took) = tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    let acked = load.finish().await?;
    let total: u64 = acked.iter().sum();
    assert_eq!(code, Some(0), "clean exit on SIGTERM");
    // Listeners are closed.
    assert!(
        std::net::TcpStream::connect(&mqtt).is_err(),
        "mqtt still listening"
    );
    // Nothing acknowledged is left behind: no restart needed. The hub has sent it all;
    // QuestDB may take a moment to make the last rows visible.
    let (present, dups) = wait_stored(&q, t0, &acked, Duration::from_secs(60)).await;
    let spool_left: u64 = walk_bytes(&env.dir.path().join("spool"));
    println!(
        "SIGTERM: exit in {took:.1?}, acked {total}, in QuestDB {present}, duplicates {dups}, \
         spool left {spool_left} bytes"
    );
    assert_eq!(dups, 0);
    assert_eq!(
        present, total,
        "every acknowledged message is in QuestDB after SIGTERM"
    );
    assert_eq!(spool_left, 0, "the spool is empty after a clean stop");
    Ok(())
}

fn walk_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(m) = e.metadata() {
                total += m.len();
            }
        }
    }
    total
}

/// QuestDB stopped for a minute (`STEWARD_OUTAGE_SECS`) while devices publish at a steady
/// rate: the readings wait in the spool on disk and all arrive, exactly once, after it
/// returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questdb_outage_of_a_minute_loses_nothing_and_duplicates_nothing() -> Result<()> {
    let outage = Duration::from_secs(
        std::env::var("STEWARD_OUTAGE_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let mut env = CrashEnv::start().await?;
    let q = QuestDbClient::new(env.questdb.http_addr)?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    let rss_before = rss_kib(hub.pid());
    let t0 = now_ms() - 3_600_000;
    let load = Load::start(&hub, t0, 200).await?;
    load.wait_acked(1_000).await?;
    tokio::task::block_in_place(|| env.questdb.stop());
    let down_at = Instant::now();
    let (mut rss_peak, mut spool_peak) = (0u64, 0f64);
    // The outage itself is what is under test: QuestDB stays down for `outage` while the
    // load goes on, sampled once a second.
    while down_at.elapsed() < outage {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_peak = rss_peak.max(rss_kib(hub.pid()));
        spool_peak = spool_peak.max(metric(&hub, "steward_ingest_spool_bytes").await);
    }
    tokio::task::block_in_place(|| env.questdb.restart("512m", Duration::from_secs(90)))?;
    let up_at = Instant::now();
    // The load goes on for a while with QuestDB back, so the spool drains while new
    // readings arrive.
    let before = load.acked();
    load.wait_acked(before + 400).await?;
    let acked = load.finish().await?;
    let total: u64 = acked.iter().sum();
    let (present, dups) = wait_stored(&q, t0, &acked, Duration::from_secs(120)).await;
    let caught_up = up_at.elapsed();
    println!(
        "OUTAGE {outage:?}: acked {total}, stored {present}, duplicates {dups}, spool peak {:.1} MiB, \
         hub RSS {} MiB before / {} MiB peak, caught up {caught_up:.1?} after QuestDB returned",
        spool_peak / 1048576.0,
        rss_before / 1024,
        rss_peak / 1024
    );
    assert!(
        spool_peak > 0.0,
        "readings waited in the spool during the outage"
    );
    assert_eq!(dups, 0, "exactly once");
    assert_eq!(present, total, "every acknowledged reading arrives");
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    Ok(())
}

/// A burst from 32 devices as fast as they can publish, well above what the hub sustains
/// on this machine: memory stays bounded, every acknowledged message reaches ingest (no
/// slow-consumer loss), everything accepted is stored, and the hub drains and answers
/// normally once the burst ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_above_capacity_keeps_memory_bounded_and_loses_nothing_silently() -> Result<()> {
    use steward_device_sim::{devices_from_estate, run_load, LoadConfig};
    let estate_text = steward_tests::load_estate(32);
    let env = CrashEnv::with_estate(&estate_text).await?;
    let devices = devices_from_estate(&steward_tests::EstateFile::parse(&estate_text)?);
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    let pid = hub.pid();
    let rss_before = rss_kib(pid);
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                // A sampling period, not a wait for something.
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let report = run_load(LoadConfig {
        broker: hub.mqtt_addr.clone(),
        connections: devices.len(),
        devices,
        rate: 0,
        total: None,
        duration: Some(Duration::from_secs(8)),
        qos: 1,
        seed: 3,
        progress: false,
    })
    .await?;
    let burst_end = Instant::now();
    // Drained: everything received is decoded and everything accepted is in QuestDB.
    let drained = wait_until(Duration::from_secs(120), || async {
        metric(&hub, "steward_ingest_pending_rows").await == 0.0
            && metric(&hub, "steward_ingest_received_total").await >= report.acked as f64
    })
    .await;
    if !drained {
        anyhow::bail!(
            "not drained: pending {}, received {} of {}",
            metric(&hub, "steward_ingest_pending_rows").await,
            metric(&hub, "steward_ingest_received_total").await,
            report.acked
        );
    }
    let drained_in = burst_end.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let rss_peak = sampler.await?;
    let lost = metric(&hub, "steward_ingest_link_lost_total").await;
    let spool_dropped = metric(&hub, "steward_ingest_spool_full_dropped_rows_total").await;
    let shed = metric(&hub, "steward_broker_rate_limited_total").await;
    let q = QuestDbClient::new(env.questdb.http_addr)?;
    let mut readings = 0.0;
    for kind in ["smoke", "pump", "lift", "gate"] {
        readings += metric(
            &hub,
            &format!("steward_ingest_readings_total{{kind=\"{kind}\"}}"),
        )
        .await;
    }
    // Rows the writer has sent become visible once QuestDB has applied them, which can
    // trail the hub's own counters on a busy machine: wait for them.
    let stored_rows = || async {
        let mut stored = 0u64;
        for kind in ["smoke", "pump", "lift", "gate"] {
            if let Ok(r) = q
                .exec(&format!("SELECT count() FROM {kind}_telemetry"))
                .await
            {
                stored += r.scalar_i64().unwrap_or(0) as u64;
            }
        }
        stored
    };
    wait_until(Duration::from_secs(120), || async {
        stored_rows().await as f64 >= readings
    })
    .await;
    let stored = stored_rows().await;
    println!(
        "OVERLOAD: {} acked in {:.1?} ({:.0} msg/s offered), shed {shed}, readings accepted {readings}, \
         stored {stored}, slow-consumer loss {lost}, spool-full drops {spool_dropped}, \
         hub RSS {} MiB before / {} MiB peak, drained {drained_in:.1?} after the burst",
        report.acked,
        report.elapsed,
        report.rate(),
        rss_before / 1024,
        rss_peak / 1024
    );
    assert_eq!(lost, 0.0, "ingest kept up with the broker's log");
    assert_eq!(spool_dropped, 0.0);
    assert_eq!(stored as f64, readings, "every accepted reading is stored");
    // The bound is the broker's in-memory log (segments x count) plus the hub's own
    // working set; the spool holds the rest on disk.
    let log_kib =
        (env.config.broker.max_segment_bytes * env.config.broker.max_segment_count / 1024) as u64;
    assert!(
        rss_peak < log_kib + 256 * 1024,
        "hub memory stays within its bound under overload: {} MiB",
        rss_peak / 1024
    );
    // And it answers normally afterwards.
    let c = TestClient::connect(&hub.mqtt_addr, "dev-00000", "dev-00000", "secret-00000").await?;
    c.publish("devices/dev-00000/status", "online").await?;
    c.wait_acks(1).await?;
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    Ok(())
}

/// With the managed QuestDB, a SIGKILL leaves its JVM running on the data directory; the
/// next start on the same root stops it and comes up with the data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_with_managed_questdb_restarts_on_the_same_root() -> Result<()> {
    steward_tests::init_logging();
    let dir = tempfile::tempdir()?;
    let mut config = hub_config(dir.path(), &TEST_ESTATE)?;
    config.questdb.managed.root = Some(dir.path().join("questdb"));
    config.questdb.managed.max_heap = "512m".into();
    let hub = tokio::task::block_in_place(|| HubProcess::start(&config, dir.path()))?;
    let dev = TestClient::connect(&hub.mqtt_addr, "smoke-1", "smoke-1", "smoke-1-secret").await?;
    let t0 = now_ms() - 60_000;
    for i in 0..100 {
        dev.publish(
            "devices/smoke-1/telemetry",
            json!({"ts": t0 + i, "seq": i, "metrics": {"alarm": false}}).to_string(),
        )
        .await?;
    }
    dev.wait_acks(100).await?;
    // The broker acknowledges what is in its in-memory log, which a SIGKILL loses
    // (docs/reliability.md); what ingest has read must survive. So the kill comes once
    // ingest has read all 100, which on a busy machine can trail the acknowledgements.
    let hub_ref = &hub;
    assert!(
        wait_until(Duration::from_secs(60), || async move {
            metric(hub_ref, "steward_ingest_received_total").await >= 100.0
        })
        .await,
        "ingest did not read the 100 readings"
    );
    let pid_file = dir.path().join("questdb/steward-questdb.pid");
    let orphan: u32 = std::fs::read_to_string(&pid_file)?.trim().parse()?;
    tokio::task::block_in_place(|| hub.kill())?;
    assert!(
        std::path::Path::new(&format!("/proc/{orphan}")).exists(),
        "the managed QuestDB outlives a SIGKILLed hub"
    );
    let hub = tokio::task::block_in_place(|| HubProcess::start(&config, dir.path()))?;
    let q = QuestDbClient::new(hub.questdb_http.parse()?)?;
    let smoke_rows = || async {
        q.exec("SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-1'")
            .await
            .ok()
            .and_then(|r| r.scalar_i64())
            .unwrap_or(0)
    };
    wait_until(Duration::from_secs(60), || async {
        smoke_rows().await >= 100
    })
    .await;
    let rows = smoke_rows().await;
    assert_eq!(rows, 100, "every acknowledged reading after the restart");
    let stat = std::fs::read_to_string(format!("/proc/{orphan}/stat")).unwrap_or_default();
    assert!(
        stat.is_empty() || stat.contains(") Z"),
        "the orphaned QuestDB was stopped: {stat}"
    );
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    Ok(())
}
