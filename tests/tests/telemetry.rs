//! Device telemetry end to end: MQTT over TCP -> broker -> ingest -> real QuestDB.

use serde_json::json;
use std::time::Duration;
use steward_tests::{now_ms, wait_until, HubSandbox, TestClient};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_lands_in_questdb_with_values_timestamps_and_ids() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let t0 = now_ms() - 60_000;
    let smoke = sb.device("smoke-1", "smoke-1-secret").await?;
    let pump = sb.device("pump-1", "pump-1-secret").await?;
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    let gate = sb.device("gate-1", "gate-1-secret").await?;
    let gw = sb.device("gw-1", "gw-1-secret").await?;
    for i in 0..10i64 {
        let ts = t0 + i * 1000;
        smoke
            .publish(
                "devices/smoke-1/telemetry",
                json!({"ts": ts, "seq": i, "metrics": {"alarm": false, "co_ppm": 1.5 + i as f64, "battery_v": 3.1, "x_fw": "2.1"}}).to_string(),
            )
            .await?;
        pump.publish(
            "devices/pump-1/telemetry",
            json!({"ts": ts, "seq": i, "metrics": {"running": i % 2 == 0, "outlet_pressure_mpa": 0.45, "power_kw": 5.5, "starts": 100 + i, "fault_code": "E0"}}).to_string(),
        )
        .await?;
        lift.publish(
            "devices/lift-1/telemetry",
            json!({"ts": ts, "seq": i, "metrics": {"floor": i, "direction": "up", "door": "closed", "moving": true, "in_landing_zone": false, "mode": "normal"}}).to_string(),
        )
        .await?;
        gate.publish(
            "devices/gate-1/telemetry",
            json!({"ts": ts, "seq": i, "metrics": {"state": "closed", "locked": true, "mode": "normal", "cycles": 500 + i}}).to_string(),
        )
        .await?;
    }
    gw.publish(
        "gateways/gw-1/telemetry",
        json!([
            {"device_id": "pump-9", "ts": t0, "seq": 1, "metrics": {"running": true, "level_m": 1.25}},
            {"device_id": "pump-9", "ts": t0 + 1000, "seq": 2, "metrics": {"running": false, "level_m": 0.4}}
        ])
        .to_string(),
    )
    .await?;
    gate.publish(
        "devices/gate-1/events",
        json!({"ts": t0 + 500, "event": "access_granted", "data": {"card": "0042"}}).to_string(),
    )
    .await?;
    lift.publish("devices/lift-1/status", "online").await?;

    for (table, n) in [
        ("smoke_telemetry", 10),
        ("pump_telemetry", 12),
        ("lift_telemetry", 10),
        ("gate_telemetry", 10),
        ("device_events", 1),
        ("device_status", 1),
    ] {
        sb.wait_count(&format!("SELECT count() FROM {table}"), n, T)
            .await?;
        assert_eq!(
            sb.count(&format!("SELECT count() FROM {table}")).await?,
            n,
            "{table}"
        );
    }
    // Values, timestamps and ids come back as published.
    let r = sb
        .sql("SELECT ts, device_id, compound_id, seq, co_ppm, alarm, battery_v, extras FROM smoke_telemetry ORDER BY ts")
        .await?;
    assert_eq!(r.dataset.len(), 10);
    let first = &r.dataset[0];
    let ts = first[0].as_str().unwrap_or_default();
    assert_eq!(
        chrono_like_ms(ts),
        t0,
        "designated timestamp is the device's ts ({ts})"
    );
    assert_eq!(first[1], json!("smoke-1"));
    assert_eq!(first[2], json!("cmp-1"));
    assert_eq!(first[3], json!(0));
    assert_eq!(first[4], json!(1.5));
    assert_eq!(first[5], json!(false));
    assert_eq!(first[7], json!(r#"{"x_fw":"2.1"}"#));
    let r = sb
        .sql("SELECT floor, direction, door, moving FROM lift_telemetry WHERE seq = 7")
        .await?;
    assert_eq!(
        r.dataset[0],
        vec![json!(7), json!("up"), json!("closed"), json!(true)]
    );
    let r = sb
        .sql("SELECT device_id, compound_id, level_m FROM pump_telemetry WHERE device_id = 'pump-9' ORDER BY ts")
        .await?;
    assert_eq!(
        r.dataset[0],
        vec![json!("pump-9"), json!("cmp-2"), json!(1.25)]
    );
    let r = sb.sql("SELECT event, data FROM device_events").await?;
    assert_eq!(
        r.dataset[0],
        vec![json!("access_granted"), json!(r#"{"card":"0042"}"#)]
    );
    let r = sb
        .sql("SELECT device_id, status FROM device_status")
        .await?;
    assert_eq!(r.dataset[0], vec![json!("lift-1"), json!("online")]);
    assert_eq!(sb.count("SELECT count() FROM rejects").await?, 0);
    assert_eq!(sb.hub.ingest_metrics.readings_total(), 42);
    sb.shutdown().await;
    Ok(())
}

/// QuestDB returns timestamps as `2026-11-23T10:00:00.000000Z`.
fn chrono_like_ms(s: &str) -> i64 {
    let dt = chrono_parse(s);
    dt.unwrap_or(-1)
}

fn chrono_parse(s: &str) -> Option<i64> {
    // Avoid a chrono dependency in tests for one parse: civil-from-days arithmetic.
    let (date, time) = s.trim_end_matches('Z').split_once('T')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let micros: i64 = format!("{frac:0<6}")[..6].parse().ok()?;
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000 + micros) / 1000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_the_same_messages_leaves_the_row_count_unchanged() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let dev = sb.device("pump-1", "pump-1-secret").await?;
    let t0 = now_ms() - 120_000;
    let msgs: Vec<String> = (0..50)
        .map(|i| json!({"ts": t0 + i * 100, "seq": i, "metrics": {"running": true, "flow_m3h": 10.0 + i as f64}}).to_string())
        .collect();
    for m in &msgs {
        dev.publish("devices/pump-1/telemetry", m.clone()).await?;
    }
    dev.wait_acks(50).await?;
    sb.wait_count("SELECT count() FROM pump_telemetry", 50, T)
        .await?;
    // Replay everything, then a marker row that is new; once the marker is visible the
    // replayed batch (written before it) has been applied too.
    for m in &msgs {
        dev.publish("devices/pump-1/telemetry", m.clone()).await?;
    }
    dev.publish(
        "devices/pump-1/telemetry",
        json!({"ts": t0 + 60_000, "seq": 999, "metrics": {"running": false}}).to_string(),
    )
    .await?;
    dev.wait_acks(101).await?;
    sb.wait_count("SELECT count() FROM pump_telemetry WHERE seq = 999", 1, T)
        .await?;
    assert_eq!(sb.count("SELECT count() FROM pump_telemetry").await?, 51);
    assert_eq!(
        sb.count("SELECT count_distinct(ts) FROM pump_telemetry")
            .await?,
        51,
        "no timestamp stored twice"
    );
    assert_eq!(
        sb.hub.ingest_metrics.readings_total(),
        101,
        "all were accepted, storage deduplicated"
    );
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_its_reason_in_rejects_and_valid_messages_around_it_land(
) -> anyhow::Result<()> {
    use steward_ingest::RejectReason as R;
    let sb = HubSandbox::start().await?;
    let dev = sb.device("smoke-1", "smoke-1-secret").await?;
    let t0 = now_ms() - 30_000;
    let good = |i: i64| {
        json!({"ts": t0 + i, "seq": i, "metrics": {"alarm": false, "co_ppm": 2.0}}).to_string()
    };
    let bad: Vec<(&str, String, R)> = vec![
        (
            "devices/smoke-1/telemetry",
            "{\"ts\": 1, \"metrics\": ".into(),
            R::MalformedJson,
        ),
        (
            "devices/smoke-1/telemetry",
            json!({"ts": t0, "metrics": {"alarm": "yes"}}).to_string(),
            R::WrongType,
        ),
        (
            "devices/smoke-1/telemetry",
            json!({"ts": t0, "metrics": {"co_ppm": 99999.0}}).to_string(),
            R::OutOfRange,
        ),
        (
            "devices/ghost-7/telemetry",
            json!({"ts": t0, "metrics": {"alarm": true}}).to_string(),
            R::UnknownDevice,
        ),
        (
            "devices/smoke-1/telemetry",
            json!({"ts": t0, "metrics": {"sparkle": 1}}).to_string(),
            R::UnknownMetric,
        ),
        (
            "devices/smoke-1/telemetry",
            json!({"ts": t0, "metrics": {"x_pad": "a".repeat(70_000)}}).to_string(),
            R::PayloadTooLarge,
        ),
        ("devices/smoke-1/telemetry/extra", good(0), R::BadTopic),
        ("smoke-1/telemetry", good(0), R::BadTopic),
        (
            "devices/smoke-1/telemetry",
            json!({"ts": now_ms() + 3_600_000, "metrics": {"alarm": true}}).to_string(),
            R::BadTimestamp,
        ),
        (
            "devices/smoke-1/telemetry",
            vec![0xffu8, 0xfe, 0x00]
                .into_iter()
                .map(char::from)
                .collect::<String>(),
            R::MalformedJson,
        ),
    ];
    let mut published = 0u64;
    for (i, (topic, payload, _)) in bad.iter().enumerate() {
        dev.publish("devices/smoke-1/telemetry", good(i as i64 * 2))
            .await?;
        dev.publish(topic, payload.clone()).await?;
        published += 2;
    }
    dev.publish("devices/smoke-1/telemetry", good(1_000))
        .await?;
    dev.wait_acks(published + 1).await?;
    let valid = bad.len() as i64 + 1;
    sb.wait_count("SELECT count() FROM smoke_telemetry", valid, T)
        .await?;
    sb.wait_count("SELECT count() FROM rejects", bad.len() as i64, T)
        .await?;
    assert_eq!(
        sb.count("SELECT count() FROM smoke_telemetry").await?,
        valid
    );
    for (topic, _, reason) in &bad {
        let n = sb
            .count(&format!(
                "SELECT count() FROM rejects WHERE reason = '{}'",
                reason.as_str()
            ))
            .await?;
        assert!(n >= 1, "{topic}: no reject with reason {reason}");
        assert!(
            sb.hub.ingest_metrics.rejected_count(*reason) >= 1,
            "{reason} counted"
        );
    }
    assert_eq!(sb.hub.ingest_metrics.rejected_total(), bad.len() as u64);
    // The reject row keeps the raw payload, the topic and a detail naming the fault.
    let r = sb
        .sql(
            "SELECT device_id, topic, detail, payload FROM rejects WHERE reason = 'unknown_metric'",
        )
        .await?;
    assert_eq!(r.dataset[0][0], json!("smoke-1"));
    assert_eq!(r.dataset[0][1], json!("devices/smoke-1/telemetry"));
    assert!(r.dataset[0][2].as_str().unwrap_or("").contains("sparkle"));
    assert!(r.dataset[0][3].as_str().unwrap_or("").contains("sparkle"));
    // The hub is still up and accepting.
    dev.publish("devices/smoke-1/telemetry", good(2_000))
        .await?;
    sb.wait_count("SELECT count() FROM smoke_telemetry", valid + 1, T)
        .await?;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_refused_and_counted() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let addr = sb.mqtt_addr();
    assert!(
        TestClient::connect(&addr, "lift-1", "lift-1", "not-the-secret")
            .await
            .is_err()
    );
    assert!(
        TestClient::connect(&addr, "nobody", "nobody", "whatever-secret")
            .await
            .is_err()
    );
    assert!(
        TestClient::connect(&addr, "pump-9", "pump-9", "")
            .await
            .is_err(),
        "gateway-only device has no secret"
    );
    assert_eq!(sb.hub.broker_metrics.auth_refused(), 3);
    // The right secret still works on both listeners.
    let ok = sb.device("lift-1", "lift-1-secret").await?;
    ok.disconnect().await;
    let v5 = sb.hub.mqtt_v5_addr.expect("v5 listener").to_string();
    let (host, port) = v5.rsplit_once(':').unwrap_or_default();
    let mut opts = rumqttc::v5::MqttOptions::new("gate-1", host, port.parse()?);
    opts.set_credentials("gate-1", "gate-1-secret");
    let (client, mut ev) = rumqttc::v5::AsyncClient::new(opts, 10);
    let connected = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ev.poll().await {
                Ok(rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(
                    _,
                ))) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(connected, "mqtt 5 connect with the right secret");
    let _ = client.disconnect().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_device_is_refused_and_rotated_secret_takes_effect() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let addr = sb.mqtt_addr();
    let new_secret = sb.hub.registry.rotate_secret("gate-1")?;
    assert!(
        TestClient::connect(&addr, "gate-1", "gate-1", "gate-1-secret")
            .await
            .is_err()
    );
    let c = TestClient::connect(&addr, "gate-1", "gate-1", &new_secret).await?;
    c.disconnect().await;
    sb.hub.registry.retire_device("gate-1")?;
    assert!(TestClient::connect(&addr, "gate-1", "gate-1", &new_secret)
        .await
        .is_err());
    assert!(wait_until(Duration::from_secs(1), || async { true }).await);
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_keeps_accepted_rows_and_the_registry() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let dev = sb.device("gate-1", "gate-1-secret").await?;
    let t0 = now_ms() - 10_000;
    for i in 0..20 {
        dev.publish(
            "devices/gate-1/telemetry",
            json!({"ts": t0 + i, "metrics": {"state": "closed", "cycles": i}}).to_string(),
        )
        .await?;
    }
    dev.wait_acks(20).await?;
    let secret = sb.hub.registry.rotate_secret("gate-1")?;
    // No waiting for QuestDB here: a graceful stop flushes what ingest accepted.
    let sb = sb.restart().await?;
    sb.wait_count("SELECT count() FROM gate_telemetry", 20, T)
        .await?;
    assert_eq!(sb.count("SELECT count() FROM gate_telemetry").await?, 20);
    sb.device("gate-1", &secret).await?.disconnect().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_questdb_mode_uses_a_running_server() -> anyhow::Result<()> {
    use steward_storage::questdb::{ManagedConfig, ManagedQuestDb, QuestDbMode};
    let root = tempfile::tempdir()?;
    let cfg = ManagedConfig {
        root: Some(root.path().to_path_buf()),
        max_heap: "512m".into(),
        ..ManagedConfig::default()
    };
    let db = tokio::task::spawn_blocking(move || ManagedQuestDb::start(&cfg)).await??;
    let addr = db.http_addr;
    let sb = HubSandbox::start_with(steward_tests::TEST_ESTATE, |c| {
        c.questdb.mode = QuestDbMode::External;
        c.questdb.http_addr = Some(addr);
    })
    .await?;
    assert_eq!(sb.hub.questdb_http, addr);
    let dev = sb.device("smoke-1", "smoke-1-secret").await?;
    dev.publish(
        "devices/smoke-1/telemetry",
        json!({"ts": now_ms(), "metrics": {"alarm": false}}).to_string(),
    )
    .await?;
    sb.wait_count("SELECT count() FROM smoke_telemetry", 1, T)
        .await?;
    sb.shutdown().await;
    // The hub does not own an external server: it is still up after the hub stopped.
    assert!(steward_storage::questdb::reachable(addr));
    drop(db);
    Ok(())
}
