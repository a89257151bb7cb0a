//! A whole cluster on loopback for the cluster-mode tests and benchmark: 3 Kafka brokers
//! (KRaft), PostgreSQL, QuestDB, and `steward run` processes as front ends and workers;
//! plus devices that fail over between front ends and re-send what was not acknowledged.

use crate::fixture::{Device, Estate};
use crate::process::HubProcess;
use anyhow::{anyhow, bail, Context, Result};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use std::path::PathBuf;
use std::time::Duration;
use steward::HubConfig;
use steward_cluster::Role;
use steward_storage::questdb::{ManagedConfig, ManagedQuestDb, QuestDbClient, QuestDbMode};
use steward_testbed::{KafkaCluster, LocalPostgres};

pub const CLUSTER_ADMIN: &str = "cluster-admin-token-0001";

/// The cluster tests' estate: `compounds` compounds of 8 smoke detectors each (device
/// `sd-{c}-{i}`, secret `{id}-secret`), reporting hourly, so that no silence rule fires
/// while a test runs and every ticket comes from the messages the test sends.
pub fn smoke_estate(compounds: usize) -> Estate {
    let mut e = Estate::new("st-1", "Cluster station");
    for c in 0..compounds {
        e = e
            .compound(&format!("cmp-{c}"), &format!("Compound {c}"))
            .building(
                &format!("b-{c}"),
                &format!("Block {c}"),
                &format!("cmp-{c}"),
            );
        for i in 0..8 {
            e = e.device(
                Device::new(&format!("sd-{c}-{i}"), "smoke", &format!("b-{c}"))
                    .report_interval_s(3600),
            );
        }
    }
    e
}

/// Kafka, PostgreSQL and QuestDB, and the Steward nodes on them.
pub struct ClusterBed {
    // Fields drop in this order: the nodes first, then the engines, the folder last (a
    // QuestDB still running would write into a folder already removed and leave it).
    pub frontends: Vec<Option<HubProcess>>,
    pub workers: Vec<Option<HubProcess>>,
    pub kafka: KafkaCluster,
    pub postgres: LocalPostgres,
    pub questdb: ManagedQuestDb,
    pub sql: QuestDbClient,
    estate: PathBuf,
    nodes_started: usize,
    pub dir: tempfile::TempDir,
}

impl ClusterBed {
    /// Start the engines and `frontends` + `workers` nodes; returns when every node
    /// printed its addresses.
    pub async fn start(estate: &Estate, frontends: usize, workers: usize) -> Result<ClusterBed> {
        crate::init_logging();
        let dir = tempfile::tempdir()?;
        let estate_path = dir.path().join("estate.toml");
        std::fs::write(&estate_path, estate.toml())?;
        let (kafka, postgres, questdb) = {
            let qroot = dir.path().join("questdb");
            tokio::task::spawn_blocking(move || -> Result<_> {
                let kafka = KafkaCluster::start(3).context("starting Kafka")?;
                let postgres = LocalPostgres::start().context("starting PostgreSQL")?;
                let questdb = ManagedQuestDb::start(&ManagedConfig {
                    root: Some(qroot),
                    max_heap: "512m".into(),
                    ..ManagedConfig::default()
                })
                .context("starting QuestDB")?;
                kafka
                    .wait_ready(Duration::from_secs(180))
                    .context("Kafka not ready")?;
                Ok((kafka, postgres, questdb))
            })
            .await??
        };
        let sql = QuestDbClient::new(questdb.http_addr)?;
        let mut bed = ClusterBed {
            dir,
            kafka,
            postgres,
            questdb,
            sql,
            estate: estate_path,
            frontends: Vec::new(),
            workers: Vec::new(),
            nodes_started: 0,
        };
        // Workers first: they make the QuestDB tables the storage writers fill.
        for _ in 0..workers {
            bed.add_worker().await?;
        }
        for _ in 0..frontends {
            bed.add_frontend().await?;
        }
        Ok(bed)
    }

    /// The configuration of a new node of `role`, in its own folder.
    pub fn node_config(&mut self, role: Role) -> Result<(HubConfig, PathBuf)> {
        self.nodes_started += 1;
        let name = format!("{role:?}-{}", self.nodes_started).to_lowercase();
        let dir = self.dir.path().join(&name);
        std::fs::create_dir_all(&dir)?;
        let mut c = HubConfig::default();
        c.estate.file = Some(self.estate.clone());
        c.estate.database = dir.join("steward.db");
        c.rules.database = dir.join("tickets.db");
        c.notify.outbox.database = dir.join("notify.db");
        c.escalation.database = dir.join("escalation.db");
        c.ingest.spool_dir = dir.join("spool");
        c.api.photo_dir = dir.join("photos");
        c.ingest.flush_interval = Duration::from_millis(50);
        c.broker.v4_listen = "127.0.0.1:0".parse()?;
        c.broker.v5_listen = Some("127.0.0.1:0".parse()?);
        c.api.listen = "127.0.0.1:0".parse()?;
        c.api.admin_token = CLUSTER_ADMIN.into();
        c.questdb.mode = QuestDbMode::External;
        c.questdb.http_addr = Some(self.questdb.http_addr);
        c.cluster.role = role;
        c.cluster.kafka = self.kafka.bootstrap();
        c.cluster.postgres = self.postgres.url();
        c.cluster.node_id = name;
        Ok((c, dir))
    }

    pub async fn add_worker(&mut self) -> Result<usize> {
        let (c, dir) = self.node_config(Role::Worker)?;
        let p = tokio::task::spawn_blocking(move || HubProcess::start(&c, &dir)).await??;
        self.workers.push(Some(p));
        Ok(self.workers.len() - 1)
    }

    pub async fn add_frontend(&mut self) -> Result<usize> {
        let (c, dir) = self.node_config(Role::Frontend)?;
        let p = tokio::task::spawn_blocking(move || HubProcess::start(&c, &dir)).await??;
        self.frontends.push(Some(p));
        Ok(self.frontends.len() - 1)
    }

    /// MQTT addresses of the front ends still running.
    pub fn mqtt_addrs(&self) -> Vec<String> {
        self.frontends
            .iter()
            .flatten()
            .map(|p| p.mqtt_addr.clone())
            .collect()
    }

    /// SIGKILL a worker.
    pub fn kill_worker(&mut self, i: usize) -> Result<()> {
        let p = self.workers[i]
            .take()
            .ok_or_else(|| anyhow!("worker {i} not running"))?;
        p.kill()
    }

    /// SIGKILL a front end.
    pub fn kill_frontend(&mut self, i: usize) -> Result<()> {
        let p = self.frontends[i]
            .take()
            .ok_or_else(|| anyhow!("front end {i} not running"))?;
        p.kill()
    }

    /// Freeze (SIGSTOP) or thaw (SIGCONT) a worker.
    pub fn signal_worker(&self, i: usize, signal: &str) -> Result<()> {
        let p = self.workers[i]
            .as_ref()
            .ok_or_else(|| anyhow!("worker {i} not running"))?;
        let ok = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(p.pid().to_string())
            .status()?
            .success();
        if !ok {
            bail!("kill -{signal} {} failed", p.pid());
        }
        Ok(())
    }

    /// API base of a live node (front ends first).
    pub fn api(&self) -> Result<String> {
        self.frontends
            .iter()
            .chain(self.workers.iter())
            .flatten()
            .next()
            .map(|p| format!("http://{}", p.api_addr))
            .ok_or_else(|| anyhow!("no node running"))
    }

    /// Every ticket, through the API of a live node.
    pub async fn tickets(&self) -> Result<Vec<serde_json::Value>> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/tickets?limit=1000", self.api()?))
            .bearer_auth(CLUSTER_ADMIN)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body["tickets"].as_array().cloned().unwrap_or_default())
    }

    /// A crew client of station `st-1` on front end `i`, subscribed to the station's
    /// alerts (its token made through that node's API).
    pub async fn crew_on_frontend(&self, i: usize) -> Result<crate::TestClient> {
        let p = self.frontends[i]
            .as_ref()
            .ok_or_else(|| anyhow!("front end {i} not running"))?;
        let body: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/api/v1/tokens", p.api_addr))
            .bearer_auth(CLUSTER_ADMIN)
            .json(&serde_json::json!({"name": "crew-st-1", "role": "crew", "station": "st-1"}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let token = body["token"]
            .as_str()
            .ok_or_else(|| anyhow!("no token in {body}"))?;
        let crew =
            crate::TestClient::connect(&p.mqtt_addr, "crew-st-1", "crew-st-1", token).await?;
        crew.subscribe("stations/st-1/alerts").await?;
        Ok(crew)
    }

    /// Register a smoke detector through front end `i`'s API (as the admin); returns its
    /// secret.
    pub async fn register_smoke(&self, i: usize, id: &str, building: &str) -> Result<String> {
        let p = self.frontends[i]
            .as_ref()
            .ok_or_else(|| anyhow!("front end {i} not running"))?;
        let body: serde_json::Value = reqwest::Client::new()
            .post(format!("http://{}/api/v1/devices", p.api_addr))
            .bearer_auth(CLUSTER_ADMIN)
            .json(&serde_json::json!({
                "id": id, "kind": "smoke", "vendor": "acme", "building": building,
                "report_interval_s": 3600
            }))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        body["secret"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("no secret in {body}"))
    }

    /// Whether every live worker knows device `id` (its API answers for it).
    pub async fn workers_know(&self, id: &str) -> bool {
        for p in self.workers.iter().flatten() {
            let known = reqwest::Client::new()
                .get(format!("http://{}/api/v1/devices/{id}", p.api_addr))
                .bearer_auth(CLUSTER_ADMIN)
                .timeout(Duration::from_secs(3))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if !known {
                return false;
            }
        }
        true
    }

    /// Follow the live ticket stream (SSE) of front end `i` as the admin: returns what has
    /// arrived so far, growing in the background.
    pub async fn stream_on_frontend(
        &self,
        i: usize,
    ) -> Result<std::sync::Arc<parking_lot::Mutex<String>>> {
        let p = self.frontends[i]
            .as_ref()
            .ok_or_else(|| anyhow!("front end {i} not running"))?;
        let mut resp = reqwest::Client::new()
            .get(format!(
                "http://{}/api/v1/alerts/stream?access_token={CLUSTER_ADMIN}",
                p.api_addr
            ))
            .send()
            .await?
            .error_for_status()?;
        let text = std::sync::Arc::new(parking_lot::Mutex::new(String::new()));
        let sink = text.clone();
        tokio::spawn(async move {
            while let Ok(Some(chunk)) = resp.chunk().await {
                sink.lock().push_str(&String::from_utf8_lossy(&chunk));
            }
        });
        Ok(text)
    }

    /// A metric of worker `i` (the sum over its label sets), from its /metrics.
    pub async fn worker_metric(&self, i: usize, series: &str) -> Option<f64> {
        let p = self.workers.get(i)?.as_ref()?;
        // A frozen (SIGSTOP) worker accepts the connection and never answers.
        let text = reqwest::Client::new()
            .get(format!("http://{}/metrics", p.api_addr))
            .timeout(Duration::from_secs(3))
            .bearer_auth(CLUSTER_ADMIN)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let mut sum = None;
        for line in text.lines() {
            let name = line.split([' ', '{']).next().unwrap_or("");
            if name == series {
                let v: f64 = line.rsplit(' ').next()?.parse().ok()?;
                sum = Some(sum.unwrap_or(0.0) + v);
            }
        }
        sum
    }

    /// Partitions owned by the live workers, summed.
    pub async fn owned_partitions(&self) -> f64 {
        let mut n = 0.0;
        for i in 0..self.workers.len() {
            n += self
                .worker_metric(i, "steward_cluster_worker_partitions")
                .await
                .unwrap_or(0.0);
        }
        n
    }

    pub async fn count(&self, sql: &str) -> Result<i64> {
        self.sql
            .exec(sql)
            .await?
            .scalar_i64()
            .ok_or_else(|| anyhow!("no scalar from `{sql}`"))
    }
}

/// A device that publishes QoS 1 one message at a time and re-sends a message until a
/// front end acknowledged it, moving to the next front end when its connection fails, as
/// the device contract asks of devices given a broker list.
pub struct FailoverDevice {
    id: String,
    secret: String,
    addrs: Vec<String>,
    which: usize,
    conn: Option<(AsyncClient, EventLoop)>,
    /// Times the device had to reconnect.
    pub reconnects: u32,
}

impl FailoverDevice {
    pub fn new(id: &str, addrs: Vec<String>, first: usize) -> Self {
        Self::with_secret(id, &format!("{id}-secret"), addrs, first)
    }

    pub fn with_secret(id: &str, secret: &str, addrs: Vec<String>, first: usize) -> Self {
        FailoverDevice {
            id: id.into(),
            secret: secret.into(),
            which: first % addrs.len().max(1),
            addrs,
            conn: None,
            reconnects: 0,
        }
    }

    async fn connect(&mut self) -> Result<()> {
        let addr = &self.addrs[self.which];
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("bad address {addr}"))?;
        let mut opts = MqttOptions::new(&self.id, host, port.parse()?);
        opts.set_credentials(&self.id, &self.secret);
        opts.set_keep_alive(Duration::from_secs(10));
        let (client, mut ev) = AsyncClient::new(opts, 16);
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(anyhow!("connect to {addr}: {e}")),
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no CONNACK from {addr}"))??;
        self.conn = Some((client, ev));
        Ok(())
    }

    /// Publish and wait for the PUBACK, failing over as long as `give_up` allows.
    pub async fn publish_acked(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        give_up: Duration,
    ) -> Result<()> {
        let until = tokio::time::Instant::now() + give_up;
        loop {
            if tokio::time::Instant::now() > until {
                bail!("{}: no front end acknowledged within {give_up:?}", self.id);
            }
            if self.conn.is_none() {
                if let Err(e) = self.connect().await {
                    tracing::debug!(error = %e, "reconnect failed");
                    self.which = (self.which + 1) % self.addrs.len();
                    self.reconnects += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            let Some((client, ev)) = self.conn.as_mut() else {
                continue;
            };
            let sent = client
                .publish(topic, QoS::AtLeastOnce, false, payload.clone())
                .await;
            let acked = sent.is_ok()
                && tokio::time::timeout(Duration::from_secs(30), async {
                    loop {
                        match ev.poll().await {
                            Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                            Ok(_) => {}
                            Err(_) => return false,
                        }
                    }
                })
                .await
                .unwrap_or(false);
            if acked {
                return Ok(());
            }
            // The front end went away (or stalled): the message was not acknowledged, so
            // it is sent again, to the next front end.
            self.conn = None;
            self.which = (self.which + 1) % self.addrs.len();
            self.reconnects += 1;
        }
    }

    pub async fn disconnect(mut self) {
        if let Some((c, mut ev)) = self.conn.take() {
            let _ = c.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(1), ev.poll()).await;
        }
    }
}

/// The smoke telemetry of message `seq` of a device: message `alarm_at` raises the fire
/// alarm, every other one is normal. `ts` is distinct per message, so QuestDB's DEDUP key
/// (ts, device_id) keeps each once and only replays collapse.
pub fn smoke_payload(t0_ms: i64, seq: u64, alarm_at: u64) -> Vec<u8> {
    format!(
        r#"{{"ts":{},"seq":{seq},"metrics":{{"alarm":{},"battery_v":3.0,"co_ppm":0}}}}"#,
        t0_ms + seq as i64 * 10,
        seq == alarm_at
    )
    .into_bytes()
}
