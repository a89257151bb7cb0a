//! Compiling one condition table into tree nodes: the checks every form shares (unknown
//! keys, `for`, `only_while`, what `compound.where` may hold) and one function per form.

use super::{Compiled, Form, Node, Op, RuleCx, Tree};
use crate::RulesError;
use steward_estate::catalog::{self, MetricType};
use steward_estate::DeviceKind;
use toml::Value as T;

const COND_KEYS: &[&str] = &[
    "all",
    "any",
    "flag",
    "is",
    "metric",
    "op",
    "raise",
    "clear",
    "equals",
    "not_equals",
    "in",
    "not_in",
    "event",
    "count",
    "within",
    "rises",
    "silent_periods",
    "silent_for",
    "status",
    "rate",
    "window",
    "baseline_share",
    "while",
    "min_samples",
    "compound",
    "where",
    "for",
    "only_while",
];

/// One condition table being compiled: where it is in the file, for which device kind,
/// and whether it sits inside `compound.where` (current values only, no timers).
struct CondAt<'t> {
    t: &'t toml::Table,
    path: &'t str,
    kind: DeviceKind,
    stateless: bool,
}

impl CondAt<'_> {
    fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.path)
    }

    fn has(&self, k: &str) -> bool {
        self.t.contains_key(k)
    }
}

impl RuleCx<'_> {
    /// Compile one condition table into `c.nodes`, returning its index.
    pub(super) fn cond(
        &self,
        v: &T,
        path: &str,
        kind: DeviceKind,
        c: &mut Compiled,
        stateless: bool,
    ) -> Result<usize, RulesError> {
        let T::Table(t) = v else {
            return Err(self.err(path, "must be a table"));
        };
        let at = CondAt {
            t,
            path,
            kind,
            stateless,
        };
        for k in t.keys() {
            if !COND_KEYS.contains(&k.as_str()) {
                return Err(self.err(&at.key(k), "unknown key"));
            }
        }
        let idx = c.nodes.len();
        c.nodes.push(Node {
            form: Form::All(Vec::new()),
            for_ms: None,
            only_while: None,
        });
        let for_ms = match t.get("for") {
            Some(d) => {
                self.stateful(&at, "for")?;
                c.timed = true;
                Some(self.duration(d, &at.key("for"))?)
            }
            None => None,
        };
        let only_while = match t.get("only_while") {
            Some(v) => {
                self.stateful(&at, "only_while")?;
                let (m, ty) = self.metric(kind, Some(v), &at.key("only_while"), c)?;
                if ty != MetricType::Bool {
                    return Err(self.err(&at.key("only_while"), "must name a true/false metric"));
                }
                Some(m)
            }
            None => None,
        };
        let form = if at.has("all") || at.has("any") {
            self.cond_group(&at, c)?
        } else if at.has("flag") {
            self.cond_flag(&at, c)?
        } else if at.has("equals") || at.has("not_equals") || at.has("in") || at.has("not_in") {
            self.cond_enum(&at, c)?
        } else if at.has("baseline_share") {
            self.cond_baseline(&at, c)?
        } else if at.has("rate") {
            self.cond_rate(&at, c)?
        } else if at.has("op") || at.has("raise") {
            self.cond_threshold(&at, c)?
        } else if at.has("rises") {
            self.cond_rises(&at, c)?
        } else if at.has("event") {
            self.cond_event(&at, c, for_ms)?
        } else if at.has("silent_periods") || at.has("silent_for") {
            self.cond_silent(&at, c)?
        } else if at.has("status") {
            self.cond_status(&at, c)?
        } else if at.has("compound") {
            self.cond_compound(&at, c)?
        } else {
            return Err(self.err(
                path,
                "no condition form (expected one of all, any, flag, metric+op, metric+equals, event, rises, silent_periods, status, rate, baseline_share, compound)",
            ));
        };
        c.nodes[idx] = Node {
            form,
            for_ms,
            only_while,
        };
        Ok(idx)
    }

    /// `compound.where` looks at current values only, so a key that needs history or
    /// timers is refused there.
    fn stateful(&self, at: &CondAt, what: &str) -> Result<(), RulesError> {
        if at.stateless {
            return Err(self.err(
                &at.key(what),
                "not allowed inside `compound.where`, which only looks at current values",
            ));
        }
        Ok(())
    }

    /// A duration key that must be present (`window`, `within`).
    fn required_duration(&self, at: &CondAt, k: &str) -> Result<i64, RulesError> {
        let v = at.t.get(k).ok_or_else(|| self.err(&at.key(k), "missing"))?;
        self.duration(v, &at.key(k))
    }

    /// `count` occurrences `within` a duration, shared by `rises` and counted events.
    fn count_within(&self, at: &CondAt) -> Result<(usize, i64), RulesError> {
        let n = self.count(at.t.get("count"), &at.key("count"))?;
        Ok((n, self.required_duration(at, "within")?))
    }

    /// Each form owns some keys; anything else present is a mistake worth naming.
    fn allow(&self, at: &CondAt, own: &[&str]) -> Result<(), RulesError> {
        for k in at.t.keys() {
            if !own.contains(&k.as_str()) && k != "for" && k != "only_while" {
                return Err(self.err(
                    &at.key(k),
                    "does not belong with the other keys of this condition",
                ));
            }
        }
        Ok(())
    }

    fn cond_group(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let (name, is_all) = if at.has("all") {
            ("all", true)
        } else {
            ("any", false)
        };
        self.allow(at, &[name])?;
        let T::Array(items) = &at.t[name] else {
            return Err(self.err(&at.key(name), "must be a list of conditions"));
        };
        if items.is_empty() {
            return Err(self.err(&at.key(name), "must not be empty"));
        }
        let mut kids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            kids.push(self.cond(
                item,
                &format!("{}.{name}[{i}]", at.path),
                at.kind,
                c,
                at.stateless,
            )?);
        }
        Ok(if is_all {
            Form::All(kids)
        } else {
            Form::Any(kids)
        })
    }

    fn cond_flag(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.allow(at, &["flag", "is"])?;
        let (m, ty) = self.metric(at.kind, at.t.get("flag"), &at.key("flag"), c)?;
        if ty != MetricType::Bool {
            return Err(self.err(&at.key("flag"), "must name a true/false metric"));
        }
        c.has_state_leaf = true;
        Ok(Form::Flag {
            metric: m,
            is: self
                .bool(at.t, "is", true)
                .map_err(|_| self.err(&at.key("is"), "must be true or false"))?,
        })
    }

    fn cond_enum(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let which = ["equals", "not_equals", "in", "not_in"]
            .into_iter()
            .filter(|k| at.has(k))
            .collect::<Vec<_>>();
        if which.len() > 1 {
            return Err(self.err(
                &at.key(which[1]),
                format!("cannot be combined with `{}`", which[0]),
            ));
        }
        let w = which[0];
        self.allow(at, &["metric", w])?;
        let (m, ty) = self.metric(at.kind, at.t.get("metric"), &at.key("metric"), c)?;
        let MetricType::Enum(allowed) = ty else {
            return Err(self.err(
                &at.key("metric"),
                "must name an enumerated metric (e.g. mode, door)",
            ));
        };
        let given: Vec<&str> = match &at.t[w] {
            T::String(s) => vec![s],
            T::Array(a) if !a.is_empty() => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .ok_or_else(|| self.err(&at.key(w), "must list strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(self.err(&at.key(w), "must be a value or a list of values")),
        };
        let mut values = Vec::new();
        for g in given {
            let p = allowed.iter().position(|a| *a == g).ok_or_else(|| {
                self.err(
                    &at.key(w),
                    format!(
                        "`{g}` is not a value of {} (expected one of {})",
                        catalog::metrics(at.kind)[m].name,
                        allowed.join(", ")
                    ),
                )
            })?;
            values.push(p as u16);
        }
        c.has_state_leaf = true;
        Ok(Form::Enum {
            metric: m,
            values,
            negate: w.starts_with("not_"),
        })
    }

    fn cond_baseline(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.stateful(at, "baseline_share")?;
        self.allow(
            at,
            &["metric", "op", "baseline_share", "while", "min_samples"],
        )?;
        let (m, ty) = self.metric(at.kind, at.t.get("metric"), &at.key("metric"), c)?;
        numeric(self, ty, &at.key("metric"))?;
        let share = self.number(at.t.get("baseline_share"), &at.key("baseline_share"))?;
        if !(0.0..=10.0).contains(&share) || share == 0.0 {
            return Err(self.err(&at.key("baseline_share"), "must be between 0 and 10"));
        }
        let (wf, wty) = self.metric(at.kind, at.t.get("while"), &at.key("while"), c)?;
        if wty != MetricType::Bool {
            return Err(self.err(&at.key("while"), "must name a true/false metric"));
        }
        let min_samples = match at.t.get("min_samples") {
            None => 5,
            v => self.count(v, &at.key("min_samples"))? as u32,
        };
        c.has_state_leaf = true;
        Ok(Form::Baseline {
            metric: m,
            op: self.op(at.t.get("op"), &at.key("op"))?,
            share,
            while_flag: wf,
            min_samples,
        })
    }

    fn cond_rate(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.stateful(at, "rate")?;
        self.allow(at, &["rate", "op", "raise", "clear", "window"])?;
        let (m, ty) = self.metric(at.kind, at.t.get("rate"), &at.key("rate"), c)?;
        numeric(self, ty, &at.key("rate"))?;
        let op = self.op(at.t.get("op"), &at.key("op"))?;
        let (raise, clear) = self.levels(at.t, op, at.path)?;
        let window_ms = self.required_duration(at, "window")?;
        c.has_state_leaf = true;
        c.timed = true;
        Ok(Form::Rate {
            metric: m,
            op,
            raise,
            clear,
            window_ms,
        })
    }

    fn cond_threshold(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.allow(at, &["metric", "op", "raise", "clear"])?;
        let (m, ty) = self.metric(at.kind, at.t.get("metric"), &at.key("metric"), c)?;
        numeric(self, ty, &at.key("metric"))?;
        let op = self.op(at.t.get("op"), &at.key("op"))?;
        let (raise, clear) = self.levels(at.t, op, at.path)?;
        c.has_state_leaf = true;
        Ok(Form::Threshold {
            metric: m,
            op,
            raise,
            clear,
        })
    }

    fn cond_rises(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.stateful(at, "rises")?;
        self.allow(at, &["rises", "count", "within"])?;
        let (n, within_ms) = self.count_within(at)?;
        let child = self.cond(&at.t["rises"], &at.key("rises"), at.kind, c, false)?;
        c.has_state_leaf = true;
        c.timed = true;
        Ok(Form::CountRises {
            child,
            n,
            within_ms,
        })
    }

    fn cond_event(
        &self,
        at: &CondAt,
        c: &mut Compiled,
        for_ms: Option<i64>,
    ) -> Result<Form, RulesError> {
        self.stateful(at, "event")?;
        let names = self.names(&at.t["event"], at.kind, &at.key("event"))?;
        Ok(if at.has("count") || at.has("within") {
            self.allow(at, &["event", "count", "within"])?;
            let (n, within_ms) = self.count_within(at)?;
            c.has_state_leaf = true;
            c.timed = true;
            Form::CountEvents {
                names,
                n,
                within_ms,
            }
        } else {
            self.allow(at, &["event"])?;
            if for_ms.is_some() {
                return Err(self.err(&at.key("for"), "an event is an instant; use count/within"));
            }
            c.has_event_leaf = true;
            Form::Event { names }
        })
    }

    fn cond_silent(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.stateful(at, "silent_periods")?;
        self.allow(at, &["silent_periods", "silent_for"])?;
        let periods = match at.t.get("silent_periods") {
            None => None,
            v => Some(self.count(v, &at.key("silent_periods"))? as u32),
        };
        let ms = match at.t.get("silent_for") {
            None => None,
            Some(d) => Some(self.duration(d, &at.key("silent_for"))?),
        };
        c.has_state_leaf = true;
        c.timed = true;
        c.silence = true;
        Ok(Form::Silent { periods, ms })
    }

    fn cond_status(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.allow(at, &["status"])?;
        match at.t.get("status") {
            Some(T::String(s)) if s == "offline" => {}
            _ => {
                return Err(self.err(
                    &at.key("status"),
                    "only `offline` (the last will) can be tested",
                ))
            }
        }
        c.has_state_leaf = true;
        Ok(Form::Offline)
    }

    fn cond_compound(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        self.stateful(at, "compound")?;
        self.allow(at, &["compound", "where"])?;
        let other: DeviceKind = match at.t.get("compound") {
            Some(T::String(s)) => s
                .parse()
                .map_err(|e: String| self.err(&at.key("compound"), e))?,
            _ => return Err(self.err(&at.key("compound"), "must be a device kind")),
        };
        let w =
            at.t.get("where")
                .ok_or_else(|| self.err(&at.key("where"), "missing"))?;
        let mut sub = Compiled::default();
        self.cond(w, &at.key("where"), other, &mut sub, true)?;
        if !c.watches.contains(&other) {
            c.watches.push(other);
        }
        c.has_state_leaf = true;
        Ok(Form::Compound {
            kind: other,
            tree: Box::new(Tree { nodes: sub.nodes }),
        })
    }

    fn levels(&self, t: &toml::Table, op: Op, path: &str) -> Result<(f64, f64), RulesError> {
        let raise = self.number(t.get("raise"), &format!("{path}.raise"))?;
        let clear = match t.get("clear") {
            None => raise,
            v => self.number(v, &format!("{path}.clear"))?,
        };
        // The clear level must sit on the safe side of the raise level, or the condition
        // would chatter (or never clear).
        if (op.upward() && clear > raise) || (!op.upward() && clear < raise) {
            return Err(self.err(
                &format!("{path}.clear"),
                format!(
                    "clear level {clear} must be {} the raise level {raise}",
                    if op.upward() {
                        "at or below"
                    } else {
                        "at or above"
                    }
                ),
            ));
        }
        Ok((raise, clear))
    }
}

fn numeric(cx: &RuleCx, ty: MetricType, key: &str) -> Result<(), RulesError> {
    match ty {
        MetricType::Float { .. } | MetricType::Int { .. } => Ok(()),
        _ => Err(cx.err(key, "must name a numeric metric")),
    }
}
