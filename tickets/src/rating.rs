//! The monthly service rating of docs/rating.md: pure arithmetic over a month's tickets.

use crate::dispatch::Attribution;
use crate::state::{Ticket, TicketState};
use crate::TicketError;
use serde::Serialize;

/// Monthly service figures of a station or compound (docs/rating.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    pub scope: String,
    pub month: String,
    pub tickets: u32,
    pub cancelled: u32,
    /// Share acknowledged within SLA among tickets whose ack verdict is known.
    pub ack_within_sla: Option<f64>,
    pub on_site_within_sla: Option<f64>,
    pub resolved_within_sla: Option<f64>,
    pub mean_ack_min: Option<f64>,
    pub mean_resolve_min: Option<f64>,
    /// Tickets that repeat a failure resolved within the 7 days before.
    pub repeat_failures: u32,
    pub repeat_rate: Option<f64>,
    /// 0-100, see docs/rating.md; `None` when there is nothing to rate.
    pub score: Option<f64>,
    pub stars: Option<u8>,
    /// Residents' 1-5 star ratings of the month's tickets counted for this scope.
    pub resident_ratings: u32,
    /// Their mean; `None` without any (the score then leaves satisfaction out).
    pub resident_stars: Option<f64>,
}

/// `[start, end)` of a `YYYY-MM` month in ms, UTC.
pub fn month_range(month: &str) -> Result<(i64, i64), TicketError> {
    let bad = || TicketError::BadMonth(month.to_string());
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if y.to_string().len() != 4 || !(1..=12).contains(&m) {
        return Err(bad());
    }
    let start = chrono::NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let end = if m == 12 {
        chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    let ms = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|dt| dt.and_utc().timestamp_millis())
            .ok_or_else(bad)
    };
    Ok((ms(start)?, ms(end)?))
}

/// The rating arithmetic of docs/rating.md over one month's tickets, each wholly the
/// scope's, without resident ratings.
pub fn rate(scope: &str, month: &str, tickets: &[Ticket]) -> Rating {
    let whole: Vec<(&Ticket, Attribution)> =
        tickets.iter().map(|t| (t, Attribution::FULL)).collect();
    rate_split(scope, month, &whole, &[])
}

/// The rating arithmetic of docs/rating.md: each ticket with the part of it the scope
/// answers for (a transferred ticket is split between its stations), and the residents'
/// stars given to the scope's tickets.
pub fn rate_split(
    scope: &str,
    month: &str,
    tickets: &[(&Ticket, Attribution)],
    resident_stars: &[u8],
) -> Rating {
    let rated: Vec<&(&Ticket, Attribution)> = tickets
        .iter()
        .filter(|(t, _)| t.state != TicketState::Cancelled)
        .collect();
    let share = |verdicts: &mut dyn Iterator<Item = Option<bool>>| -> Option<f64> {
        let (mut met, mut n) = (0u32, 0u32);
        for v in verdicts.flatten() {
            n += 1;
            met += u32::from(v);
        }
        (n > 0).then(|| f64::from(met) / f64::from(n))
    };
    // A verdict is known once the stage happened or its deadline passed unmet; it counts
    // for the scope that held the ticket at that moment.
    let ack = share(&mut rated.iter().map(|(t, a)| match t.acknowledged_ms {
        _ if !a.ack => None,
        Some(ack) => Some(ack <= t.ack_due_ms),
        None if t.ack_breached => Some(false),
        None => None,
    }));
    let on_site = share(
        &mut rated
            .iter()
            .map(|(t, a)| match (t.on_site_due_ms, t.on_site_ms) {
                _ if !a.on_site => None,
                (None, _) => None,
                (Some(d), Some(o)) => Some(o <= d),
                (Some(_), None) if t.on_site_breached => Some(false),
                _ => None,
            }),
    );
    let resolved = share(
        &mut rated
            .iter()
            .map(|(t, a)| match (t.resolve_due_ms, t.resolved_ms) {
                _ if !a.resolve => None,
                (None, _) => None,
                (Some(d), Some(r)) => Some(r <= d),
                (Some(_), None) if t.resolve_breached => Some(false),
                _ => None,
            }),
    );
    // Mean of the durations weighted by the share of each the scope held the ticket:
    // sum(w * d) / sum(w), which for whole tickets is the plain mean.
    let mean = |xs: Vec<(f64, i64)>| -> Option<f64> {
        let w: f64 = xs.iter().map(|(w, _)| w).sum();
        (w > 0.0).then(|| xs.iter().map(|(w, d)| w * *d as f64).sum::<f64>() / w / 60_000.0)
    };
    let mean_ack = mean(
        rated
            .iter()
            .filter_map(|(t, a)| t.acknowledged_ms.map(|x| (a.ack_weight, x - t.opened_ms)))
            .collect(),
    );
    let mean_resolve = mean(
        rated
            .iter()
            .filter_map(|(t, a)| t.resolved_ms.map(|x| (a.resolve_weight, x - t.opened_ms)))
            .collect(),
    );
    let repeats = rated.iter().filter(|(t, _)| t.repeat_of.is_some()).count() as u32;
    let repeat_rate = (!rated.is_empty()).then(|| f64::from(repeats) / rated.len() as f64);
    let stars_mean = (!resident_stars.is_empty()).then(|| {
        resident_stars.iter().map(|s| f64::from(*s)).sum::<f64>() / resident_stars.len() as f64
    });
    let parts = [
        (0.35, ack),
        (0.25, on_site),
        (0.20, resolved),
        (0.20, repeat_rate.map(|r| 1.0 - r)),
        (0.15, stars_mean.map(|m| (m - 1.0) / 4.0)),
    ];
    let weight: f64 = parts
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(w, _)| w)
        .sum();
    // The repeat figure alone says nothing about response: while every ticket still waits
    // for its first verdict (fresh, unacknowledged P1s), the month is not rated yet rather
    // than a perfect 100.
    let timed = ack.is_some() || on_site.is_some() || resolved.is_some();
    let score = (weight > 0.0 && timed && !rated.is_empty()).then(|| {
        100.0
            * parts
                .iter()
                .filter_map(|(w, v)| v.map(|v| w * v))
                .sum::<f64>()
            / weight
    });
    let stars = score.map(stars_for);
    Rating {
        scope: scope.to_string(),
        month: month.to_string(),
        tickets: tickets.len() as u32,
        cancelled: (tickets.len() - rated.len()) as u32,
        ack_within_sla: ack,
        on_site_within_sla: on_site,
        resolved_within_sla: resolved,
        mean_ack_min: mean_ack,
        mean_resolve_min: mean_resolve,
        repeat_failures: repeats,
        repeat_rate,
        score,
        stars,
        resident_ratings: resident_stars.len() as u32,
        resident_stars: stars_mean,
    }
}

/// Star bands of docs/rating.md.
pub fn stars_for(score: f64) -> u8 {
    match score {
        s if s >= 90.0 => 5,
        s if s >= 80.0 => 4,
        s if s >= 65.0 => 3,
        s if s >= 50.0 => 2,
        _ => 1,
    }
}
