//! On-call rotas compiled for lookups: weekly shifts in local minutes of the week, dated
//! overrides as UTC instants. Checks of times and overlaps live here too, so the file's
//! validation and the lookups read times the same way.

use super::defs::RotaDef;
use chrono::{Datelike, Duration, NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

const DAY_MIN: usize = 24 * 60;
const WEEK_MIN: usize = 7 * DAY_MIN;
pub(crate) const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

#[derive(Debug, Clone)]
pub(crate) struct Shift {
    /// Monday first.
    days: [bool; 7],
    start: usize,
    end: usize,
    pub(crate) person: String,
}

impl Shift {
    /// Whether the shift covers local minute `minute` of weekday `day` (Monday = 0).
    fn covers(&self, day: usize, minute: usize) -> bool {
        if self.start < self.end {
            self.days[day] && (self.start..self.end).contains(&minute)
        } else {
            let prev = (day + 6) % 7;
            (self.days[day] && minute >= self.start) || (self.days[prev] && minute < self.end)
        }
    }

    /// Minutes of the week (Monday 00:00 = 0) the shift covers, as half-open ranges.
    fn week_ranges(&self) -> Vec<(usize, usize)> {
        let len = if self.start < self.end {
            self.end - self.start
        } else {
            DAY_MIN - self.start + self.end
        };
        let mut out = Vec::new();
        for (d, on) in self.days.iter().enumerate() {
            if !on {
                continue;
            }
            let from = d * DAY_MIN + self.start;
            let to = from + len;
            if to <= WEEK_MIN {
                out.push((from, to));
            } else {
                // Sunday night runs into Monday morning.
                out.push((from, WEEK_MIN));
                out.push((0, to - WEEK_MIN));
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Override {
    from_ms: i64,
    to_ms: i64,
    pub(crate) person: String,
}

/// One station's compiled rota.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rota {
    shifts: Vec<Shift>,
    overrides: Vec<Override>,
}

impl Rota {
    /// Person ids named by the rota, with repeats.
    pub(crate) fn people(&self) -> impl Iterator<Item = &str> {
        self.shifts
            .iter()
            .map(|s| s.person.as_str())
            .chain(self.overrides.iter().map(|o| o.person.as_str()))
    }

    /// The persons on call at `at_ms`: the override covering it, else the weekly shifts.
    pub(crate) fn on_call(&self, tz: Tz, at_ms: i64) -> Vec<&str> {
        if let Some(o) = self
            .overrides
            .iter()
            .find(|o| o.from_ms <= at_ms && at_ms < o.to_ms)
        {
            return vec![o.person.as_str()];
        }
        let Some(local) = tz.timestamp_millis_opt(at_ms).single() else {
            return Vec::new();
        };
        let day = local.weekday().num_days_from_monday() as usize;
        let minute = (local.hour() * 60 + local.minute()) as usize;
        self.shifts
            .iter()
            .filter(|s| s.covers(day, minute))
            .map(|s| s.person.as_str())
            .collect()
    }
}

/// `HH:MM`, 00:00 to 23:59, as minutes of the day.
pub(crate) fn parse_hhmm(s: &str) -> Option<usize> {
    let t = NaiveTime::parse_from_str(s, "%H:%M").ok()?;
    (s.len() == 5).then_some((t.hour() * 60 + t.minute()) as usize)
}

/// A local `YYYY-MM-DDTHH:MM` (seconds optional).
pub(crate) fn parse_local(s: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
}

/// The instant a local time names. In a DST fall-back hour the earlier one; in a
/// spring-forward gap the first instant after it.
pub(crate) fn local_to_ms(tz: Tz, t: NaiveDateTime) -> Option<i64> {
    tz.from_local_datetime(&t)
        .earliest()
        .or_else(|| tz.from_local_datetime(&(t + Duration::hours(1))).earliest())
        .map(|d| d.timestamp_millis())
}

/// Compile a rota, pushing every problem (named by `key`, e.g. `rotas[0]`) to `errors`.
/// Person ids are checked by the caller.
pub(crate) fn compile(def: &RotaDef, key: &str, tz: Tz, errors: &mut Vec<String>) -> Rota {
    let mut rota = Rota::default();
    for (i, s) in def.shifts.iter().enumerate() {
        let k = format!("{key}.shifts[{i}]");
        let mut days = [false; 7];
        if s.days.is_empty() {
            errors.push(format!("{k}.days: name at least one day (mon .. sun)"));
        }
        for d in &s.days {
            match DAYS.iter().position(|x| x == d) {
                Some(p) if days[p] => errors.push(format!("{k}.days: `{d}` given twice")),
                Some(p) => days[p] = true,
                None => errors.push(format!(
                    "{k}.days: unknown day `{}`; expected mon, tue, wed, thu, fri, sat or sun",
                    short(d)
                )),
            }
        }
        let start = parse_hhmm(&s.start);
        let end = parse_hhmm(&s.end);
        if start.is_none() {
            errors.push(format!(
                "{k}.start: `{}` is not a time HH:MM",
                short(&s.start)
            ));
        }
        if end.is_none() {
            errors.push(format!("{k}.end: `{}` is not a time HH:MM", short(&s.end)));
        }
        if let (Some(start), Some(end)) = (start, end) {
            if start == end {
                errors.push(format!(
                    "{k}.end: equals start; a shift of a whole day ends at the next one's start"
                ));
            } else {
                rota.shifts.push(Shift {
                    days,
                    start,
                    end,
                    person: s.person.clone(),
                });
            }
        }
    }
    check_shift_overlaps(&rota.shifts, def, key, errors);
    let mut spans: Vec<(usize, i64, i64)> = Vec::new();
    for (i, o) in def.overrides.iter().enumerate() {
        let k = format!("{key}.overrides[{i}]");
        let from = parse_local(&o.from);
        let to = parse_local(&o.to);
        if from.is_none() {
            errors.push(format!(
                "{k}.from: `{}` is not a local time YYYY-MM-DDTHH:MM",
                short(&o.from)
            ));
        }
        if to.is_none() {
            errors.push(format!(
                "{k}.to: `{}` is not a local time YYYY-MM-DDTHH:MM",
                short(&o.to)
            ));
        }
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        let (Some(from_ms), Some(to_ms)) = (local_to_ms(tz, from), local_to_ms(tz, to)) else {
            errors.push(format!("{k}: a time that does not exist in the time zone"));
            continue;
        };
        if to_ms <= from_ms {
            errors.push(format!("{k}.to: must be after from"));
            continue;
        }
        for (j, f, t) in &spans {
            if from_ms < *t && *f < to_ms {
                errors.push(format!(
                    "{k}: overlaps {key}.overrides[{j}]; dated overrides of a station may not overlap"
                ));
            }
        }
        spans.push((i, from_ms, to_ms));
        rota.overrides.push(Override {
            from_ms,
            to_ms,
            person: o.person.clone(),
        });
    }
    rota
}

/// Two weekly shifts of a station may not cover the same minute: who is on call must be
/// one person, or an override says otherwise.
fn check_shift_overlaps(shifts: &[Shift], def: &RotaDef, key: &str, errors: &mut Vec<String>) {
    // Shifts dropped for bad times are missing from `shifts`; map back to file indexes.
    let index: Vec<usize> = def
        .shifts
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!((parse_hhmm(&s.start), parse_hhmm(&s.end)), (Some(a), Some(b)) if a != b)
        })
        .map(|(i, _)| i)
        .collect();
    let mut owner: Vec<Option<usize>> = vec![None; WEEK_MIN];
    let mut reported = std::collections::BTreeSet::new();
    for (n, s) in shifts.iter().enumerate() {
        for (from, to) in s.week_ranges() {
            for (m, slot) in owner.iter_mut().enumerate().take(to).skip(from) {
                match slot {
                    Some(other) if *other != n => {
                        if reported.insert((*other, n)) {
                            let (a, b) = (index[*other], index[n]);
                            errors.push(format!(
                                "{key}.shifts[{b}]: overlaps {key}.shifts[{a}] on {} at {:02}:{:02}; \
                                 weekly shifts of a station may not overlap",
                                DAYS[m / DAY_MIN],
                                (m % DAY_MIN) / 60,
                                m % 60
                            ));
                        }
                    }
                    _ => *slot = Some(n),
                }
            }
        }
    }
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::defs::{OverrideDef, ShiftDef};

    fn shift(days: &[&str], start: &str, end: &str, person: &str) -> ShiftDef {
        ShiftDef {
            days: days.iter().map(|d| d.to_string()).collect(),
            start: start.into(),
            end: end.into(),
            person: person.into(),
        }
    }

    fn rota(shifts: Vec<ShiftDef>, overrides: Vec<OverrideDef>) -> RotaDef {
        RotaDef {
            station: "st-1".into(),
            shifts,
            overrides,
        }
    }

    fn at(tz: Tz, local: &str) -> i64 {
        local_to_ms(tz, parse_local(local).unwrap()).unwrap()
    }

    const ALL: [&str; 7] = DAYS;

    #[test]
    fn handover_at_eight_in_shanghai() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let def = rota(
            vec![
                shift(&ALL, "08:00", "20:00", "p-day"),
                shift(&ALL, "20:00", "08:00", "p-night"),
            ],
            vec![],
        );
        let mut e = Vec::new();
        let r = compile(&def, "rotas[0]", tz, &mut e);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(r.on_call(tz, at(tz, "2026-12-02T07:59")), ["p-night"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-02T08:00")), ["p-day"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-02T08:01")), ["p-day"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-02T19:59")), ["p-day"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-02T23:30")), ["p-night"]);
        // 08:00 in Shanghai is 00:00 UTC.
        assert_eq!(at(tz, "2026-12-02T08:00") % 86_400_000, 0);
    }

    #[test]
    fn night_shift_wraps_past_midnight_and_sunday_into_monday() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let def = rota(vec![shift(&["sun"], "22:00", "06:00", "p-n")], vec![]);
        let mut e = Vec::new();
        let r = compile(&def, "rotas[0]", tz, &mut e);
        assert!(e.is_empty(), "{e:?}");
        // 2026-12-06 is a Sunday.
        assert_eq!(r.on_call(tz, at(tz, "2026-12-06T23:00")), ["p-n"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-07T05:59")), ["p-n"]);
        assert!(r.on_call(tz, at(tz, "2026-12-07T06:00")).is_empty());
        assert!(r.on_call(tz, at(tz, "2026-12-06T05:00")).is_empty());
    }

    #[test]
    fn override_wins_over_the_weekly_pattern() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let def = rota(
            vec![shift(&ALL, "08:00", "08:00", "p-x")],
            vec![OverrideDef {
                from: "2026-12-24T08:00".into(),
                to: "2026-12-25T08:00".into(),
                person: "p-li".into(),
            }],
        );
        let mut e = Vec::new();
        compile(&def, "rotas[0]", tz, &mut e);
        assert!(
            e.iter().any(|m| m.contains("shifts[0].end: equals start")),
            "{e:?}"
        );
        let def = rota(
            vec![shift(&ALL, "08:00", "07:00", "p-wang")],
            def.overrides.clone(),
        );
        let mut e = Vec::new();
        let r = compile(&def, "rotas[0]", tz, &mut e);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(r.on_call(tz, at(tz, "2026-12-24T06:59")), ["p-wang"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-24T12:00")), ["p-li"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-25T07:30")), ["p-li"]);
        assert_eq!(r.on_call(tz, at(tz, "2026-12-25T08:00")), ["p-wang"]);
        assert!(
            r.on_call(tz, at(tz, "2026-12-26T07:30")).is_empty(),
            "gap 07:00-08:00"
        );
    }

    #[test]
    fn handover_follows_local_time_across_dst_in_berlin() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let def = rota(
            vec![
                shift(&ALL, "08:00", "20:00", "p-day"),
                shift(&ALL, "20:00", "08:00", "p-night"),
            ],
            vec![],
        );
        let mut e = Vec::new();
        let r = compile(&def, "rotas[0]", tz, &mut e);
        assert!(e.is_empty(), "{e:?}");
        // Winter: 08:00 CET is 07:00 UTC; summer: 08:00 CEST is 06:00 UTC.
        let winter = at(tz, "2026-01-15T08:00");
        assert_eq!(winter % 86_400_000, 7 * 3_600_000);
        assert_eq!(r.on_call(tz, winter - 60_000), ["p-night"]);
        assert_eq!(r.on_call(tz, winter + 60_000), ["p-day"]);
        let summer = at(tz, "2026-07-15T08:00");
        assert_eq!(summer % 86_400_000, 6 * 3_600_000);
        assert_eq!(r.on_call(tz, summer - 60_000), ["p-night"]);
        assert_eq!(r.on_call(tz, summer + 60_000), ["p-day"]);
        // The night of the spring change (29 March 2026) is an hour shorter, still covered.
        assert_eq!(r.on_call(tz, at(tz, "2026-03-29T03:30")), ["p-night"]);
    }

    #[test]
    fn overlaps_and_bad_times_are_named() {
        let tz: Tz = "Asia/Shanghai".parse().unwrap();
        let def = rota(
            vec![
                shift(&["mon", "tue"], "08:00", "20:00", "p-a"),
                shift(&["tue"], "19:00", "09:00", "p-b"),
                shift(&["sun"], "25:00", "08:00", "p-c"),
                shift(&["fun"], "08:00", "09:00", "p-d"),
            ],
            vec![
                OverrideDef {
                    from: "2026-12-24T08:00".into(),
                    to: "2026-12-25T08:00".into(),
                    person: "p-a".into(),
                },
                OverrideDef {
                    from: "2026-12-25T07:00".into(),
                    to: "2026-12-25T09:00".into(),
                    person: "p-b".into(),
                },
                OverrideDef {
                    from: "2026-12-26 08:00".into(),
                    to: "2026-12-25T09:00".into(),
                    person: "p-b".into(),
                },
            ],
        );
        let mut e = Vec::new();
        compile(&def, "rotas[0]", tz, &mut e);
        let want = [
            "rotas[0].shifts[1]: overlaps rotas[0].shifts[0] on tue at 19:00",
            "rotas[0].shifts[2].start: `25:00` is not a time HH:MM",
            "rotas[0].shifts[3].days: unknown day `fun`",
            "rotas[0].overrides[1]: overlaps rotas[0].overrides[0]",
            "rotas[0].overrides[2].from: `2026-12-26 08:00` is not a local time",
        ];
        for w in want {
            assert!(e.iter().any(|m| m.starts_with(w)), "{w}: {e:#?}");
        }
        // Wed 09:00 would overlap too if tuesday's night ran past 09:00; it ends at 09:00
        // on wednesday, and the monday/tuesday day shift is not on wednesday.
        assert_eq!(e.len(), 5, "{e:#?}");
    }
}
