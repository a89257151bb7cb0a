//! Escalation to people through the running hub, against real receivers on loopback: a
//! trapped passenger reaches the on-call crew member's webhook and the building captain's
//! DingTalk robot, then the station head and the street duty officer while nobody
//! acknowledges; the one-time link in a notification acknowledges the ticket and stops
//! the ladder; every delivery is in the audit trail, the API and QuestDB. A receiver that
//! is down, across a hub restart, still gets each notification exactly once. The rota's
//! 08:00 handover sends a P1 at 07:59 and one at 08:01 to different people.

#[path = "../../notify/tests/common/mod.rs"]
mod common;

use anyhow::{anyhow, Context, Result};
use chrono::{FixedOffset, TimeZone, Timelike};
use common::{Check, Receiver};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use steward::HubConfig;
use steward_notify::channel::robots::dingtalk_sign;
use steward_notify::config::{DingtalkConfig, EndpointConfig, RobotFormat, WebhookConfig};
use steward_notify::{verify_webhook, Secret};
use steward_tests::fixture::{Device, Estate};
use steward_tests::{now_ms, wait_until, HubSandbox};

const HOOK_SECRET: &str = "whsec-escalation-e2e";
const DING_SECRET: &str = "SECescalation-e2e";
const DEADLINE: Duration = Duration::from_secs(60);

/// The standard test estate with people: Wang on call around the clock for st-north,
/// Chen captain of b-1, Zhao head of st-north, Sun duty officer of street-1, Zhou the
/// district's.
fn estate_with_people(extra_devices: bool, rota: &str) -> String {
    let mut e = Estate::standard();
    if extra_devices {
        e = e.device(Device::new("lift-2", "lift", "b-1"));
    }
    let text = e
        .toml()
        .replacen(
            "name = \"North repair station\"\n",
            "name = \"North repair station\"\nhead = \"p-zhao\"\n",
            1,
        )
        .replacen(
            "fallback_station = \"st-north\"\n",
            "fallback_station = \"st-north\"\nduty_officer = \"p-sun\"\n",
            1,
        );
    format!(
        r#"{text}
[district]
id = "dist-1"
name = "Riverside District"
duty_officer = "p-zhou"

[[people]]
id = "p-wang"
name = "Wang Wu"
phone = "13800000001"
channels = ["crew-hook"]

[[people]]
id = "p-day"
name = "Day Shift"
channels = ["day-hook"]

[[people]]
id = "p-night"
name = "Night Shift"
channels = ["night-hook"]

[[people]]
id = "p-chen"
name = "Chen Captain"
phone = "13800000002"
channels = ["captain-ding"]

[[people]]
id = "p-zhao"
name = "Zhao Head"
channels = ["head-hook"]

[[people]]
id = "p-sun"
name = "Sun Duty"
channels = ["street-hook"]

[[people]]
id = "p-zhou"
name = "Zhou District"
channels = ["district-hook"]

[[crews]]
id = "crew-north"
name = "North crew"
station = "st-north"
members = ["p-wang", "p-day", "p-night"]

[[captains]]
person = "p-chen"
buildings = ["b-1"]

{rota}
"#
    )
}

const ROUND_THE_CLOCK: &str = r#"
[[rotas]]
station = "st-north"
[[rotas.shifts]]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "08:00"
end = "20:00"
person = "p-wang"
[[rotas.shifts]]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"
person = "p-wang"
"#;

const DAY_AND_NIGHT: &str = r#"
[[rotas]]
station = "st-north"
[[rotas.shifts]]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "08:00"
end = "20:00"
person = "p-day"
[[rotas.shifts]]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
start = "20:00"
end = "08:00"
person = "p-night"
"#;

fn webhook_check() -> Check {
    Arc::new(|r| {
        verify_webhook(
            HOOK_SECRET.as_bytes(),
            r.header("x-steward-timestamp"),
            r.header("x-steward-signature"),
            &r.body,
            now_ms() / 1000,
            Duration::from_secs(300),
        )
        .map_err(|e| e.to_string())?;
        if r.header("x-steward-delivery").is_empty() {
            return Err("no delivery key".into());
        }
        Ok(())
    })
}

fn dingtalk_check() -> Check {
    Arc::new(|r| {
        let ts: i64 = r
            .param("timestamp")
            .and_then(|t| t.parse().ok())
            .ok_or("no timestamp")?;
        if r.param("sign") != Some(dingtalk_sign(DING_SECRET, ts)) {
            return Err("bad sign".into());
        }
        Ok(())
    })
}

fn hooks_config(cfg: &mut HubConfig, hooks: &str, ding: Option<&str>, policy: &Path) {
    for name in [
        "crew-hook",
        "day-hook",
        "night-hook",
        "head-hook",
        "street-hook",
        "district-hook",
    ] {
        cfg.notify.endpoints.insert(
            name.into(),
            EndpointConfig::Webhook(WebhookConfig {
                url: format!("{hooks}/{name}"),
                secret: Secret::new(HOOK_SECRET),
            }),
        );
    }
    cfg.notify.endpoints.insert(
        "captain-ding".into(),
        EndpointConfig::Dingtalk(DingtalkConfig {
            url: format!("{}/robot/send", ding.unwrap_or(hooks)),
            access_token: Secret::new("ding-token"),
            secret: Some(Secret::new(DING_SECRET)),
            format: RobotFormat::Markdown,
        }),
    );
    cfg.notify.outbox.initial_backoff = Duration::from_millis(500);
    cfg.notify.outbox.max_backoff = Duration::from_secs(2);
    cfg.notify.outbox.poll_interval = Duration::from_millis(100);
    cfg.escalation.policy = Some(policy.to_path_buf());
    cfg.escalation.tick = Duration::from_millis(200);
}

fn write_policy(dir: &Path, p1_tiers: &str) -> Result<std::path::PathBuf> {
    let path = dir.join("escalation.toml");
    std::fs::write(
        &path,
        format!(
            "[p1]\nrepeat = \"0s\"\ntiers = [\n{p1_tiers}\n]\n[p2]\ntiers = []\n[p3]\ntiers = []\n"
        ),
    )?;
    Ok(path)
}

async fn trap(sb: &HubSandbox, lift: &str, ts_ms: i64) -> Result<()> {
    let c = sb.device(lift, &format!("{lift}-secret")).await?;
    c.publish(
        &format!("devices/{lift}/telemetry"),
        json!({"ts": ts_ms, "metrics": {"trapped": true, "occupied": true, "door": "closed"}})
            .to_string(),
    )
    .await?;
    c.wait_acks(1).await?;
    c.disconnect().await;
    Ok(())
}

fn at(r: &Receiver, path: &str) -> Vec<Value> {
    r.accepted()
        .into_iter()
        .filter(|x| x.path == path)
        .map(|x| x.json())
        .collect()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) -> Result<()> {
    if wait_until(DEADLINE, || {
        let ok = f();
        async move { ok }
    })
    .await
    {
        Ok(())
    } else {
        Err(anyhow!("timed out waiting for {what}"))
    }
}

async fn get_json(sb: &HubSandbox, path: &str) -> Result<Value> {
    let r = sb
        .http()
        .get(sb.api(path))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?;
    let status = r.status();
    let body: Value = r.json().await?;
    anyhow::ensure!(status.is_success(), "{path}: {status} {body}");
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapped_passenger_climbs_the_ladder_until_the_link_is_pressed() -> Result<()> {
    let hooks = Receiver::start(webhook_check()).await;
    let ding = Receiver::start(dingtalk_check()).await;
    let dir = tempfile::tempdir()?;
    let policy = write_policy(
        dir.path(),
        r#"{ after = "0s", notify = ["on_call", "captains"] },
  { after = "3s", notify = ["station_head"] },
  { after = "6s", notify = ["street_duty_officer"] },
  { after = "30s", notify = ["district"] },"#,
    )?;
    let sb = HubSandbox::start_with(estate_with_people(false, ROUND_THE_CLOCK), |c| {
        hooks_config(c, &hooks.url(""), Some(&ding.url("")), &policy)
    })
    .await?;
    trap(&sb, "lift-1", now_ms()).await?;

    wait_for("the on-call crew member's webhook", || {
        at(&hooks, "/crew-hook").len() == 1
    })
    .await?;
    wait_for("the captain's DingTalk robot", || {
        ding.accepted().len() == 1
    })
    .await?;
    let first = &at(&hooks, "/crew-hook")[0];
    assert_eq!(first["recipient"]["id"], "p-wang");
    assert_eq!(first["priority"], "P1");
    let id: i64 = first["ticket_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .context("ticket id")?;
    let md = ding.accepted()[0].json();
    let text = md["markdown"]["text"].as_str().unwrap_or_default();
    assert!(text.contains("@13800000002"), "captain mentioned: {md}");

    wait_for("the station head", || at(&hooks, "/head-hook").len() == 1).await?;
    wait_for("the street duty officer", || {
        at(&hooks, "/street-hook").len() == 1
    })
    .await?;
    let link = at(&hooks, "/street-hook")[0]["link"]
        .as_str()
        .context("link")?
        .to_string();
    assert!(link.contains("/ack/"), "{link}");
    for body in hooks.accepted() {
        let b = String::from_utf8_lossy(&body.body).to_string();
        assert!(
            !b.contains(HOOK_SECRET) && !b.contains("ding-token"),
            "a secret in {b}"
        );
    }

    // Opening the link shows one button and changes nothing.
    let http = reqwest::Client::new();
    let page = http.get(&link).send().await?;
    assert_eq!(page.status(), 200);
    let html = page.text().await?;
    assert!(
        html.contains("<form method=\"post\"") && html.contains("trapped"),
        "{html}"
    );
    let t = get_json(&sb, &format!("/api/v1/tickets/{id}")).await?;
    assert_eq!(t["ticket"]["state"], "open");
    // Pressing it acknowledges, once.
    let done = http.post(&link).send().await?;
    assert_eq!(done.status(), 200);
    let again = http.post(&link).send().await?;
    assert_eq!(again.status(), 409, "a used link is refused");
    let forged = http.post(format!("{link}x")).send().await?;
    assert_eq!(forged.status(), 404);
    let t = get_json(&sb, &format!("/api/v1/tickets/{id}")).await?;
    assert_eq!(t["ticket"]["state"], "acknowledged");
    let opened = t["ticket"]["opened_ms"].as_i64().unwrap_or(0);
    let acked = t["ticket"]["acknowledged_ms"].as_i64().unwrap_or(i64::MAX);
    let audit = t["audit"].as_array().cloned().unwrap_or_default();
    let ack = audit
        .iter()
        .find(|a| a["to_state"] == "acknowledged")
        .context("ack record")?;
    assert_eq!(ack["actor"], "person:p-sun");
    assert!(ack["note"].as_str().unwrap_or("").contains("street-hook"));

    // The ladder stopped: the district's tier (+30 s) never comes. Only checkable when
    // the acknowledgement came before it was due (it does, but a very slow machine may
    // have got there first).
    if acked < opened + 30_000 {
        let deadline = opened + 30_000 + 1_500;
        wait_until(DEADLINE, || async move { now_ms() > deadline }).await;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(
            at(&hooks, "/district-hook").is_empty(),
            "the ladder did not stop"
        );
    }

    // Every delivery is in the audit trail, in the API and in QuestDB.
    let delivered = hooks.accepted().len() + ding.accepted().len();
    let audited = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    wait_until(DEADLINE, || {
        let sb = &sb;
        let audited = audited.clone();
        async move {
            let Ok(t) = get_json(sb, &format!("/api/v1/tickets/{id}")).await else {
                return false;
            };
            let n = t["audit"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|r| {
                            r["action"] == "notification"
                                && r["note"].as_str().unwrap_or("").contains("delivered")
                        })
                        .count()
                })
                .unwrap_or(0);
            audited.store(n, std::sync::atomic::Ordering::SeqCst);
            n == delivered
        }
    })
    .await;
    let audited = audited.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(audited, delivered, "deliveries in the audit trail");
    let d = get_json(&sb, &format!("/api/v1/tickets/{id}/deliveries")).await?;
    let states: Vec<&str> = d["deliveries"]
        .as_array()
        .context("deliveries")?
        .iter()
        .filter_map(|x| x["state"].as_str())
        .collect();
    assert_eq!(states.len(), delivered);
    assert!(states.iter().all(|s| *s == "delivered"), "{d}");
    assert!(
        !d.to_string().contains("13800000001"),
        "contacts masked: {d}"
    );
    let rows = sb
        .wait_count(
            &format!("SELECT count() FROM notification_events WHERE ticket_id = {id} AND outcome = 'delivered'"),
            delivered as i64,
            DEADLINE,
        )
        .await?;
    assert_eq!(rows, delivered as i64);
    let policy = get_json(&sb, "/api/v1/escalation/policy").await?;
    assert_eq!(policy[0]["tiers"][1]["notify"][0], "station_head");
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_across_a_restart_gets_each_notification_once() -> Result<()> {
    // A port nothing listens on until the receiver starts there.
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        l.local_addr()?
    };
    let dir = tempfile::tempdir()?;
    let policy = write_policy(
        dir.path(),
        r#"{ after = "0s", notify = ["on_call", "captains"] },"#,
    )?;
    let base = format!("http://{addr}");
    let mut sb = HubSandbox::start_with(estate_with_people(false, ROUND_THE_CLOCK), |c| {
        hooks_config(c, &base, None, &policy)
    })
    .await?;
    trap(&sb, "lift-1", now_ms()).await?;
    let retried = "steward_notify_attempts_total{channel=\"webhook\",outcome=\"retry\"}";
    let ok = wait_until(DEADLINE, || {
        let sb = &sb;
        async move { sb.metric(retried).await.unwrap_or(0.0) >= 1.0 }
    })
    .await;
    assert!(ok, "a failed attempt while the receiver is down");

    sb = sb.restart().await?;
    let ok = wait_until(DEADLINE, || {
        let sb = &sb;
        async move { sb.metric(retried).await.unwrap_or(0.0) >= 1.0 }
    })
    .await;
    assert!(ok, "the restarted hub keeps retrying");

    let rx = Receiver::start_on(addr, {
        let hook = webhook_check();
        let ding = dingtalk_check();
        Arc::new(move |r| {
            if r.path == "/robot/send" {
                ding(r)
            } else {
                hook(r)
            }
        })
    })
    .await?;
    let delivered = "steward_notify_deliveries{state=\"delivered\"}";
    let ok = wait_until(DEADLINE, || {
        let sb = &sb;
        async move { sb.metric(delivered).await.unwrap_or(0.0) >= 2.0 }
    })
    .await;
    assert!(
        ok,
        "both notifications delivered after the receiver came back"
    );
    assert_eq!(
        sb.metric("steward_notify_deliveries{state=\"pending\"}")
            .await,
        Some(0.0)
    );
    let keys: Vec<String> = rx
        .accepted()
        .iter()
        .map(|r| {
            if r.path == "/robot/send" {
                "ding".to_string()
            } else {
                r.header("x-steward-delivery").to_string()
            }
        })
        .collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(keys.len(), 2, "each notification exactly once: {keys:?}");
    assert_eq!(unique.len(), 2);
    sb.shutdown().await;
    Ok(())
}

/// The most recent local (UTC+8, Asia/Shanghai has no DST) 08:00 at least 5 minutes ago.
fn last_handover_ms() -> i64 {
    let cst = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!());
    let now = cst.timestamp_millis_opt(now_ms() - 5 * 60_000).unwrap();
    let mut day = now.date_naive();
    if now.hour() < 8 {
        day = day.pred_opt().unwrap_or(day);
    }
    let eight = day.and_hms_opt(8, 0, 0).unwrap_or_default();
    cst.from_local_datetime(&eight)
        .single()
        .map(|t| t.timestamp_millis())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_0800_handover_sends_0759_and_0801_to_different_people() -> Result<()> {
    let hooks = Receiver::start(webhook_check()).await;
    let dir = tempfile::tempdir()?;
    let policy = write_policy(dir.path(), r#"{ after = "0s", notify = ["on_call"] },"#)?;
    let sb = HubSandbox::start_with(estate_with_people(true, DAY_AND_NIGHT), |c| {
        hooks_config(c, &hooks.url(""), None, &policy)
    })
    .await?;
    let eight = last_handover_ms();
    trap(&sb, "lift-1", eight - 60_000).await?;
    trap(&sb, "lift-2", eight + 60_000).await?;
    wait_for("both shifts told", || {
        at(&hooks, "/night-hook").len() == 1 && at(&hooks, "/day-hook").len() == 1
    })
    .await?;
    let night = &at(&hooks, "/night-hook")[0];
    let day = &at(&hooks, "/day-hook")[0];
    assert_eq!(night["recipient"]["id"], "p-night");
    assert_eq!(day["recipient"]["id"], "p-day");
    assert_ne!(night["ticket_id"], day["ticket_id"]);
    let on_call = get_json(&sb, "/api/v1/stations/st-north/on-call").await?;
    assert!(
        on_call["on_call"].as_array().is_some_and(|a| a.len() == 1),
        "{on_call}"
    );
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_channels_and_policy_people_are_refused_at_start() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let policy = write_policy(
        dir.path(),
        r#"{ after = "0s", notify = ["on_call", "person:p-nobody"] },"#,
    )?;
    // No endpoint is configured, so every person's channel is unknown.
    let err = HubSandbox::start_with(estate_with_people(false, ROUND_THE_CLOCK), |c| {
        c.escalation.policy = Some(policy.clone());
    })
    .await
    .err()
    .context("the hub must refuse to start")?;
    let msg = format!("{err:#}");
    assert!(
        msg.contains("estate.toml: people[p-wang].channels: unknown channel `crew-hook`"),
        "{msg}"
    );
    assert!(
        msg.contains("p1.tiers[0].notify[1]: unknown person `p-nobody`"),
        "{msg}"
    );
    Ok(())
}
