//! The estate over HTTP: compounds with their responsible station, scoped, and the names
//! of the places they sit in.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::names::{name_of, place_names};
use crate::schema::{sorted, CompoundDoc};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use steward_estate::registry::CompoundSummary;
use steward_estate::Role;
use utoipa::ToSchema;

/// A compound as the API sends it: the registry's summary and the names of its
/// community, street and station (the id when the estate has no name).
#[derive(Debug, Serialize)]
pub struct CompoundView {
    #[serde(flatten)]
    pub summary: CompoundSummary,
    pub community_name: String,
    pub station_name: String,
    pub street_name: String,
    /// property_company, self_managed, state_fallback or none.
    pub management: &'static str,
    /// Since when the compound is covered (`YYYY-MM-DD`), if it was taken over.
    pub takeover_date: Option<String>,
}

/// Reply of `GET /api/v1/compounds`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompoundList {
    #[serde(serialize_with = "sorted")]
    #[schema(value_type = Vec<CompoundDoc>)]
    pub compounds: Vec<CompoundView>,
}

/// Compounds with their responsible station (admin, manager, crew, dispatcher: scoped).
#[utoipa::path(get, path = "/api/v1/compounds", tag = "estate",
    responses((status = 200, description = "the compounds, by id", body = CompoundList),
        (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn list_compounds(
    who: Principal,
    State(s): State<AppState>,
) -> Result<Json<CompoundList>, ApiError> {
    who.require(&[Role::Manager, Role::Crew, Role::Dispatcher])?;
    let reg = s.registry.clone();
    let mut compounds = blocking(move || Ok(reg.compounds()?)).await?;
    compounds.retain(|c| who.can_see_compound(&c.id));
    let names = place_names(&s).await?;
    let people = s.registry.people();
    let compounds = compounds
        .into_iter()
        .map(|c| CompoundView {
            management: people
                .compound(&c.id)
                .map(|p| p.management.as_str())
                .unwrap_or("none"),
            takeover_date: people
                .compound(&c.id)
                .and_then(|p| p.takeover_date)
                .map(|d| d.to_string()),
            community_name: name_of(&names.communities, &c.community),
            station_name: name_of(&names.stations, &c.station),
            street_name: name_of(&names.streets, &c.street),
            summary: c,
        })
        .collect();
    Ok(Json(CompoundList { compounds }))
}
