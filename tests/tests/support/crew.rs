//! Helpers of the crew app tests: a crew token, a ticket once raised, its state and
//! audit trail over the API, a real JPEG.

use anyhow::{ensure, Result};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use steward_tests::{wait_until, HubSandbox};

pub const WAIT: Duration = Duration::from_secs(30);

pub async fn api(sb: &HubSandbox, path: &str) -> Result<Value> {
    let r = sb
        .http()
        .get(sb.api(path))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?;
    ensure!(r.status() == StatusCode::OK, "{path}: HTTP {}", r.status());
    Ok(r.json::<Value>().await?)
}

pub async fn crew_token(sb: &HubSandbox) -> Result<String> {
    let r = sb
        .http()
        .post(sb.api("/api/v1/tokens"))
        .bearer_auth(&sb.hub.admin_token)
        .json(&json!({"name": "north phone", "role": "crew", "station": "st-north"}))
        .send()
        .await?;
    ensure!(
        r.status() == StatusCode::CREATED,
        "token: HTTP {}",
        r.status()
    );
    let b: Value = r.json().await?;
    Ok(b["token"].as_str().unwrap_or_default().to_string())
}

pub async fn ticket_of(sb: &HubSandbox, device: &str, rule: &str) -> Result<i64> {
    let filter = steward_tickets::TicketFilter {
        device_id: Some(device.into()),
        rule_id: Some(rule.into()),
        ..Default::default()
    };
    let tickets = sb.hub.tickets.clone();
    let raised = wait_until(WAIT, || {
        let n = tickets.list(&filter).map(|t| t.len()).unwrap_or(0);
        async move { n == 1 }
    })
    .await;
    ensure!(raised, "no {rule} ticket for {device}");
    Ok(sb.hub.tickets.list(&filter)?[0].id)
}

/// Wait until the hub has ticket `id` in `state`; returns the ticket's detail.
pub async fn hub_state(sb: &HubSandbox, id: i64, state: &str) -> Result<Value> {
    let path = format!("/api/v1/tickets/{id}");
    let reached = wait_until(WAIT, || async {
        api(sb, &path)
            .await
            .is_ok_and(|t| t["ticket"]["state"] == state)
    })
    .await;
    let d = api(sb, &path).await?;
    ensure!(
        reached,
        "ticket {id} is not {state}: {}",
        d["ticket"]["state"]
    );
    Ok(d)
}

/// A real photo: a 1200x900 JPEG with a gradient, as a phone camera would send.
pub fn jpeg(w: u32, h: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut out = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(
        &mut std::io::Cursor::new(&mut out),
        image::ImageFormat::Jpeg,
    )?;
    Ok(out)
}

pub fn audit_states(d: &Value) -> Vec<String> {
    d["audit"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["to_state"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// POST a transition as the admin; returns the status and the body.
pub async fn move_to(sb: &HubSandbox, id: i64, body: Value) -> Result<(StatusCode, Value)> {
    let r = sb
        .http()
        .post(sb.api(&format!("/api/v1/tickets/{id}/transition")))
        .bearer_auth(&sb.hub.admin_token)
        .json(&body)
        .send()
        .await?;
    let s = r.status();
    Ok((s, r.json::<Value>().await.unwrap_or(Value::Null)))
}

pub fn message(b: &Value) -> &str {
    b["error"]["message"].as_str().unwrap_or_default()
}
