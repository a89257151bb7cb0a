//! Kill the hub under load and count what it had acknowledged: the steady QoS 1 load, the
//! QuestDB check of what arrived, a CPU hog that saturates the machine, and one whole
//! SIGKILL cycle. Shared by the reliability tests and the zero-loss soak (`bench/`).

use crate::process::HubProcess;
use crate::{now_ms, wait_until, TestClient, TEST_ESTATE};
use anyhow::{Context, Result};
use parking_lot::Mutex;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::HubConfig;
use steward_ingest::AckMode;
use steward_storage::questdb::{ManagedConfig, ManagedQuestDb, QuestDbClient, QuestDbMode};

/// The admin token of hubs started by [`CrashEnv`].
pub const CRASH_ADMIN: &str = "crash-test-admin-token-0001";

/// Load devices of the test estate: (id, secret, table, metrics of one reading).
pub const LOAD: [(&str, &str, &str, &str); 4] = [
    (
        "smoke-1",
        "smoke-1-secret",
        "smoke_telemetry",
        r#"{"alarm": false}"#,
    ),
    (
        "smoke-2",
        "smoke-2-secret",
        "smoke_telemetry",
        r#"{"alarm": false}"#,
    ),
    (
        "pump-1",
        "pump-1-secret",
        "pump_telemetry",
        r#"{"running": true}"#,
    ),
    (
        "gate-1",
        "gate-1-secret",
        "gate_telemetry",
        r#"{"state": "closed"}"#,
    ),
];

/// A temporary directory with an estate, a hub config for a separate hub process, and an
/// external QuestDB that outlives the hub.
pub struct CrashEnv {
    pub dir: tempfile::TempDir,
    pub questdb: ManagedQuestDb,
    pub config: HubConfig,
}

impl CrashEnv {
    pub async fn start() -> Result<CrashEnv> {
        CrashEnv::with_estate(&TEST_ESTATE).await
    }

    pub async fn with_estate(estate: &str) -> Result<CrashEnv> {
        crate::init_logging();
        let dir = tempfile::tempdir()?;
        let qcfg = ManagedConfig {
            root: Some(dir.path().join("questdb")),
            max_heap: "512m".into(),
            ..ManagedConfig::default()
        };
        let questdb = tokio::task::spawn_blocking(move || ManagedQuestDb::start(&qcfg)).await??;
        let mut config = hub_config(dir.path(), estate)?;
        config.questdb.mode = QuestDbMode::External;
        config.questdb.http_addr = Some(questdb.http_addr);
        Ok(CrashEnv {
            dir,
            questdb,
            config,
        })
    }

    pub fn questdb_client(&self) -> Result<QuestDbClient> {
        Ok(QuestDbClient::new(self.questdb.http_addr)?)
    }
}

/// A hub config for a separate hub process keeping everything in `dir`: `estate` written
/// there, ephemeral ports, [`CRASH_ADMIN`] as admin token, a 50 ms flush interval.
pub fn hub_config(dir: &std::path::Path, estate: &str) -> Result<HubConfig> {
    std::fs::write(dir.join("estate.toml"), estate)?;
    let mut config = HubConfig::default();
    config.estate.file = Some(dir.join("estate.toml"));
    config.estate.database = dir.join("steward.db");
    config.rules.database = dir.join("tickets.db");
    config.notify.outbox.database = dir.join("notify.db");
    config.escalation.database = dir.join("escalation.db");
    config.ingest.spool_dir = dir.join("spool");
    config.ingest.flush_interval = Duration::from_millis(50);
    config.broker.v4_listen = "127.0.0.1:0".parse()?;
    config.broker.v5_listen = Some("127.0.0.1:0".parse()?);
    config.api.listen = "127.0.0.1:0".parse()?;
    config.api.admin_token = CRASH_ADMIN.into();
    Ok(config)
}

/// Steady QoS 1 load from the four load devices; each message carries its `seq`, and its
/// `ts` is `t0 + seq` milliseconds.
pub struct Load {
    clients: Vec<Arc<TestClient>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<u64>>,
}

impl Load {
    pub async fn start(hub: &HubProcess, t0: i64, per_device_per_s: u64) -> Result<Load> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        let mut tasks = Vec::new();
        for (id, secret, _, metrics) in LOAD {
            let c = Arc::new(TestClient::connect(&hub.mqtt_addr, id, id, secret).await?);
            clients.push(c.clone());
            let stop = stop.clone();
            let metrics: Value = serde_json::from_str(metrics)?;
            tasks.push(tokio::spawn(async move {
                let topic = format!("devices/{id}/telemetry");
                let mut tick =
                    tokio::time::interval(Duration::from_micros(1_000_000 / per_device_per_s));
                let mut seq = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let body = json!({"ts": t0 + seq as i64, "seq": seq, "metrics": metrics});
                    let sent = tokio::time::timeout(
                        Duration::from_secs(5),
                        c.publish(&topic, body.to_string()),
                    )
                    .await;
                    if !matches!(sent, Ok(Ok(()))) {
                        break;
                    }
                    seq += 1;
                }
                seq
            }));
        }
        Ok(Load {
            clients,
            stop,
            tasks,
        })
    }

    /// Publishes the broker acknowledged so far, all devices together.
    pub fn acked(&self) -> u64 {
        self.clients
            .iter()
            .map(|c| c.acks.load(Ordering::SeqCst))
            .sum()
    }

    /// Wait until the broker acknowledged at least `n` publishes in all (the load is
    /// flowing), or fail after a generous deadline.
    pub async fn wait_acked(&self, n: u64) -> Result<()> {
        if !wait_until(Duration::from_secs(120), || {
            let a = self.acked();
            async move { a >= n }
        })
        .await
        {
            anyhow::bail!("only {} of {n} publishes acknowledged", self.acked());
        }
        Ok(())
    }

    /// Stop publishing; returns, per device, how many publishes the broker acknowledged.
    /// The broker acknowledges one connection's QoS 1 publishes in order, so these are
    /// seq 0..n.
    pub async fn finish(self) -> Result<Vec<u64>> {
        self.stop.store(true, Ordering::Relaxed);
        let mut sent = Vec::new();
        for t in self.tasks {
            sent.push(t.await?);
        }
        // In-flight acknowledgements arrive, or the connection is found dead (the hub
        // was killed or stopped); either way the count is final.
        let clients = &self.clients;
        let sent = &sent;
        wait_until(Duration::from_secs(30), || async move {
            clients
                .iter()
                .zip(sent)
                .all(|(c, n)| c.acks.load(Ordering::SeqCst) >= *n || c.is_closed())
        })
        .await;
        Ok(self
            .clients
            .iter()
            .map(|c| c.acks.load(Ordering::SeqCst))
            .collect())
    }
}

/// (present, duplicates) of seq 0..acked per load device, among rows of the load that
/// started at `t0`.
pub async fn stored(q: &QuestDbClient, t0: i64, acked: &[u64]) -> Result<(u64, u64)> {
    let (mut present, mut dups) = (0, 0);
    for ((id, _, table, _), n) in LOAD.iter().zip(acked) {
        let r = q
            .exec(&format!(
                "SELECT count(), count_distinct(seq) FROM {table} WHERE device_id = '{id}' \
                 AND seq < {n} AND ts >= cast({t0} * 1000L as timestamp)"
            ))
            .await?;
        let row = r.dataset.first().cloned().unwrap_or_default();
        let all = row.first().and_then(Value::as_u64).unwrap_or(0);
        let distinct = row.get(1).and_then(Value::as_u64).unwrap_or(0);
        present += distinct;
        dups += all - distinct;
    }
    Ok((present, dups))
}

/// Wait until every acknowledged message is present (or `within` passes); returns
/// (present, duplicates) as [`stored`] last saw them.
pub async fn wait_stored(
    q: &QuestDbClient,
    t0: i64,
    acked: &[u64],
    within: Duration,
) -> (u64, u64) {
    let total: u64 = acked.iter().sum();
    let last = Mutex::new((0, 0));
    wait_until(within, || async {
        let now = stored(q, t0, acked).await.unwrap_or((0, 0));
        *last.lock() = now;
        now.0 >= total
    })
    .await;
    let seen = *last.lock();
    seen
}

/// One sample of a metric from a hub process's `/metrics` (0 when absent or unreachable).
pub async fn metric(hub: &HubProcess, name: &str) -> f64 {
    let Ok(resp) = reqwest::get(format!("http://{}/metrics", hub.api_addr)).await else {
        return 0.0;
    };
    let text = resp.text().await.unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Another process keeping every core busy (Debian's `stress-ng --cpu N`) for as long as
/// this value lives, so a test proves its claim on a saturated machine. `None` when
/// stress-ng is not installed (the caller says so in its output).
pub struct CpuHog(Child);

impl CpuHog {
    pub fn start() -> Option<CpuHog> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Command::new("stress-ng")
            .args(["--cpu", &cores.to_string(), "--timeout", "900s", "--quiet"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()
            .map(CpuHog)
    }
}

impl Drop for CpuHog {
    fn drop(&mut self) {
        // stress-ng's workers are its children; SIGTERM to the parent stops them all.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What one SIGKILL cycle found.
#[derive(Debug, Clone)]
pub struct KillReport {
    pub mode: AckMode,
    pub acked: u64,
    pub before_restart: u64,
    pub present: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub recovered_in: Duration,
    pub saturated: bool,
}

impl std::fmt::Display for KillReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SIGKILL ack={:?}{}: acked {}, in QuestDB before restart {}, after {}, lost {}, \
             duplicates {}, recovered in {:.1?}",
            self.mode,
            if self.saturated {
                " (cores saturated)"
            } else {
                ""
            },
            self.acked,
            self.before_restart,
            self.present,
            self.lost,
            self.duplicates,
            self.recovered_in
        )
    }
}

/// Start a hub in `mode`, put it under steady load (with the cores saturated when
/// `saturate`), SIGKILL it once `kill_after` publishes were acknowledged, restart it on
/// the same data and count, for the load that started at `t0`, what arrived in QuestDB.
/// The hub is stopped cleanly before this returns.
pub async fn kill_cycle(
    env: &CrashEnv,
    mode: AckMode,
    t0: i64,
    kill_after: u64,
    saturate: bool,
) -> Result<KillReport> {
    let mut config = env.config.clone();
    config.ingest.ack = mode;
    let q = env.questdb_client()?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&config, env.dir.path()))?;
    let hog = if saturate { CpuHog::start() } else { None };
    let load = Load::start(&hub, t0, 500).await?;
    load.wait_acked(kill_after).await?;
    let killed_at = Instant::now();
    tokio::task::block_in_place(|| hub.kill())?;
    let acked = load.finish().await?;
    let saturated = hog.is_some();
    drop(hog);
    let total: u64 = acked.iter().sum();
    let (before_restart, _) = stored(&q, t0, &acked).await?;
    let hub = tokio::task::block_in_place(|| HubProcess::start(&config, env.dir.path()))?;
    let (present, duplicates) = wait_stored(&q, t0, &acked, Duration::from_secs(90)).await;
    let recovered_in = killed_at.elapsed();
    tokio::task::block_in_place(|| hub.terminate(Duration::from_secs(30)))?;
    Ok(KillReport {
        mode,
        acked: total,
        before_restart,
        present,
        lost: total.saturating_sub(present),
        duplicates,
        recovered_in,
        saturated,
    })
}

/// A load start time that no earlier cycle in the same QuestDB used: an hour ago plus
/// 100 s per cycle (a cycle's `ts` range is `t0 + seq` ms, well under 100 s).
pub fn cycle_t0(cycle: u32) -> i64 {
    now_ms() - 3_600_000 + i64::from(cycle) * 100_000
}

/// Parse a comma-separated list of ack modes (a bench's `--modes`).
pub fn parse_modes(list: &str) -> Result<Vec<AckMode>> {
    list.split(',').map(|m| parse_mode(m.trim())).collect()
}

/// Parse an ack mode name as the config spells it.
pub fn parse_mode(name: &str) -> Result<AckMode> {
    match name {
        "spooled" => Ok(AckMode::Spooled),
        "synced" => Ok(AckMode::Synced),
        "received" => Ok(AckMode::Received),
        other => Err(anyhow::anyhow!("unknown ack mode {other}")).context("STEWARD_ACK_MODES"),
    }
}
