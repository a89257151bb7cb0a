//! Cluster mode wiring (DESIGN.md section 10): a node is a front end (the embedded
//! broker producing to Kafka) or a worker (rule worker and storage writer consuming from
//! Kafka). Every node serves the API on the tickets in PostgreSQL and the rows in the
//! shared QuestDB. `steward run` starts this instead of [`crate::Hub`] when
//! `cluster.role` is not `single`.

use crate::alerts::{forward_events, EventForwarder, HubPublisher, Publish};
use crate::config::HubConfig;
use crate::hub::open_registry;
use crate::HubError;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use steward_api::{AppState, ReadinessProbe};
use steward_broker::{Broker, BrokerMetrics, SourceCounters};
use steward_cluster::{
    ensure_topics, DownlinkConsumer, DownlinkProducer, EstateSync, EventRelay, Frontend,
    FrontendMetrics, KafkaSource, Role, RuleWorker, WorkerMetrics, WorkerParts,
};
use steward_estate::Registry;
use steward_ingest::{Ingest, IngestMetrics};
use steward_pgstore::{Options as PgOptions, PgTicketStore};
use steward_rules::{CommandSink, DeviceStates, Dispatcher, RulesMetrics, SystemClock};
use steward_storage::questdb::QuestDbClient;
use steward_storage::{Outbox, StorageMetrics};
use steward_tickets::{TicketDesk, TicketStore};
use tokio::sync::oneshot;
use tracing::{info, warn};

/// How long a node waits at start for Kafka to answer (brokers may still be starting).
const KAFKA_WAIT: Duration = Duration::from_secs(120);

pub struct ClusterNode {
    pub role: Role,
    pub mqtt_addr: Option<SocketAddr>,
    pub api_addr: SocketAddr,
    pub questdb_http: SocketAddr,
    pub admin_token: String,
    pub registry: Registry,
    broker: Option<Broker>,
    frontend: Option<Frontend>,
    downlink_in: Option<DownlinkConsumer>,
    worker: Option<RuleWorker>,
    ingest: Option<Ingest>,
    events: Option<EventForwarder>,
    downlink_out: Option<Arc<Downlink>>,
    relay: Option<EventRelay>,
    estate_sync: Option<EstateSync>,
    api_stop: Option<oneshot::Sender<()>>,
    api_task: Option<tokio::task::JoinHandle<()>>,
}

/// Alerts and device commands from a worker, for every front end to publish.
struct Downlink(DownlinkProducer);

impl Publish for Downlink {
    fn publish(&self, topic: &str, payload: Vec<u8>) {
        self.0.publish(topic, &payload);
    }
}

impl CommandSink for Downlink {
    fn send(&self, device_id: &str, payload: &str) {
        self.0
            .publish(&format!("devices/{device_id}/commands"), payload.as_bytes());
    }
}

fn pg_err(key: &'static str) -> impl Fn(steward_pgstore::PgStoreError) -> HubError {
    move |e| HubError::Start(format!("{key}: {e}"))
}

fn cluster_err(e: steward_cluster::ClusterError) -> HubError {
    HubError::Start(e.to_string())
}

impl ClusterNode {
    pub async fn start(cfg: HubConfig) -> Result<ClusterNode, HubError> {
        cfg.validate()?;
        let registry = open_registry(&cfg)?;
        let questdb_http = cfg.questdb.http_addr.ok_or_else(|| {
            HubError::Config(vec!["questdb.http_addr: required in cluster mode".into()])
        })?;
        let questdb = QuestDbClient::new(questdb_http)?;
        ensure_topics(&cfg.cluster, KAFKA_WAIT)
            .await
            .map_err(cluster_err)?;
        let mut prom = prometheus_client::registry::Registry::default();
        let rules_metrics = RulesMetrics::new(&mut prom);
        let url = cfg.cluster.postgres.clone();
        // The API's own connection: a worker's is busy inside its transactions.
        let api_store: Arc<dyn TicketStore> = Arc::new(
            tokio::task::spawn_blocking(move || PgTicketStore::connect(&url))
                .await
                .map_err(|e| HubError::Start(e.to_string()))?
                .map_err(pg_err("cluster.postgres"))?,
        );
        // Devices, secrets, tokens and windows changed through any node's API reach this
        // one (and its own changes the others) through PostgreSQL; caught up before the
        // node serves anything.
        let estate_sync = {
            let (reg, url, origin) = (
                registry.clone(),
                cfg.cluster.postgres.clone(),
                cfg.cluster.node_name(),
            );
            tokio::task::spawn_blocking(move || EstateSync::connect(reg, &url, origin))
                .await
                .map_err(|e| HubError::Start(e.to_string()))?
                .map_err(cluster_err)?
        };
        let clock = Arc::new(SystemClock);
        let api_desk = TicketDesk::new(
            api_store.clone(),
            cfg.rules.sla_policy(),
            clock.clone(),
            rules_metrics.tickets(),
        );
        let states = DeviceStates::new();
        let mut node = ClusterNode {
            role: cfg.cluster.role,
            mqtt_addr: None,
            api_addr: cfg.api.listen,
            questdb_http,
            admin_token: String::new(),
            registry: registry.clone(),
            broker: None,
            frontend: None,
            downlink_in: None,
            worker: None,
            ingest: None,
            events: None,
            downlink_out: None,
            relay: None,
            estate_sync: None,
            api_stop: None,
            api_task: None,
        };
        node.estate_sync = Some(estate_sync);
        let mut probes: Vec<(&'static str, ReadinessProbe)> = Vec::new();
        match cfg.cluster.role {
            Role::Frontend => node.start_frontend(&cfg, &mut prom, &mut probes)?,
            Role::Worker => {
                questdb.create_tables().await?;
                node.start_worker(&cfg, &mut prom, &states, api_store.clone(), rules_metrics)
                    .await?;
            }
            Role::Single => {
                return Err(HubError::Config(vec![
                    "cluster.role: `single` runs the one-machine hub, not a cluster node".into(),
                ]))
            }
        }
        let pg_probe: ReadinessProbe = {
            let s = api_store.clone();
            Arc::new(move || s.last_event_id().map(|_| ()).map_err(|e| e.to_string()))
        };
        probes.push(("postgres", pg_probe));
        // Tickets move on every node: each relays what the others logged to its streams.
        node.relay = Some(
            EventRelay::start(api_desk.clone(), Duration::from_millis(250)).map_err(cluster_err)?,
        );
        node.serve_api(&cfg, prom, probes, states, questdb, api_desk)
            .await?;
        info!(role = ?node.role, api = %node.api_addr, "cluster node started");
        Ok(node)
    }

    fn start_frontend(
        &mut self,
        cfg: &HubConfig,
        prom: &mut prometheus_client::registry::Registry,
        probes: &mut Vec<(&'static str, ReadinessProbe)>,
    ) -> Result<(), HubError> {
        let broker_metrics = BrokerMetrics::new(prom);
        let ingest_metrics = IngestMetrics::new(prom);
        // The PUBACK waits for Kafka's acknowledgement, whatever `ingest.ack` says.
        let broker_cfg = steward_broker::BrokerConfig {
            hold_acks: true,
            ..cfg.broker.clone()
        };
        let broker = Broker::start(&broker_cfg, self.registry.clone(), broker_metrics)?;
        let source = broker.inbound(
            "steward-forward",
            SourceCounters {
                unscheduled: ingest_metrics.link_unscheduled.clone(),
                lost: ingest_metrics.link_lost.clone(),
            },
        )?;
        let frontend = Frontend::start(
            &cfg.cluster,
            source,
            self.registry.clone(),
            FrontendMetrics::new(prom),
        )
        .map_err(cluster_err)?;
        let publisher = HubPublisher::new(&broker)?;
        let downlink = DownlinkConsumer::start(
            &cfg.cluster,
            Arc::new(move |topic: &str, payload: Vec<u8>| publisher.publish(topic, payload)),
        )
        .map_err(cluster_err)?;
        let mqtt_addr = broker.v4_addr;
        let broker_probe: ReadinessProbe = Arc::new(move || {
            let target = SocketAddr::from(([127, 0, 0, 1], mqtt_addr.port()));
            std::net::TcpStream::connect_timeout(&target, Duration::from_secs(1))
                .map(|_| ())
                .map_err(|e| format!("mqtt listener: {e}"))
        });
        probes.push(("broker", broker_probe));
        self.mqtt_addr = Some(mqtt_addr);
        self.broker = Some(broker);
        self.frontend = Some(frontend);
        self.downlink_in = Some(downlink);
        Ok(())
    }

    async fn start_worker(
        &mut self,
        cfg: &HubConfig,
        prom: &mut prometheus_client::registry::Registry,
        states: &DeviceStates,
        log: Arc<dyn TicketStore>,
        rules_metrics: RulesMetrics,
    ) -> Result<(), HubError> {
        let url = cfg.cluster.postgres.clone();
        let opts = PgOptions {
            idle_in_transaction_timeout: cfg.cluster.idle_in_transaction_timeout,
        };
        let store = Arc::new(
            tokio::task::spawn_blocking(move || PgTicketStore::connect_with(&url, opts))
                .await
                .map_err(|e| HubError::Start(e.to_string()))?
                .map_err(pg_err("cluster.postgres"))?,
        );
        let downlink = Arc::new(Downlink(
            DownlinkProducer::new(&cfg.cluster).map_err(cluster_err)?,
        ));
        let clock = Arc::new(SystemClock);
        let desk = TicketDesk::new(
            store.clone(),
            cfg.rules.sla_policy(),
            clock.clone(),
            rules_metrics.tickets(),
        );
        let events_outbox = Outbox::open(
            &cfg.ingest.spool_dir.join("ticket-events"),
            cfg.ingest.spool_max_bytes,
            cfg.ingest.spool_fsync,
            cfg.questdb
                .http_addr
                .unwrap_or(([127, 0, 0, 1], 9000).into()),
            StorageMetrics::new(prom, "steward_ticket_events"),
        )?;
        let events = forward_events(desk.events(), log, downlink.clone(), events_outbox)
            .map_err(|e| HubError::Start(format!("ticket events: {e}")))?;
        let dispatcher = Dispatcher::new(desk, downlink.clone(), rules_metrics.clone());
        let worker = RuleWorker::start(
            &cfg.cluster,
            WorkerParts {
                registry: self.registry.clone(),
                rules: cfg.rules.clone(),
                ingest: cfg.ingest.clone(),
                store,
                dispatcher,
                clock,
                metrics: WorkerMetrics::new(prom),
            },
        )
        .map_err(cluster_err)?;
        if cfg.cluster.storage_writer {
            let ingest_metrics = IngestMetrics::new(prom);
            let source = KafkaSource::new(&cfg.cluster).map_err(cluster_err)?;
            let questdb_http = cfg
                .questdb
                .http_addr
                .ok_or_else(|| HubError::Config(vec!["questdb.http_addr: required".into()]))?;
            self.ingest = Some(Ingest::start(
                source,
                self.registry.clone(),
                cfg.ingest.clone(),
                questdb_http,
                ingest_metrics,
                vec![Box::new(states.clone())],
            )?);
        }
        self.worker = Some(worker);
        self.events = Some(events);
        self.downlink_out = Some(downlink);
        Ok(())
    }

    async fn serve_api(
        &mut self,
        cfg: &HubConfig,
        mut prom: prometheus_client::registry::Registry,
        probes: Vec<(&'static str, ReadinessProbe)>,
        states: DeviceStates,
        questdb: QuestDbClient,
        desk: TicketDesk,
    ) -> Result<(), HubError> {
        let admin_token = if cfg.api.admin_token.is_empty() {
            steward_estate::secret::generate_secret()
        } else {
            cfg.api.admin_token.clone()
        };
        let api_metrics = steward_api::ApiMetrics::new(&mut prom);
        let resident = steward_api::ResidentIntake::new(&cfg.api.public_reports, &mut prom);
        let listener = steward_api::bind(cfg.api.listen).await?;
        self.api_addr = listener
            .local_addr()
            .map_err(|e| HubError::Start(format!("api.listen: {e}")))?;
        let state = AppState {
            registry: self.registry.clone(),
            states,
            questdb,
            metrics: Arc::new(Mutex::new(prom)),
            admin_token: Arc::from(admin_token.as_str()),
            probes,
            tickets: desk,
            api_metrics,
            resident,
            photos: steward_api::PhotoStore::new(&cfg.api.photo_dir),
            escalation: None,
            rounds: None,
        };
        let (api_stop, stop_rx) = oneshot::channel::<()>();
        self.api_task = Some(tokio::spawn(async move {
            if let Err(e) = steward_api::serve(listener, state, async {
                let _ = stop_rx.await;
            })
            .await
            {
                warn!(error = %e, "api server stopped");
            }
        }));
        self.api_stop = Some(api_stop);
        self.admin_token = admin_token;
        Ok(())
    }

    /// Stop in the order of the data flow: no new device messages (front end: the broker,
    /// then the forwarder flushes to Kafka), the worker leaves its group (its partitions
    /// move at once), the storage writer drains, then the API.
    pub async fn shutdown(mut self) {
        if let Some(b) = self.broker.take() {
            let _ = tokio::task::spawn_blocking(move || b.shutdown()).await;
        }
        if let Some(f) = self.frontend.take() {
            let _ = tokio::task::spawn_blocking(move || f.shutdown()).await;
        }
        if let Some(d) = self.downlink_in.take() {
            let _ = tokio::task::spawn_blocking(move || d.shutdown()).await;
        }
        if let Some(w) = self.worker.take() {
            let _ = tokio::task::spawn_blocking(move || w.shutdown()).await;
        }
        if let Some(i) = self.ingest.take() {
            let _ = tokio::task::spawn_blocking(move || i.shutdown()).await;
        }
        if let Some(r) = self.relay.take() {
            let _ = tokio::task::spawn_blocking(move || r.shutdown()).await;
        }
        if let Some(s) = self.api_stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.api_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        // After the API: changes made up to its last request are published.
        if let Some(s) = self.estate_sync.take() {
            let _ = tokio::task::spawn_blocking(move || s.shutdown()).await;
        }
        if let Some(e) = self.events.take() {
            let _ = tokio::task::spawn_blocking(move || e.shutdown(Duration::from_secs(5))).await;
        }
        if let Some(d) = self.downlink_out.take() {
            d.0.flush();
        }
        info!("cluster node stopped");
    }
}
