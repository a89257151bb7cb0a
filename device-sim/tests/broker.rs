//! The fleet and the load generator against a real (embedded rumqttd) broker with
//! username/password authentication.

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use serde_json::Value;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use steward_device_sim::{run_fleet, run_load, Fault, FleetConfig, LoadConfig, SimDevice};
use steward_estate::DeviceKind;
use tokio::sync::mpsc;

const OBSERVER: (&str, &str) = ("observer", "observer-secret");

/// Start a broker on a free port that accepts the given (username, password) pairs.
fn start_broker(users: &[(&str, &str)]) -> SocketAddr {
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").expect("free port");
        l.local_addr().expect("addr")
    };
    let mut auth: HashMap<String, String> = users
        .iter()
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .collect();
    auth.insert(OBSERVER.0.into(), OBSERVER.1.into());
    let server = ServerSettings {
        name: "v4".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: 5_000,
            max_payload_size: 64 * 1024,
            max_inflight_count: 1_000,
            auth: Some(auth),
            external_auth: None,
            dynamic_filters: false,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1_000,
            max_outgoing_packet_count: 10_000,
            max_segment_size: 16 * 1024 * 1024,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        ..Config::default()
    };
    // The broker thread lives as long as the test process.
    std::thread::spawn(move || {
        let mut broker = Broker::new(config);
        if let Err(e) = broker.start() {
            eprintln!("broker stopped: {e}");
        }
    });
    for _ in 0..100 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return addr;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("broker did not come up on {addr}");
}

/// Subscribe to everything and forward (topic, payload, retain).
async fn observe(addr: SocketAddr) -> mpsc::UnboundedReceiver<(String, Vec<u8>, bool)> {
    let mut opts = MqttOptions::new(OBSERVER.0, addr.ip().to_string(), addr.port());
    opts.set_credentials(OBSERVER.0, OBSERVER.1);
    opts.set_max_packet_size(64 * 1024, 64 * 1024);
    let (client, mut eventloop) = AsyncClient::new(opts, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    let (subscribed_tx, subscribed_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let _keep = client.clone();
        client
            .subscribe("#", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(t) = subscribed_tx.take() {
                        let _ = t.send(());
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    if tx.send((p.topic, p.payload.to_vec(), p.retain)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), subscribed_rx)
        .await
        .expect("observer subscribed in time")
        .expect("observer alive");
    rx
}

fn device(id: &str, kind: DeviceKind, secret: Option<&str>, gateway: Option<&str>) -> SimDevice {
    SimDevice {
        id: id.into(),
        kind,
        secret: secret.map(Into::into),
        gateway: gateway.map(Into::into),
        report_interval_s: 10,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_publishes_contract_and_last_will() {
    let addr = start_broker(&[
        ("smoke-1", "smoke-1-secret"),
        ("lift-1", "lift-1-secret"),
        ("gw-1", "gw-1-secret"),
    ]);
    let mut rx = observe(addr).await;
    let cfg = FleetConfig {
        broker: addr.to_string(),
        devices: vec![
            device("smoke-1", DeviceKind::Smoke, Some("smoke-1-secret"), None),
            device("lift-1", DeviceKind::Lift, Some("lift-1-secret"), None),
            device("gate-1", DeviceKind::Gate, None, Some("gw-1")),
            device("pump-1", DeviceKind::Pump, None, Some("gw-1")),
        ],
        gateways: vec![("gw-1".into(), "gw-1-secret".into())],
        seed: 7,
        // 10 s report interval at speed 20: a report every half second.
        speed: 20.0,
        faults: vec![
            (Fault::Offline, Some("lift-1".into())),
            (Fault::GateForced, None),
        ],
        duration: Some(Duration::from_secs(4)),
        qos: 1,
        self_tests: Default::default(),
    };
    let report = run_fleet(cfg, std::future::pending())
        .await
        .expect("fleet runs");
    assert!(report.published > 10, "{report:?}");
    assert_eq!(report.errors, 0, "{report:?}");
    assert_eq!(report.acked, report.published, "{report:?}");

    // Everything the broker acknowledged is on its way to the observer, plus lift-1's
    // last will: read until that much has arrived (or a generous deadline passes, and the
    // assertions below say what is missing).
    let mut seen: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while (seen.len() as u64) < report.acked + 1 {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(m)) => seen.push(m),
            _ => break,
        }
    }
    let on = |topic: &'static str| seen.iter().filter(move |(t, _, _)| t == topic);
    let texts = |topic: &'static str| {
        on(topic)
            .map(|(_, p, _)| String::from_utf8_lossy(p).into_owned())
            .collect::<Vec<_>>()
    };

    assert_eq!(texts("devices/smoke-1/status"), ["online", "offline"]);
    assert_eq!(
        texts("devices/lift-1/status"),
        ["online", "offline"],
        "lift-1 went offline through its last will"
    );

    let mut last_seq = 0;
    for (_, p, retain) in on("devices/smoke-1/telemetry") {
        assert!(!retain);
        let doc: Value = serde_json::from_slice(p).expect("json");
        let seq = doc["seq"].as_u64().expect("seq");
        assert!(seq > last_seq);
        last_seq = seq;
        assert!(doc["ts"].as_i64().is_some());
        assert!(doc["metrics"]["battery_v"].as_f64().is_some());
    }
    assert!(last_seq >= 5, "smoke-1 reported {last_seq} times");
    assert_eq!(
        on("devices/lift-1/telemetry").count(),
        1,
        "one normal report, then silence"
    );

    let batches: Vec<Value> = on("gateways/gw-1/telemetry")
        .map(|(_, p, _)| serde_json::from_slice(p).expect("json"))
        .collect();
    assert!(batches.len() >= 4, "{} gateway batches", batches.len());
    let mut gate_states = Vec::new();
    for batch in &batches {
        for entry in batch.as_array().expect("array") {
            let id = entry["device_id"].as_str().expect("device_id");
            assert!(id == "gate-1" || id == "pump-1");
            assert!(entry["seq"].as_u64().is_some() && entry["ts"].as_i64().is_some());
            if id == "gate-1" {
                gate_states.push(entry["metrics"]["state"].as_str().unwrap_or("").to_string());
            }
        }
    }
    assert_eq!(
        gate_states.last().map(String::as_str),
        Some("open"),
        "forced open"
    );
    let forced = texts("devices/gate-1/events")
        .iter()
        .filter(|e| e.contains("\"forced_open\""))
        .count();
    assert_eq!(forced, 1, "the gateway relays the child's events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_counts_refused_logins() {
    let addr = start_broker(&[("smoke-1", "right-secret")]);
    let cfg = FleetConfig {
        broker: addr.to_string(),
        devices: vec![device(
            "smoke-1",
            DeviceKind::Smoke,
            Some("wrong-secret"),
            None,
        )],
        gateways: vec![],
        seed: 1,
        speed: 10.0,
        faults: vec![],
        duration: Some(Duration::from_secs(2)),
        qos: 1,
        self_tests: Default::default(),
    };
    let report = run_fleet(cfg, std::future::pending())
        .await
        .expect("fleet runs");
    assert!(report.errors > 0, "{report:?}");
    assert_eq!(report.acked, 0, "{report:?}");
}

fn load_devices(n: usize) -> (Vec<SimDevice>, Vec<(String, String)>) {
    let devices: Vec<SimDevice> = (0..n)
        .map(|i| SimDevice {
            id: format!("load-{i}"),
            kind: DeviceKind::ALL[i % 4],
            secret: Some(format!("load-{i}-secret")),
            gateway: None,
            report_interval_s: 60,
        })
        .collect();
    let users = devices
        .iter()
        .map(|d| (d.id.clone(), d.secret.clone().unwrap_or_default()))
        .collect();
    (devices, users)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_sends_total_and_paces_rate() {
    let (devices, users) = load_devices(8);
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let addr = start_broker(&users);
    let mut rx = observe(addr).await;

    let report = run_load(LoadConfig {
        broker: addr.to_string(),
        devices: devices.clone(),
        rate: 0,
        total: Some(5_000),
        duration: None,
        qos: 1,
        seed: 1,
        connections: 8,
        progress: false,
    })
    .await
    .expect("load runs");
    assert_eq!(report.sent, 5_000, "{report:?}");
    assert_eq!(report.acked, 5_000, "{report:?}");
    assert_eq!(report.errors + report.connect_failures, 0, "{report:?}");
    assert!(report.rate() > 0.0);

    // Per device: valid payloads, increasing seq and strictly increasing ts.
    let mut last: HashMap<String, (u64, i64)> = HashMap::new();
    let mut got = 0;
    while got < 5_000 {
        let (topic, payload, _) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("observer gets every message")
            .expect("observer alive");
        let doc: Value = serde_json::from_slice(&payload).expect("json");
        let seq = doc["seq"].as_u64().expect("seq");
        let ts = doc["ts"].as_i64().expect("ts");
        assert!(doc["metrics"].is_object());
        let prev = last
            .insert(topic.clone(), (seq, ts))
            .unwrap_or((0, i64::MIN));
        assert!(
            seq > prev.0 && ts > prev.1,
            "{topic}: {prev:?} then {seq} {ts}"
        );
        got += 1;
    }
    assert_eq!(last.len(), 8, "spread over every connection");

    let report = run_load(LoadConfig {
        broker: addr.to_string(),
        devices,
        rate: 1_000,
        total: None,
        duration: Some(Duration::from_secs(2)),
        qos: 0,
        seed: 1,
        connections: 4,
        progress: false,
    })
    .await
    .expect("paced load runs");
    // Pacing means never faster than the rate over the time it ran; a busy machine may
    // send fewer in the 2 s, so there is no lower bound beyond "it ran".
    assert!(
        report.sent >= 100,
        "1000 msg/s for 2 s sent little: {report:?}"
    );
    assert!(
        report.sent as f64 <= 1_000.0 * report.elapsed.as_secs_f64() * 1.1 + 50.0,
        "1000 msg/s for 2 s went faster than the rate: {report:?}"
    );
    assert_eq!(report.acked, report.sent, "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_reports_connect_failures() {
    let addr = start_broker(&[("load-0", "load-0-secret")]);
    let (devices, _) = load_devices(2);
    let report = run_load(LoadConfig {
        broker: addr.to_string(),
        devices,
        rate: 0,
        total: Some(100),
        duration: None,
        qos: 1,
        seed: 1,
        connections: 2,
        progress: false,
    })
    .await
    .expect("one connection works");
    assert_eq!(report.connect_failures, 1, "{report:?}");
    // The total is spread over the connections that came up.
    assert_eq!(report.sent, 100, "{report:?}");
    assert_eq!(report.acked, 100, "{report:?}");
}
