//! The topic parser: any bytes either parse into a topic whose id is a valid registry id
//! and which prints back to the same text, or fail with a short, non-empty reason.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_ingest::contract::{parse_topic, Channel, Topic};

fuzz_target!(|data: &[u8]| {
    match parse_topic(data) {
        Ok(t) => {
            let text = match t {
                Topic::Device { id, channel } => {
                    let leaf = match channel {
                        Channel::Telemetry => "telemetry",
                        Channel::Events => "events",
                        Channel::Status => "status",
                        Channel::Commands => "commands",
                    };
                    assert!(steward_estate::validate_id(id).is_ok());
                    format!("devices/{id}/{leaf}")
                }
                Topic::Gateway { id } => {
                    assert!(steward_estate::validate_id(id).is_ok());
                    format!("gateways/{id}/telemetry")
                }
                Topic::StationAlerts { id } => {
                    assert!(steward_estate::validate_id(id).is_ok());
                    format!("stations/{id}/alerts")
                }
            };
            assert_eq!(text.as_bytes(), data, "topic does not print back");
        }
        Err(detail) => {
            assert!(!detail.is_empty());
            assert!(
                detail.len() <= steward_fuzz::MAX_DETAIL,
                "{} bytes",
                detail.len()
            );
        }
    }
});
