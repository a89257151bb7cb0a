//! End-to-end harness: [`HubSandbox`] runs a whole hub (real managed QuestDB on ephemeral
//! ports in a temporary root, the embedded broker, ingest, the API) and gives tests typed
//! clients for MQTT, SQL and HTTP, plus [`wait_until`] instead of bare sleeps.
//!
//! This crate only drives the product from outside, as a vendor, crew or manager would.

use anyhow::{anyhow, bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::{Hub, HubConfig};
use steward_storage::questdb::QueryResult;
use tempfile::TempDir;

pub use steward_estate::EstateFile;

pub mod process;

/// A small estate with every device kind, a gateway with one pump behind it, and a
/// compound routed to the street's fall-back station.
pub const TEST_ESTATE: &str = r#"
[[stations]]
id = "st-north"
name = "North repair station"
[[stations]]
id = "st-acme"
name = "Acme PM station"
[[streets]]
id = "street-1"
name = "Riverside"
fallback_station = "st-north"
[[communities]]
id = "com-1"
name = "Elm"
street = "street-1"
[[compounds]]
id = "cmp-1"
name = "Elm Court"
community = "com-1"
[[compounds]]
id = "cmp-2"
name = "Oak Court"
community = "com-1"
property_company = "Acme PM"
station = "st-acme"
[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"
[[buildings]]
id = "b-2"
name = "Block 2"
compound = "cmp-2"
[[gateways]]
id = "gw-1"
vendor = "acme"
compound = "cmp-2"
secret = "gw-1-secret"
[[devices]]
id = "smoke-1"
kind = "smoke"
vendor = "firesafe"
building = "b-1"
secret = "smoke-1-secret"
[[devices]]
id = "pump-1"
kind = "pump"
vendor = "aquaflow"
building = "b-1"
secret = "pump-1-secret"
[[devices]]
id = "lift-1"
kind = "lift"
vendor = "hoistwell"
building = "b-1"
secret = "lift-1-secret"
[[devices]]
id = "gate-1"
kind = "gate"
vendor = "portalis"
building = "b-2"
secret = "gate-1-secret"
[[devices]]
id = "pump-9"
kind = "pump"
vendor = "aquaflow"
building = "b-2"
gateway = "gw-1"
[[devices]]
id = "smoke-2"
kind = "smoke"
vendor = "firesafe"
building = "b-2"
secret = "smoke-2-secret"
"#;

static LOG: std::sync::Once = std::sync::Once::new();

pub fn init_logging() {
    LOG.call_once(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_env("STEWARD_TEST_LOG")
                    .unwrap_or_else(|_| "warn,rumqttd=off".into()),
            )
            .with_test_writer()
            .try_init();
    });
}

pub struct HubSandbox {
    pub hub: Hub,
    pub dir: TempDir,
    pub config: HubConfig,
}

impl HubSandbox {
    pub async fn start() -> Result<HubSandbox> {
        Self::start_with(TEST_ESTATE, |_| {}).await
    }

    /// Start with an estate and a chance to adjust the configuration (ports are ephemeral).
    pub async fn start_with(estate: &str, tweak: impl FnOnce(&mut HubConfig)) -> Result<Self> {
        init_logging();
        let dir = tempfile::tempdir()?;
        let estate_path = dir.path().join("estate.toml");
        std::fs::write(&estate_path, estate)?;
        let mut config = HubConfig::default();
        config.estate.file = Some(estate_path);
        config.estate.database = dir.path().join("steward.db");
        config.broker.v4_listen = "127.0.0.1:0".parse()?;
        config.broker.v5_listen = Some("127.0.0.1:0".parse()?);
        config.api.listen = "127.0.0.1:0".parse()?;
        config.questdb.managed.root = Some(dir.path().join("questdb"));
        config.questdb.managed.max_heap = "512m".into();
        config.rules.database = dir.path().join("tickets.db");
        config.ingest.spool_dir = dir.path().join("spool");
        config.ingest.flush_interval = Duration::from_millis(50);
        tweak(&mut config);
        let hub = Hub::start(config.clone()).await.context("starting hub")?;
        Ok(HubSandbox { hub, dir, config })
    }

    pub fn mqtt_addr(&self) -> String {
        self.hub.mqtt_addr.to_string()
    }

    /// Connect a device (or gateway) over TCP with its credentials.
    pub async fn device(&self, id: &str, secret: &str) -> Result<TestClient> {
        TestClient::connect(&self.mqtt_addr(), id, id, secret).await
    }

    pub async fn sql(&self, sql: &str) -> Result<QueryResult> {
        Ok(self.hub.questdb.exec(sql).await?)
    }

    pub async fn count(&self, sql: &str) -> Result<i64> {
        self.sql(sql)
            .await?
            .scalar_i64()
            .ok_or_else(|| anyhow!("no scalar from `{sql}`"))
    }

    /// Wait until `sql` (a `SELECT count() ...`) returns at least `n`, then return it.
    pub async fn wait_count(&self, sql: &str, n: i64, timeout: Duration) -> Result<i64> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.count(sql).await.unwrap_or(-1);
            if last >= n {
                return Ok(last);
            }
            if Instant::now() >= deadline {
                bail!("`{sql}` returned {last}, wanted >= {n} within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn http(&self) -> reqwest::Client {
        reqwest::Client::new()
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://{}{path}", self.hub.api_addr)
    }

    pub async fn shutdown(self) {
        self.hub.shutdown().await;
    }

    /// Stop the hub gracefully and start it again on the same data (registry and QuestDB
    /// root); ports are ephemeral again.
    pub async fn restart(self) -> Result<Self> {
        let HubSandbox { hub, dir, config } = self;
        hub.shutdown().await;
        let hub = Hub::start(config.clone()).await.context("restarting hub")?;
        Ok(HubSandbox { hub, dir, config })
    }
}

/// Poll `check` until it returns true or `timeout` passes; returns whether it did.
pub async fn wait_until<F, Fut>(timeout: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Publishes a test client received: (topic, payload).
pub type Received = Arc<parking_lot::Mutex<Vec<(String, Vec<u8>)>>>;

/// A real MQTT client (rumqttc over TCP) with its event loop polled in the background.
pub struct TestClient {
    pub client: AsyncClient,
    pub acks: Arc<AtomicU64>,
    /// Publishes received on this client's subscriptions: (topic, payload).
    pub received: Received,
    task: tokio::task::JoinHandle<()>,
}

impl TestClient {
    pub async fn connect(addr: &str, client_id: &str, user: &str, secret: &str) -> Result<Self> {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("bad addr {addr}"))?;
        let mut opts = MqttOptions::new(client_id, host, port.parse()?);
        opts.set_credentials(user, secret);
        opts.set_keep_alive(Duration::from_secs(30));
        opts.set_max_packet_size(512 * 1024, 512 * 1024);
        let (client, mut ev) = AsyncClient::new(opts, 1000);
        // Wait for CONNACK before handing the client out.
        let connected = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                    Ok(_) => {}
                    Err(e) => return Err(anyhow!("connect refused: {e}")),
                }
            }
        })
        .await
        .map_err(|_| anyhow!("no CONNACK within 10s"))?;
        connected?;
        let acks = Arc::new(AtomicU64::new(0));
        let acks2 = acks.clone();
        let received: Received = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let received2 = received.clone();
        let task = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acks2.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        received2.lock().push((p.topic.clone(), p.payload.to_vec()));
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        Ok(TestClient {
            client,
            acks,
            received,
            task,
        })
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) -> Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.into())
            .await?;
        Ok(())
    }

    /// Wait until the broker acknowledged `n` QoS 1 publishes in total.
    pub async fn wait_acks(&self, n: u64) -> Result<()> {
        let acks = self.acks.clone();
        if !wait_until(Duration::from_secs(20), || {
            let a = acks.load(Ordering::SeqCst);
            async move { a >= n }
        })
        .await
        {
            bail!(
                "only {} of {n} publishes acknowledged",
                self.acks.load(Ordering::SeqCst)
            );
        }
        Ok(())
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

pub fn now_ms() -> i64 {
    steward_estate::clock::now_ms()
}

/// An estate of `n` directly connected devices for load tests and benchmarks, in
/// compounds of 16 like a real one (8 smoke detectors, 2 pumps, 4 lifts, 2 gates): device
/// `i` has id `dev-{i:05}` and secret `secret-{i:05}`. Compound size matters to the rules
/// stage, whose compound-scope rules look at the other devices of the same compound.
pub fn load_estate(n: usize) -> String {
    let mut s = String::from(
        "[[stations]]\nid = \"st-1\"\nname = \"Load station\"\n\
         [[streets]]\nid = \"street-1\"\nname = \"Load street\"\nfallback_station = \"st-1\"\n\
         [[communities]]\nid = \"com-1\"\nname = \"Load community\"\nstreet = \"street-1\"\n",
    );
    const PATTERN: [&str; 16] = [
        "smoke", "smoke", "smoke", "smoke", "smoke", "smoke", "smoke", "smoke", "pump", "pump",
        "lift", "lift", "lift", "lift", "gate", "gate",
    ];
    for c in 0..n.div_ceil(16) {
        s.push_str(&format!(
            "[[compounds]]\nid = \"cmp-{c}\"\nname = \"Load compound {c}\"\ncommunity = \"com-1\"\n\
             [[buildings]]\nid = \"b-{c}\"\nname = \"Block {c}\"\ncompound = \"cmp-{c}\"\n"
        ));
    }
    for i in 0..n {
        s.push_str(&format!(
            "[[devices]]\nid = \"dev-{i:05}\"\nkind = \"{}\"\nvendor = \"load\"\nbuilding = \"b-{}\"\nsecret = \"secret-{i:05}\"\nreport_interval_s = 10\n",
            PATTERN[i % 16],
            i / 16
        ));
    }
    s
}
