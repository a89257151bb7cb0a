//! The dispatcher's desk over HTTP (docs/dispatch.md): tickets opened from a phone call,
//! transfers to another station, merges, links and cancelling duplicates. Dispatchers
//! (and admins) only; every ticket touched must be in the caller's scope.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::names::place_names;
use crate::params::id_param;
use crate::resident::CATEGORIES;
use crate::schema::{Sorted, TicketDoc};
use crate::state::AppState;
use crate::tickets::{ticket_id, views, TicketView};
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use steward_estate::Role;
use steward_tickets::{
    CallTicket, Caller, LinkRelation, Priority, Ticket, TicketState, SOURCE_PHONE,
};
use utoipa::ToSchema;

fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v)
        .map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))
}

/// Trimmed text of 1 to `max` characters (one line unless `multiline`), or a 400 naming
/// the field.
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

fn opt_text(name: &str, v: &Option<String>, max: usize) -> Result<Option<String>, ApiError> {
    match v.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => text(name, v, max, false).map(Some),
    }
}

/// The audit trail says which token acted, next to the person the client names.
fn actor(who: &Principal, person: &Option<String>) -> Result<String, ApiError> {
    Ok(match opt_text("actor", person, 64)? {
        Some(p) if who.token_id.is_some() => format!("{p} [{}]", who.name),
        Some(p) => p,
        None => who.name.clone(),
    })
}

/// A phone number as callers give it: 3 to 32 digits, spaces, `+`, `-`, `(`, `)`.
fn phone(v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    let ok = (3..=32).contains(&v.chars().count())
        && v.chars().any(|c| c.is_ascii_digit())
        && v.chars().all(|c| c.is_ascii_digit() || " +-()".contains(c));
    if !ok {
        return Err(ApiError::BadRequest(
            "caller.phone: 3 to 32 digits, spaces, +, -, ( or )".into(),
        ));
    }
    Ok(v.to_string())
}

async fn one_view(s: &AppState, t: Ticket) -> Result<TicketView, ApiError> {
    let id = t.id;
    views(s, vec![t])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(format!("ticket {id}: no view")))
}

/// The caller of a phone ticket.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallerBody {
    /// 1 to 64 characters.
    pub name: String,
    /// 3 to 32 digits, spaces, `+`, `-`, `(`, `)`.
    pub phone: String,
}

/// A ticket from a phone call.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallBody {
    /// P1, P2 or P3 (a caller can report an emergency).
    pub priority: String,
    pub caller: CallerBody,
    /// Compound id (required, in the dispatcher's scope).
    pub compound: String,
    /// Building id, when the caller named one.
    #[serde(default)]
    pub building: Option<String>,
    #[serde(default)]
    pub floor: Option<String>,
    /// Where exactly, free text (at most 200 characters).
    #[serde(default)]
    pub location: Option<String>,
    /// lift, fire_safety, water_supply, drainage, gate, lighting or other.
    pub category: String,
    /// What the caller says, 1 to 1000 characters.
    pub description: String,
    /// The dispatcher taking the call (recorded with the token's name).
    #[serde(default)]
    pub actor: Option<String>,
}

/// Open a ticket from a phone call (dispatcher, admin): routed to the compound's station,
/// recorded with source `phone` and the dispatcher in the audit trail, announced like any
/// new ticket. The caller is kept apart from the ticket text.
#[utoipa::path(post, path = "/api/v1/tickets", tag = "dispatch",
    request_body = CallBody,
    responses((status = 201, description = "the new ticket", body = TicketDoc),
        (status = 400, description = "names the invalid field"),
        (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn create_call(
    who: Principal,
    State(s): State<AppState>,
    b: Result<Json<CallBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    who.require(&[Role::Dispatcher])?;
    let b = body(b)?;
    let priority = Priority::parse(&b.priority)
        .ok_or_else(|| ApiError::BadRequest("priority: expected P1, P2 or P3".into()))?;
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
    who.check(
        who.can_see_compound(&b.compound),
        &format!("compound `{}`", b.compound),
    )?;
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
    let description = text("description", &b.description, 1000, true)?;
    let caller = Caller {
        name: text("caller.name", &b.caller.name, 64, false)?,
        phone: phone(&b.caller.phone)?,
        source: SOURCE_PHONE.into(),
    };
    let building = match opt_text("building", &b.building, 64)? {
        None => String::new(),
        Some(id) => {
            id_param("building", &id)?;
            if !place_names(&s).await?.buildings.contains_key(&id) {
                return Err(ApiError::BadRequest(format!(
                    "building: unknown building `{id}`"
                )));
            }
            id
        }
    };
    let mut place = Vec::new();
    if !building.is_empty() {
        place.push(format!("building {building}"));
    }
    if let Some(f) = opt_text("floor", &b.floor, 16)? {
        place.push(format!("floor {f}"));
    }
    if let Some(l) = opt_text("location", &b.location, 200)? {
        place.push(l);
    }
    let mut detail = format!("phone call: {description}");
    if !place.is_empty() {
        detail.push_str(&format!("\nlocation: {}", place.join(", ")));
    }
    let summary: String = description
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(80)
        .collect();
    let call = CallTicket {
        compound: b.compound.clone(),
        station,
        building,
        category: category.to_string(),
        priority,
        title: format!("phone call ({category}): {summary}"),
        detail,
        caller,
        ts_ms: 0,
    };
    let actor = actor(&who, &b.actor)?;
    let desk = s.tickets.clone();
    let t = blocking(move || Ok(desk.call_in(call, &actor)?)).await?;
    let view = one_view(&s, t).await?;
    Ok((StatusCode::CREATED, Json(Sorted(view))).into_response())
}

/// Move a ticket to another station.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    /// Station id to hand the ticket to.
    pub station: String,
    /// Why (1 to 500 characters), for the audit trail.
    pub reason: String,
    #[serde(default)]
    pub actor: Option<String>,
}

/// Transfer an active ticket to another station (dispatcher, admin). The SLA due times
/// stay; both stations hear of it; the rating splits the ticket by who held it when
/// (docs/rating.md).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/transfer", tag = "dispatch",
    params(("id" = i64, Path, description = "ticket id")),
    request_body = TransferBody,
    responses((status = 200, description = "the ticket at its new station", body = TicketDoc),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "not active, or already at that station")),
    security(("bearer" = [])))]
pub(crate) async fn transfer(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<TransferBody>, JsonRejection>,
) -> Result<Json<Sorted<TicketView>>, ApiError> {
    who.require(&[Role::Dispatcher])?;
    let id = ticket_id(&id)?;
    let b = body(b)?;
    id_param("station", &b.station)?;
    if !place_names(&s).await?.stations.contains_key(&b.station) {
        return Err(ApiError::BadRequest(format!(
            "station: unknown station `{}`",
            b.station
        )));
    }
    let reason = text("reason", &b.reason, 500, false)?;
    let actor = actor(&who, &b.actor)?;
    let desk = s.tickets.clone();
    let t = blocking(move || {
        let t = desk.store().ticket(id)?;
        who.check(who.can_see_ticket(&t), &format!("ticket {id}"))?;
        Ok(desk.transfer(id, &b.station, &reason, &actor)?)
    })
    .await?;
    Ok(Json(Sorted(one_view(&s, t).await?)))
}

/// Merge this ticket into another.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeBody {
    /// The ticket that carries on.
    pub into: i64,
    #[serde(default)]
    pub note: String,
    #[serde(default)]
    pub actor: Option<String>,
}

/// Reply of a merge: both tickets after it.
#[derive(Debug, Serialize, ToSchema)]
pub struct Merged {
    #[schema(value_type = TicketDoc)]
    pub source: TicketView,
    #[schema(value_type = TicketDoc)]
    pub target: TicketView,
}

/// Merge a ticket (a resident report, a duplicate) into another (dispatcher, admin): the
/// source is cancelled "merged into #N", its occurrences and report texts go to the
/// target's audit trail, residents following it follow the target.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/merge", tag = "dispatch",
    params(("id" = i64, Path, description = "ticket id (the source)")),
    request_body = MergeBody,
    responses((status = 200, description = "source and target after the merge", body = Merged),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "the source cannot be cancelled, or the target is")),
    security(("bearer" = [])))]
pub(crate) async fn merge(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<MergeBody>, JsonRejection>,
) -> Result<Json<Merged>, ApiError> {
    who.require(&[Role::Dispatcher])?;
    let id = ticket_id(&id)?;
    let b = body(b)?;
    let into = ticket_id(&b.into.to_string())
        .map_err(|_| ApiError::BadRequest("into: expected a positive ticket id".into()))?;
    if b.note.chars().count() > 500 || b.note.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "note: at most 500 characters on one line".into(),
        ));
    }
    let actor = actor(&who, &b.actor)?;
    let desk = s.tickets.clone();
    let (src, dst) = blocking(move || {
        for t in [id, into] {
            let t = desk.store().ticket(t)?;
            who.check(who.can_see_ticket(&t), &format!("ticket {}", t.id))?;
        }
        Ok(desk.merge(id, into, b.note.trim(), &actor)?)
    })
    .await?;
    Ok(Json(Merged {
        source: one_view(&s, src).await?,
        target: one_view(&s, dst).await?,
    }))
}

/// Link this ticket to another.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkBody {
    /// The other ticket.
    pub ticket: i64,
    /// `related` or `duplicate` (this ticket duplicates the other).
    pub relation: String,
    #[serde(default)]
    pub actor: Option<String>,
}

/// Link two tickets (dispatcher, admin); both audit trails record it and the ticket
/// detail lists it. A duplicate is then cancelled with a reason
/// (`POST /api/v1/tickets/{id}/cancel`) or merged.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/links", tag = "dispatch",
    params(("id" = i64, Path, description = "ticket id")),
    request_body = LinkBody,
    responses((status = 201, description = "the link", body = crate::schema::TicketLinkDoc),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "already linked")),
    security(("bearer" = [])))]
pub(crate) async fn link(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<LinkBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    who.require(&[Role::Dispatcher])?;
    let id = ticket_id(&id)?;
    let b = body(b)?;
    let other = ticket_id(&b.ticket.to_string())
        .map_err(|_| ApiError::BadRequest("ticket: expected a positive ticket id".into()))?;
    let relation = LinkRelation::parse(&b.relation)
        .filter(|r| *r != LinkRelation::Merged)
        .ok_or_else(|| ApiError::BadRequest("relation: expected related or duplicate".into()))?;
    let actor = actor(&who, &b.actor)?;
    let desk = s.tickets.clone();
    let l = blocking(move || {
        for t in [id, other] {
            let t = desk.store().ticket(t)?;
            who.check(who.can_see_ticket(&t), &format!("ticket {}", t.id))?;
        }
        Ok(desk.link(id, other, relation, &actor)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(l)).into_response())
}

/// Cancel a ticket, with the reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelBody {
    /// Why (1 to 500 characters): "duplicate of #12", "false alarm".
    pub reason: String,
    #[serde(default)]
    pub actor: Option<String>,
}

/// Cancel a ticket with a reason (dispatcher, admin), e.g. a duplicate. A ticket a crew
/// is on site for cannot be cancelled (409).
#[utoipa::path(post, path = "/api/v1/tickets/{id}/cancel", tag = "dispatch",
    params(("id" = i64, Path, description = "ticket id")),
    request_body = CancelBody,
    responses((status = 200, description = "the cancelled ticket", body = TicketDoc),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409, description = "illegal transition")),
    security(("bearer" = [])))]
pub(crate) async fn cancel(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    b: Result<Json<CancelBody>, JsonRejection>,
) -> Result<Json<Sorted<TicketView>>, ApiError> {
    who.require(&[Role::Dispatcher])?;
    let id = ticket_id(&id)?;
    let b = body(b)?;
    let reason = text("reason", &b.reason, 500, false)?;
    let actor = actor(&who, &b.actor)?;
    let desk = s.tickets.clone();
    let t = blocking(move || {
        let t = desk.store().ticket(id)?;
        who.check(who.can_see_ticket(&t), &format!("ticket {id}"))?;
        Ok(desk.transition(id, TicketState::Cancelled, &actor, &reason)?)
    })
    .await?;
    Ok(Json(Sorted(one_view(&s, t).await?)))
}
