//! Where rules' output leaves the hub: device commands and station alerts are published
//! on the embedded broker through an in-process link, and every ticket event is written
//! to QuestDB's `ticket_events` table.

use parking_lot::Mutex;
use std::sync::Arc;
use std::thread::JoinHandle;
use steward_broker::{Broker, LinkRx, LinkTx};
use steward_rules::CommandSink;
use steward_storage::new_buffer;
use steward_storage::questdb::ilp::{self, TicketEventRow};
use steward_storage::{Outbox, Refused};
use steward_tickets::{TicketEvent, TicketStore};
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

    /// Called from the rules and ticket-event threads, never from async code, so it may
    /// wait for the router: under a ticket storm the router's queue fills, and `try_publish`
    /// then failed to wake the router for tens of thousands of alerts (the message itself
    /// stays queued, but the last ones of a burst waited for the next publish).
    pub fn publish(&self, topic: &str, payload: Vec<u8>) {
        if let Err(e) = self.tx.lock().publish(topic.to_string(), payload) {
            warn!(topic, error = %e, "cannot publish");
        }
    }
}

/// Where alerts and device commands are published: the embedded broker on one machine,
/// the downlink topic in cluster mode.
pub trait Publish: Send + Sync {
    fn publish(&self, topic: &str, payload: Vec<u8>);
}

impl Publish for HubPublisher {
    fn publish(&self, topic: &str, payload: Vec<u8>) {
        HubPublisher::publish(self, topic, payload)
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

/// Forward ticket events until the rules stage closes its channel: alerts to the
/// stations' MQTT topics, every event to QuestDB's `ticket_events`. Events that arrive
/// together go out together (one spool segment); if the forwarder falls behind the live
/// channel, it catches up from the rules' durable event log, so no alert is skipped.
/// The running forwarder. It ends by itself when the rules stage closes its channel;
/// `shutdown` waits for that, bounded, like every other stage's `shutdown`.
pub struct EventForwarder {
    thread: JoinHandle<()>,
}

impl EventForwarder {
    pub fn shutdown(self, within: std::time::Duration) {
        // Bounded: a handle on the channel still held elsewhere must not hold up the
        // hub's shutdown.
        let deadline = std::time::Instant::now() + within;
        while !self.thread.is_finished() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if self.thread.is_finished() {
            let _ = self.thread.join();
        } else {
            warn!("ticket event forwarder still running at shutdown");
        }
    }
}

pub fn forward_events(
    mut rx: broadcast::Receiver<TicketEvent>,
    // The store, not the rules' desk: the desk holds the channel's sender, and the channel
    // must close when the rules stage stops so that this thread ends.
    log: Arc<dyn TicketStore>,
    publisher: Arc<dyn Publish>,
    mut outbox: Outbox,
) -> std::io::Result<EventForwarder> {
    let thread = std::thread::Builder::new()
        .name("ticket-events".into())
        .spawn(move || {
            // Events of earlier runs were forwarded then (or are in the log for the API).
            let mut last_id = log.last_event_id().unwrap_or(0);
            let mut buf = new_buffer();
            loop {
                let mut batch = Vec::new();
                let mut lagged = false;
                match rx.blocking_recv() {
                    Ok(ev) => batch.push(ev),
                    Err(broadcast::error::RecvError::Lagged(_)) => lagged = true,
                    Err(broadcast::error::RecvError::Closed) => break,
                }
                loop {
                    match rx.try_recv() {
                        Ok(ev) => batch.push(ev),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
                        Err(_) => break,
                    }
                }
                if lagged {
                    match log.events_after(last_id, 100_000) {
                        Ok(missed) => {
                            warn!(
                                from_log = missed.len(),
                                "ticket event forwarder fell behind; catching up from the event log"
                            );
                            batch.splice(0..0, missed);
                        }
                        Err(e) => warn!(error = %e, "cannot read the ticket event log"),
                    }
                }
                let mut rows = 0u64;
                for ev in batch {
                    if let Some(id) = ev.event_id {
                        if id <= last_id {
                            continue;
                        }
                        last_id = id;
                    }
                    forward(&ev, &publisher, &mut buf, &mut rows);
                }
                if rows > 0 {
                    // The ticket events are already in SQLite's event log: a refusing
                    // spool only costs their copy in QuestDB, which is counted.
                    match outbox.append(buf.as_bytes(), rows) {
                        Ok(()) | Err(Refused::Failed(_)) => buf = outbox.send(buf, false),
                        Err(Refused::Full) => outbox.dropped(rows),
                    }
                }
                buf.clear();
            }
            outbox.shutdown(new_buffer(), std::time::Duration::from_secs(5));
        })?;
    Ok(EventForwarder { thread })
}

fn forward(
    ev: &TicketEvent,
    publisher: &Arc<dyn Publish>,
    buf: &mut steward_storage::Buffer,
    rows: &mut u64,
) {
    if ev.kind.is_alert() {
        match serde_json::to_vec(ev) {
            Ok(body) => publisher.publish(&ev.topic, body),
            Err(e) => warn!(error = %e, "cannot encode ticket event"),
        }
    }
    let row = TicketEventRow {
        ts_ms: ev.ts_ms,
        ticket_id: ev.ticket_id,
        kind: ev.kind.as_str(),
        device_id: &ev.device_id,
        rule_id: &ev.rule_id,
        station: &ev.station,
        compound: &ev.compound,
        priority: ev.priority.as_str(),
        state: ev.state.map(|s| s.as_str()),
        escalation_level: ev.escalation_level as i64,
        audience: &ev.audience,
        message: &ev.message,
    };
    match ilp::append_ticket_event(buf, &row) {
        Ok(()) => *rows += 1,
        Err(e) => warn!(error = %e, "cannot encode ticket event row"),
    }
}
