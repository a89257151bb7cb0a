//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations, and
//! a small self-contained page that renders it (no CDN: the hub may run offline).

use crate::{
    captain, catalog, dashboard, devices, error, estate, health, history, live, notifications,
    people, photos, rejects, reports, resident, rounds, schema, session, tickets, tokens, windows,
    yearly,
};
use crate::{dispatch, qr, tracking};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct Security;

impl Modify for Security {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "`api.admin_token` or a token from POST /api/v1/tokens (`stw_...`)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "the same token as a query parameter, on the alert stream only (a browser's \
                 EventSource cannot set headers)",
            ))),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Steward hub API",
        description = "Estate, devices, rejects, tickets, reports, tokens, public resident \
            reports, the live alert stream and history. Errors have one shape: `{\"error\": {\"code\", \"message\"}}`; codes: \
            bad_request, unauthorized, invalid_token, forbidden, out_of_scope, not_found, \
            conflict, too_large, unsupported_type, rate_limited, internal, unavailable."
    ),
    paths(
        health::healthz,
        health::readyz,
        health::metrics,
        estate::list_compounds,
        devices::list_devices,
        devices::upsert_device,
        devices::get_device,
        devices::retire_device,
        devices::device_state,
        devices::rotate_secret,
        rejects::list_rejects,
        tickets::list_tickets,
        tickets::tickets_csv,
        tickets::get_ticket,
        tickets::transition_ticket,
        photos::upload_photo,
        photos::list_photos,
        photos::get_photo,
        photos::get_thumb,
        reports::rating,
        reports::sla,
        yearly::yearly_report,
        tokens::create_token,
        tokens::list_tokens,
        tokens::revoke_token,
        resident::create_report,
        live::alert_stream,
        history::device_history,
        history::compound_history,
        history::device_events,
        dashboard::liveness,
        session::me,
        catalog::get_catalog,
        notifications::ack_page,
        notifications::ack_submit,
        notifications::ticket_deliveries,
        notifications::dead_letters,
        notifications::retry,
        notifications::policy,
        windows::list_windows,
        windows::create_window,
        windows::delete_window,
        windows::window_suppressed,
        people::list_people,
        people::on_call,
        people::station_crew,
        people::coverage,
        captain::create_report,
        rounds::list_rounds,
        rounds::list_schedules,
        rounds::get_round,
        rounds::tick_item,
        rounds::pm_compliance,
        rounds::pm_compliance_csv,
        // The dispatcher's desk and resident tracking (issue 14).
        dispatch::create_call,
        dispatch::transfer,
        dispatch::merge,
        dispatch::link,
        dispatch::cancel,
        tracking::track,
        tracking::rate,
        qr::qr_png,
        qr::qr_svg,
        openapi_json,
        docs_page,
    ),
    // Types in a response's `body` are collected from the paths; these are only named in
    // request bodies, errors or descriptions.
    components(schemas(
        devices::DeviceUpsertDoc,
        tickets::TransitionBody,
        tokens::CreateToken,
        photos::PhotoForm,
        resident::ReportBody,
        windows::WindowDefDoc,
        captain::CaptainReportBody,
        error::ErrorBody,
        schema::PriorityDoc,
        schema::TicketStateDoc,
        schema::RoleDoc,
        rounds::TickBody,
        dispatch::CallBody,
        dispatch::CallerBody,
        dispatch::TransferBody,
        dispatch::MergeBody,
        dispatch::LinkBody,
        dispatch::CancelBody,
        schema::CallerDoc,
        tracking::RatingBody,
    )),
    modifiers(&Security),
    tags(
        (name = "health", description = "liveness, readiness, metrics (no token)"),
        (name = "estate", description = "compounds, and who the caller is"),
        (name = "devices", description = "devices, their state and rejects"),
        (name = "tickets", description = "tickets: lists, CSV export, audit trail, moves"),
        (name = "reports", description = "SLA figures and star ratings"),
        (name = "tokens", description = "API tokens (admin)"),
        (name = "public", description = "resident reports, tracking codes, ratings, report QR codes (no token)"),
        (name = "dispatch", description = "the dispatcher's desk: tickets from calls, transfers, merges, links"),
        (name = "live", description = "the alert stream (Server-Sent Events, resumable)"),
        (name = "history", description = "readings and events from QuestDB, downsampled"),
        (name = "notifications", description = "escalation to people: acknowledgement links, deliveries, dead letters, the policy"),
        (name = "people", description = "crews, on-call rotas, people, captains' reports"),
        (name = "rounds", description = "planned maintenance and inspection rounds (docs/rounds.md)"),
        (name = "docs", description = "this document"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_pretty_json()
            .unwrap_or_else(|e| format!("{{\"error\": \"openapi: {e}\"}}"))
    })
}

/// The OpenAPI document of this API.
#[utoipa::path(get, path = "/api/openapi.json", tag = "docs",
    responses((status = 200, description = "OpenAPI 3 JSON", body = Object)))]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// A browsable view of the document, self-contained (no CDN).
#[utoipa::path(get, path = "/api/docs", tag = "docs",
    responses((status = 200, description = "HTML page", body = String, content_type = "text/html")))]
pub(crate) async fn docs_page() -> Html<&'static str> {
    Html(include_str!("openapi.html"))
}
