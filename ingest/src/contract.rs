//! Device contract v1: topic parsing and payload decoding with validation.
//!
//! Pure functions of (topic, payload, directory, now): the hub and `steward check-payload`
//! run exactly this code.

use crate::IngestConfig;
use steward_estate::model::*;
use wire::{EntryIn, MessageIn, MetricsIn, Scalar};

mod wire;
use serde_json::{Map, Value as Json};
use steward_estate::catalog::{self, MetricType, VENDOR_PREFIX};
use steward_estate::inbound::{SHED_PREFIX, UNAUTHORIZED_PREFIX};
use steward_estate::{DeviceInfo, DeviceKind, Directory};

/// Which channel of a device a topic addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Telemetry,
    Events,
    Status,
    /// Downlink from the hub; ingest ignores these.
    Commands,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic<'a> {
    Device {
        id: &'a str,
        channel: Channel,
    },
    Gateway {
        id: &'a str,
    },
    /// `stations/{id}/alerts`: the hub's own alerts to crews; ingest ignores them.
    StationAlerts {
        id: &'a str,
    },
}

/// Parse a topic of contract v1; the error is the detail of a `bad_topic` reject.
pub fn parse_topic(topic: &[u8]) -> Result<Topic<'_>, String> {
    let topic = std::str::from_utf8(topic).map_err(|_| "topic is not valid UTF-8".to_string())?;
    let mut parts = topic.split('/');
    let (root, id, leaf, extra) = (parts.next(), parts.next(), parts.next(), parts.next());
    let (Some(root), Some(id), Some(leaf), None) = (root, id, leaf, extra) else {
        return Err(format!(
            "topic `{}` is not devices/{{id}}/{{telemetry|events|status}} or gateways/{{id}}/telemetry",
            truncate(topic, 200)
        ));
    };
    steward_estate::validate_id(id)
        .map_err(|e| format!("topic `{}`: {e}", truncate(topic, 200)))?;
    match (root, leaf) {
        ("devices", "telemetry") => Ok(Topic::Device {
            id,
            channel: Channel::Telemetry,
        }),
        ("devices", "events") => Ok(Topic::Device {
            id,
            channel: Channel::Events,
        }),
        ("devices", "status") => Ok(Topic::Device {
            id,
            channel: Channel::Status,
        }),
        ("devices", "commands") => Ok(Topic::Device {
            id,
            channel: Channel::Commands,
        }),
        ("gateways", "telemetry") => Ok(Topic::Gateway { id }),
        ("stations", "alerts") => Ok(Topic::StationAlerts { id }),
        _ => Err(format!(
            "topic `{}` is not devices/{{id}}/{{telemetry|events|status}} or gateways/{{id}}/telemetry",
            truncate(topic, 200)
        )),
    }
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

struct Ctx<'a> {
    cfg: &'a IngestConfig,
    now_ms: i64,
}

fn reject(reason: RejectReason, device: Option<&str>, detail: impl Into<String>) -> Reject {
    Reject {
        reason,
        device_id: device.map(str::to_string),
        detail: detail.into(),
    }
}

/// Decode one MQTT message. Never panics on any input; everything refused is in
/// `rejects` with a reason and a detail.
pub fn decode(
    topic: &[u8],
    payload: &[u8],
    dir: &Directory,
    now_ms: i64,
    cfg: &IngestConfig,
) -> Decoded {
    let mut out = Decoded::default();
    let ctx = Ctx { cfg, now_ms };
    if let Some(rest) = topic.strip_prefix(UNAUTHORIZED_PREFIX.as_bytes()) {
        out.rejects.push(unauthorized(rest, dir));
        return out;
    }
    if let Some(sender) = topic.strip_prefix(SHED_PREFIX.as_bytes()) {
        let sender = String::from_utf8_lossy(sender);
        out.rejects.push(reject(
            RejectReason::RateLimited,
            sender_id(&sender),
            format!(
                "`{}` published faster than its rate limit; this message was dropped",
                truncate(&sender, 64)
            ),
        ));
        return out;
    }
    let parsed = match parse_topic(topic) {
        Ok(t) => t,
        Err(detail) => {
            out.rejects
                .push(reject(RejectReason::BadTopic, None, detail));
            return out;
        }
    };
    let topic_device = match parsed {
        Topic::Device { id, .. } | Topic::Gateway { id } => id,
        Topic::StationAlerts { .. } => return out,
    };
    if payload.len() > cfg.max_payload_bytes {
        out.rejects.push(reject(
            RejectReason::PayloadTooLarge,
            Some(topic_device),
            format!(
                "payload is {} bytes; the limit is {}",
                payload.len(),
                cfg.max_payload_bytes
            ),
        ));
        return out;
    }
    match parsed {
        Topic::Device {
            channel: Channel::Commands,
            ..
        } => {}
        Topic::Device { id, channel } => {
            let device = match lookup(dir, id) {
                Ok(d) => d,
                Err(r) => {
                    out.rejects.push(r);
                    return out;
                }
            };
            match channel {
                Channel::Telemetry => decode_telemetry(&ctx, device, payload, &mut out),
                Channel::Events => decode_event(&ctx, device, payload, &mut out),
                Channel::Status => decode_status(&ctx, device, payload, &mut out),
                Channel::Commands => {}
            }
        }
        Topic::Gateway { id } => decode_gateway(&ctx, dir, id, payload, &mut out),
        Topic::StationAlerts { .. } => {}
    }
    out
}

/// A publish the broker diverted because its topic is not the sender's own
/// (`steward/unauthorized/{sender}/{topic}`). The reasons a wrong topic or an unknown id
/// would get from its owner come first, so the answer does not depend on who sent it.
fn unauthorized(rest: &[u8], dir: &Directory) -> Reject {
    let split = rest.iter().position(|b| *b == b'/').unwrap_or(rest.len());
    let sender_text = String::from_utf8_lossy(&rest[..split]);
    let sender = truncate(&sender_text, 80);
    let id = sender_id(sender);
    let original = rest.get(split + 1..).unwrap_or_default();
    let shown = String::from_utf8_lossy(original);
    let not_authorized = || {
        reject(
            RejectReason::NotAuthorized,
            id,
            format!(
                "`{sender}` may not publish to `{}`: a client publishes only under its own id",
                truncate(&shown, 200)
            ),
        )
    };
    match parse_topic(original) {
        Err(detail) => reject(RejectReason::BadTopic, id, detail),
        Ok(Topic::Device { id, .. } | Topic::Gateway { id }) => {
            let known = dir
                .device(id)
                .map(|d| d.retired)
                .or_else(|| dir.gateways.get(id).map(|g| g.retired));
            match known {
                None => reject(
                    RejectReason::UnknownDevice,
                    sender_id(sender),
                    format!("`{id}` is not in the registry"),
                ),
                Some(true) => reject(
                    RejectReason::RetiredDevice,
                    sender_id(sender),
                    format!("`{id}` is retired"),
                ),
                Some(false) => not_authorized(),
            }
        }
        Ok(Topic::StationAlerts { .. }) => not_authorized(),
    }
}

/// The sender named by the broker's guard, as a reject's `device_id` when it is a
/// registry-shaped id (a crew's token login is not).
fn sender_id(sender: &str) -> Option<&str> {
    steward_estate::validate_id(sender)
        .is_ok()
        .then_some(sender)
}

fn lookup<'d>(dir: &'d Directory, id: &str) -> Result<&'d DeviceInfo, Reject> {
    match dir.device(id) {
        None => Err(reject(
            RejectReason::UnknownDevice,
            Some(id),
            format!("device `{id}` is not in the estate registry"),
        )),
        Some(d) if d.retired => Err(reject(
            RejectReason::RetiredDevice,
            Some(id),
            format!("device `{id}` is retired"),
        )),
        Some(d) => Ok(d),
    }
}

fn utf8<'a>(payload: &'a [u8], device: &str) -> Result<&'a str, Reject> {
    std::str::from_utf8(payload).map_err(|e| {
        reject(
            RejectReason::NotUtf8,
            Some(device),
            format!(
                "payload is not UTF-8 (invalid byte at offset {})",
                e.valid_up_to()
            ),
        )
    })
}

fn malformed(device: &str, e: serde_json::Error) -> Reject {
    reject(
        RejectReason::MalformedJson,
        Some(device),
        format!("payload is not valid JSON: {e}"),
    )
}

fn parse_json(payload: &[u8], device: &str) -> Result<Json, Reject> {
    serde_json::from_str(utf8(payload, device)?).map_err(|e| malformed(device, e))
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn timestamp(ctx: &Ctx, v: Option<&Scalar>, device: &str) -> Result<i64, Reject> {
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
    if future > ctx.cfg.max_future_skew.as_millis() as i64 {
        return Err(bad(format!(
            "`ts` {ts} is {} s in the future; at most {} s is accepted",
            future / 1000,
            ctx.cfg.max_future_skew.as_secs()
        )));
    }
    if past > ctx.cfg.max_past_age.as_millis() as i64 {
        return Err(bad(format!(
            "`ts` {ts} is {} s old; at most {} s is accepted",
            past / 1000,
            ctx.cfg.max_past_age.as_secs()
        )));
    }
    Ok(ts)
}

fn seq(v: Option<&Scalar>, device: &str) -> Result<Option<u64>, Reject> {
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
fn scalar_of(v: Option<&Json>) -> Option<Scalar<'_>> {
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

fn check_fields(obj: &Map<String, Json>, allowed: &[&str], device: &str) -> Result<(), Reject> {
    if let Some(k) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(reject(
            RejectReason::BadShape,
            Some(device),
            format!(
                "unexpected field `{}`; allowed: {}",
                truncate(k, 64),
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

fn metric_value(
    kind: DeviceKind,
    name: &str,
    v: &Scalar,
    device: &str,
) -> Result<(&'static str, Value), Reject> {
    let Some(spec) = catalog::metric(kind, name) else {
        return Err(reject(
            RejectReason::UnknownMetric,
            Some(device),
            format!(
                "metric `{}` is not defined for {kind} devices (vendor metrics must start with `{VENDOR_PREFIX}`)",
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

fn vendor_name_ok(name: &str) -> bool {
    name.len() > VENDOR_PREFIX.len()
        && name.len() <= 62
        && name.starts_with(VENDOR_PREFIX)
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Catalogue metrics in message order, and vendor `x_` metrics as JSON text.
type MetricsAndExtras = (Vec<(&'static str, Value)>, Option<String>);

fn metrics(device: &DeviceInfo, m: &MetricsIn) -> Result<MetricsAndExtras, Reject> {
    let id = &*device.id;
    let entries = match m {
        MetricsIn::Map(e) if !e.is_empty() => e,
        MetricsIn::Map(_) => {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                "`metrics` is empty",
            ))
        }
        MetricsIn::Not(t) => {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                format!("`metrics` must be an object, got {t}"),
            ))
        }
        MetricsIn::Missing => {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                "`metrics` is missing",
            ))
        }
    };
    let mut values: Vec<(&'static str, Value)> = Vec::with_capacity(entries.len());
    let mut extras: Option<Map<String, Json>> = None;
    for (name, v) in entries {
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
            extras
                .get_or_insert_with(Map::new)
                .insert(name.to_string(), v.to_json());
            continue;
        }
        let (spec_name, value) = metric_value(device.kind, name, v, id)?;
        // A repeated name would become two values for one column.
        if values.iter().any(|(n, _)| *n == spec_name) {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                format!("metric `{spec_name}` appears more than once"),
            ));
        }
        values.push((spec_name, value));
    }
    let extras = extras.map(|m| Json::Object(m).to_string());
    Ok((values, extras))
}

fn parse_message<'a>(payload: &'a [u8], device: &str) -> Result<MessageIn<'a>, Reject> {
    wire::parse(utf8(payload, device)?).map_err(|e| malformed(device, e))
}

fn entries_of<'a>(msg: MessageIn<'a>, ctx: &Ctx, device: &str) -> Result<Vec<EntryIn<'a>>, Reject> {
    match msg {
        MessageIn::One(e) => Ok(vec![e]),
        MessageIn::Many(items) if items.is_empty() => Err(reject(
            RejectReason::BadShape,
            Some(device),
            "array is empty",
        )),
        MessageIn::Many(items) if items.len() > ctx.cfg.max_entries => Err(reject(
            RejectReason::TooManyEntries,
            Some(device),
            format!(
                "array has {} entries; the limit is {}",
                items.len(),
                ctx.cfg.max_entries
            ),
        )),
        MessageIn::Many(items) => Ok(items),
        MessageIn::Not(t) => Err(reject(
            RejectReason::BadShape,
            Some(device),
            format!("expected a JSON object or array, got {t}"),
        )),
    }
}

fn decode_telemetry(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Decoded) {
    let id = &*device.id;
    let items = match parse_message(payload, id).and_then(|m| entries_of(m, ctx, id)) {
        Ok(i) => i,
        Err(r) => {
            out.rejects.push(r);
            return;
        }
    };
    let many = items.len() > 1;
    for (i, item) in items.iter().enumerate() {
        match telemetry_entry(ctx, device, item, false) {
            Ok(r) => out.readings.push(r),
            Err(mut r) => {
                if many {
                    r.detail = format!("entry {i}: {}", r.detail);
                }
                out.rejects.push(r)
            }
        }
    }
}

fn telemetry_entry(
    ctx: &Ctx,
    device: &DeviceInfo,
    item: &EntryIn,
    via_gateway: bool,
) -> Result<Reading, Reject> {
    let id = &*device.id;
    if let Some(t) = item.not_object {
        return Err(reject(
            RejectReason::BadShape,
            Some(id),
            format!("expected an object, got {t}"),
        ));
    }
    let allowed = if via_gateway {
        "device_id, ts, seq, metrics"
    } else {
        "ts, seq, metrics"
    };
    let unexpected = match (&item.unexpected, &item.device_id) {
        (Some(k), _) => Some(k.as_ref()),
        (None, Some(_)) if !via_gateway => Some("device_id"),
        _ => None,
    };
    if let Some(k) = unexpected {
        return Err(reject(
            RejectReason::BadShape,
            Some(id),
            format!("unexpected field `{}`; allowed: {allowed}", truncate(k, 64)),
        ));
    }
    let ts_ms = timestamp(ctx, item.ts.as_ref(), id)?;
    let seq = seq(item.seq.as_ref(), id)?;
    let (values, extras) = metrics(device, &item.metrics)?;
    Ok(Reading {
        device_id: device.id.clone(),
        compound: device.compound.clone(),
        kind: device.kind,
        ts_ms,
        seq,
        values,
        extras,
    })
}

fn decode_event(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Decoded) {
    let id = &*device.id;
    let result = (|| {
        let json = parse_json(payload, id)?;
        let Json::Object(obj) = &json else {
            return Err(reject(
                RejectReason::BadShape,
                Some(id),
                format!("expected a JSON object, got {}", json_type(&json)),
            ));
        };
        check_fields(obj, &["ts", "event", "data", "seq"], id)?;
        let ts_ms = timestamp(ctx, scalar_of(obj.get("ts")).as_ref(), id)?;
        seq(scalar_of(obj.get("seq")).as_ref(), id)?;
        let event = match obj.get("event") {
            Some(Json::String(s)) => s.as_str(),
            Some(other) => {
                return Err(reject(
                    RejectReason::BadShape,
                    Some(id),
                    format!("`event` must be a string, got {}", json_type(other)),
                ))
            }
            None => {
                return Err(reject(
                    RejectReason::BadShape,
                    Some(id),
                    "`event` is missing",
                ))
            }
        };
        let known = catalog::events(device.kind);
        if !known.contains(&event) && !vendor_name_ok(event) {
            return Err(reject(
                RejectReason::UnknownEvent,
                Some(id),
                format!(
                    "event `{}` is not defined for {} devices (known: {}; vendor events start with `{VENDOR_PREFIX}`)",
                    truncate(event, 64),
                    device.kind,
                    known.join(", ")
                ),
            ));
        }
        let data = match obj.get("data") {
            None | Some(Json::Null) => "{}".to_string(),
            Some(d @ Json::Object(_)) => d.to_string(),
            Some(other) => {
                return Err(reject(
                    RejectReason::BadShape,
                    Some(id),
                    format!("`data` must be an object, got {}", json_type(other)),
                ))
            }
        };
        Ok(DeviceEvent {
            device_id: device.id.clone(),
            compound: device.compound.clone(),
            kind: device.kind,
            ts_ms,
            event: event.to_string(),
            data,
        })
    })();
    match result {
        Ok(e) => out.events.push(e),
        Err(r) => out.rejects.push(r),
    }
}

fn decode_status(ctx: &Ctx, device: &DeviceInfo, payload: &[u8], out: &mut Decoded) {
    let id = &*device.id;
    let bad = |detail: String| reject(RejectReason::BadStatus, Some(id), detail);
    let parse_word = |w: &str| match w {
        "online" => Some(Status::Online),
        "offline" => Some(Status::Offline),
        _ => None,
    };
    let text = match std::str::from_utf8(payload) {
        Ok(t) => t.trim(),
        Err(_) => {
            out.rejects.push(reject(
                RejectReason::NotUtf8,
                Some(id),
                "status payload is not UTF-8",
            ));
            return;
        }
    };
    let result = if let Some(s) = parse_word(text) {
        Ok((s, ctx.now_ms))
    } else if text.starts_with('{') {
        match parse_json(payload, id) {
            Ok(Json::Object(obj)) => (|| {
                check_fields(&obj, &["status", "ts"], id)?;
                let status = obj
                    .get("status")
                    .and_then(Json::as_str)
                    .and_then(parse_word)
                    .ok_or_else(|| bad("`status` must be \"online\" or \"offline\"".into()))?;
                let ts = match obj.get("ts") {
                    None => ctx.now_ms,
                    v => timestamp(ctx, scalar_of(v).as_ref(), id)?,
                };
                Ok((status, ts))
            })(),
            Ok(_) => Err(bad(
                "status must be `online`, `offline` or a JSON object".into()
            )),
            Err(r) => Err(r),
        }
    } else {
        Err(bad(format!(
            "status `{}` is not `online` or `offline`",
            truncate(text, 64)
        )))
    };
    match result {
        Ok((status, ts_ms)) => out.statuses.push(StatusChange {
            device_id: device.id.clone(),
            compound: device.compound.clone(),
            kind: device.kind,
            ts_ms,
            status,
        }),
        Err(r) => out.rejects.push(r),
    }
}

fn decode_gateway(ctx: &Ctx, dir: &Directory, gateway: &str, payload: &[u8], out: &mut Decoded) {
    match dir.gateways.get(gateway) {
        None => {
            out.rejects.push(reject(
                RejectReason::UnknownDevice,
                Some(gateway),
                format!("gateway `{gateway}` is not in the estate registry"),
            ));
            return;
        }
        Some(g) if g.retired => {
            out.rejects.push(reject(
                RejectReason::RetiredDevice,
                Some(gateway),
                format!("gateway `{gateway}` is retired"),
            ));
            return;
        }
        Some(_) => {}
    }
    let items = match parse_message(payload, gateway).and_then(|m| match m {
        MessageIn::Many(_) => entries_of(m, ctx, gateway),
        MessageIn::One(_) => Err(reject(
            RejectReason::BadShape,
            Some(gateway),
            "gateway telemetry must be a JSON array, got an object",
        )),
        MessageIn::Not(t) => Err(reject(
            RejectReason::BadShape,
            Some(gateway),
            format!("gateway telemetry must be a JSON array, got {t}"),
        )),
    }) {
        Ok(i) => i,
        Err(r) => {
            out.rejects.push(r);
            return;
        }
    };
    for (i, item) in items.iter().enumerate() {
        let result = (|| {
            let device_id = match &item.device_id {
                Some(Scalar::Str(s)) => s.as_ref(),
                _ if item.not_object.is_some() => {
                    return Err(reject(
                        RejectReason::BadShape,
                        Some(gateway),
                        format!("expected an object, got {}", item.not_object.unwrap_or("?")),
                    ))
                }
                _ => {
                    return Err(reject(
                        RejectReason::BadShape,
                        Some(gateway),
                        "`device_id` is missing or not a string",
                    ))
                }
            };
            // The id becomes the reject's `device_id` symbol and is echoed in its detail:
            // anything a gateway sends there must be a registry id first.
            steward_estate::validate_id(device_id).map_err(|e| {
                reject(
                    RejectReason::BadShape,
                    Some(gateway),
                    format!("`device_id`: {e}"),
                )
            })?;
            let device = lookup(dir, device_id)?;
            if device.gateway.as_deref() != Some(gateway) {
                return Err(reject(
                    RejectReason::NotBehindGateway,
                    Some(device_id),
                    format!("device `{device_id}` is not registered behind gateway `{gateway}`"),
                ));
            }
            telemetry_entry(ctx, device, item, true)
        })();
        match result {
            Ok(r) => out.readings.push(r),
            Err(mut r) => {
                r.detail = format!("gateway `{gateway}` entry {i}: {}", r.detail);
                out.rejects.push(r)
            }
        }
    }
}

#[cfg(test)]
mod tests;
