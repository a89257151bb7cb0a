use crate::ApiError;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use steward_estate::{validate_id, DeviceKind, DeviceUpsert, Registry};
use steward_ingest::questdb::QuestDbClient;
use steward_ingest::RejectReason;
use steward_rules::DeviceStates;
use subtle::ConstantTimeEq;

/// `[api]` section of the hub configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: std::net::SocketAddr,
    /// Bearer token of the admin; empty means one is generated at start-up and printed.
    pub admin_token: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: String::new(),
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
    pub tickets: steward_rules::TicketDesk,
    pub api_metrics: crate::ApiMetrics,
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/compounds", get(list_compounds))
        .route("/devices", get(list_devices).post(upsert_device))
        .route("/devices/{id}", get(get_device).delete(retire_device))
        .route("/devices/{id}/state", get(device_state))
        .route("/devices/{id}/rotate-secret", post(rotate_secret))
        .route("/rejects", get(list_rejects))
        .route("/tickets", get(list_tickets))
        .route("/tickets/{id}", get(get_ticket))
        .route("/tickets/{id}/transition", post(transition_ticket))
        .route("/reports/rating", get(rating))
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
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
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

/// Whether `token` is the admin token (constant-time).
pub(crate) fn token_ok(state: &AppState, token: &str) -> bool {
    token.as_bytes().ct_eq(state.admin_token.as_bytes()).into()
}

/// A request that presented the admin token.
pub(crate) struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or(ApiError::Unauthorized)?;
        if token_ok(state, token) {
            Ok(Admin)
        } else {
            Err(ApiError::Unauthorized)
        }
    }
}

/// Query strings are parsed into a map first so an unknown or malformed parameter gets a
/// 400 that names it instead of axum's generic rejection.
pub(crate) fn params(q: &HashMap<String, String>, allowed: &[&str]) -> Result<(), ApiError> {
    if let Some(k) = q.keys().find(|k| !allowed.contains(&k.as_str())) {
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

async fn readyz(State(s): State<AppState>) -> Response {
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

async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
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

async fn list_compounds(_: Admin, State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let reg = s.registry.clone();
    let compounds = blocking(move || Ok(reg.compounds()?)).await?;
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

async fn list_devices(
    _: Admin,
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
        .filter(|d| include_retired || !d.retired)
        .filter(|d| kind.is_none_or(|k| d.kind == k))
        .filter(|d| q.get("compound").is_none_or(|c| *d.compound == **c))
        .collect();
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(json!({
        "devices": devices.iter().map(|d| device_json(d)).collect::<Vec<_>>()
    })))
}

async fn get_device(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = find_device(&s, &id)?;
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

async fn device_state(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let d = find_device(&s, &id)?;
    let now = steward_ingest::pipeline::now_ms();
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

async fn upsert_device(
    _: Admin,
    State(s): State<AppState>,
    body: Result<Json<DeviceUpsert>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
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

async fn retire_device(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    id_param("id", &id)?;
    let reg = s.registry.clone();
    let id2 = id.clone();
    blocking(move || Ok(reg.retire_device(&id2)?)).await?;
    Ok(Json(json!({"id": id, "retired": true})))
}

async fn rotate_secret(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    id_param("id", &id)?;
    let reg = s.registry.clone();
    let id2 = id.clone();
    let secret = blocking(move || Ok(reg.rotate_secret(&id2)?)).await?;
    Ok(Json(json!({"id": id, "secret": secret})))
}

async fn list_rejects(
    _: Admin,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params(&q, &["device_id", "reason", "limit"])?;
    // Every value that reaches SQL is validated to a closed alphabet first.
    let mut filters = Vec::new();
    if let Some(d) = q.get("device_id") {
        id_param("device_id", d)?;
        filters.push(format!("device_id = '{d}'"));
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

pub(crate) fn short(s: &str) -> &str {
    s.split(':').next().unwrap_or(s)
}

fn ticket_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::BadRequest("id: expected a positive integer".into()))
}

fn time_param(name: &str, v: &str) -> Result<i64, ApiError> {
    v.parse::<i64>().ok().filter(|t| *t >= 0).ok_or_else(|| {
        ApiError::BadRequest(format!("{name}: expected milliseconds since the epoch"))
    })
}

async fn list_tickets(
    _: Admin,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params(
        &q,
        &[
            "station",
            "compound",
            "device_id",
            "rule_id",
            "priority",
            "state",
            "active",
            "from",
            "to",
            "limit",
        ],
    )?;
    let mut f = steward_rules::TicketFilter::default();
    for (name, slot) in [
        ("station", &mut f.station),
        ("compound", &mut f.compound),
        ("device_id", &mut f.device_id),
        ("rule_id", &mut f.rule_id),
    ] {
        if let Some(v) = q.get(name) {
            id_param(name, v)?;
            *slot = Some(v.clone());
        }
    }
    if let Some(p) = q.get("priority") {
        f.priority = Some(
            steward_rules::Priority::parse(p)
                .ok_or_else(|| ApiError::BadRequest("priority: expected P1, P2 or P3".into()))?,
        );
    }
    if let Some(st) = q.get("state") {
        f.state = Some(steward_rules::TicketState::parse(st).ok_or_else(|| {
            ApiError::BadRequest(
                "state: expected open, acknowledged, dispatched, on_site, resolved, closed, on_hold or cancelled".into(),
            )
        })?);
    }
    f.active_only = match q.get("active").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "active: expected true or false".into(),
            ))
        }
    };
    if let Some(v) = q.get("from") {
        f.from_ms = Some(time_param("from", v)?);
    }
    if let Some(v) = q.get("to") {
        f.to_ms = Some(time_param("to", v)?);
    }
    f.limit = limit_param(&q)?;
    let desk = s.tickets.clone();
    let tickets = blocking(move || Ok(desk.store().list(&f)?)).await?;
    Ok(Json(json!({ "tickets": tickets })))
}

async fn get_ticket(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = ticket_id(&id)?;
    let desk = s.tickets.clone();
    let detail = blocking(move || Ok(desk.store().get(id)?)).await?;
    Ok(Json(json!(detail)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TransitionBody {
    /// Target state: acknowledged, dispatched, on_site, resolved, closed, on_hold, cancelled.
    to: String,
    /// Who does it (crew member, dispatcher).
    actor: String,
    #[serde(default)]
    note: String,
}

async fn transition_ticket(
    _: Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<TransitionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    let id = ticket_id(&id)?;
    let Json(b) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    let to = steward_rules::TicketState::parse(&b.to).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "to: unknown state `{}`",
            b.to.chars().take(32).collect::<String>()
        ))
    })?;
    if b.actor.trim().is_empty() || b.actor.len() > 64 {
        return Err(ApiError::BadRequest("actor: 1 to 64 characters".into()));
    }
    if b.note.len() > 2000 {
        return Err(ApiError::BadRequest("note: at most 2000 characters".into()));
    }
    let desk = s.tickets.clone();
    let ticket = blocking(move || Ok(desk.transition(id, to, &b.actor, &b.note)?)).await?;
    Ok(Json(json!(ticket)))
}

async fn rating(
    _: Admin,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params(&q, &["of", "month"])?;
    let of = q
        .get("of")
        .ok_or_else(|| ApiError::BadRequest("of: required (a station or compound id)".into()))?
        .clone();
    id_param("of", &of)?;
    let month = q
        .get("month")
        .ok_or_else(|| ApiError::BadRequest("month: required (YYYY-MM)".into()))?
        .clone();
    let desk = s.tickets.clone();
    let r = blocking(move || Ok(desk.store().rating(&of, &month)?)).await?;
    Ok(Json(json!(r)))
}
