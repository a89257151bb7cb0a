//! The outbox and dispatcher against real receivers: a receiver that is down and then up
//! gets every notification exactly once, across a restart; a receiver that answers errors
//! sees the backoff and the delivery ends in the dead letters.

mod common;

use common::{wait_until, Check, Receiver};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use steward_estate::clock::{Clock, ManualClock};
use steward_notify::channel::webhook::DELIVERY_HEADER;
use steward_notify::config::{EmailConfig, EndpointConfig, WebhookConfig};
use steward_notify::outbox::DeliveryState;
use steward_notify::{
    verify_webhook, Channels, Dispatcher, Enqueued, Notification, NotifyConfig, Outbox, Recipient,
    Secret,
};
use tokio::sync::oneshot;

const T0: i64 = 1_796_000_000_000;
const SECRET: &str = "whsec-delivery";

fn config(url: &str, max_attempts: u32) -> NotifyConfig {
    let mut cfg = NotifyConfig {
        outbox: Default::default(),
        endpoints: BTreeMap::new(),
    };
    cfg.outbox.max_attempts = max_attempts;
    cfg.outbox.initial_backoff = Duration::from_secs(1);
    cfg.outbox.max_backoff = Duration::from_secs(4);
    cfg.outbox.poll_interval = Duration::from_millis(20);
    cfg.outbox.batch = 8;
    cfg.outbox.request_timeout = Duration::from_secs(20);
    cfg.endpoints.insert(
        "crew-hook".into(),
        EndpointConfig::Webhook(WebhookConfig {
            url: url.to_string(),
            secret: Secret::new(SECRET),
        }),
    );
    cfg.endpoints.insert(
        "mail".into(),
        EndpointConfig::Email(EmailConfig {
            host: "127.0.0.1".into(),
            port: 25,
            from: "Steward <steward@example.com>".into(),
            username: None,
            password: None,
        }),
    );
    assert!(cfg.validate().is_empty(), "{:?}", cfg.validate());
    cfg
}

fn dispatcher(path: &Path, cfg: &NotifyConfig, clock: &Arc<ManualClock>) -> Arc<Dispatcher> {
    let outbox = Arc::new(Outbox::open(path).expect("open outbox"));
    let channels = Arc::new(Channels::new(cfg, clock.clone()).expect("channels"));
    Arc::new(Dispatcher::new(
        outbox,
        channels,
        clock.clone(),
        cfg.outbox.clone(),
    ))
}

fn notification(ticket: usize) -> Notification {
    Notification {
        ticket_id: format!("T-{ticket}"),
        tier: 0,
        round: 0,
        priority: "P1".into(),
        title: "trapped passenger".into(),
        text: format!("lift {ticket}"),
        link: None,
    }
}

fn crew() -> Recipient {
    Recipient::new("crew-1", "Li Si").with_phone("13900001111")
}

/// A webhook receiver that verifies signatures against the test's clock.
async fn receiver_on(addr: std::net::SocketAddr, clock: Arc<ManualClock>) -> Receiver {
    let check: Check = Arc::new(move |r| {
        verify_webhook(
            SECRET.as_bytes(),
            r.header("x-steward-timestamp"),
            r.header("x-steward-signature"),
            &r.body,
            clock.now_ms() / 1000,
            Duration::from_secs(300),
        )
        .map_err(|e| e.to_string())
    });
    Receiver::start_on(addr, check)
        .await
        .expect("bind receiver")
}

struct Running {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn spawn(d: &Arc<Dispatcher>) -> Running {
    let (stop, rx) = oneshot::channel::<()>();
    let d = d.clone();
    let task = tokio::spawn(async move {
        d.run(async {
            let _ = rx.await;
        })
        .await;
    });
    Running { stop, task }
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_up_gets_everything_once_across_a_restart() {
    const N: usize = 12;
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("outbox.db");
    let clock = Arc::new(ManualClock::new(T0));
    // The receiver's address, with nobody listening yet: connections are refused.
    let addr = common::free_addr();
    let cfg = config(&format!("http://{addr}/hook"), 1_000);

    let d = dispatcher(&db, &cfg, &clock);
    for i in 0..N {
        let e = d
            .enqueue(notification(i), crew(), "crew-hook")
            .await
            .expect("enqueue");
        assert!(matches!(e, Enqueued::New { .. }));
    }
    let running = spawn(&d);
    // Down: every delivery fails a few times and backs off.
    let outbox = d.outbox().clone();
    wait_until("three failed attempts per delivery", || {
        clock.advance(5_000);
        (0..N).all(|i| {
            outbox
                .attempts_for_ticket(&format!("T-{i}"))
                .map(|a| a.len() >= 3)
                .unwrap_or(false)
        })
    })
    .await;
    running.stop().await;
    assert_eq!(outbox.counts().expect("counts"), (N as u64, 0, 0));
    drop((d, outbox));

    // Restart: reopen the outbox; the escalation step repeats its enqueue (a no-op).
    let d = dispatcher(&db, &cfg, &clock);
    for i in 0..N {
        let e = d
            .enqueue(notification(i), crew(), "crew-hook")
            .await
            .expect("enqueue");
        assert!(
            matches!(
                e,
                Enqueued::Duplicate {
                    state: DeliveryState::Pending,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    // Up: the receiver comes back on the same address.
    let rx = receiver_on(addr, clock.clone()).await;
    let running = spawn(&d);
    let outbox = d.outbox().clone();
    wait_until("every delivery delivered", || {
        clock.advance(5_000);
        outbox
            .counts()
            .map(|c| c == (0, N as u64, 0))
            .unwrap_or(false)
    })
    .await;
    running.stop().await;
    drop(d);

    // Another restart: nothing is sent again, even when enqueued again.
    let d = dispatcher(&db, &cfg, &clock);
    for i in 0..N {
        let e = d
            .enqueue(notification(i), crew(), "crew-hook")
            .await
            .expect("enqueue");
        assert!(
            matches!(
                e,
                Enqueued::Duplicate {
                    state: DeliveryState::Delivered,
                    ..
                }
            ),
            "{e:?}"
        );
    }
    clock.advance(60_000);
    assert_eq!(d.run_once().await.expect("round"), 0);

    assert!(rx.rejected().is_empty(), "{:?}", rx.rejected());
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for r in rx.accepted() {
        *per_key
            .entry(r.header(DELIVERY_HEADER).to_string())
            .or_default() += 1;
    }
    assert_eq!(per_key.len(), N, "{per_key:?}");
    assert!(per_key.values().all(|&n| n == 1), "{per_key:?}");
    // The audit trail of one ticket: failures while down, then the delivery.
    let attempts = d.attempts_for_ticket("T-0").await.expect("attempts");
    let last = attempts.last().expect("attempts");
    assert_eq!(last.outcome, "delivered");
    assert!(attempts[..attempts.len() - 1]
        .iter()
        .all(|a| a.outcome == "retry" && a.error.is_some()));
    assert_eq!(last.recipient, "crew-1 (139****1111)");
}

#[tokio::test]
async fn failing_receiver_backs_off_then_dead_letters() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let rx = receiver_on(common::free_addr(), clock.clone()).await;
    rx.set_reply(503, "maintenance");
    let cfg = config(&rx.url("/hook"), 4);
    let d = dispatcher(&dir.path().join("outbox.db"), &cfg, &clock);
    d.enqueue(notification(1), crew(), "crew-hook")
        .await
        .expect("enqueue");

    let mut rounds = 0;
    loop {
        let attempted = d.run_once().await.expect("round");
        assert_eq!(attempted, 1);
        rounds += 1;
        let rec = &d.outbox().deliveries_for_ticket("T-1").expect("read")[0];
        if rec.state == DeliveryState::Dead {
            break;
        }
        // Not due again before its backoff has passed.
        assert!(rec.next_attempt_ms > clock.now_ms());
        assert_eq!(d.run_once().await.expect("round"), 0);
        clock.set(rec.next_attempt_ms);
    }
    assert_eq!(rounds, 4);
    assert_eq!(rx.accepted().len(), 4);

    let dead = d.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 4);
    assert_eq!(dead[0].channel, "webhook");
    let err = dead[0].last_error.as_deref().unwrap_or_default();
    assert!(err.contains("503") && err.contains("maintenance"), "{err}");
    let attempts = d.attempts_for_ticket("T-1").await.expect("attempts");
    let outcomes: Vec<&str> = attempts.iter().map(|a| a.outcome.as_str()).collect();
    assert_eq!(outcomes, ["retry", "retry", "retry", "dead"]);
    // Backoff doubles (1 s, 2 s, 4 s nominal, each at least half of that).
    let gaps: Vec<i64> = attempts
        .windows(2)
        .map(|w| w[1].at_ms - w[0].at_ms)
        .collect();
    for (gap, nominal) in gaps.iter().zip([1_000, 2_000, 4_000]) {
        assert!(*gap >= nominal / 2 && *gap <= nominal, "{gaps:?}");
    }

    // The endpoint is fixed and the operator retries the dead letter.
    rx.set_reply(200, "ok");
    assert!(d.retry_dead(dead[0].id).await.expect("retry"));
    assert!(
        !d.retry_dead(dead[0].id).await.expect("retry"),
        "not dead any more"
    );
    assert_eq!(d.run_once().await.expect("round"), 1);
    let rec = &d.deliveries_for_ticket("T-1").await.expect("read")[0];
    assert_eq!(rec.state, DeliveryState::Delivered);
    assert!(d.dead_letters(10).await.expect("dead letters").is_empty());
}

#[tokio::test]
async fn a_failure_no_retry_can_fix_is_dead_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let cfg = config("http://127.0.0.1:9/hook", 10);
    let d = dispatcher(&dir.path().join("outbox.db"), &cfg, &clock);
    // The recipient has no email address for the mail endpoint.
    d.enqueue(notification(2), crew(), "mail")
        .await
        .expect("enqueue");
    assert_eq!(d.run_once().await.expect("round"), 1);
    let dead = d.dead_letters(10).await.expect("dead letters");
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].attempts, 1);
    assert!(dead[0]
        .last_error
        .as_deref()
        .unwrap_or_default()
        .contains("no email address"));
    let err = d
        .enqueue(notification(3), crew(), "pigeon")
        .await
        .expect_err("unknown endpoint");
    assert!(err.to_string().contains("pigeon"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_endpoint_does_not_hold_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    // Accepts connections and never answers.
    let stalled = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stalled_addr = stalled.local_addr().expect("addr");
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = stalled.accept().await {
            held.push(socket);
        }
    });
    let rx = receiver_on(common::free_addr(), clock.clone()).await;
    let mut cfg = config(&rx.url("/hook"), 10);
    cfg.outbox.request_timeout = Duration::from_secs(600);
    cfg.endpoints.insert(
        "stalled-hook".into(),
        EndpointConfig::Webhook(WebhookConfig {
            url: format!("http://{stalled_addr}/hook"),
            secret: Secret::new(SECRET),
        }),
    );
    let d = dispatcher(&dir.path().join("outbox.db"), &cfg, &clock);
    d.enqueue(notification(1), crew(), "stalled-hook")
        .await
        .expect("enqueue");
    d.enqueue(notification(1), crew(), "crew-hook")
        .await
        .expect("enqueue");
    let running = spawn(&d);
    let outbox = d.outbox().clone();
    wait_until("the healthy endpoint's delivery", || {
        outbox.counts().map(|c| c == (1, 1, 0)).unwrap_or(false)
    })
    .await;
    assert_eq!(rx.accepted().len(), 1);
    // Later notifications do not wait for the stalled attempt either.
    d.enqueue(notification(2), crew(), "crew-hook")
        .await
        .expect("enqueue");
    wait_until("a later delivery", || {
        outbox.counts().map(|c| c == (1, 2, 0)).unwrap_or(false)
    })
    .await;
    assert_eq!(rx.accepted().len(), 2);
    running.stop().await;
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_tickets_is_delivered_once_each() {
    const N: usize = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::new(T0));
    let rx = receiver_on(common::free_addr(), clock.clone()).await;
    let cfg = config(&rx.url("/hook"), 10);
    let d = dispatcher(&dir.path().join("outbox.db"), &cfg, &clock);
    let running = spawn(&d);
    for i in 0..N {
        d.enqueue(notification(i), crew(), "crew-hook")
            .await
            .expect("enqueue");
    }
    let outbox = d.outbox().clone();
    wait_until("every delivery delivered", || {
        outbox
            .counts()
            .map(|c| c == (0, N as u64, 0))
            .unwrap_or(false)
    })
    .await;
    running.stop().await;
    let keys: std::collections::HashSet<String> = rx
        .accepted()
        .iter()
        .map(|r| r.header(DELIVERY_HEADER).to_string())
        .collect();
    assert_eq!(rx.accepted().len(), N);
    assert_eq!(keys.len(), N);
}
