//! Our rumqttd copy gives back the log segments every reader has passed (rumqttd alone
//! keeps `max_segment_count` of them whatever the readers did). These tests run a real
//! embedded broker with small segments and check both sides: a reader that keeps up lets
//! segments go, and segments a reader has not read yet are never given back early.
//!
//! The release counter is process-wide, so this file holds a single test (each file is its
//! own process) that runs the two cases one after the other.

use std::time::{Duration, Instant};
use steward_broker::{
    log_segments_released, Broker, BrokerConfig, BrokerMetrics, LogGap, Notification,
};
use steward_estate::Registry;

const PAYLOAD: usize = 500;

fn broker() -> Broker {
    let config = BrokerConfig {
        v4_listen: "127.0.0.1:0".parse().expect("addr"),
        v5_listen: None,
        max_payload_bytes: 1024,
        // About 16 messages per segment, and room for far more than a test publishes: any
        // loss here would be a release, not rumqttd's retention.
        max_segment_bytes: 8 * 1024,
        max_segment_count: 10_000,
        ..BrokerConfig::default()
    };
    let registry = Registry::open_in_memory().expect("registry");
    Broker::start(&config, registry, BrokerMetrics::default()).expect("broker")
}

/// Read until `want` forwards arrived or nothing came for a while; returns (received,
/// lost by LogGap).
fn read(rx: &mut steward_broker::LinkRx, gap: &mut LogGap, want: u64) -> (u64, u64) {
    let (mut received, mut lost) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while received + lost < want && Instant::now() < deadline {
        match rx.recv_deadline(Instant::now() + Duration::from_millis(200)) {
            Ok(Some(Notification::Forward(f))) => {
                if let Some((_, offset)) = f.cursor {
                    lost += gap.observe(offset);
                }
                received += 1;
            }
            Ok(Some(Notification::Unschedule)) => rx.ready().expect("ready"),
            _ => {}
        }
    }
    (received, lost)
}

#[test]
fn segments_are_released_once_read_and_never_before() {
    let b = broker();
    let (mut sub_tx, mut sub_rx) = b.link("reader").expect("link");
    sub_tx.subscribe("devices/#").expect("subscribe");
    let (mut pub_tx, _pub_rx) = b.link("device").expect("link");
    let mut gap = LogGap::default();

    // 1. The reader does not read while 40 segments' worth is published: nothing it has
    //    not read may be released, and it then reads every message.
    let before = log_segments_released();
    for i in 0..640 {
        pub_tx
            .publish(format!("devices/d/telemetry/{i}"), vec![b'x'; PAYLOAD])
            .expect("publish");
    }
    std::thread::sleep(Duration::from_millis(300));
    let released_unread = log_segments_released() - before;
    let (received, lost) = read(&mut sub_rx, &mut gap, 640);
    assert_eq!(
        (received, lost),
        (640, 0),
        "an unread segment was released ({released_unread} released before reading)"
    );

    // 2. The reader keeps up: the segments behind it are given back as the log grows.
    let before = log_segments_released();
    let mut total = (0, 0);
    for round in 0..40 {
        for i in 0..32 {
            pub_tx
                .publish(
                    format!("devices/d/telemetry/{round}-{i}"),
                    vec![b'y'; PAYLOAD],
                )
                .expect("publish");
        }
        let (r, l) = read(&mut sub_rx, &mut gap, 32);
        total.0 += r;
        total.1 += l;
    }
    assert_eq!(total, (1280, 0), "a reader that keeps up loses nothing");
    let released = log_segments_released() - before;
    // 1,280 messages of 500 bytes fill about 80 segments of 8 KiB; all but the last one or
    // two are behind the reader by the end.
    assert!(
        released >= 60,
        "segments behind a caught-up reader are released: {released}"
    );
    b.shutdown();
}
