//! Planned rounds against a running hub (docs/rounds.md): the schedule file makes this
//! month's smoke detector rounds at start, a detector's `test` event over MQTT closes its
//! item with the evidence, a crew ticks the other item by hand (within its station only),
//! the work order is resolved, and the PM-compliance report (JSON and CSV) counts it.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use steward_tests::{now_ms, HubSandbox, TEST_ESTATE};

const SCHEDULES: &str = r#"
[[schedule]]
id = "smoke-monthly"
name = "Smoke detector function test"
source = "GB 25201-2010"
kinds = ["smoke"]
cadence = "monthly"
by = "station"
# Longer than any month, so the round is due whatever day the test runs.
complete_within = "31days"
[[schedule.item]]
id = "function-test"
text = "Detector tested and alarmed"
proof = { event = "test" }
[[schedule.item]]
id = "visual"
text = "Detector clean and undamaged"
"#;

async fn call(
    sb: &HubSandbox,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value, String)> {
    let mut req = sb.http().request(method, sb.api(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status();
    let text = r.text().await?;
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok((status, json, text))
}

/// GET `path` until `done` holds for its body, within a generous deadline.
async fn poll(
    sb: &HubSandbox,
    path: &str,
    token: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, b, _) = call(sb, Method::GET, path, token, None).await?;
        if done(&b) {
            return Ok(b);
        }
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "GET {path}: still {b} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn round_of<'a>(list: &'a Value, asset: &str) -> Option<&'a Value> {
    list["rounds"]
        .as_array()?
        .iter()
        .find(|r| r["asset"] == json!(asset))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rounds_are_made_proved_ticked_and_reported() -> anyhow::Result<()> {
    let sb = HubSandbox::start_with(TEST_ESTATE, |c| {
        let dir = c
            .rules
            .database
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_default();
        let path = dir.join("rounds.toml");
        std::fs::write(&path, SCHEDULES).expect("write schedules");
        c.rounds.schedules = Some(path);
    })
    .await?;
    let admin = sb.hub.admin_token.clone();
    let month = chrono::Utc::now().format("%Y-%m").to_string();

    // The rounds of this month exist right after the start, one per smoke detector.
    let list = poll(&sb, "/api/v1/rounds?status=open", &admin, |b| {
        round_of(b, "smoke-1").is_some() && round_of(b, "smoke-2").is_some()
    })
    .await?;
    let round = round_of(&list, "smoke-1").expect("smoke-1 round").clone();
    assert_eq!(round["period"], json!(month));
    assert_eq!(round["station"], json!("st-north"));
    let id = round["id"].as_i64().expect("round id");
    let ticket = round["ticket_id"].as_i64().expect("work order");
    let (s, t, _) = call(
        &sb,
        Method::GET,
        &format!("/api/v1/tickets/{ticket}"),
        &admin,
        None,
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["ticket"]["ticket_kind"], json!("work_order"), "{t}");

    // The detector's self-test proves the first item, with the evidence.
    let dev = sb.device("smoke-1", "smoke-1-secret").await?;
    let ev = json!({"ts": now_ms(), "event": "test", "data": {"result": "pass"}});
    dev.publish("devices/smoke-1/events", ev.to_string())
        .await?;
    let detail = poll(&sb, &format!("/api/v1/rounds/{id}"), &admin, |b| {
        b["items"][0]["state"] == json!("done")
    })
    .await?;
    assert_eq!(detail["items"][0]["actor"], json!("telemetry"));
    let evidence = detail["items"][0]["evidence"].as_str().unwrap_or_default();
    assert!(evidence.contains("`test` event from smoke-1"), "{evidence}");

    // A crew of another station may not tick it; bad input is refused with a reason.
    let (s, b, _) = call(
        &sb,
        Method::POST,
        "/api/v1/tokens",
        &admin,
        Some(json!({"name": "acme tablet", "role": "crew", "station": "st-acme"})),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let acme = b["token"].as_str().expect("token").to_string();
    let tick = format!("/api/v1/rounds/{id}/items/visual");
    let done = json!({"result": "done", "note": "clean", "actor": "wang"});
    let (s, b, _) = call(&sb, Method::POST, &tick, &acme, Some(done.clone())).await?;
    assert_eq!(s, StatusCode::FORBIDDEN, "{b}");
    let (s, b, _) = call(
        &sb,
        Method::POST,
        &tick,
        &admin,
        Some(json!({"result": "failed"})),
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("note"),
        "{b}"
    );
    let (s, b, _) = call(
        &sb,
        Method::POST,
        &tick,
        &admin,
        Some(json!({"result": "maybe"})),
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b, _) = call(
        &sb,
        Method::POST,
        &format!("/api/v1/rounds/{id}/items/no-such-item"),
        &admin,
        Some(done.clone()),
    )
    .await?;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");

    // The station's crew ticks it: the round is done and its work order resolved.
    let (s, b, _) = call(
        &sb,
        Method::POST,
        "/api/v1/tokens",
        &admin,
        Some(json!({"name": "north tablet", "role": "crew", "station": "st-north"})),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let north = b["token"].as_str().expect("token").to_string();
    let (s, b, _) = call(&sb, Method::POST, &tick, &north, Some(done.clone())).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["round"]["status"], json!("done"), "{b}");
    assert_eq!(b["items"][1]["actor"], json!("wang [north tablet]"), "{b}");
    let (s, b, _) = call(&sb, Method::POST, &tick, &north, Some(done)).await?;
    assert_eq!(s, StatusCode::CONFLICT, "ticked twice: {b}");
    let (_, t, _) = call(
        &sb,
        Method::GET,
        &format!("/api/v1/tickets/{ticket}"),
        &admin,
        None,
    )
    .await?;
    assert_eq!(t["ticket"]["state"], json!("resolved"), "{t}");

    // The month's report: one round of the station, on time; the compound's the same.
    let path = format!("/api/v1/reports/pm-compliance?month={month}&station=st-north");
    let (s, r, _) = call(&sb, Method::GET, &path, &north, None).await?;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["total"]["rounds"], json!(1), "{r}");
    assert_eq!(r["total"]["on_time"], json!(1), "{r}");
    assert_eq!(r["total"]["compliance"], json!(1.0), "{r}");
    assert_eq!(
        r["schedules"][0]["schedule_id"],
        json!("smoke-monthly"),
        "{r}"
    );
    let path = format!("/api/v1/reports/pm-compliance.csv?month={month}&compound=cmp-1");
    let (s, _, csv) = call(&sb, Method::GET, &path, &admin, None).await?;
    assert_eq!(s, StatusCode::OK, "{csv}");
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "scope,month,schedule_id,rounds,on_time,late,overdue,in_progress,with_failures,compliance"
    );
    assert_eq!(
        lines[1],
        format!("cmp-1,{month},smoke-monthly,1,1,0,0,0,0,1.0000")
    );
    assert_eq!(lines[2], format!("cmp-1,{month},total,1,1,0,0,0,0,1.0000"));
    // Out of scope and malformed requests.
    let path = format!("/api/v1/reports/pm-compliance?month={month}&station=st-north");
    let (s, _, _) = call(&sb, Method::GET, &path, &acme, None).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b, _) = call(
        &sb,
        Method::GET,
        "/api/v1/reports/pm-compliance?month=2026-13&station=st-north",
        &admin,
        None,
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b, _) = call(
        &sb,
        Method::GET,
        &format!("/api/v1/reports/pm-compliance?month={month}"),
        &admin,
        None,
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // The acme crew sees only its own station's round.
    let (s, b, _) = call(&sb, Method::GET, "/api/v1/rounds", &acme, None).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    let assets: Vec<&str> = b["rounds"]
        .as_array()
        .map(|a| a.iter().filter_map(|r| r["asset"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(assets, vec!["smoke-2"]);
    // The schedules are listed as loaded.
    let (s, b, _) = call(&sb, Method::GET, "/api/v1/rounds/schedules", &admin, None).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["schedules"][0]["id"], json!("smoke-monthly"), "{b}");
    sb.shutdown().await;
    Ok(())
}
