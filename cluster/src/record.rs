//! The telemetry record on Kafka: the payload as the device sent it, keyed by compound,
//! with the MQTT topic, the sender and the front end's receive time in headers, so a
//! worker or storage writer reading it again decodes it exactly as the first time.

use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::Message;
use steward_estate::inbound::{SHED_PREFIX, UNAUTHORIZED_PREFIX};
use steward_estate::Directory;

pub const H_TOPIC: &str = "mqtt_topic";
pub const H_SENDER: &str = "sender";
pub const H_RECEIVED: &str = "received_us";

/// The partition key of a message: the compound of the device (or gateway) its topic
/// names, so one worker owns every device of a compound (cross-device rules); a message
/// naming no known device is keyed by the id in its topic.
pub fn key_of(topic: &[u8], dir: &Directory) -> String {
    let t = std::str::from_utf8(topic).unwrap_or("");
    // Refused and shed publishes carry the sender after the prefix.
    let t = t
        .strip_prefix(UNAUTHORIZED_PREFIX)
        .or_else(|| t.strip_prefix(SHED_PREFIX))
        .unwrap_or(t);
    let mut parts = t.split('/');
    let (root, id) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let compound = match root {
        "devices" => dir.device(id).map(|d| d.compound.to_string()),
        "gateways" => dir.gateways.get(id).map(|g| g.compound.clone()),
        _ => dir.device(root).map(|d| d.compound.to_string()),
    };
    compound.unwrap_or_else(|| format!("unrouted:{id}"))
}

pub fn headers(topic: &[u8], sender: Option<&str>, received_us: i64) -> OwnedHeaders {
    let rec = received_us.to_string();
    let mut h = OwnedHeaders::new_with_capacity(3)
        .insert(Header {
            key: H_TOPIC,
            value: Some(topic),
        })
        .insert(Header {
            key: H_RECEIVED,
            value: Some(rec.as_bytes()),
        });
    if let Some(s) = sender {
        h = h.insert(Header {
            key: H_SENDER,
            value: Some(s.as_bytes()),
        });
    }
    h
}

/// What a consumer needs from a record; `None` when it lacks the topic header (not ours).
pub struct Record<'a> {
    pub topic: &'a [u8],
    pub payload: &'a [u8],
    pub sender: Option<&'a str>,
    pub received_us: Option<i64>,
}

pub fn read<'a>(m: &'a BorrowedMessage<'a>) -> Option<Record<'a>> {
    let h = m.headers()?;
    let mut topic = None;
    let mut sender = None;
    let mut received_us = None;
    for i in 0..h.count() {
        let x = h.get(i);
        match (x.key, x.value) {
            (H_TOPIC, Some(v)) => topic = Some(v),
            (H_SENDER, Some(v)) => sender = std::str::from_utf8(v).ok(),
            (H_RECEIVED, Some(v)) => {
                received_us = std::str::from_utf8(v).ok().and_then(|s| s.parse().ok())
            }
            _ => {}
        }
    }
    Some(Record {
        topic: topic?,
        payload: m.payload().unwrap_or(&[]),
        sender,
        received_us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use steward_estate::{DeviceInfo, DeviceKind};

    fn dir() -> Directory {
        let mut d = Directory::default();
        d.devices.insert(
            "sd-1".into(),
            DeviceInfo {
                id: Arc::from("sd-1"),
                kind: DeviceKind::Smoke,
                vendor: String::new(),
                building: "b-1".into(),
                compound: Arc::from("cmp-1"),
                location: String::new(),
                gateway: None,
                report_interval_s: 60,
                retired: false,
                station: "st-1".into(),
                secret_hash: None,
            },
        );
        d
    }

    #[test]
    fn keys_are_compounds_and_unknown_ids_stay_apart() {
        let d = dir();
        assert_eq!(key_of(b"devices/sd-1/telemetry", &d), "cmp-1");
        assert_eq!(key_of(b"devices/sd-1/events", &d), "cmp-1");
        // A refused publish is keyed by its sender's compound too.
        let refused = format!("{UNAUTHORIZED_PREFIX}sd-1/devices/sd-2/telemetry");
        assert_eq!(key_of(refused.as_bytes(), &d), "cmp-1");
        assert_eq!(key_of(b"devices/ghost/telemetry", &d), "unrouted:ghost");
        assert_eq!(key_of(&[0xff, 0xfe], &d), "unrouted:");
    }
}
