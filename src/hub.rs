//! Wiring of the stages into one running hub: registry -> QuestDB -> broker -> ingest ->
//! rules state -> API, and their orderly shutdown in the reverse direction.

use crate::config::HubConfig;
use crate::HubError;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use steward_api::{AppState, ReadinessProbe};
use steward_broker::{Broker, BrokerMetrics, SourceCounters};
use steward_estate::{EstateFile, Registry};
use steward_ingest::{Ingest, IngestMetrics};
use steward_rules::{DeviceStates, RulesHandle, RulesMetrics, RulesService, SystemClock};
use steward_storage::questdb::{ManagedQuestDb, QuestDbClient, QuestDbMode};
use steward_storage::{Outbox, StorageMetrics};
use steward_tickets::{SqliteTicketStore, TicketStore};
use tokio::sync::oneshot;
use tracing::{info, warn};

pub struct Hub {
    pub mqtt_addr: SocketAddr,
    pub mqtt_v5_addr: Option<SocketAddr>,
    pub mqtt_tls_addr: Option<SocketAddr>,
    pub api_addr: SocketAddr,
    pub questdb_http: SocketAddr,
    pub questdb_pg: Option<SocketAddr>,
    pub admin_token: String,
    pub registry: Registry,
    pub states: DeviceStates,
    pub ingest_metrics: IngestMetrics,
    pub broker_metrics: BrokerMetrics,
    pub questdb: QuestDbClient,
    /// Tickets and their audit trail (SQLite).
    pub tickets: Arc<dyn TicketStore>,
    pub rules_metrics: RulesMetrics,
    rules: Option<RulesHandle>,
    rounds: Option<steward_rounds::RoundsHandle>,
    events: Option<crate::alerts::EventForwarder>,
    people: Option<crate::people::People>,
    managed: Option<ManagedQuestDb>,
    broker: Option<Broker>,
    ingest: Option<Ingest>,
    api_stop: Option<oneshot::Sender<()>>,
    api_task: Option<tokio::task::JoinHandle<()>>,
}

impl Hub {
    pub async fn start(cfg: HubConfig) -> Result<Hub, HubError> {
        cfg.validate()?;
        let registry = open_registry(&cfg)?;
        // Before anything starts: people's channels and the escalation policy must match
        // the notify endpoints and the estate.
        let policy = if cfg.escalation.enabled {
            Some(crate::people::cross_check(&cfg, &registry)?)
        } else {
            None
        };

        let (managed, questdb_http, questdb_pg) = start_questdb(&cfg).await?;
        let questdb = QuestDbClient::new(questdb_http)?;
        questdb.create_tables().await?;
        questdb.apply_retention(&cfg.questdb.retention).await?;

        let mut prom = prometheus_client::registry::Registry::default();
        let broker_metrics = BrokerMetrics::new(&mut prom);
        let ingest_metrics = IngestMetrics::new(&mut prom);

        let rules_metrics = RulesMetrics::new(&mut prom);
        let api_metrics = steward_api::ApiMetrics::new(&mut prom);
        let resident = steward_api::ResidentIntake::new(&cfg.api.public_reports, &mut prom);

        // `ingest.ack` decides whether the router holds each PUBACK until ingest has
        // spooled the message.
        let broker_cfg = steward_broker::BrokerConfig {
            hold_acks: cfg.ingest.ack.holds_acks(),
            ..cfg.broker.clone()
        };
        let broker = Broker::start(&broker_cfg, registry.clone(), broker_metrics.clone())?;
        let publisher = crate::alerts::HubPublisher::new(&broker)?;
        let tickets = open_tickets(&cfg)?;
        let (rules_sink, rules) = RulesService::start_with_metrics(
            cfg.rules.clone(),
            registry.clone(),
            tickets.clone(),
            Arc::new(SystemClock),
            publisher.clone(),
            rules_metrics.clone(),
        )
        .map_err(|e| HubError::Start(format!("rules: {e}")))?;
        let events_outbox = Outbox::open(
            &cfg.ingest.spool_dir.join("ticket-events"),
            cfg.ingest.spool_max_bytes,
            cfg.ingest.spool_fsync,
            questdb_http,
            // Its own counters (`steward_ticket_events_*`): a full spool here drops audit
            // rows, and that must be visible like the telemetry spool's drops.
            StorageMetrics::new(&mut prom, "steward_ticket_events"),
        )?;
        let events = crate::alerts::forward_events(
            rules.desk().events(),
            tickets.clone(),
            publisher.clone(),
            events_outbox,
        )
        .map_err(|e| HubError::Start(format!("ticket events: {e}")))?;
        let source = broker.inbound(
            "steward-ingest",
            SourceCounters {
                unscheduled: ingest_metrics.link_unscheduled.clone(),
                lost: ingest_metrics.link_lost.clone(),
            },
        )?;
        // Planned rounds: work orders through the rules' desk, telemetry evidence from ingest.
        let rounds_db = cfg
            .rounds
            .database
            .clone()
            .unwrap_or_else(|| cfg.rules.database.with_file_name("rounds.db"));
        ensure_parent(&rounds_db, "rounds.database")?;
        let (rounds_sink, rounds) = steward_rounds::start(
            &cfg.rounds,
            &rounds_db,
            registry.clone(),
            rules.desk(),
            Arc::new(SystemClock),
        )
        .map_err(|e| HubError::Start(format!("rounds: {e}")))?;
        let states = DeviceStates::new();
        let ingest = Ingest::start(
            source,
            registry.clone(),
            cfg.ingest.clone(),
            questdb_http,
            ingest_metrics.clone(),
            // The rules sink last: it may keep the message without copying it.
            vec![
                Box::new(states.clone()),
                Box::new(rounds_sink),
                Box::new(rules_sink),
            ],
        )?;

        let admin_token = if cfg.api.admin_token.is_empty() {
            steward_estate::secret::generate_secret()
        } else {
            cfg.api.admin_token.clone()
        };
        let mqtt_addr = broker.v4_addr;
        let probes = readiness_probes(&registry, mqtt_addr, &ingest);
        // Bound before escalation starts: links point at the API's address by default.
        let listener = steward_api::bind(cfg.api.listen).await?;
        let api_addr = listener
            .local_addr()
            .map_err(|e| HubError::Start(format!("api.listen: {e}")))?;
        let people = if let Some(policy) = policy {
            Some(crate::people::start(
                &cfg,
                &registry,
                policy,
                crate::people::Wiring {
                    desk: rules.desk(),
                    clock: Arc::new(SystemClock),
                    api_addr,
                    questdb_http,
                },
                &mut prom,
            )?)
        } else {
            None
        };
        let state = AppState {
            registry: registry.clone(),
            states: states.clone(),
            questdb: questdb.clone(),
            metrics: Arc::new(Mutex::new(prom)),
            admin_token: Arc::from(admin_token.as_str()),
            probes,
            tickets: rules.desk(),
            api_metrics,
            resident,
            photos: steward_api::PhotoStore::new(&cfg.api.photo_dir),
            escalation: people.as_ref().map(|p| p.escalation.clone()),
            rounds: Some(rounds.rounds().clone()),
        };
        let (api_stop, stop_rx) = oneshot::channel::<()>();
        let api_task = tokio::spawn(async move {
            if let Err(e) = steward_api::serve(listener, state, async {
                let _ = stop_rx.await;
            })
            .await
            {
                warn!(error = %e, "api server stopped");
            }
        });
        info!(mqtt = %mqtt_addr, api = %api_addr, questdb = %questdb_http, "hub started");
        Ok(Hub {
            mqtt_addr,
            mqtt_v5_addr: broker.v5_addr,
            mqtt_tls_addr: broker.tls_addr,
            api_addr,
            questdb_http,
            questdb_pg,
            admin_token,
            registry,
            states,
            ingest_metrics,
            broker_metrics,
            questdb,
            tickets,
            rules_metrics,
            rules: Some(rules),
            rounds: Some(rounds),
            events: Some(events),
            people,
            managed,
            broker: Some(broker),
            ingest: Some(ingest),
            api_stop: Some(api_stop),
            api_task: Some(api_task),
        })
    }

    /// The running rules stage (ticket transitions that publish events, reloads).
    pub fn rules(&self) -> Option<&RulesHandle> {
        self.rules.as_ref()
    }

    /// The managed QuestDB, for tests that stop and restart it.
    pub fn managed_questdb(&mut self) -> Option<&mut ManagedQuestDb> {
        self.managed.as_mut()
    }

    /// Stop in reverse order of the data flow: no new connections, then flush what was
    /// accepted, then stop the API and QuestDB.
    pub async fn shutdown(mut self) {
        // The API goes first: no new requests, and its handles on the rules stage are
        // dropped so the ticket-event channel can close.
        if let Some(s) = self.api_stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.api_task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        // Its ladder reads tickets through the rules' desk.
        if let Some(p) = self.people.take() {
            p.shutdown().await;
        }
        if let Some(b) = self.broker.take() {
            let _ = tokio::task::spawn_blocking(move || b.shutdown()).await;
        }
        if let Some(i) = self.ingest.take() {
            let _ = tokio::task::spawn_blocking(move || i.shutdown()).await;
        }
        // After ingest: what it accepted last has reached the rounds and rules queues.
        if let Some(r) = self.rounds.take() {
            let _ = tokio::task::spawn_blocking(move || r.shutdown()).await;
        }
        if let Some(r) = self.rules.take() {
            let _ = tokio::task::spawn_blocking(move || r.shutdown()).await;
        }
        if let Some(e) = self.events.take() {
            let _ = tokio::task::spawn_blocking(move || e.shutdown(Duration::from_secs(5))).await;
        }
        if let Some(mut m) = self.managed.take() {
            let _ = tokio::task::spawn_blocking(move || m.stop()).await;
        }
        info!("hub stopped");
    }
}

/// The managed QuestDB started as a child process, or the external one's address.
async fn start_questdb(
    cfg: &HubConfig,
) -> Result<(Option<ManagedQuestDb>, SocketAddr, Option<SocketAddr>), HubError> {
    Ok(match cfg.questdb.mode {
        QuestDbMode::Managed => {
            let mc = cfg.questdb.managed.clone();
            let db = tokio::task::spawn_blocking(move || ManagedQuestDb::start(&mc))
                .await
                .map_err(|e| HubError::Start(e.to_string()))??;
            let (h, p) = (db.http_addr, db.pg_addr);
            (Some(db), h, Some(p))
        }
        QuestDbMode::External => {
            let addr = cfg.questdb.http_addr.ok_or_else(|| {
                HubError::Config(vec!["questdb.http_addr: required in external mode".into()])
            })?;
            (None, addr, None)
        }
    })
}

/// What `/readyz` checks: the registry answers, the MQTT listener accepts, ingest runs,
/// the spool takes writes.
fn readiness_probes(
    registry: &Registry,
    mqtt_addr: SocketAddr,
    ingest: &Ingest,
) -> Vec<(&'static str, ReadinessProbe)> {
    let sqlite_probe: ReadinessProbe = {
        let reg = registry.clone();
        Arc::new(move || reg.compounds().map(|_| ()).map_err(|e| e.to_string()))
    };
    let broker_probe: ReadinessProbe = Arc::new(move || {
        let target = if mqtt_addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], mqtt_addr.port()))
        } else {
            mqtt_addr
        };
        std::net::TcpStream::connect_timeout(&target, Duration::from_secs(1))
            .map(|_| ())
            .map_err(|e| format!("mqtt listener: {e}"))
    });
    let ingest_running = ingest.running();
    let ingest_probe: ReadinessProbe = Arc::new(move || {
        if ingest_running.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(())
        } else {
            Err("the ingest thread has stopped".into())
        }
    });
    let spool_blocked = ingest.blocked();
    let spool_probe: ReadinessProbe = Arc::new(move || {
        if spool_blocked.load(std::sync::atomic::Ordering::SeqCst) {
            Err(
                "the spool refuses writes (disk full, read-only or ingest.spool_max_bytes \
                 reached); devices' acknowledgements are held"
                    .into(),
            )
        } else {
            Ok(())
        }
    });
    vec![
        ("sqlite", sqlite_probe),
        ("broker", broker_probe),
        ("ingest", ingest_probe),
        ("spool", spool_probe),
    ]
}

/// Create the folder a database file lives in; an error names the config key.
fn ensure_parent(path: &std::path::Path, key: &str) -> Result<(), HubError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(|e| {
                HubError::Config(vec![format!(
                    "{key}: cannot create {}: {e}",
                    parent.display()
                )])
            })
        }
        _ => Ok(()),
    }
}

fn open_tickets(cfg: &HubConfig) -> Result<Arc<dyn TicketStore>, HubError> {
    ensure_parent(&cfg.rules.database, "rules.database")?;
    let store = SqliteTicketStore::open(&cfg.rules.database)
        .map_err(|e| HubError::Start(format!("rules.database: {e}")))?;
    Ok(Arc::new(store))
}

/// Open the registry database and load the estate file into it, as the hub does at start.
pub fn open_registry(cfg: &HubConfig) -> Result<Registry, HubError> {
    ensure_parent(&cfg.estate.database, "estate.database")?;
    let registry = Registry::open(&cfg.estate.database)?;
    if let Some(file) = &cfg.estate.file {
        let estate = EstateFile::load(file)?;
        registry.apply(&estate)?;
        info!(file = %file.display(), devices = estate.devices.len(), "estate loaded");
    }
    Ok(registry)
}
