//! The ladder against real receivers and an injectable clock: a trapped passenger reaches
//! the on-call crew member's webhook and the building captain's DingTalk robot at once;
//! nobody acknowledges, so the station head hears at +5 min and the street duty officer
//! at +15 min; the duty officer's one-time link acknowledges the ticket and the ladder
//! stops (the district is never told); the audit trail lists every delivery.

#[path = "../../notify/tests/common/mod.rs"]
mod common;

use common::{wait_until, Check, Receiver};

use std::sync::Arc;
use std::time::Duration;
use steward_escalation::policy::Audience;
use steward_escalation::{
    Contact, Escalation, EscalationMetrics, EscalationStore, LinkError, LinkKey, NoLog, Parts,
    Policy, Roster,
};
use steward_estate::clock::{Clock, ManualClock};
use steward_estate::DeviceKind;
use steward_notify::channel::robots::dingtalk_sign;
use steward_notify::config::{DingtalkConfig, EndpointConfig, RobotFormat, WebhookConfig};
use steward_notify::{verify_webhook, Channels, Dispatcher, NotifyConfig, Outbox, Secret};
use steward_tickets::{
    Priority, Raise, SlaPolicy, SqliteTicketStore, Ticket, TicketDesk, TicketMetrics, TicketState,
    TicketStore,
};

const T0: i64 = 1_796_083_200_000; // 2026-12-01T00:00:00Z
const MIN: i64 = 60_000;
const HOOK_SECRET: &str = "whsec-escalation-test";
const DING_SECRET: &str = "SECescalation-ding";

/// The estate of the test: who each audience is.
struct TestRoster;

fn person(id: &str, channel: &str) -> Contact {
    Contact {
        id: id.into(),
        name: id.to_uppercase(),
        phone: Some("13800000001".into()),
        email: None,
        channels: vec![channel.into()],
    }
}

impl Roster for TestRoster {
    fn resolve(&self, a: &Audience, t: &Ticket, _at_ms: i64) -> Vec<Contact> {
        if t.station == "st-2" {
            return match a {
                Audience::OnCall => vec![person("p-second", "crew-hook")],
                _ => Vec::new(),
            };
        }
        assert_eq!(t.station, "st-1");
        match a {
            Audience::OnCall => vec![person("p-wang", "crew-hook")],
            Audience::Captains => vec![person("p-chen", "captain-ding")],
            Audience::StationHead => vec![person("p-zhao", "head-hook")],
            Audience::StreetDutyOfficer => vec![person("p-sun", "street-hook")],
            Audience::District => vec![person("p-zhou", "district-hook")],
            _ => Vec::new(),
        }
    }

    fn person_exists(&self, _: &str) -> bool {
        true
    }
}

fn notify_config(hooks: &Receiver, ding: &Receiver) -> NotifyConfig {
    let mut cfg = NotifyConfig::default();
    cfg.outbox.initial_backoff = Duration::from_secs(1);
    cfg.outbox.poll_interval = Duration::from_millis(20);
    for name in ["crew-hook", "head-hook", "street-hook", "district-hook"] {
        cfg.endpoints.insert(
            name.into(),
            EndpointConfig::Webhook(WebhookConfig {
                url: hooks.url(&format!("/{name}")),
                secret: Secret::new(HOOK_SECRET),
            }),
        );
    }
    cfg.endpoints.insert(
        "captain-ding".into(),
        EndpointConfig::Dingtalk(DingtalkConfig {
            url: ding.url("/robot/send"),
            access_token: Secret::new("ding-token"),
            secret: Some(Secret::new(DING_SECRET)),
            format: RobotFormat::Markdown,
        }),
    );
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg
}

fn webhook_check(clock: Arc<ManualClock>) -> Check {
    Arc::new(move |r| {
        let ts = r.header("x-steward-timestamp");
        let sig = r.header("x-steward-signature");
        verify_webhook(
            HOOK_SECRET.as_bytes(),
            ts,
            sig,
            &r.body,
            clock.now_ms() / 1000,
            Duration::from_secs(300),
        )
        .map_err(|e| e.to_string())
    })
}

fn dingtalk_check() -> Check {
    Arc::new(|r| {
        let ts = r.param("timestamp").ok_or("no timestamp")?;
        let ts: i64 = ts.parse().map_err(|_| "bad timestamp")?;
        if r.param("sign") != Some(dingtalk_sign(DING_SECRET, ts)) {
            return Err("bad sign".into());
        }
        match r.json()["msgtype"].as_str() {
            Some("markdown") => Ok(()),
            other => Err(format!("not a dingtalk markdown message: {other:?}")),
        }
    })
}

fn raise(desk: &TicketDesk, ts_ms: i64) -> i64 {
    desk.raise(&Raise {
        device_id: "lift-1".into(),
        rule_id: "lift-trapped-passenger".into(),
        kind: DeviceKind::Lift,
        compound: "cmp-1".into(),
        building: "b-1".into(),
        station: "st-1".into(),
        priority: Priority::P1,
        title: "trapped passenger".into(),
        detail: "trapped=true floor=7".into(),
        ts_ms,
    })
    .expect("raise")
    .ticket
    .id
}

/// Webhook deliveries received at `path`.
fn at(hooks: &Receiver, path: &str) -> Vec<serde_json::Value> {
    hooks
        .accepted()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.json())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p1_climbs_the_ladder_until_a_link_acknowledges_it() {
    let Rig {
        _dir,
        clock,
        hooks,
        ding,
        desk,
        esc,
    } = rig().await;
    let store = desk.store().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let runner = tokio::spawn(esc.clone().run(async {
        let _ = stop_rx.await;
    }));

    let id = raise(&desk, T0);
    wait_until("the on-call crew member's webhook", || {
        at(&hooks, "/crew-hook").len() == 1
    })
    .await;
    wait_until("the captain's dingtalk robot", || {
        ding.accepted().len() == 1
    })
    .await;
    let first = &at(&hooks, "/crew-hook")[0];
    assert_eq!(first["ticket_id"], id.to_string());
    assert_eq!(first["tier"], 0);
    assert_eq!(first["recipient"]["id"], "p-wang");
    assert!(first["link"]
        .as_str()
        .is_some_and(|l| l.starts_with("http://hub.example/ack/")));
    let md = ding.accepted()[0].json();
    assert!(
        md["markdown"]["title"]
            .as_str()
            .is_some_and(|t| t.contains("[P1] trapped passenger")),
        "{md}"
    );
    assert!(at(&hooks, "/head-hook").is_empty());

    // +5 min: the station head, and the first reminder of tier 0.
    clock.set(T0 + 5 * MIN);
    wait_until("the station head", || at(&hooks, "/head-hook").len() == 1).await;
    wait_until("tier 0's first reminder", || {
        at(&hooks, "/crew-hook").len() == 2 && ding.accepted().len() == 2
    })
    .await;
    assert_eq!(at(&hooks, "/crew-hook")[1]["round"], 1);
    assert!(at(&hooks, "/street-hook").is_empty());

    // +15 min: the street duty officer.
    clock.set(T0 + 15 * MIN);
    wait_until("the street duty officer", || {
        at(&hooks, "/street-hook").len() == 1
    })
    .await;
    let link = at(&hooks, "/street-hook")[0]["link"]
        .as_str()
        .expect("link")
        .to_string();
    let token = link.rsplit('/').next().expect("token").to_string();

    // Opening the page changes nothing; pressing the button acknowledges, once.
    let e = esc.clone();
    let t = token.clone();
    let (claim, before) = tokio::task::spawn_blocking(move || e.preview(&t))
        .await
        .expect("join")
        .expect("preview");
    assert_eq!(
        (claim.person.as_str(), before.state),
        ("p-sun", TicketState::Open)
    );
    let e = esc.clone();
    let t = token.clone();
    let ack = tokio::task::spawn_blocking(move || e.acknowledge(&t))
        .await
        .expect("join")
        .expect("acknowledge");
    assert!(!ack.already);
    assert_eq!(ack.ticket.state, TicketState::Acknowledged);
    let e = esc.clone();
    let again = tokio::task::spawn_blocking(move || e.acknowledge(&token))
        .await
        .expect("join");
    assert!(
        matches!(
            again,
            Err(steward_escalation::AckError::Link(LinkError::Used))
        ),
        "{again:?}"
    );

    // +31 min: the district would be next, but the ladder stopped.
    let delivered = hooks.accepted().len() + ding.accepted().len();
    clock.set(T0 + 31 * MIN);
    esc.tick().await.expect("tick");
    esc.tick().await.expect("tick");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(at(&hooks, "/district-hook").is_empty());
    assert_eq!(hooks.accepted().len() + ding.accepted().len(), delivered);

    // The audit trail lists every delivery and who acknowledged through which channel.
    let s = store.clone();
    wait_until("every delivery in the audit trail", || {
        let detail = s.get(id).expect("ticket");
        detail
            .audit
            .iter()
            .filter(|a| a.action == "notification" && a.note.contains("delivered"))
            .count()
            == delivered
    })
    .await;
    let detail = store.get(id).expect("ticket");
    let ack_rec = detail
        .audit
        .iter()
        .find(|a| a.to_state == Some(TicketState::Acknowledged))
        .expect("ack record");
    assert_eq!(ack_rec.actor, "person:p-sun");
    assert!(ack_rec.note.contains("street-hook"), "{}", ack_rec.note);
    for a in detail.audit.iter().filter(|a| a.action == "notification") {
        assert!(
            !a.note.contains("13800000001"),
            "contact in clear: {}",
            a.note
        );
    }

    let _ = stop_tx.send(());
    runner.await.expect("runner");
}

#[test]
fn a_policy_naming_unknown_people_is_refused() {
    let text = "[p1]\ntiers = [{ after = \"0s\", notify = [\"person:p-x\"] }]\n[p2]\n[p3]\n";
    let e = Policy::parse(text, "escalation.toml", &|id| id == "p-y")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("escalation.toml: p1.tiers[0].notify[0]: unknown person `p-x`"),
        "{e}"
    );
}

/// A hub's worth of escalation for one test: desk, dispatcher, service, receivers.
struct Rig {
    _dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    hooks: Receiver,
    ding: Receiver,
    desk: TicketDesk,
    esc: Escalation,
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let hooks = Receiver::start(webhook_check(clock.clone())).await;
    let ding = Receiver::start(dingtalk_check()).await;
    let cfg = notify_config(&hooks, &ding);
    let store: Arc<dyn TicketStore> =
        Arc::new(SqliteTicketStore::open(&dir.path().join("tickets.db")).expect("tickets"));
    let desk = TicketDesk::new(
        store,
        SlaPolicy::default(),
        clock.clone(),
        TicketMetrics::default(),
    );
    let outbox = Arc::new(Outbox::open(&dir.path().join("notify.db")).expect("outbox"));
    let channels = Arc::new(Channels::new(&cfg, clock.clone()).expect("channels"));
    let dispatcher = Arc::new(Dispatcher::new(
        outbox,
        channels,
        clock.clone(),
        cfg.outbox.clone(),
    ));
    let mut prom = prometheus_client::registry::Registry::default();
    let esc = Escalation::new(Parts {
        desk: desk.clone(),
        roster: Arc::new(TestRoster),
        dispatcher,
        store: EscalationStore::open(&dir.path().join("escalation.db")).expect("store"),
        key: LinkKey::generate(),
        policy: Policy::default(),
        policy_path: None,
        public_url: "http://hub.example".into(),
        link_ttl: Duration::from_secs(3600),
        clock: clock.clone(),
        metrics: EscalationMetrics::new(&mut prom),
        log: Arc::new(NoLog),
        tick: Duration::from_millis(50),
    });
    Rig {
        _dir: dir,
        clock,
        hooks,
        ding,
        desk,
        esc,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_reaches_the_new_station_and_work_orders_page_nobody() {
    let r = rig().await;
    let worker = tokio::spawn(r.esc.dispatcher().clone().run(std::future::pending()));
    // A planned round's work order: no ladder.
    let wo = r
        .desk
        .open_work_order(&steward_tickets::WorkOrder {
            device_id: "smoke-1".into(),
            rule_id: "round:r-1".into(),
            kind: "smoke".into(),
            compound: "cmp-1".into(),
            building: "b-1".into(),
            station: "st-1".into(),
            priority: Priority::P3,
            title: "monthly smoke detector test".into(),
            detail: String::new(),
            ts_ms: T0,
            ticket_kind: steward_tickets::TICKET_KIND_WORK_ORDER.into(),
            resolve_due_ms: Some(T0 + 24 * 60 * MIN),
        })
        .expect("work order");
    assert!(wo.created);
    let id = raise(&r.desk, T0);
    assert_eq!(
        r.esc.tick().await.expect("tick"),
        2,
        "on-call and captain, not the round"
    );
    wait_until("the first notice", || at(&r.hooks, "/crew-hook").len() == 1).await;
    // Moved to st-2: its on-call person is told at once; st-1's ladder is not repeated.
    r.desk
        .transfer(id, "st-2", "wrong station", "dispatcher")
        .expect("transfer");
    assert_eq!(r.esc.tick().await.expect("tick"), 1);
    wait_until("the new station's on-call", || {
        at(&r.hooks, "/crew-hook")
            .iter()
            .any(|n| n["recipient"]["id"] == "p-second")
    })
    .await;
    r.clock.set(T0 + MIN);
    assert_eq!(r.esc.tick().await.expect("tick"), 0);
    worker.abort();
}
