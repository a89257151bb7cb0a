//! Shared harness of the fuzz targets: a small estate with one device of each kind, a
//! gateway with devices behind it and a retired device, the topics a decode input can
//! address, and the invariants every decoded message must keep.
//!
//! The targets call the same public entry points the hub does (`contract::decode`,
//! `contract::parse_topic`, `RulePack::parse`, `EstateFile::parse`, `HubConfig::parse`);
//! nothing here re-implements a parser.

use std::sync::{Arc, OnceLock};
use steward_estate::catalog::{self, MetricType, VENDOR_PREFIX};
use steward_estate::{Directory, EstateFile, Registry};
use steward_ingest::contract::{parse_topic, Channel, Topic};
use steward_ingest::{Decoded, IngestConfig, RejectReason, Value};

/// 2026-03-02T08:16:40Z, just after the contract examples: the decoder's clock, fixed so a crash input replays exactly.
pub const NOW_MS: i64 = 1_772_439_400_000;

pub const ESTATE: &str = r#"
[[stations]]
id = "st-1"
name = "North station"

[[streets]]
id = "street-1"
name = "Riverside"
fallback_station = "st-1"

[[communities]]
id = "com-1"
name = "Elm"
street = "street-1"

[[compounds]]
id = "cmp-1"
name = "Elm Court"
community = "com-1"

[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"

[[gateways]]
id = "gw-1"
vendor = "acme"
compound = "cmp-1"
secret = "gw-1-secret"

[[devices]]
id = "smoke-1"
kind = "smoke"
vendor = "acme"
building = "b-1"
secret = "smoke-1-secret"

[[devices]]
id = "pump-1"
kind = "pump"
vendor = "acme"
building = "b-1"
secret = "pump-1-secret"

[[devices]]
id = "lift-1"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "lift-1-secret"

[[devices]]
id = "gate-1"
kind = "gate"
vendor = "acme"
building = "b-1"
secret = "gate-1-secret"

[[devices]]
id = "smoke-2"
kind = "smoke"
vendor = "acme"
building = "b-1"
gateway = "gw-1"

[[devices]]
id = "pump-2"
kind = "pump"
vendor = "acme"
building = "b-1"
gateway = "gw-1"

[[devices]]
id = "lift-9"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "lift-9-secret"
"#;

/// Topics a decode input picks with its first byte (modulo the length); selector 255
/// instead takes the topic from the input itself, up to the first NUL byte.
pub const TOPICS: &[&str] = &[
    "devices/smoke-1/telemetry",
    "devices/pump-1/telemetry",
    "devices/lift-1/telemetry",
    "devices/gate-1/telemetry",
    "devices/smoke-1/events",
    "devices/pump-1/events",
    "devices/lift-1/events",
    "devices/gate-1/events",
    "devices/lift-1/status",
    "gateways/gw-1/telemetry",
    "devices/lift-9/telemetry",
    "devices/nobody/telemetry",
    "gateways/nobody/telemetry",
    "devices/smoke-2/telemetry",
];

/// The decoder's limits under fuzzing: a payload limit below libFuzzer's input size so
/// `payload_too_large` is reached, and few entries so `too_many_entries` is.
pub fn config() -> &'static IngestConfig {
    static CFG: OnceLock<IngestConfig> = OnceLock::new();
    CFG.get_or_init(|| IngestConfig {
        max_payload_bytes: 2048,
        max_entries: 8,
        ..IngestConfig::default()
    })
}

pub fn directory() -> &'static Arc<Directory> {
    static DIR: OnceLock<Arc<Directory>> = OnceLock::new();
    DIR.get_or_init(|| {
        let file = EstateFile::parse(ESTATE).expect("the fuzz estate is valid");
        let reg = Registry::open_in_memory().expect("in-memory registry");
        reg.apply(&file).expect("the fuzz estate applies");
        reg.retire_device("lift-9").expect("lift-9 exists");
        reg.directory()
    })
}

/// Split a decode input into (topic, payload).
pub fn split_input(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&sel, rest) = data.split_first()?;
    if sel == 255 {
        let nul = rest.iter().position(|b| *b == 0)?;
        return Some((&rest[..nul], &rest[nul + 1..]));
    }
    Some((TOPICS[usize::from(sel) % TOPICS.len()].as_bytes(), rest))
}

/// Longest reject detail the decoder may produce: details are stored in QuestDB and
/// shown to vendors, so they must not echo a payload.
pub const MAX_DETAIL: usize = 512;

/// Everything `decode` promises about its output, whatever the input.
pub fn check_decoded(topic: &[u8], payload: &[u8], out: &Decoded) {
    let dir = directory();
    let cfg = config();
    let ts_ok = |ts: i64| {
        ts >= NOW_MS - cfg.max_past_age.as_millis() as i64
            && ts <= NOW_MS + cfg.max_future_skew.as_millis() as i64
    };
    for r in &out.rejects {
        assert!(
            !r.detail.trim().is_empty(),
            "reject {:?} without detail",
            r.reason
        );
        assert!(
            r.detail.len() <= MAX_DETAIL,
            "reject detail of {} bytes: {:.200}",
            r.detail.len(),
            r.detail
        );
        // A publish the broker's guard diverted names its sender, unless the sender is
        // not shaped like a device id (a crew's token login).
        let diverted = topic.starts_with(b"steward/");
        match (&r.device_id, r.reason) {
            (None, RejectReason::BadTopic) => {}
            (None, _) if diverted => {}
            (None, reason) => panic!("{reason} reject names no device"),
            (Some(id), _) => assert!(
                steward_estate::validate_id(id).is_ok(),
                "reject names device `{:.100}` that is no valid id",
                id
            ),
        }
    }
    for r in &out.readings {
        let dev = dir
            .device(&r.device_id)
            .unwrap_or_else(|| panic!("reading of unknown device {}", r.device_id));
        assert!(!dev.retired, "reading of retired device {}", r.device_id);
        assert_eq!(dev.kind, r.kind);
        assert_eq!(&*dev.compound, &*r.compound);
        assert!(ts_ok(r.ts_ms), "reading ts {} out of range", r.ts_ms);
        assert!(!r.values.is_empty() || r.extras.is_some(), "empty reading");
        for (i, (name, v)) in r.values.iter().enumerate() {
            assert!(
                r.values[..i].iter().all(|(n, _)| n != name),
                "metric {name} twice"
            );
            let spec = catalog::metric(r.kind, name)
                .unwrap_or_else(|| panic!("metric {name} not in the {} catalogue", r.kind));
            match (spec.ty, v) {
                (MetricType::Bool, Value::Bool(_)) => {}
                (MetricType::Float { min, max }, Value::Float(x)) => {
                    assert!(x.is_finite() && *x >= min && *x <= max, "{name} = {x}")
                }
                (MetricType::Int { min, max }, Value::Int(x)) => {
                    assert!(*x >= min && *x <= max, "{name} = {x}")
                }
                (MetricType::Enum(values), Value::Sym(s)) => {
                    assert!(values.contains(s), "{name} = {s}")
                }
                (MetricType::Text { max_len }, Value::Text(s)) => {
                    assert!(s.len() <= max_len, "{name} has {} bytes", s.len())
                }
                (ty, v) => panic!("metric {name} of type {ty:?} holds {v:?}"),
            }
        }
        if let Some(extras) = &r.extras {
            let json: serde_json::Value = serde_json::from_str(extras).expect("extras are JSON");
            let obj = json.as_object().expect("extras are a JSON object");
            assert!(!obj.is_empty());
            for (k, v) in obj {
                assert!(k.starts_with(VENDOR_PREFIX) && k.len() <= 62, "extra `{k}`");
                assert!(!v.is_object() && !v.is_array(), "extra `{k}` = {v}");
            }
        }
    }
    for e in &out.events {
        let dev = dir.device(&e.device_id).expect("event of a known device");
        assert!(!dev.retired);
        assert!(ts_ok(e.ts_ms), "event ts {} out of range", e.ts_ms);
        assert!(
            catalog::events(e.kind).contains(&e.event.as_str())
                || (e.event.starts_with(VENDOR_PREFIX) && e.event.len() <= 62),
            "event `{:.100}`",
            e.event
        );
        let data: serde_json::Value = serde_json::from_str(&e.data).expect("event data is JSON");
        assert!(data.is_object(), "event data {}", e.data);
    }
    for s in &out.statuses {
        assert!(dir.device(&s.device_id).is_some());
        assert!(ts_ok(s.ts_ms), "status ts {} out of range", s.ts_ms);
    }
    // One message is one answer: either something was accepted or a reason was given,
    // except for topics ingest ignores by design.
    let ignored = matches!(
        parse_topic(topic),
        Ok(Topic::Device {
            channel: Channel::Commands,
            ..
        } | Topic::StationAlerts { .. })
    );
    let answered = out.readings.len() + out.events.len() + out.statuses.len() + out.rejects.len();
    if ignored {
        assert_eq!(answered, 0, "ignored topic produced output");
    } else {
        assert!(answered > 0, "message neither accepted nor rejected");
    }
    // Every entry of an accepted telemetry array is answered once.
    if out.rejects.len() + out.readings.len() > 1 {
        if let Ok(serde_json::Value::Array(items)) = serde_json::from_slice(payload) {
            assert_eq!(
                out.readings.len() + out.rejects.len(),
                items.len(),
                "entries answered"
            );
        }
    }
}

/// Messages of every kind from the fuzz estate, for running a fuzzed rule pack: alarming
/// values, every catalogue event, last wills, then calm values a minute later so
/// conditions both raise and clear.
pub fn sample_traffic() -> &'static [Decoded] {
    static TRAFFIC: OnceLock<Vec<Decoded>> = OnceLock::new();
    TRAFFIC.get_or_init(|| {
        let t = NOW_MS - 600_000;
        let mut msgs: Vec<(String, String)> = Vec::new();
        let hot = [
            ("smoke-1", r#""alarm":true,"pre_alarm":true,"fault":true,"tamper":true,"dirty":true,"co_ppm":500,"obscuration_pct_per_m":12,"temperature_c":70,"battery_v":2.1"#),
            ("pump-1", r#""running":true,"power_kw":0.5,"vibration_mm_s":6,"level_m":3,"outlet_pressure_mpa":0.05,"current_imbalance_pct":25,"bearing_temp_c":95,"starts":10"#),
            ("lift-1", r#""trapped":true,"moving":true,"door":"open","alarm_button":true,"occupied":true,"in_landing_zone":false,"speed_m_s":4,"floor":3,"direction":"up","mode":"normal""#),
            ("gate-1", r#""state":"open","mode":"normal","locked":false,"on_battery":true,"held_open_s":900,"motor_current_a":9"#),
        ];
        let calm = [
            ("smoke-1", r#""alarm":false,"pre_alarm":false,"fault":false,"tamper":false,"dirty":false,"co_ppm":0,"battery_v":3.0"#),
            ("pump-1", r#""running":false,"power_kw":0,"vibration_mm_s":0.5,"level_m":0.5,"outlet_pressure_mpa":0.6,"bearing_temp_c":30"#),
            ("lift-1", r#""trapped":false,"moving":false,"door":"closed","alarm_button":false,"occupied":false,"in_landing_zone":true,"speed_m_s":0,"floor":0,"direction":"idle","mode":"normal""#),
            ("gate-1", r#""state":"closed","mode":"free_passage","locked":true,"on_battery":false,"held_open_s":0"#),
        ];
        for (i, (id, m)) in hot.iter().enumerate() {
            msgs.push((
                format!("devices/{id}/telemetry"),
                format!(r#"{{"ts":{},"metrics":{{{m}}}}}"#, t + i as i64),
            ));
        }
        for (id, kind) in [
            ("smoke-1", steward_estate::DeviceKind::Smoke),
            ("pump-1", steward_estate::DeviceKind::Pump),
            ("lift-1", steward_estate::DeviceKind::Lift),
            ("gate-1", steward_estate::DeviceKind::Gate),
        ] {
            for (i, e) in catalog::events(kind).iter().enumerate() {
                msgs.push((
                    format!("devices/{id}/events"),
                    format!(r#"{{"ts":{},"event":"{e}"}}"#, t + 100 + i as i64),
                ));
            }
            msgs.push((
                format!("devices/{id}/status"),
                format!(r#"{{"status":"offline","ts":{}}}"#, t + 200),
            ));
        }
        msgs.push((
            "gateways/gw-1/telemetry".into(),
            format!(
                r#"[{{"device_id":"smoke-2","ts":{t},"metrics":{{"alarm":true}}}},{{"device_id":"pump-2","ts":{t},"metrics":{{"running":true,"level_m":3}}}}]"#
            ),
        ));
        for (i, (id, m)) in calm.iter().enumerate() {
            msgs.push((
                format!("devices/{id}/telemetry"),
                format!(r#"{{"ts":{},"metrics":{{{m}}}}}"#, t + 60_000 + i as i64),
            ));
        }
        msgs.iter()
            .map(|(topic, payload)| {
                let d = steward_ingest::contract::decode(
                    topic.as_bytes(),
                    payload.as_bytes(),
                    directory(),
                    NOW_MS,
                    config(),
                );
                assert!(d.rejects.is_empty(), "sample {topic} {payload}: {:?}", d.rejects);
                d
            })
            .collect()
    })
}
