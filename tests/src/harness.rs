//! The hub in-process ([`HubSandbox`]), real MQTT clients ([`TestClient`]) and
//! [`wait_until`].

use anyhow::{anyhow, bail, Context, Result};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward::{Hub, HubConfig};
use steward_storage::questdb::QueryResult;
use tempfile::TempDir;

use crate::fixture::TEST_ESTATE;

pub use steward_estate::EstateFile;

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
    pub async fn start_with(
        estate: impl AsRef<str>,
        tweak: impl FnOnce(&mut HubConfig),
    ) -> Result<Self> {
        init_logging();
        let dir = tempfile::tempdir()?;
        let estate_path = dir.path().join("estate.toml");
        std::fs::write(&estate_path, estate.as_ref())?;
        let mut config = HubConfig::default();
        config.estate.file = Some(estate_path);
        config.estate.database = dir.path().join("steward.db");
        config.broker.v4_listen = "127.0.0.1:0".parse()?;
        config.broker.v5_listen = Some("127.0.0.1:0".parse()?);
        config.api.listen = "127.0.0.1:0".parse()?;
        config.questdb.managed.root = Some(dir.path().join("questdb"));
        config.questdb.managed.max_heap = "512m".into();
        config.rules.database = dir.path().join("tickets.db");
        config.notify.outbox.database = dir.path().join("notify.db");
        config.escalation.database = dir.path().join("escalation.db");
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

    /// The value of the sample `series` (name with labels, as `/metrics` prints it, e.g.
    /// `steward_broker_connect_auth_total{result="retired"}`), if it is there.
    pub async fn metric(&self, series: &str) -> Option<f64> {
        let text = self
            .http()
            .get(self.api("/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
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

/// Run one named step of a long scenario: an error from it carries the step's name, and
/// a panic in it (a failed assertion) is followed by "step failed: NAME" on stderr.
pub async fn step<T>(name: &str, run: impl Future<Output = Result<T>>) -> Result<T> {
    struct Named<'a>(&'a str);
    impl Drop for Named<'_> {
        fn drop(&mut self) {
            if std::thread::panicking() {
                eprintln!("step failed: {}", self.0);
            }
        }
    }
    let named = Named(name);
    let out = run.await.with_context(|| format!("step failed: {name}"));
    drop(named);
    out
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
    /// SUBACKs received: [`TestClient::subscribe`] waits for its own.
    pub subacks: Arc<AtomicU64>,
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
        let subacks = Arc::new(AtomicU64::new(0));
        let subacks2 = subacks.clone();
        let received: Received = Arc::new(parking_lot::Mutex::new(Vec::new()));
        let received2 = received.clone();
        let task = tokio::spawn(async move {
            loop {
                match ev.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => {
                        acks2.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        subacks2.fetch_add(1, Ordering::SeqCst);
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
            subacks,
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

    /// Subscribe to `filter` (QoS 1) and wait for the broker's SUBACK, so what is
    /// published afterwards is routed to this client. The SUBACK also works as a barrier:
    /// the broker has handled this client's earlier packets, and what it routed to this
    /// client before has been read off the socket. Subscribes of one client are answered
    /// in order, so concurrent calls on one client are not supported.
    pub async fn subscribe(&self, filter: &str) -> Result<()> {
        let before = self.subacks.load(Ordering::SeqCst);
        self.client.subscribe(filter, QoS::AtLeastOnce).await?;
        let subacks = self.subacks.clone();
        if !wait_until(Duration::from_secs(20), || {
            let n = subacks.load(Ordering::SeqCst);
            async move { n > before }
        })
        .await
        {
            bail!("no SUBACK for `{filter}`");
        }
        Ok(())
    }

    /// Whether the connection is gone (the event loop stopped on an error).
    pub fn is_closed(&self) -> bool {
        self.task.is_finished()
    }

    pub async fn disconnect(self) {
        let _ = self.client.disconnect().await;
        // The event loop sends DISCONNECT and then ends on the closed connection; a
        // client that does not get that far is stopped anyway.
        let task = &self.task;
        wait_until(Duration::from_secs(5), || {
            let done = task.is_finished();
            async move { done }
        })
        .await;
        self.task.abort();
    }
}

pub use steward_estate::clock::now_ms;
