//! The TLS listener for devices: TLS is terminated here and the plain MQTT stream is
//! passed to the broker's own main listener (MQTT 3.1.1 and 5) on loopback, where the guard and the
//! registry authentication apply as for any other connection.
//!
//! Why not rumqttd's own TLS: it performs each TLS handshake inside its accept loop, with
//! no timeout, so one client that opens a socket and never says hello stops every other
//! device from connecting. Here each handshake runs in its own task with a deadline.

use crate::BrokerError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info};

/// A client has this long to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Read the certificate chain and key; errors name the config key at fault.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, BrokerError> {
    let bad = |key: &'static str, path: &Path, message: String| BrokerError::Tls {
        key,
        message: format!("{}: {message}", path.display()),
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("tls_cert", cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("tls_cert", cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("tls_cert", cert, "no PEM certificate found".into()));
    }
    let private =
        PrivateKeyDer::from_pem_file(key).map_err(|e| bad("tls_key", key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("tls_cert", cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, private)
        .map_err(|e| {
            bad(
                "tls_key",
                key,
                format!("does not match the certificate: {e}"),
            )
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Bind `listen` and serve TLS until `shutdown`, forwarding to `plain` (the v4 listener).
pub(crate) fn spawn(
    listen: SocketAddr,
    acceptor: TlsAcceptor,
    plain: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, JoinHandle<()>), BrokerError> {
    let bind_err = |error| BrokerError::Bind {
        key: "tls_listen",
        addr: listen,
        error,
    };
    let std_listener = std::net::TcpListener::bind(listen).map_err(bind_err)?;
    let addr = std_listener.local_addr().map_err(bind_err)?;
    std_listener.set_nonblocking(true).map_err(bind_err)?;
    let target = if plain.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], plain.port()))
    } else {
        plain
    };
    let handle = std::thread::Builder::new()
        .name("mqtt-tls".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    error!(error = %e, "cannot build tls listener runtime");
                    return;
                }
            };
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(std_listener) {
                    Ok(l) => l,
                    Err(e) => {
                        error!(error = %e, "tls listener");
                        return;
                    }
                };
                info!(%addr, "mqtt tls listening");
                loop {
                    tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok((stream, peer)) => {
                                tokio::spawn(serve(stream, peer, acceptor.clone(), target));
                            }
                            Err(e) => debug!(error = %e, "tls accept"),
                        },
                        _ = shutdown.wait_for(|v| *v) => break,
                    }
                }
            });
        })
        .map_err(BrokerError::Thread)?;
    Ok((addr, handle))
}

async fn serve(stream: TcpStream, peer: SocketAddr, acceptor: TlsAcceptor, target: SocketAddr) {
    let mut tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "tls handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "tls handshake timed out");
            return;
        }
    };
    let mut plain = match TcpStream::connect(target).await {
        Ok(s) => s,
        Err(e) => {
            error!(error = %e, "cannot reach the mqtt listener behind tls");
            return;
        }
    };
    let _ = plain.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
}
