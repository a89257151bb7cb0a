//! The metric and event catalogue of device contract v1.
//!
//! One table drives the decoder, the QuestDB schema, the JSON Schema files in `docs/schemas`
//! and the simulator, so the contract cannot drift between them.

use crate::DeviceKind;

/// Value type of a metric; numeric ranges are inclusive and in the unit named by the metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MetricType {
    Bool,
    Float { min: f64, max: f64 },
    Int { min: i64, max: i64 },
    Enum(&'static [&'static str]),
    Text { max_len: usize },
}

impl MetricType {
    /// QuestDB column type used for this metric.
    pub fn questdb_type(&self) -> &'static str {
        match self {
            MetricType::Bool => "BOOLEAN",
            MetricType::Float { .. } => "DOUBLE",
            MetricType::Int { .. } => "LONG",
            MetricType::Enum(_) => "SYMBOL",
            MetricType::Text { .. } => "VARCHAR",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct MetricSpec {
    pub name: &'static str,
    pub ty: MetricType,
    pub description: &'static str,
}

const fn b(name: &'static str, description: &'static str) -> MetricSpec {
    MetricSpec {
        name,
        ty: MetricType::Bool,
        description,
    }
}
const fn f(name: &'static str, min: f64, max: f64, description: &'static str) -> MetricSpec {
    MetricSpec {
        name,
        ty: MetricType::Float { min, max },
        description,
    }
}
const fn i(name: &'static str, min: i64, max: i64, description: &'static str) -> MetricSpec {
    MetricSpec {
        name,
        ty: MetricType::Int { min, max },
        description,
    }
}
const fn e(
    name: &'static str,
    values: &'static [&'static str],
    description: &'static str,
) -> MetricSpec {
    MetricSpec {
        name,
        ty: MetricType::Enum(values),
        description,
    }
}
const fn t(name: &'static str, max_len: usize, description: &'static str) -> MetricSpec {
    MetricSpec {
        name,
        ty: MetricType::Text { max_len },
        description,
    }
}

const COUNTER_MAX: i64 = 1_000_000_000_000;

pub const SMOKE_METRICS: &[MetricSpec] = &[
    b("alarm", "fire alarm condition"),
    b("pre_alarm", "pre-alarm (smoke rising, below alarm level)"),
    b("fault", "detector reports an internal fault"),
    b("tamper", "detector removed from its base or opened"),
    b("dirty", "chamber contamination compensation exhausted"),
    f(
        "obscuration_pct_per_m",
        0.0,
        100.0,
        "smoke obscuration, %/m",
    ),
    f("co_ppm", 0.0, 10_000.0, "carbon monoxide, ppm"),
    f("temperature_c", -40.0, 150.0, "air temperature, degC"),
    f("battery_v", 0.0, 15.0, "battery voltage, V"),
];

pub const PUMP_METRICS: &[MetricSpec] = &[
    b("running", "pump motor running"),
    f("inlet_pressure_mpa", -0.1, 10.0, "suction pressure, MPa"),
    f("outlet_pressure_mpa", -0.1, 10.0, "discharge pressure, MPa"),
    f("flow_m3h", 0.0, 10_000.0, "flow, m3/h"),
    f("power_kw", 0.0, 5_000.0, "electrical power, kW"),
    f("current_a", 0.0, 5_000.0, "motor current, A"),
    f(
        "current_imbalance_pct",
        0.0,
        100.0,
        "phase current imbalance, %",
    ),
    f("vibration_mm_s", 0.0, 100.0, "vibration velocity RMS, mm/s"),
    f("bearing_temp_c", -40.0, 250.0, "bearing temperature, degC"),
    f("level_m", -10.0, 100.0, "sump or tank level, m"),
    i("starts", 0, COUNTER_MAX, "motor starts counter"),
    f("run_hours", 0.0, 1.0e7, "running hours counter, h"),
    t("fault_code", 32, "vendor fault code"),
];

pub const LIFT_METRICS: &[MetricSpec] = &[
    i("floor", -20, 300, "current floor"),
    e("direction", &["up", "down", "idle"], "travel direction"),
    e(
        "door",
        &["open", "closed", "opening", "closing"],
        "car door state",
    ),
    b("moving", "car is moving"),
    b("occupied", "car is occupied"),
    b("trapped", "controller reports a trapped passenger"),
    b("alarm_button", "alarm button pressed in the car"),
    b("in_landing_zone", "car is within a landing zone"),
    f("speed_m_s", 0.0, 20.0, "car speed, m/s"),
    f("load_pct", 0.0, 200.0, "car load, % of rated load"),
    f(
        "levelling_error_mm",
        -1_000.0,
        1_000.0,
        "levelling error, mm",
    ),
    e(
        "mode",
        &["normal", "inspection", "fire", "out_of_service"],
        "operating mode",
    ),
    t("fault_code", 32, "vendor fault code"),
    i("door_cycles", 0, COUNTER_MAX, "door cycles counter"),
    f("run_hours", 0.0, 1.0e7, "running hours counter, h"),
];

pub const GATE_METRICS: &[MetricSpec] = &[
    e(
        "state",
        &["open", "closed", "opening", "closing"],
        "leaf state",
    ),
    b("locked", "lock engaged"),
    b("on_battery", "running on backup battery"),
    e(
        "mode",
        &["normal", "free_passage", "locked_down"],
        "operating mode",
    ),
    f("held_open_s", 0.0, 604_800.0, "time held open, s"),
    f("motor_current_a", 0.0, 100.0, "motor current, A"),
    i("cycles", 0, COUNTER_MAX, "open/close cycles counter"),
];

pub const SMOKE_EVENTS: &[&str] = &["alarm", "alarm_cleared", "fault", "test", "tamper"];
pub const PUMP_EVENTS: &[&str] = &["started", "stopped", "fault", "dry_run"];
pub const LIFT_EVENTS: &[&str] = &[
    "alarm_button",
    "trapped",
    "released",
    "door_fault",
    "overspeed",
    "overtravel",
    "door_open_while_moving",
    "safety_chain_break",
    "position_lost",
];
pub const GATE_EVENTS: &[&str] = &[
    "access_granted",
    "access_denied",
    "forced_open",
    "obstruction",
    "motor_overrun",
];

/// Prefix of vendor-specific metrics and events: kept as extras instead of being rejected.
pub const VENDOR_PREFIX: &str = "x_";

pub fn metrics(kind: DeviceKind) -> &'static [MetricSpec] {
    match kind {
        DeviceKind::Smoke => SMOKE_METRICS,
        DeviceKind::Pump => PUMP_METRICS,
        DeviceKind::Lift => LIFT_METRICS,
        DeviceKind::Gate => GATE_METRICS,
    }
}

pub fn events(kind: DeviceKind) -> &'static [&'static str] {
    match kind {
        DeviceKind::Smoke => SMOKE_EVENTS,
        DeviceKind::Pump => PUMP_EVENTS,
        DeviceKind::Lift => LIFT_EVENTS,
        DeviceKind::Gate => GATE_EVENTS,
    }
}

pub fn metric(kind: DeviceKind, name: &str) -> Option<&'static MetricSpec> {
    metrics(kind).iter().find(|m| m.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_unique_and_not_reserved() {
        for k in DeviceKind::ALL {
            let mut seen = HashSet::new();
            for m in metrics(k) {
                assert!(seen.insert(m.name), "{k}: duplicate {}", m.name);
                assert!(!m.name.starts_with(VENDOR_PREFIX));
                assert!(![
                    "ts",
                    "device_id",
                    "compound_id",
                    "seq",
                    "extras",
                    "received_at"
                ]
                .contains(&m.name));
            }
        }
    }
}
