//! The published contract (docs/schemas/*.json and docs/device-contract.md) against the
//! metric catalogue it is generated from.
//!
//! `STEWARD_BLESS=1 cargo test -p steward-estate --test schemas` rewrites the schema files.

use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;
use steward_estate::catalog::{self, MetricSpec, MetricType};
use steward_estate::schema::{self, all_schemas, render};
use steward_estate::DeviceKind;

fn docs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

fn bless() -> bool {
    std::env::var("STEWARD_BLESS").is_ok_and(|v| v == "1")
}

#[test]
fn schema_files_match_catalogue() {
    let dir = docs_dir().join("schemas");
    let schemas = all_schemas();
    let names: BTreeSet<&str> = schemas.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.len(), schemas.len(), "duplicate schema file names");

    let stale: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(".schema.json") && !names.contains(n))
                })
                .collect()
        })
        .unwrap_or_default();

    if bless() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, value) in &schemas {
            std::fs::write(dir.join(name), render(value)).unwrap();
        }
        for p in stale {
            std::fs::remove_file(p).unwrap();
        }
        return;
    }

    let mut problems = Vec::new();
    for (name, value) in &schemas {
        let path = dir.join(name);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == render(value) => {}
            Ok(_) => problems.push(format!("{} differs from the catalogue", path.display())),
            Err(e) => problems.push(format!("cannot read {}: {e}", path.display())),
        }
    }
    for p in stale {
        problems.push(format!("{} is not generated any more", p.display()));
    }
    assert!(
        problems.is_empty(),
        "{}\nrun `STEWARD_BLESS=1 cargo test -p steward-estate --test schemas` to regenerate",
        problems.join("\n")
    );
}

fn expected_type(ty: &MetricType) -> &'static str {
    match ty {
        MetricType::Bool => "boolean",
        MetricType::Float { .. } => "number",
        MetricType::Int { .. } => "integer",
        MetricType::Enum(_) | MetricType::Text { .. } => "string",
    }
}

#[test]
fn every_catalogue_metric_and_event_is_in_its_schema() {
    for kind in DeviceKind::ALL {
        let s = schema::telemetry_schema(kind);
        let props = s["$defs"]["metrics"]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{kind}: no metric properties"));
        let specs = catalog::metrics(kind);
        assert_eq!(props.len(), specs.len(), "{kind}: extra metrics in schema");
        for m in specs {
            let p = props
                .get(m.name)
                .unwrap_or_else(|| panic!("{kind}: {} missing from schema", m.name));
            assert_eq!(p["type"], expected_type(&m.ty), "{kind}.{}", m.name);
            match m.ty {
                MetricType::Bool => {}
                MetricType::Float { min, max } => {
                    assert_eq!(p["minimum"].as_f64(), Some(min), "{kind}.{}", m.name);
                    assert_eq!(p["maximum"].as_f64(), Some(max), "{kind}.{}", m.name);
                }
                MetricType::Int { min, max } => {
                    assert_eq!(p["minimum"].as_i64(), Some(min), "{kind}.{}", m.name);
                    assert_eq!(p["maximum"].as_i64(), Some(max), "{kind}.{}", m.name);
                }
                MetricType::Enum(values) => {
                    assert_eq!(p["enum"], serde_json::json!(values), "{kind}.{}", m.name)
                }
                MetricType::Text { max_len } => {
                    assert_eq!(p["maxLength"].as_u64(), Some(max_len as u64))
                }
            }
        }
        assert_eq!(
            s["$defs"]["metrics"]["additionalProperties"],
            Value::Bool(false)
        );

        let e = schema::event_schema(kind);
        assert_eq!(
            e["properties"]["event"]["anyOf"][0]["enum"],
            serde_json::json!(catalog::events(kind)),
            "{kind}: events"
        );
    }

    let g = schema::gateway_schema();
    let names: BTreeSet<&str> = g["$defs"]["entry"]["properties"]["metrics"]["propertyNames"]
        ["anyOf"][0]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for kind in DeviceKind::ALL {
        for m in catalog::metrics(kind) {
            assert!(names.contains(m.name), "gateway schema lacks {}", m.name);
        }
    }
}

// ---- docs/device-contract.md -------------------------------------------------------------

fn contract() -> String {
    std::fs::read_to_string(docs_dir().join("device-contract.md")).expect("docs/device-contract.md")
}

const TABLE_HEADER: &str =
    "| metric | type | unit | range or allowed values | meaning | QuestDB column |\n\
                            |---|---|---|---|---|---|\n";

/// The table row the contract must hold for a metric.
fn row(m: &MetricSpec) -> String {
    let (ty, range) = match m.ty {
        MetricType::Bool => ("boolean".to_string(), "`true` or `false`".to_string()),
        MetricType::Float { min, max } => ("number".into(), format!("{min} to {max}")),
        MetricType::Int { min, max } => ("integer".into(), format!("{min} to {max}")),
        MetricType::Enum(values) => (
            "string (enum)".into(),
            values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        MetricType::Text { max_len } => {
            ("string".into(), format!("at most {max_len} bytes (UTF-8)"))
        }
    };
    format!(
        "| `{}` | {ty} | {} | {range} | {} | {} |\n",
        m.name,
        schema::unit(m).unwrap_or("–"),
        schema::meaning(m),
        m.ty.questdb_type()
    )
}

/// The text of the section that starts with `heading` (up to the next heading of any level
/// up to its own).
fn section<'a>(doc: &'a str, heading: &str) -> &'a str {
    let start = doc
        .find(&format!("\n{heading}\n"))
        .unwrap_or_else(|| panic!("device-contract.md lacks the heading `{heading}`"))
        + 1;
    let level = heading.chars().take_while(|c| *c == '#').count();
    let body = &doc[start + heading.len()..];
    let end = body
        .match_indices("\n#")
        .find(|(i, _)| {
            let hashes = body[i + 1..].chars().take_while(|c| *c == '#').count();
            hashes <= level && body[i + 1 + hashes..].starts_with(' ')
        })
        .map_or(body.len(), |(i, _)| i);
    &body[..end]
}

#[test]
fn contract_metric_tables_match_catalogue() {
    let doc = contract();
    for kind in DeviceKind::ALL {
        let heading = format!("### `{kind}` metrics");
        let text = section(&doc, &heading);
        let mut expected = TABLE_HEADER.to_string();
        for m in catalog::metrics(kind) {
            expected.push_str(&row(m));
        }
        assert!(
            text.contains(&expected),
            "the table under `{heading}` in docs/device-contract.md must be exactly:\n{expected}"
        );
        assert!(
            text.contains(&format!("`{}`", kind.table())),
            "`{heading}` should name the QuestDB table {}",
            kind.table()
        );
    }
}

#[test]
fn contract_event_tables_match_catalogue() {
    let doc = contract();
    for kind in DeviceKind::ALL {
        let heading = format!("### `{kind}` events");
        let text = section(&doc, &heading);
        let listed: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`').map(|(name, _)| name))
            .collect();
        assert_eq!(
            listed,
            catalog::events(kind),
            "events table under `{heading}` in docs/device-contract.md"
        );
    }
}

#[test]
fn contract_json_examples_parse() {
    let doc = contract();
    let mut blocks = 0;
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```json\n") {
        let body = &rest[start + "```json\n".len()..];
        let end = body.find("```").expect("unterminated ```json block");
        let block = &body[..end];
        if let Err(e) = serde_json::from_str::<Value>(block) {
            panic!("invalid JSON example in docs/device-contract.md ({e}):\n{block}");
        }
        blocks += 1;
        rest = &body[end + 3..];
    }
    assert!(blocks >= 6, "expected worked examples, found {blocks}");
}

#[test]
fn contract_names_every_reject_reason() {
    let doc = contract();
    let reasons = section(&doc, "## 11. Reject reasons");
    for r in [
        "bad_topic",
        "unknown_device",
        "retired_device",
        "not_behind_gateway",
        "payload_too_large",
        "not_utf8",
        "malformed_json",
        "bad_shape",
        "too_many_entries",
        "bad_timestamp",
        "unknown_metric",
        "wrong_type",
        "out_of_range",
        "unknown_event",
        "bad_status",
    ] {
        assert!(
            reasons.contains(&format!("| `{r}` |")),
            "reject reason `{r}` missing from the reasons table"
        );
    }
}
