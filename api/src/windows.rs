//! Maintenance windows over HTTP: list (admin; manager and crew within their compounds),
//! create and delete (admin; crew for the compounds its station serves), and what a
//! window suppressed, read from QuestDB's `ticket_events` (docs/maintenance-windows.md).

use crate::auth::Principal;
use crate::error::{blocking, history_unavailable, ApiError};
use crate::params::{id_param, limit_param, params};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, FixedOffset};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use steward_estate::clock::now_ms;
use steward_estate::windows::estate_offset;
use steward_estate::{Directory, MaintenanceWindow, Role, WindowDef, WindowTarget};
use utoipa::ToSchema;

/// A window to create. Exactly one of `device`, `building`, `compound`; times are RFC 3339
/// with an offset or local `YYYY-MM-DDTHH:MM` in the estate's time zone.
#[derive(Deserialize, ToSchema)]
#[schema(as = MaintenanceWindowCreate)]
#[allow(dead_code)]
pub struct WindowDefDoc {
    /// Window id: ASCII letters, digits, `-`, `_`, `.`; at most 64.
    id: String,
    device: Option<String>,
    building: Option<String>,
    compound: Option<String>,
    /// e.g. `2026-05-01T09:00:00+08:00` or `2026-05-01T09:00`.
    from: String,
    /// After `from`; the window is open from `from` (inclusive) to `to` (exclusive).
    to: String,
    /// Why (required).
    reason: String,
}

/// What a window covers.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowTargetView {
    /// `device`, `building` or `compound`.
    pub kind: String,
    pub id: String,
}

/// A maintenance window.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MaintenanceWindow)]
pub struct WindowView {
    pub id: String,
    pub target: WindowTargetView,
    /// The compound the target is in (null when the target no longer exists).
    #[schema(required = true)]
    pub compound: Option<String>,
    /// RFC 3339 in the estate's time zone.
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    pub reason: String,
    /// `file` (estate file, replaced at every load) or `api`.
    pub source: String,
    /// Name of the token that created it (API windows).
    #[schema(required = true)]
    pub created_by: Option<String>,
    /// Open now.
    pub active: bool,
}

/// Reply of `GET /api/v1/maintenance-windows`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowList {
    pub windows: Vec<WindowView>,
}

/// One ticket a window held back.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressedView {
    #[schema(value_type = Object)]
    pub ts_ms: Value,
    #[schema(value_type = Object)]
    pub device_id: Value,
    #[schema(value_type = Object)]
    pub rule_id: Value,
    #[schema(value_type = Object)]
    pub priority: Value,
    #[schema(value_type = Object)]
    pub station: Value,
    #[schema(value_type = Object)]
    pub compound: Value,
    #[schema(value_type = Object)]
    pub message: Value,
}

/// Reply of `GET /api/v1/maintenance-windows/{id}/suppressed`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SuppressedList {
    pub window: String,
    /// Every ticket this window held back.
    pub count: i64,
    /// Newest first, at most `limit`.
    pub suppressed: Vec<SuppressedView>,
}

/// Where a window's target sits: its compound, and the building of a device.
struct Place {
    compound: Option<String>,
    building: Option<String>,
}

fn place(w: &MaintenanceWindow, dir: &Directory, buildings: &HashMap<String, String>) -> Place {
    match &w.target {
        WindowTarget::Device(d) => {
            let info = dir.device(d);
            Place {
                compound: info.map(|i| i.compound.to_string()),
                building: info.map(|i| i.building.clone()),
            }
        }
        WindowTarget::Building(b) => Place {
            compound: buildings.get(b).cloned(),
            building: Some(b.clone()),
        },
        WindowTarget::Compound(c) => Place {
            compound: Some(c.clone()),
            building: None,
        },
    }
}

fn rfc3339(ms: i64, offset: FixedOffset) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&offset).to_rfc3339())
        .unwrap_or_default()
}

fn view(w: &MaintenanceWindow, compound: Option<String>, now: i64) -> WindowView {
    let offset = estate_offset(None).unwrap_or_else(|_| FixedOffset::east_opt(0).expect("UTC"));
    WindowView {
        id: w.id.clone(),
        target: WindowTargetView {
            kind: w.target.kind().to_string(),
            id: w.target.id().to_string(),
        },
        compound,
        from: rfc3339(w.from_ms, offset),
        to: rfc3339(w.to_ms, offset),
        from_ms: w.from_ms,
        to_ms: w.to_ms,
        reason: w.reason.clone(),
        source: w.source.as_str().to_string(),
        created_by: w.created_by.clone(),
        active: w.open_at(now),
    }
}

/// May `who` see (`write` = change) windows of `compound`?
fn allowed(who: &Principal, compound: Option<&str>, write: bool) -> bool {
    match who.role {
        Role::Admin => true,
        Role::Crew => compound.is_some_and(|c| who.can_see_compound(c)),
        Role::Manager if !write => compound.is_some_and(|c| who.can_see_compound(c)),
        _ => false,
    }
}

async fn building_compounds(s: &AppState) -> Result<HashMap<String, String>, ApiError> {
    let reg = s.registry.clone();
    blocking(move || Ok(reg.building_compounds()?)).await
}

/// Windows in the caller's scope, filtered.
#[utoipa::path(get, path = "/api/v1/maintenance-windows", tag = "estate",
    params(
        ("active" = Option<bool>, Query, description = "true: only windows open now"),
        ("device" = Option<String>, Query, description = "windows covering this device (itself, its building or its compound)"),
        ("building" = Option<String>, Query, description = "windows on this building, its compound or a device in it"),
        ("compound" = Option<String>, Query, description = "windows on this compound or anything in it"),
    ),
    responses((status = 200, description = "maintenance windows, by start time", body = WindowList),
        (status = 400), (status = 401), (status = 403, description = "vendor token")),
    security(("bearer" = [])))]
pub(crate) async fn list_windows(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<WindowList>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    params(&q, &["active", "device", "building", "compound"])?;
    let active = match q.get("active").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "active: expected true or false".into(),
            ))
        }
    };
    for key in ["device", "building", "compound"] {
        if let Some(v) = q.get(key) {
            id_param(key, v)?;
        }
    }
    let dir = s.registry.directory();
    let buildings = building_compounds(&s).await?;
    // What a `device` filter covers: the device, its building and its compound.
    let device = match q.get("device") {
        Some(d) => Some(
            dir.device(d)
                .ok_or_else(|| ApiError::NotFound(format!("device `{d}` not found")))?,
        ),
        None => None,
    };
    // Naming a place outside the scope is a 403, as in every other list's filters.
    if let Some(d) = device {
        who.check(
            allowed(&who, Some(&d.compound), false),
            &format!("device `{}`", d.id),
        )?;
    }
    if let Some(b) = q.get("building") {
        let c = buildings
            .get(b)
            .ok_or_else(|| ApiError::NotFound(format!("building `{b}` not found")))?;
        who.check(allowed(&who, Some(c), false), &format!("building `{b}`"))?;
    }
    if let Some(c) = q.get("compound") {
        who.check(allowed(&who, Some(c), false), &format!("compound `{c}`"))?;
    }
    let now = now_ms();
    let set = s.registry.windows();
    let mut out = Vec::new();
    for w in set.all() {
        let p = place(w, &dir, &buildings);
        if !allowed(&who, p.compound.as_deref(), false) || (active && !w.open_at(now)) {
            continue;
        }
        if let Some(d) = device {
            let covers = match &w.target {
                WindowTarget::Device(x) => *x == *d.id,
                WindowTarget::Building(b) => *b == d.building,
                WindowTarget::Compound(c) => *c == *d.compound,
            };
            if !covers {
                continue;
            }
        }
        if let Some(b) = q.get("building") {
            let covers = match &w.target {
                WindowTarget::Compound(c) => buildings.get(b) == Some(c),
                _ => p.building.as_deref() == Some(b.as_str()),
            };
            if !covers {
                continue;
            }
        }
        if let Some(c) = q.get("compound") {
            if p.compound.as_deref() != Some(c.as_str()) {
                continue;
            }
        }
        out.push(view(w, p.compound, now));
    }
    Ok(Json(WindowList { windows: out }))
}

/// Create a window (admin; crew for a compound its station serves).
#[utoipa::path(post, path = "/api/v1/maintenance-windows", tag = "estate",
    request_body = WindowDefDoc,
    responses((status = 201, description = "the window", body = WindowView),
        (status = 400, description = "invalid field, naming it (unknown target, `to` not after `from`, missing `reason`, id taken)"),
        (status = 401), (status = 403, description = "manager or vendor, or a compound the crew does not serve")),
    security(("bearer" = [])))]
pub(crate) async fn create_window(
    who: Principal,
    State(s): State<AppState>,
    body: Result<Json<WindowDef>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    who.require(&[Role::Crew])?;
    let Json(def) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    if who.role != Role::Admin {
        let dir = s.registry.directory();
        let buildings = building_compounds(&s).await?;
        let compound = match (&def.device, &def.building, &def.compound) {
            (Some(d), None, None) => dir.device(d).map(|i| i.compound.to_string()),
            (None, Some(b), None) => buildings.get(b).cloned(),
            (None, None, Some(c)) => Some(c.clone()),
            _ => None,
        };
        // An unknown or ambiguous target is the validation's to report (400).
        if let Some(c) = &compound {
            who.check(
                allowed(&who, Some(c), true),
                &format!("compound `{}`", c.chars().take(64).collect::<String>()),
            )?;
        }
    }
    let reg = s.registry.clone();
    let by = who.name.clone();
    let w = blocking(move || Ok(reg.create_window(&def, Some(&by))?)).await?;
    let buildings = building_compounds(&s).await?;
    let p = place(&w, &s.registry.directory(), &buildings);
    tracing::info!(window = %w.id, target = %w.target.id(), by = %who.name, "maintenance window created");
    Ok((StatusCode::CREATED, Json(view(&w, p.compound, now_ms()))).into_response())
}

/// A window by id, or 404; 403 when outside the caller's scope.
async fn find(
    s: &AppState,
    who: &Principal,
    id: &str,
    write: bool,
) -> Result<(MaintenanceWindow, Option<String>), ApiError> {
    id_param("id", id)?;
    let set = s.registry.windows();
    let w = set
        .get(id)
        .map(|w| (**w).clone())
        .ok_or_else(|| ApiError::NotFound(format!("maintenance window `{id}` not found")))?;
    let buildings = building_compounds(s).await?;
    let p = place(&w, &s.registry.directory(), &buildings);
    who.check(
        allowed(who, p.compound.as_deref(), write),
        &format!("maintenance window `{id}`"),
    )?;
    Ok((w, p.compound))
}

/// Delete a window (admin; crew for a compound its station serves). A window from the
/// estate file comes back at the next load unless it is removed from the file.
#[utoipa::path(delete, path = "/api/v1/maintenance-windows/{id}", tag = "estate",
    params(("id" = String, Path, description = "window id")),
    responses((status = 200, description = "the deleted window", body = WindowView),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn delete_window(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<WindowView>, ApiError> {
    who.require(&[Role::Crew])?;
    let (w, compound) = find(&s, &who, &id, true).await?;
    let reg = s.registry.clone();
    let wid = w.id.clone();
    blocking(move || Ok(reg.delete_window(&wid)?)).await?;
    tracing::info!(window = %w.id, by = %who.name, "maintenance window deleted");
    Ok(Json(view(&w, compound, now_ms())))
}

/// What a window held back: the `suppressed` ticket events naming it, from QuestDB.
#[utoipa::path(get, path = "/api/v1/maintenance-windows/{id}/suppressed", tag = "estate",
    params(("id" = String, Path, description = "window id"),
        ("limit" = Option<u32>, Query, description = "newest first, at most this many (default 100)")),
    responses((status = 200, description = "count and newest suppressed tickets", body = SuppressedList),
        (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 503, description = "QuestDB unavailable")),
    security(("bearer" = [])))]
pub(crate) async fn window_suppressed(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SuppressedList>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    params(&q, &["limit"])?;
    let limit = limit_param(&q)?.unwrap_or(100);
    let (w, _) = find(&s, &who, &id, false).await?;
    // The id passed `validate_id` (letters, digits, `-`, `_`, `.`): safe in a literal.
    let filter = format!(
        "kind = 'suppressed' AND audience = 'window:{}'",
        w.id.replace('\'', "")
    );
    let table = steward_storage::questdb::schema::TICKET_EVENTS_TABLE;
    let count = s
        .questdb
        .exec(&format!("SELECT count() FROM {table} WHERE {filter}"))
        .await
        .map_err(history_unavailable)?;
    let count = count
        .dataset
        .first()
        .and_then(|r| r.first())
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let rows = s
        .questdb
        .exec(&format!(
            "SELECT cast(ts AS LONG) / 1000 ts_ms, device_id, rule_id, priority, station, \
             compound_id, message FROM {table} WHERE {filter} ORDER BY ts DESC LIMIT {limit}"
        ))
        .await
        .map_err(history_unavailable)?;
    let col = |row: &Vec<Value>, i: usize| row.get(i).cloned().unwrap_or(Value::Null);
    let suppressed = rows
        .dataset
        .iter()
        .map(|r| SuppressedView {
            ts_ms: col(r, 0),
            device_id: col(r, 1),
            rule_id: col(r, 2),
            priority: col(r, 3),
            station: col(r, 4),
            compound: col(r, 5),
            message: col(r, 6),
        })
        .collect();
    Ok(Json(SuppressedList {
        window: w.id,
        count,
        suppressed,
    }))
}
