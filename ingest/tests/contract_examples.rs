//! The worked examples of docs/device-contract.md (section 15) go through the hub's own
//! decoder, so the contract cannot promise what the hub refuses.
//!
//! Each ```json block is sent on the topic named by the `Topic `...`` line before it, at
//! the time the section says to check them at (`--now ...`, the same flag a vendor gives
//! `steward check-payload`). Examples under a "Rejected" heading must be refused with
//! exactly the reasons their text names; all others must be accepted in full. The estate
//! is made from the topics: each device's kind is the start of its id, and a gateway's
//! entries are registered behind it.

use std::collections::BTreeSet;
use steward_estate::{EstateFile, Registry, RejectReason};
use steward_ingest::{contract, IngestConfig};

struct Example {
    heading: String,
    topic: String,
    json: String,
    /// The text after the block, up to the next block or heading.
    prose: String,
}

fn doc() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/device-contract.md");
    std::fs::read_to_string(path).expect("docs/device-contract.md")
}

fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc.find(title).unwrap_or_else(|| panic!("no `{title}`"));
    let rest = &doc[start + title.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    &rest[..end]
}

/// The text between the first pair of backticks after `marker` on one line.
fn quoted_after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let rest = &rest[rest.find('`')? + 1..];
    Some(&rest[..rest.find('`')?])
}

fn examples(section: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let (mut heading, mut topic) = (String::new(), None::<String>);
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if let Some(h) = line.strip_prefix("### ") {
            heading = h.to_string();
            topic = None;
        } else if line.starts_with("Topic `") {
            topic = quoted_after(line, "Topic").map(str::to_string);
        } else if line.trim() == "```json" {
            let json: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
            out.push(Example {
                heading: heading.clone(),
                topic: topic
                    .clone()
                    .unwrap_or_else(|| panic!("{heading}: no `Topic` line")),
                json: json.join("\n"),
                prose: String::new(),
            });
        } else if let Some(last) = out.last_mut() {
            if last.heading == heading {
                last.prose.push_str(line);
                last.prose.push('\n');
            }
        }
    }
    out
}

/// An estate holding every device and gateway the examples publish as.
fn estate(examples: &[Example]) -> Registry {
    let mut toml = String::from(
        "[[stations]]\nid = \"st\"\nname = \"s\"\n[[streets]]\nid = \"street\"\nname = \"s\"\nfallback_station = \"st\"\n\
         [[communities]]\nid = \"c\"\nname = \"c\"\nstreet = \"street\"\n[[compounds]]\nid = \"cmp\"\nname = \"c\"\ncommunity = \"c\"\n\
         [[buildings]]\nid = \"b\"\nname = \"b\"\ncompound = \"cmp\"\n",
    );
    let mut devices = BTreeSet::new();
    let mut gateways = BTreeSet::new();
    for e in examples {
        let parts: Vec<&str> = e.topic.split('/').collect();
        match parts.as_slice() {
            ["devices", id, _] => {
                devices.insert((id.to_string(), None));
            }
            ["gateways", gw, _] => {
                gateways.insert(gw.to_string());
                let batch: serde_json::Value = serde_json::from_str(&e.json).expect("gateway json");
                for entry in batch.as_array().into_iter().flatten() {
                    if let Some(id) = entry["device_id"].as_str() {
                        devices.insert((id.to_string(), Some(gw.to_string())));
                    }
                }
            }
            _ => panic!("{}: unexpected topic {}", e.heading, e.topic),
        }
    }
    for gw in &gateways {
        toml.push_str(&format!(
            "[[gateways]]\nid = \"{gw}\"\nvendor = \"v\"\ncompound = \"cmp\"\nsecret = \"gateway-secret\"\n"
        ));
    }
    for (id, gw) in &devices {
        let kind = id.split('-').next().unwrap_or_default();
        toml.push_str(&format!(
            "[[devices]]\nid = \"{id}\"\nkind = \"{kind}\"\nvendor = \"v\"\nbuilding = \"b\"\n"
        ));
        match gw {
            Some(gw) => toml.push_str(&format!("gateway = \"{gw}\"\n")),
            None => toml.push_str("secret = \"device-secret\"\n"),
        }
    }
    let registry = Registry::open_in_memory().expect("registry");
    registry
        .apply(&EstateFile::parse(&toml).expect("estate of the examples"))
        .expect("apply");
    registry
}

/// The time the section says to check its examples at: `--now <RFC 3339>`.
fn judged_at(section: &str) -> i64 {
    let line = section
        .lines()
        .find(|l| l.contains("--now "))
        .expect("section 15 names the time to check its examples at (`--now ...`)");
    let when = line
        .split("--now ")
        .nth(1)
        .and_then(|r| r.split(['`', ' ']).next())
        .expect("a time after --now");
    chrono::DateTime::parse_from_rfc3339(when)
        .unwrap_or_else(|e| panic!("--now {when}: {e}"))
        .timestamp_millis()
}

#[test]
fn worked_examples_decode_as_the_contract_says() {
    let doc = doc();
    let section = section(&doc, "## 15. Worked examples");
    let now = judged_at(section);
    let examples = examples(section);
    assert!(
        examples.len() >= 10,
        "found only {} examples",
        examples.len()
    );
    let registry = estate(&examples);
    let dir = registry.directory();
    let cfg = IngestConfig::default();
    for e in &examples {
        let checked = contract::check(e.topic.as_bytes(), e.json.as_bytes(), &dir, now, &cfg);
        let d = &checked.decoded;
        let accepted = d.readings.len() + d.events.len() + d.statuses.len();
        let reasons: BTreeSet<&str> = d.rejects.iter().map(|r| r.reason.as_str()).collect();
        let named: BTreeSet<&str> = RejectReason::ALL
            .iter()
            .map(|r| r.as_str())
            .filter(|r| e.prose.contains(&format!("`{r}`")))
            .collect();
        let what = format!("{} ({}): {:#?}", e.heading, e.topic, checked.findings);
        assert_eq!(
            checked.findings.is_empty(),
            d.rejects.is_empty(),
            "check and decode agree: {what}"
        );
        if e.heading.starts_with("Rejected") {
            assert!(!d.rejects.is_empty(), "refused: {what}");
            assert_eq!(reasons, named, "the reasons the text names: {what}");
        } else {
            assert!(d.rejects.is_empty(), "accepted in full: {what}");
            assert!(accepted > 0, "{what}");
        }
        // "`extras` = `{...}`": the vendor metrics as stored.
        if let Some(extras) = quoted_after(&e.prose.replace('\n', " "), "`extras` =") {
            let got: Vec<_> = d
                .readings
                .iter()
                .filter_map(|r| r.extras.as_deref())
                .collect();
            assert_eq!(got, vec![extras], "{what}");
        }
    }
}

#[test]
fn every_reject_reason_is_in_the_contract() {
    let doc = doc();
    let table = section(&doc, "## 11. Reject reasons");
    for r in RejectReason::ALL {
        assert!(
            table.contains(&format!("| `{}` |", r.as_str())),
            "reason `{r}` missing from section 11"
        );
    }
}
