//! History from QuestDB: a device's (or a compound's devices') metric downsampled with
//! `SAMPLE BY`, and a device's events.
//!
//! Nothing from the request reaches SQL as free text: the table and column come from the
//! metric catalogue (the metric must be one of the device kind's), ids are checked against
//! the identifier alphabet and the registry, times are parsed into integers and `every`
//! is parsed into a number and one unit letter. Ranges and bucket counts are capped.

use crate::auth::Principal;
use crate::error::{blocking, history_unavailable, ApiError};
use crate::params::{id_param, limit_param, params};
use crate::schema::DeviceKindDoc;
use crate::state::{find_device, AppState};
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use steward_estate::catalog::{self, MetricSpec, MetricType};
use steward_estate::clock::now_ms;
use steward_estate::DeviceKind;
use steward_storage::questdb::schema::{self, Rollup};
use utoipa::ToSchema;

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

/// Points all the series of one reply aim below when `every` is automatic: a compound's
/// forty series get longer buckets than one device's, as a chart of them cannot show
/// more, and the reply stays small enough to serve many at once.
const AUTO_TOTAL_POINTS: i64 = 2_000;

/// `every` as given, or the smallest standard bucket that keeps the series short.
pub fn every(q: &HashMap<String, String>, w: Window) -> Result<Every, ApiError> {
    every_for(q, w, 1)
}

/// [`every`] for a reply of `series` series.
pub fn every_for(q: &HashMap<String, String>, w: Window, series: usize) -> Result<Every, ApiError> {
    let span = w.to_ms - w.from_ms;
    let per_series = (AUTO_TOTAL_POINTS / series.max(1) as i64).clamp(1, AUTO_POINTS);
    let e = match q.get("every") {
        Some(v) => Every::parse(v)?,
        // Long ranges get buckets of whole hours or days, so they read the rollups.
        None => {
            let least = if span > DAILY_AFTER_MS {
                DAY_MS
            } else if span > HOURLY_AFTER_MS {
                3_600_000
            } else {
                0
            };
            AUTO_EVERY
                .iter()
                .map(|(n, unit)| Every { n: *n, unit: *unit })
                .find(|e| span / e.ms() <= per_series && e.ms() >= least)
                .unwrap_or(Every { n: 7, unit: 'd' })
        }
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
    schema::is_numeric(m)
}

fn value_type(m: &MetricSpec) -> &'static str {
    match m.ty {
        MetricType::Float { .. } | MetricType::Int { .. } => "number",
        MetricType::Bool => "bool",
        MetricType::Enum(_) => "enum",
        MetricType::Text { .. } => "text",
    }
}

/// Where a series is read from: raw rows, or a rollup for long ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Raw,
    Rollup(Rollup),
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Raw => "raw",
            Source::Rollup(r) => r.as_str(),
        }
    }
}

/// Ranges longer than this read the rollups (when the bucket is whole hours or days).
pub const HOURLY_AFTER_MS: i64 = 2 * DAY_MS;
/// Automatic buckets of ranges longer than this are whole days.
pub const DAILY_AFTER_MS: i64 = 60 * DAY_MS;

/// The cheapest source that gives the same buckets: the coarsest rollup whose buckets
/// tile `e` (a month of 40 devices in days reads 1,200 daily rows, not 28,800 hourly ones).
pub fn source(w: Window, e: Every) -> Source {
    let span = w.to_ms - w.from_ms;
    let tiles = |r: Rollup| e.ms() % r.bucket_ms() == 0;
    if span <= HOURLY_AFTER_MS {
        Source::Raw
    } else if tiles(Rollup::Daily) {
        Source::Rollup(Rollup::Daily)
    } else if tiles(Rollup::Hourly) {
        Source::Rollup(Rollup::Hourly)
    } else {
        Source::Raw
    }
}

/// The aggregate columns: avg/min/max/count for numbers, the bucket's last value otherwise.
/// `m.name` comes from the catalogue, never from the request.
fn aggregates(m: &MetricSpec, src: Source) -> String {
    let c = m.name;
    match (is_numeric(m), src) {
        (true, Source::Raw) => {
            format!(r#"avg("{c}") avg, min("{c}") min, max("{c}") max, count("{c}") count"#)
        }
        (true, Source::Rollup(_)) => format!(
            r#"sum("{c}_sum") / sum("{c}_count") avg, min("{c}_min") min, max("{c}_max") max, sum("{c}_count") count"#
        ),
        (false, Source::Raw) => format!(r#"last("{c}") value"#),
        (false, Source::Rollup(_)) => format!(r#"last("{c}_last") value"#),
    }
}

/// The query of a sampled series and the source it reads.
fn sampled_sql(
    kind: DeviceKind,
    m: &MetricSpec,
    devices: &[&str],
    w: Window,
    e: Every,
) -> (String, Source) {
    let ids = devices
        .iter()
        .map(|d| format!("'{d}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let src = source(w, e);
    let aggs = aggregates(m, src);
    let value_cols = if is_numeric(m) {
        "avg, min, max, count"
    } else {
        "value"
    };
    // A rollup row covers a whole hour or day: widen the window to whole ones so the
    // first and last buckets are not cut.
    let (table, from, to) = match src {
        Source::Raw => (kind.table().to_string(), w.from_ms, w.to_ms),
        Source::Rollup(r) => {
            let b = r.bucket_ms();
            let from = w.from_ms - w.from_ms.rem_euclid(b);
            let to = w.to_ms + (b - w.to_ms.rem_euclid(b)) % b;
            (schema::rollup_view(kind, r), from, to)
        }
    };
    // The inner query's timestamp is the bucket start; the outer one turns it into an
    // integer so the API speaks ms like everywhere else.
    let sql = format!(
        "SELECT cast(ts AS LONG) / 1000 ts_ms, device_id, {value_cols} FROM (\
         SELECT ts, device_id, {aggs} FROM {table} \
         WHERE device_id IN ({ids}) AND ts >= cast({from} AS TIMESTAMP) AND ts < cast({to} AS TIMESTAMP) \
         SAMPLE BY {e} ALIGN TO CALENDAR) ORDER BY ts_ms, device_id",
        from = from * 1000,
        to = to * 1000,
    );
    (sql, src)
}

/// One bucket of a series: avg/min/max/count for a numeric metric, `value` (the bucket's
/// last) otherwise. Fields in alphabetical order, as the API has always sent them; a
/// field the metric's type does not have is absent, one QuestDB left empty is null.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct Point {
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub avg: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<i64>)]
    pub count: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub max: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>)]
    pub min: Option<Value>,
    /// Start of the bucket, ms since the epoch.
    #[schema(value_type = i64)]
    pub ts_ms: Value,
    /// Bool, enum or text metrics: the last value in the bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Object)]
    pub value: Option<Value>,
}

/// Reply of `GET /api/v1/devices/{id}/history`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceHistory {
    pub device_id: String,
    /// The bucket, e.g. `5m`.
    pub every: String,
    /// Start of the range, ms since the epoch.
    pub from: i64,
    #[schema(value_type = DeviceKindDoc)]
    pub kind: DeviceKind,
    pub metric: &'static str,
    pub points: Vec<Point>,
    /// What the points were computed from: `raw` readings, or the `hourly` or `daily`
    /// rollups (ranges over 2 days with buckets of whole hours or days).
    pub source: &'static str,
    /// End of the range (exclusive), ms since the epoch.
    pub to: i64,
    /// number, bool, enum or text.
    #[serde(rename = "type")]
    pub value_type: &'static str,
}

/// Reply of `GET /api/v1/compounds/{id}/history`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompoundHistory {
    pub compound: String,
    /// The devices of the kind in the compound, by id (also those without data).
    pub devices: Vec<String>,
    pub every: String,
    pub from: i64,
    #[schema(value_type = DeviceKindDoc)]
    pub kind: DeviceKind,
    pub metric: &'static str,
    /// Points per device id, only of devices with data in the range.
    pub series: BTreeMap<String, Vec<Point>>,
    /// `raw`, `hourly` or `daily`, as for device history.
    pub source: &'static str,
    pub to: i64,
    /// number, bool, enum or text.
    #[serde(rename = "type")]
    pub value_type: &'static str,
}

/// One device event.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceEvent {
    /// The event's data as the device sent it (null when it was not JSON).
    #[schema(value_type = Object)]
    pub data: Value,
    /// The event name.
    #[schema(value_type = String)]
    pub event: Value,
    #[schema(value_type = i64)]
    pub ts_ms: Value,
}

/// Reply of `GET /api/v1/devices/{id}/events`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceEvents {
    pub device_id: String,
    pub events: Vec<DeviceEvent>,
    pub from: i64,
    pub to: i64,
}

/// Rows of a sampled query grouped by device.
fn series(result: &steward_storage::questdb::QueryResult) -> BTreeMap<String, Vec<Point>> {
    let names: Vec<&str> = result.columns.iter().map(|c| c.name.as_str()).collect();
    let mut out: BTreeMap<String, Vec<Point>> = BTreeMap::new();
    for row in &result.dataset {
        let mut point = Point::default();
        let mut device = String::new();
        for (n, v) in names.iter().zip(row) {
            let v = v.clone();
            match *n {
                "device_id" => device = v.as_str().unwrap_or_default().to_string(),
                "ts_ms" => point.ts_ms = v,
                "avg" => point.avg = Some(v),
                "min" => point.min = Some(v),
                "max" => point.max = Some(v),
                "count" => point.count = Some(v),
                // `sampled_sql` selects no other column.
                _ => point.value = Some(v),
            }
        }
        out.entry(device).or_default().push(point);
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
    responses((status = 200, description = "buckets: avg/min/max/count for numbers, last value otherwise",
            body = DeviceHistory),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn device_history(
    principal: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<DeviceHistory>, ApiError> {
    params(&q, &["metric", "from", "to", "every"])?;
    let d = find_device(&s, &id)?;
    principal.check(principal.can_see_device(&d), "device")?;
    let name = q
        .get("metric")
        .ok_or_else(|| ApiError::BadRequest("metric: required".into()))?;
    let m = metric_of(d.kind, name)?;
    let w = window(&q, now_ms())?;
    let e = every(&q, w)?;
    let (sql, src) = sampled_sql(d.kind, m, &[&d.id], w, e);
    let result = s.questdb.exec(&sql).await.map_err(history_unavailable)?;
    let points = series(&result).remove(&*d.id).unwrap_or_default();
    Ok(Json(DeviceHistory {
        device_id: d.id.to_string(),
        every: e.to_string(),
        from: w.from_ms,
        kind: d.kind,
        metric: m.name,
        points,
        source: src.as_str(),
        to: w.to_ms,
        value_type: value_type(m),
    }))
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
    responses((status = 200, description = "one series per device of the kind in the compound",
            body = CompoundHistory),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn compound_history(
    principal: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<CompoundHistory>, ApiError> {
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
    every(&q, w)?;
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
    let e = every_for(&q, w, devices.len())?;
    let (sql, src) = sampled_sql(kind, m, &devices, w, e);
    let series = if devices.is_empty() {
        BTreeMap::new()
    } else {
        series(&s.questdb.exec(&sql).await.map_err(history_unavailable)?)
    };
    Ok(Json(CompoundHistory {
        compound: id,
        devices: devices.into_iter().map(String::from).collect(),
        every: e.to_string(),
        from: w.from_ms,
        kind,
        metric: m.name,
        series,
        source: src.as_str(),
        to: w.to_ms,
        value_type: value_type(m),
    }))
}

/// `GET /api/v1/devices/{id}/events?from=&to=&limit=`: newest first.
#[utoipa::path(get, path = "/api/v1/devices/{id}/events", tag = "history",
    params(("id" = String, Path, description = "device id (in scope)"),
        ("from" = Option<String>, Query, description = "RFC 3339 or ms since epoch"),
        ("to" = Option<String>, Query, description = "RFC 3339 or ms since epoch"),
        ("limit" = Option<u32>, Query, description = "newest first, at most this many"),
    ),
    responses((status = 200, description = "device events, newest first", body = DeviceEvents),
        (status = 400), (status = 401), (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub(crate) async fn device_events(
    principal: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<DeviceEvents>, ApiError> {
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
    let result = s.questdb.exec(&sql).await.map_err(history_unavailable)?;
    let events: Vec<DeviceEvent> = result
        .dataset
        .iter()
        .map(|row| {
            let data = row
                .get(2)
                .and_then(|v| v.as_str())
                .and_then(|t| serde_json::from_str::<Value>(t).ok())
                .unwrap_or(Value::Null);
            DeviceEvent {
                data,
                event: row.get(1).cloned().unwrap_or(Value::Null),
                ts_ms: row.first().cloned().unwrap_or(Value::Null),
            }
        })
        .collect();
    Ok(Json(DeviceEvents {
        device_id: d.id.to_string(),
        events,
        from: w.from_ms,
        to: w.to_ms,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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

    /// Points as they were built from the rows before they were typed.
    #[test]
    fn points_keep_their_bytes() {
        let result: steward_storage::questdb::QueryResult = serde_json::from_value(json!({
            "columns": [
                {"name": "ts_ms", "type": "LONG"}, {"name": "device_id", "type": "SYMBOL"},
                {"name": "avg", "type": "DOUBLE"}, {"name": "min", "type": "DOUBLE"},
                {"name": "max", "type": "DOUBLE"}, {"name": "count", "type": "LONG"},
            ],
            "dataset": [[1000, "pump-1", 1.5, null, 2.0, 3]],
        }))
        .unwrap();
        let typed = series(&result);
        let old =
            json!({"pump-1": [{"ts_ms": 1000, "avg": 1.5, "min": null, "max": 2.0, "count": 3}]});
        assert_eq!(serde_json::to_string(&typed).unwrap(), old.to_string());
        let result: steward_storage::questdb::QueryResult = serde_json::from_value(json!({
            "columns": [
                {"name": "ts_ms", "type": "LONG"}, {"name": "device_id", "type": "SYMBOL"},
                {"name": "value", "type": "BOOLEAN"},
            ],
            "dataset": [[1000, "gate-1", true]],
        }))
        .unwrap();
        let old = json!({"gate-1": [{"ts_ms": 1000, "value": true}]});
        assert_eq!(
            serde_json::to_string(&series(&result)).unwrap(),
            old.to_string()
        );
    }

    #[test]
    fn long_ranges_read_the_rollups_when_the_buckets_tile() {
        let now = 1_700_000_000_000;
        let span = |days: i64| Window {
            from_ms: now - days * DAY_MS,
            to_ms: now,
        };
        let auto = |w: Window| every(&q(&[]), w).unwrap();
        assert_eq!(source(span(1), auto(span(1))), Source::Raw);
        let e = auto(span(7));
        assert_eq!(e.ms() % 3_600_000, 0, "{e}");
        assert_eq!(source(span(7), e), Source::Rollup(Rollup::Hourly));
        let e = auto(span(30));
        assert_eq!(source(span(30), e), Source::Rollup(Rollup::Hourly));
        let e = auto(span(365));
        assert_eq!(source(span(365), e), Source::Rollup(Rollup::Daily));
        // Forty series share the points: a month of a compound's devices in days.
        let e = every_for(&q(&[]), span(30), 40).unwrap();
        assert_eq!(e, Every { n: 1, unit: 'd' });
        assert_eq!(source(span(30), e), Source::Rollup(Rollup::Daily));
        assert_eq!(every_for(&q(&[]), span(1), 3).unwrap(), auto(span(1)));
        // A bucket the rollups cannot tile stays on raw rows.
        let fine = Every { n: 30, unit: 'm' };
        assert_eq!(source(span(7), fine), Source::Raw);
        let (sql, _) = sampled_sql(
            DeviceKind::Pump,
            metric_of(DeviceKind::Pump, "outlet_pressure_mpa").unwrap(),
            &["pump-1"],
            Window {
                from_ms: 5 * DAY_MS + 1,
                to_ms: 10 * DAY_MS - 1,
            },
            Every { n: 1, unit: 'h' },
        );
        assert!(sql.contains("FROM pump_telemetry_1h"), "{sql}");
        assert!(
            sql.contains(&format!("ts >= cast({} AS", 5 * DAY_MS * 1000)),
            "{sql}"
        );
        assert!(
            sql.contains(&format!("ts < cast({} AS", 10 * DAY_MS * 1000)),
            "{sql}"
        );
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
