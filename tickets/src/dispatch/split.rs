//! Which station answers for which part of a transferred ticket (docs/rating.md,
//! "Transferred tickets"): the holder at the moment a stage was reached (or its deadline
//! passed) gets that stage's SLA verdict; mean times are split by the share of the stage's
//! duration each station held the ticket.

use super::Holding;
use crate::Ticket;

/// A ticket's part in one station's rating.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attribution {
    /// The station answers for the acknowledgement verdict.
    pub ack: bool,
    pub on_site: bool,
    pub resolve: bool,
    /// Share (0..=1) of the time from opening to acknowledgement the station held it.
    pub ack_weight: f64,
    /// Share of the time from opening to resolution the station held it.
    pub resolve_weight: f64,
}

impl Attribution {
    /// The whole ticket: a compound's rating, or a ticket never transferred.
    pub const FULL: Attribution = Attribution {
        ack: true,
        on_site: true,
        resolve: true,
        ack_weight: 1.0,
        resolve_weight: 1.0,
    };
}

/// The station holding the ticket at `ts_ms`: the stretch with `from_ms <= ts < to_ms`;
/// before the first stretch its station, after the last one the last station.
pub fn holder_at(holdings: &[Holding], ts_ms: i64) -> Option<&str> {
    holdings
        .iter()
        .find(|h| h.from_ms <= ts_ms && h.to_ms.is_none_or(|to| ts_ms < to))
        .or_else(|| {
            if holdings.first().is_some_and(|h| ts_ms < h.from_ms) {
                holdings.first()
            } else {
                holdings.last()
            }
        })
        .map(|h| h.station.as_str())
}

/// How much of `[from, to]` `station` held; a zero-length span belongs wholly to its
/// holder at `from`.
fn share(holdings: &[Holding], station: &str, from: i64, to: i64) -> f64 {
    if to <= from {
        return f64::from(u8::from(holder_at(holdings, from) == Some(station)));
    }
    let held: i64 = holdings
        .iter()
        .filter(|h| h.station == station)
        .map(|h| {
            let (a, b) = (h.from_ms.max(from), h.to_ms.unwrap_or(i64::MAX).min(to));
            (b - a).max(0)
        })
        .sum();
    held as f64 / (to - from) as f64
}

/// `station`'s part in ticket `t` held as `holdings` (oldest first); empty holdings mean
/// the ticket never moved and is wholly its current station's.
pub fn attribute(t: &Ticket, holdings: &[Holding], station: &str) -> Attribution {
    if holdings.is_empty() {
        let mine = t.station == station;
        return Attribution {
            ack: mine,
            on_site: mine,
            resolve: mine,
            ack_weight: f64::from(u8::from(mine)),
            resolve_weight: f64::from(u8::from(mine)),
        };
    }
    // The moment a verdict is decided: the stage reached, or its deadline passed unmet.
    let decided =
        |done: Option<i64>, due: Option<i64>, breached: bool| done.or(due.filter(|_| breached));
    let answers = |at: Option<i64>| at.is_some_and(|ts| holder_at(holdings, ts) == Some(station));
    Attribution {
        ack: answers(decided(
            t.acknowledged_ms,
            Some(t.ack_due_ms),
            t.ack_breached,
        )),
        on_site: answers(decided(t.on_site_ms, t.on_site_due_ms, t.on_site_breached)),
        resolve: answers(decided(t.resolved_ms, t.resolve_due_ms, t.resolve_breached)),
        ack_weight: t
            .acknowledged_ms
            .map_or(0.0, |a| share(holdings, station, t.opened_ms, a)),
        resolve_weight: t
            .resolved_ms
            .map_or(0.0, |r| share(holdings, station, t.opened_ms, r)),
    }
}
