use super::*;
use steward_estate::{EstateFile, Registry};

pub(super) const NOW: i64 = 1_790_000_000_000;

pub(super) fn dir() -> std::sync::Arc<Directory> {
    let reg = Registry::open_in_memory().unwrap();
    let file = EstateFile::parse(
        r#"
[[stations]]
id = "st-1"
name = "North"
[[streets]]
id = "s-1"
name = "Riverside"
fallback_station = "st-1"
[[communities]]
id = "c-1"
name = "Elm"
street = "s-1"
[[compounds]]
id = "cmp-1"
name = "Elm Court"
community = "c-1"
[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"
[[gateways]]
id = "gw-1"
vendor = "acme"
compound = "cmp-1"
secret = "gateway-secret"
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
id = "pump-9"
kind = "pump"
vendor = "acme"
building = "b-1"
gateway = "gw-1"
"#,
    )
    .unwrap();
    reg.apply(&file).unwrap();
    reg.directory()
}

fn run(topic: &str, payload: &str) -> Decoded {
    decode(
        topic.as_bytes(),
        payload.as_bytes(),
        &dir(),
        NOW,
        &IngestConfig::default(),
    )
}

fn reason(d: &Decoded) -> &'static str {
    assert_eq!(d.rejects.len(), 1, "{d:?}");
    d.rejects[0].reason.as_str()
}

#[test]
fn smoke_telemetry_decodes_typed_values() {
    let d = run(
        "devices/smoke-1/telemetry",
        &format!(
            r#"{{"ts":{NOW},"seq":7,"metrics":{{"alarm":false,"co_ppm":3.5,"battery_v":3,"x_fw":"1.2"}}}}"#
        ),
    );
    assert!(d.rejects.is_empty(), "{d:?}");
    let r = &d.readings[0];
    assert_eq!(&*r.device_id, "smoke-1");
    assert_eq!(&*r.compound, "cmp-1");
    assert_eq!(r.seq, Some(7));
    assert_eq!(r.get("alarm"), Some(&Value::Bool(false)));
    assert_eq!(r.get("co_ppm"), Some(&Value::Float(3.5)));
    assert_eq!(r.get("battery_v"), Some(&Value::Float(3.0)));
    assert_eq!(r.extras.as_deref(), Some(r#"{"x_fw":"1.2"}"#));
}

#[test]
fn pump_lift_gate_decode() {
    let d = run(
        "devices/pump-1/telemetry",
        &format!(
            r#"{{"ts":{NOW},"metrics":{{"running":true,"outlet_pressure_mpa":0.45,"starts":12,"fault_code":"E0"}}}}"#
        ),
    );
    assert!(d.rejects.is_empty(), "{d:?}");
    assert_eq!(d.readings[0].get("starts"), Some(&Value::Int(12)));
    let d = run(
        "devices/lift-1/telemetry",
        r#"{"ts":"2026-09-21T12:00:00Z","metrics":{"floor":3.0,"direction":"up","door":"closed","moving":true}}"#,
    );
    let d2 = decode(
        b"devices/lift-1/telemetry",
        br#"{"ts":"2026-09-21T12:00:00Z","metrics":{"floor":3.0,"direction":"up"}}"#,
        &dir(),
        1_790_000_000_000,
        &IngestConfig::default(),
    );
    assert!(d2.rejects.is_empty(), "{d2:?}");
    let _ = d;
    assert_eq!(d2.readings[0].get("floor"), Some(&Value::Int(3)));
    assert_eq!(d2.readings[0].get("direction"), Some(&Value::Sym("up")));
    let d = run(
        "devices/gate-1/telemetry",
        &format!(
            r#"[{{"ts":{NOW},"metrics":{{"state":"open","locked":false}}}},{{"ts":{},"metrics":{{"state":"closed"}}}}]"#,
            NOW + 1000
        ),
    );
    assert!(d.rejects.is_empty(), "{d:?}");
    assert_eq!(d.readings.len(), 2);
}

/// One message per reject reason that needs only a topic and a payload: (topic, payload,
/// the reason the decoder gives). The checker's tests run them too.
pub(super) fn reject_cases() -> Vec<(&'static str, String, &'static str)> {
    let big = format!(
        r#"{{"ts":{NOW},"metrics":{{"x_pad":"{}"}}}}"#,
        "a".repeat(70_000)
    );
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "devices/smoke-1/bogus",
            format!(r#"{{"ts":{NOW}}}"#),
            "bad_topic",
        ),
        ("foo/bar", "{}".into(), "bad_topic"),
        ("devices/a+b/telemetry", "{}".into(), "bad_topic"),
        (
            "devices/ghost/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"alarm":true}}}}"#),
            "unknown_device",
        ),
        ("devices/smoke-1/telemetry", big, "payload_too_large"),
        (
            "devices/smoke-1/telemetry",
            "{not json".into(),
            "malformed_json",
        ),
        (
            "devices/smoke-1/telemetry",
            r#"{"ts":NaN,"metrics":{}}"#.into(),
            "malformed_json",
        ),
        ("devices/smoke-1/telemetry", "42".into(), "bad_shape"),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{}}}}"#),
            "bad_shape",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"alarm":true}},"extra":1}}"#),
            "bad_shape",
        ),
        (
            "devices/smoke-1/telemetry",
            r#"{"metrics":{"alarm":true}}"#.into(),
            "bad_shape",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{},"metrics":{{"alarm":true}}}}"#, NOW + 3_600_000),
            "bad_timestamp",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(
                r#"{{"ts":{},"metrics":{{"alarm":true}}}}"#,
                NOW - 90 * 86_400_000
            ),
            "bad_timestamp",
        ),
        (
            "devices/smoke-1/telemetry",
            r#"{"ts":"yesterday","metrics":{"alarm":true}}"#.into(),
            "bad_timestamp",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"smell":1}}}}"#),
            "unknown_metric",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"alarm":"yes"}}}}"#),
            "wrong_type",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"co_ppm":"3"}}}}"#),
            "wrong_type",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"seq":-1,"metrics":{{"alarm":true}}}}"#),
            "wrong_type",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"co_ppm":-5}}}}"#),
            "out_of_range",
        ),
        (
            "devices/smoke-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"battery_v":1e308}}}}"#),
            "out_of_range",
        ),
        (
            "devices/lift-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"direction":"sideways"}}}}"#),
            "out_of_range",
        ),
        (
            "devices/lift-1/telemetry",
            format!(r#"{{"ts":{NOW},"metrics":{{"floor":2.5}}}}"#),
            "wrong_type",
        ),
        (
            "devices/gate-1/events",
            format!(r#"{{"ts":{NOW},"event":"exploded"}}"#),
            "unknown_event",
        ),
        ("devices/gate-1/status", "sleepy".into(), "bad_status"),
        (
            "gateways/gw-1/telemetry",
            format!(r#"[{{"device_id":"smoke-1","ts":{NOW},"metrics":{{"alarm":true}}}}]"#),
            "not_behind_gateway",
        ),
        ("gateways/gw-9/telemetry", "[]".into(), "unknown_device"),
    ];
    cases
}

#[test]
fn every_reject_reason_has_a_case() {
    for (topic, payload, want) in reject_cases() {
        let d = run(topic, &payload);
        assert!(d.readings.is_empty(), "{topic} {payload}: {d:?}");
        assert_eq!(
            reason(&d),
            want,
            "{topic} {}",
            &payload[..payload.len().min(120)]
        );
        assert!(!d.rejects[0].detail.is_empty());
    }
    let d = decode(
        b"devices/smoke-1/telemetry",
        b"\xff\xfe",
        &dir(),
        NOW,
        &IngestConfig::default(),
    );
    assert_eq!(reason(&d), "not_utf8");
    let many = format!(
        "[{}]",
        vec![format!(r#"{{"ts":{NOW},"metrics":{{"alarm":true}}}}"#); 1001].join(",")
    );
    assert_eq!(
        reason(&run("devices/smoke-1/telemetry", &many)),
        "too_many_entries"
    );
}

#[test]
fn detail_names_what_is_wrong() {
    let d = run(
        "devices/smoke-1/telemetry",
        &format!(r#"{{"ts":{NOW},"metrics":{{"co_ppm":-5}}}}"#),
    );
    assert!(d.rejects[0].detail.contains("co_ppm"), "{:?}", d.rejects);
    let d = run(
        "devices/smoke-1/telemetry",
        &format!(r#"{{"ts":{NOW},"metrics":{{"smell":1}}}}"#),
    );
    assert!(d.rejects[0].detail.contains("smell"));
}

#[test]
fn batch_entries_are_judged_one_by_one() {
    let d = run(
        "devices/pump-1/telemetry",
        &format!(
            r#"[{{"ts":{NOW},"metrics":{{"running":true}}}},{{"ts":{},"metrics":{{"running":"maybe"}}}},{{"ts":{},"metrics":{{"running":false}}}}]"#,
            NOW + 1,
            NOW + 2
        ),
    );
    assert_eq!(d.readings.len(), 2);
    assert_eq!(reason(&d), "wrong_type");
    assert!(d.rejects[0].detail.starts_with("entry 1:"));
}

#[test]
fn gateway_batch() {
    let d = run(
        "gateways/gw-1/telemetry",
        &format!(
            r#"[{{"device_id":"pump-9","ts":{NOW},"metrics":{{"running":true,"level_m":1.2}}}},{{"device_id":"ghost","ts":{NOW},"metrics":{{"running":true}}}}]"#
        ),
    );
    assert_eq!(d.readings.len(), 1);
    assert_eq!(&*d.readings[0].device_id, "pump-9");
    assert_eq!(reason(&d), "unknown_device");
}

#[test]
fn events_and_status() {
    let d = run(
        "devices/gate-1/events",
        &format!(r#"{{"ts":{NOW},"event":"access_denied","data":{{"card":"1234"}}}}"#),
    );
    assert!(d.rejects.is_empty(), "{d:?}");
    assert_eq!(d.events[0].event, "access_denied");
    assert_eq!(d.events[0].data, r#"{"card":"1234"}"#);
    let d = run("devices/gate-1/status", "offline");
    assert_eq!(d.statuses[0].status, Status::Offline);
    assert_eq!(d.statuses[0].ts_ms, NOW);
    let d = run(
        "devices/gate-1/status",
        &format!(r#"{{"status":"online","ts":{}}}"#, NOW - 5),
    );
    assert_eq!(d.statuses[0].status, Status::Online);
    assert_eq!(d.statuses[0].ts_ms, NOW - 5);
    assert!(run("devices/gate-1/commands", "{}").rejects.is_empty());
    let d = run("stations/st-1/alerts", "{}");
    assert!(
        d.rejects.is_empty() && d.readings.is_empty(),
        "hub downlink is not telemetry"
    );
}

#[test]
fn hostile_inputs_never_panic() {
    // Deep nesting is valid JSON; it is skipped without recursion and refused for its shape.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let d = run("devices/smoke-1/telemetry", &deep);
    assert_eq!(reason(&d), "bad_shape");
    let deep = format!(
        r#"{{"ts":{NOW},"metrics":{{"x_a":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert_eq!(
        reason(&run("devices/smoke-1/telemetry", &deep)),
        "wrong_type"
    );
    let d = run(
        "devices/smoke-1/telemetry",
        &format!(r#"{{"ts":{NOW},"metrics":{{"co_ppm":1,"co_ppm":2}}}}"#),
    );
    assert_eq!(reason(&d), "bad_shape", "a metric given twice");
    let d = run(
        "devices/smoke-1/telemetry",
        &format!(r#"{{"ts":{NOW},"device_id":"smoke-1","metrics":{{"co_ppm":1}}}}"#),
    );
    assert_eq!(reason(&d), "bad_shape", "device_id only on gateway topics");
    for payload in ["", " ", "null", "[]", "[1]", "{\"ts\":1e400}", "\u{0}"] {
        let d = run("devices/smoke-1/telemetry", payload);
        assert_eq!(d.rejects.len(), 1, "{payload:?}");
    }
    let d = decode(
        b"devices/\xff/telemetry",
        b"{}",
        &dir(),
        NOW,
        &IngestConfig::default(),
    );
    assert_eq!(reason(&d), "bad_topic");
}

#[test]
fn gateway_entry_with_an_invalid_device_id_is_blamed_on_the_gateway() {
    // Found by fuzz target `decode`: the entry's `device_id` went unchecked into the
    // reject's device id (a QuestDB symbol) and its detail, whatever its length.
    let long = "x".repeat(5_000);
    for bad in [";pump-9", "pump 9", "", long.as_str()] {
        let d = run(
            "gateways/gw-1/telemetry",
            &format!(r#"[{{"device_id":"{bad}","ts":{NOW},"metrics":{{"running":true}}}}]"#),
        );
        assert_eq!(reason(&d), "bad_shape", "{bad:.20}");
        assert_eq!(d.rejects[0].device_id.as_deref(), Some("gw-1"));
        assert!(
            d.rejects[0].detail.contains("`device_id`"),
            "{}",
            d.rejects[0].detail
        );
        assert!(
            d.rejects[0].detail.len() < 300,
            "{}",
            d.rejects[0].detail.len()
        );
    }
}

#[test]
fn long_non_ascii_topic_id_is_a_bad_topic() {
    // Found by fuzz target `topic`: validating this id sliced inside a character.
    let topic = format!("devices/{}ļ{}/telemetry", "a".repeat(31), "b".repeat(40));
    let d = run(&topic, "{}");
    assert_eq!(reason(&d), "bad_topic");
    assert!(d.rejects[0].detail.contains("longer than 64 bytes"));
}

#[test]
fn topics_diverted_by_the_broker_guard_name_the_sender_when_it_is_an_id() {
    let payload = format!(r#"{{"ts":{NOW},"metrics":{{"alarm":true}}}}"#);
    let d = run(
        "steward/unauthorized/smoke-2/devices/smoke-1/telemetry",
        &payload,
    );
    assert_eq!(reason(&d), "not_authorized");
    assert_eq!(d.rejects[0].device_id.as_deref(), Some("smoke-2"));
    assert!(d.readings.is_empty());
    // The owner's own rules come first: an unknown or malformed target says so.
    let d = run(
        "steward/unauthorized/smoke-2/devices/ghost/telemetry",
        &payload,
    );
    assert_eq!(reason(&d), "unknown_device");
    let d = run("steward/unauthorized/smoke-2/Devices/x/telemetry", &payload);
    assert_eq!(reason(&d), "bad_topic");
    assert_eq!(d.rejects[0].device_id.as_deref(), Some("smoke-2"));
    let d = run(
        "steward/unauthorized/smoke-2/stations/st-1/alerts",
        &payload,
    );
    assert_eq!(reason(&d), "not_authorized");
    let d = run("steward/shed/smoke-2", &payload);
    assert_eq!(reason(&d), "rate_limited");
    assert_eq!(d.rejects[0].device_id.as_deref(), Some("smoke-2"));
    // A crew's token login, or anything not shaped like an id, is never a device id
    // (found by the `decode` fuzz target), and details stay short.
    for topic in [
        "steward/unauthorized/token:crew-north/devices/smoke-1/telemetry".to_string(),
        format!(
            "steward/unauthorized/dev\u{1}{}/devices/smoke-1/telemetry",
            "\u{ae}".repeat(300)
        ),
        "steward/shed/a b".to_string(),
    ] {
        let d = run(&topic, &payload);
        assert_eq!(d.rejects.len(), 1, "{topic}");
        assert_eq!(d.rejects[0].device_id, None, "{topic}");
        assert!(!d.rejects[0].detail.is_empty() && d.rejects[0].detail.len() <= 512);
    }
}
