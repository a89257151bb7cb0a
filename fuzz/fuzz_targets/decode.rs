//! One MQTT message through `contract::decode`, the function the ingest pipeline calls:
//! the first byte picks a topic (see `steward_fuzz::TOPICS`), the rest is the payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_ingest::contract;

fuzz_target!(|data: &[u8]| {
    let Some((topic, payload)) = steward_fuzz::split_input(data) else {
        return;
    };
    let out = contract::decode(
        topic,
        payload,
        steward_fuzz::directory(),
        steward_fuzz::NOW_MS,
        steward_fuzz::config(),
    );
    steward_fuzz::check_decoded(topic, payload, &out);
});
