//! The API stage: HTTP for the people around the hub. This slice serves the estate and
//! devices (list, get, latest state, create/update, retire, rotate secrets), the rejects a
//! vendor needs to see, tickets, the live alert stream (SSE, resumable), device and
//! compound history from QuestDB, the web dashboard (static assets embedded in the
//! binary), health and readiness, and Prometheus metrics for every stage.
//!
//! The API reads the registry, the rules' device state and QuestDB; it may not decode
//! device payloads or write telemetry.

mod dashboard;
mod error;
mod history;
mod live;
mod metrics;
mod routes;

pub use error::ApiError;
pub use live::{in_scope, StreamFilter};
pub use metrics::ApiMetrics;
pub use routes::{app, ApiConfig, AppState, ReadinessProbe};

use std::net::SocketAddr;
use tokio::net::TcpListener;

/// Serve `app` on an already bound listener until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Alert streams never finish on their own; they end when the server stops so that a
    // graceful shutdown does not wait for connected dashboards.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let router = app(state).layer(axum::Extension(live::StreamStop(stop_rx)));
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await
}

/// Bind the API listener; the error names the config key.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ApiError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| ApiError::Startup(format!("api.listen: cannot listen on {addr}: {e}")))
}
