//! Liveness, readiness and the Prometheus text of every stage (no token).

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Reply of `GET /healthz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// Reply of `GET /readyz`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// Each check (`questdb` and the hub's probes): `ok`, or why it is not ready.
    pub checks: BTreeMap<String, String>,
    pub ready: bool,
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "the process answers", body = Health)))]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: QuestDB, SQLite and broker checks.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "ready, with each check", body = Readiness),
        (status = 503, description = "a check failed; each check says why", body = Readiness)))]
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let mut checks = BTreeMap::new();
    let qdb = s.questdb.ping().await;
    let mut ready = qdb;
    checks.insert(
        "questdb".to_string(),
        if qdb { "ok" } else { "unreachable" }.to_string(),
    );
    for (name, probe) in &s.probes {
        let r = probe();
        ready &= r.is_ok();
        checks.insert((*name).into(), r.err().unwrap_or_else(|| "ok".into()));
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(Readiness { checks, ready })).into_response()
}

/// Prometheus/OpenMetrics text of every stage.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "OpenMetrics text", body = String,
        content_type = "application/openmetrics-text")))]
pub(crate) async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &s.metrics.lock())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
