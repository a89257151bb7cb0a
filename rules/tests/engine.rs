//! Rule files, condition forms, hot reload and backtest.

mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use steward_device_sim::{DeviceModel, Fault};
use steward_ingest::contract::decode;
use steward_ingest::IngestConfig;
use steward_rules::*;
use steward_tickets::Priority;

fn err(text: &str) -> String {
    match RulePack::parse(text, "packs/default.toml") {
        Ok(_) => panic!("accepted: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn rule_file_errors_name_file_rule_and_key() {
    let base = |cond: &str| {
        format!(
            "[[rule]]\nid = \"lift-trapped\"\nkind = \"lift\"\npriority = \"P1\"\ntitle = \"t\"\ncondition = {cond}\n"
        )
    };
    assert_eq!(
        err(&base(r#"{ flag = "trapped", for = "ten minutes" }"#)),
        r#"packs/default.toml: rule lift-trapped: condition.for: invalid duration "ten minutes""#
    );
    assert_eq!(
        err(&base(r#"{ any = [{ flag = "trapped" }, { flag = "traped" }] }"#)),
        "packs/default.toml: rule lift-trapped: condition.any[1].flag: `traped` is not a lift metric"
    );
    assert!(err(&base(r#"{ metric = "door", equals = "ajar" }"#))
        .starts_with("packs/default.toml: rule lift-trapped: condition.equals: `ajar` is not a value of door"));
    assert!(err(&base(r#"{ flag = "floor" }"#))
        .contains("condition.flag: must name a true/false metric"));
    assert!(
        err(&base(r#"{ metric = "speed_m_s", op = "=>", raise = 2 }"#))
            .contains("condition.op: `=>` is not")
    );
    assert!(err(&base(
        r#"{ metric = "speed_m_s", op = ">", raise = 2, clear = 3 }"#
    ))
    .contains("condition.clear: clear level 3 must be at or below"));
    assert!(err(&base(r#"{ event = "exploded" }"#))
        .contains("condition.event: `exploded` is not a lift event"));
    assert!(err(&base(r#"{ flag = "trapped", colour = "red" }"#))
        .contains("condition.colour: unknown key"));
    assert!(err(&base(
        r#"{ compound = "smoke", where = { flag = "alarm", for = "1m" } }"#
    ))
    .contains("condition.where.for: not allowed"));
    assert!(err(&base("{}")).contains("rule lift-trapped: condition: no condition form"));
    let mut dup = base(r#"{ flag = "trapped" }"#);
    dup.push_str(&dup.clone());
    assert!(err(&dup).ends_with("rule lift-trapped: id: duplicate rule id"));
    assert!(
        err(&base(r#"{ flag = "trapped" }"#).replace("P1", "urgent"))
            .contains("rule lift-trapped: priority: `urgent` is not P1, P2 or P3")
    );
    assert!(
        err(&base(r#"{ flag = "trapped" }"#).replace("\"lift\"", "\"escalator\""))
            .contains("rule lift-trapped: kind: unknown device kind `escalator`")
    );
    assert!(
        err(&base(r#"{ flag = "trapped" }"#).replace("title", "titel"))
            .contains("rule lift-trapped: titel: unknown key")
    );
    assert!(err("[[rule]\nid=").starts_with("packs/default.toml: "));
    // Files of a directory: the error names the file it is in.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("a.toml"), base(r#"{ flag = "trapped" }"#)).unwrap();
    std::fs::write(d.path().join("b.toml"), base(r#"{ flag = "trapped" }"#)).unwrap();
    let e = RulePack::load_dir(d.path()).unwrap_err().to_string();
    assert!(
        e.contains("b.toml: rule lift-trapped: id: duplicate rule id"),
        "{e}"
    );
    std::fs::remove_file(d.path().join("b.toml")).unwrap();
    assert_eq!(RulePack::load_dir(d.path()).unwrap().rules().len(), 1);
}

fn pack(text: &str) -> RulePack {
    RulePack::parse(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn telemetry(sim: &mut Sim, id: &str, ts: i64, metrics: serde_json::Value) {
    let m = json!({"ts": ts, "metrics": metrics});
    sim.feed(
        &format!("devices/{id}/telemetry"),
        m.to_string().as_bytes(),
        ts,
    );
    assert!(sim.rejects.is_empty(), "{:?}", sim.rejects);
}

fn raised(sim: &Sim, rule: &str) -> usize {
    sim.raises().iter().filter(|r| r.rule_id == rule).count()
}

fn cleared(sim: &Sim, rule: &str) -> usize {
    sim.actions
        .iter()
        .filter(|a| matches!(a, Action::Clear(c) if c.rule_id == rule))
        .count()
}

#[test]
fn threshold_hysteresis_raises_once_and_clears_below_the_clear_level() {
    let mut sim = Sim::new(
        pack(
            r#"
[[rule]]
id = "vib"
kind = "pump"
priority = "P2"
title = "vibration"
condition = { metric = "vibration_mm_s", op = ">", raise = 4.5, clear = 4.0 }
"#,
        ),
        &[],
    );
    for (i, v) in [1.0, 4.6, 4.2, 4.7, 4.1, 3.9, 4.4, 4.6].iter().enumerate() {
        telemetry(
            &mut sim,
            "pump-1",
            T0 + i as i64 * MIN,
            json!({ "vibration_mm_s": v }),
        );
    }
    assert_eq!(
        raised(&sim, "vib"),
        2,
        "4.6 raises, 4.2..4.1 holds, 3.9 clears, 4.6 raises again"
    );
    assert_eq!(cleared(&sim, "vib"), 1);
}

#[test]
fn rate_of_change_and_count_of_rises() {
    let mut sim = Sim::new(
        pack(
            r#"
[[rule]]
id = "filling-fast"
kind = "pump"
priority = "P2"
title = "sump filling fast"
condition = { rate = "level_m", op = ">", raise = 0.05, clear = 0.02, window = "5m" }

[[rule]]
id = "short-cycling"
kind = "pump"
priority = "P3"
title = "pump short-cycling"
condition = { rises = { flag = "running" }, count = 3, within = "1h" }
"#,
        ),
        &[],
    );
    // 0.03 m/min: below the raise level.
    for i in 0..6 {
        telemetry(
            &mut sim,
            "pump-1",
            T0 + i * MIN,
            json!({ "level_m": 0.5 + 0.03 * i as f64 }),
        );
    }
    assert_eq!(raised(&sim, "filling-fast"), 0);
    // Then 0.1 m/min for five minutes.
    for i in 1..6 {
        telemetry(
            &mut sim,
            "pump-1",
            T0 + (5 + i) * MIN,
            json!({ "level_m": 0.65 + 0.1 * i as f64 }),
        );
    }
    assert_eq!(raised(&sim, "filling-fast"), 1);
    // Flat again: the window forgets the rise.
    for i in 1..8 {
        telemetry(
            &mut sim,
            "pump-1",
            T0 + (10 + i) * MIN,
            json!({ "level_m": 1.15 }),
        );
    }
    assert_eq!(cleared(&sim, "filling-fast"), 1);

    for (i, running) in [true, false, true, false].iter().enumerate() {
        telemetry(
            &mut sim,
            "pump-9",
            T0 + i as i64 * 10 * MIN,
            json!({ "running": running }),
        );
    }
    assert_eq!(raised(&sim, "short-cycling"), 0, "two starts");
    telemetry(
        &mut sim,
        "pump-9",
        T0 + 40 * MIN,
        json!({ "running": true }),
    );
    assert_eq!(
        raised(&sim, "short-cycling"),
        1,
        "three starts within an hour"
    );
    // An hour later the first starts leave the window (timers move on tick).
    let a = sim.engine.tick(T0 + 75 * MIN, &sim.dir.clone());
    assert!(a
        .iter()
        .any(|a| matches!(a, Action::Clear(c) if c.rule_id == "short-cycling")));
}

/// A gate that is not in free passage while a smoke detector of its compound alarms.
const GATE_FIRE: &str = r#"
[[rule]]
id = "gate-fire"
kind = "gate"
priority = "P1"
title = "fire but gate locked"
condition = { all = [
    { metric = "mode", not_equals = "free_passage" },
    { compound = "smoke", where = { any = [{ flag = "alarm" }, { metric = "co_ppm", op = ">=", raise = 400 }] } },
] }
"#;

#[test]
fn compound_scope_looks_at_other_devices_of_the_same_compound() {
    let mut sim = Sim::new(pack(GATE_FIRE), &[]);
    telemetry(&mut sim, "gate-1", T0, json!({ "mode": "normal" }));
    telemetry(&mut sim, "gate-9", T0, json!({ "mode": "normal" }));
    telemetry(&mut sim, "smoke-2", T0 + 1_000, json!({ "alarm": false }));
    assert_eq!(raised(&sim, "gate-fire"), 0);
    // An alarm in cmp-2 (smoke-9) concerns gate-9 only.
    telemetry(&mut sim, "smoke-9", T0 + 2_000, json!({ "alarm": true }));
    let r = sim.raises();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].device_id, "gate-9");
    // gate-1 already in free passage when smoke-2 alarms: nothing; locked again: raised.
    telemetry(
        &mut sim,
        "gate-1",
        T0 + 3_000,
        json!({ "mode": "free_passage" }),
    );
    telemetry(&mut sim, "smoke-2", T0 + 4_000, json!({ "alarm": true }));
    assert_eq!(raised(&sim, "gate-fire"), 1);
    telemetry(
        &mut sim,
        "gate-1",
        T0 + 5_000,
        json!({ "mode": "locked_down" }),
    );
    assert_eq!(raised(&sim, "gate-fire"), 2);
}

#[test]
fn hot_reload_keeps_the_state_of_rules_that_still_exist() {
    let v1 = r#"
[[rule]]
id = "co-slow"
kind = "smoke"
priority = "P1"
title = "co"
condition = { metric = "co_ppm", op = ">=", raise = 150, for = "10m" }

[[rule]]
id = "hot"
kind = "smoke"
priority = "P2"
title = "hot"
condition = { metric = "temperature_c", op = ">", raise = 50 }
"#;
    let mut sim = Sim::new(pack(v1), &[]);
    for i in 0..6 {
        telemetry(
            &mut sim,
            "smoke-1",
            T0 + i * MIN,
            json!({ "co_ppm": 200.0, "temperature_c": 60.0 }),
        );
    }
    assert_eq!(raised(&sim, "hot"), 1);
    // v2: co-slow unchanged, hot's condition changed, one rule added.
    let v2 = v1.replace("raise = 50", "raise = 55").replace(
        "[[rule]]\nid = \"hot\"",
        "[[rule]]\nid = \"tamper\"\nkind = \"smoke\"\npriority = \"P2\"\ntitle = \"t\"\ncondition = { flag = \"tamper\" }\n\n[[rule]]\nid = \"hot\"",
    );
    sim.engine.set_pack(Arc::new(pack(&v2)));
    for i in 6..11 {
        telemetry(
            &mut sim,
            "smoke-1",
            T0 + i * MIN,
            json!({ "co_ppm": 200.0, "temperature_c": 60.0 }),
        );
    }
    let co = sim
        .raised("smoke-1", "co-slow")
        .expect("duration kept across the reload");
    assert_eq!(co.ts_ms, T0 + 10 * MIN);
    assert_eq!(
        raised(&sim, "hot"),
        1,
        "changed rule keeps its active flag: no second raise"
    );
    // A removed rule simply stops.
    sim.engine.set_pack(Arc::new(pack(
        &v2.replace("id = \"co-slow\"", "id = \"co-renamed\""),
    )));
    assert!(!sim.engine.is_active("smoke-1", "co-slow"));
}

#[test]
fn reload_with_a_broken_file_keeps_the_running_pack() {
    let d = tempfile::tempdir().unwrap();
    let f = d.path().join("rules.toml");
    std::fs::write(&f, "[[rule]]\nid = \"x\"\nkind = \"lift\"\npriority = \"P9\"\ntitle = \"t\"\ncondition = { flag = \"trapped\" }\n").unwrap();
    let e = RulePack::load(&f).unwrap_err().to_string();
    assert!(
        e.contains("rules.toml: rule x: priority: `P9` is not P1, P2 or P3"),
        "{e}"
    );
}

fn sim_decoded(id: &str, fault: Option<(Fault, i64)>, until: i64) -> Vec<steward_ingest::Decoded> {
    let dir = registry().directory();
    let d = dir.device(id).unwrap();
    let mut m = DeviceModel::new(id, d.kind, 7);
    let mut out = Vec::new();
    let mut t = T0;
    while t < until {
        if let Some((f, at)) = fault {
            if t >= at && m.fault().is_none() {
                m.set_fault(Some(f));
            }
        }
        for msg in m.tick(t) {
            out.push(decode(
                msg.topic.as_bytes(),
                &msg.payload,
                &dir,
                t,
                &IngestConfig::default(),
            ));
        }
        t += i64::from(d.report_interval_s) * 1000;
    }
    out
}

#[test]
fn backtest_reports_the_tickets_a_pack_would_have_raised() {
    let dir = registry().directory();
    let mut input = sim_decoded(
        "gate-1",
        Some((Fault::GateHeldOpen, T0 + HOUR)),
        T0 + 2 * HOUR,
    );
    input.extend(sim_decoded("lift-1", None, T0 + 2 * HOUR));
    input.sort_by_key(|d| {
        d.readings
            .iter()
            .map(|r| r.ts_ms)
            .chain(d.events.iter().map(|e| e.ts_ms))
            .min()
            .unwrap_or(0)
    });
    let tickets = backtest_decoded(&RulePack::default_pack(), &dir, input);
    let ids: Vec<(&str, &str)> = tickets
        .iter()
        .map(|t| (t.device_id.as_str(), t.rule_id.as_str()))
        .collect();
    assert_eq!(ids, vec![("gate-1", "gate-held-open")], "{tickets:?}");
    let t = &tickets[0];
    assert_eq!(t.priority, Priority::P3);
    assert_eq!(t.station, "st-north");
    // The leaf may already have been open up to 90 s when it was propped.
    assert!(t.opened_ms > T0 + HOUR + 3 * MIN && t.opened_ms < T0 + HOUR + 8 * MIN);
    assert!(t.detail.contains("held_open_s="), "{}", t.detail);
}

#[test]
fn questdb_rows_become_decoded_messages() {
    let dir = registry().directory();
    let res: steward_storage::questdb::QueryResult = serde_json::from_value(json!({
        "columns": [
            {"name": "ts", "type": "TIMESTAMP"}, {"name": "device_id", "type": "SYMBOL"},
            {"name": "compound_id", "type": "SYMBOL"}, {"name": "seq", "type": "LONG"},
            {"name": "alarm", "type": "BOOLEAN"}, {"name": "co_ppm", "type": "DOUBLE"},
            {"name": "battery_v", "type": "DOUBLE"}
        ],
        "dataset": [
            ["2025-03-03T00:00:00.000000Z", "smoke-1", "cmp-1", 1, false, 1.5, null],
            ["2025-03-03T00:01:00.000000Z", "smoke-1", "cmp-1", 2, true, 2.0, 2.9]
        ],
        "count": 2
    }))
    .unwrap();
    let rows = telemetry_rows(steward_estate::DeviceKind::Smoke, &res, &dir).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, T0);
    let r = &rows[1].1.readings[0];
    assert_eq!(r.ts_ms, T0 + MIN);
    assert_eq!(r.get("alarm"), Some(&steward_ingest::Value::Bool(true)));
    assert_eq!(r.get("battery_v"), Some(&steward_ingest::Value::Float(2.9)));
    assert_eq!(
        rows[0].1.readings[0].get("battery_v"),
        None,
        "null is absent, not zero"
    );
    let tickets = backtest_decoded(
        &RulePack::default_pack(),
        &dir,
        rows.into_iter().map(|(_, d)| d),
    );
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].rule_id, "smoke-fire-alarm");

    let ev: steward_storage::questdb::QueryResult = serde_json::from_value(json!({
        "columns": [{"name": "ts", "type": "TIMESTAMP"}, {"name": "device_id", "type": "SYMBOL"},
                    {"name": "kind", "type": "SYMBOL"}, {"name": "event", "type": "SYMBOL"},
                    {"name": "data", "type": "VARCHAR"}],
        "dataset": [["2025-03-03T00:00:01.000000Z", "gate-1", "gate", "forced_open", "{}"]]
    }))
    .unwrap();
    let e = event_rows(&ev, &dir).unwrap();
    assert_eq!(e[0].1.events[0].event, "forced_open");
    assert_eq!(e[0].0, T0 + 1_000);
}

#[test]
fn evaluation_is_deterministic() {
    let run = || {
        let mut sim = Sim::default_pack(ALL_DEVICES);
        sim.run_for(HOUR);
        sim.fault("smoke-1", Some(Fault::SmokeAlarm));
        sim.fault("pump-1", Some(Fault::PumpHighVibration));
        sim.run_for(HOUR);
        serde_json::to_string(&sim.actions).unwrap()
    };
    assert_eq!(run(), run());
}

/// A device the registry moves to another compound leaves the old compound's scope and
/// joins the new one, and the state the engine saves follows each change.
#[test]
fn a_device_moved_to_another_compound_counts_only_there() {
    let dir = registry().directory();
    let mut engine = Engine::new(Arc::new(pack(GATE_FIRE)));
    let feed = |engine: &mut Engine,
                id: &str,
                ts: i64,
                metrics: serde_json::Value,
                compound: Option<&str>| {
        let payload = json!({"ts": ts, "metrics": metrics}).to_string();
        let topic = format!("devices/{id}/telemetry");
        let mut d = decode(
            topic.as_bytes(),
            payload.as_bytes(),
            &dir,
            ts,
            &IngestConfig::default(),
        );
        assert_eq!(d.readings.len(), 1, "{:?}", d.rejects);
        if let Some(c) = compound {
            d.readings[0].compound = Arc::from(c);
        }
        engine
            .on_decoded(&d, &dir)
            .into_iter()
            .filter_map(|a| match a {
                Action::Raise(r) => Some(r.device_id),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert!(feed(&mut engine, "gate-1", T0, json!({"mode": "normal"}), None).is_empty());
    assert!(feed(&mut engine, "gate-9", T0, json!({"mode": "normal"}), None).is_empty());
    assert!(feed(
        &mut engine,
        "smoke-2",
        T0 + 1_000,
        json!({"alarm": false}),
        None
    )
    .is_empty());
    let saved: Vec<String> = engine.take_dirty().into_iter().map(|(id, _)| id).collect();
    assert_eq!(saved, ["gate-1", "gate-9", "smoke-2"]);
    assert!(engine.take_dirty().is_empty(), "nothing changed since");

    // smoke-2 now belongs to cmp-2: its alarm concerns gate-9, not gate-1.
    let raised = feed(
        &mut engine,
        "smoke-2",
        T0 + 2_000,
        json!({"alarm": true}),
        Some("cmp-2"),
    );
    assert_eq!(raised, ["gate-9"]);
    let saved: Vec<String> = engine.take_dirty().into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        saved,
        ["gate-9", "smoke-2"],
        "evaluated again, so saved again"
    );
    // And gate-1, evaluated again in cmp-1, sees no alarm there.
    assert!(feed(
        &mut engine,
        "gate-1",
        T0 + 3_000,
        json!({"mode": "locked_down"}),
        None
    )
    .is_empty());
}
