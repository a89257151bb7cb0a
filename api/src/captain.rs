//! Building captains' hazard reports: an authenticated report (P1 or P2) for one of the
//! captain's buildings opens a ticket for the building's compound station through the
//! same desk path as residents' reports, recorded under `captain:<person>` (or
//! `captain:token-<id>` when the token names no person).

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::params::id_param;
use crate::resident::{text, CATEGORIES};
use crate::state::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use steward_estate::Role;
use steward_tickets::{Priority, ResidentReport};
use tracing::info;
use utoipa::ToSchema;

const DESCRIPTION_MAX: usize = 1000;

/// A captain's hazard report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptainReportBody {
    /// One of the captain's buildings.
    pub building: String,
    /// lift, fire_safety, water_supply, drainage, gate, lighting or other.
    pub category: String,
    /// `P1` (someone in danger now) or `P2`.
    pub priority: String,
    /// What is wrong, 1 to 1000 characters.
    pub description: String,
}

/// File a hazard report for one of the captain's buildings (captain tokens only). Opens a
/// ticket for the building's station, or adds to the open one of the same category and
/// priority.
/// What a captain's report did. A captain follows the ticket itself (their token reads
/// their buildings' tickets), so it carries no resident tracking code.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CaptainReportAccepted {
    /// False when the report was added to an open ticket of the same category.
    pub created: bool,
    /// The ticket it opened or was added to.
    pub ticket_id: i64,
}

#[utoipa::path(post, path = "/api/v1/captain/reports", tag = "people",
    request_body = CaptainReportBody,
    responses(
        (status = 201, description = "the ticket it opened or was added to", body = CaptainReportAccepted),
        (status = 400, description = "names the invalid field"),
        (status = 401), (status = 403, description = "not a captain, or not one of its buildings"),
    ),
    security(("bearer" = [])))]
pub(crate) async fn create_report(
    who: Principal,
    State(s): State<AppState>,
    body: Result<Json<CaptainReportBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    if who.role != Role::Captain {
        return Err(ApiError::Forbidden(format!(
            "role {} may not call this endpoint; hazard reports are filed by captain tokens",
            who.role
        )));
    }
    let Json(b) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    id_param("building", &b.building)?;
    who.check(
        who.scope.buildings.contains(&b.building),
        &format!("building `{}`", b.building),
    )?;
    let people = s.registry.people();
    let compound = people
        .building_compound(&b.building)
        .ok_or_else(|| {
            ApiError::BadRequest(format!("building: unknown building `{}`", b.building))
        })?
        .to_string();
    let station = s
        .registry
        .directory()
        .compounds
        .get(&compound)
        .map(|c| c.station.clone())
        .ok_or_else(|| ApiError::Internal(format!("compound `{compound}` has no station")))?;
    let category = CATEGORIES
        .iter()
        .map(|(c, _)| *c)
        .find(|c| *c == b.category)
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "category: expected one of {}",
                CATEGORIES.map(|(c, _)| c).join(", ")
            ))
        })?;
    let priority = match b.priority.as_str() {
        "P1" => Priority::P1,
        "P2" => Priority::P2,
        _ => return Err(ApiError::BadRequest("priority: expected P1 or P2".into())),
    };
    let description = text("description", &b.description, DESCRIPTION_MAX, true)?;
    let reporter = match &who.scope.person {
        Some(p) => people
            .person(p)
            .map(|x| x.name.clone())
            .unwrap_or(p.clone()),
        None => who.name.clone(),
    };
    let actor = match (&who.scope.person, who.token_id) {
        (Some(p), _) => format!("captain:{p}"),
        (None, Some(id)) => format!("captain:token-{id}"),
        (None, None) => "captain".to_string(),
    };
    let summary: String = description
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    let report = ResidentReport {
        compound,
        station,
        category: category.to_string(),
        priority,
        title: format!("captain report ({category}): {summary}"),
        detail: format!(
            "{description}\nbuilding: {}\nreported by captain: {reporter}",
            b.building
        ),
        ts_ms: 0,
        building: Some(b.building.clone()),
    };
    let desk = s.tickets.clone();
    let a = actor.clone();
    let outcome = blocking(move || Ok(desk.report_by(report, &a)?)).await?;
    info!(ticket = outcome.ticket.id, building = %b.building, %actor, priority = %priority, created = outcome.created, "captain report");
    Ok((
        StatusCode::CREATED,
        Json(CaptainReportAccepted {
            created: outcome.created,
            ticket_id: outcome.ticket.id,
        }),
    )
        .into_response())
}
