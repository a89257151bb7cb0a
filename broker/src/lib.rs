//! The broker stage: rumqttd embedded in-process, with one listener for MQTT 3.1.1 and 5
//! (the CONNECT's protocol level picks the codec, `autoproto.rs`) and an optional MQTT 5
//! only one, whose CONNECT is authenticated against the estate registry (device or
//! gateway id and secret).
//! Ingest and the hub's own publishers reach the router through in-process links.
//! Every device connection goes through a guard (`guard.rs`) that keeps a client to its own
//! topics and its publish rate.
//!
//! This stage moves bytes only: it may not decode payloads, write to QuestDB or touch
//! tickets. It reads the estate registry's directory snapshot and nothing else of it.

mod autoproto;
mod config;
mod guard;
mod inbound;
mod metrics;
mod tls;

pub use config::BrokerConfig;
pub use guard::{may_publish, may_subscribe, SHED_PREFIX, UNAUTHORIZED_PREFIX};
pub use inbound::{BrokerSource, LogGap, SourceCounters};
pub use metrics::BrokerMetrics;
pub use rumqttd::local::{LinkError, LinkRx, LinkTx};
pub use rumqttd::Notification;

/// Router log segments given back (in this process) because every reader had passed them;
/// rumqttd alone keeps them until the configured count is reached (vendor/rumqttd).
pub fn log_segments_released() -> u64 {
    rumqttd::segments_released()
}

use autoproto::AutoProto;
use guard::Guarded;
use rumqttd::protocol::v5::V5;
use rumqttd::{local::LinkBuilder, ConnectionSettings, Router, ServerSettings};
use rumqttd::{protocol::Protocol, LinkType, Server};
use std::net::SocketAddr;
use std::thread::JoinHandle;
use steward_estate::{AuthOutcome, Registry};
use tokio::sync::watch;
use tracing::{error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    // The io error is part of the message, not a `source`, so a printed error chain does
    // not repeat it.
    #[error("broker.{key}: cannot listen on {addr}: {error}")]
    Bind {
        key: &'static str,
        addr: SocketAddr,
        error: std::io::Error,
    },
    #[error("broker.{key}: {message}")]
    Tls { key: &'static str, message: String },
    #[error("broker: cannot start thread: {0}")]
    Thread(std::io::Error),
    #[error("broker: in-process link `{client_id}` refused by the router: {message}")]
    Link { client_id: String, message: String },
}

/// What ingest's link subscribes to: every topic, so a topic outside the contract is seen
/// and rejected rather than silently ignored. With `hold_acks`, PUBACKs of publishes in
/// this filter's log wait for ingest.
pub(crate) const INGEST_FILTER: &str = "#";

type LinkFactory = Box<dyn Fn(&str) -> Result<(LinkTx, LinkRx), String> + Send + Sync>;

/// A running broker: its router, listener threads and the addresses they listen on.
pub struct Broker {
    // rumqttd does not export the router's channel type, so links are made by a closure
    // that owns a clone of it.
    link_factory: LinkFactory,
    shutdown: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    /// The main listener (`broker.v4_listen`): MQTT 3.1.1 and 5 alike.
    pub v4_addr: SocketAddr,
    /// The optional MQTT 5 only listener (`broker.v5_listen`).
    pub v5_addr: Option<SocketAddr>,
    pub tls_addr: Option<SocketAddr>,
    metrics: BrokerMetrics,
    hold_acks: bool,
}

impl Broker {
    /// Start the router and the listeners. Ports are checked before rumqttd gets them,
    /// because rumqttd only logs a listener that fails to bind.
    pub fn start(
        config: &BrokerConfig,
        registry: Registry,
        metrics: BrokerMetrics,
    ) -> Result<Broker, BrokerError> {
        // Certificates are read before anything listens, so a bad one stops start-up.
        let tls_acceptor = match (&config.tls_listen, &config.tls_cert, &config.tls_key) {
            (Some(_), Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
            _ => None,
        };
        let v4_addr = check_bind("v4_listen", config.v4_listen)?;
        let v5_addr = match config.v5_listen {
            Some(a) => Some(check_bind("v5_listen", a)?),
            None => None,
        };
        let router = Router::new(0, config.router_config());
        let router_tx = router.spawn();
        let (shutdown, shutdown_rx) = watch::channel(false);
        let limiter = guard::limiter(config.device_rate_per_s, config.device_burst);
        let mut threads = Vec::new();
        let settings = |name: &str, addr: SocketAddr| {
            let mut s = ServerSettings {
                name: name.to_string(),
                listen: addr,
                tls: None,
                next_connection_delay_ms: 0,
                connections: ConnectionSettings {
                    connection_timeout_ms: config.connection_timeout_ms,
                    max_payload_size: config.max_payload_bytes,
                    max_inflight_count: config.max_inflight,
                    auth: None,
                    external_auth: None,
                    dynamic_filters: true,
                },
            };
            let registry = registry.clone();
            let metrics = metrics.clone();
            s.set_auth_handler(move |_client_id: String, user: String, pass: String| {
                // Crews' alert clients log in with an API token of role crew (or admin).
                if pass.starts_with(steward_estate::tokens::TOKEN_PREFIX) {
                    let ok = guard::listener_token(&registry, &pass).is_some();
                    metrics.record_token_auth(ok);
                    if !ok {
                        warn!(client = %user, "mqtt connect with an unknown or unfit token refused");
                    }
                    return std::future::ready(ok);
                }
                let outcome = registry.directory().authenticate(&user, &pass);
                metrics.record_auth(outcome);
                if !matches!(outcome, AuthOutcome::Device | AuthOutcome::Gateway) {
                    warn!(client = %user, reason = outcome.reason(), "mqtt connect refused");
                }
                std::future::ready(matches!(
                    outcome,
                    AuthOutcome::Device | AuthOutcome::Gateway
                ))
            });
            s
        };
        threads.push(spawn_server(
            Server::new(
                settings("mqtt", v4_addr),
                router_tx.clone(),
                Guarded::new(
                    AutoProto::default(),
                    limiter.clone(),
                    metrics.clone(),
                    registry.clone(),
                ),
            ),
            shutdown_rx.clone(),
        )?);
        if let Some(addr) = v5_addr {
            threads.push(spawn_server(
                Server::new(
                    settings("mqtt-v5", addr),
                    router_tx.clone(),
                    Guarded::new(V5, limiter.clone(), metrics.clone(), registry.clone()),
                ),
                shutdown_rx.clone(),
            )?);
        }
        // rumqttd binds inside its thread: wait until each listener answers, so callers
        // (and devices) never meet a refused connection right after start.
        let mut listeners = vec![("v4_listen", v4_addr)];
        if let Some(a) = v5_addr {
            listeners.push(("v5_listen", a));
        }
        for ((key, addr), thread) in listeners.into_iter().zip(&threads) {
            wait_listening(key, addr, thread)?;
        }
        let mut tls_addr = None;
        if let (Some(listen), Some(acceptor)) = (config.tls_listen, tls_acceptor) {
            let (addr, thread) = tls::spawn(listen, acceptor, v4_addr, shutdown_rx.clone())?;
            tls_addr = Some(addr);
            threads.push(thread);
        }
        info!(mqtt = %v4_addr, v5 = ?v5_addr, tls = ?tls_addr, "broker listening");
        let link_factory: LinkFactory = Box::new(move |client_id: &str| {
            LinkBuilder::new(client_id, router_tx.clone())
                .build()
                .map(|(tx, rx, _ack)| (tx, rx))
                .map_err(|e| e.to_string())
        });
        Ok(Broker {
            link_factory,
            shutdown,
            threads,
            v4_addr,
            v5_addr,
            tls_addr,
            metrics,
            hold_acks: config.hold_acks,
        })
    }

    /// An in-process link to the router (no TCP, no authentication).
    pub fn link(&self, client_id: &str) -> Result<(LinkTx, LinkRx), BrokerError> {
        (self.link_factory)(client_id).map_err(|message| BrokerError::Link {
            client_id: client_id.to_string(),
            message,
        })
    }

    /// Ingest's source: a link subscribed to [`INGEST_FILTER`]. When the broker holds
    /// PUBACKs, the source releases them as ingest reports messages persisted.
    pub fn inbound(
        &self,
        client_id: &str,
        counters: SourceCounters,
    ) -> Result<BrokerSource, BrokerError> {
        let (mut tx, rx) = self.link(client_id)?;
        tx.subscribe(INGEST_FILTER).map_err(|e| BrokerError::Link {
            client_id: client_id.to_string(),
            message: format!("cannot subscribe: {e}"),
        })?;
        Ok(BrokerSource::new(tx, rx, counters, self.hold_acks))
    }

    pub fn metrics(&self) -> &BrokerMetrics {
        &self.metrics
    }

    /// Close the listeners; connected clients are dropped with their runtime.
    pub fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn check_bind(key: &'static str, addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let l = std::net::TcpListener::bind(addr).map_err(|error| BrokerError::Bind {
        key,
        addr,
        error,
    })?;
    // Port 0 asks for an ephemeral port: resolve it now so rumqttd binds the same one.
    let resolved = l
        .local_addr()
        .map_err(|error| BrokerError::Bind { key, addr, error })?;
    drop(l);
    Ok(resolved)
}

fn wait_listening(
    key: &'static str,
    addr: SocketAddr,
    thread: &JoinHandle<()>,
) -> Result<(), BrokerError> {
    let target = if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if std::net::TcpStream::connect_timeout(&target, std::time::Duration::from_millis(200))
            .is_ok()
        {
            return Ok(());
        }
        if thread.is_finished() || std::time::Instant::now() > deadline {
            return Err(BrokerError::Bind {
                key,
                addr,
                error: std::io::Error::other("listener did not come up (port taken?)"),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

fn spawn_server<P: Protocol + Clone + Send + 'static>(
    mut server: Server<P>,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, BrokerError> {
    std::thread::Builder::new()
        .name("mqtt-listener".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    error!(error = %e, "cannot build listener runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                tokio::select! {
                    r = server.start(LinkType::Remote) => {
                        if let Err(e) = r {
                            error!(error = %e, "mqtt listener stopped");
                        }
                    }
                    _ = shutdown.wait_for(|v| *v) => {}
                }
            });
            // Dropping the runtime here closes every connection of this listener.
        })
        .map_err(BrokerError::Thread)
}
