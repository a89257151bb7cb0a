//! A device may publish and subscribe only under its own id, may not take over another
//! device's session, and may not flood the hub: over real MQTT, against a real QuestDB.

use rumqttc::QoS;
use serde_json::json;
use std::time::Duration;
use steward_tests::{now_ms, wait_until, HubSandbox, TestClient};

const T: Duration = Duration::from_secs(30);

async fn metric(sb: &HubSandbox, line_prefix: &str) -> anyhow::Result<f64> {
    let text = sb
        .http()
        .get(sb.api("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .find(|l| l.starts_with(line_prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_publish_as_another_and_the_attempt_is_rejected_and_counted(
) -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let t0 = now_ms() - 10_000;
    let attacker = sb.device("smoke-1", "smoke-1-secret").await?;
    let victim = sb.device("smoke-2", "smoke-2-secret").await?;
    let lift = sb.device("lift-1", "lift-1-secret").await?;
    lift.subscribe("devices/lift-1/commands").await?;

    // The victim's own reading, then the attacker's forgeries under its id, under a
    // gateway, into another device's command channel and into a station's alerts.
    victim
        .publish(
            "devices/smoke-2/telemetry",
            json!({"ts": t0, "seq": 1, "metrics": {"alarm": false, "co_ppm": 1.0}}).to_string(),
        )
        .await?;
    let forged = [
        (
            "devices/smoke-2/telemetry",
            json!({"ts": t0 + 1000, "seq": 2, "metrics": {"alarm": true, "co_ppm": 666.0}})
                .to_string(),
        ),
        (
            "gateways/gw-1/telemetry",
            json!([{"device_id": "pump-9", "ts": t0, "metrics": {"running": false}}]).to_string(),
        ),
        (
            "devices/lift-1/commands",
            json!({"command": "out_of_service"}).to_string(),
        ),
        (
            "stations/st-north/alerts",
            json!({"kind": "opened", "message": "fake"}).to_string(),
        ),
    ];
    for (topic, payload) in &forged {
        attacker.publish(topic, payload.clone()).await?;
    }
    attacker.wait_acks(forged.len() as u64).await?;
    victim.wait_acks(1).await?;

    sb.wait_count(
        "SELECT count() FROM rejects WHERE reason = 'not_authorized' AND device_id = 'smoke-1'",
        forged.len() as i64,
        T,
    )
    .await?;
    // The victim's data is untouched: its one reading, no alarm, no forged value.
    sb.wait_count(
        "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-2'",
        1,
        T,
    )
    .await?;
    assert_eq!(
        sb.count(
            "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-2' AND co_ppm = 666.0"
        )
        .await?,
        0
    );
    assert_eq!(
        sb.count("SELECT count() FROM pump_telemetry WHERE device_id = 'pump-9'")
            .await?,
        0
    );
    let detail = sb
        .sql("SELECT detail FROM rejects WHERE reason = 'not_authorized' AND topic = 'steward/unauthorized/smoke-1/devices/smoke-2/telemetry'")
        .await?;
    let text = format!("{:?}", detail.dataset);
    assert!(
        text.contains("`smoke-1` may not publish to `devices/smoke-2/telemetry`"),
        "reject detail names sender and topic: {text}"
    );
    assert_eq!(
        metric(&sb, "steward_broker_unauthorized_publish_total").await?,
        forged.len() as f64
    );
    assert_eq!(
        metric(
            &sb,
            "steward_ingest_rejected_total{reason=\"not_authorized\"}"
        )
        .await?,
        forged.len() as f64
    );
    // The forged command never reached the lift. Its reject is counted, so the broker
    // has routed it; a SUBACK round trip on the lift's own connection then brings in
    // anything the broker had sent the lift before it.
    lift.subscribe("devices/lift-1/commands").await?;
    assert!(
        lift.received.lock().is_empty(),
        "lift got a forged command: {:?}",
        lift.received.lock()
    );
    // The victim still works after all this.
    victim
        .publish(
            "devices/smoke-2/telemetry",
            json!({"ts": t0 + 2000, "seq": 3, "metrics": {"alarm": false, "co_ppm": 1.1}})
                .to_string(),
        )
        .await?;
    sb.wait_count(
        "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-2'",
        2,
        T,
    )
    .await?;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_cannot_read_others_topics_nor_take_over_their_session() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let victim = sb.device("smoke-2", "smoke-2-secret").await?;
    let snoop = sb.device("smoke-1", "smoke-1-secret").await?;
    for filter in ["#", "devices/+/telemetry", "devices/smoke-2/#"] {
        snoop.subscribe(filter).await?;
    }
    // Its own commands topic still works.
    snoop.subscribe("devices/smoke-1/commands").await?;
    assert!(
        wait_until(T, || async {
            metric(&sb, "steward_broker_denied_subscribe_total")
                .await
                .unwrap_or(0.0)
                >= 3.0
        })
        .await,
        "the three filters reaching beyond smoke-1 are counted"
    );
    // A second connection that reuses the victim's client id with the snoop's credentials
    // must not disconnect the victim.
    let thief =
        TestClient::connect(&sb.mqtt_addr(), "smoke-2", "smoke-1", "smoke-1-secret").await?;
    let t0 = now_ms() - 5_000;
    victim
        .publish(
            "devices/smoke-2/telemetry",
            json!({"ts": t0, "seq": 1, "metrics": {"alarm": false}}).to_string(),
        )
        .await?;
    victim.wait_acks(1).await?;
    sb.wait_count(
        "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-2'",
        1,
        T,
    )
    .await?;
    // The reading is stored, so the broker has routed it; a SUBACK round trip on the
    // snoop's connection brings in anything the broker had sent the snoop before it.
    snoop.subscribe("devices/smoke-1/commands").await?;
    assert!(
        snoop.received.lock().is_empty(),
        "snoop read another device's data: {:?}",
        snoop.received.lock()
    );
    thief.disconnect().await;
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_device_is_shed_and_counted_while_others_are_unaffected() -> anyhow::Result<()> {
    let sb = HubSandbox::start_with(steward_tests::TEST_ESTATE, |c| {
        c.broker.device_rate_per_s = 20;
        c.broker.device_burst = 50;
    })
    .await?;
    let flood = sb.device("pump-1", "pump-1-secret").await?;
    let calm = sb.device("gate-1", "gate-1-secret").await?;
    let t0 = now_ms() - 60_000;
    const FLOOD: i64 = 1000;
    for i in 0..FLOOD {
        flood
            .publish(
                "devices/pump-1/telemetry",
                json!({"ts": t0 + i, "seq": i, "metrics": {"running": true}}).to_string(),
            )
            .await?;
        if i % 100 == 0 {
            calm.publish(
                "devices/gate-1/telemetry",
                json!({"ts": t0 + i, "seq": i, "metrics": {"state": "closed"}}).to_string(),
            )
            .await?;
        }
    }
    flood.wait_acks(FLOOD as u64).await?;
    calm.wait_acks(10).await?;
    // Every calm reading lands; every flood message is either stored or counted as shed.
    sb.wait_count(
        "SELECT count() FROM gate_telemetry WHERE device_id = 'gate-1'",
        10,
        T,
    )
    .await?;
    assert!(
        wait_until(T, || async {
            let stored = sb
                .count("SELECT count() FROM pump_telemetry WHERE device_id = 'pump-1'")
                .await
                .unwrap_or(0) as f64;
            let shed = metric(
                &sb,
                "steward_ingest_rejected_total{reason=\"rate_limited\"}",
            )
            .await
            .unwrap_or(0.0);
            stored + shed == FLOOD as f64
        })
        .await,
        "stored + shed = sent"
    );
    let shed = metric(&sb, "steward_broker_rate_limited_total").await?;
    assert!(shed >= 500.0, "most of the flood is shed, got {shed}");
    assert_eq!(
        metric(
            &sb,
            "steward_ingest_rejected_total{reason=\"rate_limited\"}"
        )
        .await?,
        shed
    );
    // A flood leaves a trace the vendor can read, not one row per shed message. The
    // reject rows are spooled before the PUBACKs go out but become visible in QuestDB a
    // flush later: wait for them.
    let reject_rows = || async {
        sb.count(
            "SELECT count() FROM rejects WHERE reason = 'rate_limited' AND device_id = 'pump-1'",
        )
        .await
        .unwrap_or(0)
    };
    wait_until(T, || async { reject_rows().await >= 1 }).await;
    let rows = reject_rows().await;
    assert!(
        (1..=10).contains(&rows),
        "one reject row per second of flood, got {rows}"
    );
    sb.shutdown().await;
    Ok(())
}

/// A CA and a server certificate for localhost/127.0.0.1 signed by it, as PEM.
fn test_pki(
    dir: &std::path::Path,
) -> anyhow::Result<(Vec<u8>, std::path::PathBuf, std::path::PathBuf)> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Steward test CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let key = KeyPair::generate()?;
    let server = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?
        .signed_by(&key, &ca_cert, &ca_key)?;
    let cert_path = dir.join("server.pem");
    let key_path = dir.join("server.key");
    std::fs::write(&cert_path, server.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    Ok((ca_cert.pem().into_bytes(), cert_path, key_path))
}

async fn tls_client(
    addr: std::net::SocketAddr,
    ca: Vec<u8>,
    id: &str,
    secret: &str,
) -> anyhow::Result<(rumqttc::AsyncClient, rumqttc::EventLoop)> {
    let mut opts = rumqttc::MqttOptions::new(id, "localhost", addr.port());
    opts.set_credentials(id, secret);
    opts.set_transport(rumqttc::Transport::tls(ca, None, None));
    let (client, mut ev) = rumqttc::AsyncClient::new(opts, 100);
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ev.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("tls connect: {e}")),
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("no CONNACK over TLS within 10 s"))??;
    Ok((client, ev))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_connect_over_tls_with_a_self_signed_ca() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let pki = tempfile::tempdir()?;
    let (ca, cert, key) = test_pki(pki.path())?;
    let sb = HubSandbox::start_with(steward_tests::TEST_ESTATE, |c| {
        c.broker.tls_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.broker.tls_cert = Some(cert.clone());
        c.broker.tls_key = Some(key.clone());
    })
    .await?;
    let tls_addr = sb.hub.mqtt_tls_addr.expect("tls listener");

    // A client that opens a socket and never says hello must not hold the door shut.
    let _stalled = tokio::net::TcpStream::connect(tls_addr).await?;

    let (client, mut ev) = tls_client(tls_addr, ca.clone(), "smoke-1", "smoke-1-secret").await?;
    let t0 = now_ms() - 1000;
    client
        .publish(
            "devices/smoke-1/telemetry",
            QoS::AtLeastOnce,
            false,
            json!({"ts": t0, "seq": 1, "metrics": {"alarm": false, "co_ppm": 4.25}}).to_string(),
        )
        .await?;
    let poll = tokio::spawn(async move { while ev.poll().await.is_ok() {} });
    sb.wait_count(
        "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-1' AND co_ppm = 4.25",
        1,
        T,
    )
    .await?;
    poll.abort();

    // Wrong secret over TLS is still refused; an untrusted server certificate is refused
    // by the client.
    assert!(tls_client(tls_addr, ca, "smoke-1", "wrong").await.is_err());
    let other_pki = tempfile::tempdir()?;
    let (other_ca, _, _) = test_pki(other_pki.path())?;
    assert!(tls_client(tls_addr, other_ca, "smoke-1", "smoke-1-secret")
        .await
        .is_err());
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_listener_without_its_key_stops_start_up_naming_the_key() -> anyhow::Result<()> {
    let pki = tempfile::tempdir()?;
    let (_, cert, _) = test_pki(pki.path())?;
    let err = HubSandbox::start_with(steward_tests::TEST_ESTATE, |c| {
        c.broker.tls_listen = Some("127.0.0.1:0".parse().expect("addr"));
        c.broker.tls_cert = Some(cert.clone());
        c.broker.tls_key = Some(cert.clone());
    })
    .await
    .err()
    .map(|e| format!("{e:#}"))
    .unwrap_or_default();
    assert!(err.contains("broker.tls_key"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crews_hear_only_their_own_stations_alerts_and_devices_none() -> anyhow::Result<()> {
    use steward_estate::{NewToken, Role, TokenScope};
    let sb = HubSandbox::start().await?;
    let token = |name: &str, station: &str| {
        sb.hub.registry.create_token(&NewToken {
            name: name.into(),
            role: Role::Crew,
            scope: TokenScope {
                station: Some(station.into()),
                ..Default::default()
            },
        })
    };
    let north = token("crew-north", "st-north")?;
    let acme = token("crew-acme", "st-acme")?;
    let north_crew =
        TestClient::connect(&sb.mqtt_addr(), "crew-north", "crew-north", &north.token).await?;
    let acme_crew =
        TestClient::connect(&sb.mqtt_addr(), "crew-acme", "crew-acme", &acme.token).await?;
    let device = sb.device("smoke-1", "smoke-1-secret").await?;
    north_crew.subscribe("stations/st-north/alerts").await?;
    for f in [
        "stations/st-north/alerts",
        "stations/+/alerts",
        "stations/st-acme/alerts",
    ] {
        acme_crew.subscribe(f).await?;
    }
    device.subscribe("stations/+/alerts").await?;
    // A revoked or vendor token cannot log in at all.
    let vendor = sb.hub.registry.create_token(&NewToken {
        name: "vendor".into(),
        role: Role::Vendor,
        scope: TokenScope {
            vendor: Some("firesafe".into()),
            ..Default::default()
        },
    })?;
    assert!(
        TestClient::connect(&sb.mqtt_addr(), "v", "v", &vendor.token)
            .await
            .is_err()
    );

    // A resident report in cmp-1 opens a ticket for st-north, which alerts its crews.
    let resp = sb
        .http()
        .post(sb.api("/api/v1/public/reports"))
        .json(&json!({"compound": "cmp-1", "category": "lift", "description": "lift stuck on 3"}))
        .send()
        .await?;
    assert_eq!(resp.status(), 201, "{}", resp.text().await?);
    let heard = north_crew.received.clone();
    assert!(
        wait_until(T, || {
            let n = heard.lock().len();
            async move { n > 0 }
        })
        .await,
        "the north crew hears its station's alert"
    );
    // The broker has routed the alert (north heard it); a SUBACK round trip on each other
    // connection brings in anything the broker had sent it before.
    acme_crew.subscribe("stations/st-acme/alerts").await?;
    device.subscribe("devices/smoke-1/commands").await?;
    assert!(
        acme_crew.received.lock().is_empty(),
        "acme crew heard north's alert: {:?}",
        acme_crew.received.lock()
    );
    assert!(
        device.received.lock().is_empty(),
        "a device heard a station's alert"
    );
    sb.shutdown().await;
    Ok(())
}
