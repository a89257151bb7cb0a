//! Retention: how long each table keeps its rows, as QuestDB TTLs set at every start-up
//! (so a changed setting takes effect on the next start). QuestDB drops a partition once
//! all of it is older than the TTL, measured from the newer of the table's latest row
//! and the wall clock, so a reading with a future timestamp cannot wipe a table.

use super::schema::{
    rollup_view, Rollup, EVENTS_TABLE, NOTIFICATION_EVENTS_TABLE, REJECTS_TABLE, STATUS_TABLE,
    TICKET_EVENTS_TABLE,
};
use serde::{Deserialize, Serialize};
use steward_estate::DeviceKind;

/// `[questdb.retention]`: per table, how long rows are kept; 0 keeps them for good.
/// The unit follows the table's partitioning (QuestDB drops whole partitions, and takes a
/// TTL only in whole partitions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Raw readings (`<kind>_telemetry`, partitioned by day).
    pub telemetry_days: u32,
    /// `device_events`.
    pub device_events_days: u32,
    /// `device_status`.
    pub device_status_days: u32,
    /// `rejects`.
    pub rejects_days: u32,
    /// `ticket_events` and `notification_events` (partitioned by month).
    pub ticket_events_months: u32,
    /// Hourly rollups `<kind>_telemetry_1h` (partitioned by month).
    pub hourly_months: u32,
    /// Daily rollups `<kind>_telemetry_1d` (partitioned by year).
    pub daily_years: u32,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            telemetry_days: 90,
            device_events_days: 90,
            device_status_days: 90,
            rejects_days: 90,
            ticket_events_months: 60,
            hourly_months: 60,
            daily_years: 20,
        }
    }
}

/// Shortest raw retention: history reads raw rows for ranges up to two days, and devices
/// may send readings a few days late.
pub const MIN_TELEMETRY_DAYS: u32 = 7;
/// QuestDB refuses to clear a TTL on a table partitioned by month or year, so "keep for
/// good" is written as this many years there.
const FOREVER_YEARS: u32 = 1000;

/// A table and the TTL clause for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ttl {
    pub table: String,
    /// `true` for materialized views (`ALTER MATERIALIZED VIEW`).
    pub view: bool,
    /// e.g. `90 DAYS`, `0 DAYS` (none).
    pub clause: String,
}

impl Ttl {
    pub fn sql(&self) -> String {
        let what = if self.view {
            "MATERIALIZED VIEW"
        } else {
            "TABLE"
        };
        format!("ALTER {what} {} SET TTL {}", self.table, self.clause)
    }
}

fn days(n: u32) -> String {
    format!("{n} DAYS")
}

fn months(n: u32) -> String {
    if n == 0 {
        format!("{FOREVER_YEARS} YEARS")
    } else {
        format!("{n} MONTHS")
    }
}

fn years(n: u32) -> String {
    format!("{} YEARS", if n == 0 { FOREVER_YEARS } else { n })
}

impl RetentionConfig {
    /// Problems, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if self.telemetry_days != 0 && self.telemetry_days < MIN_TELEMETRY_DAYS {
            e.push(format!(
                "questdb.retention.telemetry_days: must be 0 (keep) or at least {MIN_TELEMETRY_DAYS}; \
                 history reads raw rows for short ranges"
            ));
        }
        for (key, v, max) in [
            ("telemetry_days", self.telemetry_days, 36_500),
            ("device_events_days", self.device_events_days, 36_500),
            ("device_status_days", self.device_status_days, 36_500),
            ("rejects_days", self.rejects_days, 36_500),
            ("ticket_events_months", self.ticket_events_months, 1_200),
            ("hourly_months", self.hourly_months, 1_200),
            ("daily_years", self.daily_years, 100),
        ] {
            if v > max {
                e.push(format!(
                    "questdb.retention.{key}: {v} is more than {max}; use 0 to keep rows for good"
                ));
            }
        }
        e
    }

    /// The TTL of every table and view of the hub.
    pub fn ttls(&self) -> Vec<Ttl> {
        let table = |t: &str, clause: String| Ttl {
            table: t.to_string(),
            view: false,
            clause,
        };
        let mut v: Vec<Ttl> = DeviceKind::ALL
            .iter()
            .map(|k| table(k.table(), days(self.telemetry_days)))
            .collect();
        v.push(table(EVENTS_TABLE, days(self.device_events_days)));
        v.push(table(STATUS_TABLE, days(self.device_status_days)));
        v.push(table(REJECTS_TABLE, days(self.rejects_days)));
        v.push(table(
            TICKET_EVENTS_TABLE,
            months(self.ticket_events_months),
        ));
        // Who was told is part of the ticket's record: kept as long as its events.
        v.push(table(
            NOTIFICATION_EVENTS_TABLE,
            months(self.ticket_events_months),
        ));
        for k in DeviceKind::ALL {
            for r in Rollup::ALL {
                let clause = match r {
                    Rollup::Hourly => months(self.hourly_months),
                    Rollup::Daily => years(self.daily_years),
                };
                v.push(Ttl {
                    table: rollup_view(k, r),
                    view: true,
                    clause,
                });
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_keep_raw_rows_90_days_and_rollups_for_years() {
        let ttls = RetentionConfig::default().ttls();
        let sql: Vec<String> = ttls.iter().map(Ttl::sql).collect();
        assert!(sql.contains(&"ALTER TABLE pump_telemetry SET TTL 90 DAYS".to_string()));
        assert!(sql.contains(&"ALTER TABLE ticket_events SET TTL 60 MONTHS".to_string()));
        assert!(sql
            .contains(&"ALTER MATERIALIZED VIEW pump_telemetry_1h SET TTL 60 MONTHS".to_string()));
        assert!(
            sql.contains(&"ALTER MATERIALIZED VIEW lift_telemetry_1d SET TTL 20 YEARS".to_string())
        );
        assert!(RetentionConfig::default().validate().is_empty());
    }

    #[test]
    fn zero_keeps_rows_and_bad_values_name_the_key() {
        let cfg = RetentionConfig {
            telemetry_days: 0,
            hourly_months: 0,
            daily_years: 0,
            ..RetentionConfig::default()
        };
        let sql: Vec<String> = cfg.ttls().iter().map(Ttl::sql).collect();
        assert!(sql.contains(&"ALTER TABLE gate_telemetry SET TTL 0 DAYS".to_string()));
        assert!(sql
            .contains(&"ALTER MATERIALIZED VIEW gate_telemetry_1h SET TTL 1000 YEARS".to_string()));
        let bad = RetentionConfig {
            telemetry_days: 2,
            daily_years: 500,
            ..RetentionConfig::default()
        };
        let e = bad.validate();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("questdb.retention.telemetry_days:"),
            "{e:?}"
        );
        assert!(e[1].starts_with("questdb.retention.daily_years:"), "{e:?}");
    }
}
