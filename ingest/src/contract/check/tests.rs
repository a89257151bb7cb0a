use super::*;
use crate::contract::tests::{dir, reject_cases, NOW};

fn run(topic: &str, payload: &str) -> Checked {
    check(
        topic.as_bytes(),
        payload.as_bytes(),
        &dir(),
        NOW,
        &IngestConfig::default(),
    )
}

fn paths(c: &Checked) -> Vec<(&str, &'static str)> {
    c.findings
        .iter()
        .map(|f| (f.path.as_str(), f.reason.as_str()))
        .collect()
}

#[test]
fn every_problem_of_an_entry_is_listed_with_its_path() {
    let c = run(
        "devices/smoke-1/telemetry",
        &format!(
            r#"{{"ts":{},"seq":-3,"colour":"red","metrics":{{"alarm":"yes","co_ppm":-5,"obscuration_pct_m":1,"battery_v":3.0}}}}"#,
            NOW / 1000
        ),
    );
    assert_eq!(
        paths(&c),
        vec![
            ("$.colour", "bad_shape"),
            ("$.ts", "bad_timestamp"),
            ("$.seq", "wrong_type"),
            ("$.metrics.alarm", "wrong_type"),
            ("$.metrics.co_ppm", "out_of_range"),
            ("$.metrics.obscuration_pct_m", "unknown_metric"),
        ],
        "{:#?}",
        c.findings
    );
    assert_eq!(c.decoded.rejects.len(), 1, "the hub rejects the entry once");
    let ts = &c.findings[1].detail;
    assert!(ts.contains("days old"), "{ts}");
    assert!(ts.contains("30 days before"), "{ts}");
    assert!(ts.contains("looks like seconds"), "{ts}");
    assert!(
        c.findings[5]
            .detail
            .contains("did you mean `obscuration_pct_per_m`?"),
        "{}",
        c.findings[5].detail
    );
}

#[test]
fn batch_entries_are_addressed_by_index_and_good_ones_still_accepted() {
    let c = run(
        "devices/pump-1/telemetry",
        &format!(
            r#"[{{"ts":{NOW},"metrics":{{"running":"yes"}}}},{{"ts":{NOW},"metrics":{{"running":true}}}},{{"ts":{},"metrics":{{"vibration_mm_s":140,"x_a b":1}}}}]"#,
            NOW * 1000
        ),
    );
    assert_eq!(
        paths(&c),
        vec![
            ("$[0].metrics.running", "wrong_type"),
            ("$[2].ts", "bad_timestamp"),
            ("$[2].metrics.vibration_mm_s", "out_of_range"),
            ("$[2].metrics[\"x_a b\"]", "unknown_metric"),
        ]
    );
    assert!(c.findings[1].detail.contains("looks like microseconds"));
    assert_eq!(c.decoded.readings.len(), 1);
}

#[test]
fn gateway_and_event_members() {
    let c = run(
        "gateways/gw-1/telemetry",
        &format!(
            r#"[{{"device_id":"smoke-1","ts":{NOW},"metrics":{{"alarm":true}}}},{{"device_id":"pump-9","ts":{NOW},"metrics":{{"runing":true}}}},7]"#
        ),
    );
    assert_eq!(
        paths(&c),
        vec![
            ("$[0].device_id", "not_behind_gateway"),
            ("$[1].metrics.runing", "unknown_metric"),
            ("$[2]", "bad_shape"),
        ]
    );
    assert!(c.findings[1].detail.contains("did you mean `running`?"));
    let c = run(
        "devices/lift-1/events",
        r#"{"ts":"yesterday","event":"traped","data":3,"x":1}"#,
    );
    assert_eq!(
        paths(&c),
        vec![
            ("$.x", "bad_shape"),
            ("$.ts", "bad_timestamp"),
            ("$.event", "unknown_event"),
            ("$.data", "bad_shape"),
        ]
    );
    assert!(c.findings[2].detail.contains("did you mean `trapped`?"));
}

/// The walk and the decoder agree on every reject case of the decoder's own tests: a
/// finding exactly when a reject, with the decoder's reason among the findings.
#[test]
fn findings_agree_with_the_decoder() {
    for (topic, payload, want) in reject_cases() {
        let c = run(topic, &payload);
        assert!(!c.findings.is_empty(), "{topic} {payload}");
        assert!(
            c.findings.iter().any(|f| f.reason.as_str() == want),
            "{topic} {}: {:?}",
            &payload[..payload.len().min(120)],
            c.findings
        );
    }
    let c = run(
        "devices/smoke-1/telemetry",
        &format!(r#"{{"ts":{NOW},"metrics":{{"alarm":true}}}}"#),
    );
    assert!(c.findings.is_empty() && c.decoded.readings.len() == 1);
    let c = run("devices/gate-1/status", "sleepy");
    assert_eq!(paths(&c), vec![("$", "bad_status")]);
}

#[test]
fn hostile_inputs_never_panic() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_metric = format!(
        r#"{{"ts":{NOW},"metrics":{{"x_a":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let twice = format!(r#"{{"ts":{NOW},"metrics":{{"co_ppm":1,"co_ppm":2}}}}"#);
    for payload in [
        deep.as_str(),
        &deep_metric,
        &twice,
        "",
        "null",
        "[]",
        "[1]",
        "{\"ts\":1e400}",
        "\u{0}",
    ] {
        for topic in [
            "devices/smoke-1/telemetry",
            "devices/smoke-1/events",
            "gateways/gw-1/telemetry",
        ] {
            let c = run(topic, payload);
            assert!(!c.findings.is_empty(), "{topic} {payload:.40}");
        }
    }
    let c = run("devices/smoke-1/telemetry", &twice);
    assert_eq!(paths(&c), vec![("$.metrics.co_ppm", "bad_shape")]);
}
