//! A third-party MQTT client (Mosquitto's `mosquitto_pub`, Debian package
//! mosquitto-clients) publishes under the contract: the figures and behaviour are not an
//! artefact of our own client.

use std::process::Command;
use std::time::Duration;
use steward_tests::{now_ms, HubSandbox};

fn mosquitto_pub(
    port: u16,
    user: &str,
    pass: &str,
    topic: &str,
    payload: &str,
) -> std::io::Result<std::process::Output> {
    Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-V",
            "mqttv311",
            "-q",
            "1",
        ])
        .args([
            "-i", user, "-u", user, "-P", pass, "-t", topic, "-m", payload,
        ])
        .output()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_pub_telemetry_lands_and_bad_secret_is_refused() -> anyhow::Result<()> {
    if Command::new("mosquitto_pub")
        .arg("--help")
        .output()
        .is_err()
    {
        panic!("mosquitto_pub not found: install the Debian package mosquitto-clients");
    }
    let sb = HubSandbox::start().await?;
    let port = sb.hub.mqtt_addr.port();
    let ts = now_ms() - 5_000;
    for i in 0..5 {
        let payload = format!(
            r#"{{"ts":{},"seq":{i},"metrics":{{"running":true,"outlet_pressure_mpa":0.42,"vibration_mm_s":1.1}}}}"#,
            ts + i
        );
        let out = tokio::task::spawn_blocking(move || {
            mosquitto_pub(
                port,
                "pump-1",
                "pump-1-secret",
                "devices/pump-1/telemetry",
                &payload,
            )
        })
        .await??;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    sb.wait_count(
        "SELECT count() FROM pump_telemetry WHERE device_id = 'pump-1'",
        5,
        Duration::from_secs(20),
    )
    .await?;
    let out = tokio::task::spawn_blocking(move || {
        mosquitto_pub(
            port,
            "pump-1",
            "wrong-secret",
            "devices/pump-1/telemetry",
            "{}",
        )
    })
    .await??;
    assert!(!out.status.success(), "a wrong secret must be refused");
    assert_eq!(sb.hub.broker_metrics.auth_refused(), 1);
    sb.shutdown().await;
    Ok(())
}
