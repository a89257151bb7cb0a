//! Grafana against a real hub: the managed QuestDB's PG wire port listens where
//! `questdb.managed.pg_bind` says, with the configured admin password and a read-only user
//! that cannot write; every query of the starter dashboard (docs/grafana/) returns rows
//! after the test fed the hub telemetry, a status, a reject and a ticket, over HTTP and
//! over the PG wire as the read-only user, as Grafana would run it.

mod support;

use anyhow::{bail, ensure, Context, Result};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;
use steward_tests::{now_ms, HubSandbox, TEST_ESTATE};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(60);
const ADMIN_PASSWORD: &str = "admin-secret-1";
const READONLY_USER: &str = "grafana";
const READONLY_PASSWORD: &str = "grafana-secret-1";
const DASHBOARD: &str = include_str!("../../docs/grafana/steward-dashboard.json");

/// A minimal PostgreSQL wire client (simple query protocol, cleartext password), enough
/// to log in as Grafana does and count the rows of a query.
struct Pg {
    stream: TcpStream,
}

/// One backend message: its type byte and body.
async fn read_msg(s: &mut TcpStream) -> Result<(u8, Vec<u8>)> {
    let ty = s.read_u8().await?;
    let len = s.read_i32().await? as usize;
    ensure!((4..1 << 26).contains(&len), "bad message length {len}");
    let mut body = vec![0; len - 4];
    s.read_exact(&mut body).await?;
    Ok((ty, body))
}

/// The `M` (message) field of an ErrorResponse.
fn error_text(body: &[u8]) -> String {
    body.split(|b| *b == 0)
        .find_map(|f| f.strip_prefix(b"M"))
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .unwrap_or_default()
}

fn frame(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![ty];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

impl Pg {
    async fn connect(addr: SocketAddr, user: &str, password: &str) -> Result<Pg> {
        let mut stream = tokio::time::timeout(WAIT, TcpStream::connect(addr))
            .await
            .context("connect timed out")??;
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for part in ["user", user, "database", "qdb"] {
            body.extend_from_slice(part.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut startup = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        startup.extend_from_slice(&body);
        stream.write_all(&startup).await?;
        loop {
            let (ty, body) = read_msg(&mut stream).await?;
            match (ty, body.get(..4)) {
                (b'R', Some([0, 0, 0, 3])) => {
                    let mut pw = password.as_bytes().to_vec();
                    pw.push(0);
                    stream.write_all(&frame(b'p', &pw)).await?;
                }
                (b'R', Some([0, 0, 0, 0])) => {}
                (b'R', other) => bail!("unsupported authentication {other:?}"),
                (b'E', _) => bail!("login refused: {}", error_text(&body)),
                (b'Z', _) => return Ok(Pg { stream }),
                _ => {}
            }
        }
    }

    /// Rows of a simple query, or the server's error.
    async fn rows(&mut self, sql: &str) -> Result<usize> {
        let mut q = sql.as_bytes().to_vec();
        q.push(0);
        self.stream.write_all(&frame(b'Q', &q)).await?;
        let (mut rows, mut error) = (0, None);
        loop {
            let (ty, body) = read_msg(&mut self.stream).await?;
            match ty {
                b'D' => rows += 1,
                b'E' => error = Some(error_text(&body)),
                b'Z' => break,
                _ => {}
            }
        }
        match error {
            Some(e) => bail!("{e}"),
            None => Ok(rows),
        }
    }
}

async fn start() -> Result<HubSandbox> {
    HubSandbox::start_with(TEST_ESTATE, |c| {
        // Another loopback address than QuestDB's other ports, to see the setting work.
        c.questdb.managed.pg_bind = "127.0.0.2".parse().expect("an address");
        c.questdb.managed.pg_password = Some(ADMIN_PASSWORD.into());
        c.questdb.managed.pg_readonly_user = Some(READONLY_USER.into());
        c.questdb.managed.pg_readonly_password = Some(READONLY_PASSWORD.into());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_port_binds_where_configured_with_the_configured_logins() -> Result<()> {
    let sb = start().await?;
    let pg = sb.hub.questdb_pg.context("managed QuestDB has a PG port")?;
    assert_eq!(pg.ip().to_string(), "127.0.0.2");
    let loopback = SocketAddr::from(([127, 0, 0, 1], pg.port()));
    ensure!(
        TcpStream::connect(loopback).await.is_err(),
        "PG port also answers on {loopback}"
    );
    let mut admin = Pg::connect(pg, "admin", ADMIN_PASSWORD).await?;
    assert_eq!(admin.rows("SELECT 1").await?, 1);
    let e = Pg::connect(pg, "admin", "quest")
        .await
        .err()
        .context("default login")?;
    assert!(e.to_string().contains("login refused"), "{e}");
    let mut ro = Pg::connect(pg, READONLY_USER, READONLY_PASSWORD).await?;
    assert_eq!(ro.rows("SELECT count() FROM pump_telemetry").await?, 1);
    let e = ro
        .rows("INSERT INTO pump_telemetry (ts, device_id) VALUES (now(), 'pump-1')")
        .await
        .err()
        .context("read-only user wrote a row")?;
    assert!(
        e.to_string().contains("read only") || e.to_string().contains("permission"),
        "{e}"
    );
    sb.shutdown().await;
    Ok(())
}

/// Every SQL text of the dashboard: panel targets and template variables.
fn dashboard_queries(d: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().into_iter().flatten() {
        for t in p["targets"].as_array().into_iter().flatten() {
            if let Some(sql) = t["rawSql"].as_str() {
                out.push((format!("panel `{}`", p["title"]), sql.to_string()));
            }
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(sql) = v["query"].as_str() {
            out.push((format!("variable `{}`", v["name"]), sql.to_string()));
        }
    }
    out
}

/// The SQL Grafana's PostgreSQL data source sends for a range and variables.
fn expand(sql: &str, from: &str, to: &str) -> String {
    let mut s = sql.to_string();
    while let Some(i) = s.find("$__timeFilter(") {
        let end = s[i..].find(')').map(|e| i + e).unwrap_or(s.len() - 1);
        let col = &s[i + "$__timeFilter(".len()..end];
        let expanded = format!("{col} BETWEEN '{from}' AND '{to}'");
        s.replace_range(i..=end, &expanded);
    }
    s.replace("$__timeFrom()", &format!("'{from}'"))
        .replace("$__timeTo()", &format!("'{to}'"))
        .replace("$compound", "cmp-1")
        .replace("$pump", "pump-1")
}

fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// Telemetry of a pump, a lift and a smoke detector, a status, a reject, and a ticket.
async fn feed(sb: &HubSandbox) -> Result<()> {
    let now = now_ms();
    for (id, metrics) in [
        (
            "pump-1",
            json!({"outlet_pressure_mpa": 0.42, "running": true}),
        ),
        ("lift-1", json!({"speed_m_s": 1.5, "floor": 3})),
        (
            "smoke-1",
            json!({"obscuration_pct_per_m": 0.4, "alarm": false}),
        ),
    ] {
        let c = sb.device(id, &format!("{id}-secret")).await?;
        let topic = format!("devices/{id}/telemetry");
        for i in 0..3 {
            let ts = now - 3 * 3_600_000 + i * 600_000;
            c.publish(
                &topic,
                json!({"ts": ts, "seq": i, "metrics": metrics}).to_string(),
            )
            .await?;
        }
        c.publish(&format!("devices/{id}/status"), "online").await?;
        c.publish(&topic, "{not json").await?;
        c.wait_acks(5).await?;
        c.disconnect().await;
    }
    support::trap_passenger(sb).await?;
    for (sql, n) in [
        ("SELECT count() FROM pump_telemetry_1h", 1),
        ("SELECT count() FROM smoke_telemetry_1h", 1),
        ("SELECT count() FROM lift_telemetry", 3),
        ("SELECT count() FROM device_status", 3),
        ("SELECT count() FROM rejects", 3),
        ("SELECT count() FROM ticket_events WHERE kind = 'raised'", 1),
    ] {
        sb.wait_count(sql, n, WAIT).await?;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_rows() -> Result<()> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).context("dashboard JSON")?;
    let queries = dashboard_queries(&dashboard);
    ensure!(queries.len() >= 10, "{} queries", queries.len());
    let sb = start().await?;
    feed(&sb).await?;
    let now = now_ms();
    let (from, to) = (iso(now - 7 * 86_400_000), iso(now + 3_600_000));
    let pg = sb.hub.questdb_pg.context("PG port")?;
    let mut ro = Pg::connect(pg, READONLY_USER, READONLY_PASSWORD).await?;
    for (what, sql) in queries {
        let sql = expand(&sql, &from, &to);
        ensure!(!sql.contains('$'), "{what}: unexpanded macro in {sql}");
        let r = sb
            .sql(&sql)
            .await
            .with_context(|| format!("{what}: {sql}"))?;
        ensure!(!r.dataset.is_empty(), "{what}: no rows from {sql}");
        let rows = ro
            .rows(&sql)
            .await
            .with_context(|| format!("{what} over PG: {sql}"))?;
        assert_eq!(rows, r.dataset.len(), "{what}: PG and HTTP disagree");
    }
    sb.shutdown().await;
    Ok(())
}
