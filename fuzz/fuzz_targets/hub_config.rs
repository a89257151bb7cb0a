//! The hub configuration (`steward.toml`): `HubConfig::parse` then `validate`, as the hub
//! loads it; every error is a non-empty message naming a key.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward::{HubConfig, HubError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let check = |e: HubError| match e {
        HubError::Config(errors) => {
            assert!(!errors.is_empty());
            assert!(errors.iter().all(|e| !e.trim().is_empty()));
        }
        other => panic!("config parse returned an unexpected error: {other}"),
    };
    match HubConfig::parse(text) {
        Ok(cfg) => {
            if let Err(e) = cfg.validate() {
                check(e);
            }
        }
        Err(e) => check(e),
    }
});
