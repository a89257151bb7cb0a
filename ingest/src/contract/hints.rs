//! Words for a reject's detail that help a vendor fix the payload: durations a person
//! reads (days, not millions of seconds), the unit a wrong-sized `ts` was probably in, and
//! the catalogue name nearest to a misspelt one. Only reached on the reject path.

/// A duration of `ms` milliseconds in the unit a person would use: `274 days`, `5 h`,
/// `12 min`, `40 s`.
pub(super) fn span(ms: i64) -> String {
    const S: i64 = 1_000;
    const MIN: i64 = 60 * S;
    const H: i64 = 60 * MIN;
    const DAY: i64 = 24 * H;
    let ms = ms.max(0);
    if ms >= 2 * DAY {
        format!("{} days", ms / DAY)
    } else if ms >= 2 * H {
        format!("{} h", ms / H)
    } else if ms >= 2 * MIN {
        format!("{} min", ms / MIN)
    } else {
        format!("{} s", ms / S)
    }
}

/// The unit a numeric `ts` was probably written in when it is not milliseconds, and its
/// value in milliseconds. Milliseconds of the years 2001 to 2286 have 13 digits; the same
/// instants have 10 digits in seconds, 16 in microseconds and 19 in nanoseconds.
pub(super) fn ts_unit(ts: i64) -> Option<(&'static str, i64)> {
    match ts {
        1_000_000_000..=9_999_999_999 => Some(("seconds", ts * 1_000)),
        1_000_000_000_000_000..=9_999_999_999_999_999 => Some(("microseconds", ts / 1_000)),
        1_000_000_000_000_000_000..=i64::MAX => Some(("nanoseconds", ts / 1_000_000)),
        _ => None,
    }
}

/// The candidate nearest to `given` when it is close enough to be a slip of the keyboard
/// or a remembered-wrong name (`obscuration_pct_m` -> `obscuration_pct_per_m`).
pub(super) fn nearest<'a>(
    given: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let given_lower = given.to_ascii_lowercase();
    candidates
        .into_iter()
        .filter_map(|c| {
            let d = strsim::damerau_levenshtein(&given_lower, c);
            let longest = given.chars().count().max(c.len());
            let close = d <= (longest / 3).max(2)
                || (given.len() >= 4 && (c.contains(&*given_lower) || given_lower.contains(c)));
            close.then_some((d, c))
        })
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_like_a_person_says_them() {
        assert_eq!(span(23_719_665_000), "274 days");
        assert_eq!(span(30 * 86_400_000), "30 days");
        assert_eq!(span(300_000), "5 min");
        assert_eq!(span(3 * 3_600_000), "3 h");
        assert_eq!(span(45_000), "45 s");
    }

    #[test]
    fn units_of_a_wrong_sized_ts() {
        let now = 1_790_000_000_000i64;
        assert_eq!(ts_unit(now / 1000), Some(("seconds", now)));
        assert_eq!(ts_unit(now * 1000), Some(("microseconds", now)));
        assert_eq!(ts_unit(now * 1_000_000), Some(("nanoseconds", now)));
        assert_eq!(ts_unit(now - 90 * 86_400_000), None, "old milliseconds");
        assert_eq!(ts_unit(1_772_439_300), Some(("seconds", 1_772_439_300_000)));
        assert_eq!(ts_unit(42), None);
    }

    #[test]
    fn nearest_names() {
        let names = [
            "obscuration_pct_per_m",
            "co_ppm",
            "speed_m_s",
            "floor",
            "alarm",
        ];
        assert_eq!(
            nearest("obscuration_pct_m", names),
            Some("obscuration_pct_per_m")
        );
        assert_eq!(nearest("speed_ms", names), Some("speed_m_s"));
        assert_eq!(nearest("flor", names), Some("floor"));
        assert_eq!(nearest("Alarm", names), Some("alarm"));
        assert_eq!(nearest("smell", names), None);
        assert_eq!(nearest("temperature", names), None);
    }
}
