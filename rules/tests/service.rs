//! The running service: ingest hands it decoded messages, it raises tickets, commands the
//! gates, publishes events, follows a manual clock for SLA timers, reloads and persists.

mod common;

use common::*;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_ingest::contract::decode;
use steward_ingest::{DecodedSink, IngestConfig};
use steward_rules::*;
use steward_tickets::{
    Priority, SqliteTicketStore, TicketError, TicketEventKind, TicketState, TicketStore,
};

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

impl CommandSink for Recorder {
    fn send(&self, device_id: &str, payload: &str) {
        self.0
            .lock()
            .push((device_id.to_string(), payload.to_string()));
    }
}

/// The default pack written to `dir/rules.toml`, and where the ticket database goes.
fn default_pack_files(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let rules = dir.join("rules.toml");
    std::fs::write(&rules, DEFAULT_PACK).unwrap();
    (rules, dir.join("tickets.db"))
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn service_raises_commands_escalates_reloads_and_persists() {
    let tmp = tempfile::tempdir().unwrap();
    let (rules, db) = default_pack_files(tmp.path());
    let cfg = RulesConfig {
        rules: Some(rules.clone()),
        database: db.clone(),
        watch: false,
        tick_interval: Duration::from_millis(20),
        snapshot_interval: Duration::from_millis(100),
        ..Default::default()
    };
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    let registry = registry();
    let clock = Arc::new(ManualClock::new(T0));
    let commands = Arc::new(Recorder::default());
    let mut prom = prometheus_client::registry::Registry::default();
    let metrics = RulesMetrics::new(&mut prom);
    let (mut sink, handle) = RulesService::start_with_metrics(
        cfg,
        registry.clone(),
        Arc::new(SqliteTicketStore::open(&db).unwrap()),
        clock.clone(),
        commands.clone(),
        metrics,
    )
    .unwrap();
    let mut rx = handle.desk().events();
    let dir = registry.directory();
    let payload = serde_json::json!({"ts": T0, "metrics": {"alarm": true}}).to_string();
    sink.accept(&decode(
        b"devices/smoke-1/telemetry",
        payload.as_bytes(),
        &dir,
        T0,
        &IngestConfig::default(),
    ));
    // Ingest flushes its sinks at the end of every burst.
    sink.flush();

    let store = handle.desk().store().clone();
    wait_until("fire ticket", || {
        store
            .active_for("smoke-1", "smoke-fire-alarm")
            .unwrap()
            .is_some()
    });
    wait_until("gate commands", || commands.0.lock().len() == 2);
    let sent: Vec<String> = commands.0.lock().iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(sent, vec!["gate-1", "gate-2"]);
    let ticket = store
        .active_for("smoke-1", "smoke-fire-alarm")
        .unwrap()
        .unwrap();
    assert_eq!(ticket.station, "st-north");

    // Five minutes pass without an acknowledgement: the P1 escalates.
    clock.advance(5 * MIN + 1);
    wait_until("escalation", || {
        store.ticket(ticket.id).unwrap().escalation_level == 2
    });
    let t = handle
        .desk()
        .transition(ticket.id, TicketState::Acknowledged, "crew-1", "on my way")
        .unwrap();
    assert_eq!(t.state, TicketState::Acknowledged);
    assert!(matches!(
        handle
            .desk()
            .transition(ticket.id, TicketState::Closed, "crew-1", ""),
        Err(TicketError::IllegalTransition { .. })
    ));
    // The store records the escalation before the event goes out: wait for the event
    // itself rather than assume it is already in the channel.
    let mut kinds = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        match rx.try_recv() {
            Ok(e) => kinds.push(e.kind),
            Err(_)
                if kinds.contains(&TicketEventKind::Transition)
                    && kinds.contains(&TicketEventKind::Escalated) =>
            {
                break
            }
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    }
    for k in [
        TicketEventKind::Raised,
        TicketEventKind::Notification,
        TicketEventKind::Escalated,
        TicketEventKind::Transition,
    ] {
        assert!(kinds.contains(&k), "{k:?} missing from {kinds:?}");
    }
    assert!(handle.metrics().raised(Priority::P1) >= 1);

    // Reload: a broken file is refused, a good one swapped in.
    std::fs::write(&rules, "[[rule]]\nid = \"x\"\n").unwrap();
    assert!(handle
        .reload(&rules)
        .unwrap_err()
        .to_string()
        .contains("rules.toml: rule x: kind: missing"));
    std::fs::write(
        &rules,
        DEFAULT_PACK.replace("id = \"device-offline\"", "id = \"device-gone\""),
    )
    .unwrap();
    assert_eq!(
        handle.reload(&rules).unwrap(),
        RulePack::default_pack().rules().len()
    );

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &prom).unwrap();
    assert!(
        text.contains("steward_rules_tickets_raised_total{priority=\"P1\"}"),
        "{text}"
    );
    assert!(
        text.contains("steward_rules_sla_breaches_total{stage=\"ack\"} 1"),
        "{text}"
    );

    handle.shutdown();
    let states = SqliteTicketStore::open(&db)
        .unwrap()
        .load_rule_states()
        .unwrap();
    assert!(
        states.iter().any(|(id, _)| id == "smoke-1"),
        "rule state saved at shutdown"
    );
}

/// Ingest hands decoded messages over a burst at a time: nothing reaches the rules before
/// the burst ends (or fills a hand-over), and the queue bound counts messages, not
/// hand-overs, so a burst that does not fit is dropped whole and counted message by message.
#[test]
fn the_sink_hands_over_bursts_and_bounds_the_queue_in_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let (rules, db) = default_pack_files(tmp.path());
    let cfg = RulesConfig {
        rules: Some(rules),
        database: db.clone(),
        watch: false,
        queue_capacity: 3,
        ..Default::default()
    };
    let registry = registry();
    let mut prom = prometheus_client::registry::Registry::default();
    let metrics = RulesMetrics::new(&mut prom);
    let (mut sink, handle) = RulesService::start_with_metrics(
        cfg,
        registry.clone(),
        Arc::new(SqliteTicketStore::open(&db).unwrap()),
        Arc::new(ManualClock::new(T0)),
        Arc::new(NoCommands),
        metrics.clone(),
    )
    .unwrap();
    let dir = registry.directory();
    let reading = |ts: i64| {
        let payload = serde_json::json!({"ts": ts, "metrics": {"alarm": ts % 2 == 0}});
        decode(
            b"devices/smoke-1/telemetry",
            payload.to_string().as_bytes(),
            &dir,
            T0,
            &IngestConfig::default(),
        )
    };

    // Five messages do not fit a queue of three: all five are dropped and counted.
    for i in 0..5 {
        sink.accept_owned(reading(T0 + i));
    }
    assert_eq!(metrics.received.get(), 0, "held until the burst ends");
    sink.flush();
    assert_eq!(metrics.dropped.get(), 5);
    assert_eq!(metrics.received.get(), 0);

    // Two fit; the alarm among them opens a ticket once the burst is handed over.
    sink.accept_owned(reading(T0 + 10));
    sink.accept(&reading(T0 + 11));
    let store = handle.desk().store().clone();
    // The sink counts a hand-over as it sends it: nothing sent, nothing the worker could
    // have raised a ticket from, so there is nothing to wait for.
    assert_eq!(metrics.received.get(), 0, "held until the burst ends");
    assert!(store
        .active_for("smoke-1", "smoke-fire-alarm")
        .unwrap()
        .is_none());
    sink.flush();
    assert_eq!(metrics.received.get(), 2);
    wait_until("fire ticket", || {
        store
            .active_for("smoke-1", "smoke-fire-alarm")
            .unwrap()
            .is_some()
    });
    assert_eq!(metrics.dropped.get(), 5);
    handle.shutdown();
}

#[test]
fn config_validation_names_keys() {
    let mut cfg = RulesConfig::default();
    cfg.sla.p1_ack = Duration::ZERO;
    cfg.sla.p2_resolve = Some(Duration::from_secs(60));
    cfg.escalation_levels.clear();
    cfg.reminder_interval = Duration::from_millis(10);
    let e = cfg.validate();
    for key in [
        "rules.sla.p1_ack",
        "rules.sla.p2_resolve",
        "rules.escalation_levels",
        "rules.reminder_interval",
    ] {
        assert!(
            e.iter().any(|m| m.starts_with(key)),
            "{key} not named in {e:?}"
        );
    }
    let parsed: RulesConfig =
        toml::from_str("reminder_interval = \"2m\"\n[sla]\np1_on_site = \"15m\"\n").unwrap();
    assert_eq!(parsed.sla.p1_on_site, Some(Duration::from_secs(900)));
    assert_eq!(parsed.sla.p1_ack, Duration::from_secs(300));
    assert!(toml::from_str::<RulesConfig>("colour = 1").is_err());
}

#[test]
fn watcher_reloads_changed_rule_files_and_ignores_broken_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("packs");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("default.toml"), DEFAULT_PACK).unwrap();
    let cfg = RulesConfig {
        rules: Some(dir.clone()),
        database: tmp.path().join("t.db"),
        watch: true,
        watch_interval: Duration::from_millis(100),
        tick_interval: Duration::from_millis(20),
        ..Default::default()
    };
    let store = Arc::new(SqliteTicketStore::open(&cfg.database).unwrap());
    let (_sink, handle) = RulesService::start(
        cfg,
        registry(),
        store,
        Arc::new(ManualClock::new(T0)),
        Arc::new(NoCommands),
    )
    .unwrap();
    std::fs::write(dir.join("extra.toml"), "[[rule]]\nid = \"broken\"\n").unwrap();
    wait_until("refused reload", || {
        handle.metrics().reload_errors.get() == 1
    });
    assert_eq!(handle.metrics().reloads.get(), 0);
    std::fs::write(
        dir.join("extra.toml"),
        "[[rule]]\nid = \"lift-mode\"\nkind = \"lift\"\npriority = \"P3\"\ntitle = \"inspection\"\ncondition = { metric = \"mode\", equals = \"inspection\", for = \"8h\" }\n",
    )
    .unwrap();
    wait_until("reload", || handle.metrics().reloads.get() == 1);
    handle.shutdown();
}
