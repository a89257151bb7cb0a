use super::*;
use std::collections::BTreeSet;

/// The fields of the table at `section` (`""`: the top level), as the typed configuration
/// declares them, or `None` when `section` is not a table of named fields. Every config
/// struct denies unknown fields, and serde's refusal of one lists the fields it expects:
/// that list is read here, so no key can be missed, set by default or not.
fn fields_of(section: &str) -> Option<Vec<String>> {
    let probe = if section.is_empty() {
        "__probe__ = 1\n".to_string()
    } else {
        format!("[{section}]\n__probe__ = 1\n")
    };
    let err = match toml::from_str::<HubConfig>(&probe) {
        Ok(_) => panic!("[{section}] accepts any key: add #[serde(deny_unknown_fields)]"),
        Err(e) => e.to_string(),
    };
    if !err.contains("unknown field `__probe__`") {
        return None;
    }
    let expected = err.split("unknown field `__probe__`").nth(1)?;
    Some(
        expected
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect(),
    )
}

/// Every key and table of the typed configuration, as dotted paths.
fn typed_paths(section: &str, out: &mut BTreeSet<String>) {
    for field in fields_of(section).unwrap_or_default() {
        let path = if section.is_empty() {
            field
        } else {
            format!("{section}.{field}")
        };
        out.insert(path.clone());
        if fields_of(&path).is_some() {
            typed_paths(&path, out);
        }
    }
}

#[test]
fn every_key_of_the_config_has_words_and_no_other() {
    let mut typed = BTreeSet::new();
    typed_paths("", &mut typed);
    assert!(typed.contains("broker.tls_cert") && typed.contains("rules.sla.p1_ack"));
    let documented: BTreeSet<String> = KEYS
        .iter()
        .map(|k| k.path.to_string())
        .chain(SECTIONS.iter().map(|(s, _)| s.to_string()))
        .collect();
    let missing: Vec<_> = typed.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&typed).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "config keys without words in src/config/sample.rs: {missing:?}; words for keys that \
         are gone: {stale:?}"
    );
    for k in KEYS {
        assert!(!k.doc.is_empty(), "{}", k.path);
    }
}

#[test]
fn sample_parses_back_to_the_defaults() {
    let text = sample_config();
    let cfg = HubConfig::parse(&text).expect("the sample parses");
    cfg.validate().expect("the sample is valid");
    assert_eq!(
        toml::to_string(&cfg).expect("serialise"),
        toml::to_string(&HubConfig::default()).expect("serialise"),
        "the sample holds the defaults"
    );
    // Each key shows up once, with a comment line right above it.
    for k in KEYS {
        let name = k.path.rsplit('.').next().unwrap_or(k.path);
        let lines: Vec<&str> = text.lines().collect();
        let at: Vec<usize> = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| {
                l.trim_start_matches("# ")
                    .strip_prefix(name)
                    .is_some_and(|r| r.starts_with(" ="))
            })
            .map(|(i, _)| i)
            .collect();
        assert!(!at.is_empty(), "{} missing from the sample", k.path);
        assert!(
            at.iter().all(|i| *i > 0 && lines[i - 1].starts_with("# ")),
            "{} without a comment",
            k.path
        );
    }
}

#[test]
fn every_unset_key_example_parses_when_uncommented() {
    let text = sample_config();
    let examples: Vec<&Key> = KEYS.iter().filter(|k| k.example.is_some()).collect();
    assert!(examples.iter().any(|k| k.path == "broker.tls_cert"));
    let uncommented: String = text
        .lines()
        .map(|l| {
            let open = examples.iter().any(|k| {
                let name = k.path.rsplit('.').next().unwrap_or(k.path);
                l.strip_prefix("# ")
                    .and_then(|r| r.strip_prefix(name))
                    .is_some_and(|r| r.starts_with(" = "))
            });
            if open {
                format!("{}\n", &l[2..])
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let cfg = HubConfig::parse(&uncommented).expect("every example parses");
    assert!(cfg.broker.tls_cert.is_some() && cfg.rules.rules.is_some());
    assert!(cfg.questdb.http_addr.is_some() && cfg.rules.sla.p2_on_site.is_some());
}
