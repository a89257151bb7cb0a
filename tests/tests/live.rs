//! The live alert stream and the history endpoints against a running hub: SSE resume with
//! Last-Event-ID replays exactly the missed events and hands over to live ones with no gap
//! or duplicate, filters, parameter errors; downsampled history from a real QuestDB fed
//! over MQTT, checked bucket by bucket, and injection attempts refused with a 400.

mod support;

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use steward_tests::{now_ms, wait_until, HubSandbox};
use support::{is_kind, open_stream, sse_clients, trap_passenger, SseEvent};

const WAIT: Duration = Duration::from_secs(30);

async fn transition(sb: &HubSandbox, id: i64, to: &str) -> anyhow::Result<()> {
    let r = sb
        .http()
        .post(sb.api(&format!("/api/v1/tickets/{id}/transition")))
        .bearer_auth(&sb.hub.admin_token)
        .json(&if to == "resolved" {
            json!({"to": to, "actor": "crew-7", "note": "test", "failure_code": "other"})
        } else {
            json!({"to": to, "actor": "crew-7", "note": "test"})
        })
        .send()
        .await?;
    anyhow::ensure!(
        r.status() == StatusCode::OK,
        "transition {to}: {}",
        r.status()
    );
    Ok(())
}

async fn get(sb: &HubSandbox, path: &str) -> anyhow::Result<(StatusCode, Value)> {
    let r = sb
        .http()
        .get(sb.api(path))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?;
    let status = r.status();
    Ok((status, r.json::<Value>().await.unwrap_or(Value::Null)))
}

fn ids(evs: &[SseEvent]) -> Vec<i64> {
    evs.iter().filter_map(|e| e.id).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_stream_resumes_without_gap_or_duplicate_and_filters() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;

    // A live client sees the P1 ticket being raised.
    let mut a = open_stream(&sb, "", None).await?;
    assert!(
        wait_until(WAIT, || async { sse_clients(&sb).await == Some(1) }).await,
        "the connected client is counted"
    );
    trap_passenger(&sb).await?;
    let seen = a
        .until(WAIT, |e| is_kind(e, "raised", "lift-trapped"))
        .await?;
    let raised = seen.last().cloned().expect("raised event");
    assert_eq!(raised.event, "ticket");
    assert_eq!(raised.data["priority"], json!("P1"));
    assert_eq!(raised.data["station"], json!("st-north"));
    assert_eq!(raised.data["event_id"], json!(raised.id));
    let ticket = raised.data["ticket_id"].as_i64().expect("ticket id");
    let last_seen = raised.id.expect("events carry an id");
    drop(a);
    assert!(
        wait_until(WAIT, || async { sse_clients(&sb).await == Some(0) }).await,
        "a dropped client is no longer counted"
    );

    // While it is away, the crew acknowledges and dispatches.
    transition(&sb, ticket, "acknowledged").await?;
    transition(&sb, ticket, "dispatched").await?;

    // Reconnecting with Last-Event-ID replays exactly what it missed, from the log...
    let mut b = open_stream(&sb, "", Some(last_seen)).await?;
    let replayed = b
        .until(WAIT, |e| {
            e.data["kind"] == "transition" && e.data["state"] == "dispatched"
        })
        .await?;
    let dispatched_id = replayed.last().and_then(|e| e.id).expect("id");
    let logged: Vec<i64> = sb
        .hub
        .tickets
        .events_after(last_seen, 10_000)?
        .into_iter()
        .filter_map(|e| e.event_id)
        .filter(|id| *id <= dispatched_id)
        .collect();
    assert_eq!(
        ids(&replayed),
        logged,
        "replay is the log after the last id"
    );
    assert_eq!(logged.first(), Some(&(last_seen + 1)), "nothing skipped");
    assert!(replayed
        .iter()
        .any(|e| e.data["kind"] == "transition" && e.data["state"] == "acknowledged"));

    // ...then goes on with live events: ids strictly increasing and equal to the log.
    transition(&sb, ticket, "on_site").await?;
    let live = b
        .until(WAIT, |e| {
            e.data["kind"] == "transition" && e.data["state"] == "on_site"
        })
        .await?;
    let on_site_id = live.last().and_then(|e| e.id).expect("id");
    let all: Vec<i64> = ids(&replayed).into_iter().chain(ids(&live)).collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "no duplicate: {all:?}");
    let logged: Vec<i64> = sb
        .hub
        .tickets
        .events_after(last_seen, 10_000)?
        .into_iter()
        .filter_map(|e| e.event_id)
        .filter(|id| *id <= on_site_id)
        .collect();
    assert_eq!(all, logged, "no gap across the hand-over");

    // The query parameter works like the header (for clients that cannot set headers).
    let mut c = open_stream(&sb, &format!("last_event_id={last_seen}"), None).await?;
    let again = c.until(WAIT, |e| e.id == Some(on_site_id)).await?;
    assert_eq!(ids(&again), all);

    // An id from another log (say, a replaced ticket database) resumes after the newest
    // instead of skipping live events until the ids catch up.
    let mut foreign = open_stream(&sb, "", Some(on_site_id + 1_000_000)).await?;
    transition(&sb, ticket, "resolved").await?;
    let resolved = foreign
        .until(WAIT, |e| {
            e.data["kind"] == "transition" && e.data["state"] == "resolved"
        })
        .await?;
    assert!(
        resolved.iter().all(|e| e.id > Some(on_site_id)),
        "{resolved:?}"
    );

    // Filters: a stream for the other station replays none of lift-1's events and gets the
    // next event of its own station first.
    let mut acme = open_stream(&sb, "station=st-acme&last_event_id=0", None).await?;
    let mut north = open_stream(
        &sb,
        "station=st-north&compound=cmp-1&priority=P1&last_event_id=0",
        None,
    )
    .await?;
    let first_north = north.next(WAIT).await?;
    assert_eq!(first_north.data["device_id"], json!("lift-1"));
    assert_eq!(first_north.data["kind"], json!("raised"));
    let smoke = sb.device("smoke-2", "smoke-2-secret").await?;
    smoke
        .publish(
            "devices/smoke-2/telemetry",
            json!({"ts": now_ms(), "metrics": {"alarm": true}}).to_string(),
        )
        .await?;
    smoke.wait_acks(1).await?;
    let first_acme = acme.next(WAIT).await?;
    assert_eq!(first_acme.data["station"], json!("st-acme"));
    assert_eq!(first_acme.data["compound"], json!("cmp-2"));

    // Bad parameters get a 400 naming them; the token is required.
    let token = &sb.hub.admin_token;
    for (q, name) in [
        ("priority=P9", "priority"),
        ("station=st'%20OR%201=1", "station"),
        ("compound=a%3Bb", "compound"),
        ("last_event_id=abc", "last_event_id"),
        ("last_event_id=-4", "last_event_id"),
        ("since=5", "since"),
    ] {
        let r = sb
            .http()
            .get(sb.api(&format!("/api/v1/alerts/stream?access_token={token}&{q}")))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
        let body: Value = r.json().await?;
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(name), "{q}: {msg}");
    }
    let r = sb
        .http()
        .get(sb.api("/api/v1/alerts/stream"))
        .bearer_auth(token)
        .header("Last-Event-ID", "x1")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    for q in ["", "?access_token=wrong-token-wrong-token"] {
        let r = sb
            .http()
            .get(sb.api(&format!("/api/v1/alerts/stream{q}")))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{q}");
    }
    // The query token is only for the stream.
    let r = sb
        .http()
        .get(sb.api(&format!("/api/v1/tickets?access_token={token}")))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // Streams still open end when the hub stops, instead of holding up its shutdown.
    sb.shutdown().await;
    let end = loop {
        if let Err(e) = b.next(WAIT).await {
            break e.to_string();
        }
    };
    assert!(!end.contains("no SSE event within"), "stream ended: {end}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_downsampled_from_questdb_and_refuses_injection() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    // Two one-minute buckets of known readings, two hours ago.
    // Buckets are aligned to the calendar (UTC): start on a ten-minute boundary so that
    // 1m and 2m buckets both begin at t0.
    let t0 = (now_ms() - 2 * 3_600_000) / 600_000 * 600_000;
    let readings = [
        (t0, 1.0, true),
        (t0 + 10_000, 2.0, true),
        (t0 + 20_000, 6.0, false),
        (t0 + 60_000, 5.0, false),
        (t0 + 90_000, 7.0, true),
    ];
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    for (i, (ts, speed, moving)) in readings.iter().enumerate() {
        lift.publish(
            "devices/lift-1/telemetry",
            json!({"ts": ts, "seq": i, "metrics": {"speed_m_s": speed, "moving": moving}})
                .to_string(),
        )
        .await?;
    }
    lift.publish(
        "devices/lift-1/events",
        json!({"ts": t0 + 30_000, "event": "door_fault", "data": {"door": "front"}}).to_string(),
    )
    .await?;
    lift.wait_acks(readings.len() as u64 + 1).await?;
    sb.wait_count(
        "SELECT count() FROM lift_telemetry WHERE device_id = 'lift-1'",
        readings.len() as i64,
        WAIT,
    )
    .await?;
    sb.wait_count(
        "SELECT count() FROM device_events WHERE device_id = 'lift-1'",
        1,
        WAIT,
    )
    .await?;

    let (from, to) = (t0 - 60_000, t0 + 180_000);
    let (s, body) = get(
        &sb,
        &format!("/api/v1/devices/lift-1/history?metric=speed_m_s&from={from}&to={to}&every=1m"),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["type"], json!("number"));
    assert_eq!(body["every"], json!("1m"));
    assert_eq!(
        body["points"],
        json!([
            {"ts_ms": t0, "avg": 3.0, "min": 1.0, "max": 6.0, "count": 3},
            {"ts_ms": t0 + 60_000, "avg": 6.0, "min": 5.0, "max": 7.0, "count": 2},
        ])
    );
    // Booleans: the bucket's last value.
    let (s, body) = get(
        &sb,
        &format!("/api/v1/devices/lift-1/history?metric=moving&from={from}&to={to}&every=1m"),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["points"],
        json!([{"ts_ms": t0, "value": false}, {"ts_ms": t0 + 60_000, "value": true}])
    );
    // One bucket over both minutes.
    let (_, body) = get(
        &sb,
        &format!(
            "/api/v1/devices/lift-1/history?metric=speed_m_s&from={t0}&to={}&every=2m",
            t0 + 120_000
        ),
    )
    .await?;
    assert_eq!(body["points"][0]["avg"], json!(4.2));
    assert_eq!(body["points"][0]["count"], json!(5));

    // The compound's lifts, one series per device.
    let (s, body) = get(
        &sb,
        &format!("/api/v1/compounds/cmp-1/history?metric=speed_m_s&from={from}&to={to}&every=1m"),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["kind"], json!("lift"));
    assert_eq!(body["devices"], json!(["lift-1"]));
    assert_eq!(body["series"]["lift-1"][1]["avg"], json!(6.0));
    let (s, body) = get(&sb, "/api/v1/compounds/cmp-1/history?metric=mode").await?;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .starts_with("kind:"));
    let (s, _) = get(&sb, "/api/v1/compounds/cmp-9/history?metric=speed_m_s").await?;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Events of the device.
    let (s, body) = get(
        &sb,
        &format!("/api/v1/devices/lift-1/events?from={from}&to={to}"),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        body["events"],
        json!([{"ts_ms": t0 + 30_000, "event": "door_fault", "data": {"door": "front"}}])
    );

    // Injection attempts and other bad parameters: 400 naming the parameter.
    for (path, name) in [
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s%22)%20FROM%20lift_telemetry;--",
            "metric",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s'%20OR%20'1'='1",
            "metric",
        ),
        ("/api/v1/devices/lift-1/history?metric=flow_m3h", "metric"),
        ("/api/v1/devices/lift-1/history", "metric"),
        (
            "/api/v1/devices/lift-1'%20OR%20'1'='1/history?metric=speed_m_s",
            "id",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s&every=1m;DROP%20TABLE%20x",
            "every",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s&every=1y",
            "every",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s&from=1%20OR%201=1",
            "from",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s&to=now()",
            "to",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s&from=0&to=100000000000",
            "from",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s&from=0&to=86400000&every=1s",
            "every",
        ),
        (
            "/api/v1/devices/lift-1/history?metric=speed_m_s&table=x",
            "table",
        ),
        ("/api/v1/compounds/cmp-1'--/history?metric=speed_m_s", "id"),
        (
            "/api/v1/compounds/cmp-1/history?metric=speed_m_s&kind=lift'--",
            "kind",
        ),
        ("/api/v1/compounds/cmp-1/history?metric=x%22;--", "metric"),
        ("/api/v1/devices/lift-1/events?from=abc", "from"),
        ("/api/v1/devices/lift-1/events?limit=1;--", "limit"),
    ] {
        let (s, body) = get(&sb, path).await?;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains(name), "{path}: {msg}");
    }
    let (s, _) = get(&sb, "/api/v1/devices/lift-9/history?metric=speed_m_s").await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The tables are still there after all that.
    assert_eq!(
        sb.count("SELECT count() FROM lift_telemetry WHERE device_id = 'lift-1'")
            .await?,
        readings.len() as i64
    );
    sb.shutdown().await;
    Ok(())
}
