//! Every path the hub serves, mapped to its handler, with the latency middleware. Nothing
//! in the crate imports this module but the crate root: handlers know their state, never
//! the router.

use crate::error::ApiError;
use crate::metrics::RequestLabels;
use crate::state::AppState;
use crate::{
    captain, catalog, crew_app, dashboard, devices, estate, health, history, live, notifications,
    openapi, people, photos, rejects, reports, resident, rounds, session, tickets, tokens, windows,
    yearly,
};
// The dispatcher's desk and resident tracking (issue 14).
use crate::{dispatch, qr, tracking};
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::Router;

/// The API, the dashboard, health and metrics, the OpenAPI document; every other path is
/// a JSON 404.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/compounds", get(estate::list_compounds))
        .route(
            "/devices",
            get(devices::list_devices).post(devices::upsert_device),
        )
        .route(
            "/devices/{id}",
            get(devices::get_device).delete(devices::retire_device),
        )
        .route("/devices/{id}/state", get(devices::device_state))
        .route("/devices/{id}/rotate-secret", post(devices::rotate_secret))
        .route("/rejects", get(rejects::list_rejects))
        .route("/tickets", get(tickets::list_tickets))
        .route("/tickets.csv", get(tickets::tickets_csv))
        .route("/tickets/{id}", get(tickets::get_ticket))
        .route("/tickets/{id}/transition", post(tickets::transition_ticket))
        .route(
            "/tickets/{id}/photos",
            get(photos::list_photos)
                .post(photos::upload_photo)
                .layer(DefaultBodyLimit::max(photos::UPLOAD_BODY_LIMIT)),
        )
        .route("/tickets/{id}/photos/{sha}", get(photos::get_photo))
        .route("/tickets/{id}/photos/{sha}/thumb", get(photos::get_thumb))
        .route("/reports/rating", get(reports::rating))
        .route("/reports/sla", get(reports::sla))
        .route("/reports/yearly", get(yearly::yearly_report))
        .route(
            "/tokens",
            get(tokens::list_tokens).post(tokens::create_token),
        )
        .route("/tokens/{id}", delete(tokens::revoke_token))
        .route("/public/reports", post(resident::create_report))
        .route("/alerts/stream", get(live::alert_stream))
        .route("/devices/{id}/history", get(history::device_history))
        .route("/devices/{id}/events", get(history::device_events))
        .route("/compounds/{id}/history", get(history::compound_history))
        .route("/liveness", get(dashboard::liveness))
        .route("/me", get(session::me))
        .route("/catalog", get(catalog::get_catalog))
        .route(
            "/tickets/{id}/deliveries",
            get(notifications::ticket_deliveries),
        )
        .route(
            "/notifications/dead-letters",
            get(notifications::dead_letters),
        )
        .route("/notifications/{id}/retry", post(notifications::retry))
        .route("/escalation/policy", get(notifications::policy))
        .route(
            "/maintenance-windows",
            get(windows::list_windows).post(windows::create_window),
        )
        .route("/maintenance-windows/{id}", delete(windows::delete_window))
        .route(
            "/maintenance-windows/{id}/suppressed",
            get(windows::window_suppressed),
        )
        .route("/people", get(people::list_people))
        .route("/stations/{id}/on-call", get(people::on_call))
        .route("/stations/{id}/crew", get(people::station_crew))
        .route("/reports/coverage", get(people::coverage))
        .route("/captain/reports", post(captain::create_report))
        .route("/rounds", get(rounds::list_rounds))
        .route("/rounds/schedules", get(rounds::list_schedules))
        .route("/rounds/{id}", get(rounds::get_round))
        .route("/rounds/{id}/items/{item}", post(rounds::tick_item))
        .route("/reports/pm-compliance", get(rounds::pm_compliance))
        .route("/reports/pm-compliance.csv", get(rounds::pm_compliance_csv))
        // The dispatcher's desk and resident tracking (issue 14).
        .route("/tickets", post(dispatch::create_call))
        .route("/tickets/{id}/transfer", post(dispatch::transfer))
        .route("/tickets/{id}/merge", post(dispatch::merge))
        .route("/tickets/{id}/links", post(dispatch::link))
        .route("/tickets/{id}/cancel", post(dispatch::cancel))
        .route("/public/reports/{code}", get(tracking::track))
        .route("/public/reports/{code}/rating", post(tracking::rate))
        .route("/compounds/{id}/report-qr.png", get(qr::qr_png))
        .route("/compounds/{id}/report-qr.svg", get(qr::qr_svg));
    Router::new()
        .merge(dashboard::routes())
        .merge(qr::routes())
        .merge(crew_app::routes())
        .route(
            "/ack/{token}",
            get(notifications::ack_page).post(notifications::ack_submit),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
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
        .get_or_create(&RequestLabels {
            method,
            route,
            status: resp.status().as_u16(),
        })
        .observe(start.elapsed().as_secs_f64());
    resp
}
