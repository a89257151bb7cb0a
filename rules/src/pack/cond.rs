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
        let key = |k: &str| at.key(k);
        for k in t.keys() {
            if !COND_KEYS.contains(&k.as_str()) {
                return Err(self.err(&key(k), "unknown key"));
            }
        }
        let idx = c.nodes.len();
        c.nodes.push(Node {
            form: Form::All(Vec::new()),
            for_ms: None,
            only_while: None,
        });
        let stateful_err = |what: &str| self.stateful_err(&at, what);
        let for_ms = match t.get("for") {
            Some(_) if stateless => return Err(stateful_err("for")),
            Some(d) => {
                c.timed = true;
                Some(self.duration(d, &key("for"))?)
            }
            None => None,
        };
        let only_while = match t.get("only_while") {
            Some(_) if stateless => return Err(stateful_err("only_while")),
            Some(v) => {
                let (m, ty) = self.metric(kind, Some(v), &key("only_while"), c)?;
                if ty != MetricType::Bool {
                    return Err(self.err(&key("only_while"), "must name a true/false metric"));
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

    fn stateful_err(&self, at: &CondAt, what: &str) -> RulesError {
        self.err(
            &at.key(what),
            "not allowed inside `compound.where`, which only looks at current values",
        )
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
        let t = at.t;
        let path = at.path;
        let kind = at.kind;
        let stateless = at.stateless;
        let key = |k: &str| at.key(k);
        let has = |k: &str| at.t.contains_key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let (name, is_all) = if has("all") {
            ("all", true)
        } else {
            ("any", false)
        };
        allow(&[name])?;
        let T::Array(items) = &t[name] else {
            return Err(self.err(&key(name), "must be a list of conditions"));
        };
        if items.is_empty() {
            return Err(self.err(&key(name), "must not be empty"));
        }
        let mut kids = Vec::new();
        for (i, item) in items.iter().enumerate() {
            kids.push(self.cond(item, &format!("{path}.{name}[{i}]"), kind, c, stateless)?);
        }
        Ok(if is_all {
            Form::All(kids)
        } else {
            Form::Any(kids)
        })
    }

    fn cond_flag(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let t = at.t;
        let kind = at.kind;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        allow(&["flag", "is"])?;
        let (m, ty) = self.metric(kind, t.get("flag"), &key("flag"), c)?;
        if ty != MetricType::Bool {
            return Err(self.err(&key("flag"), "must name a true/false metric"));
        }
        c.has_state_leaf = true;
        Ok(Form::Flag {
            metric: m,
            is: self
                .bool(t, "is", true)
                .map_err(|_| self.err(&key("is"), "must be true or false"))?,
        })
    }

    fn cond_enum(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let t = at.t;
        let kind = at.kind;
        let key = |k: &str| at.key(k);
        let has = |k: &str| at.t.contains_key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let which = ["equals", "not_equals", "in", "not_in"]
            .into_iter()
            .filter(|k| has(k))
            .collect::<Vec<_>>();
        if which.len() > 1 {
            return Err(self.err(
                &key(which[1]),
                format!("cannot be combined with `{}`", which[0]),
            ));
        }
        let w = which[0];
        allow(&["metric", w])?;
        let (m, ty) = self.metric(kind, t.get("metric"), &key("metric"), c)?;
        let MetricType::Enum(allowed) = ty else {
            return Err(self.err(
                &key("metric"),
                "must name an enumerated metric (e.g. mode, door)",
            ));
        };
        let given: Vec<&str> = match &t[w] {
            T::String(s) => vec![s],
            T::Array(a) if !a.is_empty() => a
                .iter()
                .map(|x| {
                    x.as_str()
                        .ok_or_else(|| self.err(&key(w), "must list strings"))
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(self.err(&key(w), "must be a value or a list of values")),
        };
        let mut values = Vec::new();
        for g in given {
            let p = allowed.iter().position(|a| *a == g).ok_or_else(|| {
                self.err(
                    &key(w),
                    format!(
                        "`{g}` is not a value of {} (expected one of {})",
                        catalog::metrics(kind)[m].name,
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
        let t = at.t;
        let kind = at.kind;
        let stateless = at.stateless;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let stateful_err = |what: &str| self.stateful_err(at, what);
        if stateless {
            return Err(stateful_err("baseline_share"));
        }
        allow(&["metric", "op", "baseline_share", "while", "min_samples"])?;
        let (m, ty) = self.metric(kind, t.get("metric"), &key("metric"), c)?;
        numeric(self, ty, &key("metric"))?;
        let share = self.number(t.get("baseline_share"), &key("baseline_share"))?;
        if !(0.0..=10.0).contains(&share) || share == 0.0 {
            return Err(self.err(&key("baseline_share"), "must be between 0 and 10"));
        }
        let (wf, wty) = self.metric(kind, t.get("while"), &key("while"), c)?;
        if wty != MetricType::Bool {
            return Err(self.err(&key("while"), "must name a true/false metric"));
        }
        let min_samples = match t.get("min_samples") {
            None => 5,
            v => self.count(v, &key("min_samples"))? as u32,
        };
        c.has_state_leaf = true;
        Ok(Form::Baseline {
            metric: m,
            op: self.op(t.get("op"), &key("op"))?,
            share,
            while_flag: wf,
            min_samples,
        })
    }

    fn cond_rate(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let t = at.t;
        let path = at.path;
        let kind = at.kind;
        let stateless = at.stateless;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let stateful_err = |what: &str| self.stateful_err(at, what);
        if stateless {
            return Err(stateful_err("rate"));
        }
        allow(&["rate", "op", "raise", "clear", "window"])?;
        let (m, ty) = self.metric(kind, t.get("rate"), &key("rate"), c)?;
        numeric(self, ty, &key("rate"))?;
        let op = self.op(t.get("op"), &key("op"))?;
        let (raise, clear) = self.levels(t, op, path)?;
        let window_ms = self.duration(
            t.get("window")
                .ok_or_else(|| self.err(&key("window"), "missing"))?,
            &key("window"),
        )?;
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
        let t = at.t;
        let path = at.path;
        let kind = at.kind;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        allow(&["metric", "op", "raise", "clear"])?;
        let (m, ty) = self.metric(kind, t.get("metric"), &key("metric"), c)?;
        numeric(self, ty, &key("metric"))?;
        let op = self.op(t.get("op"), &key("op"))?;
        let (raise, clear) = self.levels(t, op, path)?;
        c.has_state_leaf = true;
        Ok(Form::Threshold {
            metric: m,
            op,
            raise,
            clear,
        })
    }

    fn cond_rises(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let t = at.t;
        let kind = at.kind;
        let stateless = at.stateless;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let stateful_err = |what: &str| self.stateful_err(at, what);
        if stateless {
            return Err(stateful_err("rises"));
        }
        allow(&["rises", "count", "within"])?;
        let n = self.count(t.get("count"), &key("count"))?;
        let within_ms = self.duration(
            t.get("within")
                .ok_or_else(|| self.err(&key("within"), "missing"))?,
            &key("within"),
        )?;
        let child = self.cond(&t["rises"], &key("rises"), kind, c, false)?;
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
        let t = at.t;
        let kind = at.kind;
        let stateless = at.stateless;
        let key = |k: &str| at.key(k);
        let has = |k: &str| at.t.contains_key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let stateful_err = |what: &str| self.stateful_err(at, what);
        if stateless {
            return Err(stateful_err("event"));
        }
        let names = self.names(&t["event"], kind, &key("event"))?;
        Ok(if has("count") || has("within") {
            allow(&["event", "count", "within"])?;
            let n = self.count(t.get("count"), &key("count"))?;
            let within_ms = self.duration(
                t.get("within")
                    .ok_or_else(|| self.err(&key("within"), "missing"))?,
                &key("within"),
            )?;
            c.has_state_leaf = true;
            c.timed = true;
            Form::CountEvents {
                names,
                n,
                within_ms,
            }
        } else {
            allow(&["event"])?;
            if for_ms.is_some() {
                return Err(self.err(&key("for"), "an event is an instant; use count/within"));
            }
            c.has_event_leaf = true;
            Form::Event { names }
        })
    }

    fn cond_silent(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let t = at.t;
        let stateless = at.stateless;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let stateful_err = |what: &str| self.stateful_err(at, what);
        if stateless {
            return Err(stateful_err("silent_periods"));
        }
        allow(&["silent_periods", "silent_for"])?;
        let periods = match t.get("silent_periods") {
            None => None,
            v => Some(self.count(v, &key("silent_periods"))? as u32),
        };
        let ms = match t.get("silent_for") {
            None => None,
            Some(d) => Some(self.duration(d, &key("silent_for"))?),
        };
        c.has_state_leaf = true;
        c.timed = true;
        c.silence = true;
        Ok(Form::Silent { periods, ms })
    }

    fn cond_status(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let t = at.t;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        allow(&["status"])?;
        match t.get("status") {
            Some(T::String(s)) if s == "offline" => {}
            _ => {
                return Err(self.err(
                    &key("status"),
                    "only `offline` (the last will) can be tested",
                ))
            }
        }
        c.has_state_leaf = true;
        Ok(Form::Offline)
    }

    fn cond_compound(&self, at: &CondAt, c: &mut Compiled) -> Result<Form, RulesError> {
        let t = at.t;
        let stateless = at.stateless;
        let key = |k: &str| at.key(k);
        let allow = |own: &[&str]| self.allow(at, own);
        let stateful_err = |what: &str| self.stateful_err(at, what);
        if stateless {
            return Err(stateful_err("compound"));
        }
        allow(&["compound", "where"])?;
        let other: DeviceKind = match t.get("compound") {
            Some(T::String(s)) => s
                .parse()
                .map_err(|e: String| self.err(&key("compound"), e))?,
            _ => return Err(self.err(&key("compound"), "must be a device kind")),
        };
        let w = t
            .get("where")
            .ok_or_else(|| self.err(&key("where"), "missing"))?;
        let mut sub = Compiled {
            nodes: Vec::new(),
            metrics: Vec::new(),
            has_state_leaf: false,
            has_event_leaf: false,
            timed: false,
            silence: false,
            watches: Vec::new(),
        };
        self.cond(w, &key("where"), other, &mut sub, true)?;
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
