//! `steward check-payload`: runs one payload through the hub's own contract decoder and
//! prints what it would accept and reject; exits 1 when anything is rejected.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use steward_estate::{DeviceKind, EstateFile, Registry};
use steward_ingest::contract;
use steward_ingest::IngestConfig;

pub fn check(
    topic: &str,
    kind: Option<DeviceKind>,
    estate: Option<&Path>,
    file: Option<&Path>,
) -> Result<()> {
    let payload = read_payload(file)?;
    let registry = registry_for(topic, kind, estate)?;
    let decoded = contract::decode(
        topic.as_bytes(),
        &payload,
        &registry.directory(),
        steward_estate::clock::now_ms(),
        &IngestConfig::default(),
    );
    print_decoded(&decoded);
    if !decoded.rejects.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

/// The payload file, or standard input when it is absent or `-`.
fn read_payload(file: Option<&Path>) -> Result<Vec<u8>> {
    let mut payload = Vec::new();
    match file {
        None => std::io::stdin().read_to_end(&mut payload)?,
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_end(&mut payload)?,
        Some(p) => {
            payload = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            payload.len()
        }
    };
    Ok(payload)
}

/// A registry that knows the topic's device: the given estate file, or a one-device
/// estate of the given kind.
fn registry_for(topic: &str, kind: Option<DeviceKind>, estate: Option<&Path>) -> Result<Registry> {
    let registry = Registry::open_in_memory()?;
    match (estate, kind) {
        (Some(path), _) => registry.apply(&EstateFile::load(path)?)?,
        (None, Some(kind)) => {
            let id = match contract::parse_topic(topic.as_bytes()) {
                Ok(contract::Topic::Device { id, .. }) => id.to_string(),
                Ok(contract::Topic::Gateway { .. }) => {
                    bail!(
                        "gateway topics need --estate to know which devices are behind the gateway"
                    )
                }
                Ok(contract::Topic::StationAlerts { .. }) => {
                    bail!("stations/{{id}}/alerts is the hub's downlink, not a device topic")
                }
                Err(e) => bail!("bad_topic: {e}"),
            };
            registry.apply(&EstateFile::parse(&format!(
                "[[stations]]\nid = \"st\"\nname = \"check\"\n[[streets]]\nid = \"s\"\nname = \"check\"\nfallback_station = \"st\"\n\
                 [[communities]]\nid = \"c\"\nname = \"check\"\nstreet = \"s\"\n[[compounds]]\nid = \"cmp\"\nname = \"check\"\ncommunity = \"c\"\n\
                 [[buildings]]\nid = \"b\"\nname = \"check\"\ncompound = \"cmp\"\n\
                 [[devices]]\nid = \"{id}\"\nkind = \"{kind}\"\nvendor = \"check\"\nbuilding = \"b\"\nsecret = \"check-payload\"\n"
            ))?)?
        }
        (None, None) => bail!("give --kind (the device's kind) or --estate (an estate file)"),
    }
    Ok(registry)
}

fn print_decoded(decoded: &steward_ingest::Decoded) {
    for r in &decoded.readings {
        let values: serde_json::Map<String, serde_json::Value> = r
            .values
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_json()))
            .collect();
        println!(
            "accepted reading: device={} kind={} ts={} seq={:?} metrics={} extras={}",
            r.device_id,
            r.kind,
            r.ts_ms,
            r.seq,
            serde_json::Value::Object(values),
            r.extras.as_deref().unwrap_or("-")
        );
    }
    for e in &decoded.events {
        println!(
            "accepted event: device={} event={} ts={} data={}",
            e.device_id, e.event, e.ts_ms, e.data
        );
    }
    for s in &decoded.statuses {
        println!(
            "accepted status: device={} status={} ts={}",
            s.device_id,
            s.status.as_str(),
            s.ts_ms
        );
    }
    for r in &decoded.rejects {
        println!("rejected: reason={} detail={}", r.reason, r.detail);
    }
}
