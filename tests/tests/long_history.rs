//! Long history against a real hub and QuestDB: the hourly and daily rollups (materialized
//! views) hold exactly the aggregates of the raw readings sent over MQTT, long-range history
//! reads them (and says so), and retention drops old partitions while recent rows and the
//! rollups of the dropped rows stay.

use anyhow::{ensure, Context, Result};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use steward_tests::{now_ms, wait_until, HubSandbox, TEST_ESTATE};

/// Generous: materialized views refresh asynchronously, on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(120);
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;

async fn get(sb: &HubSandbox, path: &str) -> Result<(StatusCode, Value)> {
    let r = sb
        .http()
        .get(sb.api(path))
        .bearer_auth(&sb.hub.admin_token)
        .send()
        .await?;
    let status = r.status();
    Ok((status, r.json::<Value>().await.unwrap_or(Value::Null)))
}

/// Aggregates of one bucket, computed here from the readings sent.
#[derive(Debug, Default, Clone)]
struct Agg {
    readings: i64,
    sum: f64,
    min: f64,
    max: f64,
    last_running: bool,
}

fn aggregate(readings: &[(i64, f64, bool)], bucket_ms: i64) -> BTreeMap<i64, Agg> {
    let mut out: BTreeMap<i64, Agg> = BTreeMap::new();
    for (ts, p, running) in readings {
        let a = out.entry(ts - ts.rem_euclid(bucket_ms)).or_insert(Agg {
            min: f64::MAX,
            max: f64::MIN,
            ..Agg::default()
        });
        a.readings += 1;
        a.sum += p;
        a.min = a.min.min(*p);
        a.max = a.max.max(*p);
        a.last_running = *running;
    }
    out
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

/// Every row of a rollup view for pump-1 equals the aggregate of its bucket.
async fn check_view(sb: &HubSandbox, view: &str, want: &BTreeMap<i64, Agg>) -> Result<()> {
    let r = sb
        .sql(&format!(
            "SELECT cast(ts AS LONG) / 1000 ts_ms, readings, outlet_pressure_mpa_sum, \
             outlet_pressure_mpa_count, outlet_pressure_mpa_min, outlet_pressure_mpa_max, \
             running_last FROM {view} WHERE device_id = 'pump-1' ORDER BY ts"
        ))
        .await?;
    ensure!(
        r.dataset.len() == want.len(),
        "{view}: {} rows, expected {}",
        r.dataset.len(),
        want.len()
    );
    for (row, (bucket, a)) in r.dataset.iter().zip(want) {
        let ctx = || format!("{view} bucket {bucket}: {row:?} vs {a:?}");
        ensure!(row[0].as_i64() == Some(*bucket), "{}", ctx());
        ensure!(row[1].as_i64() == Some(a.readings), "{}", ctx());
        ensure!(close(f(&row[2]), a.sum), "{}", ctx());
        ensure!(row[3].as_i64() == Some(a.readings), "{}", ctx());
        ensure!(close(f(&row[4]), a.min), "{}", ctx());
        ensure!(close(f(&row[5]), a.max), "{}", ctx());
        ensure!(row[6].as_bool() == Some(a.last_running), "{}", ctx());
    }
    Ok(())
}

/// The history points equal the aggregates, bucket by bucket.
fn check_points(points: &Value, want: &BTreeMap<i64, Agg>) -> Result<()> {
    let points = points.as_array().context("points")?;
    ensure!(points.len() == want.len(), "{} points", points.len());
    for (p, (bucket, a)) in points.iter().zip(want) {
        ensure!(p["ts_ms"].as_i64() == Some(*bucket), "{p} vs {bucket}");
        ensure!(
            close(f(&p["avg"]), a.sum / a.readings as f64),
            "{p} vs {a:?}"
        );
        ensure!(close(f(&p["min"]), a.min), "{p} vs {a:?}");
        ensure!(close(f(&p["max"]), a.max), "{p} vs {a:?}");
        ensure!(p["count"].as_i64() == Some(a.readings), "{p} vs {a:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_equal_the_raw_aggregates_and_long_history_reads_them() -> Result<()> {
    let sb = HubSandbox::start().await?;
    // Four days of readings every five minutes, over MQTT as batches.
    let now = now_ms();
    let t0 = (now - 4 * DAY_MS) / HOUR_MS * HOUR_MS + 7 * 60_000;
    let readings: Vec<(i64, f64, bool)> = (0..)
        .map(|i: i64| (t0 + i * 300_000, i))
        .take_while(|(ts, _)| *ts < now - 60_000)
        .map(|(ts, i)| (ts, 0.3 + ((i * 7) % 23) as f64 / 100.0, i % 3 == 0))
        .collect();
    let pump = sb.device("pump-1", "pump-1-secret").await?;
    let mut sent = 0;
    for (n, chunk) in readings.chunks(96).enumerate() {
        let batch: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, (ts, p, running))| {
                json!({"ts": ts, "seq": n * 96 + i,
                    "metrics": {"outlet_pressure_mpa": p, "running": running}})
            })
            .collect();
        pump.publish("devices/pump-1/telemetry", Value::Array(batch).to_string())
            .await?;
        sent += 1;
    }
    pump.wait_acks(sent).await?;
    let n = readings.len() as i64;
    sb.wait_count(
        "SELECT count() FROM pump_telemetry WHERE device_id = 'pump-1'",
        n,
        WAIT,
    )
    .await?;
    // The views refresh on their own; wait until they have seen every reading.
    for view in ["pump_telemetry_1h", "pump_telemetry_1d"] {
        sb.wait_count(
            &format!("SELECT sum(readings) FROM {view} WHERE device_id = 'pump-1'"),
            n,
            WAIT,
        )
        .await
        .with_context(|| format!("{view} catching up"))?;
    }
    let hourly = aggregate(&readings, HOUR_MS);
    let daily = aggregate(&readings, DAY_MS);
    check_view(&sb, "pump_telemetry_1h", &hourly).await?;
    check_view(&sb, "pump_telemetry_1d", &daily).await?;

    // Four days: hourly buckets from the hourly rollup, the same figures as raw rows.
    let (from, to) = (t0 - 7 * 60_000, now);
    let path =
        format!("/api/v1/devices/pump-1/history?metric=outlet_pressure_mpa&from={from}&to={to}");
    let (s, body) = get(&sb, &path).await?;
    ensure!(s == StatusCode::OK, "{body}");
    assert_eq!(body["source"], json!("hourly"), "{body}");
    assert_eq!(body["every"], json!("1h"));
    check_points(&body["points"], &hourly)?;
    let (_, compound) = get(
        &sb,
        &format!("/api/v1/compounds/cmp-1/history?metric=outlet_pressure_mpa&from={from}&to={to}"),
    )
    .await?;
    assert_eq!(compound["source"], json!("hourly"), "{compound}");
    check_points(&compound["series"]["pump-1"], &hourly)?;
    // Booleans: the last value of each bucket.
    let (_, body) = get(
        &sb,
        &format!("/api/v1/devices/pump-1/history?metric=running&from={from}&to={to}"),
    )
    .await?;
    let values: Vec<Value> = body["points"]
        .as_array()
        .context("points")?
        .iter()
        .map(|p| p["value"].clone())
        .collect();
    let want: Vec<Value> = hourly.values().map(|a| json!(a.last_running)).collect();
    assert_eq!(values, want);

    // Whole days over the same range: the daily rollup.
    let (_, body) = get(&sb, &format!("{path}&every=1d")).await?;
    assert_eq!(body["source"], json!("daily"), "{body}");
    check_points(&body["points"], &daily)?;
    // A bucket the rollups cannot tile reads raw rows, and so does a short range.
    let (_, body) = get(&sb, &format!("{path}&every=30m")).await?;
    assert_eq!(body["source"], json!("raw"));
    let day = format!(
        "/api/v1/devices/pump-1/history?metric=outlet_pressure_mpa&from={}&to={to}",
        to - DAY_MS
    );
    assert_eq!(get(&sb, &day).await?.1["source"], json!("raw"));

    // Ninety days: daily buckets from the daily rollup.
    let (s, body) = get(
        &sb,
        &format!(
            "/api/v1/devices/pump-1/history?metric=outlet_pressure_mpa&from={}&to={to}",
            now - 90 * DAY_MS
        ),
    )
    .await?;
    ensure!(s == StatusCode::OK, "{body}");
    assert_eq!(body["source"], json!("daily"), "{body}");
    assert_eq!(body["every"], json!("1d"));
    check_points(&body["points"], &daily)?;
    sb.shutdown().await;
    Ok(())
}

/// Rows of `table` before and after `cut_ms`.
async fn split_count(sb: &HubSandbox, table: &str, cut_ms: i64) -> Result<(i64, i64)> {
    let cut = cut_ms * 1000;
    let old = sb
        .count(&format!(
            "SELECT count() FROM {table} WHERE ts < cast({cut} AS TIMESTAMP)"
        ))
        .await?;
    let recent = sb
        .count(&format!(
            "SELECT count() FROM {table} WHERE ts >= cast({cut} AS TIMESTAMP)"
        ))
        .await?;
    Ok((old, recent))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_drops_old_partitions_and_keeps_recent_rows_and_rollups() -> Result<()> {
    // First keep everything, so rows with old timestamps can be put in.
    let sb = HubSandbox::start_with(TEST_ESTATE, |c| {
        c.questdb.retention.telemetry_days = 0;
        c.questdb.retention.device_events_days = 0;
    })
    .await?;
    let now = now_ms();
    let ts = |days_ago: i64, i: i64| (now - days_ago * DAY_MS + i * 60_000) * 1000;
    let mut rows = Vec::new();
    for (days_ago, n) in [(400, 3), (200, 4), (95, 5), (10, 6), (1, 7)] {
        for i in 0..n {
            rows.push(format!(
                "(cast({} AS TIMESTAMP), 'pump-1', 'cmp-1', {i}, {}.0)",
                ts(days_ago, i),
                days_ago
            ));
        }
    }
    sb.sql(&format!(
        "INSERT INTO pump_telemetry (ts, device_id, compound_id, seq, outlet_pressure_mpa) VALUES {}",
        rows.join(", ")
    ))
    .await?;
    sb.sql(&format!(
        "INSERT INTO device_events (ts, device_id, compound_id, kind, event, data) VALUES \
         (cast({} AS TIMESTAMP), 'pump-1', 'cmp-1', 'pump', 'dry_run', '{{}}'), \
         (cast({} AS TIMESTAMP), 'pump-1', 'cmp-1', 'pump', 'dry_run', '{{}}')",
        ts(200, 0),
        ts(2, 0)
    ))
    .await?;
    sb.wait_count("SELECT count() FROM pump_telemetry", 25, WAIT)
        .await?;
    sb.wait_count("SELECT count() FROM device_events", 2, WAIT)
        .await?;
    sb.wait_count("SELECT sum(readings) FROM pump_telemetry_1h", 25, WAIT)
        .await?;
    let cut = now - 90 * DAY_MS;
    assert_eq!(split_count(&sb, "pump_telemetry", cut).await?, (12, 13));

    // Start again with the default retention: raw rows 90 days, rollups for years.
    let HubSandbox {
        hub,
        dir,
        mut config,
    } = sb;
    hub.shutdown().await;
    config.questdb.retention = Default::default();
    let hub = steward::Hub::start(config.clone()).await?;
    let sb = HubSandbox { hub, dir, config };
    let gone = wait_until(WAIT, || async {
        matches!(split_count(&sb, "pump_telemetry", cut).await, Ok((0, _)))
            && matches!(split_count(&sb, "device_events", cut).await, Ok((0, _)))
    })
    .await;
    ensure!(
        gone,
        "old partitions still there: {:?}",
        split_count(&sb, "pump_telemetry", cut).await?
    );
    assert_eq!(split_count(&sb, "pump_telemetry", cut).await?, (0, 13));
    assert_eq!(split_count(&sb, "device_events", cut).await?, (0, 1));
    // The hourly rollup still holds the hours of the dropped rows.
    assert_eq!(
        sb.count("SELECT sum(readings) FROM pump_telemetry_1h")
            .await?,
        25
    );
    let ttl = sb
        .sql("SELECT table_name, ttlValue, ttlUnit FROM tables() WHERE table_name IN ('pump_telemetry', 'pump_telemetry_1h', 'pump_telemetry_1d') ORDER BY table_name")
        .await?;
    assert_eq!(
        serde_json::to_value(&ttl.dataset)?,
        json!([
            ["pump_telemetry", 90, "DAY"],
            ["pump_telemetry_1d", 20, "YEAR"],
            ["pump_telemetry_1h", 5, "YEAR"],
        ])
    );
    sb.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yearly_report_compares_each_month_with_the_year_before() -> Result<()> {
    use steward_estate::DeviceKind;
    use steward_tickets::{Priority, Raise};
    // Keep raw rows of any age, so January readings reach the hourly rollups.
    let sb = HubSandbox::start_with(TEST_ESTATE, |c| {
        c.questdb.retention.telemetry_days = 0;
    })
    .await?;
    let year = chrono::DateTime::from_timestamp_millis(now_ms())
        .map(|t| chrono::Datelike::year(&t))
        .context("year")?;
    let jan10 = |y: i32| -> Result<i64> {
        Ok(chrono::NaiveDate::from_ymd_opt(y, 1, 10)
            .and_then(|d| d.and_hms_opt(8, 0, 0))
            .context("date")?
            .and_utc()
            .timestamp_millis())
    };
    // This January: pump-1 reports in 3 hours and lift-1 in 2; last January pump-1 in 1.
    let mut rows = Vec::new();
    for (table, device, y, hours) in [
        ("pump_telemetry", "pump-1", year, 3),
        ("lift_telemetry", "lift-1", year, 2),
        ("pump_telemetry", "pump-1", year - 1, 1),
    ] {
        for h in 0..hours {
            for minute in [5, 35] {
                let ts = jan10(y)? + h * HOUR_MS + minute * 60_000;
                rows.push((table, device, ts));
            }
        }
    }
    for (table, device, ts) in &rows {
        sb.sql(&format!(
            "INSERT INTO {table} (ts, device_id, compound_id) VALUES (cast({} AS TIMESTAMP), '{device}', 'cmp-1')",
            ts * 1000
        ))
        .await?;
    }
    for view in ["pump_telemetry_1h", "lift_telemetry_1h"] {
        let n = rows
            .iter()
            .filter(|r| format!("{}_1h", r.0) == view)
            .count() as i64;
        sb.wait_count(&format!("SELECT sum(readings) FROM {view}"), n, WAIT)
            .await?;
    }
    // Tickets: two this January (one acknowledged after 10 minutes), one last January.
    let policy = sb.config.rules.sla_policy();
    for (y, priority) in [
        (year, Priority::P1),
        (year, Priority::P2),
        (year - 1, Priority::P2),
    ] {
        sb.hub.tickets.raise(
            &Raise {
                device_id: "pump-1".into(),
                rule_id: format!("test-{y}-{priority:?}"),
                kind: DeviceKind::Pump,
                compound: "cmp-1".into(),
                building: "b-1".into(),
                station: "st-north".into(),
                priority,
                title: "test ticket".into(),
                detail: String::new(),
                ts_ms: jan10(y)?,
            },
            &policy,
        )?;
    }

    let (s, body) = get(
        &sb,
        &format!("/api/v1/reports/yearly?compound=cmp-1&year={year}"),
    )
    .await?;
    ensure!(s == StatusCode::OK, "{body}");
    assert_eq!(body["year"], json!(year));
    assert_eq!(body["previous_year"], json!(year - 1));
    // smoke-1, pump-1 and lift-1 are in cmp-1.
    assert_eq!(body["devices"], json!(3));
    let months = body["months"].as_array().context("months")?;
    assert_eq!(months.len(), 12);
    let jan = &months[0];
    assert_eq!(jan["current"]["month"], json!(format!("{year}-01")));
    assert_eq!(jan["previous"]["month"], json!(format!("{}-01", year - 1)));
    assert_eq!(jan["current"]["tickets"]["tickets"], json!(2));
    assert_eq!(jan["current"]["tickets"]["p1"], json!(1));
    assert_eq!(jan["previous"]["tickets"]["tickets"], json!(1));
    let avail = &jan["current"]["availability"];
    assert_eq!(avail["device_hours_reporting"], json!(5));
    // Hours of January up to now (all 744 unless the test runs in January).
    let jan1 = jan10(year)? - 9 * DAY_MS - 8 * HOUR_MS;
    let hours = ((now_ms().min(jan1 + 31 * DAY_MS) - jan1) + HOUR_MS - 1) / HOUR_MS;
    assert_eq!(avail["device_hours_expected"], json!(3 * hours));
    ensure!(
        close(f(&avail["pct"]), 500.0 / (3 * hours) as f64),
        "{avail}"
    );
    assert_eq!(
        jan["previous"]["availability"]["device_hours_reporting"],
        json!(1)
    );
    // February: nothing reported, so no availability figure rather than 0 %.
    assert_eq!(months[1]["current"]["availability"]["pct"], Value::Null);
    assert_eq!(months[1]["current"]["tickets"]["tickets"], json!(0));

    for (path, key) in [
        ("/api/v1/reports/yearly", "compound"),
        ("/api/v1/reports/yearly?compound=cmp-1&year=19", "year"),
        ("/api/v1/reports/yearly?compound=cmp-1'--", "compound"),
    ] {
        let (s, body) = get(&sb, path).await?;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.starts_with(&format!("{key}:")), "{path}: {msg}");
    }
    let (s, _) = get(&sb, "/api/v1/reports/yearly?compound=cmp-9").await?;
    assert_eq!(s, StatusCode::NOT_FOUND);
    sb.shutdown().await;
    Ok(())
}
