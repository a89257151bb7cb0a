//! `steward check-payload`: runs one payload through the hub's own contract decoder and
//! prints what it would accept and every problem of what it would reject, each with its
//! JSON path; exits 1 when anything is rejected.

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
    now_ms: Option<i64>,
) -> Result<()> {
    let payload = read_payload(file)?;
    let registry = registry_for(topic, kind, estate)?;
    let checked = contract::check(
        topic.as_bytes(),
        &payload,
        &registry.directory(),
        now_ms.unwrap_or_else(steward_estate::clock::now_ms),
        &IngestConfig::default(),
    );
    print_decoded(&checked.decoded);
    for f in &checked.findings {
        println!("rejected {}: {}: {}", f.path, f.reason, f.detail);
    }
    let accepted = checked.decoded.readings.len()
        + checked.decoded.events.len()
        + checked.decoded.statuses.len();
    match checked.findings.len() {
        0 => {}
        n => {
            println!(
                "{n} {}; {accepted} accepted",
                if n == 1 { "error" } else { "errors" }
            );
            std::process::exit(1);
        }
    }
    Ok(())
}

/// `--now`: RFC 3339 (`2026-03-02T08:20:00Z`) or milliseconds since the epoch.
pub fn parse_now(s: &str) -> Result<i64, String> {
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    humantime::parse_rfc3339_weak(s)
        .map_err(|e| format!("`{s}` is neither RFC 3339 nor milliseconds since the epoch: {e}"))
        .and_then(|t| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .map_err(|_| format!("`{s}` is before 1970"))
        })
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
            "accepted reading: device={} kind={} ts={} seq={} metrics={} extras={}",
            r.device_id,
            r.kind,
            r.ts_ms,
            r.seq.map_or("-".to_string(), |s| s.to_string()),
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
}
