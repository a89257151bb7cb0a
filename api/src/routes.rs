use crate::auth::Principal;
use crate::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use steward_estate::RejectReason;
use steward_estate::{validate_id, DeviceKind, DeviceUpsert, Registry, Role};
use steward_rules::DeviceStates;
use steward_storage::questdb::QuestDbClient;

use crate::{auth, openapi, reports, resident, tickets};

/// `[api]` section of the hub configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: std::net::SocketAddr,
    /// Bearer token of the admin; empty means one is generated at start-up and printed.
    pub admin_token: String,
    /// Limits of the public resident report endpoint.
    pub public_reports: crate::resident::PublicReportsConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: String::new(),
            public_reports: crate::resident::PublicReportsConfig::default(),
        }
    }
}

impl ApiConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            e.push(
                "api.admin_token: must be at least 16 characters (or empty to generate one)".into(),
            );
        }
        e.extend(self.public_reports.validate("api.public_reports"));
        e
    }
}

/// Checks `/readyz` runs; each returns a reason when not ready.
pub type ReadinessProbe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub states: DeviceStates,
    pub questdb: QuestDbClient,
    pub metrics: Arc<Mutex<prometheus_client::registry::Registry>>,
    pub admin_token: Arc<str>,
    pub probes: Vec<(&'static str, ReadinessProbe)>,
    /// Tickets of the rules stage.
    pub tickets: steward_tickets::TicketDesk,
    pub api_metrics: crate::ApiMetrics,
    /// Rate limits and counters of the public resident report endpoint.
    pub resident: crate::resident::ResidentIntake,
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/compounds", get(list_compounds))
        .route("/devices", get(list_devices).post(upsert_device))
        .route("/devices/{id}", get(get_device).delete(retire_device))
        .route("/devices/{id}/state", get(device_state))
        .route("/devices/{id}/rotate-secret", post(rotate_secret))
        .route("/rejects", get(list_rejects))
        .route("/tickets", get(tickets::list_tickets))
        .route("/tickets.csv", get(tickets::tickets_csv))
        .route("/tickets/{id}", get(tickets::get_ticket))
        .route("/tickets/{id}/transition", post(tickets::transition_ticket))
        .route("/reports/rating", get(reports::rating))
        .route("/reports/sla", get(reports::sla))
        .route("/tokens", get(auth::list_tokens).post(auth::create_token))
        .route("/tokens/{id}", delete(auth::revoke_token))
        .route("/public/reports", post(resident::create_report))
        .route("/alerts/stream", get(crate::live::alert_stream))
        .route("/devices/{id}/history", get(crate::history::device_history))
        .route("/devices/{id}/events", get(crate::history::device_events))
        .route(
            "/compounds/{id}/history",
            get(crate::history::compound_history),
        )
        .route("/liveness", get(crate::dashboard::liveness));
    Router::new()
        .merge(crate::dashboard::routes())
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi::openapi_json))
        .route("/api/docs", get(openapi::docs_page))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            record_latency,
        ))
        .with_state(state)
}

async fn record_latency(
    State(s): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    s.api_metrics
        .requests
        .get_or_create(&crate::metrics::RequestLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .observe(start.elapsed().as_secs_f64());
    resp
}

/// Query strings are parsed into a map first so an unknown or malformed parameter gets a
/// 400 that names it instead of axum's generic rejection.
pub(crate) fn params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = q
        .keys()
        .find(|k| !allowed.contains(&k.as_str()) && *k != crate::auth::ACCESS_TOKEN_PARAM)
    {
        return Err(ApiError::BadRequest(format!(
            "unknown query parameter `{}`; allowed: {}",
            k.chars().take(64).collect::<String>(),
            allowed.join(", ")
        )));
    }
    Ok(())
}

/// `limit`, when given: 1 to 1000 rows.
pub(crate) fn limit_param(q: &HashMap<String, String>) -> Result<Option<u32>, ApiError> {
    q.get("limit")
        .map(|l| match l.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(ApiError::BadRequest(
                "limit: expected an integer between 1 and 1000".into(),
            )),
        })
        .transpose()
}

pub(crate) fn id_param(name: &str, v: &str) -> Result<(), ApiError> {
    validate_id(v).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", tag = "health",
    responses((status = 200, description = "`{\"status\": \"ok\"}`")))]
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: QuestDB, SQLite and broker checks.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "ready, with each check"),
        (status = 503, description = "a check failed; each check says why")))]
pub(crate) async fn readyz(State(s): State<AppState>) -> Response {
    let mut checks = serde_json::Map::new();
    let mut ready = true;
    let qdb = s.questdb.ping().await;
    ready &= qdb;
    checks.insert(
        "questdb".into(),
        json!(if qdb { "ok" } else { "unreachable" }),
    );
    for (name, probe) in &s.probes {
        let r = probe();
        ready &= r.is_ok();
        checks.insert(
            (*name).into(),
            json!(r.err().unwrap_or_else(|| "ok".into())),
        );
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(json!({"ready": ready, "checks": checks}))).into_response()
}

/// Prometheus/OpenMetrics text of every stage.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text")))]
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

/// Compounds with their responsible station (admin, manager, crew: scoped).
#[utoipa::path(get, path = "/api/v1/compounds", tag = "estate",
    responses((status = 200, description = "`{\"compounds\": [...]}`"), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn list_compounds(
    who: Principal,
    State(s): State<AppState>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let reg = s.registry.clone();
    let mut compounds = blocking(move || Ok(reg.compounds()?)).await?;
    compounds.retain(|c| who.can_see_compound(&c.id));
    Ok(Json(json!({ "compounds": compounds })))
}

fn device_json(d: &steward_estate::DeviceInfo) -> Value {
    json!({
        "id": &*d.id,
        "kind": d.kind,
        "vendor": d.vendor,
        "building": d.building,
        "compound": &*d.compound,
        "station": d.station,
        "location": d.location,
        "gateway": d.gateway,
        "report_interval_s": d.report_interval_s,
        "retired": d.retired,
    })
}

/// Devices (every role, scoped: a manager's compounds, a crew's station, a vendor's own).
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(
        ("kind" = Option<String>, Query, description = "smoke, pump, lift or gate"),
        ("compound" = Option<String>, Query, description = "compound id (must be in scope)"),
        ("include_retired" = Option<bool>, Query, description = "also retired devices"),
    ),
    responses((status = 200, description = "`{\"devices\": [...]}`"), (status = 400), (status = 401),
        (status = 403, description = "compound outside the token's scope")),
    security(("bearer" = [])))]
pub(crate) async fn list_devices(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params(&q, &["kind", "compound", "include_retired"])?;
    let kind = q
        .get("kind")
        .map(|k| k.parse::<DeviceKind>())
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("kind: {e}")))?;
    if let Some(c) = q.get("compound") {
        id_param("compound", c)?;
        // A vendor's devices are filtered by vendor anyway; a compound narrows them.
        if who.role != Role::Vendor {
            who.check(who.can_see_compound(c), &format!("compound `{c}`"))?;
        }
    }
    let include_retired = match q.get("include_retired").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "include_retired: expected true or false, got `{}`",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    let dir = s.registry.directory();
    let mut devices: Vec<_> = dir
        .devices
        .values()
        .filter(|d| who.can_see_device(d))
        .filter(|d| include_retired || !d.retired)
        .filter(|d| kind.is_none_or(|k| d.kind == k))
        .filter(|d| q.get("compound").is_none_or(|c| *d.compound == **c))
        .collect();
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(json!({
        "devices": devices.iter().map(|d| device_json(d)).collect::<Vec<_>>()
    })))
}

/// One device (scoped as the list).
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "the device"), (status = 400), (status = 401),
        (status = 403, description = "outside the token's scope"), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn get_device(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = visible_device(&who, &s, &id)?;
    Ok(Json(device_json(&d)))
}

/// A registered device by its (validated) id, or a 400/404 naming it.
pub(crate) fn find_device(s: &AppState, id: &str) -> Result<steward_estate::DeviceInfo, ApiError> {
    id_param("id", id)?;
    s.registry
        .directory()
        .device(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("device `{id}` not found")))
}

/// [`find_device`], then 403 when the caller may not see it.
fn visible_device(
    who: &Principal,
    s: &AppState,
    id: &str,
) -> Result<steward_estate::DeviceInfo, ApiError> {
    let d = find_device(s, id)?;
    who.check(who.can_see_device(&d), &format!("device `{id}`"))?;
    Ok(d)
}

/// Liveness, last seen and the latest value of each metric (scoped as the list).
#[utoipa::path(get, path = "/api/v1/devices/{id}/state", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "liveness and latest state"), (status = 400),
        (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn device_state(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = visible_device(&who, &s, &id)?;
    let now = steward_estate::clock::now_ms();
    let state = s.states.get(&id);
    let liveness = state
        .as_ref()
        .map(|st| st.liveness(now, d.report_interval_s))
        .unwrap_or(steward_rules::Liveness::Unknown);
    Ok(Json(json!({
        "device_id": id,
        "liveness": liveness,
        "state": state,
    })))
}

/// Create or update a device (admin; vendor for its own vendor name and devices). A new
/// device that does not publish through a gateway gets its secret in the reply, once.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices",
    request_body = crate::openapi::DeviceUpsertDoc,
    responses((status = 201, description = "created; `secret` shown once"),
        (status = 200, description = "updated"), (status = 400), (status = 401),
        (status = 403, description = "another vendor's device or vendor name")),
    security(("bearer" = [])))]
pub(crate) async fn upsert_device(
    who: Principal,
    State(s): State<AppState>,
    body: Result<Json<DeviceUpsert>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    who.require(&[Role::Vendor])?;
    let Json(body) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    if who.role == Role::Vendor {
        who.check(
            who.scope.vendor.as_deref() == Some(body.vendor.as_str()),
            &format!(
                "vendor `{}`",
                body.vendor.chars().take(64).collect::<String>()
            ),
        )?;
        if let Some(existing) = s.registry.directory().device(&body.id) {
            who.check(
                who.can_see_device(existing),
                &format!("device `{}`", existing.id),
            )?;
        }
    }
    let reg = s.registry.clone();
    let id = body.id.clone();
    let issued = blocking(move || Ok(reg.upsert_device(&body)?)).await?;
    let dir = s.registry.directory();
    let mut out = dir.device(&id).map(device_json).unwrap_or(Value::Null);
    let status = if let Some(secret) = issued {
        out["secret"] = json!(secret);
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(out)).into_response())
}

/// Retire a device (admin; vendor for its own).
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "retired"), (status = 400), (status = 401),
        (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn retire_device(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Vendor])?;
    visible_device(&who, &s, &id)?;
    let reg = s.registry.clone();
    let id2 = id.clone();
    blocking(move || Ok(reg.retire_device(&id2)?)).await?;
    Ok(Json(json!({"id": id, "retired": true})))
}

/// Issue a new device secret; the old one stops working (admin; vendor for its own).
#[utoipa::path(post, path = "/api/v1/devices/{id}/rotate-secret", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "`{\"id\", \"secret\"}`, the secret shown once"),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_secret(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Vendor])?;
    visible_device(&who, &s, &id)?;
    let reg = s.registry.clone();
    let id2 = id.clone();
    let secret = blocking(move || Ok(reg.rotate_secret(&id2)?)).await?;
    Ok(Json(json!({"id": id, "secret": secret})))
}

/// Why payloads were refused, newest first (admin; manager and vendor for their devices;
/// rejects of unknown device ids only for an admin).
#[utoipa::path(get, path = "/api/v1/rejects", tag = "devices",
    params(
        ("device_id" = Option<String>, Query, description = "one device (must be in scope)"),
        ("reason" = Option<String>, Query, description = "reject reason"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses((status = 200, description = "`{\"rejects\": [...]}`"), (status = 400), (status = 401),
        (status = 403), (status = 503, description = "QuestDB unreachable")),
    security(("bearer" = [])))]
pub(crate) async fn list_rejects(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    who.require(&[Role::Manager, Role::Vendor])?;
    params(&q, &["device_id", "reason", "limit"])?;
    // Every value that reaches SQL is validated to a closed alphabet first.
    let mut filters = Vec::new();
    if let Some(d) = q.get("device_id") {
        id_param("device_id", d)?;
        if !who.is_admin() {
            let dev = s.registry.directory().device(d).cloned();
            who.check(
                dev.is_some_and(|dev| who.can_see_device(&dev)),
                &format!("device `{d}`"),
            )?;
        }
        filters.push(format!("device_id = '{d}'"));
    } else if !who.is_admin() {
        let dir = s.registry.directory();
        let mut ids: Vec<&str> = dir
            .devices
            .values()
            .filter(|d| who.can_see_device(d))
            .map(|d| &*d.id)
            .collect();
        if ids.is_empty() {
            return Ok(Json(json!({ "rejects": [] })));
        }
        // The id list travels in the query URL, which QuestDB bounds (64 KiB by default).
        if ids.len() > MAX_REJECT_SCOPE {
            return Err(ApiError::BadRequest(format!(
                "device_id: required when the token covers more than {MAX_REJECT_SCOPE} devices"
            )));
        }
        ids.sort_unstable();
        // Registry ids passed validate_id, so they cannot close the quotes.
        filters.push(format!("device_id IN ('{}')", ids.join("','")));
    }
    if let Some(r) = q.get("reason") {
        let reason = RejectReason::ALL
            .iter()
            .find(|x| x.as_str() == r)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "reason: unknown reason `{}`",
                    r.chars().take(64).collect::<String>()
                ))
            })?;
        filters.push(format!("reason = '{}'", reason.as_str()));
    }
    let limit = limit_param(&q)?.unwrap_or(100);
    let where_clause = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let sql = format!(
        "SELECT ts, device_id, reason, topic, detail, payload, payload_bytes FROM rejects{where_clause} ORDER BY ts DESC LIMIT {limit}"
    );
    let result = s.questdb.exec(&sql).await.map_err(|e| {
        ApiError::Unavailable(format!(
            "history store unavailable: {}",
            short(&e.to_string())
        ))
    })?;
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    let rows: Vec<Value> = result
        .dataset
        .iter()
        .map(|row| {
            Value::Object(
                names
                    .iter()
                    .zip(row)
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect(),
            )
        })
        .collect();
    Ok(Json(json!({ "rejects": rows })))
}

/// Devices a scoped rejects query may name at once.
const MAX_REJECT_SCOPE: usize = 2000;

pub(crate) fn short(s: &str) -> &str {
    s.split(':').next().unwrap_or(s)
}
