//! The ladder's arithmetic, pure: which (tier, round) steps of a priority's ladder are due
//! for an unacknowledged ticket at a given time. Every step's due time is a function of
//! the ticket's opening time alone, so a restart recomputes the same steps, and the
//! outbox's idempotency key (ticket, tier, round, recipient, endpoint) makes sending one
//! again a no-op.

use crate::policy::Ladder;

/// One notice of one tier: round 0 is the first, round k the k-th reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Step {
    pub tier: u32,
    pub round: u32,
    pub due_ms: i64,
}

/// The latest due step of every tier reached by `now_ms`. Rounds missed while the hub was
/// down are not sent one by one: only the newest is, as a reminder says the same thing.
pub fn due_steps(ladder: &Ladder, opened_ms: i64, now_ms: i64) -> Vec<Step> {
    let mut out = Vec::new();
    for (i, t) in ladder.tiers.iter().enumerate() {
        let start = opened_ms.saturating_add(t.after_ms);
        if start > now_ms {
            break;
        }
        let round = if ladder.repeat_ms > 0 {
            ((now_ms - start) / ladder.repeat_ms).min(u32::MAX as i64)
        } else {
            0
        };
        out.push(Step {
            tier: i as u32,
            round: round as u32,
            due_ms: start + round * ladder.repeat_ms,
        });
    }
    out
}

/// When the next step after `now_ms` falls due (a new tier or a reminder), if any.
pub fn next_due(ladder: &Ladder, opened_ms: i64, now_ms: i64) -> Option<i64> {
    let mut next: Option<i64> = None;
    let mut consider = |x: i64| next = Some(next.map_or(x, |n: i64| n.min(x)));
    for t in &ladder.tiers {
        let start = opened_ms.saturating_add(t.after_ms);
        if start > now_ms {
            consider(start);
            break;
        }
        if ladder.repeat_ms > 0 {
            let k = (now_ms - start) / ladder.repeat_ms + 1;
            consider(start + k * ladder.repeat_ms);
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use steward_tickets::Priority;

    const MIN: i64 = 60_000;

    fn steps(now_min: i64) -> Vec<(u32, u32)> {
        let p = Policy::default();
        due_steps(p.ladder(Priority::P1), 0, now_min * MIN)
            .into_iter()
            .map(|s| (s.tier, s.round))
            .collect()
    }

    #[test]
    fn p1_climbs_at_5_15_and_30_minutes_and_reminds_every_tier_reached() {
        assert_eq!(steps(0), vec![(0, 0)]);
        assert_eq!(steps(4), vec![(0, 0)]);
        assert_eq!(steps(5), vec![(0, 1), (1, 0)]);
        assert_eq!(steps(14), vec![(0, 2), (1, 1)]);
        assert_eq!(steps(15), vec![(0, 3), (1, 2), (2, 0)]);
        assert_eq!(steps(31), vec![(0, 6), (1, 5), (2, 3), (3, 0)]);
    }

    #[test]
    fn a_long_outage_sends_the_newest_round_only_and_next_due_follows() {
        let p = Policy::default();
        let l = p.ladder(Priority::P1);
        let s = due_steps(l, 0, 62 * MIN);
        assert_eq!(
            s[0],
            Step {
                tier: 0,
                round: 12,
                due_ms: 60 * MIN
            }
        );
        assert_eq!(next_due(l, 0, 0), Some(5 * MIN));
        assert_eq!(next_due(l, 0, 5 * MIN), Some(10 * MIN));
        assert_eq!(next_due(l, 0, 16 * MIN), Some(20 * MIN));
        let quiet = Ladder {
            repeat_ms: 0,
            tiers: l.tiers.clone(),
        };
        assert_eq!(next_due(&quiet, 0, 31 * MIN), None);
        assert_eq!(due_steps(&quiet, 0, 31 * MIN).len(), 4);
    }
}
