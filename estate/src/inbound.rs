//! The seam between whatever receives device messages and ingest. Today the source is the
//! embedded broker's in-process link; in cluster mode it is a Kafka consumer. Ingest sees
//! only [`Inbound`] messages from an [`InboundSource`], never a broker or client type, and
//! releases acknowledgements through [`InboundSource::release_through`] once it has done
//! what the ack mode promises with them.

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
    /// The message's place in the source's stream, for [`InboundSource::release_through`].
    pub ack: AckToken,
    /// When the hub first received the message (microseconds since the epoch), if the
    /// source carries it: a Kafka record read again after a failover keeps the receive
    /// time its front end gave it, so the rows it makes are the same rows (and QuestDB's
    /// DEDUP keeps one). `None` means now.
    pub received_us: Option<i64>,
}

/// A message's place in its source's stream. Tokens rise in the order the source hands
/// messages out, so one token stands for every message before it too: ingest releases
/// acknowledgements a group at a time (after a spool write), not one by one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AckToken(pub u64);

/// What a wait on the source ended with./// What a wait on the source ended with.
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

    /// Ingest has done what the ack mode promises (spooled, or spooled and synced) with
    /// every message up to and including `token`: the source owes their senders the
    /// acknowledgement now (a PUBACK, a Kafka offset commit). A message never released is
    /// never acknowledged, so its sender publishes it again. Sources that acknowledge on
    /// receipt ignore this.
    fn release_through(&mut self, token: AckToken) {
        let _ = token;
    }
}
