//! The metric catalogue as the dashboard shows it: per device kind, the metrics with
//! their units (taken from the catalogue's descriptions), the key metrics to show first,
//! and the readings that put a device in alarm or warning. One place decides this, so the
//! tiles of every page agree and a new metric in the catalogue shows up with its unit.

use crate::auth::Principal;
use crate::schema::DeviceKindDoc;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use steward_estate::catalog::{self, MetricType};
use steward_estate::DeviceKind;
use utoipa::ToSchema;

/// One metric of a kind. Fields in alphabetical order.
#[derive(Debug, Serialize, ToSchema)]
pub struct MetricInfo {
    pub description: &'static str,
    pub name: &'static str,
    /// bool, float, int, enum or text.
    #[serde(rename = "type")]
    pub ty: &'static str,
    /// Unit to print after the value (`%/m`, `°C`, `mm/s`); null for flags, states and counts.
    #[schema(required = true)]
    pub unit: Option<String>,
    /// The values an enum metric takes; empty for other types.
    pub values: Vec<&'static str>,
}

/// A reading that marks a device: `metric` equal to `equals` is an `alarm` (a person may
/// be in danger) or a `warning` (needs attention).
#[derive(Debug, Serialize, ToSchema)]
pub struct AlarmRule {
    #[schema(value_type = Object)]
    pub equals: Value,
    pub metric: &'static str,
    /// alarm or warning.
    pub severity: &'static str,
}

/// The catalogue of one device kind. Fields in alphabetical order.
#[derive(Debug, Serialize, ToSchema)]
pub struct KindCatalog {
    pub alarms: Vec<AlarmRule>,
    /// Events the kind may send.
    pub events: Vec<&'static str>,
    /// What a crew may name as the cause when resolving a ticket of this kind.
    pub failure_codes: Vec<&'static str>,
    /// Metrics to show first on a tile, most telling first.
    pub key_metrics: Vec<&'static str>,
    #[schema(value_type = DeviceKindDoc)]
    pub kind: DeviceKind,
    /// Every metric, in catalogue order.
    pub metrics: Vec<MetricInfo>,
}

/// Reply of `GET /api/v1/catalog`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Catalog {
    /// Failure codes of tickets that are not a device's (residents' reports, calls).
    pub generic_failure_codes: Vec<&'static str>,
    pub kinds: Vec<KindCatalog>,
}

/// Failure codes of tickets without a device kind of their own.
const GENERIC_FAILURE_CODES: &[&str] = &[
    "repaired",
    "replaced_part",
    "adjusted",
    "cleaned",
    "no_fault_found",
    "external_cause",
    "other",
];

/// The causes a crew may name when resolving a ticket of a device kind: what the station
/// counts repeat failures by. Each list ends with `other`.
fn kind_failure_codes(kind: DeviceKind) -> &'static [&'static str] {
    match kind {
        DeviceKind::Lift => &[
            "door_operator",
            "door_lock",
            "safety_circuit",
            "brake",
            "controller",
            "drive_inverter",
            "power_supply",
            "levelling",
            "ropes",
            "call_button",
            "alarm_device",
            "misuse",
            "other",
        ],
        DeviceKind::Smoke => &[
            "detector_fault",
            "false_alarm",
            "battery",
            "dust_contamination",
            "wiring",
            "tamper",
            "real_fire",
            "other",
        ],
        DeviceKind::Pump => &[
            "bearing",
            "seal_leak",
            "motor",
            "impeller",
            "valve",
            "pressure_sensor",
            "power_supply",
            "control_panel",
            "dry_run",
            "other",
        ],
        DeviceKind::Gate => &[
            "motor",
            "lock",
            "access_controller",
            "power_supply",
            "sensor",
            "vandalism",
            "other",
        ],
    }
}

/// The failure codes of a ticket of `kind` (a device kind, or anything else for the
/// generic list).
pub(crate) fn failure_codes(kind: &str) -> &'static [&'static str] {
    DeviceKind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .map(kind_failure_codes)
        .unwrap_or(GENERIC_FAILURE_CODES)
}

/// Metrics a tile shows first, per kind: what a manager asks about that kind before
/// anything else (is someone trapped, is the pump running, is there smoke).
fn key_metrics(kind: DeviceKind) -> &'static [&'static str] {
    match kind {
        DeviceKind::Lift => &[
            "trapped",
            "alarm_button",
            "mode",
            "moving",
            "floor",
            "door",
            "direction",
            "load_pct",
        ],
        DeviceKind::Pump => &[
            "running",
            "vibration_mm_s",
            "outlet_pressure_mpa",
            "inlet_pressure_mpa",
            "flow_m3h",
            "bearing_temp_c",
            "level_m",
            "fault_code",
        ],
        DeviceKind::Smoke => &[
            "alarm",
            "pre_alarm",
            "obscuration_pct_per_m",
            "fault",
            "tamper",
            "co_ppm",
            "temperature_c",
            "battery_v",
        ],
        DeviceKind::Gate => &[
            "state",
            "locked",
            "mode",
            "held_open_s",
            "on_battery",
            "motor_current_a",
        ],
    }
}

fn alarms(kind: DeviceKind) -> Vec<AlarmRule> {
    let rule = |metric, equals, severity| AlarmRule {
        equals,
        metric,
        severity,
    };
    match kind {
        DeviceKind::Smoke => vec![
            rule("alarm", json!(true), "alarm"),
            rule("pre_alarm", json!(true), "warning"),
            rule("fault", json!(true), "warning"),
            rule("tamper", json!(true), "warning"),
        ],
        DeviceKind::Lift => vec![
            rule("trapped", json!(true), "alarm"),
            rule("alarm_button", json!(true), "alarm"),
            rule("mode", json!("fire"), "warning"),
            rule("mode", json!("out_of_service"), "warning"),
        ],
        DeviceKind::Pump => vec![],
        DeviceKind::Gate => vec![
            rule("mode", json!("locked_down"), "warning"),
            rule("on_battery", json!(true), "warning"),
        ],
    }
}

/// The unit in a catalogue description: the text after its last comma
/// (`"smoke obscuration, %/m"` gives `%/m`), written as people read it.
pub(crate) fn unit(description: &str) -> Option<String> {
    let (_, u) = description.rsplit_once(", ")?;
    let u = match u {
        "degC" => "°C",
        "m3/h" => "m³/h",
        u if u.starts_with("% ") => "%",
        // A comma inside prose ("smoke rising, below alarm level") is no unit.
        u if u.contains(char::is_whitespace) || u.contains(')') => return None,
        u => u,
    };
    Some(u.to_string())
}

fn kind_catalog(kind: DeviceKind) -> KindCatalog {
    let metrics = catalog::metrics(kind)
        .iter()
        .map(|m| {
            let (ty, values) = match m.ty {
                MetricType::Bool => ("bool", vec![]),
                MetricType::Float { .. } => ("float", vec![]),
                MetricType::Int { .. } => ("int", vec![]),
                MetricType::Enum(v) => ("enum", v.to_vec()),
                MetricType::Text { .. } => ("text", vec![]),
            };
            MetricInfo {
                description: m.description,
                name: m.name,
                ty,
                unit: unit(m.description),
                values,
            }
        })
        .collect();
    KindCatalog {
        alarms: alarms(kind),
        events: catalog::events(kind).to_vec(),
        failure_codes: kind_failure_codes(kind).to_vec(),
        key_metrics: key_metrics(kind).to_vec(),
        kind,
        metrics,
    }
}

/// The metric catalogue with units, key metrics and alarm readings per kind (every role).
#[utoipa::path(get, path = "/api/v1/catalog", tag = "devices",
    responses((status = 200, description = "per kind: metrics, units, key metrics, alarms",
            body = Catalog),
        (status = 401)),
    security(("bearer" = [])))]
pub(crate) async fn get_catalog(_who: Principal) -> Json<Catalog> {
    Json(Catalog {
        generic_failure_codes: GENERIC_FAILURE_CODES.to_vec(),
        kinds: DeviceKind::ALL.into_iter().map(kind_catalog).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_come_from_the_descriptions() {
        let unit_of = |kind, name| {
            catalog::metric(kind, name)
                .and_then(|m| unit(m.description))
                .unwrap_or_default()
        };
        assert_eq!(unit_of(DeviceKind::Smoke, "obscuration_pct_per_m"), "%/m");
        assert_eq!(unit_of(DeviceKind::Smoke, "temperature_c"), "°C");
        assert_eq!(unit_of(DeviceKind::Pump, "vibration_mm_s"), "mm/s");
        assert_eq!(unit_of(DeviceKind::Pump, "flow_m3h"), "m³/h");
        assert_eq!(unit_of(DeviceKind::Lift, "load_pct"), "%");
        assert_eq!(unit_of(DeviceKind::Lift, "trapped"), "");
        assert_eq!(unit_of(DeviceKind::Smoke, "pre_alarm"), "");
    }

    #[test]
    fn failure_codes_per_kind_end_with_other() {
        assert!(failure_codes("lift").contains(&"door_operator"));
        assert!(failure_codes("smoke").contains(&"false_alarm"));
        assert_eq!(failure_codes("resident"), GENERIC_FAILURE_CODES);
        for kind in DeviceKind::ALL {
            assert_eq!(kind_failure_codes(kind).last(), Some(&"other"), "{kind}");
        }
    }

    #[test]
    fn key_metrics_and_alarms_name_catalogue_metrics() {
        for kind in DeviceKind::ALL {
            for m in key_metrics(kind) {
                assert!(catalog::metric(kind, m).is_some(), "{kind}: key {m}");
            }
            for a in alarms(kind) {
                let spec = catalog::metric(kind, a.metric);
                assert!(spec.is_some(), "{kind}: alarm {}", a.metric);
                if let (Some(MetricType::Enum(values)), Some(v)) =
                    (spec.map(|s| s.ty), a.equals.as_str())
                {
                    assert!(values.contains(&v), "{kind}: {} = {v}", a.metric);
                }
            }
        }
    }
}
