//! The seam between whatever receives device messages and ingest. Today the source is the
//! embedded broker's in-process link; in cluster mode it is a Kafka consumer. Ingest sees
//! only [`Inbound`] messages from an [`InboundSource`], never a broker or client type, and
//! releases each message's [`AckHandle`] when it has done what the ack mode promises.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Instant;

/// Prefix of publishes the broker refused for their topic (the sender's identity follows,
/// then the original topic); ingest turns them into `not_authorized` rejects.
pub const UNAUTHORIZED_PREFIX: &str = "steward/unauthorized/";
/// Prefix of publishes shed by the per-device rate limit; ingest counts them as
/// `rate_limited` rejects.
pub const SHED_PREFIX: &str = "steward/shed/";

/// One message as it reached the hub.
pub struct Inbound {
    /// Authenticated client id of the sender, when the source knows it (rumqttd's router
    /// does not say; the broker's guard marks foreign topics instead).
    pub sender: Option<Arc<str>>,
    pub topic: Bytes,
    pub payload: Bytes,
    pub ack: AckHandle,
}

/// What the source owes the sender once ingest is done with a message: a PUBACK, a Kafka
/// offset commit. Releasing it is ingest's call; dropping it unreleased withholds the ack,
/// so a message that was not handled is sent again.
#[derive(Default)]
pub struct AckHandle(Option<Box<dyn FnOnce() + Send>>);

impl AckHandle {
    /// For sources that acknowledge on their own (rumqttd acknowledges when its router
    /// takes a publish): nothing to release, and nothing allocated per message.
    pub fn none() -> Self {
        AckHandle(None)
    }

    pub fn new(release: impl FnOnce() + Send + 'static) -> Self {
        AckHandle(Some(Box::new(release)))
    }

    pub fn release(mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl std::fmt::Debug for AckHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "AckHandle(pending)"
        } else {
            "AckHandle(none)"
        })
    }
}

/// What a wait on the source ended with.
pub enum Received {
    Message(Inbound),
    /// Nothing came before the deadline.
    Idle,
    /// The source is gone for good (the reason is for the log).
    Closed(String),
}

/// A stream of device messages for ingest, read on ingest's own thread.
pub trait InboundSource: Send + 'static {
    /// The next message, waiting no later than `deadline`; a deadline already past only
    /// takes what is queued.
    fn recv_until(&mut self, deadline: Instant) -> Received;
}
