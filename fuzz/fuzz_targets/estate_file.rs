//! The estate file: `EstateFile::parse` on any text either yields a file that validates
//! and applies to a registry, or a parse or validation error naming what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;
use steward_estate::{EstateError, EstateFile, Registry};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match EstateFile::parse(text) {
        Ok(file) => {
            if file.devices_csv.is_some() {
                return;
            }
            file.validate().expect("a parsed file validates");
            let reg = Registry::open_in_memory().expect("in-memory registry");
            reg.apply(&file).expect("a valid estate file applies");
            let dir = reg.directory();
            assert_eq!(dir.devices.len(), file.devices.len());
            assert_eq!(dir.gateways.len(), file.gateways.len());
            for d in &file.devices {
                let info = dir.device(&d.id).expect("every device is in the directory");
                assert_eq!(info.kind, d.kind);
            }
            // What the file says survives a round trip through its own serialisation.
            let again = toml::to_string(&file).expect("an estate file serialises");
            let back = EstateFile::parse(&again).expect("a serialised estate parses");
            assert_eq!(back.devices.len(), file.devices.len());
        }
        Err(EstateError::Parse { message, .. }) => assert!(!message.is_empty()),
        Err(EstateError::Invalid(errors)) => {
            assert!(!errors.is_empty());
            assert!(errors.iter().all(|e| !e.is_empty()));
        }
        Err(other) => panic!("parse returned an unexpected error: {other}"),
    }
});
