//! Device contract v1: topic parsing and payload decoding with validation.
//!
//! Pure functions of (topic, payload, directory, now): the hub and `steward check-payload`
//! run exactly this code.

use crate::IngestConfig;
use steward_estate::model::*;
use wire::{EntryIn, MessageIn, MetricsIn, Scalar};

mod check;
mod hints;
mod messages;
mod values;
mod wire;
use messages::*;
use serde_json::{Map, Value as Json};
use steward_estate::catalog::{self, MetricType, VENDOR_PREFIX};
use steward_estate::inbound::{SHED_PREFIX, UNAUTHORIZED_PREFIX};
use steward_estate::{DeviceInfo, DeviceKind, Directory};
use values::*;

pub use check::{check, Checked, Finding};

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

/// Where a message goes once its topic, sender and size are accepted.
pub(super) enum Route<'t, 'd> {
    /// Downlink or the hub's own alerts: ingest ignores it.
    Nothing,
    Device(&'d DeviceInfo, Channel),
    Gateway(&'t str),
}

/// The checks of a message before its payload is read: the broker guard's diversions,
/// the topic, the size, and the registry.
pub(super) fn route<'t, 'd>(
    topic: &'t [u8],
    payload_len: usize,
    dir: &'d Directory,
    cfg: &IngestConfig,
) -> Result<Route<'t, 'd>, Reject> {
    if let Some(rest) = topic.strip_prefix(UNAUTHORIZED_PREFIX.as_bytes()) {
        return Err(unauthorized(rest, dir));
    }
    if let Some(sender) = topic.strip_prefix(SHED_PREFIX.as_bytes()) {
        let sender = String::from_utf8_lossy(sender);
        return Err(reject(
            RejectReason::RateLimited,
            sender_id(&sender),
            format!(
                "`{}` published faster than its rate limit; this message was dropped",
                truncate(&sender, 64)
            ),
        ));
    }
    let parsed =
        parse_topic(topic).map_err(|detail| reject(RejectReason::BadTopic, None, detail))?;
    let topic_device = match parsed {
        Topic::Device { id, .. } | Topic::Gateway { id } => id,
        Topic::StationAlerts { .. } => return Ok(Route::Nothing),
    };
    if payload_len > cfg.max_payload_bytes {
        return Err(reject(
            RejectReason::PayloadTooLarge,
            Some(topic_device),
            format!(
                "payload is {payload_len} bytes; the limit is {}",
                cfg.max_payload_bytes
            ),
        ));
    }
    match parsed {
        Topic::Device {
            channel: Channel::Commands,
            ..
        }
        | Topic::StationAlerts { .. } => Ok(Route::Nothing),
        Topic::Device { id, channel } => Ok(Route::Device(lookup(dir, id)?, channel)),
        Topic::Gateway { id } => Ok(Route::Gateway(id)),
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
    match route(topic, payload.len(), dir, cfg) {
        Err(r) => out.rejects.push(r),
        Ok(Route::Nothing) => {}
        Ok(Route::Device(device, channel)) => match channel {
            Channel::Telemetry => decode_telemetry(&ctx, device, payload, &mut out),
            Channel::Events => decode_event(&ctx, device, payload, &mut out),
            Channel::Status => decode_status(&ctx, device, payload, &mut out),
            Channel::Commands => {}
        },
        Ok(Route::Gateway(id)) => decode_gateway(&ctx, dir, id, payload, &mut out),
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

#[cfg(test)]
mod tests;
