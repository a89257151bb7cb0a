//! Planned rounds (steward-rounds): the schedules, rounds with their checklist, ticking
//! an item by hand, and the monthly PM-compliance report (JSON and CSV), restricted to
//! the caller's scope. docs/rounds.md describes the stage.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::params::{id_param, limit_param, params};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use steward_estate::Role;
use steward_rounds::{ComplianceReport, Round, RoundDetail, Rounds, RoundsError, Verdict};
use utoipa::ToSchema;

impl From<RoundsError> for ApiError {
    fn from(e: RoundsError) -> Self {
        match e {
            RoundsError::NotFound(_) | RoundsError::NoItem { .. } => {
                ApiError::NotFound(e.to_string())
            }
            RoundsError::Decided { .. } => ApiError::Conflict(e.to_string()),
            RoundsError::Tickets(t) => t.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn stage(s: &AppState) -> Result<Rounds, ApiError> {
    s.rounds
        .clone()
        .ok_or_else(|| ApiError::Unavailable("the rounds stage is not running".into()))
}

/// One round (steward_rounds::Round).
#[derive(ToSchema)]
#[schema(as = Round)]
#[allow(dead_code)]
pub struct RoundDoc {
    id: i64,
    schedule_id: String,
    schedule_name: String,
    /// Device id, or `building:<id>` / `compound:<id>`.
    asset: String,
    asset_kind: String,
    compound: String,
    building: String,
    station: String,
    /// `station` or `captain`.
    assignee: String,
    /// Period key: `2026-12-07`, `2026-12`, `2026-Q4`, `2026-H2`, `2026`.
    period: String,
    window_start_ms: i64,
    due_ms: i64,
    opened_ms: i64,
    /// The work order (ticket of kind `work_order`).
    #[schema(required = true)]
    ticket_id: Option<i64>,
    /// `open`, `done` or `failed`.
    status: String,
    #[schema(required = true)]
    completed_ms: Option<i64>,
}

/// One checklist item of a round (steward_rounds::RoundItem).
#[derive(ToSchema)]
#[schema(as = RoundItem)]
#[allow(dead_code)]
pub struct RoundItemDoc {
    item_id: String,
    text: String,
    /// What telemetry must show to prove it, if it can.
    #[schema(required = true)]
    proof: Option<String>,
    /// `open`, `done` or `failed`.
    state: String,
    /// Who decided it: a person, or `telemetry`.
    #[schema(required = true)]
    actor: Option<String>,
    /// The note, or the reading or event that decided it.
    #[schema(required = true)]
    evidence: Option<String>,
    #[schema(required = true)]
    ts_ms: Option<i64>,
    /// The incident opened because the item failed.
    #[schema(required = true)]
    corrective_ticket: Option<i64>,
}

/// A round with its checklist (steward_rounds::RoundDetail).
#[derive(ToSchema)]
#[schema(as = RoundDetail)]
#[allow(dead_code)]
pub struct RoundDetailDoc {
    round: RoundDoc,
    items: Vec<RoundItemDoc>,
}

/// Reply of `GET /api/v1/rounds`.
#[derive(Serialize, ToSchema)]
pub struct RoundList {
    #[schema(value_type = Vec<RoundDoc>)]
    pub rounds: Vec<Round>,
}

/// Counts of one schedule, or of all (`schedule_id` = `total`).
#[derive(ToSchema)]
#[schema(as = ComplianceLine)]
#[allow(dead_code)]
pub struct ComplianceLineDoc {
    schedule_id: String,
    rounds: u32,
    /// Completed by the deadline.
    on_time: u32,
    late: u32,
    /// Open past the deadline.
    overdue: u32,
    /// Open, deadline not passed (not counted in `compliance`).
    in_progress: u32,
    /// Completed with at least one failed item.
    with_failures: u32,
    /// on_time / (rounds - in_progress).
    #[schema(required = true)]
    compliance: Option<f64>,
}

/// Reply of `GET /api/v1/reports/pm-compliance`.
#[derive(ToSchema)]
#[schema(as = ComplianceReport)]
#[allow(dead_code)]
pub struct ComplianceReportDoc {
    scope: String,
    month: String,
    total: ComplianceLineDoc,
    schedules: Vec<ComplianceLineDoc>,
}

/// Rounds, newest window first (admin; manager and crew: their stations and compounds).
#[utoipa::path(get, path = "/api/v1/rounds", tag = "rounds",
    params(
        ("status" = Option<String>, Query, description = "open, done, failed or overdue"),
        ("limit" = Option<u32>, Query, description = "1 to 1000 (default 500)"),
    ),
    responses((status = 200, description = "the rounds", body = RoundList),
        (status = 400), (status = 401), (status = 403), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn list_rounds(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<RoundList>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    params(&q, &["status", "limit"])?;
    let status = q.get("status").cloned();
    if let Some(st) = &status {
        if !["open", "done", "failed", "overdue"].contains(&st.as_str()) {
            return Err(ApiError::BadRequest(
                "status: expected open, done, failed or overdue".into(),
            ));
        }
    }
    let limit = limit_param(&q)?.unwrap_or(500);
    let rounds = stage(&s)?;
    let now = s.tickets.now_ms();
    let list = blocking(move || Ok(rounds.store().list(status.as_deref(), now, 10_000)?)).await?;
    let rounds = list
        .into_iter()
        .filter(|r| who.can_see_ticket_of(&r.station, &r.compound))
        .take(limit as usize)
        .collect();
    Ok(Json(RoundList { rounds }))
}

/// The schedules in force, as loaded from the schedule file (admin, manager, crew).
#[utoipa::path(get, path = "/api/v1/rounds/schedules", tag = "rounds",
    responses((status = 200, description = "`{\"schedules\": [...]}` in the schedule file's \
            format (docs/rounds.md)", body = Object),
        (status = 401), (status = 403), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn list_schedules(
    who: Principal,
    State(s): State<AppState>,
) -> Result<Response, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let set = stage(&s)?.schedules();
    Ok(Json(&*set).into_response())
}

fn round_id(id: &str) -> Result<i64, ApiError> {
    id.parse()
        .map_err(|_| ApiError::BadRequest("id: expected a round number".into()))
}

/// One round with its checklist (in scope).
#[utoipa::path(get, path = "/api/v1/rounds/{id}", tag = "rounds",
    params(("id" = i64, Path, description = "round id")),
    responses((status = 200, description = "the round and its items", body = RoundDetailDoc),
        (status = 400), (status = 401), (status = 403), (status = 404), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn get_round(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RoundDetail>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let id = round_id(&id)?;
    let rounds = stage(&s)?;
    let d = blocking(move || Ok(rounds.store().detail(id)?)).await?;
    who.check(
        who.can_see_ticket_of(&d.round.station, &d.round.compound),
        &format!("round {id}"),
    )?;
    Ok(Json(d))
}

/// Body of `POST /api/v1/rounds/{id}/items/{item}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TickBody {
    /// `done` or `failed` (a failed item opens a corrective ticket).
    #[schema(value_type = String)]
    pub result: Verdict,
    /// What was found or done; required when failed.
    #[serde(default)]
    pub note: String,
    /// Who did it (defaults to the token's name); recorded with the token's name.
    #[serde(default)]
    pub actor: Option<String>,
}

/// Tick a checklist item by hand (admin; crew of the round's station). An item already
/// decided is a 409.
#[utoipa::path(post, path = "/api/v1/rounds/{id}/items/{item}", tag = "rounds",
    params(("id" = i64, Path, description = "round id"),
        ("item" = String, Path, description = "checklist item id")),
    request_body = TickBody,
    responses((status = 200, description = "the round after the tick", body = RoundDetailDoc),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "item already decided"), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn tick_item(
    who: Principal,
    State(s): State<AppState>,
    Path((id, item)): Path<(String, String)>,
    body: Result<Json<TickBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<RoundDetail>, ApiError> {
    who.require(&[Role::Crew])?;
    let id = round_id(&id)?;
    id_param("item", &item)?;
    let Json(b) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    if b.note.chars().count() > 2000 || b.note.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "note: at most 2000 printable characters".into(),
        ));
    }
    if b.result == Verdict::Failed && b.note.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "note: required when an item failed (what is wrong)".into(),
        ));
    }
    let actor = match &b.actor {
        Some(a) if a.trim().is_empty() || a.chars().count() > 64 => {
            return Err(ApiError::BadRequest(
                "actor: 1 to 64 printable characters".into(),
            ))
        }
        Some(a) if who.token_id.is_some() => format!("{a} [{}]", who.name),
        Some(a) => a.clone(),
        None => who.name.clone(),
    };
    let rounds = stage(&s)?;
    let who2 = who.clone();
    let d = blocking(move || {
        let r = rounds.store().round(id)?;
        who2.check(who2.can_see_station(&r.station), &format!("round {id}"))?;
        Ok(rounds.tick_item(id, &item, b.result, &actor, &b.note)?)
    })
    .await?;
    Ok(Json(d))
}

fn compliance_params(
    who: &Principal,
    q: &HashMap<String, String>,
) -> Result<(String, String), ApiError> {
    params(q, &["month", "station", "compound"])?;
    let month = q
        .get("month")
        .ok_or_else(|| ApiError::BadRequest("month: required (YYYY-MM)".into()))?
        .clone();
    steward_tickets::month_range(&month)
        .map_err(|_| ApiError::BadRequest("month: expected YYYY-MM, e.g. 2026-11".into()))?;
    let scope = match (q.get("station"), q.get("compound")) {
        (Some(st), None) => {
            id_param("station", st)?;
            who.check(who.can_see_station(st), &format!("station `{st}`"))?;
            st.clone()
        }
        (None, Some(c)) => {
            id_param("compound", c)?;
            who.check(who.can_see_compound(c), &format!("compound `{c}`"))?;
            c.clone()
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give exactly one of station or compound".into(),
            ))
        }
    };
    Ok((scope, month))
}

async fn compliance(
    who: &Principal,
    s: &AppState,
    q: &HashMap<String, String>,
) -> Result<ComplianceReport, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let (scope, month) = compliance_params(who, q)?;
    let rounds = stage(s)?;
    let now = s.tickets.now_ms();
    blocking(move || Ok(rounds.compliance(&scope, &month, now)?)).await
}

/// Monthly PM compliance of a station or a compound: rounds whose window opened in the
/// month, completed on time, late, overdue, in progress (admin; manager and crew in scope).
#[utoipa::path(get, path = "/api/v1/reports/pm-compliance", tag = "reports",
    params(
        ("month" = String, Query, description = "YYYY-MM (UTC)"),
        ("station" = Option<String>, Query, description = "a station id (or give compound)"),
        ("compound" = Option<String>, Query, description = "a compound id (or give station)"),
    ),
    responses((status = 200, description = "totals and a line per schedule", body = ComplianceReportDoc),
        (status = 400), (status = 401), (status = 403), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn pm_compliance(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<ComplianceReport>, ApiError> {
    Ok(Json(compliance(&who, &s, &q).await?))
}

/// The PM-compliance report as CSV: a row per schedule, then the total.
#[utoipa::path(get, path = "/api/v1/reports/pm-compliance.csv", tag = "reports",
    params(
        ("month" = String, Query, description = "YYYY-MM (UTC)"),
        ("station" = Option<String>, Query, description = "a station id (or give compound)"),
        ("compound" = Option<String>, Query, description = "a compound id (or give station)"),
    ),
    responses((status = 200, description = "text/csv", body = String, content_type = "text/csv"),
        (status = 400), (status = 401), (status = 403), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn pm_compliance_csv(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let rep = compliance(&who, &s, &q).await?;
    Ok((
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        rep.to_csv(),
    )
        .into_response())
}
