//! The estate over HTTP: compounds with their responsible station, scoped.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::schema::{sorted, CompoundDoc};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use steward_estate::registry::CompoundSummary;
use steward_estate::Role;
use utoipa::ToSchema;

/// Reply of `GET /api/v1/compounds`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompoundList {
    #[serde(serialize_with = "sorted")]
    #[schema(value_type = Vec<CompoundDoc>)]
    pub compounds: Vec<CompoundSummary>,
}

/// Compounds with their responsible station (admin, manager, crew: scoped).
#[utoipa::path(get, path = "/api/v1/compounds", tag = "estate",
    responses((status = 200, description = "the compounds, by id", body = CompoundList),
        (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn list_compounds(
    who: Principal,
    State(s): State<AppState>,
) -> Result<Json<CompoundList>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let reg = s.registry.clone();
    let mut compounds = blocking(move || Ok(reg.compounds()?)).await?;
    compounds.retain(|c| who.can_see_compound(&c.id));
    Ok(Json(CompoundList { compounds }))
}
