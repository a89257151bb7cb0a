//! Cadences and their periods, in UTC like the monthly rating: which period an instant
//! falls in, its key (the same period always has the same key, across restarts) and its
//! start and end.

use chrono::{DateTime, Datelike, NaiveDate, Weekday};

const DAY_MS: i64 = 86_400_000;

/// How often a round is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cadence {
    /// Every `n` days from `anchor_ms` (a UTC midnight); `daily` is `n = 1`.
    Days { n: u32, anchor_ms: i64 },
    /// Every week, the period starting on this weekday.
    Weekly(Weekday),
    /// Every `months` calendar months (1, 3, 6, 12), aligned to the year.
    Months(u32),
}

/// One period of a cadence: `[start_ms, end_ms)` and its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub key: String,
    pub start_ms: i64,
    pub end_ms: i64,
}

impl Cadence {
    /// `daily`, `every N days`, `weekly on monday`, `monthly`, `quarterly`,
    /// `half-yearly`, `yearly`; `start` anchors `every N days`.
    pub fn parse(text: &str, start: Option<&str>) -> Result<Cadence, String> {
        let t = text.trim().to_ascii_lowercase();
        let words: Vec<&str> = t.split_whitespace().collect();
        let anchor_ms = match start {
            None => 0,
            Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| format!("start `{s}` is not a date YYYY-MM-DD"))
                .map(midnight_ms)?,
        };
        let c = match words.as_slice() {
            ["daily"] => Cadence::Days { n: 1, anchor_ms },
            ["every", n, "days" | "day"] => {
                let n: u32 = n
                    .parse()
                    .ok()
                    .filter(|n| (1..=366).contains(n))
                    .ok_or_else(|| format!("`{n}` is not a number of days between 1 and 366"))?;
                Cadence::Days { n, anchor_ms }
            }
            ["weekly", "on", day] => Cadence::Weekly(
                day.parse::<Weekday>()
                    .map_err(|_| format!("`{day}` is not a weekday (monday ... sunday)"))?,
            ),
            ["monthly"] => Cadence::Months(1),
            ["quarterly"] => Cadence::Months(3),
            ["half-yearly"] => Cadence::Months(6),
            ["yearly"] => Cadence::Months(12),
            _ => {
                return Err(format!(
                    "`{text}` is not a cadence (daily, every N days, weekly on <weekday>, \
                     monthly, quarterly, half-yearly, yearly)"
                ))
            }
        };
        if start.is_some() && !matches!(c, Cadence::Days { .. }) {
            return Err("`start` anchors `daily` and `every N days` only".into());
        }
        Ok(c)
    }

    /// The period `ts_ms` falls in.
    pub fn period_at(&self, ts_ms: i64) -> Period {
        match self {
            Cadence::Days { n, anchor_ms } => {
                let len = i64::from(*n) * DAY_MS;
                let start = anchor_ms + (ts_ms - anchor_ms).div_euclid(len) * len;
                Period {
                    key: date(start).format("%Y-%m-%d").to_string(),
                    start_ms: start,
                    end_ms: start + len,
                }
            }
            Cadence::Weekly(day) => {
                let d = date(ts_ms);
                let back =
                    (7 + d.weekday().num_days_from_monday() - day.num_days_from_monday()) % 7;
                let start = midnight_ms(d) - i64::from(back) * DAY_MS;
                Period {
                    key: date(start).format("%Y-%m-%d").to_string(),
                    start_ms: start,
                    end_ms: start + 7 * DAY_MS,
                }
            }
            Cadence::Months(m) => {
                let d = date(ts_ms);
                let first = (d.month0() / m) * m; // 0-based month the period starts in
                let start = first_of(d.year(), first);
                let end = first_of(d.year() + ((first + m) / 12) as i32, (first + m) % 12);
                let key = match m {
                    1 => format!("{}-{:02}", d.year(), first + 1),
                    3 => format!("{}-Q{}", d.year(), first / 3 + 1),
                    6 => format!("{}-H{}", d.year(), first / 6 + 1),
                    _ => format!("{}", d.year()),
                };
                Period {
                    key,
                    start_ms: start,
                    end_ms: end,
                }
            }
        }
    }
}

fn date(ts_ms: i64) -> NaiveDate {
    DateTime::from_timestamp_millis(ts_ms)
        .map(|d| d.date_naive())
        .unwrap_or_default()
}

fn midnight_ms(d: NaiveDate) -> i64 {
    d.and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_millis())
        .unwrap_or(0)
}

fn first_of(year: i32, month0: u32) -> i64 {
    NaiveDate::from_ymd_opt(year, month0 + 1, 1)
        .map(midnight_ms)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        midnight_ms(NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date"))
    }

    #[test]
    fn periods_have_stable_keys_and_bounds() {
        let q = Cadence::parse("quarterly", None).expect("parses");
        let p = q.period_at(ms("2026-11-15") + 5_000);
        assert_eq!(p.key, "2026-Q4");
        assert_eq!((p.start_ms, p.end_ms), (ms("2026-10-01"), ms("2027-01-01")));
        let h = Cadence::parse("half-yearly", None).expect("parses");
        assert_eq!(h.period_at(ms("2026-03-02")).key, "2026-H1");
        let y = Cadence::parse("yearly", None).expect("parses");
        assert_eq!(y.period_at(ms("2026-12-31")).end_ms, ms("2027-01-01"));
        let w = Cadence::parse("weekly on Monday", None).expect("parses");
        // 2026-12-02 is a Wednesday.
        let p = w.period_at(ms("2026-12-02") + 3_600_000);
        assert_eq!(p.key, "2026-11-30");
        let d = Cadence::parse("every 15 days", Some("2026-12-01")).expect("parses");
        let p = d.period_at(ms("2026-12-20"));
        assert_eq!((p.key.as_str(), p.end_ms), ("2026-12-16", ms("2026-12-31")));
        assert!(Cadence::parse("every 0 days", None).is_err());
        assert!(Cadence::parse("fortnightly", None)
            .unwrap_err()
            .contains("fortnightly"));
        assert!(Cadence::parse("monthly", Some("2026-01-01")).is_err());
    }
}
