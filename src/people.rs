//! Wiring of escalation to people: the notification outbox and its channels, the
//! escalation service with its policy, link key and store, and the delivery log that
//! copies every attempt to QuestDB's `notification_events`.

use crate::config::HubConfig;
use crate::HubError;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::Arc;
use steward_escalation::{
    link_key, DeliveryLog, Escalation, EscalationMetrics, EscalationStore, EstateRoster, Parts,
    Policy, Roster,
};
use steward_estate::clock::Clock;
use steward_estate::Registry;
use steward_notify::{AttemptEntry, Channels, Dispatcher, Outbox};
use steward_storage::questdb::ilp::{self, NotificationEventRow};
use steward_storage::{new_buffer, Refused, StorageMetrics};
use steward_tickets::TicketDesk;
use tokio::sync::oneshot;
use tracing::warn;

/// Attempts to QuestDB through their own spool (`<spool_dir>/notification-events`).
struct QuestDbDeliveryLog {
    outbox: Mutex<Option<steward_storage::Outbox>>,
}

impl DeliveryLog for QuestDbDeliveryLog {
    fn attempts(&self, entries: &[AttemptEntry]) {
        let mut buf = new_buffer();
        let mut rows = 0u64;
        for e in entries {
            let r = &e.record;
            let row = NotificationEventRow {
                ts_ms: r.at_ms,
                attempt_id: e.id,
                ticket_id: r.ticket_id.parse().ok(),
                tier: e.tier as i64,
                round: e.round() as i64,
                recipient_id: &e.recipient_id,
                recipient: &r.recipient,
                endpoint: &r.endpoint,
                channel: &r.channel,
                outcome: &r.outcome,
                attempt: r.attempt as i64,
                error: r.error.as_deref(),
            };
            match ilp::append_notification_event(&mut buf, &row) {
                Ok(()) => rows += 1,
                Err(err) => warn!(error = %err, "cannot encode a notification event row"),
            }
        }
        if rows == 0 {
            return;
        }
        let mut guard = self.outbox.lock();
        let Some(outbox) = guard.as_mut() else {
            return;
        };
        // The attempts stay in the outbox database and the audit trail: a refusing spool
        // only costs their copy in QuestDB, which is counted.
        match outbox.append(buf.as_bytes(), rows) {
            Ok(()) | Err(Refused::Failed(_)) => {
                let _ = outbox.send(buf, false);
            }
            Err(Refused::Full) => outbox.dropped(rows),
        }
    }
}

impl QuestDbDeliveryLog {
    fn shutdown(&self) {
        if let Some(o) = self.outbox.lock().take() {
            o.shutdown(new_buffer(), std::time::Duration::from_secs(5));
        }
    }
}

/// The running escalation service.
pub struct People {
    pub escalation: Escalation,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    log: Arc<QuestDbDeliveryLog>,
}

impl People {
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), t).await;
        }
        let log = self.log.clone();
        let _ = tokio::task::spawn_blocking(move || log.shutdown()).await;
    }
}

/// Problems between the estate's people and the notify and escalation config, each naming
/// its key: channels no endpoint has, people the policy names that the estate lacks.
pub fn cross_check(cfg: &HubConfig, registry: &Registry) -> Result<Policy, HubError> {
    let people = registry.people();
    let known: std::collections::BTreeSet<String> = cfg.notify.endpoints.keys().cloned().collect();
    // The people come from the estate (its file, or the registry when there is none).
    let source = cfg
        .estate
        .file
        .as_ref()
        .map(|f| f.display().to_string())
        .unwrap_or_else(|| "estate registry".into());
    let mut errors: Vec<String> = people
        .check_channels(&known)
        .into_iter()
        .map(|m| format!("{source}: {m} (not in [notify.endpoints])"))
        .collect();
    let roster = EstateRoster::new(registry.clone());
    let policy = match &cfg.escalation.policy {
        Some(path) => match Policy::load(path, &|id| roster.person_exists(id)) {
            Ok(p) => Some(p),
            Err(steward_escalation::EscalationError::Policy(v)) => {
                errors.extend(v.into_iter().map(|m| format!("escalation.policy: {m}")));
                None
            }
            Err(e) => {
                errors.push(format!("escalation.policy: {e}"));
                None
            }
        },
        None => Some(Policy::default()),
    };
    match policy {
        Some(p) if errors.is_empty() => Ok(p),
        _ => Err(HubError::Config(errors)),
    }
}

/// Where the escalation service runs: the addresses it needs from the rest of the hub.
pub struct Wiring {
    pub desk: TicketDesk,
    pub clock: Arc<dyn Clock>,
    /// Acknowledgement links point here unless `escalation.public_url` is set.
    pub api_addr: SocketAddr,
    /// Delivery attempts are spooled to this QuestDB.
    pub questdb_http: SocketAddr,
}

/// Start the outbox, its delivery worker and the escalation ladder with `policy` (from
/// [`cross_check`]).
pub fn start(
    cfg: &HubConfig,
    registry: &Registry,
    policy: Policy,
    w: Wiring,
    prom: &mut prometheus_client::registry::Registry,
) -> Result<People, HubError> {
    let Wiring {
        desk,
        clock,
        api_addr,
        questdb_http,
    } = w;
    let start = |what: &str, e: &dyn std::fmt::Display| HubError::Start(format!("{what}: {e}"));
    let outbox = Outbox::open(&cfg.notify.outbox.database)
        .map_err(|e| start("notify.outbox.database", &e))?;
    let channels = Channels::new(&cfg.notify, clock.clone()).map_err(|e| start("notify", &e))?;
    let dispatcher = Arc::new(Dispatcher::new(
        Arc::new(outbox),
        Arc::new(channels),
        clock.clone(),
        cfg.notify.outbox.clone(),
    ));
    let e = &cfg.escalation;
    let store =
        EscalationStore::open(&e.database).map_err(|err| start("escalation.database", &err))?;
    let key = link_key(
        e.link_secret.as_deref(),
        &e.database.with_extension("link-key"),
    )
    .map_err(|err| start("escalation.link_secret", &err))?;
    let public_url = match &e.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => {
            let host = if api_addr.ip().is_unspecified() {
                SocketAddr::from(([127, 0, 0, 1], api_addr.port()))
            } else {
                api_addr
            };
            format!("http://{host}")
        }
    };
    let spool = steward_storage::Outbox::open(
        &cfg.ingest.spool_dir.join("notification-events"),
        cfg.ingest.spool_max_bytes,
        cfg.ingest.spool_fsync,
        questdb_http,
        StorageMetrics::new(prom, "steward_notification_events"),
    )?;
    let log = Arc::new(QuestDbDeliveryLog {
        outbox: Mutex::new(Some(spool)),
    });
    let roster: Arc<dyn Roster> = Arc::new(EstateRoster::new(registry.clone()));
    let escalation = Escalation::new(Parts {
        desk,
        roster,
        dispatcher,
        store,
        key,
        policy,
        policy_path: e.policy.clone(),
        public_url,
        link_ttl: e.link_ttl,
        clock,
        metrics: EscalationMetrics::new(prom),
        log: log.clone(),
        tick: e.tick,
    });
    let (stop, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(escalation.clone().run(async {
        let _ = stop_rx.await;
    }));
    Ok(People {
        escalation,
        stop: Some(stop),
        task: Some(task),
        log,
    })
}
