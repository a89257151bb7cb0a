//! The dispatcher's desk and residents following their reports, against a running hub
//! over real HTTP (docs/dispatch.md): a P1 from a phone call reaches the station's list
//! with its audit trail and caller, a transfer keeps the SLA clock, a resident report is
//! merged into it, duplicates are linked and cancelled; a resident files, tracks, and
//! rates once after the crew resolves; the report QR codes are a PNG and an SVG.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use steward_tests::{step, HubSandbox, TEST_ESTATE};

async fn call(
    sb: &HubSandbox,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut req = sb.http().request(method, sb.api(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status();
    Ok((status, r.json::<Value>().await.unwrap_or(Value::Null)))
}

async fn get(sb: &HubSandbox, path: &str, token: &str) -> anyhow::Result<(StatusCode, Value)> {
    call(sb, Method::GET, path, Some(token), None).await
}

async fn post(
    sb: &HubSandbox,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> anyhow::Result<(StatusCode, Value)> {
    call(sb, Method::POST, path, token, Some(body)).await
}

async fn token(sb: &HubSandbox, body: Value) -> anyhow::Result<String> {
    let (s, b) = post(
        sb,
        "/api/v1/tokens",
        Some(&sb.hub.admin_token),
        body.clone(),
    )
    .await?;
    anyhow::ensure!(s == StatusCode::CREATED, "creating {body}: {s} {b}");
    b["token"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("no token: {b}"))
}

fn message(b: &Value) -> &str {
    b["error"]["message"].as_str().unwrap_or("")
}

struct Cast {
    dispatcher: String,
    north: String,
    acme: String,
    manager: String,
}

async fn cast(sb: &HubSandbox) -> anyhow::Result<Cast> {
    Ok(Cast {
        dispatcher: token(sb, json!({"name": "hotline 1", "role": "dispatcher"})).await?,
        north: token(
            sb,
            json!({"name": "north", "role": "crew", "station": "st-north"}),
        )
        .await?,
        acme: token(
            sb,
            json!({"name": "acme", "role": "crew", "station": "st-acme"}),
        )
        .await?,
        manager: token(
            sb,
            json!({"name": "elm", "role": "manager", "compounds": ["cmp-1"]}),
        )
        .await?,
    })
}

fn call_body(priority: &str, category: &str) -> Value {
    json!({
        "priority": priority,
        "caller": {"name": "Wang Li", "phone": "139 1234 5678"},
        "compound": "cmp-1", "building": "b-1", "floor": "7",
        "location": "lift lobby east",
        "category": category, "description": "someone trapped in the lift",
        "actor": "Zhao"
    })
}

/// The desk's endpoints by role: only dispatchers and admins.
async fn only_the_desk_may(sb: &HubSandbox, c: &Cast) -> anyhow::Result<()> {
    let no = StatusCode::FORBIDDEN;
    for tok in [&c.north, &c.manager] {
        for (path, body) in [
            ("/api/v1/tickets", call_body("P1", "lift")),
            (
                "/api/v1/tickets/1/transfer",
                json!({"station": "st-acme", "reason": "x"}),
            ),
            ("/api/v1/tickets/1/merge", json!({"into": 2})),
            (
                "/api/v1/tickets/1/links",
                json!({"ticket": 2, "relation": "related"}),
            ),
            ("/api/v1/tickets/1/cancel", json!({"reason": "x"})),
        ] {
            let (s, b) = post(sb, path, Some(tok), body).await?;
            assert_eq!(s, no, "{path}: {b}");
            assert_eq!(b["error"]["code"], json!("forbidden"));
        }
    }
    // A dispatcher reads tickets and the estate, not tokens or ratings.
    for (path, want) in [
        ("/api/v1/tickets", StatusCode::OK),
        ("/api/v1/compounds", StatusCode::OK),
        ("/api/v1/me", StatusCode::OK),
        ("/api/v1/tokens", no),
    ] {
        let (s, b) = get(sb, path, &c.dispatcher).await?;
        assert_eq!(s, want, "{path}: {b}");
    }
    let (_, me) = get(sb, "/api/v1/me", &c.dispatcher).await?;
    assert_eq!(me["role"], json!("dispatcher"));
    Ok(())
}

/// A P1 from a call reaches the station with its audit trail; the caller is shown to
/// the station's crew and the desk, not to a manager. Returns the ticket id.
async fn a_call_becomes_a_p1(sb: &HubSandbox, c: &Cast) -> anyhow::Result<i64> {
    for (body, field) in [
        (
            json!({"priority": "P9", "caller": {"name": "a", "phone": "123"}, "compound": "cmp-1", "category": "lift", "description": "x"}),
            "priority",
        ),
        (
            json!({"priority": "P1", "caller": {"name": "a", "phone": "123"}, "compound": "cmp-9", "category": "lift", "description": "x"}),
            "compound",
        ),
        (
            json!({"priority": "P1", "caller": {"name": "a", "phone": "call me"}, "compound": "cmp-1", "category": "lift", "description": "x"}),
            "caller.phone",
        ),
        (
            json!({"priority": "P1", "caller": {"name": "a", "phone": "123"}, "compound": "cmp-1", "building": "b-9", "category": "lift", "description": "x"}),
            "building",
        ),
    ] {
        let (s, b) = post(sb, "/api/v1/tickets", Some(&c.dispatcher), body).await?;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{field}: {b}");
        assert!(message(&b).starts_with(field), "{field}: {b}");
    }
    let (s, t) = post(
        sb,
        "/api/v1/tickets",
        Some(&c.dispatcher),
        call_body("P1", "lift"),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let id = t["id"].as_i64().unwrap_or(0);
    assert_eq!(
        (&t["priority"], &t["station"], &t["kind"], &t["state"]),
        (
            &json!("P1"),
            &json!("st-north"),
            &json!("call"),
            &json!("open")
        )
    );
    let detail = t["detail"].as_str().unwrap_or("");
    assert!(
        detail.contains("floor 7") && detail.contains("lift lobby east"),
        "{t}"
    );
    assert!(
        !detail.contains("1234"),
        "no phone number in the ticket text: {t}"
    );
    // In the station's list, with the dispatcher in the audit trail.
    let (s, list) = get(sb, "/api/v1/tickets?station=st-north&priority=P1", &c.north).await?;
    assert_eq!(s, StatusCode::OK);
    assert!(
        list["tickets"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["id"] == json!(id))),
        "{list}"
    );
    let (s, d) = get(sb, &format!("/api/v1/tickets/{id}"), &c.north).await?;
    assert_eq!(s, StatusCode::OK, "{d}");
    assert_eq!(d["audit"][0]["action"], json!("raised"));
    assert_eq!(d["audit"][0]["actor"], json!("Zhao [hotline 1]"));
    assert_eq!(d["caller"]["phone"], json!("139 1234 5678"));
    assert_eq!(d["caller"]["source"], json!("phone"));
    let (_, d) = get(sb, &format!("/api/v1/tickets/{id}"), &c.manager).await?;
    assert_eq!(
        d["caller"],
        Value::Null,
        "a manager does not see the caller"
    );
    Ok(id)
}

/// A transfer keeps the SLA due times; the other station now has the ticket.
async fn a_transfer_keeps_the_clock(sb: &HubSandbox, c: &Cast, id: i64) -> anyhow::Result<()> {
    let (_, before) = get(sb, &format!("/api/v1/tickets/{id}"), &c.dispatcher).await?;
    let path = format!("/api/v1/tickets/{id}/transfer");
    let (s, b) = post(
        sb,
        &path,
        Some(&c.dispatcher),
        json!({"station": "st-9", "reason": "x"}),
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(message(&b).starts_with("station"), "{b}");
    let (s, t) = post(
        sb,
        &path,
        Some(&c.dispatcher),
        json!({"station": "st-acme", "reason": "Acme maintains this lift"}),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["station"], json!("st-acme"));
    for due in ["ack_due_ms", "on_site_due_ms", "resolve_due_ms"] {
        assert_eq!(t[due], before["ticket"][due], "{due} unchanged");
    }
    let (s, b) = post(
        sb,
        &path,
        Some(&c.dispatcher),
        json!({"station": "st-acme", "reason": "again"}),
    )
    .await?;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, _) = get(sb, &format!("/api/v1/tickets/{id}"), &c.north).await?;
    assert_eq!(s, StatusCode::FORBIDDEN, "north no longer holds it");
    let (s, d) = get(sb, &format!("/api/v1/tickets/{id}"), &c.acme).await?;
    assert_eq!(s, StatusCode::OK);
    assert!(d["audit"]
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["action"] == json!("transferred")
            && r["note"] == json!("from st-north to st-acme: Acme maintains this lift"))));
    Ok(())
}

/// A resident report merged into the call's ticket; a duplicate linked and cancelled.
async fn merge_link_cancel(sb: &HubSandbox, c: &Cast, id: i64) -> anyhow::Result<()> {
    let (s, r) = post(
        sb,
        "/api/v1/public/reports",
        None,
        json!({"compound": "cmp-1", "category": "lift", "description": "lift stopped between floors"}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let rid = r["ticket_id"].as_i64().unwrap_or(0);
    let code = r["tracking_code"].as_str().unwrap_or("").to_string();
    let (s, m) = post(
        sb,
        &format!("/api/v1/tickets/{rid}/merge"),
        Some(&c.dispatcher),
        json!({"into": id, "note": "same lift"}),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["source"]["state"], json!("cancelled"));
    assert_eq!(m["target"]["occurrences"], json!(2));
    let (_, src) = get(sb, &format!("/api/v1/tickets/{rid}"), &c.dispatcher).await?;
    let last = src["audit"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["note"], json!(format!("merged into #{id}: same lift")));
    let (_, dst) = get(sb, &format!("/api/v1/tickets/{id}"), &c.dispatcher).await?;
    assert!(dst["audit"]
        .as_array()
        .is_some_and(|a| a.iter().any(|r| r["action"] == json!("merged")
            && r["note"]
                .as_str()
                .is_some_and(|n| n.contains("lift stopped between floors")))));
    assert_eq!(dst["links"][0]["relation"], json!("merged"));
    // The resident now follows the ticket the report went into.
    let (s, tr) = call(
        sb,
        Method::GET,
        &format!("/api/v1/public/reports/{code}"),
        None,
        None,
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{tr}");
    assert_eq!(tr["status"], json!("open"));
    // A duplicate call: linked, then cancelled with its reason.
    let (_, dup) = post(
        sb,
        "/api/v1/tickets",
        Some(&c.dispatcher),
        call_body("P2", "lift"),
    )
    .await?;
    let did = dup["id"].as_i64().unwrap_or(0);
    let (s, l) = post(
        sb,
        &format!("/api/v1/tickets/{did}/links"),
        Some(&c.dispatcher),
        json!({"ticket": id, "relation": "duplicate"}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{l}");
    let (s, b) = post(
        sb,
        &format!("/api/v1/tickets/{did}/links"),
        Some(&c.dispatcher),
        json!({"ticket": id, "relation": "sibling"}),
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(message(&b).starts_with("relation"), "{b}");
    let (_, d) = get(sb, &format!("/api/v1/tickets/{did}"), &c.dispatcher).await?;
    assert_eq!(d["links"][0]["relation"], json!("duplicate"));
    assert_eq!(d["links"][0]["to"], json!(id));
    let cancel = format!("/api/v1/tickets/{did}/cancel");
    let (s, b) = post(sb, &cancel, Some(&c.dispatcher), json!({"reason": " "})).await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(message(&b).starts_with("reason"), "{b}");
    let (s, t) = post(
        sb,
        &cancel,
        Some(&c.dispatcher),
        json!({"reason": format!("duplicate of #{id}")}),
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["state"], json!("cancelled"));
    Ok(())
}

/// A resident files, tracks, and rates once after the crew resolves.
async fn a_resident_follows_and_rates(sb: &HubSandbox, c: &Cast) -> anyhow::Result<()> {
    let (s, r) = post(
        sb,
        "/api/v1/public/reports",
        None,
        json!({"compound": "cmp-2", "category": "gate", "description": "gate does not close",
               "contact": "flat 402, 138 0000 1111"}),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{r}");
    let id = r["ticket_id"].as_i64().unwrap_or(0);
    let code = r["tracking_code"].as_str().unwrap_or("").to_string();
    assert_eq!(code.len(), 10, "{r}");
    let track = format!("/api/v1/public/reports/{code}");
    let rate = format!("{track}/rating");
    let (s, tr) = call(sb, Method::GET, &track, None, None).await?;
    assert_eq!(s, StatusCode::OK, "{tr}");
    assert_eq!(
        (
            &tr["status"],
            &tr["category"],
            &tr["compound_name"],
            &tr["may_rate"]
        ),
        (
            &json!("open"),
            &json!("gate"),
            &json!("Oak Court"),
            &json!(false)
        )
    );
    let text = tr.to_string();
    assert!(
        !text.contains("flat 402") && !text.contains("138"),
        "no personal data: {text}"
    );
    let (s, b) = post(sb, &rate, None, json!({"stars": 5})).await?;
    assert_eq!(s, StatusCode::CONFLICT, "before resolution: {b}");
    for (to, note) in [
        ("acknowledged", ""),
        ("resolved", "replaced the gate closer"),
    ] {
        let (s, b) = post(
            sb,
            &format!("/api/v1/tickets/{id}/transition"),
            Some(&c.acme),
            json!({"to": to, "actor": "Li", "note": note, "failure_code": (to == "resolved").then_some("repaired")}),
        )
        .await?;
        assert_eq!(s, StatusCode::OK, "{to}: {b}");
    }
    let (_, tr) = call(sb, Method::GET, &track, None, None).await?;
    assert_eq!(tr["status"], json!("resolved"));
    assert_eq!(tr["closure_note"], json!("replaced the gate closer"));
    assert_eq!(tr["may_rate"], json!(true));
    let (s, b) = post(sb, &rate, None, json!({"stars": 9})).await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(message(&b).starts_with("stars"), "{b}");
    let (s, b) = post(sb, &rate, None, json!({"stars": 4, "comment": "quick"})).await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = post(sb, &rate, None, json!({"stars": 5})).await?;
    assert_eq!(s, StatusCode::CONFLICT, "a second rating: {b}");
    let (_, tr) = call(sb, Method::GET, &track, None, None).await?;
    assert_eq!((&tr["stars"], &tr["may_rate"]), (&json!(4), &json!(false)));
    // Codes that do not exist, and what is not a code.
    let (s, b) = call(
        sb,
        Method::GET,
        "/api/v1/public/reports/zzzzzzzzzz",
        None,
        None,
    )
    .await?;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    assert_eq!(b["error"]["code"], json!("not_found"));
    let (s, _) = post(
        sb,
        "/api/v1/public/reports/zzzzzzzzzz/rating",
        None,
        json!({"stars": 3}),
    )
    .await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = call(sb, Method::GET, "/api/v1/public/reports/x", None, None).await?;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(message(&b).starts_with("code"), "{b}");
    // The stars count for the station.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let (s, rt) = get(
        sb,
        &format!("/api/v1/reports/rating?of=st-acme&month={month}"),
        &sb.hub.admin_token,
    )
    .await?;
    assert_eq!(s, StatusCode::OK, "{rt}");
    assert_eq!(
        (&rt["resident_ratings"], &rt["resident_stars"]),
        (&json!(1), &json!(4.0))
    );
    Ok(())
}

/// The QR codes of the report form: a PNG that decodes, an SVG; the form page itself.
async fn qr_codes_and_the_form(sb: &HubSandbox) -> anyhow::Result<()> {
    let r = sb
        .http()
        .get(sb.api("/api/v1/compounds/cmp-1/report-qr.png"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    let png = r.bytes().await?;
    let img = image::load_from_memory_with_format(&png, image::ImageFormat::Png)?;
    assert!(
        img.width() >= 600 && img.width() == img.height(),
        "{}x{}",
        img.width(),
        img.height()
    );
    let r = sb
        .http()
        .get(sb.api("/api/v1/compounds/cmp-1/report-qr.svg"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("image/svg+xml")
    );
    let svg = r.text().await?;
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "{svg}");
    let r = sb
        .http()
        .get(sb.api("/api/v1/compounds/cmp-9/report-qr.png"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = sb
        .http()
        .get(sb.api("/report?compound=cmp-1"))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await?.contains("/report/report.js"));
    let r = sb.http().get(sb.api("/report/report.js")).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dispatch_desk_and_residents_following_their_reports() -> anyhow::Result<()> {
    // One hub (one QuestDB) for all steps, in this order: later ones use earlier tickets.
    let sb = HubSandbox::start_with(TEST_ESTATE, |c| {
        c.api.public_reports.per_client_burst = 1000;
        c.api.public_reports.global_burst = 1000;
    })
    .await?;
    let c = step("cast", cast(&sb)).await?;
    step("only the desk may", only_the_desk_may(&sb, &c)).await?;
    let id = step("a call becomes a P1", a_call_becomes_a_p1(&sb, &c)).await?;
    step(
        "a transfer keeps the clock",
        a_transfer_keeps_the_clock(&sb, &c, id),
    )
    .await?;
    step("merge, link, cancel", merge_link_cancel(&sb, &c, id)).await?;
    step(
        "a resident follows and rates",
        a_resident_follows_and_rates(&sb, &c),
    )
    .await?;
    step("qr codes and the form", qr_codes_and_the_form(&sb)).await?;
    sb.shutdown().await;
    Ok(())
}
