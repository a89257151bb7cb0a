use super::*;
use crate::file::EstateFile;
use crate::registry::Registry;

const ESTATE: &str = r#"
[[stations]]
id = "st-1"
name = "North station"

[[streets]]
id = "street-1"
name = "Riverside"
fallback_station = "st-1"

[[communities]]
id = "com-1"
name = "Elm"
street = "street-1"

[[compounds]]
id = "cmp-1"
name = "Elm Court"
community = "com-1"

[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"

[[devices]]
id = "lift-1"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "lift-1-secret"
"#;

const WINDOW: &str = r#"
[[maintenance_windows]]
id = "w-1"
building = "b-1"
from = "2026-05-01T09:00"
to = "2026-05-01T12:00:00+08:00"
reason = "annual lift inspection"
"#;

fn shanghai() -> chrono_tz::Tz {
    estate_offset(None).unwrap()
}

#[test]
fn local_times_are_read_in_the_estate_zone() {
    let local = parse_time("2026-05-01T09:00", shanghai()).unwrap();
    let utc = parse_time("2026-05-01T01:00:00Z", shanghai()).unwrap();
    assert_eq!(local, utc);
    assert_eq!(
        parse_time("2026-05-01T09:00:00+08:00", shanghai()).unwrap(),
        utc
    );
    let e = parse_time("tomorrow", shanghai()).unwrap_err();
    assert!(e.contains("RFC 3339"), "{e}");
    assert!(estate_offset(Some("Mars/Olympus")).is_err());
    // A zone with daylight saving time: summer and winter offsets both apply.
    let berlin = estate_offset(Some("Europe/Berlin")).unwrap();
    assert_eq!(
        parse_time("2026-07-01T09:00", berlin).unwrap(),
        parse_time("2026-07-01T07:00:00Z", berlin).unwrap()
    );
    assert_eq!(
        parse_time("2026-01-15T09:00", berlin).unwrap(),
        parse_time("2026-01-15T08:00:00Z", berlin).unwrap()
    );
}

#[test]
fn file_windows_parse_and_apply() {
    let f = EstateFile::parse(&format!("{ESTATE}{WINDOW}")).unwrap();
    assert_eq!(f.maintenance_windows.len(), 1);
    let reg = Registry::open_in_memory().unwrap();
    reg.apply(&f).unwrap();
    let set = reg.windows();
    let w = set.get("w-1").unwrap();
    assert_eq!(w.target, WindowTarget::Building("b-1".into()));
    assert_eq!(w.source, WindowSource::File);
    let nine = parse_time("2026-05-01T09:00", shanghai()).unwrap();
    assert_eq!(w.from_ms, nine);
    assert_eq!(w.to_ms - w.from_ms, 3 * 3_600_000);
    // A window removed from the file is gone after the next load.
    reg.apply(&EstateFile::parse(ESTATE).unwrap()).unwrap();
    assert!(reg.windows().is_empty());
}

#[test]
fn validation_names_the_key() {
    let cases = [
        (
            WINDOW.replace("building = \"b-1\"", "building = \"b-9\""),
            "maintenance_windows[0].building: unknown building `b-9`",
        ),
        (
            WINDOW.replace("building = \"b-1\"", "device = \"lift-9\""),
            "maintenance_windows[0].device: unknown device `lift-9`",
        ),
        (
            WINDOW.replace("building = \"b-1\"", ""),
            "maintenance_windows[0].device: set exactly one",
        ),
        (
            WINDOW.replace(
                "building = \"b-1\"",
                "building = \"b-1\"\ncompound = \"cmp-1\"",
            ),
            "maintenance_windows[0].compound: set only one",
        ),
        (
            WINDOW.replace("2026-05-01T12:00:00+08:00", "2026-05-01T09:00:00+08:00"),
            "maintenance_windows[0].to: must be after `from`",
        ),
        (
            WINDOW.replace("reason = \"annual lift inspection\"", ""),
            "maintenance_windows[0].reason: missing",
        ),
        (
            WINDOW.replace("reason = \"annual lift inspection\"", "reason = \"  \""),
            "maintenance_windows[0].reason: missing",
        ),
        (
            WINDOW.replace("2026-05-01T09:00", "next monday"),
            "maintenance_windows[0].from: `next monday`",
        ),
        (
            format!("{WINDOW}{WINDOW}"),
            "maintenance_windows[1].id: duplicate id `w-1`",
        ),
    ];
    for (window, want) in cases {
        let err = EstateFile::parse(&format!("{ESTATE}{window}"))
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}

#[test]
fn api_windows_persist_and_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("estate.db");
    {
        let reg = Registry::open(&path).unwrap();
        reg.apply(&EstateFile::parse(ESTATE).unwrap()).unwrap();
        let def = WindowDef {
            id: "w-api".into(),
            device: Some("lift-1".into()),
            from: "2026-05-01T09:00".into(),
            to: "2026-05-01T10:00".into(),
            reason: Some("door motor swap".into()),
            ..Default::default()
        };
        let w = reg.create_window(&def, Some("ops")).unwrap();
        assert_eq!(w.created_by.as_deref(), Some("ops"));
        let err = reg.create_window(&def, None).unwrap_err().to_string();
        assert!(err.contains("id: a window `w-api` already exists"), "{err}");
        let bad = WindowDef {
            id: "w-bad".into(),
            compound: Some("cmp-9".into()),
            ..def.clone()
        };
        let err = reg.create_window(&bad, None).unwrap_err().to_string();
        assert!(err.contains("set only one"), "{err}");
        let bad = WindowDef {
            device: None,
            ..bad
        };
        let err = reg.create_window(&bad, None).unwrap_err().to_string();
        assert!(err.contains("compound: unknown compound `cmp-9`"), "{err}");
    }
    // Survives a restart, and applying the file again keeps API windows.
    let reg = Registry::open(&path).unwrap();
    reg.apply(&EstateFile::parse(ESTATE).unwrap()).unwrap();
    assert_eq!(reg.windows().all().len(), 1);
    reg.delete_window("w-api").unwrap();
    assert!(reg.windows().is_empty());
    assert!(matches!(
        reg.delete_window("w-api"),
        Err(EstateError::NotFound(_))
    ));
}

#[test]
fn covering_looks_at_device_building_and_compound() {
    let w = |id: &str, target: WindowTarget, from_ms: i64, to_ms: i64| MaintenanceWindow {
        id: id.into(),
        target,
        from_ms,
        to_ms,
        reason: "work".into(),
        source: WindowSource::Api,
        created_by: None,
    };
    let set = WindowSet::new(vec![
        w("dev", WindowTarget::Device("lift-1".into()), 100, 200),
        w("bld", WindowTarget::Building("b-1".into()), 150, 300),
        w("cmp", WindowTarget::Compound("cmp-2".into()), 0, 1000),
    ]);
    let at = |d: &str, b: &str, c: &str, t: i64| set.covering(d, b, c, t).map(|w| w.id.clone());
    assert_eq!(at("lift-1", "b-9", "cmp-9", 99), None);
    assert_eq!(at("lift-1", "b-9", "cmp-9", 100).as_deref(), Some("dev"));
    // `to` is exclusive.
    assert_eq!(at("lift-1", "b-9", "cmp-9", 200), None);
    // Overlapping windows: the one that closes last.
    assert_eq!(at("lift-1", "b-1", "cmp-9", 160).as_deref(), Some("bld"));
    assert_eq!(at("pump-1", "b-1", "cmp-9", 250).as_deref(), Some("bld"));
    assert_eq!(at("pump-1", "b-7", "cmp-2", 500).as_deref(), Some("cmp"));
    assert_eq!(at("pump-1", "b-7", "cmp-1", 500), None);
    assert!(WindowSet::default().covering("a", "b", "c", 0).is_none());
}
