//! Tickets over HTTP: filtered lists (JSON and CSV), one ticket with its audit trail, and
//! lifecycle moves, all restricted to the caller's scope. JSON tickets carry the names of
//! their compound, building, street and station and the device's location next to the ids.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::names::{name_of, place_names};
use crate::params::{id_param, params, single_values, Pairs};
use crate::schema::{sorted, Sorted, TicketDetailDoc, TicketDoc};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use steward_estate::Role;
use steward_tickets::{AuditRecord, Priority, Ticket, TicketFilter, TicketState};
use utoipa::ToSchema;

const LIST_PARAMS: [&str; 12] = [
    "station",
    "compound",
    "device_id",
    "rule_id",
    "priority",
    "state",
    "active",
    "from",
    "to",
    "limit",
    "offset",
    "format",
];

/// Rows a JSON list returns at most; a CSV export may ask for more.
const JSON_MAX: u32 = 1000;
const CSV_MAX: u32 = 100_000;
const CSV_DEFAULT: u32 = 10_000;

pub(crate) fn ticket_id(raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::BadRequest("id: expected a positive integer".into()))
}

/// A time bound: milliseconds since the epoch or RFC 3339 (`2026-11-01T00:00:00Z`).
pub(crate) fn time_param(name: &str, v: &str) -> Result<i64, ApiError> {
    if let Ok(ms) = v.parse::<i64>() {
        if ms >= 0 {
            return Ok(ms);
        }
    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp_millis());
    }
    Err(ApiError::BadRequest(format!(
        "{name}: expected RFC 3339 (e.g. 2026-11-01T00:00:00Z) or milliseconds since the epoch"
    )))
}

/// Values of a repeatable parameter, each possibly a comma list.
fn multi<'a>(pairs: &'a Pairs, name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

fn bounded(q: &HashMap<String, String>, name: &str, max: u32) -> Result<Option<u32>, ApiError> {
    q.get(name)
        .map(|v| match v.parse::<u32>() {
            Ok(n) if n <= max && (n >= 1 || name == "offset") => Ok(n),
            _ => Err(ApiError::BadRequest(format!(
                "{name}: expected an integer between {} and {max}",
                u32::from(name != "offset")
            ))),
        })
        .transpose()
}

/// A ticket as the JSON API sends it: the stored ticket and the names of the places its
/// ids point to (the id when the estate has no name), and where the device is.
#[derive(Debug, Serialize)]
pub struct TicketView {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub building_name: String,
    pub compound_name: String,
    /// The device's location in its building; empty when none is recorded or the ticket
    /// is not a device's (a resident's report).
    pub location: String,
    pub station_name: String,
    pub street_name: String,
}

/// The tickets with their names, read once for the lot.
pub(crate) async fn views(s: &AppState, tickets: Vec<Ticket>) -> Result<Vec<TicketView>, ApiError> {
    let names = place_names(s).await?;
    let dir = s.registry.directory();
    Ok(tickets
        .into_iter()
        .map(|t| {
            let street = dir
                .compounds
                .get(&t.compound)
                .map(|c| c.street.as_str())
                .unwrap_or_default();
            TicketView {
                building_name: name_of(&names.buildings, &t.building),
                compound_name: name_of(&names.compounds, &t.compound),
                location: dir
                    .device(&t.device_id)
                    .map(|d| d.location.clone())
                    .unwrap_or_default(),
                station_name: name_of(&names.stations, &t.station),
                street_name: name_of(&names.streets, street),
                ticket: t,
            }
        })
        .collect())
}

/// Reply of `GET /api/v1/tickets` (JSON).
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketList {
    #[serde(serialize_with = "sorted")]
    #[schema(value_type = Vec<TicketDoc>)]
    pub tickets: Vec<TicketView>,
}

/// A ticket with its names and its audit trail.
#[derive(Debug, Serialize)]
pub struct TicketDetailView {
    pub ticket: TicketView,
    pub audit: Vec<AuditRecord>,
    /// Links from or to the ticket (related, duplicate, merged).
    pub links: Vec<steward_tickets::TicketLink>,
    /// Who called, for a ticket opened from a call; shown to admins, dispatchers and the
    /// station's crew only (null otherwise).
    pub caller: Option<steward_tickets::Caller>,
    /// Who the ticket was last dispatched to, from the audit trail.
    pub assignee: Option<String>,
    /// The cause the crew named when resolving, from the audit trail.
    pub failure_code: Option<String>,
    /// Failure codes a crew may choose from when resolving this ticket.
    pub failure_codes: Vec<&'static str>,
    /// States the ticket may move to now, so a client offers only legal moves.
    pub next_states: Vec<TicketState>,
}

impl TicketDetailView {
    pub fn new(
        ticket: TicketView,
        audit: Vec<AuditRecord>,
        links: Vec<steward_tickets::TicketLink>,
        caller: Option<steward_tickets::Caller>,
    ) -> TicketDetailView {
        // The newest transition into `to` whose note starts with `prefix`: the text
        // after the prefix, up to the `: ` before the crew's own words.
        let from_audit = |to: TicketState, prefix: &str| {
            audit
                .iter()
                .rev()
                .find(|r| r.action == "transition" && r.to_state == Some(to))
                .and_then(|r| r.note.strip_prefix(prefix))
                .map(|rest| rest.split_once(": ").map_or(rest, |(v, _)| v).to_string())
        };
        let state = ticket.ticket.state;
        TicketDetailView {
            assignee: from_audit(TicketState::Dispatched, ASSIGNED_PREFIX),
            failure_code: from_audit(TicketState::Resolved, FAILURE_PREFIX),
            failure_codes: crate::catalog::failure_codes(&ticket.ticket.kind).to_vec(),
            next_states: TicketState::ALL
                .into_iter()
                .filter(|to| state.can_go_to(*to))
                .collect(),
            ticket,
            audit,
            links,
            caller,
        }
    }
}

/// How the audit note of a dispatch names the assignee, and of a resolve the failure code.
const ASSIGNED_PREFIX: &str = "assigned to ";
const FAILURE_PREFIX: &str = "failure code ";

/// What the crew wrote when resolving, without the failure code the audit note starts
/// with (a resident's closure note shows their words only).
pub(crate) fn resolve_words(note: &str) -> String {
    note.strip_prefix(FAILURE_PREFIX)
        .and_then(|rest| rest.split_once(": "))
        .map_or(note, |(_, words)| words)
        .to_string()
}

/// Output format of a ticket list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// Parse and check a ticket list request: 400 naming the parameter, 403 for a station or
/// compound outside the caller's scope; the scope itself is applied in SQL.
fn filter(who: &Principal, pairs: &Pairs, csv: bool) -> Result<(TicketFilter, Format), ApiError> {
    who.require(&[Role::Manager, Role::Crew, Role::Captain, Role::Dispatcher])?;
    let q = single_values(pairs, &["priority", "state"])?;
    params(&q, &LIST_PARAMS)?;
    let format = match q.get("format").map(String::as_str) {
        None if csv => Format::Csv,
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(_) => return Err(ApiError::BadRequest("format: expected json or csv".into())),
    };
    let mut f = TicketFilter::default();
    for (name, slot) in [
        ("station", &mut f.station),
        ("compound", &mut f.compound),
        ("device_id", &mut f.device_id),
        ("rule_id", &mut f.rule_id),
    ] {
        if let Some(v) = q.get(name) {
            id_param(name, v)?;
            *slot = Some(v.clone());
        }
    }
    if let Some(st) = &f.station {
        who.check(who.can_see_station(st), &format!("station `{st}`"))?;
    }
    if let Some(c) = &f.compound {
        who.check(who.can_see_compound(c), &format!("compound `{c}`"))?;
    }
    for p in multi(pairs, "priority") {
        f.priorities.push(Priority::parse(p).ok_or_else(|| {
            ApiError::BadRequest(
                "priority: expected P1, P2 or P3 (repeat or comma-separate for several)".into(),
            )
        })?);
    }
    for st in multi(pairs, "state") {
        f.states.push(TicketState::parse(st).ok_or_else(|| {
            ApiError::BadRequest(
                "state: expected open, acknowledged, dispatched, on_site, resolved, closed, on_hold or cancelled (repeat or comma-separate for several)".into(),
            )
        })?);
    }
    f.active_only = match q.get("active").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "active: expected true or false".into(),
            ))
        }
    };
    if let Some(v) = q.get("from") {
        f.from_ms = Some(time_param("from", v)?);
    }
    if let Some(v) = q.get("to") {
        f.to_ms = Some(time_param("to", v)?);
    }
    if let (Some(a), Some(b)) = (f.from_ms, f.to_ms) {
        if a > b {
            return Err(ApiError::BadRequest("to: must not be before from".into()));
        }
    }
    let max = if format == Format::Csv {
        CSV_MAX
    } else {
        JSON_MAX
    };
    f.limit = bounded(&q, "limit", max)?;
    if format == Format::Csv && f.limit.is_none() {
        f.limit = Some(CSV_DEFAULT);
    }
    f.offset = bounded(&q, "offset", 1_000_000)?;
    f.within = who.ticket_scope();
    Ok((f, format))
}

async fn run(s: &AppState, f: TicketFilter) -> Result<Vec<Ticket>, ApiError> {
    let desk = s.tickets.clone();
    blocking(move || Ok(desk.store().list(&f)?)).await
}

/// Tickets, newest first (admin; manager for its compounds; crew for its station).
#[utoipa::path(get, path = "/api/v1/tickets", tag = "tickets",
    params(
        ("station" = Option<String>, Query, description = "routed to this station (must be in scope)"),
        ("compound" = Option<String>, Query, description = "in this compound (must be in scope)"),
        ("device_id" = Option<String>, Query, description = "of this device"),
        ("rule_id" = Option<String>, Query, description = "raised by this rule"),
        ("priority" = Option<Vec<String>>, Query, description = "P1, P2, P3; repeat or comma-separate"),
        ("state" = Option<Vec<String>>, Query, description = "open, acknowledged, dispatched, on_site, resolved, closed, on_hold, cancelled; repeat or comma-separate"),
        ("active" = Option<bool>, Query, description = "only tickets that still need work"),
        ("from" = Option<String>, Query, description = "opened at or after: RFC 3339 or ms"),
        ("to" = Option<String>, Query, description = "opened before: RFC 3339 or ms"),
        ("limit" = Option<u32>, Query, description = "1 to 1000 (default 500)"),
        ("offset" = Option<u32>, Query, description = "skip this many"),
        ("format" = Option<String>, Query, description = "json (default) or csv"),
    ),
    responses((status = 200, description = "the tickets, newest first; CSV with format=csv",
            content((TicketList = "application/json"), (String = "text/csv"))),
        (status = 400, description = "names the bad parameter"), (status = 401),
        (status = 403, description = "role may not list tickets, or station/compound outside scope")),
    security(("bearer" = [])))]
pub(crate) async fn list_tickets(
    who: Principal,
    State(s): State<AppState>,
    Query(pairs): Query<Pairs>,
) -> Result<Response, ApiError> {
    let (f, format) = filter(&who, &pairs, false)?;
    let tickets = run(&s, f).await?;
    match format {
        Format::Json => {
            let tickets = views(&s, tickets).await?;
            Ok(Json(TicketList { tickets }).into_response())
        }
        Format::Csv => csv_response(&tickets),
    }
}

/// The same list as CSV (same filters and scope; limit up to 100000, default 10000).
#[utoipa::path(get, path = "/api/v1/tickets.csv", tag = "tickets",
    params(
        ("station" = Option<String>, Query, description = "as /api/v1/tickets"),
        ("compound" = Option<String>, Query, description = "as /api/v1/tickets"),
        ("priority" = Option<Vec<String>>, Query, description = "as /api/v1/tickets"),
        ("state" = Option<Vec<String>>, Query, description = "as /api/v1/tickets"),
        ("from" = Option<String>, Query, description = "as /api/v1/tickets"),
        ("to" = Option<String>, Query, description = "as /api/v1/tickets"),
        ("limit" = Option<u32>, Query, description = "1 to 100000 (default 10000)"),
        ("offset" = Option<u32>, Query, description = "skip this many"),
    ),
    responses((status = 200, description = "text/csv, one row per ticket", body = String,
            content_type = "text/csv"),
        (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn tickets_csv(
    who: Principal,
    State(s): State<AppState>,
    Query(pairs): Query<Pairs>,
) -> Result<Response, ApiError> {
    let (f, _) = filter(&who, &pairs, true)?;
    let tickets = run(&s, f).await?;
    csv_response(&tickets)
}

const CSV_HEADER: [&str; 26] = [
    "id",
    "opened",
    "state",
    "priority",
    "station",
    "compound",
    "building",
    "device_id",
    "kind",
    "rule_id",
    "title",
    "detail",
    "occurrences",
    "condition_active",
    "acknowledged",
    "dispatched",
    "on_site",
    "resolved",
    "closed",
    "cancelled",
    "ack_due",
    "ack_breached",
    "on_site_breached",
    "resolve_breached",
    "escalation_level",
    "repeat_of",
];

fn rfc3339(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Text a spreadsheet could take for a formula (`=`, `+`, `-`, `@`, tab, CR) gets a
/// leading apostrophe: titles and details can carry a resident's words.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_string(),
    }
}

fn csv_response(tickets: &[Ticket]) -> Result<Response, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let internal = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
    w.write_record(CSV_HEADER).map_err(internal)?;
    for t in tickets {
        w.write_record([
            t.id.to_string(),
            rfc3339(Some(t.opened_ms)),
            t.state.as_str().to_string(),
            t.priority.as_str().to_string(),
            cell(&t.station),
            cell(&t.compound),
            cell(&t.building),
            cell(&t.device_id),
            cell(&t.kind),
            cell(&t.rule_id),
            cell(&t.title),
            cell(&t.detail),
            t.occurrences.to_string(),
            t.condition_active.to_string(),
            rfc3339(t.acknowledged_ms),
            rfc3339(t.dispatched_ms),
            rfc3339(t.on_site_ms),
            rfc3339(t.resolved_ms),
            rfc3339(t.closed_ms),
            rfc3339(t.cancelled_ms),
            rfc3339(Some(t.ack_due_ms)),
            t.ack_breached.to_string(),
            t.on_site_breached.to_string(),
            t.resolve_breached.to_string(),
            t.escalation_level.to_string(),
            t.repeat_of.map(|r| r.to_string()).unwrap_or_default(),
        ])
        .map_err(internal)?;
    }
    let body = w
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tickets.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

/// A ticket with its audit trail (scoped as the list).
#[utoipa::path(get, path = "/api/v1/tickets/{id}", tag = "tickets",
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, description = "the ticket and its audit trail", body = TicketDetailDoc),
        (status = 400), (status = 401), (status = 403, description = "outside the token's scope"),
        (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn get_ticket(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Sorted<TicketDetailView>>, ApiError> {
    who.require(&[Role::Manager, Role::Crew, Role::Captain, Role::Dispatcher])?;
    let id = ticket_id(&id)?;
    let desk = s.tickets.clone();
    let detail = blocking(move || Ok(desk.store().get(id)?)).await?;
    who.check(who.can_see_ticket(&detail.ticket), &format!("ticket {id}"))?;
    let (s2, t2) = (s.clone(), detail.ticket.clone());
    let (links, caller) = blocking(move || desk_extras(&s2, &who, &t2)).await?;
    let ticket = views(&s, vec![detail.ticket])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(format!("ticket {id}: no view")))?;
    Ok(Json(Sorted(TicketDetailView::new(
        ticket,
        detail.audit,
        links,
        caller,
    ))))
}

/// A move along the ticket lifecycle.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionBody {
    /// Target state: acknowledged, dispatched, on_site, resolved, closed, on_hold, cancelled.
    to: String,
    /// Who does it (crew member, dispatcher).
    actor: String,
    /// Required when resolving (what was done); otherwise optional.
    #[serde(default)]
    note: String,
    /// With `dispatched`: the crew or member sent, recorded in the audit trail.
    #[serde(default)]
    assignee: Option<String>,
    /// Required with `resolved`: the cause, one of the ticket's `failure_codes` (see the
    /// ticket detail or `/api/v1/catalog`); recorded in the audit trail.
    #[serde(default)]
    failure_code: Option<String>,
    /// The state the client saw when the user acted: when set and the ticket has moved
    /// on since, the move is refused with 409 (an action queued offline meets a ticket
    /// someone else moved).
    #[serde(default)]
    expected_state: Option<String>,
}

/// Move a ticket (admin; crew for its station's tickets). An illegal move is a 409.
#[utoipa::path(post, path = "/api/v1/tickets/{id}/transition", tag = "tickets",
    params(("id" = i64, Path, description = "ticket id")),
    request_body = TransitionBody,
    responses((status = 200, description = "the ticket after the move", body = TicketDoc),
        (status = 400),
        (status = 401), (status = 403), (status = 404),
        (status = 409, description = "illegal transition")),
    security(("bearer" = [])))]
pub(crate) async fn transition_ticket(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<TransitionBody>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Sorted<TicketView>>, ApiError> {
    who.require(&[Role::Crew])?;
    let id = ticket_id(&id)?;
    let Json(b) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    let to = TicketState::parse(&b.to).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "to: unknown state `{}`",
            b.to.chars().take(32).collect::<String>()
        ))
    })?;
    let text_ok = |v: &str, max: usize| {
        !v.trim().is_empty() && v.chars().count() <= max && !v.chars().any(char::is_control)
    };
    if !text_ok(&b.actor, 64) {
        return Err(ApiError::BadRequest(
            "actor: 1 to 64 printable characters".into(),
        ));
    }
    if b.note.chars().count() > 2000 {
        return Err(ApiError::BadRequest("note: at most 2000 characters".into()));
    }
    if to == TicketState::Resolved && b.note.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "note: required when resolving (what was done)".into(),
        ));
    }
    if to == TicketState::Cancelled && b.note.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "note: required when cancelling (the reason, e.g. a false alarm)".into(),
        ));
    }
    let expected = b
        .expected_state
        .as_deref()
        .map(|e| {
            TicketState::parse(e).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "expected_state: unknown state `{}`",
                    e.chars().take(32).collect::<String>()
                ))
            })
        })
        .transpose()?;
    if b.failure_code.is_some() && to != TicketState::Resolved {
        return Err(ApiError::BadRequest(
            "failure_code: only with to = resolved".into(),
        ));
    }
    let mut note = b.note.clone();
    if let Some(a) = &b.assignee {
        if to != TicketState::Dispatched {
            return Err(ApiError::BadRequest(
                "assignee: only with to = dispatched".into(),
            ));
        }
        if !text_ok(a, 64) {
            return Err(ApiError::BadRequest(
                "assignee: 1 to 64 printable characters".into(),
            ));
        }
        note = if note.is_empty() {
            format!("{ASSIGNED_PREFIX}{a}")
        } else {
            format!("{ASSIGNED_PREFIX}{a}: {note}")
        };
    }
    // The audit trail says which token acted, not only the name the client gave.
    let actor = match who.token_id {
        None => b.actor.clone(),
        Some(_) => format!("{} [{}]", b.actor, who.name),
    };
    let desk = s.tickets.clone();
    let who2 = who.clone();
    let failure_code = b.failure_code.clone();
    let ticket = blocking(move || {
        let t = desk.store().ticket(id)?;
        who2.check(who2.can_see_ticket(&t), &format!("ticket {id}"))?;
        if let Some(e) = expected.filter(|e| *e != t.state) {
            return Err(ApiError::Conflict(format!(
                "ticket {id} moved on: it is {} now, not {e}",
                t.state
            )));
        }
        let note = match (to, failure_code) {
            (TicketState::Resolved, Some(code)) => {
                let codes = crate::catalog::failure_codes(&t.kind);
                if !codes.contains(&code.as_str()) {
                    return Err(ApiError::BadRequest(format!(
                        "failure_code: `{}` is not one of {}",
                        code.chars().take(32).collect::<String>(),
                        codes.join(", ")
                    )));
                }
                format!("{FAILURE_PREFIX}{code}: {note}")
            }
            (TicketState::Resolved, None) => {
                return Err(ApiError::BadRequest(format!(
                    "failure_code: required when resolving, one of {}",
                    crate::catalog::failure_codes(&t.kind).join(", ")
                )))
            }
            _ => note,
        };
        Ok(desk.transition(id, to, &actor, &note)?)
    })
    .await?;
    let ticket = views(&s, vec![ticket])
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(format!("ticket {id}: no view")))?;
    Ok(Json(Sorted(ticket)))
}

/// A ticket's links and, to those who may see it, its caller: for the ticket detail.
pub(crate) fn desk_extras(
    s: &AppState,
    who: &Principal,
    t: &Ticket,
) -> Result<
    (
        Vec<steward_tickets::TicketLink>,
        Option<steward_tickets::Caller>,
    ),
    ApiError,
> {
    let store = s.tickets.store();
    let links = store.links(t.id)?;
    // Personal data: the hotline desk, admins and the crew of the ticket's station only.
    let may_see_caller = who.is_admin()
        || who.role == Role::Dispatcher
        || (who.role == Role::Crew && who.can_see_station(&t.station));
    let caller = if may_see_caller {
        store.caller(t.id)?
    } else {
        None
    };
    Ok((links, caller))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_bounds_take_ms_or_rfc3339() {
        assert_eq!(time_param("from", "1000").ok(), Some(1000));
        assert_eq!(
            time_param("from", "2026-11-01T00:00:00Z").ok(),
            Some(1_793_491_200_000)
        );
        for bad in ["-5", "yesterday", "2026-13-01T00:00:00Z", "1' OR '1'='1"] {
            match time_param("from", bad) {
                Err(ApiError::BadRequest(m)) => assert!(m.starts_with("from:"), "{m}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn formula_cells_are_defused() {
        assert_eq!(cell("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(cell("lift stuck"), "lift stuck");
    }
}
