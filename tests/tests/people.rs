//! People of the estate over real HTTP (issue 13): who is on call (the 08:00 handover, an
//! override), a station's crew, the people list by role, contact masking, the coverage
//! report, and building captains: their hazard reports and that they can do nothing else.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use steward_tests::{step, HubSandbox, TEST_ESTATE};

const PEOPLE: &str = r#"
[district]
id = "dist-1"
name = "Riverside District"
duty_officer = "p-zhou"

[[people]]
id = "p-wang"
name = "Wang Wu"
phone = "13800000001"
email = "wang@example.com"
channels = []
[[people]]
id = "p-li"
name = "Li Si"
phone = "13800000002"
[[people]]
id = "p-zhao"
name = "Zhao Liu"
phone = "13800000003"
[[people]]
id = "p-chen"
name = "Chen Qi"
phone = "13800000004"
[[people]]
id = "p-qian"
name = "Qian Ba"
[[people]]
id = "p-sun"
name = "Sun Jiu"
phone = "13800000006"
[[people]]
id = "p-zhou"
name = "Zhou Shi"

[[crews]]
id = "crew-north-a"
name = "North crew A"
station = "st-north"
members = ["p-wang", "p-li"]

[[grid_cells]]
id = "grid-1"
name = "Grid 1"
street = "street-1"
manager = "p-qian"
compounds = ["cmp-1", "cmp-2"]

[[captains]]
person = "p-chen"
buildings = ["b-1"]

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
  person = "p-li"
  [[rotas.overrides]]
  from = "2026-12-24T08:00"
  to = "2026-12-25T08:00"
  person = "p-zhao"
"#;

fn estate() -> String {
    let base = TEST_ESTATE
        .as_str()
        .replacen(
            "id = \"st-north\"\nname = \"North repair station\"\n",
            "id = \"st-north\"\nname = \"North repair station\"\nhead = \"p-zhao\"\n",
            1,
        )
        .replacen(
            "fallback_station = \"st-north\"\n",
            "fallback_station = \"st-north\"\nduty_officer = \"p-sun\"\n",
            1,
        )
        .replacen(
            "id = \"cmp-1\"\nname = \"Elm Court\"\ncommunity = \"com-1\"\n",
            "id = \"cmp-1\"\nname = \"Elm Court\"\ncommunity = \"com-1\"\nmanagement = \"state_fallback\"\ntakeover_date = \"2025-06-01\"\n",
            1,
        );
    format!("timezone = \"Asia/Shanghai\"\n{base}\n{PEOPLE}")
}

async fn call(
    sb: &HubSandbox,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> anyhow::Result<(StatusCode, Value)> {
    let mut req = sb.http().request(method, sb.api(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await?;
    let status = r.status();
    Ok((status, r.json::<Value>().await.unwrap_or(Value::Null)))
}

async fn get(sb: &HubSandbox, path: &str, token: &str) -> anyhow::Result<(StatusCode, Value)> {
    call(sb, Method::GET, path, token, None).await
}

async fn token(sb: &HubSandbox, body: Value) -> anyhow::Result<(i64, String)> {
    let (s, b) = call(
        sb,
        Method::POST,
        "/api/v1/tokens",
        &sb.hub.admin_token,
        Some(body.clone()),
    )
    .await?;
    anyhow::ensure!(s == StatusCode::CREATED, "creating {body}: {s} {b}");
    Ok((
        b["id"].as_i64().unwrap_or_default(),
        b["token"].as_str().unwrap_or_default().to_string(),
    ))
}

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

struct Cast {
    admin: String,
    north: String,
    acme: String,
    manager: String,
    vendor: String,
    captain: String,
    captain_id: i64,
    anonymous_captain: String,
    anonymous_captain_id: i64,
}

async fn cast(sb: &HubSandbox) -> anyhow::Result<Cast> {
    let crew = |station: &str| json!({"name": station, "role": "crew", "station": station});
    let (_, north) = token(sb, crew("st-north")).await?;
    let (_, acme) = token(sb, crew("st-acme")).await?;
    let (_, manager) = token(
        sb,
        json!({"name": "m", "role": "manager", "compounds": ["cmp-1"]}),
    )
    .await?;
    let (_, vendor) = token(
        sb,
        json!({"name": "v", "role": "vendor", "vendor": "firesafe"}),
    )
    .await?;
    let (captain_id, captain) = token(
        sb,
        json!({"name": "chen", "role": "captain", "buildings": ["b-1"], "person": "p-chen"}),
    )
    .await?;
    let (anonymous_captain_id, anonymous_captain) = token(
        sb,
        json!({"name": "b-1 phone", "role": "captain", "buildings": ["b-1"]}),
    )
    .await?;
    Ok(Cast {
        admin: sb.hub.admin_token.clone(),
        north,
        acme,
        manager,
        vendor,
        captain,
        captain_id,
        anonymous_captain,
        anonymous_captain_id,
    })
}

async fn on_call_hands_over_at_eight(sb: &HubSandbox, c: &Cast) -> anyhow::Result<()> {
    let at = |t: &str| {
        format!(
            "/api/v1/stations/st-north/on-call?at={}",
            t.replace('+', "%2B")
        )
    };
    let (s, b) = get(sb, &at("2026-12-02T07:59:00+08:00"), &c.admin).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["station"], "st-north");
    assert_eq!(b["timezone"], "Asia/Shanghai");
    assert_eq!(b["at"], "2026-12-02T07:59:00+08:00");
    assert_eq!(ids(&b["on_call"]), ["p-li"]);
    assert_eq!(
        b["on_call"][0]["phone"], "13800000002",
        "admin sees contacts"
    );
    // The same instant given in UTC.
    let (_, b) = get(sb, &at("2026-12-02T00:01:00Z"), &c.north).await?;
    assert_eq!(ids(&b["on_call"]), ["p-wang"]);
    assert_eq!(
        b["on_call"][0]["email"], "wang@example.com",
        "the crew sees contacts"
    );
    let (_, b) = get(sb, &at("2026-12-24T12:00:00+08:00"), &c.north).await?;
    assert_eq!(ids(&b["on_call"]), ["p-zhao"], "the override wins");
    // A manager of a compound the station serves sees who, not how to reach them.
    let (s, b) = get(sb, &at("2026-12-02T08:01:00+08:00"), &c.manager).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["on_call"][0]["phone"], "138****0001");
    assert_eq!(b["on_call"][0]["email"], "w***@example.com");
    let (s, b) = get(sb, "/api/v1/stations/st-north/on-call", &c.acme).await?;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("out_of_scope"))
    );
    let (s, b) = get(sb, "/api/v1/stations/st-acme/on-call", &c.acme).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["on_call"], json!([]), "no rota, nobody");
    let (s, _) = get(sb, "/api/v1/stations/st-nowhere/on-call", &c.admin).await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, b) = get(
        sb,
        "/api/v1/stations/st-north/on-call?at=tomorrow",
        &c.admin,
    )
    .await?;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("at:"),
        "{b}"
    );
    Ok(())
}

async fn crew_and_people_by_role(sb: &HubSandbox, c: &Cast) -> anyhow::Result<()> {
    let (s, b) = get(sb, "/api/v1/stations/st-north/crew", &c.north).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(ids(&b["members"]), ["p-wang", "p-li"]);
    assert_eq!(b["members"][1]["crew"], "crew-north-a");
    assert_eq!(b["members"][1]["phone"], "13800000002");
    assert_eq!(b["head"]["id"], "p-zhao");
    assert_eq!(b["on_call"].as_array().map(Vec::len), Some(1), "{b}");
    let (_, b) = get(sb, "/api/v1/stations/st-north/crew", &c.manager).await?;
    assert_eq!(b["members"][0]["phone"], "138****0001");
    assert_eq!(b["head"]["phone"], "138****0003");
    let (_, b) = get(sb, "/api/v1/stations/st-acme/crew", &c.admin).await?;
    assert_eq!((&b["members"], &b["head"]), (&json!([]), &Value::Null));

    let (s, b) = get(sb, "/api/v1/people", &c.admin).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        ids(&b["people"]),
        ["p-chen", "p-li", "p-qian", "p-sun", "p-wang", "p-zhao", "p-zhou"]
    );
    assert_eq!(b["timezone"], "Asia/Shanghai");
    let chen = &b["people"][0];
    assert_eq!(chen["captain_of"], json!(["b-1"]));
    assert_eq!(b["people"][5]["head_of"], json!(["st-north"]));
    assert_eq!(b["people"][4]["crews"], json!(["crew-north-a"]));
    // The north crew sees the people its station uses: crew, head, rota, captains of
    // its buildings; with their contacts.
    let (s, b) = get(sb, "/api/v1/people", &c.north).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(ids(&b["people"]), ["p-chen", "p-li", "p-wang", "p-zhao"]);
    assert_eq!(b["people"][0]["phone"], "13800000004");
    let (_, b) = get(sb, "/api/v1/people", &c.acme).await?;
    assert_eq!(b["people"], json!([]));
    for t in [&c.manager, &c.vendor, &c.captain] {
        let (s, _) = get(sb, "/api/v1/people", t).await?;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    let (_, b) = get(sb, "/api/v1/compounds", &c.admin).await?;
    let by_id = |id: &str| {
        b["compounds"]
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == id).cloned())
            .unwrap_or_default()
    };
    assert_eq!(by_id("cmp-1")["management"], "state_fallback");
    assert_eq!(by_id("cmp-1")["takeover_date"], "2025-06-01");
    assert_eq!(by_id("cmp-2")["management"], "property_company");
    assert_eq!(by_id("cmp-2")["takeover_date"], Value::Null);

    let (s, b) = get(sb, "/api/v1/reports/coverage?street=street-1", &c.admin).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    let street = &b["streets"][0];
    assert_eq!(street["street"], "street-1");
    assert_eq!(street["compounds"], 2);
    assert_eq!(
        street["by_management"],
        json!({"none": 0, "property_company": 1, "self_managed": 0, "state_fallback": 1})
    );
    assert_eq!(
        (&street["no_management"], &street["covered"]),
        (&json!(1), &json!(1))
    );
    let (_, b) = get(sb, "/api/v1/reports/coverage", &c.manager).await?;
    assert_eq!(
        b["streets"][0]["compounds"], 1,
        "a manager counts its compounds"
    );
    let (s, _) = get(sb, "/api/v1/reports/coverage", &c.north).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    Ok(())
}

async fn captains_report_hazards_and_nothing_else(sb: &HubSandbox, c: &Cast) -> anyhow::Result<()> {
    let report = |building: &str, priority: &str| {
        json!({"building": building, "category": "fire_safety", "priority": priority,
               "description": "smoke in the stairwell, 5th floor"})
    };
    let post = |t: &str, body: Value| {
        let t = t.to_string();
        async move { call(sb, Method::POST, "/api/v1/captain/reports", &t, Some(body)).await }
    };
    let (s, b) = post(&c.captain, report("b-1", "P1")).await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["created"], true);
    let ticket = b["ticket_id"].as_i64().unwrap_or_default();
    let (s, t) = get(sb, &format!("/api/v1/tickets/{ticket}"), &c.captain).await?;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(t["ticket"]["priority"], "P1");
    assert_eq!(t["ticket"]["building"], "b-1");
    assert_eq!(t["ticket"]["station"], "st-north");
    assert_eq!(t["ticket"]["kind"], "captain");
    assert_eq!(t["audit"][0]["actor"], "captain:p-chen", "{t}");
    let (s, _) = get(sb, &format!("/api/v1/tickets/{ticket}"), &c.north).await?;
    assert_eq!(s, StatusCode::OK, "the station's crew sees it");
    let (s, _) = get(sb, &format!("/api/v1/tickets/{ticket}"), &c.acme).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // A resident's ticket of the same compound is not the captain's to read.
    let (s, b) = call(
        sb,
        Method::POST,
        "/api/v1/public/reports",
        "",
        Some(json!({"compound": "cmp-1", "category": "lift", "description": "lift stuck"})),
    )
    .await?;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let resident = b["ticket_id"].as_i64().unwrap_or_default();
    let (s, _) = get(sb, &format!("/api/v1/tickets/{resident}"), &c.captain).await?;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = get(sb, "/api/v1/tickets", &c.captain).await?;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        ticket_ids(&b["tickets"]),
        [ticket],
        "only its building's tickets"
    );
    // Again at P1: the same ticket; at P2: a ticket of its own.
    let (_, b) = post(&c.captain, report("b-1", "P1")).await?;
    assert_eq!(
        (&b["created"], b["ticket_id"].as_i64()),
        (&json!(false), Some(ticket))
    );
    let (_, b) = post(&c.anonymous_captain, report("b-1", "P2")).await?;
    assert_eq!(b["created"], true, "{b}");
    let p2 = b["ticket_id"].as_i64().unwrap_or_default();
    let (_, t) = get(sb, &format!("/api/v1/tickets/{p2}"), &c.admin).await?;
    assert_eq!(t["ticket"]["priority"], "P2");
    assert_eq!(
        t["audit"][0]["actor"],
        format!("captain:token-{}", c.anonymous_captain_id)
    );
    assert_ne!(c.captain_id, c.anonymous_captain_id);
    // Bad input names the field; another building is out of scope; only captains file.
    let (s, b) = post(&c.captain, report("b-2", "P1")).await?;
    assert_eq!(
        (s, &b["error"]["code"]),
        (StatusCode::FORBIDDEN, &json!("out_of_scope"))
    );
    let (s, b) = post(&c.captain, report("b-1", "P3")).await?;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("priority:"),
        "{b}"
    );
    let mut bad = report("b-1", "P1");
    bad["category"] = json!("ufo");
    let (s, b) = post(&c.captain, bad).await?;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("category:"),
        "{b}"
    );
    for t in [&c.admin, &c.north, &c.manager, &c.vendor] {
        let (s, b) = post(t, report("b-1", "P1")).await?;
        assert_eq!(
            (s, &b["error"]["code"]),
            (StatusCode::FORBIDDEN, &json!("forbidden"))
        );
    }
    // A captain's token opens nothing else (a device list it may call comes back empty).
    let ok = StatusCode::OK;
    let no = StatusCode::FORBIDDEN;
    let rows: Vec<(Method, String, Option<Value>, StatusCode)> = vec![
        (Method::GET, "/api/v1/me".into(), None, ok),
        (Method::GET, "/api/v1/catalog".into(), None, ok),
        (Method::GET, "/api/v1/compounds".into(), None, no),
        (Method::GET, "/api/v1/devices/smoke-1".into(), None, no),
        (
            Method::GET,
            "/api/v1/devices/smoke-1/state".into(),
            None,
            no,
        ),
        (
            Method::POST,
            "/api/v1/devices".into(),
            Some(
                json!({"id": "smoke-1", "kind": "smoke", "vendor": "firesafe", "building": "b-1"}),
            ),
            no,
        ),
        (
            Method::POST,
            "/api/v1/devices/smoke-1/rotate-secret".into(),
            None,
            no,
        ),
        (Method::DELETE, "/api/v1/devices/smoke-1".into(), None, no),
        (Method::GET, "/api/v1/rejects".into(), None, no),
        (
            Method::POST,
            format!("/api/v1/tickets/{ticket}/transition"),
            Some(json!({"to": "acknowledged", "actor": "chen"})),
            no,
        ),
        (
            Method::GET,
            "/api/v1/tickets?station=st-north".into(),
            None,
            no,
        ),
        (
            Method::GET,
            "/api/v1/reports/sla?month=2026-12".into(),
            None,
            no,
        ),
        (
            Method::GET,
            "/api/v1/reports/rating?of=st-north&month=2026-12".into(),
            None,
            no,
        ),
        (Method::GET, "/api/v1/reports/coverage".into(), None, no),
        (Method::GET, "/api/v1/alerts/stream".into(), None, no),
        (Method::GET, "/api/v1/tokens".into(), None, no),
        (
            Method::POST,
            "/api/v1/tokens".into(),
            Some(json!({"name": "x", "role": "captain", "buildings": ["b-1"]})),
            no,
        ),
        (Method::GET, "/api/v1/people".into(), None, no),
        (
            Method::GET,
            "/api/v1/stations/st-north/on-call".into(),
            None,
            no,
        ),
        (
            Method::GET,
            "/api/v1/stations/st-north/crew".into(),
            None,
            no,
        ),
    ];
    for (method, path, body, want) in rows {
        let (s, b) = call(sb, method.clone(), &path, &c.captain, body).await?;
        assert_eq!(s, want, "{method} {path} as captain: {b}");
    }
    for path in ["/api/v1/devices", "/api/v1/liveness"] {
        let (s, b) = get(sb, path, &c.captain).await?;
        assert_eq!(s, ok, "{path}: {b}");
        assert!(
            b.as_object()
                .is_some_and(|o| o.values().all(|v| v.as_array().is_none_or(Vec::is_empty))),
            "{path} shows a captain nothing: {b}"
        );
    }
    let (_, me) = get(sb, "/api/v1/me", &c.captain).await?;
    assert_eq!(me["role"], "captain");
    Ok(())
}

fn ticket_ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|t| t["id"].as_i64()).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_on_call_crew_masking_and_captains() -> anyhow::Result<()> {
    let sb = HubSandbox::start_with(estate(), |_| {}).await?;
    let c = step("tokens", cast(&sb)).await?;
    step("on call", on_call_hands_over_at_eight(&sb, &c)).await?;
    step("crew and people", crew_and_people_by_role(&sb, &c)).await?;
    step(
        "captains",
        captains_report_hazards_and_nothing_else(&sb, &c),
    )
    .await?;
    sb.shutdown().await;
    Ok(())
}

/// A hub whose estate file names someone who does not exist refuses to start, naming the
/// file, the key and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_person_stops_the_hub_at_load() -> anyhow::Result<()> {
    let bad = estate().replace(
        "members = [\"p-wang\", \"p-li\"]",
        "members = [\"p-wang\", \"p-nobody\"]",
    );
    let err = match HubSandbox::start_with(bad, |_| {}).await {
        Ok(sb) => {
            sb.shutdown().await;
            anyhow::bail!("the hub started with an unknown crew member");
        }
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("invalid estate file")
            && err.contains("estate.toml")
            && err.contains("crews[0].members: unknown person `p-nobody`"),
        "{err}"
    );
    Ok(())
}
