//! A PUBACK means the message is on disk (`ingest.ack`, docs/reliability.md): a hub killed
//! under load on a saturated machine loses nothing it acknowledged, a spool that cannot
//! write (full disk, read-only disk) holds the acknowledgements instead of dropping data,
//! and a message a device sends again is not counted twice by the rules.
//!
//! Each test runs the hub as a separate process (`steward run`) against an external
//! QuestDB that outlives it, with real MQTT clients over TCP.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use steward_device_sim::{DeviceModel, Fault};
use steward_estate::DeviceKind;
use steward_ingest::AckMode;
use steward_tests::crash::{cycle_t0, kill_cycle, metric, wait_stored, CrashEnv, CRASH_ADMIN};
use steward_tests::process::HubProcess;
use steward_tests::{now_ms, wait_until, TestClient};

/// `synced` (an fsync per group before the PUBACKs go out) under the same kill as the
/// default mode in reliability.rs: nothing acknowledged is lost, nothing is doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_synced_mode_loses_nothing_acknowledged() -> Result<()> {
    let env = CrashEnv::start().await?;
    let report = kill_cycle(&env, AckMode::Synced, cycle_t0(0), 3_000, true).await?;
    println!("{report}");
    assert!(report.acked > 1000, "the load ran: {report}");
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.lost, 0, "{report}");
    Ok(())
}

/// A tmpfs of a few MiB mounted over the spool directory, unmounted on drop.
struct SmallDisk {
    path: PathBuf,
}

impl SmallDisk {
    /// `None` when this machine does not let the test mount (not root, or no
    /// CAP_SYS_ADMIN in a container); the test then says why it did not run.
    fn mount(path: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(path).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| SmallDisk {
            path: path.to_path_buf(),
        })
    }

    fn remount(&self, mode: &str) -> Result<()> {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.path)
            .status()?;
        if !status.success() {
            bail!("mount -o remount,{mode} {} failed", self.path.display());
        }
        Ok(())
    }

    /// Fill every free byte with a file; returns its path.
    fn fill(&self) -> Result<PathBuf> {
        use std::io::Write;
        let filler = self.path.join("filler");
        let mut f = std::fs::File::create(&filler)?;
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.flush();
        Ok(filler)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

async fn readyz(hub: &HubProcess) -> Result<(u16, Value)> {
    let resp = reqwest::get(format!("http://{}/readyz", hub.api_addr)).await?;
    let status = resp.status().as_u16();
    Ok((status, resp.json().await?))
}

/// Publish `n` readings of smoke-1 with `seq` from `first`, `ts` = `t0 + seq`.
async fn publish_readings(dev: &TestClient, t0: i64, first: u64, n: u64) -> Result<()> {
    for seq in first..first + n {
        dev.publish(
            "devices/smoke-1/telemetry",
            json!({"ts": t0 + seq as i64, "seq": seq, "metrics": {"alarm": false}}).to_string(),
        )
        .await?;
    }
    Ok(())
}

/// Wait until ingest holds acknowledgements because the spool refuses writes.
async fn wait_blocked(hub: &HubProcess, blocked: bool) -> Result<()> {
    let want = if blocked { 1.0 } else { 0.0 };
    if !wait_until(Duration::from_secs(60), || async move {
        metric(hub, "steward_ingest_spool_blocked").await == want
    })
    .await
    {
        bail!("steward_ingest_spool_blocked never became {want}");
    }
    Ok(())
}

/// Check that the disk refusing writes shows (no PUBACK for what it could not keep,
/// `/readyz` 503 naming the spool), then `restore` it and check every message arrives,
/// once.
async fn refused_then_restored(
    hub: &HubProcess,
    dev: &TestClient,
    q: &steward_storage::questdb::QuestDbClient,
    t0: i64,
    acked_before: u64,
    restore: impl FnOnce() -> Result<()>,
) -> Result<()> {
    publish_readings(dev, t0, acked_before, 50).await?;
    wait_blocked(hub, true).await?;
    let held = dev.acks.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        held < acked_before + 50,
        "PUBACKs are held while the spool refuses writes: {held} of {}",
        acked_before + 50
    );
    let (status, body) = readyz(hub).await?;
    assert_eq!(status, 503, "{body}");
    let reason = body["checks"]["spool"].as_str().unwrap_or_default();
    assert!(reason.contains("spool refuses writes"), "{body}");
    assert!(metric(hub, "steward_ingest_spool_write_errors_total").await > 0.0);

    restore()?;
    dev.wait_acks(acked_before + 50).await?;
    wait_blocked(hub, false).await?;
    let acked = [acked_before + 50, 0, 0, 0];
    let (present, dups) = wait_stored(q, t0, &acked, Duration::from_secs(60)).await;
    assert_eq!(dups, 0, "nothing stored twice");
    assert_eq!(
        present,
        acked_before + 50,
        "every acknowledged reading stored"
    );
    let (status, body) = readyz(hub).await?;
    assert_eq!(status, 200, "ready again: {body}");
    Ok(())
}

/// The spool's disk fills up, then turns read-only: the hub stops acknowledging (devices
/// keep their messages), says why in `/readyz` and its metrics, and once the disk takes
/// writes again everything arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_or_read_only_spool_disk_holds_acks_and_loses_nothing() -> Result<()> {
    let env = CrashEnv::start().await?;
    let spool = env.config.ingest.spool_dir.clone();
    let Some(disk) = SmallDisk::mount(&spool, "4m") else {
        eprintln!(
            "SKIPPED: cannot mount a tmpfs here (needs root); the disk-full test did not run"
        );
        return Ok(());
    };
    let q = env.questdb_client()?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    let dev = TestClient::connect(&hub.mqtt_addr, "smoke-1", "smoke-1", "smoke-1-secret").await?;
    let t0 = now_ms() - 600_000;
    publish_readings(&dev, t0, 0, 20).await?;
    dev.wait_acks(20).await?;
    let stored_first = wait_stored(&q, t0, &[20, 0, 0, 0], Duration::from_secs(60)).await;
    assert_eq!(
        stored_first,
        (20, 0),
        "a healthy spool stores and acknowledges"
    );

    // Disk full.
    let filler = disk.fill()?;
    refused_then_restored(&hub, &dev, &q, t0, 20, || {
        std::fs::remove_file(&filler).context("remove filler")
    })
    .await?;

    // Read-only disk.
    disk.remount("ro")?;
    refused_then_restored(&hub, &dev, &q, t0, 70, || disk.remount("rw")).await?;

    dev.disconnect().await;
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    drop(disk);
    Ok(())
}

/// The messages of a passenger trapped in lift-1, always the same bytes.
fn trapped_messages(start: i64) -> Vec<(String, Vec<u8>)> {
    let mut model = DeviceModel::new("lift-1", DeviceKind::Lift, 11);
    let mut out = Vec::new();
    for step in 0..30 {
        if step == 12 {
            model.set_fault(Some(Fault::LiftTrapped));
        }
        for m in model.tick(start + step * 5_000) {
            out.push((m.topic, m.payload));
        }
    }
    out
}

async fn send_all(hub: &HubProcess, client_id: &str, msgs: &[(String, Vec<u8>)]) -> Result<()> {
    let lift = TestClient::connect(&hub.mqtt_addr, client_id, "lift-1", "lift-1-secret").await?;
    for (topic, payload) in msgs {
        lift.publish(topic, payload.clone()).await?;
    }
    lift.wait_acks(msgs.len() as u64).await?;
    lift.disconnect().await;
    Ok(())
}

async fn lift_tickets(hub: &HubProcess) -> Result<Vec<Value>> {
    let resp = reqwest::Client::new()
        .get(format!(
            "http://{}/api/v1/tickets?device_id=lift-1",
            hub.api_addr
        ))
        .bearer_auth(CRASH_ADMIN)
        .send()
        .await?;
    let list: Value = resp.json().await?;
    let all = list
        .as_array()
        .or_else(|| list["tickets"].as_array())
        .cloned()
        .unwrap_or_default();
    Ok(all
        .into_iter()
        .filter(|t| t["rule_id"] == json!("lift-trapped"))
        .collect())
}

/// A smoke alarm from smoke-1; returns once the rules have opened its ticket.
async fn fire_alarm_marker(hub: &HubProcess) -> Result<()> {
    let mut model = DeviceModel::new("smoke-1", DeviceKind::Smoke, 3);
    let start = now_ms() - 60_000;
    let mut msgs = Vec::new();
    for step in 0..6 {
        if step == 2 {
            model.set_fault(Some(Fault::SmokeAlarm));
        }
        for m in model.tick(start + step * 5_000) {
            msgs.push((m.topic, m.payload));
        }
    }
    let dev = TestClient::connect(&hub.mqtt_addr, "smoke-1", "smoke-1", "smoke-1-secret").await?;
    for (topic, payload) in &msgs {
        dev.publish(topic, payload.clone()).await?;
    }
    dev.wait_acks(msgs.len() as u64).await?;
    dev.disconnect().await;
    let url = format!("http://{}/api/v1/tickets?device_id=smoke-1", hub.api_addr);
    let opened = wait_until(Duration::from_secs(60), || async {
        let Ok(resp) = reqwest::Client::new()
            .get(&url)
            .bearer_auth(CRASH_ADMIN)
            .send()
            .await
        else {
            return false;
        };
        let list: Value = resp.json().await.unwrap_or_default();
        let n = list
            .as_array()
            .or_else(|| list["tickets"].as_array())
            .map_or(0, Vec::len);
        n > 0
    })
    .await;
    if !opened {
        bail!("the fire alarm marker never opened a ticket");
    }
    Ok(())
}

/// What a device sends again (its PUBACK was held when the hub died, or its connection
/// dropped) reaches the rules a second time with the same device time: no second ticket,
/// no extra occurrence, before and after a SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_sent_again_is_not_counted_twice_even_across_a_kill() -> Result<()> {
    let env = CrashEnv::start().await?;
    let msgs = trapped_messages(now_ms() - 5 * 60_000);
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    send_all(&hub, "lift-1", &msgs).await?;
    let hub_ref = &hub;
    if !wait_until(Duration::from_secs(60), || async move {
        lift_tickets(hub_ref).await.is_ok_and(|t| !t.is_empty())
    })
    .await
    {
        bail!("no lift-trapped ticket");
    }
    let ticket = lift_tickets(&hub).await?.remove(0);
    let occurrences = ticket["occurrences"].clone();

    send_all(&hub, "lift-1-again", &msgs).await?;
    // The rules take messages in order: once a fire alarm published after the copy has
    // its ticket, the copy was evaluated.
    fire_alarm_marker(&hub).await?;
    let after = lift_tickets(&hub).await?;
    assert_eq!(after.len(), 1, "one ticket: {after:?}");
    assert_eq!(after[0]["occurrences"], occurrences, "{after:?}");

    tokio::task::block_in_place(|| hub.kill())?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    let hub_ref = &hub;
    send_all(&hub, "lift-1", &msgs).await?;
    if !wait_until(Duration::from_secs(60), || async move {
        metric(hub_ref, "steward_rules_replayed_triggers_total").await > 0.0
    })
    .await
    {
        bail!("after the restart, the rules never saw the copy as replayed");
    }
    let after = lift_tickets(&hub).await?;
    assert_eq!(after.len(), 1, "one ticket after the restart: {after:?}");
    assert_eq!(after[0]["occurrences"], occurrences, "{after:?}");
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    // The rows themselves land once too (QuestDB's DEDUP UPSERT KEYS), though three
    // copies were sent.
    let q = env.questdb_client()?;
    let counts = || async {
        let r = q
            .exec(
                "SELECT count(), count_distinct(ts) FROM lift_telemetry WHERE device_id = 'lift-1'",
            )
            .await
            .ok()?;
        let row = r.dataset.first()?.clone();
        Some((row.first()?.as_u64()?, row.get(1)?.as_u64()?))
    };
    wait_until(Duration::from_secs(60), || async {
        counts().await.is_some_and(|(n, _)| n > 0)
    })
    .await;
    let (rows, distinct) = counts().await.context("lift_telemetry rows")?;
    assert!(rows > 0);
    assert_eq!(rows, distinct, "each reading stored once");
    Ok(())
}

/// Every fault message of a storm device: smoke detectors go into alarm, lifts trap a
/// passenger; the same bytes each time they are built.
fn storm_messages(id: &str, kind: DeviceKind, start: i64) -> Vec<(String, Vec<u8>)> {
    let (fault, steps, at) = match kind {
        DeviceKind::Smoke => (Fault::SmokeAlarm, 6, 2),
        _ => (Fault::LiftTrapped, 30, 12),
    };
    let mut model = DeviceModel::new(id, kind, 5);
    let mut out = Vec::new();
    for step in 0..steps {
        if step == at {
            model.set_fault(Some(fault));
        }
        for m in model.tick(start + step * 5_000) {
            out.push((m.topic, m.payload));
        }
    }
    out
}

/// Every storm device publishes its messages at once over its own connection.
fn storm(
    hub: &HubProcess,
    devices: &[(String, DeviceKind)],
    start: i64,
) -> Vec<tokio::task::JoinHandle<Result<()>>> {
    devices
        .iter()
        .map(|(id, kind)| {
            let (id, kind, addr) = (id.clone(), *kind, hub.mqtt_addr.clone());
            let secret = id.replace("dev-", "secret-");
            tokio::spawn(async move {
                let c = TestClient::connect(&addr, &id, &id, &secret).await?;
                let msgs = storm_messages(&id, kind, start);
                for (topic, payload) in &msgs {
                    c.publish(topic, payload.clone()).await?;
                }
                c.wait_acks(msgs.len() as u64).await?;
                c.disconnect().await;
                Ok(())
            })
        })
        .collect()
}

async fn all_tickets(hub: &HubProcess) -> Vec<Value> {
    let Ok(resp) = reqwest::Client::new()
        .get(format!("http://{}/api/v1/tickets?limit=1000", hub.api_addr))
        .bearer_auth(CRASH_ADMIN)
        .send()
        .await
    else {
        return Vec::new();
    };
    let list: Value = resp.json().await.unwrap_or_default();
    list.as_array()
        .or_else(|| list["tickets"].as_array())
        .cloned()
        .unwrap_or_default()
}

/// SIGKILL in the middle of a ticket storm (32 smoke alarms and 16 trapped lifts at
/// once): the ticket database the killed hub leaves is intact (SQLite WAL), every ticket
/// in it has its audit trail, and when the devices send their messages again after the
/// restart each condition ends with exactly one ticket, the ones raised before the kill
/// kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_a_ticket_storm_keeps_the_ticket_store_whole() -> Result<()> {
    let estate = steward_tests::load_estate(64);
    let env = CrashEnv::with_estate(&estate).await?;
    let file = steward_estate::EstateFile::parse(&estate)?;
    let devices: Vec<(String, DeviceKind)> = file
        .devices
        .iter()
        .filter(|d| matches!(d.kind, DeviceKind::Smoke | DeviceKind::Lift))
        .map(|d| (d.id.clone(), d.kind))
        .collect();
    let start = now_ms() - 5 * 60_000;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    let tasks = storm(&hub, &devices, start);
    let hub_ref = &hub;
    if !wait_until(Duration::from_secs(120), || async move {
        all_tickets(hub_ref).await.len() >= 10
    })
    .await
    {
        bail!("the storm raised fewer than 10 tickets");
    }
    tokio::task::block_in_place(|| hub.kill())?;
    for t in tasks {
        // Devices cut off by the kill end with an error; that is the point.
        let _ = t.await;
    }

    // The file as the kill left it, WAL included.
    let db = rusqlite::Connection::open(&env.config.rules.database)?;
    let check: String = db.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok");
    let before: Vec<(i64, String, String)> = db
        .prepare("SELECT id, device_id, rule_id FROM tickets ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let orphans: i64 = db.query_row(
        "SELECT count() FROM tickets t WHERE NOT EXISTS \
         (SELECT 1 FROM ticket_audit a WHERE a.ticket_id = t.id AND a.action = 'raised')",
        [],
        |r| r.get(0),
    )?;
    drop(db);
    assert!(!before.is_empty(), "tickets were raised before the kill");
    assert_eq!(orphans, 0, "every ticket has its `raised` audit row");

    // The devices send everything again, as they would after the hub came back.
    let hub = tokio::task::block_in_place(|| HubProcess::start(&env.config, env.dir.path()))?;
    for t in storm(&hub, &devices, start) {
        t.await??;
    }
    let hub_ref = &hub;
    let want = devices.len();
    wait_until(Duration::from_secs(120), || async move {
        all_tickets(hub_ref).await.len() >= want
    })
    .await;
    let after = all_tickets(&hub).await;
    let mut keys: Vec<(String, String)> = after
        .iter()
        .map(|t| {
            (
                t["device_id"].as_str().unwrap_or_default().to_string(),
                t["rule_id"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    keys.sort();
    let n = keys.len();
    keys.dedup();
    println!(
        "TICKET STORM: {} tickets at the kill, {n} after the restart and the resend, {} conditions",
        before.len(),
        keys.len()
    );
    assert_eq!(n, keys.len(), "one ticket per device and rule: {after:?}");
    for (id, _) in &devices {
        assert!(
            keys.iter().any(|(d, _)| d == id),
            "storm device {id} has its ticket"
        );
    }
    for (id, _, _) in &before {
        assert!(
            after.iter().any(|t| t["id"] == json!(id)),
            "ticket {id} raised before the kill is kept"
        );
    }
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    Ok(())
}
