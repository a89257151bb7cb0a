//! 60 simulated days (2026-03-01 .. 2026-04-30, UTC) of one compound with a lift, two
//! smoke detectors, a pump and a building, driven by a manual clock: the exact rounds
//! generated, the items telemetry closed, the corrective tickets opened, the report, and
//! that a restart generates nothing twice.

use std::sync::Arc;
use steward_estate::clock::{Clock, ManualClock};
use steward_estate::model::Value;
use steward_estate::{DeviceKind, EstateFile, Registry};
use steward_rounds::{Obs, RoundStore, Rounds, ScheduleSet, Verdict};
use steward_tickets::{
    SlaPolicy, SqliteTicketStore, TicketDesk, TicketFilter, TicketMetrics, TicketState, TicketStore,
};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
/// 2026-03-01T00:00:00Z, a Sunday.
const T0: i64 = 1_772_323_200_000;

const ESTATE: &str = r#"
[[stations]]
id = "st-1"
name = "North"
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
station = "st-1"
[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"
[[devices]]
id = "lift-1"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "device-secret-0123"
[[devices]]
id = "smoke-1"
kind = "smoke"
vendor = "acme"
building = "b-1"
secret = "device-secret-0123"
[[devices]]
id = "smoke-2"
kind = "smoke"
vendor = "acme"
building = "b-1"
secret = "device-secret-0123"
[[devices]]
id = "pump-1"
kind = "pump"
vendor = "acme"
building = "b-1"
secret = "device-secret-0123"
"#;

const SCHEDULES: &str = r#"
[[schedule]]
id = "lift-half-monthly"
name = "Lift maintenance, half-monthly"
kinds = ["lift"]
cadence = "every 15 days"
start = "2026-03-01"
by = "station"
complete_within = "7d"
[[schedule.item]]
id = "brakes"
text = "Check the brake and its wear"

[[schedule]]
id = "lift-quarterly"
name = "Lift maintenance, quarterly"
kinds = ["lift"]
cadence = "quarterly"
by = "station"
complete_within = "30d"
[[schedule.item]]
id = "ropes"
text = "Check the ropes"

[[schedule]]
id = "smoke-monthly"
name = "Smoke detector function test"
kinds = ["smoke"]
cadence = "monthly"
by = "station"
complete_within = "20d"
[[schedule.item]]
id = "function-test"
text = "Test button pressed, detector alarmed"
proof = { event = "test" }
[[schedule.item]]
id = "battery"
text = "Battery above its low level"
proof = { metric = "battery_v", min = 2.7 }

[[schedule]]
id = "pump-weekly"
name = "Fire pump weekly test run"
kinds = ["pump"]
cadence = "weekly on monday"
by = "station"
complete_within = "3d"
[[schedule.item]]
id = "test-run"
text = "Pump started and ran with outlet pressure in range"
proof = { metric = "outlet_pressure_mpa", min = 0.2, max = 1.6, when = "running" }

[[schedule]]
id = "patrol-weekly"
name = "Fire facility patrol"
per = "building"
compounds = ["cmp-1"]
cadence = "weekly on monday"
by = "captain"
complete_within = "2d"
[[schedule.item]]
id = "exits"
text = "Exits and escape routes clear"
"#;

struct World {
    clock: Arc<ManualClock>,
    tickets: SqliteTicketStore,
    rounds: Rounds,
}

fn world(dir: &std::path::Path, now_ms: i64) -> World {
    let clock = Arc::new(ManualClock::new(now_ms));
    let tickets = SqliteTicketStore::open(&dir.join("tickets.db")).expect("ticket db");
    let desk = TicketDesk::new(
        Arc::new(tickets.clone()),
        SlaPolicy::default(),
        clock.clone(),
        TicketMetrics::default(),
    );
    let registry = Registry::open_in_memory().expect("registry");
    registry
        .apply(&EstateFile::parse(ESTATE).expect("estate parses"))
        .expect("estate applies");
    let store = RoundStore::open(&dir.join("rounds.db")).expect("rounds db");
    let set = ScheduleSet::parse(SCHEDULES).expect("schedules valid");
    let rounds = Rounds::new(store, desk, registry, set).expect("rounds");
    World {
        clock,
        tickets,
        rounds,
    }
}

fn event(device: &str, kind: DeviceKind, ts_ms: i64, name: &str) -> Obs {
    Obs {
        device_id: device.into(),
        kind,
        ts_ms,
        event: Some(name.into()),
        values: Vec::new(),
    }
}

fn reading(device: &str, kind: DeviceKind, ts_ms: i64, values: Vec<(&'static str, Value)>) -> Obs {
    Obs {
        device_id: device.into(),
        kind,
        ts_ms,
        event: None,
        values,
    }
}

/// What the fleet sends in the hour starting at `t` (device-sim's self-tests, as
/// configured there: detectors test themselves on the 3rd of the month, the pump runs its
/// test on Tuesdays at 10:00; smoke-2 misses its March test and its battery sags in April,
/// and the pump's test run of 2026-04-14 has no pressure).
fn telemetry(t: i64) -> Vec<Obs> {
    let day = (t - T0) / DAY;
    let hour = (t - T0) % DAY / HOUR;
    let date = chrono::DateTime::from_timestamp_millis(t).expect("time");
    let mut out = Vec::new();
    if hour == 6 {
        out.push(reading(
            "smoke-1",
            DeviceKind::Smoke,
            t,
            vec![("battery_v", Value::Float(2.95))],
        ));
        let v2 = if day >= 31 { 2.6 } else { 2.9 };
        out.push(reading(
            "smoke-2",
            DeviceKind::Smoke,
            t,
            vec![("battery_v", Value::Float(v2))],
        ));
    }
    use chrono::Datelike;
    if date.day() == 3 && hour == 9 {
        out.push(event("smoke-1", DeviceKind::Smoke, t + 60_000, "test"));
        if date.month() == 4 {
            out.push(event("smoke-2", DeviceKind::Smoke, t + 90_000, "test"));
        }
    }
    // An ordinary sump cycle every 8 hours, running false/true without a test.
    if hour % 8 == 2 {
        out.push(reading(
            "pump-1",
            DeviceKind::Pump,
            t,
            vec![
                ("running", Value::Bool(false)),
                ("outlet_pressure_mpa", Value::Float(0.12)),
            ],
        ));
    }
    if date.weekday() == chrono::Weekday::Tue && hour == 10 {
        let p = if date.month() == 4 && date.day() == 14 {
            0.05
        } else {
            0.31
        };
        out.push(reading(
            "pump-1",
            DeviceKind::Pump,
            t + 60_000,
            vec![
                ("running", Value::Bool(true)),
                ("outlet_pressure_mpa", Value::Float(p)),
            ],
        ));
    }
    out
}

#[test]
fn sixty_days_of_rounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = world(dir.path(), T0);
    let mut created = Vec::new();
    let mut t = T0;
    while t < T0 + 60 * DAY {
        w.clock.set(t);
        created.extend(w.rounds.generate(t).expect("generate"));
        w.rounds.observe(&telemetry(t)).expect("observe");
        // The captain walks the building on the day the patrol starts, except in April.
        if t % DAY == 14 * HOUR {
            for r in w.rounds.store().list(Some("open"), t, 1000).expect("list") {
                // The lift firm comes once, two weeks late, for the first round only.
                let late_lift = r.schedule_id == "lift-half-monthly"
                    && r.period == "2026-03-01"
                    && t >= T0 + 21 * DAY;
                if late_lift {
                    w.rounds
                        .tick_item(r.id, "brakes", Verdict::Done, "crew-li", "brake pads 6 mm")
                        .expect("tick");
                }
                if r.schedule_id == "patrol-weekly" && r.period.as_str() < "2026-04-01" {
                    w.rounds
                        .tick_item(r.id, "exits", Verdict::Done, "captain-wang", "all clear")
                        .expect("tick");
                }
            }
        }
        t += HOUR;
    }
    let mut got: Vec<String> = created
        .iter()
        .map(|r| format!("{} {} {}", r.schedule_id, r.asset, r.period))
        .collect();
    got.sort();
    let mut want: Vec<String> = [
        "lift-half-monthly lift-1 2026-03-01",
        "lift-half-monthly lift-1 2026-03-16",
        "lift-half-monthly lift-1 2026-03-31",
        "lift-half-monthly lift-1 2026-04-15",
        // 2026-Q1's deadline (Jan 31) had passed when the clock started: not started late.
        "lift-quarterly lift-1 2026-Q2",
        "smoke-monthly smoke-1 2026-03",
        "smoke-monthly smoke-1 2026-04",
        "smoke-monthly smoke-2 2026-03",
        "smoke-monthly smoke-2 2026-04",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // Weeks starting on Mondays from 2026-03-02 to 2026-04-27; the one of 2026-02-23 was
    // past its deadline (Feb 26) at the start.
    for monday in [
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
        "2026-04-06",
        "2026-04-13",
        "2026-04-20",
        "2026-04-27",
    ] {
        want.push(format!("patrol-weekly building:b-1 {monday}"));
        want.push(format!("pump-weekly pump-1 {monday}"));
    }
    want.sort();
    assert_eq!(got, want);

    // Items telemetry decided: (schedule, asset, period, item, state).
    let mut by_telemetry = Vec::new();
    for r in &created {
        let d = w.rounds.store().detail(r.id).expect("detail");
        for i in d.items {
            if i.actor.as_deref() == Some("telemetry") {
                by_telemetry.push(format!(
                    "{} {} {} {} {}",
                    r.schedule_id, r.asset, r.period, i.item_id, i.state
                ));
                assert!(i.evidence.as_deref().is_some_and(|e| e.contains(&*r.asset)));
            }
        }
    }
    by_telemetry.sort();
    let mut want_tel: Vec<String> = [
        "smoke-monthly smoke-1 2026-03 battery done",
        "smoke-monthly smoke-1 2026-03 function-test done",
        "smoke-monthly smoke-1 2026-04 battery done",
        "smoke-monthly smoke-1 2026-04 function-test done",
        "smoke-monthly smoke-2 2026-03 battery done",
        "smoke-monthly smoke-2 2026-04 battery failed",
        "smoke-monthly smoke-2 2026-04 function-test done",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for monday in [
        "2026-03-02",
        "2026-03-09",
        "2026-03-16",
        "2026-03-23",
        "2026-03-30",
        "2026-04-06",
        "2026-04-13",
        "2026-04-20",
        "2026-04-27",
    ] {
        let state = if monday == "2026-04-13" {
            "failed"
        } else {
            "done"
        };
        want_tel.push(format!("pump-weekly pump-1 {monday} test-run {state}"));
    }
    want_tel.sort();
    assert_eq!(by_telemetry, want_tel);

    // Corrective tickets: one per failed item, incidents linked to their round.
    let all = w
        .tickets
        .list(&TicketFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .expect("tickets");
    let mut corrective: Vec<String> = all
        .iter()
        .filter(|t| t.ticket_kind == "incident")
        .map(|t| {
            format!(
                "{} {} {}",
                t.device_id,
                t.priority,
                t.rule_id.starts_with("round-failed:")
            )
        })
        .collect();
    corrective.sort();
    assert_eq!(corrective, vec!["pump-1 P2 true", "smoke-2 P2 true"]);
    let work_orders = all.iter().filter(|t| t.ticket_kind == "work_order").count();
    assert_eq!(work_orders, want.len());

    // Statuses at the end: smoke-2's March round never got its test (overdue, its work
    // order breached its resolve SLA); April patrols were never walked.
    let now = w.clock.now_ms();
    w.rounds.desk().sla_tick(now).expect("sla tick");
    let status = |sched: &str, asset: &str, period: &str| {
        let r = created
            .iter()
            .find(|r| r.schedule_id == sched && r.asset == asset && r.period == period)
            .expect("round exists");
        w.rounds.store().round(r.id).expect("round").status
    };
    assert_eq!(status("smoke-monthly", "smoke-2", "2026-03"), "open");
    assert_eq!(status("smoke-monthly", "smoke-2", "2026-04"), "failed");
    assert_eq!(status("smoke-monthly", "smoke-1", "2026-03"), "done");
    assert_eq!(status("pump-weekly", "pump-1", "2026-04-13"), "failed");
    assert_eq!(
        status("patrol-weekly", "building:b-1", "2026-03-02"),
        "done"
    );
    let smoke2_march = created
        .iter()
        .find(|r| r.asset == "smoke-2" && r.period == "2026-03")
        .and_then(|r| r.ticket_id)
        .expect("work order");
    let wo = w.tickets.ticket(smoke2_march).expect("ticket");
    assert!(wo.resolve_breached, "{wo:?}");
    assert_eq!(wo.state, TicketState::Open);
    // The rating counts it: March's work orders that missed their deadline lower R.
    let rating = w.tickets.rating("st-1", "2026-03").expect("rating");
    let r = rating.resolved_within_sla.expect("resolve verdicts");
    assert!(r < 1.0 && r > 0.5, "{rating:?}");
    let done_wo = created
        .iter()
        .find(|r| r.asset == "smoke-1" && r.period == "2026-03")
        .and_then(|r| r.ticket_id)
        .expect("work order");
    assert_eq!(
        w.tickets.ticket(done_wo).expect("ticket").state,
        TicketState::Resolved
    );

    // March report of the station: 1 + 2 + 5 + 5 rounds whose window opened in March
    // (lift 3, smoke 2, pump 5, patrol 5).
    let rep = w.rounds.compliance("st-1", "2026-03", now).expect("report");
    assert_eq!(rep.total.rounds, 15);
    // smoke-2's March test and two lift rounds never done; the first lift round late.
    assert_eq!(
        (rep.total.on_time, rep.total.late, rep.total.overdue),
        (11, 1, 3),
        "{rep:#?}"
    );
    assert_eq!(rep.total.compliance, Some(11.0 / 15.0));
    let csv = rep.to_csv();
    assert!(csv.starts_with("scope,month,schedule_id,"), "{csv}");
    assert!(csv.contains("st-1,2026-03,total,15,"), "{csv}");

    // A restart (new stores over the same files) at the same time generates nothing.
    let before = all.len();
    drop(w);
    let w2 = world(dir.path(), now);
    assert!(w2.rounds.generate(now).expect("generate").is_empty());
    let after = w2
        .tickets
        .list(&TicketFilter {
            limit: Some(1000),
            ..Default::default()
        })
        .expect("tickets")
        .len();
    assert_eq!(after, before);
}

#[test]
fn schedule_errors_name_the_key_and_the_reason() {
    let bad = r#"
[[schedule]]
id = "smoke-monthly"
name = ""
kinds = ["smoke"]
cadence = "fortnightly"
by = "station"
complete_within = "20d"
[[schedule.item]]
id = "t"
text = "test"
proof = { event = "exploded" }
[[schedule.item]]
id = "b"
text = "battery"
proof = { metric = "battery_volts", min = 2.7 }
"#;
    let e = ScheduleSet::parse(bad).unwrap_err().join("\n");
    assert!(
        e.contains("schedule[0] (id `smoke-monthly`).name: must not be empty"),
        "{e}"
    );
    assert!(
        e.contains(".cadence: `fortnightly` is not a cadence"),
        "{e}"
    );
    assert!(
        e.contains(".item[0] (id `t`).proof.event: `exploded` is not an event of smoke"),
        "{e}"
    );
    assert!(
        e.contains(".item[1] (id `b`).proof.metric: `battery_volts` is not a metric"),
        "{e}"
    );
    let e = ScheduleSet::parse("[[schedule]]\nid = \"x\"\nname = \"x\"\ncadence = \"daily\"\nby = \"janitor\"\ncomplete_within = \"1d\"\nitem = []\n")
        .unwrap_err()
        .join("\n");
    assert!(e.contains("janitor"), "{e}");
}

#[test]
fn a_round_stored_without_its_work_order_gets_one_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = world(dir.path(), T0 + DAY);
    let first = w.rounds.generate(T0 + DAY).expect("generate");
    assert!(!first.is_empty());
    // Lose the link to one work order, as a stop between the two writes would.
    let r = &first[0];
    let ticket = r.ticket_id.expect("work order");
    drop(w);
    let conn = rusqlite::Connection::open(dir.path().join("rounds.db")).expect("open");
    conn.execute("UPDATE rounds SET ticket_id = NULL WHERE id = ?1", [r.id])
        .expect("update");
    drop(conn);
    let w = world(dir.path(), T0 + DAY);
    assert!(w.rounds.generate(T0 + DAY).expect("generate").is_empty());
    assert_eq!(
        w.rounds.store().round(r.id).expect("round").ticket_id,
        Some(ticket)
    );
}

#[test]
fn the_shipped_schedule_file_is_valid() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../demo/rounds.toml");
    let set = ScheduleSet::load(&path).expect("demo/rounds.toml is valid");
    let ids: Vec<&str> = set.schedules.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "lift-half-monthly",
            "lift-quarterly",
            "lift-half-yearly",
            "lift-yearly",
            "fire-patrol",
            "fire-monthly-check",
            "smoke-function-test",
            "pump-weekly-run"
        ]
    );
}
