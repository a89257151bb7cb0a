//! Ingest's view of the broker: an [`InboundSource`] over an in-process link that
//! subscribes to everything. The rumqttd details stay here: waking a link the router
//! parked, counting messages the router dropped from its log because the reader lagged,
//! and, when the router holds PUBACKs, telling it which log offsets ingest has persisted.

use prometheus_client::metrics::counter::Counter;
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::Notification;
use std::time::Instant;
use steward_estate::inbound::{AckToken, Inbound, InboundSource, Received};
use tracing::{debug, error, warn};

/// Counters the source keeps for its reader (registered by the reader's stage).
#[derive(Clone, Debug, Default)]
pub struct SourceCounters {
    /// Times the router paused the link because the reader lagged (`Unschedule`).
    pub unscheduled: Counter,
    /// Messages rumqttd dropped from its log because the reader lagged.
    pub lost: Counter,
}

/// Finds messages a subscriber missed from the offsets of what it received: rumqttd
/// numbers the messages of a subscription's log consecutively from 0, and skips ahead
/// when it drops segments a lagging subscriber has not read (also before its first read).
#[derive(Debug, Default)]
pub struct LogGap {
    last: Option<u64>,
}

impl LogGap {
    /// Record the offset of the next message received; returns how many were skipped.
    pub fn observe(&mut self, offset: u64) -> u64 {
        let expected = self.last.map_or(0, |prev| prev + 1);
        self.last = Some(offset);
        offset.saturating_sub(expected)
    }
}

/// Every publish the router forwards, as [`Inbound`] messages; a message's [`AckToken`]
/// is its offset in the router's log of ingest's subscription.
pub struct BrokerSource {
    // Keeps the link connected, and carries `persisted`/`lost` reports when the router
    // holds PUBACKs.
    tx: LinkTx,
    rx: LinkRx,
    gap: LogGap,
    counters: SourceCounters,
    /// The router holds each QoS 1 PUBACK until this source releases its offset.
    holds_acks: bool,
    /// Highest offset already released (`None`: nothing yet).
    released: Option<u64>,
}

impl BrokerSource {
    pub(crate) fn new(tx: LinkTx, rx: LinkRx, counters: SourceCounters, holds_acks: bool) -> Self {
        BrokerSource {
            tx,
            rx,
            gap: LogGap::default(),
            counters,
            holds_acks,
            released: None,
        }
    }
}

impl InboundSource for BrokerSource {
    fn recv_until(&mut self, deadline: Instant) -> Received {
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(Some(Notification::Forward(f))) => {
                    let offset = f.cursor.map_or(0, |(_, offset)| offset);
                    if f.cursor.is_some() {
                        let lost = self.gap.observe(offset);
                        if lost > 0 {
                            self.report_lost(offset - lost, offset);
                        }
                    }
                    return Received::Message(Inbound {
                        sender: None,
                        topic: f.publish.topic,
                        payload: f.publish.payload,
                        ack: AckToken(offset),
                        received_us: None,
                    });
                }
                Ok(Some(Notification::Unschedule)) => {
                    // The router parks a link whose queue filled up; it resumes only after
                    // we say we are ready again.
                    self.counters.unscheduled.inc();
                    if let Err(e) = self.rx.ready() {
                        return Received::Closed(format!("cannot wake ingest link: {e}"));
                    }
                }
                Ok(Some(other)) => debug!(?other, "ignored notification"),
                Ok(None) => {}
                Err(LinkError::RecvTimeout(flume::RecvTimeoutError::Timeout)) => {
                    return Received::Idle
                }
                Err(e) => return Received::Closed(e.to_string()),
            }
            if Instant::now() >= deadline {
                return Received::Idle;
            }
        }
    }

    fn release_through(&mut self, token: AckToken) {
        if !self.holds_acks || self.released.is_some_and(|r| r >= token.0) {
            return;
        }
        self.released = Some(token.0);
        if let Err(e) = self.tx.persisted(token.0) {
            // The router is gone (the hub is stopping): there is no one left to ack to.
            debug!(error = %e, "cannot release acknowledgements");
        }
    }
}

impl BrokerSource {
    /// rumqttd drops the oldest segments when a subscriber lags too far, and only logs it;
    /// offsets are consecutive, so the jump is exactly what was lost. Their PUBACKs, if
    /// held, must never be sent: the router disconnects their senders instead, which
    /// publish them again.
    fn report_lost(&mut self, from: u64, to: u64) {
        let lost = to - from;
        self.counters.lost.inc_by(lost);
        error!(
            lost,
            "ingest lagged behind the broker's log; rumqttd dropped messages"
        );
        if self.holds_acks {
            if let Err(e) = self.tx.lost(from, to) {
                warn!(error = %e, "cannot report lost messages to the router");
            }
        }
    }
}
