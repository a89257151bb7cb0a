//! A local PostgreSQL server starts, answers a query through psql, and is gone after
//! `stop`.

use std::process::Command;
use steward_testbed::LocalPostgres;

#[test]
fn starts_answers_and_stops() {
    let pg = LocalPostgres::start().expect("start PostgreSQL");
    let port = pg.port().to_string();
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "steward",
            "-d",
            "steward",
        ])
        .args(["-tA", "-c", "SELECT 1"])
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    assert!(pg.url().contains(&format!("port={port}")));
    let pidfile = pg.dir().join("data/postmaster.pid");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .expect("postmaster.pid")
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("pid");
    pg.stop();
    // `pg_ctl -w stop` returns once the postmaster is gone.
    // Its parent is init, which may reap it late: a zombie counts as gone.
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r.chars().next()))
        .flatten();
    assert!(
        matches!(state, None | Some('Z') | Some('X')),
        "postmaster {pid} still running ({state:?})"
    );
}
