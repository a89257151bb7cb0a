//! History from QuestDB: a device's (or a compound's devices') metric downsampled with
//! `SAMPLE BY`, and a device's events.
//!
//! Nothing from the request reaches SQL as free text: the table and column come from the
//! metric catalogue (the metric must be one of the device kind's), ids are checked against
//! the identifier alphabet and the registry, times are parsed into integers and `every`
//! is parsed into a number and one unit letter. Ranges and bucket counts are capped.

use crate::auth::Principal;
use crate::routes::{blocking, find_device, id_param, limit_param, params, short, AppState};
use crate::ApiError;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use steward_estate::catalog::{self, MetricSpec, MetricType};
use steward_estate::clock::now_ms;
use steward_estate::DeviceKind;

const DAY_MS: i64 = 86_400_000;
/// Longest range one request may cover.
pub const MAX_RANGE_MS: i64 = 366 * DAY_MS;
/// Most buckets one series may have.
pub const MAX_POINTS: i64 = 2_000;
/// Bucket count the automatic `every` aims below.
const AUTO_POINTS: i64 = 500;
const AUTO_EVERY: &[(i64, char)] = &[
    (1, 's'),
    (5, 's'),
    (10, 's'),
    (30, 's'),
    (1, 'm'),
    (5, 'm'),
    (15, 'm'),
    (30, 'm'),
    (1, 'h'),
    (3, 'h'),
    (6, 'h'),
    (12, 'h'),
    (1, 'd'),
    (7, 'd'),
];

/// A `SAMPLE BY` bucket: a count and a unit QuestDB understands (s, m, h, d).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every {
    pub n: i64,
    pub unit: char,
}

impl Every {
    pub fn ms(self) -> i64 {
        let unit = match self.unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            _ => DAY_MS,
        };
        self.n * unit
    }

    pub fn parse(s: &str) -> Result<Every, ApiError> {
        let bad = || {
            ApiError::BadRequest(
                "every: expected a bucket like 30s, 5m, 1h or 1d (1 to 9999 of s, m, h or d)"
                    .into(),
            )
        };
        let unit = s.chars().last().ok_or_else(bad)?;
        if !matches!(unit, 's' | 'm' | 'h' | 'd') {
            return Err(bad());
        }
        let digits = &s[..s.len() - 1];
        if digits.is_empty() || digits.len() > 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        Ok(Every { n, unit })
    }
}

impl std::fmt::Display for Every {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.n, self.unit)
    }
}

/// A validated time window in ms, `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from_ms: i64,
    pub to_ms: i64,
}

fn ms_param(q: &HashMap<String, String>, name: &str) -> Result<Option<i64>, ApiError> {
    q.get(name)
        .map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|t| (0..=253_402_300_799_999).contains(t))
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "{name}: expected milliseconds since the epoch, got `{}`",
                        v.chars().take(32).collect::<String>()
                    ))
                })
        })
        .transpose()
}

/// `from`/`to` (default: the last 24 hours), checked and capped.
pub fn window(q: &HashMap<String, String>, now_ms: i64) -> Result<Window, ApiError> {
    let to_ms = ms_param(q, "to")?.unwrap_or(now_ms);
    let from_ms = ms_param(q, "from")?.unwrap_or(to_ms - DAY_MS).max(0);
    if from_ms >= to_ms {
        return Err(ApiError::BadRequest("from: must be before to".into()));
    }
    if to_ms - from_ms > MAX_RANGE_MS {
        return Err(ApiError::BadRequest(format!(
            "from: the range may span at most {} days",
            MAX_RANGE_MS / DAY_MS
        )));
    }
    Ok(Window { from_ms, to_ms })
}

/// `every` as given, or the smallest standard bucket that keeps the series short.
pub fn every(q: &HashMap<String, String>, w: Window) -> Result<Every, ApiError> {
    let span = w.to_ms - w.from_ms;
    let e = match q.get("every") {
        Some(v) => Every::parse(v)?,
        None => AUTO_EVERY
            .iter()
            .map(|(n, unit)| Every { n: *n, unit: *unit })
            .find(|e| span / e.ms() <= AUTO_POINTS)
            .unwrap_or(Every { n: 7, unit: 'd' }),
    };
    let buckets = (span + e.ms() - 1) / e.ms();
    if buckets > MAX_POINTS {
        return Err(ApiError::BadRequest(format!(
            "every: {e} over this range gives {buckets} buckets; at most {MAX_POINTS} (use a longer bucket or a shorter range)"
        )));
    }
    Ok(e)
}

/// The metric of a device kind by its catalogue name.
fn metric_of(kind: DeviceKind, name: &str) -> Result<&'static MetricSpec, ApiError> {
    catalog::metric(kind, name).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "metric: `{}` is not a metric of {kind} devices; expected one of {}",
            name.chars().take(64).collect::<String>(),
            catalog::metrics(kind)
                .iter()
                .map(|m| m.name)
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })
}

fn is_numeric(m: &MetricSpec) -> bool {
    matches!(m.ty, MetricType::Float { .. } | MetricType::Int { .. })
}

fn value_type(m: &MetricSpec) -> &'static str {
    match m.ty {
        MetricType::Float { .. } | MetricType::Int { .. } => "number",
        MetricType::Bool => "bool",
        MetricType::Enum(_) => "enum",
        MetricType::Text { .. } => "text",
    }
}

/// The aggregate columns: avg/min/max/count for numbers, the bucket's last value otherwise.
/// `m.name` comes from the catalogue, never from the request.
fn aggregates(m: &MetricSpec) -> String {
    let c = m.name;
    if is_numeric(m) {
        format!(r#"avg("{c}") avg, min("{c}") min, max("{c}") max, count("{c}") count"#)
    } else {
        format!(r#"last("{c}") value"#)
    }
}

fn sampled_sql(table: &str, m: &MetricSpec, devices: &[&str], w: Window, e: Every) -> String {
    let ids = devices
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let aggs = aggregates(m);
    let value_cols = if is_numeric(m) {
        "avg, min, max, count"
    } else {
        "value"
    };
    // The inner query's timestamp is the bucket start; the outer one turns it into an
    // integer so the API speaks ms like everywhere else.
    format!(
        "SELECT cast(ts AS LONG) / 1000 ts_ms, device_id, {value_cols} FROM (\
         SELECT ts, device_id, {aggs} FROM {table} \
         WHERE device_id IN ({ids}) AND ts >= cast({from} AS TIMESTAMP) AND ts < cast({to} AS TIMESTAMP) \
         SAMPLE BY {e} ALIGN TO CALENDAR) ORDER BY ts_ms, device_id",
        from = w.from_ms * 1000,
        to = w.to_ms * 1000,
    )
}

fn unavailable(e: steward_storage::StorageError) -> ApiError {
    ApiError::Unavailable(format!(
        "history store unavailable: {}",
        short(&e.to_string())
    ))
}

/// Rows of a sampled query grouped by device: `{device: [{ts_ms, ...}]}`.
fn series(result: &steward_storage::questdb::QueryResult) -> BTreeMap<String, Vec<Value>> {
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for row in &result.dataset {
        let mut point = serde_json::Map::new();
        let mut device = String::new();
        for (n, v) in names.iter().zip(row) {
            if *n == "device_id" {
                device = v.as_str().unwrap_or_default().to_string();
            } else {
                point.insert((*n).to_string(), v.clone());
            }
        }
        out.entry(device).or_default().push(Value::Object(point));
    }
    out
}

/// `GET /api/v1/devices/{id}/history?metric=&from=&to=&every=`
#[utoipa::path(get, path = "/api/v1/devices/{id}/history", tag = "history",
    params(("id" = String, Path, description = "device id (in scope)"),
        ("metric" = String, Query, description = "a catalogue metric of the device's kind"),
        ("from" = Option<String>, Query, description = "RFC 3339 or ms since epoch (default: 24 h ago)"),
        ("to" = Option<String>, Query, description = "RFC 3339 or ms since epoch (default: now)"),
        ("every" = Option<String>, Query, description = "bucket: a number and s, m, h or d (e.g. 1m)"),
    ),
    responses((status = 200, description = "buckets: avg/min/max/count for numbers, last value otherwise"),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn device_history(
    principal: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params(&q, &["metric", "from", "to", "every"])?;
    let d = find_device(&s, &id)?;
    principal.check(principal.can_see_device(&d), "device")?;
    let name = q
        .get("metric")
        .ok_or_else(|| ApiError::BadRequest("metric: required".into()))?;
    let m = metric_of(d.kind, name)?;
    let w = window(&q, now_ms())?;
    let e = every(&q, w)?;
    let sql = sampled_sql(d.kind.table(), m, &[&d.id], w, e);
    let result = s.questdb.exec(&sql).await.map_err(unavailable)?;
    let points = series(&result).remove(&*d.id).unwrap_or_default();
    Ok(Json(json!({
        "device_id": &*d.id,
        "kind": d.kind,
        "metric": m.name,
        "type": value_type(m),
        "from": w.from_ms,
        "to": w.to_ms,
        "every": e.to_string(),
        "points": points,
    })))
}

/// `GET /api/v1/compounds/{id}/history?metric=&kind=&from=&to=&every=`: one series per
/// (not retired) device of the kind in the compound. `kind` may be left out when only one
/// kind has the metric.
#[utoipa::path(get, path = "/api/v1/compounds/{id}/history", tag = "history",
    params(("id" = String, Path, description = "compound id (in scope)"),
        ("kind" = Option<String>, Query, description = "device kind, when two kinds share the metric"),
        ("metric" = String, Query, description = "a catalogue metric of the device's kind"),
        ("from" = Option<String>, Query, description = "RFC 3339 or ms since epoch (default: 24 h ago)"),
        ("to" = Option<String>, Query, description = "RFC 3339 or ms since epoch (default: now)"),
        ("every" = Option<String>, Query, description = "bucket: a number and s, m, h or d (e.g. 1m)"),
    ),
    responses((status = 200, description = "one series per device of the kind in the compound"),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn compound_history(
    principal: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params(&q, &["metric", "kind", "from", "to", "every"])?;
    id_param("id", &id)?;
    principal.check(principal.can_see_compound(&id), "compound")?;
    let name = q
        .get("metric")
        .ok_or_else(|| ApiError::BadRequest("metric: required".into()))?;
    let kind = match q.get("kind") {
        Some(k) => k
            .parse::<DeviceKind>()
            .map_err(|e| ApiError::BadRequest(format!("kind: {e}")))?,
        None => {
            let kinds: Vec<DeviceKind> = DeviceKind::ALL
                .into_iter()
                .filter(|k| catalog::metric(*k, name).is_some())
                .collect();
            match kinds.as_slice() {
                [k] => *k,
                [] => {
                    return Err(ApiError::BadRequest(format!(
                        "metric: `{}` is not a metric of any device kind",
                        name.chars().take(64).collect::<String>()
                    )))
                }
                many => {
                    return Err(ApiError::BadRequest(format!(
                        "kind: required, `{name}` is a metric of {}",
                        many.iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    )))
                }
            }
        }
    };
    let m = metric_of(kind, name)?;
    let w = window(&q, now_ms())?;
    let e = every(&q, w)?;
    let reg = s.registry.clone();
    let known = blocking(move || Ok(reg.compounds()?)).await?;
    if !known.iter().any(|c| c.id == id) {
        return Err(ApiError::NotFound(format!("compound `{id}` not found")));
    }
    let dir = s.registry.directory();
    let mut devices: Vec<&str> = dir
        .devices
        .values()
        .filter(|d| !d.retired && d.kind == kind && *d.compound == *id)
        .map(|d| &*d.id)
        .collect();
    devices.sort_unstable();
    let series = if devices.is_empty() {
        BTreeMap::new()
    } else {
        let sql = sampled_sql(kind.table(), m, &devices, w, e);
        series(&s.questdb.exec(&sql).await.map_err(unavailable)?)
    };
    Ok(Json(json!({
        "compound": id,
        "kind": kind,
        "metric": m.name,
        "type": value_type(m),
        "from": w.from_ms,
        "to": w.to_ms,
        "every": e.to_string(),
        "devices": devices,
        "series": series,
    })))
}

/// `GET /api/v1/devices/{id}/events?from=&to=&limit=`: newest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/events", tag = "history",
    params(("id" = String, Path, description = "device id (in scope)"),
        ("from" = Option<String>, Query, description = "RFC 3339 or ms since epoch"),
        ("to" = Option<String>, Query, description = "RFC 3339 or ms since epoch"),
        ("limit" = Option<u32>, Query, description = "newest first, at most this many"),
    ),
    responses((status = 200, description = "device events"),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn device_events(
    principal: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    params(&q, &["from", "to", "limit"])?;
    let d = find_device(&s, &id)?;
    principal.check(principal.can_see_device(&d), "device")?;
    let w = window(&q, now_ms())?;
    let limit = limit_param(&q)?.unwrap_or(100);
    let sql = format!(
        "SELECT cast(ts AS LONG) / 1000 ts_ms, event, data FROM {} \
         WHERE device_id = '{}' AND ts >= cast({} AS TIMESTAMP) AND ts < cast({} AS TIMESTAMP) \
         ORDER BY ts DESC LIMIT {limit}",
        steward_storage::questdb::schema::EVENTS_TABLE,
        d.id,
        w.from_ms * 1000,
        w.to_ms * 1000,
    );
    let result = s.questdb.exec(&sql).await.map_err(unavailable)?;
    let events: Vec<Value> = result
        .dataset
        .iter()
        .map(|row| {
            let data = row
                .get(2)
                .and_then(|v| v.as_str())
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
                .unwrap_or(Value::Null);
            json!({
                "ts_ms": row.first().cloned().unwrap_or(Value::Null),
                "event": row.get(1).cloned().unwrap_or(Value::Null),
                "data": data,
            })
        })
        .collect();
    Ok(Json(json!({
        "device_id": &*d.id,
        "from": w.from_ms,
        "to": w.to_ms,
        "events": events,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn every_accepts_only_a_number_and_a_unit() {
        assert_eq!(Every::parse("5m").unwrap(), Every { n: 5, unit: 'm' });
        assert_eq!(Every::parse("1d").unwrap().ms(), DAY_MS);
        for bad in [
            "", "m", "0m", "5", "5M", "5 m", "-5m", "1y", "5m;DROP", "99999s", "5é",
        ] {
            let e = Every::parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("every:"), "{bad}: {e}");
        }
    }

    #[test]
    fn window_and_bucket_caps_name_the_parameter() {
        let now = 1_700_000_000_000;
        let w = window(&q(&[]), now).unwrap();
        assert_eq!(w.to_ms - w.from_ms, DAY_MS);
        assert!(window(&q(&[("from", "x")]), now)
            .unwrap_err()
            .to_string()
            .starts_with("from:"));
        assert!(window(&q(&[("to", "1e9")]), now)
            .unwrap_err()
            .to_string()
            .starts_with("to:"));
        assert!(window(&q(&[("from", "10"), ("to", "5")]), now).is_err());
        assert!(window(&q(&[("from", "0"), ("to", &now.to_string())]), now).is_err());
        let w = window(&q(&[("from", "0"), ("to", "86400000")]), now).unwrap();
        assert!(every(&q(&[("every", "1s")]), w)
            .unwrap_err()
            .to_string()
            .starts_with("every:"));
        let auto = every(&q(&[]), w).unwrap();
        assert!(DAY_MS / auto.ms() <= AUTO_POINTS, "{auto}");
    }

    #[test]
    fn metrics_come_from_the_catalogue() {
        assert!(metric_of(DeviceKind::Lift, "floor").is_ok());
        let e = metric_of(DeviceKind::Lift, "floor\" FROM x; --")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("metric:"), "{e}");
        assert!(metric_of(DeviceKind::Lift, "flow_m3h").is_err());
    }
}
