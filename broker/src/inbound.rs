//! Ingest's view of the broker: an [`InboundSource`] over an in-process link that
//! subscribes to everything. The rumqttd details stay here: waking a link the router
//! parked, and counting messages the router dropped from its log because the reader lagged.

use prometheus_client::metrics::counter::Counter;
use rumqttd::local::{LinkError, LinkRx, LinkTx};
use rumqttd::Notification;
use std::time::Instant;
use steward_estate::inbound::{AckHandle, Inbound, InboundSource, Received};
use tracing::{debug, error};

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

/// Every publish the router forwards, as [`Inbound`] messages.
pub struct BrokerSource {
    // Kept so the link stays connected; nothing is sent on it after subscribing.
    _tx: LinkTx,
    rx: LinkRx,
    gap: LogGap,
    counters: SourceCounters,
}

impl BrokerSource {
    pub(crate) fn new(tx: LinkTx, rx: LinkRx, counters: SourceCounters) -> Self {
        BrokerSource {
            _tx: tx,
            rx,
            gap: LogGap::default(),
            counters,
        }
    }
}

impl InboundSource for BrokerSource {
    fn recv_until(&mut self, deadline: Instant) -> Received {
        loop {
            match self.rx.recv_deadline(deadline) {
                Ok(Some(Notification::Forward(f))) => {
                    if let Some((_, offset)) = f.cursor {
                        let lost = self.gap.observe(offset);
                        if lost > 0 {
                            // rumqttd drops the oldest segments when a subscriber lags too
                            // far, and only logs it; offsets are consecutive, so the jump
                            // is exactly what was lost.
                            self.counters.lost.inc_by(lost);
                            error!(
                                lost,
                                "ingest lagged behind the broker's log; rumqttd dropped messages"
                            );
                        }
                    }
                    return Received::Message(Inbound {
                        sender: None,
                        topic: f.publish.topic,
                        payload: f.publish.payload,
                        // rumqttd has already acknowledged the publish.
                        ack: AckHandle::none(),
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
}
