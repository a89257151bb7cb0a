//! The API stage: HTTP for the people around the hub. It serves the estate and devices
//! (list, get, latest state, create/update, retire, rotate secrets), the rejects a vendor
//! needs to see, tickets (filtered lists, CSV export, audit trail, lifecycle moves), SLA
//! and rating reports, public resident reports, API tokens with roles and scopes, the
//! live alert stream (SSE, resumable), device and compound history from QuestDB, the web
//! dashboard (static assets embedded in the binary) and what it needs to know (the
//! caller's role, the metric catalogue with units, place names next to ids), the one-time
//! acknowledgement page notifications link to, a ticket's deliveries and the dead letters,
//! the OpenAPI document, health and readiness, and Prometheus metrics for every stage.
//!
//! Every `/api/v1` endpoint but the public report resolves the caller to a
//! [`auth::Principal`] and restricts what it returns to the principal's scope. Every JSON
//! reply is a typed struct with an OpenAPI schema, so `/api/openapi.json` describes what
//! the handlers send; `tests/openapi.rs` fails when a route and the document disagree.
//!
//! The API reads the registry, the rules' device state and QuestDB, moves tickets through
//! the rules' `TicketDesk` manages tokens and maintenance windows in the registry; it may not decode device
//! payloads, write telemetry, or change a ticket other than through the desk.
//!
//! Layout, with imports pointing one way: `error`, `metrics`, `intake` and `schema`
//! import nothing of the crate, `params` only the error type; `state` and `auth` build on
//! them, `names` (display names of places) on `state`; one module per resource holds its
//! handlers and reply types (`devices`, `estate`, `rejects`, `tickets`, `reports`,
//! `yearly`, `resident`, `tokens`, `windows`, `history`, `live`, `dashboard`, `session`,
//! `catalog`, `notifications`, `health`; the dispatcher's desk in `dispatch`, residents
//! following their reports in `tracking`, the report form page and its QR codes in `qr`);
//! `openapi` lists the handlers and `router` maps paths to them.
//! No module imports the router.

pub mod auth;
mod captain;
mod catalog;
mod config;
mod crew_app;
mod dashboard;
mod devices;
mod dispatch;
mod error;
mod estate;
mod health;
mod history;
mod intake;
mod live;
mod metrics;
mod names;
mod notifications;
pub mod openapi;
mod params;
mod people;
mod photo_store;
mod photos;
mod qr;
mod rejects;
mod reports;
pub mod resident;
mod rounds;
mod router;
mod schema;
mod session;
mod state;
mod tickets;
mod tokens;
mod tracking;
mod windows;
mod yearly;

pub use auth::{Principal, Scope};
pub use config::ApiConfig;
pub use error::ApiError;
pub use intake::{PublicReportsConfig, ResidentIntake};
pub use live::{in_scope, StreamFilter};
pub use metrics::ApiMetrics;
pub use photo_store::PhotoStore;
pub use router::app;
pub use state::{AppState, ReadinessProbe};

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
    // Peer addresses feed the per-client limit of the public report endpoint.
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
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
