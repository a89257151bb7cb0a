//! Where rules' output leaves the hub: device commands and station alerts are published
//! on the embedded broker through an in-process link, and every ticket event is written
//! to QuestDB's `ticket_events` table.

use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;
use steward_broker::{Broker, LinkRx, LinkTx};
use steward_ingest::outbox::Outbox;
use steward_ingest::questdb::ilp::{self, TicketEventRow};
use steward_ingest::writer::new_buffer;
use steward_rules::{CommandSink, TicketEvent};
use tokio::sync::broadcast;
use tracing::{info, warn};

/// Publishes on the broker as the hub itself (no TCP, no authentication).
pub struct HubPublisher {
    tx: Mutex<LinkTx>,
    // Keeping the receiving half alive keeps the link connected.
    _rx: Mutex<LinkRx>,
}

impl HubPublisher {
    pub fn new(broker: &Broker) -> Result<Arc<Self>, steward_broker::BrokerError> {
        let (tx, rx) = broker.link("steward-hub")?;
        Ok(Arc::new(HubPublisher {
            tx: Mutex::new(tx),
            _rx: Mutex::new(rx),
        }))
    }

    pub fn publish(&self, topic: &str, payload: Vec<u8>) {
        if let Err(e) = self.tx.lock().try_publish(topic.to_string(), payload) {
            warn!(topic, error = %e, "cannot publish");
        }
    }
}

impl CommandSink for HubPublisher {
    fn send(&self, device_id: &str, payload: &str) {
        info!(device = device_id, "device command");
        self.publish(
            &format!("devices/{device_id}/commands"),
            payload.as_bytes().to_vec(),
        );
    }
}

/// Forward ticket events until the rules stage closes its channel.
pub fn forward_events(
    mut rx: broadcast::Receiver<TicketEvent>,
    publisher: Arc<HubPublisher>,
    mut outbox: Outbox,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("ticket-events".into())
        .spawn(move || {
            loop {
                let ev = match rx.blocking_recv() {
                    Ok(ev) => ev,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        warn!(missed = n, "ticket event forwarder lagged");
                        continue;
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if ev.kind.is_alert() {
                    match serde_json::to_vec(&ev) {
                        Ok(body) => publisher.publish(&ev.topic, body),
                        Err(e) => warn!(error = %e, "cannot encode ticket event"),
                    }
                }
                // Ticket events are rare: one spooled segment each, sent at once.
                let mut buf = new_buffer();
                let state = ev.state.map(|s| s.as_str());
                let row = TicketEventRow {
                    ts_ms: ev.ts_ms,
                    ticket_id: ev.ticket_id,
                    kind: ev.kind.as_str(),
                    device_id: &ev.device_id,
                    rule_id: &ev.rule_id,
                    station: &ev.station,
                    compound: &ev.compound,
                    priority: ev.priority.as_str(),
                    state,
                    escalation_level: ev.escalation_level as i64,
                    audience: &ev.audience,
                    message: &ev.message,
                };
                match ilp::append_ticket_event(&mut buf, &row) {
                    Ok(()) => {
                        if outbox.append(buf.as_bytes(), 1) {
                            outbox.send(buf, false);
                        }
                    }
                    Err(e) => warn!(error = %e, "cannot encode ticket event row"),
                }
            }
            outbox.shutdown(new_buffer(), std::time::Duration::from_secs(5));
        })
}
