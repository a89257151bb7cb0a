//! Devices over HTTP: list, get, latest state, create/update, retire, rotate the secret,
//! all restricted to the caller's scope.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::params::{id_param, params};
use crate::schema::{sorted, DeviceKindDoc, DeviceStateDoc, LivenessDoc};
use crate::state::{find_device, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use steward_estate::{DeviceInfo, DeviceKind, DeviceUpsert, Role};
use steward_rules::{DeviceState, Liveness};
use utoipa::ToSchema;

/// Body of `POST /api/v1/devices` (the estate's `DeviceUpsert`).
#[derive(Deserialize, ToSchema)]
#[schema(as = DeviceUpsert)]
#[allow(dead_code)]
pub struct DeviceUpsertDoc {
    /// Device id: ASCII letters, digits, `-`, `_`, `.`; at most 64.
    id: String,
    /// smoke, pump, lift or gate.
    kind: String,
    /// Vendor name; a vendor token may only use its own.
    vendor: String,
    /// Building id from the estate.
    building: String,
    #[serde(default)]
    location: String,
    /// Gateway the device publishes through, if any (then it gets no secret).
    #[serde(default)]
    gateway: Option<String>,
    /// Seconds between reports (default 60).
    #[serde(default)]
    report_interval_s: Option<u32>,
}

/// A registered device. Fields in alphabetical order, as the API has always sent them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Device)]
pub struct DeviceView {
    pub building: String,
    pub compound: String,
    /// Gateway the device publishes through; null when it connects itself.
    #[schema(required = true)]
    pub gateway: Option<String>,
    pub id: String,
    #[schema(value_type = DeviceKindDoc)]
    pub kind: DeviceKind,
    pub location: String,
    pub report_interval_s: u32,
    pub retired: bool,
    /// Only in the reply of a `POST` that issued a secret (a new device without a
    /// gateway): the MQTT password, shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Responsible station (of the device's compound).
    pub station: String,
    pub vendor: String,
}

impl From<&DeviceInfo> for DeviceView {
    fn from(d: &DeviceInfo) -> Self {
        DeviceView {
            building: d.building.clone(),
            compound: d.compound.to_string(),
            gateway: d.gateway.clone(),
            id: d.id.to_string(),
            kind: d.kind,
            location: d.location.clone(),
            report_interval_s: d.report_interval_s,
            retired: d.retired,
            secret: None,
            station: d.station.clone(),
            vendor: d.vendor.clone(),
        }
    }
}

/// Reply of `GET /api/v1/devices`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
}

/// Reply of `GET /api/v1/devices/{id}/state`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStateView {
    pub device_id: String,
    #[schema(value_type = LivenessDoc)]
    pub liveness: Liveness,
    /// Null when nothing was heard from the device since the hub started.
    #[serde(serialize_with = "sorted")]
    #[schema(value_type = Option<DeviceStateDoc>)]
    #[schema(required = true)]
    pub state: Option<DeviceState>,
}

/// Reply of `DELETE /api/v1/devices/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceRetired {
    pub id: String,
    /// Always true.
    pub retired: bool,
}

/// Reply of `POST /api/v1/devices/{id}/rotate-secret`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretRotated {
    pub id: String,
    /// The new MQTT password, shown once.
    pub secret: String,
}

/// Devices (every role, scoped: a manager's compounds, a crew's station, a vendor's own).
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    params(
        ("kind" = Option<String>, Query, description = "smoke, pump, lift or gate"),
        ("compound" = Option<String>, Query, description = "compound id (must be in scope)"),
        ("include_retired" = Option<bool>, Query, description = "also retired devices"),
    ),
    responses((status = 200, description = "the devices, by id", body = DeviceList),
        (status = 400), (status = 401),
        (status = 403, description = "compound outside the token's scope")),
    security(("bearer" = [])))]
pub(crate) async fn list_devices(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<DeviceList>, ApiError> {
    params(&q, &["kind", "compound", "include_retired"])?;
    let kind = q
        .get("kind")
        .map(|k| k.parse::<DeviceKind>())
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("kind: {e}")))?;
    if let Some(c) = q.get("compound") {
        id_param("compound", c)?;
        // A vendor's devices are filtered by vendor anyway; a compound narrows them.
        if who.role != Role::Vendor {
            who.check(who.can_see_compound(c), &format!("compound `{c}`"))?;
        }
    }
    let include_retired = match q.get("include_retired").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "include_retired: expected true or false, got `{}`",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    let dir = s.registry.directory();
    let mut devices: Vec<_> = dir
        .devices
        .values()
        .filter(|d| who.can_see_device(d))
        .filter(|d| include_retired || !d.retired)
        .filter(|d| kind.is_none_or(|k| d.kind == k))
        .filter(|d| q.get("compound").is_none_or(|c| *d.compound == **c))
        .collect();
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(Json(DeviceList {
        devices: devices.into_iter().map(DeviceView::from).collect(),
    }))
}

/// One device (scoped as the list).
#[utoipa::path(get, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "the device", body = DeviceView), (status = 400),
        (status = 401), (status = 403, description = "outside the token's scope"), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn get_device(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceView>, ApiError> {
    let d = visible_device(&who, &s, &id)?;
    Ok(Json(DeviceView::from(&d)))
}

/// [`find_device`], then 403 when the caller may not see it.
fn visible_device(who: &Principal, s: &AppState, id: &str) -> Result<DeviceInfo, ApiError> {
    let d = find_device(s, id)?;
    who.check(who.can_see_device(&d), &format!("device `{id}`"))?;
    Ok(d)
}

/// Liveness, last seen and the latest value of each metric (scoped as the list).
#[utoipa::path(get, path = "/api/v1/devices/{id}/state", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "liveness and latest state", body = DeviceStateView),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn device_state(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceStateView>, ApiError> {
    let d = visible_device(&who, &s, &id)?;
    let now = steward_estate::clock::now_ms();
    let state = s.states.get(&id);
    let liveness = state
        .as_ref()
        .map(|st| st.liveness(now, d.report_interval_s))
        .unwrap_or(Liveness::Unknown);
    Ok(Json(DeviceStateView {
        device_id: id,
        liveness,
        state,
    }))
}

/// Create or update a device (admin; vendor for its own vendor name and devices). A new
/// device that does not publish through a gateway gets its secret in the reply, once.
#[utoipa::path(post, path = "/api/v1/devices", tag = "devices",
    request_body = DeviceUpsertDoc,
    responses((status = 201, description = "created; `secret` shown once", body = DeviceView),
        (status = 200, description = "updated", body = DeviceView), (status = 400),
        (status = 401), (status = 403, description = "another vendor's device or vendor name")),
    security(("bearer" = [])))]
pub(crate) async fn upsert_device(
    who: Principal,
    State(s): State<AppState>,
    body: Result<Json<DeviceUpsert>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    who.require(&[Role::Vendor])?;
    let Json(body) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    if who.role == Role::Vendor {
        who.check(
            who.scope.vendor.as_deref() == Some(body.vendor.as_str()),
            &format!(
                "vendor `{}`",
                body.vendor.chars().take(64).collect::<String>()
            ),
        )?;
        if let Some(existing) = s.registry.directory().device(&body.id) {
            who.check(
                who.can_see_device(existing),
                &format!("device `{}`", existing.id),
            )?;
        }
    }
    let reg = s.registry.clone();
    let id = body.id.clone();
    let issued = blocking(move || Ok(reg.upsert_device(&body)?)).await?;
    let mut out = s
        .registry
        .directory()
        .device(&id)
        .map(DeviceView::from)
        .ok_or_else(|| ApiError::Internal(format!("device `{id}` missing after upsert")))?;
    let status = if issued.is_some() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    out.secret = issued;
    Ok((status, Json(out)).into_response())
}

/// Retire a device (admin; vendor for its own).
#[utoipa::path(delete, path = "/api/v1/devices/{id}", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "retired", body = DeviceRetired), (status = 400),
        (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn retire_device(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<DeviceRetired>, ApiError> {
    who.require(&[Role::Vendor])?;
    visible_device(&who, &s, &id)?;
    let reg = s.registry.clone();
    let id2 = id.clone();
    blocking(move || Ok(reg.retire_device(&id2)?)).await?;
    Ok(Json(DeviceRetired { id, retired: true }))
}

/// Issue a new device secret; the old one stops working (admin; vendor for its own).
#[utoipa::path(post, path = "/api/v1/devices/{id}/rotate-secret", tag = "devices",
    params(("id" = String, Path, description = "device id")),
    responses((status = 200, description = "the secret, shown once", body = SecretRotated),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_secret(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SecretRotated>, ApiError> {
    who.require(&[Role::Vendor])?;
    visible_device(&who, &s, &id)?;
    let reg = s.registry.clone();
    let id2 = id.clone();
    let secret = blocking(move || Ok(reg.rotate_secret(&id2)?)).await?;
    Ok(Json(SecretRotated { id, secret }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Arc;

    fn device() -> DeviceInfo {
        DeviceInfo {
            id: Arc::from("lift-1"),
            kind: DeviceKind::Lift,
            vendor: "acme".into(),
            building: "b-1".into(),
            compound: Arc::from("cmp-1"),
            location: "core A".into(),
            gateway: None,
            report_interval_s: 60,
            retired: false,
            station: "st-1".into(),
            secret_hash: None,
        }
    }

    /// The replies as they were built with `json!` before they were typed.
    #[test]
    fn replies_keep_their_bytes() {
        let d = device();
        let mut old = json!({
            "id": &*d.id,
            "kind": d.kind,
            "vendor": d.vendor,
            "building": d.building,
            "compound": &*d.compound,
            "station": d.station,
            "location": d.location,
            "gateway": d.gateway,
            "report_interval_s": d.report_interval_s,
            "retired": d.retired,
        });
        let mut view = DeviceView::from(&d);
        let text = |v: &DeviceView| serde_json::to_string(v).unwrap();
        assert_eq!(text(&view), old.to_string());
        view.secret = Some("s3cret".into());
        old["secret"] = json!("s3cret");
        assert_eq!(text(&view), old.to_string());
        let state = DeviceState {
            device_id: "lift-1".into(),
            last_reading_ms: Some(5),
            last_seen_ms: Some(6),
            status: Some("online"),
            last_event: None,
            values: Default::default(),
        };
        let typed = DeviceStateView {
            device_id: "lift-1".into(),
            liveness: Liveness::Online,
            state: Some(state.clone()),
        };
        let old =
            json!({"device_id": "lift-1", "liveness": Liveness::Online, "state": Some(state)});
        assert_eq!(serde_json::to_string(&typed).unwrap(), old.to_string());
    }
}
