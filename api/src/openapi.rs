//! The OpenAPI document, generated from the handlers' `#[utoipa::path]` annotations, and
//! a small self-contained page that renders it (no CDN: the hub may run offline).

use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

/// Body of `POST /api/v1/devices` (the estate's `DeviceUpsert`).
#[derive(Deserialize, ToSchema)]
#[schema(as = DeviceUpsert)]
#[allow(dead_code)]
pub struct DeviceUpsertDoc {
    /// Device id: ASCII letters, digits, `-`, `_`, `.`; at most 64.
    id: String,
    /// smoke, pump, lift or gate.
    kind: String,
    /// Vendor name; a vendor token may only use its own.
    vendor: String,
    /// Building id from the estate.
    building: String,
    #[serde(default)]
    location: String,
    /// Gateway the device publishes through, if any (then it gets no secret).
    #[serde(default)]
    gateway: Option<String>,
    /// Seconds between reports (default 60).
    #[serde(default)]
    report_interval_s: Option<u32>,
}

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
            conflict, rate_limited, internal, unavailable."
    ),
    paths(
        crate::routes::healthz,
        crate::routes::readyz,
        crate::routes::metrics,
        crate::routes::list_compounds,
        crate::routes::list_devices,
        crate::routes::upsert_device,
        crate::routes::get_device,
        crate::routes::retire_device,
        crate::routes::device_state,
        crate::routes::rotate_secret,
        crate::routes::list_rejects,
        crate::tickets::list_tickets,
        crate::tickets::tickets_csv,
        crate::tickets::get_ticket,
        crate::tickets::transition_ticket,
        crate::reports::rating,
        crate::reports::sla,
        crate::auth::create_token,
        crate::auth::list_tokens,
        crate::auth::revoke_token,
        crate::resident::create_report,
        crate::live::alert_stream,
        crate::history::device_history,
        crate::history::compound_history,
        crate::history::device_events,
        crate::dashboard::liveness,
        openapi_json,
        docs_page,
    ),
    components(schemas(
        DeviceUpsertDoc,
        crate::tickets::TransitionBody,
        crate::auth::CreateToken,
        crate::resident::ReportBody,
    )),
    modifiers(&Security),
    tags(
        (name = "health", description = "liveness, readiness, metrics (no token)"),
        (name = "estate", description = "compounds"),
        (name = "devices", description = "devices, their state and rejects"),
        (name = "tickets", description = "tickets: lists, CSV export, audit trail, moves"),
        (name = "reports", description = "SLA figures and star ratings"),
        (name = "tokens", description = "API tokens (admin)"),
        (name = "public", description = "resident reports (no token)"),
        (name = "live", description = "the alert stream (Server-Sent Events, resumable)"),
        (name = "history", description = "readings and events from QuestDB, downsampled"),
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
    responses((status = 200, description = "OpenAPI 3 JSON")))]
pub(crate) async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// A browsable view of the document, self-contained (no CDN).
#[utoipa::path(get, path = "/api/docs", tag = "docs",
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
pub(crate) async fn docs_page() -> Html<&'static str> {
    Html(include_str!("openapi.html"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Route literals of every `.route("...")` in the crate's sources, so a module added
    /// later (with its own router) is covered without touching this test.
    fn router_paths() -> BTreeSet<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut out = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).expect("api/src") {
            let path = entry.expect("entry").path();
            // This file holds no routes, only this test's patterns; the dashboard's routes
            // serve static pages, not the API.
            if path.extension().is_none_or(|e| e != "rs")
                || path.ends_with("openapi.rs")
                || path.ends_with("dashboard.rs")
            {
                continue;
            }
            let src = std::fs::read_to_string(&path).expect("source");
            let code: String = src
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut rest = code.as_str();
            // rustfmt may break a long `.route(` call before its path.
            while let Some(i) = rest.find(".route(") {
                rest = rest[i + 7..].trim_start();
                if let Some(lit) = rest.strip_prefix('"') {
                    if let Some(end) = lit.find('"') {
                        out.insert(lit[..end].to_string());
                    }
                }
            }
        }
        out
    }

    #[test]
    fn every_router_route_is_documented() {
        let doc: serde_json::Value = serde_json::from_str(document()).expect("valid JSON");
        let documented: BTreeSet<String> = doc["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .cloned()
            .collect();
        let routes = router_paths();
        let calls: usize = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes.rs"),
        )
        .expect("routes.rs")
        .matches(".route(")
        .count();
        assert!(
            routes.len() >= 20 && routes.len() >= calls,
            "found every route of routes.rs: {routes:?}"
        );
        for r in &routes {
            // By suffix: a route's literal does not say under which prefix it is nested.
            assert!(
                documented.iter().any(|d| d.ends_with(r.as_str())),
                "route {r} is not in the OpenAPI document"
            );
        }
    }
}
