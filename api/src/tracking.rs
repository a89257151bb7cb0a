//! Residents following their report by its tracking code: its status and closure note
//! (no personal data), and 1-5 stars once it is resolved. No token; rate limited per
//! client like the report endpoint (at [`LOOKUP_FACTOR`](crate::intake::LOOKUP_FACTOR)
//! times its limits).

use crate::error::{blocking, ApiError};
use crate::names::{name_of, place_names};
use crate::resident::ClientKey;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use steward_tickets::{is_tracking_code, TicketState, TRACKING_CODE_LEN};
use utoipa::ToSchema;

/// What a resident sees of their report: never who reported it or who called.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrackedReport {
    pub code: String,
    /// open, acknowledged, dispatched, on_site, on_hold, resolved, closed or cancelled.
    #[schema(value_type = crate::schema::TicketStateDoc)]
    pub status: TicketState,
    pub category: String,
    pub compound: String,
    pub compound_name: String,
    /// When the report was made, ms since the epoch.
    pub reported_ms: i64,
    /// When the ticket it follows was opened (earlier when it joined an open ticket).
    pub opened_ms: i64,
    #[schema(required = true)]
    pub resolved_ms: Option<i64>,
    #[schema(required = true)]
    pub closed_ms: Option<i64>,
    /// What the crew wrote when resolving it.
    #[schema(required = true)]
    pub closure_note: Option<String>,
    /// The resident's stars, once given.
    #[schema(required = true)]
    pub stars: Option<u8>,
    /// Whether stars can be given now (resolved or closed, not rated yet).
    pub may_rate: bool,
}

fn code_param(code: &str) -> Result<String, ApiError> {
    if !is_tracking_code(code) {
        return Err(ApiError::BadRequest(format!(
            "code: expected the {TRACKING_CODE_LEN}-character tracking code the report returned"
        )));
    }
    Ok(code.to_ascii_lowercase())
}

fn admit(s: &AppState, client: std::net::IpAddr) -> Result<(), ApiError> {
    if !s.resident.enabled {
        return Err(ApiError::NotFound("public reports are disabled".into()));
    }
    s.resident
        .admit_lookup(client)
        .map_err(ApiError::RateLimited)
}

/// Follow a report by its tracking code (no token).
#[utoipa::path(get, path = "/api/v1/public/reports/{code}", tag = "public",
    params(("code" = String, Path, description = "tracking code from the report")),
    responses((status = 200, description = "status and closure note", body = TrackedReport),
        (status = 400, description = "not a tracking code"),
        (status = 404, description = "no report has this code (or public reports are disabled)"),
        (status = 429, description = "too many requests; see Retry-After")))]
pub(crate) async fn track(
    State(s): State<AppState>,
    ClientKey(client): ClientKey,
    Path(code): Path<String>,
) -> Result<Json<TrackedReport>, ApiError> {
    admit(&s, client)?;
    let code = code_param(&code)?;
    let desk = s.tickets.clone();
    let t = blocking(move || Ok(desk.store().track(&code)?)).await?;
    let names = place_names(&s).await?;
    let tk = &t.ticket;
    Ok(Json(TrackedReport {
        status: tk.state,
        category: t.category.clone(),
        compound_name: name_of(&names.compounds, &tk.compound),
        compound: tk.compound.clone(),
        reported_ms: t.reported_ms,
        opened_ms: tk.opened_ms,
        resolved_ms: tk.resolved_ms,
        closed_ms: tk.closed_ms,
        closure_note: t.closure_note.as_deref().map(crate::tickets::resolve_words),
        stars: t.rating.as_ref().map(|r| r.stars),
        may_rate: t.rating.is_none()
            && matches!(tk.state, TicketState::Resolved | TicketState::Closed),
        code: t.code,
    }))
}

/// A resident's rating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RatingBody {
    /// 1 to 5.
    pub stars: i64,
    /// At most 500 characters.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Reply of a rating.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingAccepted {
    pub code: String,
    pub stars: u8,
}

/// Rate the repair of a report, 1 to 5 stars, once, after it is resolved or closed (no
/// token). Feeds the station's monthly rating (docs/rating.md).
#[utoipa::path(post, path = "/api/v1/public/reports/{code}/rating", tag = "public",
    params(("code" = String, Path, description = "tracking code from the report")),
    request_body = RatingBody,
    responses((status = 201, description = "the rating was recorded", body = RatingAccepted),
        (status = 400, description = "names the invalid field (stars, comment, code)"),
        (status = 404, description = "no report has this code"),
        (status = 409, description = "not resolved yet, or already rated"),
        (status = 429, description = "too many requests; see Retry-After")))]
pub(crate) async fn rate(
    State(s): State<AppState>,
    ClientKey(client): ClientKey,
    Path(code): Path<String>,
    b: Result<Json<RatingBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    admit(&s, client)?;
    let code = code_param(&code)?;
    let Json(b) =
        b.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    let stars = u8::try_from(b.stars)
        .ok()
        .filter(|s| (1..=5).contains(s))
        .ok_or_else(|| ApiError::BadRequest("stars: expected an integer from 1 to 5".into()))?;
    let comment = b.comment.unwrap_or_default().trim().to_string();
    if comment.chars().count() > 500
        || comment
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(ApiError::BadRequest(
            "comment: at most 500 characters".into(),
        ));
    }
    let desk = s.tickets.clone();
    let r = blocking(move || Ok(desk.rate_by_resident(&code, stars, &comment)?)).await?;
    Ok((
        StatusCode::CREATED,
        Json(RatingAccepted {
            code: r.code,
            stars: r.stars,
        }),
    )
        .into_response())
}
