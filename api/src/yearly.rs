//! The year-over-year report of a compound: for each month of a year and the same month a
//! year before, its tickets and response times (from the ticket store) and the share of
//! device-hours with at least one reading (from QuestDB's hourly rollups, which are kept
//! for years while raw readings are not).

use crate::auth::Principal;
use crate::error::{blocking, history_unavailable, ApiError};
use crate::params::{id_param, params};
use crate::reports::{sla_figures, SlaFigures};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use chrono::Datelike;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use steward_estate::clock::now_ms;
use steward_estate::{DeviceKind, Role};
use steward_storage::questdb::schema::{rollup_view, Rollup};
use steward_tickets::{month_range, Ticket, TicketFilter};
use utoipa::ToSchema;

const HOUR_MS: i64 = 3_600_000;
/// Most tickets of one compound and year the report reads.
const MAX_TICKETS: u32 = 100_000;

/// Device-hours with readings against device-hours the month had.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct Availability {
    /// Hours with at least one reading, summed over the devices.
    pub device_hours_reporting: i64,
    /// The compound's (not retired) devices times the hours of the month up to now.
    pub device_hours_expected: i64,
    /// reporting / expected in percent; null when no device reported that month (before
    /// the hub ran, or with no devices).
    #[schema(required = true)]
    pub pct: Option<f64>,
}

/// The figures of one month.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct MonthFigures {
    pub availability: Availability,
    /// `YYYY-MM`.
    pub month: String,
    /// Tickets opened in the month: counts, priorities, and response times (median and
    /// p90 minutes to acknowledge, to be on site and to resolve), as in the SLA report.
    pub tickets: SlaFigures,
}

/// One month of the year next to the same month a year before.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct YearOverYearMonth {
    pub current: MonthFigures,
    /// 1 to 12.
    pub month: u32,
    pub previous: MonthFigures,
}

/// Reply of `GET /api/v1/reports/yearly`.
#[derive(Debug, Serialize, ToSchema)]
pub struct YearlyReport {
    pub compound: String,
    /// Devices counted for availability: the compound's devices that are not retired.
    pub devices: usize,
    /// Twelve entries, January first.
    pub months: Vec<YearOverYearMonth>,
    pub previous_year: i32,
    pub year: i32,
}

fn year_param(q: &HashMap<String, String>, now_ms: i64) -> Result<i32, ApiError> {
    let this_year = chrono::DateTime::from_timestamp_millis(now_ms)
        .map(|t| t.year())
        .unwrap_or(1970);
    match q.get("year") {
        None => Ok(this_year),
        Some(v) => v
            .parse::<i32>()
            .ok()
            .filter(|y| (1971..=this_year + 1).contains(y))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "year: expected a year from 1971 to {}, got `{}`",
                    this_year + 1,
                    v.chars().take(16).collect::<String>()
                ))
            }),
    }
}

/// `[from, to)` of a month in ms.
fn month_ms(year: i32, month: u32) -> Result<(String, i64, i64), ApiError> {
    let name = format!("{year}-{month:02}");
    let (from, to) = month_range(&name).map_err(|e| ApiError::BadRequest(format!("year: {e}")))?;
    Ok((name, from, to))
}

/// Device-hours with readings per month start (ms) over `[from, to)`, from the hourly
/// rollups of every kind. `compound` has been checked against the id alphabet.
fn reporting_sql(compound: &str, from_ms: i64, to_ms: i64) -> String {
    let parts: Vec<String> = DeviceKind::ALL
        .iter()
        .map(|k| {
            format!(
                "SELECT ts, device_id FROM {} WHERE compound_id = '{compound}' \
                 AND ts >= cast({} AS TIMESTAMP) AND ts < cast({} AS TIMESTAMP)",
                rollup_view(*k, Rollup::Hourly),
                from_ms * 1000,
                to_ms * 1000
            )
        })
        .collect();
    format!(
        "SELECT cast(timestamp_floor('M', ts) AS LONG) / 1000 month_ms, count() hours FROM ({}) \
         GROUP BY month_ms ORDER BY month_ms",
        parts.join(" UNION ALL ")
    )
}

fn month_figures(
    name: String,
    from: i64,
    to: i64,
    now: i64,
    devices: usize,
    tickets: &[Ticket],
    reporting: &BTreeMap<i64, i64>,
) -> MonthFigures {
    let mine: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| (from..to).contains(&t.opened_ms))
        .collect();
    let hours = ((to.min(now) - from).max(0) + HOUR_MS - 1) / HOUR_MS;
    let expected = hours * devices as i64;
    let got = reporting.get(&from).copied().unwrap_or(0);
    MonthFigures {
        availability: Availability {
            device_hours_reporting: got,
            device_hours_expected: expected,
            pct: (got > 0 && expected > 0)
                .then(|| (got as f64 * 100.0 / expected as f64).min(100.0)),
        },
        month: name,
        tickets: sla_figures(&mine),
    }
}

/// `GET /api/v1/reports/yearly?compound=&year=` (admin; manager and crew within scope).
#[utoipa::path(get, path = "/api/v1/reports/yearly", tag = "reports",
    params(("compound" = String, Query, description = "compound id (in scope)"),
        ("year" = Option<i32>, Query, description = "the year (UTC; default: this year), compared with the one before"),
    ),
    responses((status = 200, description = "per month of the year and of the year before: tickets, response times, availability",
            body = YearlyReport),
        (status = 400), (status = 401), (status = 403), (status = 404), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn yearly_report(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<YearlyReport>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    params(&q, &["compound", "year"])?;
    let id = q
        .get("compound")
        .ok_or_else(|| ApiError::BadRequest("compound: required (a compound id)".into()))?
        .clone();
    id_param("compound", &id)?;
    who.check(who.can_see_compound(&id), "compound")?;
    let now = now_ms();
    let year = year_param(&q, now)?;
    let dir = s.registry.directory();
    if !dir.compounds.contains_key(id.as_str()) {
        return Err(ApiError::NotFound(format!("compound `{id}` not found")));
    }
    let devices = dir
        .devices
        .values()
        .filter(|d| !d.retired && *d.compound == *id)
        .count();
    let (_, from, _) = month_ms(year - 1, 1)?;
    let (_, _, to) = month_ms(year, 12)?;
    let desk = s.tickets.clone();
    let compound = id.clone();
    let tickets = blocking(move || {
        Ok(desk.store().list(&TicketFilter {
            compound: Some(compound),
            from_ms: Some(from),
            to_ms: Some(to),
            limit: Some(MAX_TICKETS),
            ..Default::default()
        })?)
    })
    .await?;
    let result = s
        .questdb
        .exec(&reporting_sql(&id, from, to))
        .await
        .map_err(history_unavailable)?;
    let reporting: BTreeMap<i64, i64> = result
        .dataset
        .iter()
        .filter_map(|r| Some((r.first()?.as_i64()?, r.get(1)?.as_i64()?)))
        .collect();
    let mut months = Vec::with_capacity(12);
    for m in 1..=12 {
        let figures = |y: i32| -> Result<MonthFigures, ApiError> {
            let (name, f, t) = month_ms(y, m)?;
            Ok(month_figures(
                name, f, t, now, devices, &tickets, &reporting,
            ))
        };
        months.push(YearOverYearMonth {
            current: figures(year)?,
            month: m,
            previous: figures(year - 1)?,
        });
    }
    Ok(Json(YearlyReport {
        compound: id,
        devices,
        months,
        previous_year: year - 1,
        year,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn year_defaults_to_this_one_and_errors_name_the_parameter() {
        let now = 1_780_000_000_000; // 2026
        assert_eq!(year_param(&q(&[]), now).unwrap(), 2026);
        assert_eq!(year_param(&q(&[("year", "2025")]), now).unwrap(), 2025);
        for bad in ["26", "1900", "2030", "x", "2025; DROP"] {
            let e = year_param(&q(&[("year", bad)]), now)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("year:"), "{bad}: {e}");
        }
    }

    #[test]
    fn availability_counts_hours_up_to_now_and_is_null_without_readings() {
        let (name, from, to) = month_ms(2026, 2).unwrap();
        let now = from + 10 * 24 * HOUR_MS;
        let reporting = BTreeMap::from([(from, 120)]);
        let f = month_figures(name.clone(), from, to, now, 2, &[], &reporting);
        assert_eq!(f.availability.device_hours_expected, 480);
        assert_eq!(f.availability.pct, Some(25.0));
        let f = month_figures(name, from, to, now, 2, &[], &BTreeMap::new());
        assert_eq!(f.availability.pct, None);
        let (_, from, to) = month_ms(2026, 12).unwrap();
        let future = month_figures("2026-12".into(), from, to, now, 2, &[], &reporting);
        assert_eq!(future.availability.device_hours_expected, 0);
    }
}
