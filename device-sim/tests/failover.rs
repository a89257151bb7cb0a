//! A fleet given two brokers: the first takes messages without acknowledging them and then
//! goes away (connection closed, port refused); the device must move to the second and
//! send again what the first never acknowledged.

use bytes::BytesMut;
use rumqttc::mqttbytes::v4::{ConnAck, ConnectReturnCode, Packet, PubAck, Publish};
use rumqttc::mqttbytes::Error as WireError;
use rumqttc::QoS;
use std::time::Duration;
use steward_device_sim::{run_fleet, FleetConfig, SimDevice};
use steward_estate::DeviceKind;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// The next packet of `s`, or `None` once the peer closed.
async fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Packet> {
    loop {
        match Packet::read(buf, 1 << 20) {
            Ok(p) => return Some(p),
            Err(WireError::InsufficientBytes(_)) => {}
            Err(e) => panic!("broker got garbage: {e:?}"),
        }
        if s.read_buf(buf).await.unwrap_or(0) == 0 {
            return None;
        }
    }
}

/// Accepts one login, takes publishes without ever acknowledging them, and once it holds
/// a telemetry message closes the connection and stops listening. Returns what it took.
async fn black_hole(listener: TcpListener) -> Vec<Publish> {
    let (mut s, _) = listener.accept().await.expect("accept");
    let mut buf = BytesMut::new();
    let mut taken = Vec::new();
    while let Some(p) = read_packet(&mut s, &mut buf).await {
        match p {
            Packet::Connect(_) => {
                let mut out = BytesMut::new();
                ConnAck::new(ConnectReturnCode::Success, false)
                    .write(&mut out)
                    .expect("connack");
                s.write_all(&out).await.expect("write");
            }
            Packet::Publish(p) => {
                let telemetry = p.topic.ends_with("/telemetry");
                taken.push(p);
                if telemetry {
                    break;
                }
            }
            _ => {}
        }
    }
    drop(s);
    drop(listener);
    taken
}

/// Accepts every login and acknowledges every QoS 1 publish, forwarding what it got.
async fn good_broker(listener: TcpListener, got: mpsc::UnboundedSender<Publish>) {
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let got = got.clone();
        tokio::spawn(async move {
            let mut buf = BytesMut::new();
            while let Some(p) = read_packet(&mut s, &mut buf).await {
                let mut out = BytesMut::new();
                match p {
                    Packet::Connect(_) => {
                        ConnAck::new(ConnectReturnCode::Success, false)
                            .write(&mut out)
                            .expect("connack");
                    }
                    Packet::Publish(p) => {
                        if p.qos == QoS::AtLeastOnce {
                            PubAck::new(p.pkid).write(&mut out).expect("puback");
                        }
                        let _ = got.send(p);
                    }
                    Packet::PingReq => {
                        rumqttc::mqttbytes::v4::PingResp
                            .write(&mut out)
                            .expect("pingresp");
                    }
                    Packet::Disconnect => return,
                    _ => {}
                }
                if s.write_all(&out).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_fails_over_and_resends_unacknowledged() {
    let first = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let second = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let brokers = format!(
        "{},{}",
        first.local_addr().expect("addr"),
        second.local_addr().expect("addr")
    );
    let swallowed = tokio::spawn(black_hole(first));
    let (got_tx, mut got) = mpsc::unbounded_channel();
    let good = tokio::spawn(good_broker(second, got_tx));

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let fleet = tokio::spawn(run_fleet(
        FleetConfig {
            broker: brokers,
            devices: vec![SimDevice {
                id: "smoke-1".into(),
                kind: DeviceKind::Smoke,
                secret: Some("smoke-1-secret".into()),
                gateway: None,
                report_interval_s: 10,
            }],
            gateways: vec![],
            seed: 7,
            speed: 20.0,
            faults: vec![],
            duration: None,
            qos: 1,
            self_tests: Default::default(),
        },
        async {
            let _ = stop_rx.await;
        },
    ));

    // Device 0 starts on the first broker, which keeps what it took unacknowledged.
    let taken = tokio::time::timeout(Duration::from_secs(30), swallowed)
        .await
        .expect("the first broker got a telemetry message")
        .expect("black hole task");
    assert!(
        taken.iter().any(|p| p.topic == "devices/smoke-1/status"),
        "{taken:?}"
    );
    // Every message the first broker never acknowledged reaches the second one.
    let mut missing: Vec<(String, Vec<u8>)> = taken
        .iter()
        .map(|p| (p.topic.clone(), p.payload.to_vec()))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !missing.is_empty() {
        let p = tokio::time::timeout_at(deadline, got.recv())
            .await
            .unwrap_or_else(|_| panic!("never re-sent to the second broker: {missing:?}"))
            .expect("good broker running");
        missing.retain(|(t, body)| !(t == &p.topic && body[..] == p.payload[..]));
    }

    let _ = stop_tx.send(());
    let report = tokio::time::timeout(Duration::from_secs(30), fleet)
        .await
        .expect("fleet stops")
        .expect("fleet task")
        .expect("fleet ran");
    assert!(report.errors >= 1, "{report:?}");
    assert_eq!(
        report.acked, report.published,
        "every message acknowledged once, by the second broker: {report:?}"
    );
    good.abort();
}
