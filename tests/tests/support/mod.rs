//! Helpers shared by the alert stream and dashboard tests: a trapped passenger over MQTT,
//! and a small Server-Sent Events reader over a real HTTP response.

#![allow(dead_code)]

pub mod crew;

use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::time::Duration;
use steward_device_sim::{DeviceModel, Fault};
use steward_estate::DeviceKind;
use steward_tests::{now_ms, HubSandbox};

/// Publish a minute of normal lift service, then a passenger trapped between floors, as
/// `lift-1` over MQTT; the default rule pack raises a P1 `lift-trapped` ticket for it.
pub async fn trap_passenger(sb: &HubSandbox) -> Result<()> {
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    let mut model = DeviceModel::new("lift-1", DeviceKind::Lift, 11);
    let start = now_ms() - 5 * 60_000;
    let mut published = 0;
    for step in 0..30 {
        if step == 12 {
            model.set_fault(Some(Fault::LiftTrapped));
        }
        for m in model.tick(start + step * 5_000) {
            lift.publish(&m.topic, m.payload).await?;
            published += 1;
        }
    }
    lift.wait_acks(published).await?;
    lift.disconnect().await;
    Ok(())
}

/// One SSE event: its `id:`, `event:` and `data:` parsed as JSON.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<i64>,
    pub event: String,
    pub data: Value,
}

/// Reads events from a `text/event-stream` response; keep-alive comments are skipped.
pub struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> Self {
        SseReader {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, or an error if none comes within `within` (a bound on a failing
    /// test, not a timing assertion).
    pub async fn next(&mut self, within: Duration) -> Result<SseEvent> {
        loop {
            while let Some(pos) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..pos + 2).collect();
                let mut ev = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: Value::Null,
                };
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        ev.id = Some(v.trim().parse()?);
                    } else if let Some(v) = line.strip_prefix("event:") {
                        ev.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue;
                }
                ev.data = serde_json::from_str(&data)?;
                return Ok(ev);
            }
            let chunk = tokio::time::timeout(within, self.resp.chunk())
                .await
                .map_err(|_| anyhow!("no SSE event within {within:?}"))??;
            match chunk {
                Some(c) => self.buf.push_str(&String::from_utf8_lossy(&c)),
                None => bail!("SSE stream ended"),
            }
        }
    }

    /// Events until (and including) the first one `stop` accepts.
    pub async fn until(
        &mut self,
        within: Duration,
        stop: impl Fn(&SseEvent) -> bool,
    ) -> Result<Vec<SseEvent>> {
        let mut out = Vec::new();
        loop {
            let ev = self.next(within).await?;
            let done = stop(&ev);
            out.push(ev);
            if done {
                return Ok(out);
            }
        }
    }
}

/// Open the alert stream with the query `q` (the token goes in it as `access_token`)
/// and optional `Last-Event-ID` header.
pub async fn open_stream(sb: &HubSandbox, q: &str, last: Option<i64>) -> Result<SseReader> {
    let sep = if q.is_empty() { "" } else { "&" };
    let mut req = sb.http().get(sb.api(&format!(
        "/api/v1/alerts/stream?access_token={}{sep}{q}",
        sb.hub.admin_token
    )));
    if let Some(id) = last {
        req = req.header("Last-Event-ID", id.to_string());
    }
    let resp = req.send().await?;
    if resp.status() != reqwest::StatusCode::OK {
        bail!("stream: HTTP {}", resp.status());
    }
    let ty = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !ty.starts_with("text/event-stream") {
        bail!("stream: content-type {ty}");
    }
    Ok(SseReader::new(resp))
}

pub fn is_kind(ev: &SseEvent, kind: &str, rule: &str) -> bool {
    ev.data["kind"] == kind && ev.data["rule_id"] == rule
}

/// `steward_api_sse_clients` as `/metrics` reports it.
pub async fn sse_clients(sb: &HubSandbox) -> Option<i64> {
    sb.metric("steward_api_sse_clients").await.map(|v| v as i64)
}

/// `smoke-1` reports a fire alarm (`alarm` and `pre_alarm` true, 12.4 %/m obscuration)
/// over MQTT, then a payload the hub rejects as `out_of_range` (obscuration 500 %/m); the
/// default rule pack raises a P1 `smoke-fire-alarm` ticket.
pub async fn smoke_alarm(sb: &HubSandbox) -> Result<()> {
    let smoke = sb.device("smoke-1", "smoke-1-secret").await?;
    let now = now_ms();
    let alarm = serde_json::json!({"ts": now - 1_000, "seq": 1, "metrics": {
        "alarm": true, "pre_alarm": true, "obscuration_pct_per_m": 12.4, "co_ppm": 3.0,
        "temperature_c": 24.5, "battery_v": 9.1, "fault": false, "tamper": false}});
    let bad = serde_json::json!({"ts": now, "seq": 2, "metrics": {"obscuration_pct_per_m": 500.0}});
    for p in [alarm, bad] {
        smoke
            .publish("devices/smoke-1/telemetry", p.to_string().into_bytes())
            .await?;
    }
    smoke.wait_acks(2).await?;
    smoke.disconnect().await;
    Ok(())
}
