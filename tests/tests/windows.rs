//! Maintenance windows and lift modes end to end: a window created over the API on a
//! pump's building keeps the pump's P2 from opening a ticket (counted, recorded as a
//! `suppressed` ticket event in QuestDB, listed under the window) while a fire alarm in
//! the same building still opens a P1; a lift reporting `mode = inspection` opens no
//! door-fault ticket, but a trapped passenger in it does.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use steward_tests::{now_ms, wait_until, HubSandbox};
use steward_tickets::{Priority, TicketFilter};

const DEADLINE: Duration = Duration::from_secs(30);

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .expect("valid time")
        .to_rfc3339()
}

async fn has_ticket(sb: &HubSandbox, device: &str, rule: &str) -> bool {
    let filter = TicketFilter {
        device_id: Some(device.into()),
        ..TicketFilter::default()
    };
    let tickets = sb.hub.tickets.clone();
    let rule = rule.to_string();
    wait_until(DEADLINE, || {
        let t = tickets.list(&filter).unwrap_or_default();
        let rule = rule.clone();
        async move { t.iter().any(|t| t.rule_id == rule) }
    })
    .await
}

async fn wait_metric(sb: &HubSandbox, series: &str, at_least: f64) -> bool {
    wait_until(DEADLINE, || async move {
        sb.metric(series).await.unwrap_or(0.0) >= at_least
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn windows_and_lift_modes_suppress_all_but_life_safety() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let http = sb.http();
    let admin = sb.hub.admin_token.clone();
    let manager = sb.hub.registry.create_token(&steward_estate::NewToken {
        name: "manager-cmp-1".into(),
        role: steward_estate::Role::Manager,
        scope: steward_estate::TokenScope {
            compounds: vec!["cmp-1".into()],
            ..Default::default()
        },
    })?;
    let now = now_ms();
    let window = json!({
        "id": "w-b1", "building": "b-1", "reason": "pump room overhaul",
        "from": rfc3339(now - 3_600_000), "to": rfc3339(now + 3_600_000),
    });

    // Bad input names the field; a manager may only read.
    for (body, want) in [
        (
            json!({"id": "w-x", "building": "b-9", "reason": "r", "from": rfc3339(now), "to": rfc3339(now + 1)}),
            "building: unknown building `b-9`",
        ),
        (
            json!({"id": "w-x", "building": "b-1", "reason": "r", "from": rfc3339(now), "to": rfc3339(now)}),
            "to: must be after `from`",
        ),
        (
            json!({"id": "w-x", "building": "b-1", "from": rfc3339(now), "to": rfc3339(now + 1)}),
            "reason: missing",
        ),
    ] {
        let r = http
            .post(sb.api("/api/v1/maintenance-windows"))
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let msg = r.json::<Value>().await?["error"]["message"].to_string();
        assert!(msg.contains(want), "want {want:?} in {msg}");
    }
    let r = http
        .post(sb.api("/api/v1/maintenance-windows"))
        .bearer_auth(&manager.token)
        .json(&window)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = http
        .post(sb.api("/api/v1/maintenance-windows"))
        .bearer_auth(&admin)
        .json(&window)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await?;
    assert_eq!(created["compound"], "cmp-1");
    assert_eq!(created["active"], true);
    let r = http
        .get(sb.api("/api/v1/maintenance-windows?active=true&device=pump-1"))
        .bearer_auth(&manager.token)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let listed: Value = r.json().await?;
    assert_eq!(listed["windows"][0]["id"], "w-b1", "{listed}");

    // The pump's bearing overheats in the window: no ticket, one suppressed record.
    let pump = sb.device("pump-1", "pump-1-secret").await?;
    pump.publish(
        "devices/pump-1/telemetry",
        json!({"ts": now_ms(), "metrics": {"bearing_temp_c": 92.0}}).to_string(),
    )
    .await?;
    pump.wait_acks(1).await?;
    assert!(
        wait_metric(
            &sb,
            "steward_rules_suppressed_total{reason=\"window\"}",
            1.0
        )
        .await,
        "the pump's P2 was not counted as suppressed"
    );
    // A fire alarm in the same building is life safety.
    let smoke = sb.device("smoke-1", "smoke-1-secret").await?;
    smoke
        .publish(
            "devices/smoke-1/telemetry",
            json!({"ts": now_ms(), "metrics": {"alarm": true}}).to_string(),
        )
        .await?;
    smoke.wait_acks(1).await?;
    assert!(
        has_ticket(&sb, "smoke-1", "smoke-fire-alarm").await,
        "no fire P1"
    );
    let fire = sb.hub.tickets.list(&TicketFilter {
        device_id: Some("smoke-1".into()),
        ..TicketFilter::default()
    })?;
    assert_eq!(fire[0].priority, Priority::P1);
    assert!(sb
        .hub
        .tickets
        .list(&TicketFilter {
            device_id: Some("pump-1".into()),
            ..TicketFilter::default()
        })?
        .is_empty());
    sb.wait_count(
        "SELECT count() FROM ticket_events WHERE kind = 'suppressed' AND audience = 'window:w-b1' \
         AND device_id = 'pump-1' AND rule_id = 'pump-bearing-hot'",
        1,
        DEADLINE,
    )
    .await?;
    let r = http
        .get(sb.api("/api/v1/maintenance-windows/w-b1/suppressed"))
        .bearer_auth(&manager.token)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let sup: Value = r.json().await?;
    assert_eq!(sup["count"], 1, "{sup}");
    assert_eq!(sup["suppressed"][0]["rule_id"], "pump-bearing-hot", "{sup}");

    // The window goes; the lift in the same building reports inspection mode.
    let r = http
        .delete(sb.api("/api/v1/maintenance-windows/w-b1"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    let t0 = now_ms();
    lift.publish(
        "devices/lift-1/telemetry",
        json!({"ts": t0, "metrics": {"mode": "inspection"}}).to_string(),
    )
    .await?;
    for i in 1..=3 {
        lift.publish(
            "devices/lift-1/events",
            json!({"ts": t0 + i, "event": "door_fault"}).to_string(),
        )
        .await?;
    }
    lift.wait_acks(4).await?;
    assert!(
        wait_metric(
            &sb,
            "steward_rules_suppressed_total{reason=\"device_mode\"}",
            1.0
        )
        .await,
        "the lift's door faults were not suppressed"
    );
    lift.publish(
        "devices/lift-1/events",
        json!({"ts": t0 + 10, "event": "trapped"}).to_string(),
    )
    .await?;
    lift.wait_acks(5).await?;
    assert!(
        has_ticket(&sb, "lift-1", "lift-trapped").await,
        "no trapped P1"
    );
    let lift_tickets = sb.hub.tickets.list(&TicketFilter {
        device_id: Some("lift-1".into()),
        ..TicketFilter::default()
    })?;
    assert!(
        lift_tickets.iter().all(|t| t.rule_id != "lift-door-fault"),
        "{lift_tickets:?}"
    );
    sb.wait_count(
        "SELECT count() FROM ticket_events WHERE kind = 'suppressed' AND audience = 'mode:inspection' \
         AND device_id = 'lift-1'",
        1,
        DEADLINE,
    )
    .await?;
    sb.shutdown().await;
    Ok(())
}
