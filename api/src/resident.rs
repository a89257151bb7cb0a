//! Public resident reports: a fault the sensors cannot see, reported without a token,
//! opening a ticket for the compound's station through the rules stage. Validated, rate
//! limited per client address and globally, and counted.

use crate::error::{blocking, ApiError};
use crate::params::id_param;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use steward_tickets::{Priority, ResidentReport};
use tracing::info;
use utoipa::ToSchema;

/// Categories a resident can pick, with the priority their ticket gets. Residents cannot
/// raise P1: an emergency (someone trapped, fire) is a phone call, and an anonymous form
/// must not be able to page crews at P1 speed.
pub const CATEGORIES: [(&str, Priority); 7] = [
    ("lift", Priority::P2),
    ("fire_safety", Priority::P2),
    ("water_supply", Priority::P2),
    ("drainage", Priority::P2),
    ("gate", Priority::P3),
    ("lighting", Priority::P3),
    ("other", Priority::P3),
];

const DESCRIPTION_MAX: usize = 1000;
const FIELD_MAX: usize = 200;

/// The client's address as the limiter keys it: IPv6 by /64, as one host usually holds a
/// whole /64. Behind a reverse proxy every client shares the proxy's address: run the hub
/// where clients reach it directly, or put the limit in the proxy.
pub struct ClientKey(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientKey {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(ClientKey(match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        }))
    }
}

/// A resident's report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportBody {
    /// Compound id, as on the notice board / QR code.
    pub compound: String,
    /// lift, fire_safety, water_supply, drainage, gate, lighting or other.
    pub category: String,
    /// What is wrong, 1 to 1000 characters.
    pub description: String,
    /// Where (building, floor), at most 200 characters.
    #[serde(default)]
    pub location: Option<String>,
    /// How to reach the reporter, at most 200 characters; shown to the crew only.
    #[serde(default)]
    pub contact: Option<String>,
}

/// Reply of `POST /api/v1/public/reports`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReportAccepted {
    /// False when the report was added to an open ticket of the same category.
    pub created: bool,
    /// The ticket it opened or was added to.
    pub ticket_id: i64,
    /// Follows the report: `GET /api/v1/public/reports/{code}` (10 characters, base32).
    pub tracking_code: String,
}

pub(crate) fn text(name: &str, v: &str, max: usize, multiline: bool) -> Result<String, ApiError> {
    let v = v.trim();
    let bad_char = v
        .chars()
        .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')));
    if v.is_empty() || v.chars().count() > max || bad_char {
        return Err(ApiError::BadRequest(format!(
            "{name}: 1 to {max} characters{}",
            if multiline { "" } else { " on one line" }
        )));
    }
    Ok(v.to_string())
}

/// Report a fault (no token). Opens a ticket for the compound's station, or adds to the
/// open one of the same category. Rate limited per client and globally (429 with
/// `Retry-After`).
#[utoipa::path(post, path = "/api/v1/public/reports", tag = "public",
    request_body = ReportBody,
    responses(
        (status = 201, description = "the ticket it opened or was added to, and the report's tracking code", body = ReportAccepted),
        (status = 400, description = "names the invalid field (unknown compound, category, length)"),
        (status = 404, description = "public reports are disabled"),
        (status = 429, description = "too many reports; see Retry-After"),
    ))]
pub(crate) async fn create_report(
    State(s): State<AppState>,
    ClientKey(client): ClientKey,
    body: Result<Json<ReportBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let intake = &s.resident;
    if !intake.enabled {
        return Err(ApiError::NotFound("public reports are disabled".into()));
    }
    if let Err(secs) = intake.admit(client) {
        intake.count("rate_limited");
        return Err(ApiError::RateLimited(secs));
    }
    let report = match validate(&s, body) {
        Ok(r) => r,
        Err(e) => {
            intake.count("invalid");
            return Err(e);
        }
    };
    let desk = s.tickets.clone();
    let (outcome, code) = blocking(move || Ok(desk.report_tracked(report)?)).await?;
    intake.count("accepted");
    info!(ticket = outcome.ticket.id, compound = %outcome.ticket.compound, created = outcome.created, "resident report");
    Ok((
        StatusCode::CREATED,
        Json(ReportAccepted {
            created: outcome.created,
            ticket_id: outcome.ticket.id,
            tracking_code: code,
        }),
    )
        .into_response())
}

fn validate(
    s: &AppState,
    body: Result<Json<ReportBody>, axum::extract::rejection::JsonRejection>,
) -> Result<ResidentReport, ApiError> {
    let Json(b) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    id_param("compound", &b.compound)?;
    let station = s
        .registry
        .directory()
        .compounds
        .get(&b.compound)
        .map(|c| c.station.clone())
        .ok_or_else(|| {
            ApiError::BadRequest(format!("compound: unknown compound `{}`", b.compound))
        })?;
    let (category, priority) = CATEGORIES
        .iter()
        .find(|(c, _)| *c == b.category)
        .copied()
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "category: expected one of {}",
                CATEGORIES.map(|(c, _)| c).join(", ")
            ))
        })?;
    let description = text("description", &b.description, DESCRIPTION_MAX, true)?;
    let mut detail = description.clone();
    if let Some(l) = &b.location {
        detail.push_str(&format!(
            "\nlocation: {}",
            text("location", l, FIELD_MAX, false)?
        ));
    }
    if let Some(c) = &b.contact {
        detail.push_str(&format!(
            "\ncontact: {}",
            text("contact", c, FIELD_MAX, false)?
        ));
    }
    let summary: String = description
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    Ok(ResidentReport {
        compound: b.compound,
        station,
        category: category.to_string(),
        priority,
        title: format!("resident report ({category}): {summary}"),
        detail,
        ts_ms: 0,
        building: None,
    })
}
