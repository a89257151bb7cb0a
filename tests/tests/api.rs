//! The HTTP API against a running hub: auth, estate and device endpoints, device state
//! fed by real MQTT traffic, rejects read back from QuestDB, parameter validation.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use steward_tests::{now_ms, wait_until, HubSandbox, TestClient};

async fn get(sb: &HubSandbox, path: &str) -> anyhow::Result<(StatusCode, Value)> {
    let r = sb
        .http()
        .get(sb.api(path))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?;
    let status = r.status();
    let body = r.json::<Value>().await.unwrap_or(Value::Null);
    Ok((status, body))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_serves_estate_state_rejects_and_metrics() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let http = sb.http();

    // Health, readiness and metrics need no token.
    let r = http.get(sb.api("/healthz")).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    let r = http.get(sb.api("/readyz")).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await?;
    assert_eq!(body["checks"]["questdb"], json!("ok"));
    assert_eq!(body["checks"]["sqlite"], json!("ok"));
    assert_eq!(body["checks"]["broker"], json!("ok"));

    // Everything under /api/v1 needs the token; one error shape.
    let r = http.get(sb.api("/api/v1/devices")).send().await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body: Value = r.json().await?;
    assert_eq!(body["error"]["code"], json!("unauthorized"));
    let r = http
        .get(sb.api("/api/v1/devices"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let (s, body) = get(&sb, "/api/v1/devices?kind=pump").await?;
    assert_eq!(s, StatusCode::OK);
    let ids: Vec<&str> = body["devices"]
        .as_array()
        .map(|a| a.iter().filter_map(|d| d["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec!["pump-1", "pump-9"]);
    let (_, body) = get(&sb, "/api/v1/devices/gate-1").await?;
    assert_eq!(
        body["station"],
        json!("st-acme"),
        "routed to the property company's station"
    );
    let (_, body) = get(&sb, "/api/v1/devices/lift-1").await?;
    assert_eq!(
        body["station"],
        json!("st-north"),
        "street fall-back station"
    );
    let (s, _) = get(&sb, "/api/v1/devices/ghost").await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, body) = get(&sb, "/api/v1/compounds").await?;
    assert_eq!(body["compounds"].as_array().map(Vec::len), Some(2));
    // Names next to the ids.
    let elm = &body["compounds"][0];
    assert_eq!(
        (
            &elm["id"],
            &elm["name"],
            &elm["station_name"],
            &elm["street_name"],
            &elm["community_name"]
        ),
        (
            &json!("cmp-1"),
            &json!("Elm Court"),
            &json!("North repair station"),
            &json!("Riverside"),
            &json!("Elm")
        ),
        "{body}"
    );
    let (_, body) = get(&sb, "/api/v1/liveness").await?;
    let gate = body["devices"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["id"] == json!("gate-1")).cloned())
        .unwrap_or_default();
    assert_eq!(gate["compound_name"], json!("Oak Court"), "{gate}");
    assert_eq!(gate["building_name"], json!("Block 2"), "{gate}");
    assert_eq!(gate["last_seen_ms"], Value::Null, "nothing heard yet");
    // Who the token is, and the catalogue the dashboard shows units from.
    let (s, me) = get(&sb, "/api/v1/me").await?;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (&me["role"], &me["may_move_tickets"]),
        (&json!("admin"), &json!(true))
    );
    let (_, cat) = get(&sb, "/api/v1/catalog").await?;
    let smoke = cat["kinds"]
        .as_array()
        .and_then(|k| k.iter().find(|k| k["kind"] == json!("smoke")).cloned())
        .unwrap_or_default();
    assert_eq!(smoke["key_metrics"][0], json!("alarm"), "{smoke}");
    let obscuration = smoke["metrics"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|m| m["name"] == json!("obscuration_pct_per_m"))
                .cloned()
        })
        .unwrap_or_default();
    assert_eq!(obscuration["unit"], json!("%/m"), "{smoke}");

    // Bad parameters get a 400 naming the parameter; injection attempts never reach SQL.
    for (path, name) in [
        ("/api/v1/devices?kind=fridge", "kind"),
        ("/api/v1/devices?colour=red", "colour"),
        ("/api/v1/rejects?limit=0", "limit"),
        ("/api/v1/rejects?limit=abc", "limit"),
        (
            "/api/v1/rejects?device_id=x%27%20OR%20%271%27%3D%271",
            "device_id",
        ),
        ("/api/v1/rejects?reason=bad_topic%27--", "reason"),
    ] {
        let (s, body) = get(&sb, path).await?;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(body["error"]["code"], json!("bad_request"));
        let msg = body["error"]["message"].as_str().unwrap_or("");
        assert!(msg.contains(name), "{path}: {msg}");
    }

    // Device state follows real MQTT traffic; rejects are readable by device.
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    let ts = now_ms() - 1000;
    lift.publish(
        "devices/lift-1/telemetry",
        json!({"ts": ts, "metrics": {"floor": 4, "door": "open"}}).to_string(),
    )
    .await?;
    lift.publish(
        "devices/lift-1/telemetry",
        json!({"ts": ts, "metrics": {"floor": "four"}}).to_string(),
    )
    .await?;
    lift.wait_acks(2).await?;
    let ok = wait_until(Duration::from_secs(10), || async {
        get(&sb, "/api/v1/devices/lift-1/state")
            .await
            .map(|(_, b)| b["state"]["values"]["floor"][0] == json!(4))
            .unwrap_or(false)
    })
    .await;
    assert!(ok, "state shows the latest floor");
    let (_, body) = get(&sb, "/api/v1/devices/lift-1/state").await?;
    assert_eq!(body["liveness"], json!("online"));
    assert_eq!(body["state"]["values"]["door"][0], json!("open"));
    sb.wait_count("SELECT count() FROM rejects", 1, Duration::from_secs(20))
        .await?;
    let (s, body) = get(
        &sb,
        "/api/v1/rejects?device_id=lift-1&reason=wrong_type&limit=5",
    )
    .await?;
    assert_eq!(s, StatusCode::OK);
    let rejects = body["rejects"].as_array().cloned().unwrap_or_default();
    assert_eq!(rejects.len(), 1, "{body}");
    assert_eq!(rejects[0]["reason"], json!("wrong_type"));
    assert!(rejects[0]["detail"]
        .as_str()
        .unwrap_or("")
        .contains("floor"));
    assert!(rejects[0]["payload"]
        .as_str()
        .unwrap_or("")
        .contains("four"));

    // Metrics cover broker and ingest.
    let text = http.get(sb.api("/metrics")).send().await?.text().await?;
    for name in [
        "steward_ingest_received_total",
        "steward_ingest_rejected_total{reason=\"wrong_type\"} 1",
        "steward_ingest_readings_total{kind=\"lift\"} 1",
        "steward_broker_connect_auth_total{result=\"ok\"}",
        "steward_ingest_rows_written_total",
        "steward_api_request_seconds_count{method=\"GET\",route=\"/api/v1/devices/{id}/state\",status=\"200\"}",
        "steward_rules_",
    ] {
        assert!(text.contains(name), "metrics lack {name}:\n{text}");
    }
    lift.disconnect().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_are_created_retired_and_rotated_through_the_api() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let http = sb.http();
    let r = http
        .post(sb.api("/api/v1/devices"))
        .bearer_auth(&sb.hub.admin_token)
        .json(&json!({"id": "smoke-77", "kind": "smoke", "vendor": "firesafe", "building": "b-1", "location": "loft"}))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await?;
    let secret = body["secret"].as_str().unwrap_or_default().to_string();
    assert!(secret.len() >= 32);
    let dev = sb.device("smoke-77", &secret).await?;
    dev.publish(
        "devices/smoke-77/telemetry",
        json!({"ts": now_ms(), "metrics": {"alarm": false}}).to_string(),
    )
    .await?;
    sb.wait_count(
        "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-77'",
        1,
        Duration::from_secs(20),
    )
    .await?;
    dev.disconnect().await;

    // Invalid bodies are refused with the field at fault.
    for (body, needle) in [
        (
            json!({"id": "x/y", "kind": "smoke", "vendor": "v", "building": "b-1"}),
            "id",
        ),
        (
            json!({"id": "ok-1", "kind": "toaster", "vendor": "v", "building": "b-1"}),
            "kind",
        ),
        (
            json!({"id": "ok-1", "kind": "smoke", "vendor": "v", "building": "nowhere"}),
            "building",
        ),
        (
            json!({"id": "ok-1", "kind": "smoke", "vendor": "v", "building": "b-1", "colour": 1}),
            "colour",
        ),
    ] {
        let r = http
            .post(sb.api("/api/v1/devices"))
            .bearer_auth(&sb.hub.admin_token)
            .json(&body)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let b: Value = r.json().await?;
        assert!(
            b["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(needle),
            "{b}"
        );
    }
    let r = http
        .post(sb.api("/api/v1/devices"))
        .bearer_auth(&sb.hub.admin_token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = http
        .post(sb.api("/api/v1/devices/smoke-77/rotate-secret"))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?;
    let new_secret = r.json::<Value>().await?["secret"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        TestClient::connect(&sb.mqtt_addr(), "smoke-77", "smoke-77", &secret)
            .await
            .is_err()
    );
    TestClient::connect(&sb.mqtt_addr(), "smoke-77", "smoke-77", &new_secret)
        .await?
        .disconnect()
        .await;
    let r = http
        .delete(sb.api("/api/v1/devices/smoke-77"))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        TestClient::connect(&sb.mqtt_addr(), "smoke-77", "smoke-77", &new_secret)
            .await
            .is_err()
    );
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crews_list_read_and_move_tickets_through_the_api() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let http = sb.http();
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    lift.publish(
        "devices/lift-1/telemetry",
        json!({"ts": now_ms(), "metrics": {"trapped": true, "occupied": true, "door": "closed"}})
            .to_string(),
    )
    .await?;
    let mut id = 0;
    let found = wait_until(Duration::from_secs(15), || async {
        get(
            &sb,
            "/api/v1/tickets?station=st-north&priority=P1&active=true",
        )
        .await
        .map(|(_, b)| b["tickets"].as_array().map(Vec::len) == Some(1))
        .unwrap_or(false)
    })
    .await;
    assert!(found, "P1 ticket listed for st-north");
    let (_, body) = get(&sb, "/api/v1/tickets?station=st-north&priority=P1").await?;
    id = body["tickets"][0]["id"].as_i64().unwrap_or(id);
    assert_eq!(body["tickets"][0]["rule_id"], json!("lift-trapped"));
    let (_, other) = get(&sb, "/api/v1/tickets?station=st-acme").await?;
    assert_eq!(
        other["tickets"].as_array().map(Vec::len),
        Some(0),
        "scoped by station"
    );
    // The rating says the unacknowledged P1 is pending, not in the figures yet.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let (s, rating) = get(
        &sb,
        &format!("/api/v1/reports/rating?of=st-north&month={month}"),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{rating}");
    assert_eq!(
        (&rating["pending"], &rating["pending_p1"], &rating["active"]),
        (&json!(1), &json!(1), &json!(1)),
        "{rating}"
    );

    let post = |path: String, body: Value| {
        let http = http.clone();
        let token = sb.hub.admin_token.clone();
        async move {
            let r = http
                .post(path)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await?;
            let status = r.status();
            let b: Value = r.json().await.unwrap_or(Value::Null);
            anyhow::Ok((status, b))
        }
    };
    let (s, t) = post(
        sb.api(&format!("/api/v1/tickets/{id}/transition")),
        json!({"to": "acknowledged", "actor": "crew-7", "note": "on our way"}),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["state"], json!("acknowledged"));
    // Skipping stages is refused with a clear reason.
    let (s, b) = post(
        sb.api(&format!("/api/v1/tickets/{id}/transition")),
        json!({"to": "closed", "actor": "crew-7"}),
    )
    .await?;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    assert!(b["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("illegal transition"));
    let (s, _) = post(
        sb.api(&format!("/api/v1/tickets/{id}/transition")),
        json!({"to": "teleported", "actor": "crew-7"}),
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, detail) = get(&sb, &format!("/api/v1/tickets/{id}")).await?;
    assert_eq!(s, StatusCode::OK);
    for (field, name) in [
        ("compound_name", "Elm Court"),
        ("building_name", "Block 1"),
        ("street_name", "Riverside"),
        ("station_name", "North repair station"),
    ] {
        assert_eq!(detail["ticket"][field], json!(name), "{detail}");
    }
    assert!(detail["ticket"]["location"].is_string(), "{detail}");
    assert_eq!(
        t["compound_name"],
        json!("Elm Court"),
        "the moved ticket: {t}"
    );
    assert!(detail["audit"]
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["actor"] == json!("crew-7"))));
    for (path, name) in [
        ("/api/v1/tickets?priority=P9", "priority"),
        ("/api/v1/tickets?state=lost", "state"),
        ("/api/v1/tickets?station=st%27--", "station"),
        ("/api/v1/tickets/abc", "id"),
        ("/api/v1/reports/rating?of=st-north", "month"),
    ] {
        let (s, b) = get(&sb, path).await?;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
        assert!(
            b["error"]["message"].as_str().unwrap_or("").contains(name),
            "{path}: {b}"
        );
    }
    let (s, _) = get(&sb, "/api/v1/tickets/999999").await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let month = {
        let (_, b) = get(&sb, &format!("/api/v1/tickets/{id}")).await?;
        b["ticket"]["opened_ms"].as_i64().unwrap_or(0)
    };
    assert!(month > 0);
    lift.disconnect().await;
    sb.shutdown().await;
    Ok(())
}
