//! Field-level checks of a message: timestamps, sequence numbers, metric values against
//! the catalogue, and vendor extras.

use super::*;

pub(super) fn timestamp(ctx: &Ctx, v: Option<&Scalar>, device: &str) -> Result<i64, Reject> {
    let bad = |detail: String| reject(RejectReason::BadTimestamp, Some(device), detail);
    let ts = match v {
        None => {
            return Err(reject(
                RejectReason::BadShape,
                Some(device),
                "`ts` is missing",
            ))
        }
        Some(Scalar::I64(ms)) if *ms >= 0 => *ms,
        Some(Scalar::U64(ms)) if *ms <= i64::MAX as u64 => *ms as i64,
        Some(n @ (Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_))) => {
            return Err(bad(format!(
                "`ts` {n} is not a non-negative integer of milliseconds since the epoch"
            )))
        }
        Some(Scalar::Str(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map_err(|e| bad(format!("`ts` `{}` is not RFC 3339: {e}", truncate(s, 64))))?
            .timestamp_millis(),
        Some(other) => {
            return Err(bad(format!(
                "`ts` must be milliseconds or an RFC 3339 string, got {}",
                other.type_name()
            )))
        }
    };
    let future = ts.saturating_sub(ctx.now_ms);
    let past = ctx.now_ms.saturating_sub(ts);
    if future > ctx.cfg.max_future_skew.as_millis() as i64
        || past > ctx.cfg.max_past_age.as_millis() as i64
    {
        return Err(bad(outside_window(ctx, v, ts)));
    }
    Ok(ts)
}

/// The detail of a `ts` outside the accepted window: how far outside, the window, and
/// for a number the unit it was probably written in.
#[cold]
fn outside_window(ctx: &Ctx, v: Option<&Scalar>, ts: i64) -> String {
    let when = chrono::DateTime::from_timestamp_millis(ts)
        .map(|t| format!(" ({})", t.format("%Y-%m-%dT%H:%M:%SZ")))
        .unwrap_or_default();
    let off = if ts > ctx.now_ms {
        format!(
            "{} in the future",
            hints::span(ts.saturating_sub(ctx.now_ms))
        )
    } else {
        format!("{} old", hints::span(ctx.now_ms.saturating_sub(ts)))
    };
    let mut detail = format!(
        "`ts` {ts}{when} is {off}; accepted: from {} before to {} after the time the hub \
         receives it",
        hints::span(ctx.cfg.max_past_age.as_millis() as i64),
        hints::span(ctx.cfg.max_future_skew.as_millis() as i64),
    );
    if matches!(v, Some(Scalar::I64(_) | Scalar::U64(_))) {
        if let Some((unit, ms)) = hints::ts_unit(ts) {
            detail.push_str(&format!(
                "; it looks like {unit}: `ts` is milliseconds since the epoch ({ms})"
            ));
        }
    }
    detail
}

pub(super) fn seq(v: Option<&Scalar>, device: &str) -> Result<Option<u64>, Reject> {
    match v {
        None | Some(Scalar::Null) => Ok(None),
        Some(Scalar::U64(n)) => Ok(Some(*n)),
        Some(Scalar::I64(n)) if *n >= 0 => Ok(Some(*n as u64)),
        Some(n @ (Scalar::I64(_) | Scalar::F64(_))) => Err(reject(
            RejectReason::WrongType,
            Some(device),
            format!("`seq` {n} is not an unsigned integer"),
        )),
        Some(other) => Err(reject(
            RejectReason::WrongType,
            Some(device),
            format!(
                "`seq` must be an unsigned integer, got {}",
                other.type_name()
            ),
        )),
    }
}

/// Scalar view of a member of an event or status object (low-volume paths keep `Value`).
pub(super) fn scalar_of(v: Option<&Json>) -> Option<Scalar<'_>> {
    v.map(|j| match j {
        Json::Null => Scalar::Null,
        Json::Bool(b) => Scalar::Bool(*b),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Scalar::I64(i),
            (None, Some(u), _) => Scalar::U64(u),
            (_, _, f) => Scalar::F64(f.unwrap_or(f64::NAN)),
        },
        Json::String(s) => Scalar::Str(std::borrow::Cow::Borrowed(s.as_str())),
        Json::Array(_) => Scalar::Array,
        Json::Object(_) => Scalar::Object,
    })
}

/// Whether an object may have member `key`.
pub(super) fn check_field(key: &str, allowed: &[&str], device: &str) -> Result<(), Reject> {
    if allowed.contains(&key) {
        return Ok(());
    }
    Err(reject(
        RejectReason::BadShape,
        Some(device),
        format!(
            "unexpected field `{}`; allowed: {}",
            truncate(key, 64),
            allowed.join(", ")
        ),
    ))
}

pub(super) fn check_fields(
    obj: &Map<String, Json>,
    allowed: &[&str],
    device: &str,
) -> Result<(), Reject> {
    obj.keys().try_for_each(|k| check_field(k, allowed, device))
}

#[inline]
pub(super) fn metric_value(
    kind: DeviceKind,
    name: &str,
    v: &Scalar,
    device: &str,
) -> Result<(&'static str, Value), Reject> {
    let Some(spec) = catalog::metric(kind, name) else {
        let near = hints::nearest(name, catalog::metrics(kind).iter().map(|m| m.name))
            .map(|n| format!("; did you mean `{n}`?"))
            .unwrap_or_default();
        return Err(reject(
            RejectReason::UnknownMetric,
            Some(device),
            format!(
                "metric `{}` is not defined for {kind} devices (vendor metrics must start with `{VENDOR_PREFIX}`){near}",
                truncate(name, 64)
            ),
        ));
    };
    let wrong = |expected: &str| {
        reject(
            RejectReason::WrongType,
            Some(device),
            format!(
                "metric `{}` must be {expected}, got {}",
                spec.name,
                v.type_name()
            ),
        )
    };
    let range = |shown: String, min: String, max: String| {
        reject(
            RejectReason::OutOfRange,
            Some(device),
            format!("metric `{}` = {shown} is outside [{min}, {max}]", spec.name),
        )
    };
    let value = match (spec.ty, v) {
        (MetricType::Bool, Scalar::Bool(b)) => Value::Bool(*b),
        (MetricType::Bool, _) => return Err(wrong("a boolean")),
        (MetricType::Float { min, max }, Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_)) => {
            let x = v.as_f64().unwrap_or(f64::NAN);
            if !(min..=max).contains(&x) {
                return Err(range(x.to_string(), min.to_string(), max.to_string()));
            }
            Value::Float(x)
        }
        (MetricType::Float { .. }, _) => return Err(wrong("a number")),
        (MetricType::Int { min, max }, Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_)) => {
            let x = match v {
                Scalar::I64(i) => *i,
                Scalar::U64(u) if *u <= i64::MAX as u64 => *u as i64,
                Scalar::U64(u) => {
                    return Err(range(u.to_string(), min.to_string(), max.to_string()))
                }
                // 3.0 from a vendor that serialises every number as a float is still 3.
                Scalar::F64(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => *f as i64,
                _ => return Err(wrong("an integer")),
            };
            if !(min..=max).contains(&x) {
                return Err(range(x.to_string(), min.to_string(), max.to_string()));
            }
            Value::Int(x)
        }
        (MetricType::Int { .. }, _) => return Err(wrong("an integer")),
        (MetricType::Enum(values), Scalar::Str(s)) => {
            match values.iter().find(|v| **v == s.as_ref()) {
                Some(v) => Value::Sym(v),
                None => {
                    return Err(reject(
                        RejectReason::OutOfRange,
                        Some(device),
                        format!(
                            "metric `{}` = `{}` is not one of {}",
                            spec.name,
                            truncate(s, 64),
                            values.join(", ")
                        ),
                    ))
                }
            }
        }
        (MetricType::Enum(values), _) => {
            return Err(wrong(&format!("a string, one of {}", values.join(", "))))
        }
        (MetricType::Text { max_len }, Scalar::Str(s)) => {
            if s.len() > max_len {
                return Err(range(
                    format!("a string of {} bytes", s.len()),
                    "0".into(),
                    format!("{max_len} bytes"),
                ));
            }
            Value::Text(s.to_string())
        }
        (MetricType::Text { .. }, _) => return Err(wrong("a string")),
    };
    Ok((spec.name, value))
}

pub(super) fn vendor_name_ok(name: &str) -> bool {
    name.len() > VENDOR_PREFIX.len()
        && name.len() <= 62
        && name.starts_with(VENDOR_PREFIX)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Catalogue metrics in message order, and vendor `x_` metrics as JSON text.
type MetricsAndExtras = (Vec<(&'static str, Value)>, Option<String>);

/// One member of `metrics`, valid: a catalogue value, or a vendor extra kept as JSON.
pub(super) enum MetricOk {
    Catalog(&'static str, Value),
    Vendor,
}

/// The entries of `metrics`, or why `metrics` itself is refused (missing, not an object,
/// empty).
pub(super) fn metric_entries<'m, 'a>(
    m: &'m MetricsIn<'a>,
    id: &str,
) -> Result<&'m [(std::borrow::Cow<'a, str>, Scalar<'a>)], Reject> {
    let detail = match m {
        MetricsIn::Map(e) if !e.is_empty() => return Ok(e),
        MetricsIn::Map(_) => "`metrics` is empty".to_string(),
        MetricsIn::Not(t) => format!("`metrics` must be an object, got {t}"),
        MetricsIn::Missing => "`metrics` is missing".to_string(),
    };
    Err(reject(RejectReason::BadShape, Some(id), detail))
}

/// One member `name: v` of `metrics`; `seen` says whether a catalogue name already had a
/// value in this entry. Inlined into the hot loop of [`metrics`] (a call per metric with
/// a `Result<_, Reject>` returned through memory cost 4 % of decoding).
#[inline(always)]
pub(super) fn metric_entry(
    device: &DeviceInfo,
    name: &str,
    v: &Scalar,
    seen: impl Fn(&str) -> bool,
) -> Result<MetricOk, Reject> {
    let id = &*device.id;
    if name.starts_with(VENDOR_PREFIX) {
        if !vendor_name_ok(name) {
            return Err(reject(
                RejectReason::UnknownMetric,
                Some(id),
                format!(
                    "vendor metric `{}` must match x_[A-Za-z0-9_]{{1,60}}",
                    truncate(name, 64)
                ),
            ));
        }
        if matches!(v, Scalar::Object | Scalar::Array) {
            return Err(reject(
                RejectReason::WrongType,
                Some(id),
                format!("vendor metric `{name}` must be a string, number, boolean or null"),
            ));
        }
        return Ok(MetricOk::Vendor);
    }
    let (spec_name, value) = metric_value(device.kind, name, v, id)?;
    // A repeated name would become two values for one column.
    if seen(spec_name) {
        return Err(reject(
            RejectReason::BadShape,
            Some(id),
            format!("metric `{spec_name}` appears more than once"),
        ));
    }
    Ok(MetricOk::Catalog(spec_name, value))
}

pub(super) fn metrics(device: &DeviceInfo, m: &MetricsIn) -> Result<MetricsAndExtras, Reject> {
    let entries = metric_entries(m, &device.id)?;
    let mut values: Vec<(&'static str, Value)> = Vec::with_capacity(entries.len());
    let mut extras: Option<Map<String, Json>> = None;
    for (name, v) in entries {
        match metric_entry(device, name, v, |n| values.iter().any(|(s, _)| *s == n))? {
            MetricOk::Catalog(spec_name, value) => values.push((spec_name, value)),
            MetricOk::Vendor => {
                extras
                    .get_or_insert_with(Map::new)
                    .insert(name.to_string(), v.to_json());
            }
        }
    }
    let extras = extras.map(|m| Json::Object(m).to_string());
    Ok((values, extras))
}
