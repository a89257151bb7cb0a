//! Why payloads were refused: the rejects table in QuestDB, newest first, scoped to the
//! devices the caller may see.

use crate::auth::Principal;
use crate::error::{history_unavailable, ApiError};
use crate::params::{id_param, limit_param, params};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use steward_estate::RejectReason;
use steward_estate::Role;
use utoipa::ToSchema;

/// Devices a scoped rejects query may name at once.
const MAX_REJECT_SCOPE: usize = 2000;

/// One refused payload, as QuestDB returns the row. Fields in alphabetical order, as the
/// API has always sent them.
#[derive(Debug, Serialize, ToSchema)]
pub struct Reject {
    #[schema(value_type = String)]
    pub detail: Value,
    /// Null when no device id could be read from the message.
    #[schema(value_type = Option<String>)]
    #[schema(required = true)]
    pub device_id: Value,
    /// The payload as text, cut to the first bytes kept.
    #[schema(value_type = Option<String>)]
    #[schema(required = true)]
    pub payload: Value,
    /// Size of the payload as received.
    #[schema(value_type = i64)]
    pub payload_bytes: Value,
    /// Why it was refused (a reject reason).
    #[schema(value_type = String)]
    pub reason: Value,
    #[schema(value_type = String)]
    pub topic: Value,
    /// When it arrived (QuestDB timestamp, ISO 8601 UTC).
    #[schema(value_type = String)]
    pub ts: Value,
}

/// Reply of `GET /api/v1/rejects`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectList {
    pub rejects: Vec<Reject>,
}

/// Why payloads were refused, newest first (admin; manager and vendor for their devices;
/// rejects of unknown device ids only for an admin).
#[utoipa::path(get, path = "/api/v1/rejects", tag = "devices",
    params(
        ("device_id" = Option<String>, Query, description = "one device (must be in scope)"),
        ("reason" = Option<String>, Query, description = "reject reason"),
        ("limit" = Option<u32>, Query, description = "1 to 1000, default 100"),
    ),
    responses((status = 200, description = "the rejects, newest first", body = RejectList),
        (status = 400), (status = 401), (status = 403),
        (status = 503, description = "QuestDB unreachable")),
    security(("bearer" = [])))]
pub(crate) async fn list_rejects(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<RejectList>, ApiError> {
    who.require(&[Role::Manager, Role::Vendor])?;
    params(&q, &["device_id", "reason", "limit"])?;
    // Every value that reaches SQL is validated to a closed alphabet first.
    let mut filters = Vec::new();
    if let Some(d) = q.get("device_id") {
        id_param("device_id", d)?;
        if !who.is_admin() {
            let dev = s.registry.directory().device(d).cloned();
            who.check(
                dev.is_some_and(|dev| who.can_see_device(&dev)),
                &format!("device `{d}`"),
            )?;
        }
        filters.push(format!("device_id = '{d}'"));
    } else if !who.is_admin() {
        let dir = s.registry.directory();
        let mut ids: Vec<&str> = dir
            .devices
            .values()
            .filter(|d| who.can_see_device(d))
            .map(|d| &*d.id)
            .collect();
        if ids.is_empty() {
            return Ok(Json(RejectList { rejects: vec![] }));
        }
        // The id list travels in the query URL, which QuestDB bounds (64 KiB by default).
        if ids.len() > MAX_REJECT_SCOPE {
            return Err(ApiError::BadRequest(format!(
                "device_id: required when the token covers more than {MAX_REJECT_SCOPE} devices"
            )));
        }
        ids.sort_unstable();
        // Registry ids passed validate_id, so they cannot close the quotes.
        filters.push(format!("device_id IN ('{}')", ids.join("','")));
    }
    if let Some(r) = q.get("reason") {
        let reason = RejectReason::ALL
            .iter()
            .find(|x| x.as_str() == r)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "reason: unknown reason `{}`",
                    r.chars().take(64).collect::<String>()
                ))
            })?;
        filters.push(format!("reason = '{}'", reason.as_str()));
    }
    let limit = limit_param(&q)?.unwrap_or(100);
    let where_clause = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let sql = format!(
        "SELECT ts, device_id, reason, topic, detail, payload, payload_bytes FROM rejects{where_clause} ORDER BY ts DESC LIMIT {limit}"
    );
    let result = s.questdb.exec(&sql).await.map_err(history_unavailable)?;
    let index = |name: &str| result.columns.iter().position(|c| c.name == name);
    let [ts, device_id, reason, topic, detail, payload, payload_bytes] = [
        "ts",
        "device_id",
        "reason",
        "topic",
        "detail",
        "payload",
        "payload_bytes",
    ]
    .map(index);
    let cell = |row: &[Value], i: Option<usize>| {
        i.and_then(|i| row.get(i)).cloned().unwrap_or(Value::Null)
    };
    let rejects = result
        .dataset
        .iter()
        .map(|row| Reject {
            detail: cell(row, detail),
            device_id: cell(row, device_id),
            payload: cell(row, payload),
            payload_bytes: cell(row, payload_bytes),
            reason: cell(row, reason),
            topic: cell(row, topic),
            ts: cell(row, ts),
        })
        .collect();
    Ok(Json(RejectList { rejects }))
}
