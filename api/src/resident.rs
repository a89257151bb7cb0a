//! Public resident reports: a fault the sensors cannot see, reported without a token,
//! opening a ticket for the compound's station through the rules stage. Validated, rate
//! limited per client address and globally, and counted.

use crate::routes::{blocking, id_param, AppState};
use crate::ApiError;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use governor::clock::Clock;
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;
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
/// Keyed limiter entries are dropped once idle this often is worth a sweep.
const SWEEP_ABOVE: usize = 10_000;

/// `[api.public_reports]`: limits of the public report endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublicReportsConfig {
    pub enabled: bool,
    /// Sustained reports per client address (IPv6: per /64) and hour.
    pub per_client_per_hour: u32,
    /// Reports a client may send at once before the hourly rate applies.
    pub per_client_burst: u32,
    /// Sustained reports per minute from everyone together.
    pub global_per_minute: u32,
    pub global_burst: u32,
}

impl Default for PublicReportsConfig {
    fn default() -> Self {
        PublicReportsConfig {
            enabled: true,
            per_client_per_hour: 10,
            per_client_burst: 3,
            global_per_minute: 60,
            global_burst: 30,
        }
    }
}

impl PublicReportsConfig {
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut e = Vec::new();
        for (key, v, max) in [
            ("per_client_per_hour", self.per_client_per_hour, 3_600_000),
            ("per_client_burst", self.per_client_burst, 10_000),
            ("global_per_minute", self.global_per_minute, 60_000),
            ("global_burst", self.global_burst, 100_000),
        ] {
            if v == 0 || v > max {
                e.push(format!("{prefix}.{key}: must be between 1 and {max}"));
            }
        }
        e
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// accepted, invalid, rate_limited
    pub outcome: &'static str,
}

/// Rate limiters and counters of the endpoint; cheap to clone.
#[derive(Clone)]
pub struct ResidentIntake {
    enabled: bool,
    per_client: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    global: Arc<DefaultDirectRateLimiter>,
    pub reports: Family<OutcomeLabel, Counter>,
}

fn nz(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).unwrap_or(NonZeroU32::MIN)
}

impl ResidentIntake {
    /// Limiters from `cfg` (validated by [`PublicReportsConfig::validate`]); counters
    /// registered as `steward_api_resident_reports_total{outcome}`.
    pub fn new(
        cfg: &PublicReportsConfig,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Self {
        let reports = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "steward_api_resident_reports",
            "Public resident reports by outcome",
            reports.clone(),
        );
        let period = Duration::from_secs(3600) / cfg.per_client_per_hour.max(1);
        let per_client = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_hour(nz(cfg.per_client_per_hour)))
            .allow_burst(nz(cfg.per_client_burst));
        let global = Quota::per_minute(nz(cfg.global_per_minute)).allow_burst(nz(cfg.global_burst));
        ResidentIntake {
            enabled: cfg.enabled,
            per_client: Arc::new(RateLimiter::keyed(per_client)),
            global: Arc::new(RateLimiter::direct(global)),
            reports,
        }
    }

    fn count(&self, outcome: &'static str) {
        self.reports.get_or_create(&OutcomeLabel { outcome }).inc();
    }

    /// `Err(seconds to wait)` when the client or everyone together is over the limit.
    fn admit(&self, client: IpAddr) -> Result<(), u64> {
        if self.per_client.len() > SWEEP_ABOVE {
            self.per_client.retain_recent();
        }
        let wait = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        if let Err(not_until) = self.per_client.check_key(&client) {
            return Err(wait(
                not_until.wait_time_from(self.per_client.clock().now()),
            ));
        }
        if let Err(not_until) = self.global.check() {
            return Err(wait(not_until.wait_time_from(self.global.clock().now())));
        }
        Ok(())
    }
}

impl Default for ResidentIntake {
    fn default() -> Self {
        ResidentIntake::new(
            &PublicReportsConfig::default(),
            &mut prometheus_client::registry::Registry::default(),
        )
    }
}

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

fn text(name: &str, v: &str, max: usize, multiline: bool) -> Result<String, ApiError> {
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
        (status = 201, description = "`{\"ticket_id\", \"created\"}`: the ticket it opened or was added to"),
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
    let outcome = blocking(move || Ok(desk.report(report)?)).await?;
    intake.count("accepted");
    info!(ticket = outcome.ticket.id, compound = %outcome.ticket.compound, created = outcome.created, "resident report");
    Ok((
        StatusCode::CREATED,
        Json(json!({"ticket_id": outcome.ticket.id, "created": outcome.created})),
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
    })
}
