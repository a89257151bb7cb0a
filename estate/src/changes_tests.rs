use super::*;
use crate::registry::Registry;
use crate::tokens::NewToken;
use crate::windows::WindowDef;
use crate::{AuthOutcome, DeviceUpsert, EstateFile};

fn registry() -> Registry {
    let reg = Registry::open_in_memory().expect("registry");
    let file = EstateFile::parse(
        r#"
[[stations]]
id = "st-1"
name = "One"
[[streets]]
id = "street-1"
name = "Main"
fallback_station = "st-1"
[[communities]]
id = "com-1"
name = "C"
street = "street-1"
[[compounds]]
id = "cmp-1"
name = "Elm"
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
"#,
    )
    .expect("estate");
    reg.apply(&file).expect("apply");
    reg
}

fn gate() -> DeviceUpsert {
    DeviceUpsert {
        id: "gate-9".into(),
        kind: DeviceKind::Gate,
        vendor: "acme".into(),
        building: "b-1".into(),
        location: "north gate".into(),
        gateway: None,
        report_interval_s: 30,
    }
}

/// The recorded changes of `reg`, acknowledged.
fn take(reg: &Registry) -> Vec<Change> {
    let pending = reg.pending_changes(100).expect("pending");
    if let Some((seq, _)) = pending.last() {
        reg.ack_changes(*seq).expect("ack");
    }
    pending.into_iter().map(|(_, c)| c).collect()
}

/// Applies `changes` to `to` through JSON, as the cluster log carries them.
fn ship(changes: &[Change], to: &Registry) {
    let json = serde_json::to_string(changes).expect("serialise");
    let back: Vec<Change> = serde_json::from_str(&json).expect("parse");
    assert_eq!(back, changes);
    let r = to.apply_changes(&back).expect("apply");
    assert!(r.failed.is_empty(), "{:?}", r.failed);
}

#[test]
fn nothing_is_recorded_until_asked() {
    let a = registry();
    a.upsert_device(&gate()).expect("upsert");
    assert!(a.pending_changes(10).expect("pending").is_empty());
    a.record_changes().expect("record");
    a.retire_device("gate-9").expect("retire");
    assert_eq!(a.pending_changes(10).expect("pending").len(), 1);
}

#[test]
fn devices_travel_with_their_secrets() {
    let (a, b) = (registry(), registry());
    a.record_changes().expect("record");
    let secret = a.upsert_device(&gate()).expect("upsert").expect("issued");
    let c = take(&a);
    assert!(matches!(&c[..], [Change::DeviceUpserted(d)] if d.id == "gate-9"));
    ship(&c, &b);
    assert_eq!(
        b.directory().authenticate("gate-9", &secret),
        AuthOutcome::Device
    );
    assert_eq!(
        b.directory().device("gate-9"),
        a.directory().device("gate-9")
    );
    // Twice is harmless.
    ship(&c, &b);
    assert_eq!(
        b.directory().authenticate("gate-9", &secret),
        AuthOutcome::Device
    );

    let rotated = a.rotate_secret("gate-9").expect("rotate");
    let c = take(&a);
    assert!(matches!(&c[..], [Change::SecretRotated(d)] if d.id == "gate-9"));
    ship(&c, &b);
    let dir = b.directory();
    assert_eq!(dir.authenticate("gate-9", &rotated), AuthOutcome::Device);
    assert_eq!(dir.authenticate("gate-9", &secret), AuthOutcome::BadSecret);

    a.retire_device("gate-9").expect("retire");
    let c = take(&a);
    assert!(matches!(&c[..], [Change::DeviceRetired(d)] if d.retired));
    ship(&c, &b);
    assert_eq!(
        b.directory().authenticate("gate-9", &rotated),
        AuthOutcome::Retired
    );
    assert!(
        take(&b).is_empty(),
        "applied changes are not recorded again"
    );
}

#[test]
fn tokens_travel_by_hash_and_revocation_follows() {
    let (a, b) = (registry(), registry());
    a.record_changes().expect("record");
    b.record_changes().expect("record");
    // A token made on b first, so that the ids of the two databases differ.
    b.create_token(&NewToken {
        name: "other".into(),
        role: Role::Admin,
        scope: TokenScope::default(),
    })
    .expect("create");
    take(&b);
    let issued = a
        .create_token(&NewToken {
            name: " crew ".into(),
            role: Role::Crew,
            scope: TokenScope {
                station: Some("st-1".into()),
                ..Default::default()
            },
        })
        .expect("create");
    let c = take(&a);
    assert!(matches!(&c[..], [Change::TokenCreated(t)] if t.name == "crew"));
    ship(&c, &b);
    let on_b = b
        .verify_token(&issued.token)
        .expect("verify")
        .expect("live");
    assert_eq!(on_b.name, "crew");
    assert_eq!(on_b.scope, issued.info.scope);
    assert_ne!(on_b.id, issued.info.id);

    let revoked = b.revoke_token(on_b.id).expect("revoke");
    let c = take(&b);
    assert!(matches!(&c[..], [Change::TokenRevoked { revoked_ms, .. }]
        if Some(*revoked_ms) == revoked.revoked_ms));
    ship(&c, &a);
    assert_eq!(a.verify_token(&issued.token).expect("verify"), None);
    // The create again (a replay of the whole log) does not bring it back.
    a.apply_change(&Change::TokenCreated(TokenRow {
        name: "crew".into(),
        role: Role::Crew,
        scope: issued.info.scope.clone(),
        hash: crate::tokens::hash_token(&issued.token),
        created_ms: issued.info.created_ms,
        revoked_ms: None,
    }))
    .expect("apply");
    assert_eq!(a.verify_token(&issued.token).expect("verify"), None);
}

#[test]
fn windows_travel_and_go() {
    let (a, b) = (registry(), registry());
    a.record_changes().expect("record");
    let w = a
        .create_window(
            &WindowDef {
                id: "w-1".into(),
                building: Some("b-1".into()),
                from: "2030-01-01T08:00:00Z".into(),
                to: "2030-01-01T12:00:00Z".into(),
                reason: Some("lift service".into()),
                ..Default::default()
            },
            Some("ops"),
        )
        .expect("window");
    let c = take(&a);
    assert!(matches!(&c[..], [Change::WindowCreated { window }] if window == &w));
    ship(&c, &b);
    assert_eq!(b.windows().get("w-1").map(|w| (**w).clone()), Some(w));

    a.delete_window("w-1").expect("delete");
    let c = take(&a);
    assert_eq!(c, vec![Change::WindowDeleted { id: "w-1".into() }]);
    ship(&c, &b);
    assert!(b.windows().get("w-1").is_none());
}

#[test]
fn a_pending_local_change_wins_over_an_older_one_from_the_log() {
    let (a, b) = (registry(), registry());
    a.record_changes().expect("record");
    b.record_changes().expect("record");
    a.upsert_device(&gate()).expect("upsert");
    let from_a = take(&a);
    ship(&from_a, &b);
    // b rotates before it hears of a's rotation: its own change is newer.
    a.rotate_secret("gate-9").expect("rotate");
    let from_a = take(&a);
    let mine = b.rotate_secret("gate-9").expect("rotate");
    let r = b.apply_changes(&from_a).expect("apply");
    assert_eq!((r.applied, r.skipped), (0, 1));
    assert_eq!(
        b.directory().authenticate("gate-9", &mine),
        AuthOutcome::Device
    );
}

#[test]
fn a_change_this_registry_refuses_leaves_the_rest() {
    let b = registry();
    let mut row = DeviceRow {
        id: "ghost-1".into(),
        kind: DeviceKind::Lift,
        vendor: "acme".into(),
        building: "nowhere".into(),
        location: String::new(),
        gateway: None,
        secret_hash: None,
        report_interval_s: 60,
        retired: false,
    };
    let bad = Change::DeviceUpserted(row.clone());
    row.id = "lift-2".into();
    row.building = "b-1".into();
    let good = Change::DeviceUpserted(row);
    let r = b.apply_changes(&[bad, good]).expect("apply");
    assert_eq!(r.applied, 1);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0, 0);
    assert!(b.directory().device("lift-2").is_some());
}

#[test]
fn recording_stays_on_for_the_database_and_survives_a_restart() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("estate.db");
    let reg = Registry::open(&path).expect("open");
    reg.apply(&EstateFile::parse("[[stations]]\nid = \"st-1\"\nname = \"One\"\n").expect("estate"))
        .expect("apply");
    reg.record_changes().expect("record");
    reg.create_token(&NewToken {
        name: "before".into(),
        role: Role::Admin,
        scope: TokenScope::default(),
    })
    .expect("create");
    drop(reg);
    // Another process (the `steward tokens` command) opening the same database.
    let other = Registry::open(&path).expect("reopen");
    other
        .create_token(&NewToken {
            name: "cli".into(),
            role: Role::Admin,
            scope: TokenScope::default(),
        })
        .expect("create");
    let names: Vec<String> = take(&other)
        .into_iter()
        .map(|c| match c {
            Change::TokenCreated(t) => t.name,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(names, ["before", "cli"]);
}
