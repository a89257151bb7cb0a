//! The web dashboard: plain HTML, CSS and JavaScript compiled into the binary with
//! `include_str!`, so the hub serves it with no separate server and no build step. The
//! pages call the same REST endpoints and alert stream as any other client, with the
//! token the user types in.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::names::{name_of, place_names};
use crate::schema::{DeviceKindDoc, LivenessDoc};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use steward_estate::DeviceKind;
use steward_rules::Liveness;
use utoipa::ToSchema;

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the dashboard: name, content type, body. The scripts are ES modules
/// importing each other by these names.
const ASSETS: [(&str, &str, &str); 12] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("../assets/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
    ("app.js", JS, include_str!("../assets/app.js")),
    ("core.js", JS, include_str!("../assets/core.js")),
    ("i18n.js", JS, include_str!("../assets/i18n.js")),
    ("chart.js", JS, include_str!("../assets/chart.js")),
    ("estate.js", JS, include_str!("../assets/estate.js")),
    ("tickets.js", JS, include_str!("../assets/tickets.js")),
    ("reports.js", JS, include_str!("../assets/reports.js")),
    ("people.js", JS, include_str!("../assets/people.js")),
    ("desk.js", JS, include_str!("../assets/desk.js")),
];

/// Content-Security-Policy for the dashboard: only its own scripts, styles and API, so a
/// value that slipped through escaping still could not run script.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::permanent("/dashboard/") }))
        .route(
            "/dashboard",
            get(|| async { Redirect::permanent("/dashboard/") }),
        )
        .route("/dashboard/", get(|| async { asset("index.html") }))
        .route("/dashboard/{file}", get(dashboard_file))
}

async fn dashboard_file(Path(file): Path<String>) -> Response {
    asset(&file)
}

fn asset(file: &str) -> Response {
    let Some((_, ty, body)) = ASSETS.iter().find(|(name, _, _)| *name == file) else {
        return ApiError::NotFound("no such dashboard file".into()).into_response();
    };
    let mut r = (*body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ty));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Assets change with the binary; revalidating each load keeps a new hub's pages fresh.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// One device in `GET /api/v1/liveness`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceLiveness {
    pub building: String,
    pub building_name: String,
    pub compound: String,
    pub compound_name: String,
    pub id: String,
    #[schema(value_type = DeviceKindDoc)]
    pub kind: DeviceKind,
    /// Newest event time of anything heard from the device (ms since the epoch); null
    /// when nothing was heard since the hub started.
    #[schema(required = true)]
    pub last_seen_ms: Option<i64>,
    #[schema(value_type = LivenessDoc)]
    pub liveness: Liveness,
    pub location: String,
    pub vendor: String,
}

/// Reply of `GET /api/v1/liveness`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LivenessList {
    /// By id.
    pub devices: Vec<DeviceLiveness>,
}

/// `GET /api/v1/liveness`: every active device's liveness in one call, so the estate page
/// can count device status per compound without a request per device.
#[utoipa::path(get, path = "/api/v1/liveness", tag = "devices",
    responses((status = 200, description = "every visible device's liveness, last seen and place",
            body = LivenessList),
        (status = 401)),
    security(("bearer" = [])))]
pub(crate) async fn liveness(
    p: Principal,
    State(s): State<AppState>,
) -> Result<Json<LivenessList>, ApiError> {
    let now = steward_estate::clock::now_ms();
    let names = place_names(&s).await?;
    let dir = s.registry.directory();
    let mut devices: Vec<DeviceLiveness> = dir
        .devices
        .values()
        .filter(|d| !d.retired && p.can_see_device(d))
        .map(|d| {
            let state = s.states.get(&d.id);
            let l = state
                .as_ref()
                .map(|st| st.liveness(now, d.report_interval_s))
                .unwrap_or(Liveness::Unknown);
            DeviceLiveness {
                building: d.building.clone(),
                building_name: name_of(&names.buildings, &d.building),
                compound: d.compound.to_string(),
                compound_name: name_of(&names.compounds, &d.compound),
                id: d.id.to_string(),
                kind: d.kind,
                last_seen_ms: state.and_then(|st| st.last_seen_ms),
                liveness: l,
                location: d.location.clone(),
                vendor: d.vendor.clone(),
            }
        })
        .collect();
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(LivenessList { devices }))
}
