//! rumqttd drops the oldest segments of a subscription's in-memory log when the
//! subscriber lags too far, and only logs it. These tests run a real embedded broker with
//! tiny segments and check that [`LogGap`] counts exactly what a lagging subscriber lost,
//! and nothing when it keeps up.

use std::time::{Duration, Instant};
use steward_broker::{Broker, BrokerConfig, BrokerMetrics, LogGap, Notification};
use steward_estate::Registry;

fn broker(segment_bytes: usize) -> Broker {
    let config = BrokerConfig {
        v4_listen: "127.0.0.1:0".parse().expect("addr"),
        v5_listen: None,
        max_payload_bytes: 1024,
        max_segment_bytes: segment_bytes,
        max_segment_count: 2,
        ..BrokerConfig::default()
    };
    let registry = Registry::open_in_memory().expect("registry");
    Broker::start(&config, registry, BrokerMetrics::default()).expect("broker")
}

/// Publish `n` messages of 500 bytes while the subscriber does not read, then read it
/// all; returns (received, lost by LogGap).
fn lagging_subscriber(segment_bytes: usize, n: usize) -> (u64, u64) {
    let b = broker(segment_bytes);
    let (mut sub_tx, mut sub_rx) = b.link("slow").expect("link");
    sub_tx.subscribe("#").expect("subscribe");
    let (mut pub_tx, _pub_rx) = b.link("fast").expect("link");
    for i in 0..n {
        pub_tx
            .publish(format!("devices/d/telemetry/{i}"), vec![b'x'; 500])
            .expect("publish");
    }
    std::thread::sleep(Duration::from_millis(200));
    // A last message, published once the reader is reading: its offset shows any gap
    // before it, however far rumqttd had already moved on.
    let (mut received, mut gap) = (0u64, LogGap::default());
    let mut lost = 0;
    let mut marker_sent = false;
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        match sub_rx.recv_deadline(Instant::now() + Duration::from_millis(100)) {
            Ok(Some(Notification::Forward(f))) => {
                if let Some((_, offset)) = f.cursor {
                    lost += gap.observe(offset);
                }
                if f.publish.topic.ends_with(b"/marker") {
                    break;
                }
                received += 1;
            }
            Ok(Some(Notification::Unschedule)) => {
                sub_rx.ready().expect("ready");
            }
            _ => {
                if !marker_sent {
                    pub_tx
                        .publish("devices/d/telemetry/marker", b"end".to_vec())
                        .expect("publish");
                    marker_sent = true;
                }
            }
        }
    }
    b.shutdown();
    (received, lost)
}

#[test]
fn a_lagging_subscriber_loses_messages_and_the_gap_counts_them_exactly() {
    let (received, lost) = lagging_subscriber(4 * 1024, 200);
    assert!(lost > 0, "tiny segments must overflow: received {received}");
    assert_eq!(received + lost, 200, "received {received}, lost {lost}");
}

#[test]
fn a_subscriber_that_keeps_up_loses_nothing() {
    let (received, lost) = lagging_subscriber(64 * 1024 * 1024, 200);
    assert_eq!((received, lost), (200, 0));
}
