//! QuestDB tables of the hub, created at start-up so column types come from the catalogue
//! rather than from whatever row ILP sees first, and the hourly and daily rollups of the
//! telemetry tables (materialized views) that long-range history reads instead of raw rows.

use steward_estate::catalog::{self, MetricSpec, MetricType};
use steward_estate::DeviceKind;

pub const EVENTS_TABLE: &str = "device_events";
pub const STATUS_TABLE: &str = "device_status";
pub const REJECTS_TABLE: &str = "rejects";
pub const TICKET_EVENTS_TABLE: &str = "ticket_events";
pub const NOTIFICATION_EVENTS_TABLE: &str = "notification_events";

pub fn telemetry_ddl(kind: DeviceKind) -> String {
    let mut cols = vec![
        "ts TIMESTAMP".to_string(),
        "device_id SYMBOL CAPACITY 65536 CACHE".to_string(),
        "compound_id SYMBOL CAPACITY 4096 CACHE".to_string(),
        "seq LONG".to_string(),
        "received_at TIMESTAMP".to_string(),
        "extras VARCHAR".to_string(),
    ];
    for m in catalog::metrics(kind) {
        cols.push(format!("\"{}\" {}", m.name, m.ty.questdb_type()));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device_id)",
        kind.table(),
        cols.join(", ")
    )
}

pub fn all_ddl() -> Vec<String> {
    let mut v: Vec<String> = DeviceKind::ALL.iter().map(|k| telemetry_ddl(*k)).collect();
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (ts TIMESTAMP, device_id SYMBOL CAPACITY 65536 CACHE, \
         compound_id SYMBOL CAPACITY 4096 CACHE, kind SYMBOL, event SYMBOL, data VARCHAR, \
         received_at TIMESTAMP) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device_id, event)"
    ));
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {STATUS_TABLE} (ts TIMESTAMP, device_id SYMBOL CAPACITY 65536 CACHE, \
         compound_id SYMBOL CAPACITY 4096 CACHE, kind SYMBOL, status SYMBOL, received_at TIMESTAMP) \
         TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device_id)"
    ));
    // Rejects are keyed by receive time and never deduplicated: two identical bad
    // messages are two events a vendor should see.
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {REJECTS_TABLE} (ts TIMESTAMP, device_id SYMBOL CAPACITY 65536 CACHE, \
         reason SYMBOL, topic VARCHAR, detail VARCHAR, payload VARCHAR, payload_bytes LONG) \
         TIMESTAMP(ts) PARTITION BY DAY WAL"
    ));
    // Ticket events let managers chart response times next to the telemetry.
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {TICKET_EVENTS_TABLE} (ts TIMESTAMP, ticket_id LONG, kind SYMBOL, \
         device_id SYMBOL CAPACITY 65536 CACHE, rule_id SYMBOL, station SYMBOL, compound_id SYMBOL, \
         priority SYMBOL, state SYMBOL, escalation_level LONG, audience SYMBOL, message VARCHAR) \
         TIMESTAMP(ts) PARTITION BY MONTH WAL"
    ));
    // One row per delivery attempt: that a crew was told, when, how and with what result.
    // DEDUP on the attempt id: a copy sent again after a crash is one row.
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {NOTIFICATION_EVENTS_TABLE} (ts TIMESTAMP, attempt_id LONG, \
         ticket_id LONG, tier LONG, round LONG, recipient_id SYMBOL, recipient VARCHAR, \
         endpoint SYMBOL, channel SYMBOL, outcome SYMBOL, attempt LONG, error VARCHAR) \
         TIMESTAMP(ts) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(ts, attempt_id)"
    ));
    v.extend(rollup_ddls());
    v
}

/// A rollup of a telemetry table: a materialized view QuestDB keeps up to date itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollup {
    /// `<kind>_telemetry_1h`, from the raw table, `PARTITION BY MONTH`.
    Hourly,
    /// `<kind>_telemetry_1d`, from the hourly view, `PARTITION BY YEAR`.
    Daily,
}

impl Rollup {
    pub const ALL: [Rollup; 2] = [Rollup::Hourly, Rollup::Daily];

    /// Length of one bucket in ms.
    pub fn bucket_ms(self) -> i64 {
        match self {
            Rollup::Hourly => 3_600_000,
            Rollup::Daily => 86_400_000,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Rollup::Hourly => "hourly",
            Rollup::Daily => "daily",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Rollup::Hourly => "1h",
            Rollup::Daily => "1d",
        }
    }
}

/// Name of a telemetry table's rollup view, e.g. `pump_telemetry_1h`.
pub fn rollup_view(kind: DeviceKind, r: Rollup) -> String {
    format!("{}_{}", kind.table(), r.suffix())
}

/// Whether a metric is rolled up as sum/count/min/max (numbers) or as its last value.
pub fn is_numeric(m: &MetricSpec) -> bool {
    matches!(m.ty, MetricType::Float { .. } | MetricType::Int { .. })
}

/// The rollup columns of a metric: `<m>_sum`, `<m>_count`, `<m>_min`, `<m>_max` for
/// numbers (an average over any span is `sum(<m>_sum) / sum(<m>_count)`), `<m>_last`
/// otherwise.
pub fn rollup_columns(m: &MetricSpec) -> Vec<String> {
    if is_numeric(m) {
        ["sum", "count", "min", "max"]
            .iter()
            .map(|a| format!("{}_{a}", m.name))
            .collect()
    } else {
        vec![format!("{}_last", m.name)]
    }
}

/// `CREATE MATERIALIZED VIEW` of one rollup. Every rollup row also has `readings`, the
/// number of raw rows it covers (availability reports count the hours with readings).
pub fn rollup_ddl(kind: DeviceKind, r: Rollup) -> String {
    let mut cols = vec!["ts".to_string(), "device_id".into(), "compound_id".into()];
    let (base, partition) = match r {
        Rollup::Hourly => {
            cols.push("count() readings".into());
            for m in catalog::metrics(kind) {
                let c = m.name;
                if is_numeric(m) {
                    cols.push(format!(
                        r#"sum("{c}") "{c}_sum", count("{c}") "{c}_count", min("{c}") "{c}_min", max("{c}") "{c}_max""#
                    ));
                } else {
                    cols.push(format!(r#"last("{c}") "{c}_last""#));
                }
            }
            (kind.table().to_string(), "MONTH")
        }
        Rollup::Daily => {
            cols.push("sum(readings) readings".into());
            for m in catalog::metrics(kind) {
                let c = m.name;
                if is_numeric(m) {
                    cols.push(format!(
                        r#"sum("{c}_sum") "{c}_sum", sum("{c}_count") "{c}_count", min("{c}_min") "{c}_min", max("{c}_max") "{c}_max""#
                    ));
                } else {
                    cols.push(format!(r#"last("{c}_last") "{c}_last""#));
                }
            }
            (rollup_view(kind, Rollup::Hourly), "YEAR")
        }
    };
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {} AS (SELECT {} FROM {base} SAMPLE BY {}) PARTITION BY {partition}",
        rollup_view(kind, r),
        cols.join(", "),
        r.suffix()
    )
}

/// The rollup views, hourly before daily (the daily view reads the hourly one).
pub fn rollup_ddls() -> Vec<String> {
    Rollup::ALL
        .iter()
        .flat_map(|r| DeviceKind::ALL.iter().map(|k| rollup_ddl(*k, *r)))
        .collect()
}
