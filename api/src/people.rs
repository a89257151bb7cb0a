//! People of the estate over HTTP (issue 13): who is on call at a station, its crew, the
//! people list, and the streets' management coverage. Contact details (phone, email) are
//! shown in clear to admins and to the crew of a station that uses the person (crew
//! member, head, on its rota, captain of one of its buildings); masked for anyone else.
//! Handlers never log contact details.

use crate::auth::Principal;
use crate::error::ApiError;
use crate::names::{name_of, place_names};
use crate::params::{id_param, params, single_values, Pairs};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::Json;
use chrono::{SecondsFormat, TimeZone};
use serde::Serialize;
use std::collections::BTreeMap;
use steward_estate::people::{mask_email, mask_phone, Management, People, Person};
use steward_estate::Role;
use utoipa::ToSchema;

/// A person and how to reach them; `phone` and `email` are masked (`138****0001`,
/// `w***@example.com`) unless the caller may see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonContact {
    #[schema(required = true)]
    pub email: Option<String>,
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub phone: Option<String>,
}

impl PersonContact {
    fn of(p: &Person, clear: bool) -> PersonContact {
        PersonContact {
            email: p
                .email
                .as_deref()
                .map(|e| if clear { e.to_string() } else { mask_email(e) }),
            id: p.id.clone(),
            name: p.name.clone(),
            phone: p
                .phone
                .as_deref()
                .map(|v| if clear { v.to_string() } else { mask_phone(v) }),
        }
    }
}

/// Whether the caller sees the contact details of people a station uses in clear.
fn clear_for(who: &Principal, station: &str) -> bool {
    who.is_admin() || (who.role == Role::Crew && who.scope.stations.contains(station))
}

/// A station the caller may look at (admin; manager or crew of it), or 400/403/404.
async fn station_in_scope(s: &AppState, who: &Principal, id: &str) -> Result<(), ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    id_param("id", id)?;
    let names = place_names(s).await?;
    if !names.stations.contains_key(id) {
        return Err(ApiError::NotFound(format!("station `{id}` not found")));
    }
    who.check(who.can_see_station(id), &format!("station `{id}`"))
}

/// Reply of `GET /api/v1/stations/{id}/on-call`.
#[derive(Debug, Serialize, ToSchema)]
pub struct OnCall {
    /// The instant asked about, RFC 3339 in the estate's time zone.
    pub at: String,
    /// Who is on call then: a dated override wins over the weekly pattern; empty when
    /// nobody is.
    pub on_call: Vec<PersonContact>,
    pub station: String,
    /// The estate's time zone (IANA name); rotas are in its local time.
    pub timezone: String,
}

fn rfc3339(people: &People, at_ms: i64) -> String {
    let tz = people.timezone();
    tz.timestamp_millis_opt(at_ms)
        .single()
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, false))
        .unwrap_or_else(|| at_ms.to_string())
}

/// Who is on call at a station now, or at `at` (admin; manager or crew of the station).
#[utoipa::path(get, path = "/api/v1/stations/{id}/on-call", tag = "people",
    params(("id" = String, Path, description = "station id"),
        ("at" = Option<String>, Query, description = "RFC 3339 instant; default now")),
    responses((status = 200, description = "who is on call", body = OnCall),
        (status = 400, description = "names the bad parameter"),
        (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn on_call(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(pairs): Query<Pairs>,
) -> Result<Json<OnCall>, ApiError> {
    let q = single_values(&pairs, &[])?;
    params(&q, &["at"])?;
    station_in_scope(&s, &who, &id).await?;
    let at_ms = match q.get("at") {
        None => s.tickets.now_ms(),
        Some(v) => chrono::DateTime::parse_from_rfc3339(v)
            .map_err(|_| {
                ApiError::BadRequest(
                    "at: expected an RFC 3339 instant, e.g. 2026-12-24T08:00:00+08:00".into(),
                )
            })?
            .timestamp_millis(),
    };
    let people = s.registry.people();
    let clear = clear_for(&who, &id);
    Ok(Json(OnCall {
        at: rfc3339(&people, at_ms),
        on_call: people
            .on_call(&id, at_ms)
            .into_iter()
            .map(|p| PersonContact::of(p, clear))
            .collect(),
        station: id,
        timezone: people.timezone().name().to_string(),
    }))
}

/// A member of one of a station's crews.
#[derive(Debug, Serialize, ToSchema)]
pub struct CrewMember {
    /// Id of the first of the station's crews the person is in.
    pub crew: String,
    #[schema(required = true)]
    pub email: Option<String>,
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub phone: Option<String>,
}

/// Reply of `GET /api/v1/stations/{id}/crew`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StationCrew {
    /// The station head, if the estate names one.
    #[schema(required = true)]
    pub head: Option<PersonContact>,
    /// Members of every crew of the station, each once.
    pub members: Vec<CrewMember>,
    /// Ids of who is on call now (they may be stand-ins from outside the crews).
    pub on_call: Vec<String>,
    pub station: String,
}

/// A station's crew members, its head and who is on call now (admin; manager or crew of
/// the station). The crew app dispatches to a named member from this list.
#[utoipa::path(get, path = "/api/v1/stations/{id}/crew", tag = "people",
    params(("id" = String, Path, description = "station id")),
    responses((status = 200, description = "crew members, head, on call", body = StationCrew),
        (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn station_crew(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<StationCrew>, ApiError> {
    station_in_scope(&s, &who, &id).await?;
    let people = s.registry.people();
    let clear = clear_for(&who, &id);
    let members = people
        .crew_members(&id)
        .into_iter()
        .map(|p| {
            let c = PersonContact::of(p, clear);
            CrewMember {
                crew: people
                    .crew_of(&id, &p.id)
                    .map(|c| c.id.clone())
                    .unwrap_or_default(),
                email: c.email,
                id: c.id,
                name: c.name,
                phone: c.phone,
            }
        })
        .collect();
    Ok(Json(StationCrew {
        head: people
            .station_head(&id)
            .map(|p| PersonContact::of(p, clear)),
        members,
        on_call: people
            .on_call(&id, s.tickets.now_ms())
            .into_iter()
            .map(|p| p.id.clone())
            .collect(),
        station: id,
    }))
}

/// One person of `GET /api/v1/people`, with what the estate makes of them.
#[derive(Debug, Serialize, ToSchema)]
pub struct PersonEntry {
    /// Buildings the person is captain of.
    pub captain_of: Vec<String>,
    /// Names of the notification endpoints the person is reached on.
    pub channels: Vec<String>,
    /// Crews the person is in.
    pub crews: Vec<String>,
    #[schema(required = true)]
    pub email: Option<String>,
    /// Stations the person heads.
    pub head_of: Vec<String>,
    pub id: String,
    pub name: String,
    #[schema(required = true)]
    pub phone: Option<String>,
}

/// Reply of `GET /api/v1/people`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeopleList {
    /// By id.
    pub people: Vec<PersonEntry>,
    pub timezone: String,
}

/// People of the estate: an admin sees everyone; a crew the people its station uses (its
/// crews, head, rota and the captains of its buildings), each with contact details.
#[utoipa::path(get, path = "/api/v1/people", tag = "people",
    responses((status = 200, description = "people, by id", body = PeopleList),
        (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn list_people(
    who: Principal,
    State(s): State<AppState>,
) -> Result<Json<PeopleList>, ApiError> {
    who.require(&[Role::Crew])?;
    let people = s.registry.people();
    let mut stations: Vec<String> = place_names(&s).await?.stations.into_keys().collect();
    stations.sort();
    let station = who.scope.stations.iter().next().cloned();
    let visible = |p: &Person| match &station {
        _ if who.is_admin() => true,
        Some(st) => people.station_uses(st, &p.id),
        None => false,
    };
    let entries = people
        .all()
        .into_iter()
        .filter(|p| visible(p))
        .map(|p| {
            let crews = people
                .all_crews()
                .iter()
                .filter(|c| c.members.contains(&p.id))
                .filter(|c| who.is_admin() || station.as_deref() == Some(c.station.as_str()))
                .map(|c| c.id.clone())
                .collect();
            let head_of = stations
                .iter()
                .filter(|st| people.station_head(st).is_some_and(|h| h.id == p.id))
                .cloned()
                .collect();
            // Everyone listed is used by the caller's station, or the caller is an admin.
            let c = PersonContact::of(p, true);
            PersonEntry {
                captain_of: people
                    .captain_buildings(&p.id)
                    .into_iter()
                    .map(String::from)
                    .collect(),
                channels: p.channels.clone(),
                crews,
                email: c.email,
                head_of,
                id: c.id,
                name: c.name,
                phone: c.phone,
            }
        })
        .collect();
    Ok(Json(PeopleList {
        people: entries,
        timezone: people.timezone().name().to_string(),
    }))
}

/// Compounds by who manages them.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct ManagementCounts {
    pub none: u64,
    pub property_company: u64,
    pub self_managed: u64,
    pub state_fallback: u64,
}

/// One street of the coverage report.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreetCoverage {
    /// Compounds by management type.
    pub by_management: ManagementCounts,
    pub compounds: u64,
    /// Of the `none` and `state_fallback` compounds, those with a takeover date: covered
    /// since that date.
    pub covered: u64,
    /// Compounds without a property company or self-management (`none` and
    /// `state_fallback`).
    pub no_management: u64,
    pub street: String,
    pub street_name: String,
}

/// Reply of `GET /api/v1/reports/coverage`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CoverageReport {
    /// By street id.
    pub streets: Vec<StreetCoverage>,
}

/// How a street's compounds are managed, and how many of its no-management compounds are
/// covered since a takeover (admin; manager: its compounds).
#[utoipa::path(get, path = "/api/v1/reports/coverage", tag = "reports",
    params(("street" = Option<String>, Query, description = "only this street")),
    responses((status = 200, description = "per street", body = CoverageReport),
        (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn coverage(
    who: Principal,
    State(s): State<AppState>,
    Query(pairs): Query<Pairs>,
) -> Result<Json<CoverageReport>, ApiError> {
    who.require(&[Role::Manager])?;
    let q = single_values(&pairs, &[])?;
    params(&q, &["street"])?;
    if let Some(st) = q.get("street") {
        id_param("street", st)?;
    }
    let people = s.registry.people();
    let names = place_names(&s).await?;
    let mut streets: BTreeMap<String, StreetCoverage> = BTreeMap::new();
    for c in people.compounds() {
        if q.get("street").is_some_and(|st| *st != c.street) || !who.can_see_compound(&c.id) {
            continue;
        }
        let row = streets
            .entry(c.street.clone())
            .or_insert_with(|| StreetCoverage {
                by_management: ManagementCounts::default(),
                compounds: 0,
                covered: 0,
                no_management: 0,
                street: c.street.clone(),
                street_name: name_of(&names.streets, &c.street),
            });
        row.compounds += 1;
        let m = &mut row.by_management;
        match c.management {
            Management::PropertyCompany => m.property_company += 1,
            Management::SelfManaged => m.self_managed += 1,
            Management::StateFallback => m.state_fallback += 1,
            Management::None => m.none += 1,
        }
        if matches!(c.management, Management::None | Management::StateFallback) {
            row.no_management += 1;
            if c.takeover_date.is_some() {
                row.covered += 1;
            }
        }
    }
    Ok(Json(CoverageReport {
        streets: streets.into_values().collect(),
    }))
}
