//! MQTT 3.1.1 and MQTT 5 clients share the main listener (`broker.v4_listen`), as on
//! Mosquitto and EMQX: rumqttc's v4 and v5 clients and Mosquitto's `mosquitto_pub -V 311`
//! and `-V 5` connect to the one port, publish, and their readings are ingested. The
//! optional MQTT 5 only port (`broker.v5_listen`) keeps working beside it.

use std::process::Command;
use std::time::Duration;
use steward_tests::{now_ms, HubSandbox};

fn smoke(ts: i64) -> String {
    format!(r#"{{"ts":{ts},"seq":1,"metrics":{{"alarm":false,"co_ppm":1.5,"battery_v":3.1}}}}"#)
}

/// A rumqttc MQTT 5 client that waits for CONNACK, publishes one QoS 1 message and waits
/// for its PUBACK.
async fn publish_v5(
    addr: std::net::SocketAddr,
    id: &str,
    topic: &str,
    payload: String,
) -> anyhow::Result<()> {
    use rumqttc::v5::mqttbytes::v5::Packet;
    use rumqttc::v5::mqttbytes::QoS;
    use rumqttc::v5::{AsyncClient, Event, MqttOptions};
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_credentials(id, format!("{id}-secret"));
    let (client, mut ev) = AsyncClient::new(opts, 10);
    client
        .publish(topic, QoS::AtLeastOnce, false, payload.into_bytes())
        .await?;
    let acked = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ev.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(anyhow::anyhow!("mqtt 5 client {id}: {e}")),
            }
        }
    })
    .await
    .map_err(|_| anyhow::anyhow!("mqtt 5 client {id}: no PUBACK within 20 s"))?;
    let _ = client.disconnect().await;
    acked
}

fn mosquitto_pub(port: u16, version: &str, id: &str, payload: &str) -> std::process::Output {
    Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-V", version])
        .args(["-q", "1", "-i", id, "-u", id, "-P", &format!("{id}-secret")])
        .args(["-t", &format!("devices/{id}/telemetry"), "-m", payload])
        .output()
        .expect("mosquitto_pub runs (Debian package mosquitto-clients)")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_311_and_5_clients_share_the_main_port() -> anyhow::Result<()> {
    let sb = HubSandbox::start().await?;
    let main = sb.hub.mqtt_addr;
    let ts = now_ms() - 5_000;

    // rumqttc, MQTT 3.1.1.
    let v4 = sb.device("smoke-1", "smoke-1-secret").await?;
    v4.publish("devices/smoke-1/telemetry", smoke(ts)).await?;
    v4.wait_acks(1).await?;
    v4.disconnect().await;
    // rumqttc, MQTT 5, on the same port.
    publish_v5(main, "smoke-2", "devices/smoke-2/telemetry", smoke(ts)).await?;
    // The MQTT 5 only port still serves MQTT 5.
    let v5_port = sb.hub.mqtt_v5_addr.expect("v5 listener");
    publish_v5(v5_port, "lift-1", "devices/lift-1/telemetry", {
        format!(r#"{{"ts":{ts},"metrics":{{"moving":false,"door":"closed"}}}}"#)
    })
    .await?;

    // Mosquitto's client with both protocol versions, on the same port.
    let port = main.port();
    for (i, version) in ["mqttv311", "mqttv5"].into_iter().enumerate() {
        let payload = format!(
            r#"{{"ts":{},"seq":{i},"metrics":{{"running":true,"outlet_pressure_mpa":0.42}}}}"#,
            ts + i as i64
        );
        let out =
            tokio::task::spawn_blocking(move || mosquitto_pub(port, version, "pump-1", &payload))
                .await?;
        assert!(
            out.status.success(),
            "mosquitto_pub -V {version}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let wait = Duration::from_secs(30);
    for (sql, n) in [
        (
            "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-1'",
            1,
        ),
        (
            "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-2'",
            1,
        ),
        (
            "SELECT count() FROM lift_telemetry WHERE device_id = 'lift-1'",
            1,
        ),
        (
            "SELECT count() FROM pump_telemetry WHERE device_id = 'pump-1'",
            2,
        ),
    ] {
        sb.wait_count(sql, n, wait).await?;
    }
    assert_eq!(sb.hub.broker_metrics.auth_refused(), 0);
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_second_port_mqtt_5_still_connects() -> anyhow::Result<()> {
    let sb =
        HubSandbox::start_with(steward_tests::TEST_ESTATE, |c| c.broker.v5_listen = None).await?;
    assert!(sb.hub.mqtt_v5_addr.is_none());
    let ts = now_ms() - 5_000;
    publish_v5(
        sb.hub.mqtt_addr,
        "smoke-1",
        "devices/smoke-1/telemetry",
        smoke(ts),
    )
    .await?;
    sb.wait_count(
        "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-1'",
        1,
        Duration::from_secs(30),
    )
    .await?;
    sb.shutdown().await;
    Ok(())
}
