//! Over the API, what the crew app relies on: photo uploads refused for what they are
//! (too big, not an image, another type, a cut-off JPEG) with nothing stored and each
//! refusal counted, a real photo stored once with its thumbnail and SHA-256 in the audit
//! trail, and the rules a resolve, a cancel and a move queued offline must follow.

mod support;

use anyhow::{ensure, Result};
use reqwest::multipart::{Form, Part};
use reqwest::StatusCode;
use serde_json::{json, Value};
use steward_tests::{HubSandbox, TEST_ESTATE};
use support::crew::{api, crew_token, jpeg, message, move_to, ticket_of};

/// POST a photo form; returns the status and the body.
async fn upload(sb: &HubSandbox, id: i64, token: &str, form: Form) -> Result<(StatusCode, Value)> {
    let r = sb
        .http()
        .post(sb.api(&format!("/api/v1/tickets/{id}/photos")))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    let s = r.status();
    Ok((s, r.json::<Value>().await.unwrap_or(Value::Null)))
}

fn file(bytes: Vec<u8>, name: &str, mime: &str) -> Result<Form> {
    Ok(Form::new().part(
        "photo",
        Part::bytes(bytes)
            .file_name(name.to_string())
            .mime_str(mime)?,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_and_resolve_rules_over_the_api() -> Result<()> {
    let sb = HubSandbox::start_with(TEST_ESTATE, |_| {}).await?;
    let token = crew_token(&sb).await?;
    support::trap_passenger(&sb).await?;
    let id = ticket_of(&sb, "lift-1", "lift-trapped").await?;

    let good = jpeg(640, 480)?;
    let mut cut = good.clone();
    cut.truncate(good.len() / 3);
    let mut huge = good.clone();
    huge.resize(10 * 1024 * 1024 + 1, 0);
    let heic = b"\0\0\0\x18ftypheic\0\0\0\0mif1heic".to_vec();
    for (bytes, name, mime, status, needle) in [
        (
            huge,
            "big.jpg",
            "image/jpeg",
            StatusCode::PAYLOAD_TOO_LARGE,
            "10 MiB",
        ),
        (
            b"just some text".to_vec(),
            "notes.txt",
            "text/plain",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not an image",
        ),
        (
            b"GIF89a\x01\0\x01\0\0\0\0;".to_vec(),
            "anim.gif",
            "image/gif",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "GIF",
        ),
        (
            heic,
            "IMG_0001.HEIC",
            "image/heic",
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "HEIC",
        ),
        // Claims to be a JPEG by its name, type and first bytes, but does not decode.
        (
            cut,
            "cut.jpg",
            "image/jpeg",
            StatusCode::BAD_REQUEST,
            "not a valid JPEG",
        ),
    ] {
        let (s, b) = upload(&sb, id, &token, file(bytes, name, mime)?).await?;
        ensure!(
            s == status && message(&b).contains(needle),
            "{name}: {s} {b}"
        );
        ensure!(message(&b).starts_with("photo:"), "{name}: {b}");
    }
    let (s, b) = upload(&sb, id, &token, Form::new().text("actor", "Li Ming")).await?;
    ensure!(
        s == StatusCode::BAD_REQUEST && message(&b).contains("missing"),
        "{s} {b}"
    );
    // Nothing refused was kept: no photo, no audit record.
    let list = api(&sb, &format!("/api/v1/tickets/{id}/photos")).await?;
    ensure!(
        list["photos"].as_array().is_some_and(Vec::is_empty),
        "{list}"
    );
    let metrics = sb
        .http()
        .get(sb.api("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for (reason, n) in [
        ("too_large", 1),
        ("unsupported_type", 3),
        ("undecodable", 1),
        ("no_file", 1),
    ] {
        let line = format!("steward_api_photo_rejects_total{{reason=\"{reason}\"}} {n}");
        ensure!(metrics.contains(&line), "metrics lack `{line}`");
    }

    // A real photo is stored once, readable with its thumbnail, in the audit trail.
    let form = file(good.clone(), "door.jpg", "image/jpeg")?.text("actor", "Li Ming");
    let (s, b) = upload(&sb, id, &token, form).await?;
    ensure!(
        s == StatusCode::CREATED && b["duplicate"] == false,
        "{s} {b}"
    );
    let sha = b["photo"]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (s, b) = upload(
        &sb,
        id,
        &token,
        file(good.clone(), "door.jpg", "image/jpeg")?,
    )
    .await?;
    ensure!(
        s == StatusCode::OK && b["duplicate"] == true,
        "sent again: {s} {b}"
    );
    let got = sb
        .http()
        .get(sb.api(&format!("/api/v1/tickets/{id}/photos/{sha}")))
        .bearer_auth(&token)
        .send()
        .await?;
    ensure!(got.status() == StatusCode::OK, "photo: {}", got.status());
    ensure!(
        got.bytes().await?.as_ref() == good.as_slice(),
        "the photo came back changed"
    );
    let thumb = sb
        .http()
        .get(sb.api(&format!("/api/v1/tickets/{id}/photos/{sha}/thumb")))
        .bearer_auth(&token)
        .send()
        .await?
        .bytes()
        .await?;
    let t = image::load_from_memory(&thumb)?;
    ensure!(
        t.width() <= 320 && t.height() <= 320,
        "thumb {}x{}",
        t.width(),
        t.height()
    );
    let d = api(&sb, &format!("/api/v1/tickets/{id}")).await?;
    let photo_records: Vec<&Value> = d["audit"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["action"] == "photo").collect())
        .unwrap_or_default();
    ensure!(
        photo_records.len() == 1
            && photo_records[0]["note"]
                .as_str()
                .is_some_and(|n| n.contains(&sha))
            && photo_records[0]["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("Li Ming")),
        "{photo_records:?}"
    );

    // Resolve: a note and a known failure code, both required; a stale move is a 409.
    ensure!(
        d["failure_codes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("door_operator"))),
        "{d}"
    );
    ensure!(
        d["next_states"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("acknowledged")) && !s.contains(&json!("closed"))),
        "{d}"
    );
    let (s, b) = move_to(
        &sb,
        id,
        json!({"to": "resolved", "actor": "li", "failure_code": "brake"}),
    )
    .await?;
    ensure!(
        s == StatusCode::BAD_REQUEST && message(&b).starts_with("note"),
        "{s} {b}"
    );
    let (s, b) = move_to(
        &sb,
        id,
        json!({"to": "resolved", "actor": "li", "note": "fixed"}),
    )
    .await?;
    ensure!(
        s == StatusCode::BAD_REQUEST && message(&b).starts_with("failure_code: required"),
        "{s} {b}"
    );
    let (s, b) = move_to(
        &sb,
        id,
        json!({"to": "resolved", "actor": "li", "note": "fixed", "failure_code": "false_alarm"}),
    )
    .await?;
    ensure!(
        s == StatusCode::BAD_REQUEST && message(&b).contains("not one of"),
        "{s} {b}"
    );
    let (s, b) = move_to(&sb, id, json!({"to": "cancelled", "actor": "li"})).await?;
    ensure!(
        s == StatusCode::BAD_REQUEST && message(&b).starts_with("note"),
        "cancel without reason: {s} {b}"
    );
    let (s, b) = move_to(
        &sb,
        id,
        json!({"to": "acknowledged", "actor": "li", "expected_state": "on_hold"}),
    )
    .await?;
    ensure!(
        s == StatusCode::CONFLICT && message(&b).contains("moved on"),
        "{s} {b}"
    );
    let (s, b) = move_to(
        &sb,
        id,
        json!({"to": "acknowledged", "actor": "li", "expected_state": "open"}),
    )
    .await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    let (s, b) = move_to(&sb, id, json!({"to": "dispatched", "actor": "li", "assignee": "Wang Wei", "expected_state": "acknowledged"})).await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    let (s, b) = move_to(&sb, id, json!({"to": "resolved", "actor": "li", "note": "belt replaced", "failure_code": "door_operator"})).await?;
    ensure!(s == StatusCode::OK, "{s} {b}");
    let d = api(&sb, &format!("/api/v1/tickets/{id}")).await?;
    ensure!(
        d["failure_code"] == "door_operator" && d["assignee"] == "Wang Wei",
        "{d}"
    );
    ensure!(
        d["next_states"] == json!(["closed"]),
        "{}",
        d["next_states"]
    );
    // Still, after all that, exactly the one photo.
    let list = api(&sb, &format!("/api/v1/tickets/{id}/photos")).await?;
    ensure!(list["photos"].as_array().map(Vec::len) == Some(1), "{list}");
    // The catalogue names the failure codes per kind and the generic ones.
    let cat = api(&sb, "/api/v1/catalog").await?;
    ensure!(
        cat["generic_failure_codes"]
            .as_array()
            .is_some_and(|c| c.contains(&json!("other"))),
        "{cat}"
    );
    sb.shutdown().await;
    Ok(())
}
