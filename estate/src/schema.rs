//! JSON Schema (draft 2020-12) of device contract v1, generated from the metric catalogue.
//!
//! The files in `docs/schemas/` are [`all_schemas`] rendered by [`render`]; a test in
//! `estate/tests/schemas.rs` fails when they drift (`STEWARD_BLESS=1` rewrites them).
//!
//! The schemas check everything a schema can express: structure, field types, metric names,
//! value types, ranges, enums and lengths. What they cannot check is left to the hub: the
//! timestamp window, whether a device is registered (and behind which gateway) and the
//! payload size limit; string lengths are checked in characters here and in UTF-8 bytes by
//! the hub (the same for ASCII).

use crate::catalog::{self, MetricSpec, MetricType, VENDOR_PREFIX};
use crate::DeviceKind;
use serde_json::{json, Map, Value};

/// Where the schema files are published; each `$id` is this plus the file name.
pub const BASE_URI: &str = "https://steward.example/schemas/v1/";
/// JSON Schema dialect of every schema.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";
/// Most entries in one telemetry message (device array or gateway batch).
pub const MAX_ENTRIES: u64 = 1000;
/// Names of vendor metrics and events: `x_` then 1 to 60 letters, digits or `_`.
pub const VENDOR_NAME_PATTERN: &str = "^x_[A-Za-z0-9_]{1,60}$";
/// Device, gateway and compound identifiers (see [`crate::validate_id`]).
pub const ID_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";
/// RFC 3339 date-time with a mandatory offset; `format: date-time` alone is only an
/// annotation in draft 2020-12, so the pattern makes validators check it.
pub const RFC3339_PATTERN: &str =
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})$";

const _: () = assert!(VENDOR_PREFIX.len() == 2, "VENDOR_NAME_PATTERN assumes `x_`");

/// File name of a schema, e.g. `telemetry-lift.schema.json`.
pub fn file_name(stem: &str) -> String {
    format!("{stem}.schema.json")
}

fn header(stem: &str, title: String, description: String) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("$schema".into(), DIALECT.into());
    m.insert(
        "$id".into(),
        format!("{BASE_URI}{}", file_name(stem)).into(),
    );
    m.insert("title".into(), title.into());
    m.insert("description".into(), description.into());
    m
}

fn ts_schema() -> Value {
    json!({
        "description": "when it happened on the device: integer milliseconds since the Unix epoch (UTC), \
                        or an RFC 3339 date-time with an offset (`Z` or `+hh:mm`); the hub \
                        rejects readings older than 30 days or more than 5 minutes ahead of \
                        its clock (operator-configurable) with `bad_timestamp`",
        "anyOf": [
            { "type": "integer", "minimum": 0 },
            { "type": "string", "format": "date-time", "pattern": RFC3339_PATTERN }
        ]
    })
}

fn seq_schema() -> Value {
    json!({
        "description": "optional sequence number counting up per device, 0 to 2^63 - 1 (stored \
                        in a signed 64-bit column); lets the hub see lost messages and restarts",
        "type": "integer",
        "minimum": 0,
        "maximum": i64::MAX
    })
}

fn vendor_value_schema() -> Value {
    json!({
        "description": "vendor extension (name starts with `x_`), any scalar; stored as JSON in \
                        the `extras` column",
        "type": ["string", "number", "boolean"]
    })
}

/// Splits a catalogue description `meaning, unit` at its last `, ` outside parentheses.
fn split_unit(description: &'static str) -> (&'static str, Option<&'static str>) {
    let mut depth = 0i32;
    let mut split = None;
    for (i, c) in description.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 && description[i..].starts_with(", ") => split = Some(i),
            _ => {}
        }
    }
    match split {
        Some(i) => (&description[..i], Some(&description[i + 2..])),
        None => (description, None),
    }
}

/// The unit of a metric: what follows the last `, ` of its catalogue description.
pub fn unit(spec: &MetricSpec) -> Option<&'static str> {
    split_unit(spec.description).1
}

/// The meaning of a metric: its catalogue description without the unit.
pub fn meaning(spec: &MetricSpec) -> &'static str {
    split_unit(spec.description).0
}

/// Schema of one catalogue metric.
pub fn metric_schema(spec: &MetricSpec) -> Value {
    match spec.ty {
        MetricType::Bool => json!({
            "description": spec.description,
            "type": "boolean"
        }),
        MetricType::Float { min, max } => json!({
            "description": format!("{} (range {min} to {max})", spec.description),
            "type": "number",
            "minimum": min,
            "maximum": max
        }),
        MetricType::Int { min, max } => json!({
            "description": format!("{} (integer, range {min} to {max})", spec.description),
            "type": "integer",
            "minimum": min,
            "maximum": max
        }),
        MetricType::Enum(values) => json!({
            "description": spec.description,
            "type": "string",
            "enum": values
        }),
        MetricType::Text { max_len } => json!({
            "description": format!(
                "{} (at most {max_len} bytes of UTF-8; use ASCII)",
                spec.description
            ),
            "type": "string",
            "maxLength": max_len
        }),
    }
}

fn kind_metrics_schema(kind: DeviceKind) -> Value {
    let properties: Map<String, Value> = catalog::metrics(kind)
        .iter()
        .map(|m| (m.name.to_string(), metric_schema(m)))
        .collect();
    json!({
        "description": format!(
            "measurements of a {kind} device: at least one; catalogue metrics with their \
             types, units and ranges, plus vendor extensions named `x_...`; any other name \
             is rejected with `unknown_metric`, a value of the wrong type with \
             `wrong_type`, a value outside its range or allowed values with `out_of_range`"
        ),
        "type": "object",
        "minProperties": 1,
        "properties": properties,
        "patternProperties": { VENDOR_NAME_PATTERN: { "$ref": "#/$defs/vendor_value" } },
        "additionalProperties": false
    })
}

fn units_summary(kind: DeviceKind) -> String {
    let units: Vec<String> = catalog::metrics(kind)
        .iter()
        .filter_map(|m| unit(m).map(|u| format!("{} in {u}", m.name)))
        .collect();
    if units.is_empty() {
        String::new()
    } else {
        format!(" Units: {}.", units.join(", "))
    }
}

/// Schema of a message on `devices/{device_id}/telemetry` for a device of `kind`.
pub fn telemetry_schema(kind: DeviceKind) -> Value {
    let stem = format!("telemetry-{kind}");
    let mut s = header(
        &stem,
        format!("Steward device contract v1: {kind} telemetry"),
        format!(
            "Payload published by a {kind} device (or its gateway) on \
             devices/{{device_id}}/telemetry: one reading, or an array of 1 to {MAX_ENTRIES} \
             readings each validated on its own. UTF-8 JSON, at most 64 KiB.{}",
            units_summary(kind)
        ),
    );
    s.insert(
        "oneOf".into(),
        json!([
            { "$ref": "#/$defs/reading" },
            {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_ENTRIES,
                "items": { "$ref": "#/$defs/reading" }
            }
        ]),
    );
    s.insert(
        "$defs".into(),
        json!({
            "ts": ts_schema(),
            "seq": seq_schema(),
            "vendor_value": vendor_value_schema(),
            "metrics": kind_metrics_schema(kind),
            "reading": {
                "description": format!("one reading of a {kind} device"),
                "type": "object",
                "required": ["ts", "metrics"],
                "properties": {
                    "ts": { "$ref": "#/$defs/ts" },
                    "seq": { "$ref": "#/$defs/seq" },
                    "metrics": { "$ref": "#/$defs/metrics" }
                },
                "additionalProperties": false
            }
        }),
    );
    Value::Object(s)
}

/// Schema of a message on `devices/{device_id}/events` for a device of `kind`.
pub fn event_schema(kind: DeviceKind) -> Value {
    let stem = format!("event-{kind}");
    let events = catalog::events(kind);
    let mut s = header(
        &stem,
        format!("Steward device contract v1: {kind} event"),
        format!(
            "Payload published by a {kind} device (or its gateway) on \
             devices/{{device_id}}/events: one event. Catalogue events: {}; vendor events are \
             named `x_...`; any other name is rejected with `unknown_event`. UTF-8 JSON, at \
             most 64 KiB; ts in milliseconds since the Unix epoch or RFC 3339.",
            events.join(", ")
        ),
    );
    s.insert("type".into(), "object".into());
    s.insert("required".into(), json!(["ts", "event"]));
    s.insert(
        "properties".into(),
        json!({
            "ts": { "$ref": "#/$defs/ts" },
            "seq": { "$ref": "#/$defs/seq" },
            "event": {
                "description": "event name",
                "anyOf": [
                    { "type": "string", "enum": events },
                    { "type": "string", "pattern": VENDOR_NAME_PATTERN }
                ]
            },
            "data": {
                "description": "optional details of the event, any JSON object; stored as \
                                JSON in the `data` column of `device_events`",
                "type": "object"
            }
        }),
    );
    s.insert("additionalProperties".into(), false.into());
    s.insert(
        "$defs".into(),
        json!({ "ts": ts_schema(), "seq": seq_schema() }),
    );
    Value::Object(s)
}

/// Schema of a message on `devices/{device_id}/status`.
pub fn status_schema() -> Value {
    let mut s = header(
        "status",
        "Steward device contract v1: device status".into(),
        "Retained payload on devices/{device_id}/status: `online` after connecting, `offline` \
         as the last will (retained, QoS 1). Either the plain text `online` or `offline`, \
         sent as bare bytes WITHOUT JSON quotes (the string form below; surrounding whitespace \
         is ignored), or a JSON object with the status and an optional ts (milliseconds since \
         the Unix epoch or RFC 3339). Anything else is rejected with `bad_status`."
            .into(),
    );
    let status = json!({ "type": "string", "enum": ["online", "offline"] });
    let plain = json!({
        "description": "the plain-text payload `online` or `offline`, published without quotes",
        "type": "string",
        "enum": ["online", "offline"]
    });
    s.insert(
        "oneOf".into(),
        json!([
            plain,
            {
                "type": "object",
                "required": ["status"],
                "properties": {
                    "status": status,
                    "ts": { "$ref": "#/$defs/ts" }
                },
                "additionalProperties": false
            }
        ]),
    );
    s.insert("$defs".into(), json!({ "ts": ts_schema() }));
    Value::Object(s)
}

/// Every catalogue metric name of any kind, sorted and without duplicates.
fn all_metric_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = DeviceKind::ALL
        .iter()
        .flat_map(|k| catalog::metrics(*k).iter().map(|m| m.name))
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Schema of a message on `gateways/{gateway_id}/telemetry`.
pub fn gateway_schema() -> Value {
    let mut s = header(
        "gateway",
        "Steward device contract v1: gateway telemetry".into(),
        format!(
            "Payload published by a gateway on gateways/{{gateway_id}}/telemetry: an array of \
             1 to {MAX_ENTRIES} readings of devices registered behind that gateway, each \
             validated on its own. A gateway batch may mix device kinds, so this schema checks \
             metric names against the union of all kinds; the hub checks each entry against \
             the catalogue of its device's kind (see telemetry-<kind>.schema.json for types, \
             units and ranges). UTF-8 JSON, at most 64 KiB."
        ),
    );
    s.insert("type".into(), "array".into());
    s.insert("minItems".into(), 1.into());
    s.insert("maxItems".into(), MAX_ENTRIES.into());
    s.insert("items".into(), json!({ "$ref": "#/$defs/entry" }));
    s.insert(
        "$defs".into(),
        json!({
            "ts": ts_schema(),
            "seq": seq_schema(),
            "vendor_value": vendor_value_schema(),
            "entry": {
                "description": "one reading of a device behind the gateway",
                "type": "object",
                "required": ["device_id", "ts", "metrics"],
                "properties": {
                    "device_id": {
                        "description": "registry id of a device behind this gateway",
                        "type": "string",
                        "pattern": ID_PATTERN
                    },
                    "ts": { "$ref": "#/$defs/ts" },
                    "seq": { "$ref": "#/$defs/seq" },
                    "metrics": {
                        "description": "measurements: at least one; names of the device's \
                                        kind or vendor extensions `x_...`, scalar values",
                        "type": "object",
                        "minProperties": 1,
                        "propertyNames": {
                            "anyOf": [
                                { "enum": all_metric_names() },
                                { "pattern": VENDOR_NAME_PATTERN }
                            ]
                        },
                        "additionalProperties": { "type": ["string", "number", "boolean"] }
                    }
                },
                "additionalProperties": false
            }
        }),
    );
    Value::Object(s)
}

/// Every schema of the contract with its file name, in a stable order.
pub fn all_schemas() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for kind in DeviceKind::ALL {
        out.push((
            file_name(&format!("telemetry-{kind}")),
            telemetry_schema(kind),
        ));
    }
    for kind in DeviceKind::ALL {
        out.push((file_name(&format!("event-{kind}")), event_schema(kind)));
    }
    out.push((file_name("status"), status_schema()));
    out.push((file_name("gateway"), gateway_schema()));
    out
}

/// Pretty-printed text of a schema file, keys sorted and with a trailing newline.
///
/// Keys are sorted explicitly so the text does not depend on whether serde_json's
/// `preserve_order` feature is enabled somewhere in the build.
pub fn render(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(schema)).expect("json values serialize");
    text.push('\n');
    text
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(&String, &Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_titles() {
        for (name, s) in all_schemas() {
            assert_eq!(s["$schema"], DIALECT);
            assert_eq!(s["$id"], format!("{BASE_URI}{name}"));
            assert!(s["title"].is_string() && s["description"].is_string());
        }
    }

    #[test]
    fn units_split_from_descriptions() {
        let m = catalog::metric(DeviceKind::Pump, "flow_m3h").unwrap();
        assert_eq!(unit(m), Some("m3/h"));
        assert_eq!(meaning(m), "flow");
        let m = catalog::metric(DeviceKind::Lift, "floor").unwrap();
        assert_eq!(unit(m), None);
        assert_eq!(meaning(m), "current floor");
        let m = catalog::metric(DeviceKind::Smoke, "pre_alarm").unwrap();
        assert_eq!(unit(m), None);
        assert_eq!(meaning(m), "pre-alarm (smoke rising, below alarm level)");
    }

    #[test]
    fn render_is_sorted_and_ends_with_newline() {
        let text = render(&json!({ "b": 1, "a": { "d": 2, "c": 3 } }));
        assert_eq!(
            text,
            "{\n  \"a\": {\n    \"c\": 3,\n    \"d\": 2\n  },\n  \"b\": 1\n}\n"
        );
    }
}
