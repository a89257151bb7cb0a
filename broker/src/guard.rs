//! Per-connection checks rumqttd does not have: who may publish where, who may subscribe
//! to what, and how fast one device may publish.
//!
//! rumqttd has no per-topic ACL, and a publish forwarded to ingest does not say which
//! client sent it. rumqttd does let the embedding program choose the `Protocol` that
//! decodes every packet of a connection, and it clones that value once per accepted
//! connection before the first packet. [`Guarded`] wraps the real codec, remembers the
//! authenticated username from CONNECT, and rewrites each later packet it must refuse:
//!
//! - a PUBLISH outside the sender's own namespace (`devices/{self}/…` or
//!   `gateways/{self}/…`, never `…/commands`) goes to
//!   `steward/unauthorized/{sender}/{original topic}`, so ingest records the refusal with
//!   the real sender and the owner's data is never touched;
//! - a PUBLISH over the device's rate goes to `steward/shed/{sender}`, which ingest counts;
//! - a SUBSCRIBE filter outside the client's namespace becomes
//!   `steward/denied/{sender}/…`, which nothing ever publishes to;
//! - a last will is checked like a PUBLISH;
//! - a client id other than the username is prefixed with `{username}:`, so one device
//!   cannot take over (and disconnect) another's session by reusing its client id.
//!
//! Rewriting instead of disconnecting keeps the connection (and the device's other,
//! valid traffic) alive and lets the vendor read the reason among the rejects.

use crate::metrics::BrokerMetrics;
use bytes::{Bytes, BytesMut};
use governor::clock::DefaultClock;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use rumqttd::protocol::{Error, Packet, Protocol};
use std::num::NonZeroU32;
use std::sync::Arc;
use steward_estate::tokens::TOKEN_PREFIX;
use steward_estate::{Registry, Role};

pub use steward_estate::inbound::{SHED_PREFIX, UNAUTHORIZED_PREFIX};
const DENIED_PREFIX: &str = "steward/denied/";

pub(crate) type Limiter = RateLimiter<Arc<str>, DashMapStateStore<Arc<str>>, DefaultClock>;

/// Per-device publish rate, shared by every connection of the device.
pub(crate) fn limiter(rate_per_s: u32, burst: u32) -> Option<Arc<Limiter>> {
    let rate = NonZeroU32::new(rate_per_s)?;
    let burst = NonZeroU32::new(burst.max(rate_per_s)).unwrap_or(rate);
    Some(Arc::new(RateLimiter::keyed(
        Quota::per_second(rate).allow_burst(burst),
    )))
}

/// A crew's (or admin's) alert client, logged in with an API token: it may subscribe to
/// its station's alerts (an admin to any station's) and publish nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Listener {
    /// `None`: every station (admin).
    station: Option<String>,
}

/// The token a listener logs in with, if it is live and of a role that may listen.
pub(crate) fn listener_token(registry: &Registry, token: &str) -> Option<Listener> {
    let info = registry.verify_token(token).ok().flatten()?;
    match info.role {
        Role::Admin => Some(Listener { station: None }),
        Role::Crew => info.scope.station.map(|s| Listener { station: Some(s) }),
        Role::Manager | Role::Vendor | Role::Captain | Role::Dispatcher => None,
    }
}

#[derive(Clone)]
pub(crate) struct Guarded<P> {
    inner: P,
    /// The CONNECT username (device or gateway id); set by the first packet.
    identity: Option<Arc<str>>,
    /// Set instead when the client logged in with a crew or admin token.
    listener: Option<Listener>,
    limiter: Option<Arc<Limiter>>,
    metrics: BrokerMetrics,
    registry: Registry,
}

impl<P> Guarded<P> {
    pub(crate) fn new(
        inner: P,
        limiter: Option<Arc<Limiter>>,
        metrics: BrokerMetrics,
        registry: Registry,
    ) -> Self {
        Guarded {
            inner,
            identity: None,
            listener: None,
            limiter,
            metrics,
            registry,
        }
    }
}

/// Whether `identity` may publish to `topic`: its own `devices/` or `gateways/` namespace,
/// but not the downlink `commands` channel.
pub fn may_publish(identity: &str, topic: &[u8]) -> bool {
    let mut parts = topic.splitn(3, |b| *b == b'/');
    let (Some(root), Some(id), rest) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    (root == b"devices" || root == b"gateways")
        && !identity.is_empty()
        && id == identity.as_bytes()
        && rest != Some(b"commands".as_slice())
}

/// Whether device or gateway `identity` may subscribe to `filter`: only inside its own
/// namespace, where its commands arrive.
pub fn may_subscribe(identity: &str, filter: &str) -> bool {
    let own = |root: &str| {
        filter
            .strip_prefix(root)
            .and_then(|f| f.strip_prefix(identity))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    !identity.is_empty() && (own("devices/") || own("gateways/"))
}

/// Whether a listener of `station` (`None`: all stations) may subscribe to `filter`:
/// `stations/{its station}/alerts`, or for all stations also `stations/+/alerts`.
pub fn may_listen(station: Option<&str>, filter: &str) -> bool {
    let mut parts = filter.split('/');
    let (Some("stations"), Some(s), Some("alerts"), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    match station {
        Some(own) => s == own,
        None => !s.is_empty() && s != "#",
    }
}

fn prefixed(prefix: &str, identity: &str, rest: &[u8]) -> Bytes {
    let mut t = BytesMut::with_capacity(prefix.len() + identity.len() + 1 + rest.len());
    t.extend_from_slice(prefix.as_bytes());
    t.extend_from_slice(identity.as_bytes());
    if !rest.is_empty() {
        t.extend_from_slice(b"/");
        t.extend_from_slice(rest);
    }
    t.freeze()
}

impl<P: Protocol> Guarded<P> {
    fn check(&mut self, packet: Packet) -> Packet {
        match packet {
            Packet::Connect(mut connect, props, mut will, will_props, login) => {
                // Authentication (after this returns) is by username; an empty one fails it.
                let user: Arc<str> = login
                    .as_ref()
                    .map(|l| l.username.as_str())
                    .unwrap_or("")
                    .into();
                if let Some(l) = login.as_ref() {
                    if l.password.starts_with(TOKEN_PREFIX) {
                        // Authentication (after this) refuses the connection if this is
                        // `None`; the listener's name never matches a device namespace.
                        self.listener = listener_token(&self.registry, &l.password);
                        let user: Arc<str> = format!("token:{user}").into();
                        connect.client_id = format!("{user}:{}", connect.client_id);
                        if let Some(w) = will.as_mut() {
                            w.topic = prefixed(UNAUTHORIZED_PREFIX, &user, &w.topic);
                            w.retain = false;
                        }
                        self.identity = Some(user);
                        return Packet::Connect(connect, props, will, will_props, login);
                    }
                }
                if !connect.client_id.is_empty() && connect.client_id != *user {
                    connect.client_id = format!("{user}:{}", connect.client_id);
                }
                if let Some(w) = will.as_mut() {
                    if !may_publish(&user, &w.topic) {
                        self.metrics.unauthorized_publish.inc();
                        w.topic = prefixed(UNAUTHORIZED_PREFIX, &user, &w.topic);
                        w.retain = false;
                    }
                }
                self.identity = Some(user);
                Packet::Connect(connect, props, will, will_props, login)
            }
            Packet::Publish(mut publish, props) => {
                let Some(identity) = self.identity.as_ref() else {
                    // rumqttd refuses anything before CONNECT itself.
                    return Packet::Publish(publish, props);
                };
                // A v5 publish may name its topic by an alias alone; the router maps it to
                // the topic registered with the alias, which was checked (and, if refused,
                // rewritten) when it was registered.
                let by_alias = publish.topic.is_empty()
                    && props.as_ref().is_some_and(|p| p.topic_alias.is_some());
                if !by_alias && !may_publish(identity, &publish.topic) {
                    self.metrics.unauthorized_publish.inc();
                    publish.topic = prefixed(UNAUTHORIZED_PREFIX, identity, &publish.topic);
                    publish.retain = false;
                } else if let Some(l) = &self.limiter {
                    if l.check_key(identity).is_err() {
                        self.metrics.rate_limited.inc();
                        publish.topic = prefixed(SHED_PREFIX, identity, b"");
                        publish.retain = false;
                    }
                }
                compact(&mut publish);
                Packet::Publish(publish, props)
            }
            Packet::Subscribe(mut subscribe, props) => {
                if let Some(identity) = self.identity.as_ref() {
                    for f in subscribe.filters.iter_mut() {
                        let allowed = match &self.listener {
                            Some(l) => may_listen(l.station.as_deref(), &f.path),
                            None => may_subscribe(identity, &f.path),
                        };
                        if !allowed {
                            self.metrics.denied_subscribe.inc();
                            f.path = format!("{DENIED_PREFIX}{identity}/{}", f.path);
                        }
                    }
                }
                Packet::Subscribe(subscribe, props)
            }
            other => other,
        }
    }
}

/// Topic and payload as parsed are views into the connection's read buffer, and the
/// router's in-memory log keeps them until its segment is dropped: a quiet device's
/// reading would then hold a whole read buffer (1 KiB or more) for a few hundred bytes,
/// and the buffer could not be reused. Exact-size copies keep the log's memory close to
/// its configured size and let the read buffer be recycled for the next packet.
fn compact(publish: &mut rumqttd::protocol::Publish) {
    publish.topic = Bytes::copy_from_slice(&publish.topic);
    publish.payload = Bytes::copy_from_slice(&publish.payload);
}

impl<P: Protocol> Protocol for Guarded<P> {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, Error> {
        let packet = self.inner.read_mut(stream, max_size)?;
        Ok(self.check(packet))
    }

    fn write(&self, packet: Packet, write: &mut BytesMut) -> Result<usize, Error> {
        self.inner.write(packet, write)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_only_in_own_namespace() {
        assert!(may_publish("lift-1", b"devices/lift-1/telemetry"));
        assert!(may_publish("lift-1", b"devices/lift-1/status"));
        assert!(may_publish("lift-1", b"devices/lift-1/anything-else"));
        assert!(may_publish("gw-1", b"gateways/gw-1/telemetry"));
        assert!(!may_publish("lift-1", b"devices/lift-2/telemetry"));
        assert!(!may_publish("lift-1", b"devices/lift-10/telemetry"));
        assert!(!may_publish("lift-10", b"devices/lift-1/telemetry"));
        assert!(!may_publish("lift-1", b"devices/lift-1/commands"));
        // Malformed but own: passed on, so ingest answers `bad_topic`.
        assert!(may_publish("lift-1", b"devices/lift-1"));
        assert!(!may_publish("lift-1", b"stations/st-1/alerts"));
        assert!(!may_publish("lift-1", b"steward/unauthorized/lift-2/x"));
        assert!(!may_publish("gw-1", b"gateways/gw-2/telemetry"));
        assert!(!may_publish("", b"devices//telemetry"));
    }

    #[test]
    fn subscribe_only_to_own_topics_and_listeners_to_their_station() {
        assert!(may_subscribe("lift-1", "devices/lift-1/commands"));
        assert!(may_subscribe("lift-1", "devices/lift-1/#"));
        assert!(may_subscribe("gw-1", "gateways/gw-1/#"));
        assert!(!may_subscribe("lift-1", "stations/st-1/alerts"));
        assert!(may_listen(Some("st-1"), "stations/st-1/alerts"));
        assert!(!may_listen(Some("st-1"), "stations/st-2/alerts"));
        assert!(!may_listen(Some("st-1"), "stations/+/alerts"));
        assert!(!may_listen(Some("st-1"), "devices/lift-1/telemetry"));
        assert!(may_listen(None, "stations/+/alerts"));
        assert!(may_listen(None, "stations/st-2/alerts"));
        assert!(!may_listen(None, "stations/#"));
        assert!(!may_listen(None, "#"));
        assert!(!may_subscribe("lift-1", "#"));
        assert!(!may_subscribe("lift-1", "devices/+/telemetry"));
        assert!(!may_subscribe("lift-1", "devices/lift-10/commands"));
        assert!(!may_subscribe("lift-1", "devices/#"));
        assert!(!may_subscribe("lift-1", "stations/#"));
        assert!(!may_subscribe("lift-1", "stations/+/alerts/#"));
        assert!(!may_subscribe("lift-1", "steward/#"));
    }

    #[test]
    fn rate_limit_is_per_identity() {
        let l = limiter(10, 20).expect("limiter");
        let a: Arc<str> = "a".into();
        let b: Arc<str> = "b".into();
        let passed = (0..100).filter(|_| l.check_key(&a).is_ok()).count();
        assert!((20..=22).contains(&passed), "burst of 20, got {passed}");
        assert!(
            l.check_key(&b).is_ok(),
            "another device keeps its own budget"
        );
        assert!(limiter(0, 0).is_none(), "0 disables the limit");
    }
}
