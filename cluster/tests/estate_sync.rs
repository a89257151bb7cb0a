//! Run-time estate changes reach every node through the PostgreSQL log: a real
//! PostgreSQL (steward-testbed), registries in memory standing for the nodes.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use steward_cluster::EstateSync;
use steward_estate::windows::WindowDef;
use steward_estate::{
    AuthOutcome, DeviceKind, DeviceUpsert, EstateFile, NewToken, Registry, Role, TokenScope,
};

const ESTATE: &str = r#"
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
"#;

/// A node's registry: the estate file applied, as at a node's start.
fn node() -> Registry {
    let reg = Registry::open_in_memory().expect("registry");
    reg.apply(&EstateFile::parse(ESTATE).expect("estate"))
        .expect("apply");
    reg
}

/// Wait for `what` to hold, with a generous deadline (the machine may be busy).
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn run_time_changes_reach_every_node_and_a_late_node_catches_up() {
    let pg = steward_testbed::LocalPostgres::start().expect("start PostgreSQL");
    let url = pg.url();
    let (a, b) = (node(), node());
    let sync_a = EstateSync::connect(a.clone(), &url, "node-a".into()).expect("sync a");
    let sync_b = EstateSync::connect(b.clone(), &url, "node-b".into()).expect("sync b");

    // A device registered through A's API: B accepts its secret.
    let secret = a
        .upsert_device(&DeviceUpsert {
            id: "gate-9".into(),
            kind: DeviceKind::Gate,
            vendor: "acme".into(),
            building: "b-1".into(),
            location: "north gate".into(),
            gateway: None,
            report_interval_s: 30,
        })
        .expect("upsert")
        .expect("secret issued");
    wait_for("the device on B", || {
        b.directory().authenticate("gate-9", &secret) == AuthOutcome::Device
    });

    // A token made on A works on B; revoked on B, it stops working on A.
    let token = a
        .create_token(&NewToken {
            name: "crew".into(),
            role: Role::Crew,
            scope: TokenScope {
                station: Some("st-1".into()),
                ..Default::default()
            },
        })
        .expect("token");
    wait_for("the token on B", || {
        b.verify_token(&token.token).expect("verify").is_some()
    });
    let on_b = b
        .verify_token(&token.token)
        .expect("verify")
        .expect("live on B");
    b.revoke_token(on_b.id).expect("revoke on B");
    wait_for("the revocation on A", || {
        a.verify_token(&token.token).expect("verify").is_none()
    });

    // A window created on A is among B's windows.
    let window = a
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
    wait_for("the window on B", || {
        b.windows().get("w-1").map(|w| (**w).clone()) == Some(window.clone())
    });

    // B rotates the secret: A follows.
    let rotated = b.rotate_secret("gate-9").expect("rotate");
    wait_for("the new secret on A", || {
        a.directory().authenticate("gate-9", &rotated) == AuthOutcome::Device
    });
    assert_eq!(
        a.directory().authenticate("gate-9", &secret),
        AuthOutcome::BadSecret
    );

    // A change just made is published at shutdown, not lost with the thread.
    a.retire_device("gate-9").expect("retire");
    sync_a.shutdown();

    // A node started later catches up at start, before it serves anything.
    let c = node();
    let sync_c = EstateSync::connect(c.clone(), &url, "node-c".into()).expect("sync c");
    assert_eq!(
        c.directory().authenticate("gate-9", &rotated),
        AuthOutcome::Retired
    );
    assert!(c.verify_token(&token.token).expect("verify").is_none());
    assert_eq!(c.windows().get("w-1").map(|w| (**w).clone()), Some(window));
    wait_for("the retirement on B", || {
        b.directory().authenticate("gate-9", &rotated) == AuthOutcome::Retired
    });

    let counts = sync_b.counters();
    assert!(counts.published.load(Ordering::Relaxed) >= 2);
    assert_eq!(counts.refused.load(Ordering::Relaxed), 0);
    assert!(sync_c.counters().applied.load(Ordering::Relaxed) >= 6);
    sync_b.shutdown();
    sync_c.shutdown();
}

#[test]
fn a_change_recorded_before_the_sync_started_is_published_at_its_start() {
    let pg = steward_testbed::LocalPostgres::start().expect("start PostgreSQL");
    let url = pg.url();
    let (a, b) = (node(), node());
    let sync_b = EstateSync::connect(b.clone(), &url, "node-b".into()).expect("sync b");
    // A's sync is not running yet: its change waits in the registry's outbox.
    a.record_changes().expect("record");
    let token = a
        .create_token(&NewToken {
            name: "admin".into(),
            role: Role::Admin,
            scope: TokenScope::default(),
        })
        .expect("token");
    let sync_a = EstateSync::connect(a.clone(), &url, "node-a".into()).expect("sync a");
    wait_for("the token on B", || {
        b.verify_token(&token.token).expect("verify").is_some()
    });
    sync_a.shutdown();
    sync_b.shutdown();
}
