//! Evaluation of one rule's condition tree against a device: the per-form arithmetic
//! (hysteresis, windows, rates, learned baselines, `for` durations) over the node state
//! that the engine persists.

use super::{Dev, DeviceData, Fast, NodeRt, Val};
use crate::pack::{Form, Op, Tree};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use steward_estate::DeviceKind;

/// What evaluating one device's rules at one instant sees.
pub(super) struct Cx<'a> {
    pub(super) now: i64,
    pub(super) event: Option<&'a str>,
    pub(super) data: &'a DeviceData,
    pub(super) self_id: &'a str,
    pub(super) interval_ms: i64,
    pub(super) devices: &'a HashMap<Arc<str>, Dev, Fast>,
    pub(super) members: &'a [(Arc<str>, DeviceKind)],
}

pub(super) fn num_at(d: &DeviceData, m: usize) -> Option<(f64, i64)> {
    match d.values.get(m)? {
        Some((Val::N(v), t)) => Some((*v, *t)),
        _ => None,
    }
}

pub(super) fn flag(d: &DeviceData, m: usize) -> Option<bool> {
    match d.values.get(m)? {
        Some((Val::B(b), _)) => Some(*b),
        _ => None,
    }
}

pub(super) fn enum_idx(d: &DeviceData, m: usize) -> Option<u16> {
    match d.values.get(m)? {
        Some((Val::E(e), _)) => Some(*e),
        _ => None,
    }
}

pub(super) fn prune(times: &mut VecDeque<i64>, from: i64) {
    while times.front().is_some_and(|t| *t <= from) {
        times.pop_front();
    }
}

pub(super) fn hysteresis(on: bool, op: Op, v: f64, raise: f64, clear: f64) -> bool {
    if on {
        op.holds(v, clear)
    } else {
        op.holds(v, raise)
    }
}

/// Change per minute over the window, with hysteresis (`Form::Rate`).
pub(super) fn rate(
    st: &mut NodeRt,
    cx: &Cx,
    metric: usize,
    op: Op,
    (raise, clear): (f64, f64),
    window_ms: i64,
) -> bool {
    let on = st.on;
    let w = st.win();
    if let Some((v, ts)) = num_at(cx.data, metric) {
        if w.samples.back().is_none_or(|(t, _)| ts > *t) {
            w.samples.push_back((ts, v));
        }
    }
    // Keep one sample at or before the window start so the delta spans the window.
    while w.samples.len() > 2 && w.samples[1].0 <= cx.now - window_ms {
        w.samples.pop_front();
    }
    let mut next = on;
    if let (Some((t0, v0)), Some((t1, v1))) = (w.samples.front(), w.samples.back()) {
        if t1 > t0 {
            let per_min = (v1 - v0) / ((t1 - t0) as f64 / 60_000.0);
            next = hysteresis(on, op, per_min, raise, clear);
        }
    }
    st.on = next;
    next
}

/// A value against a share of its learned mean (`Form::Baseline`), while its gate flag
/// holds; learns only from samples that do not trigger.
pub(super) fn baseline(
    st: &mut NodeRt,
    cx: &Cx,
    metric: usize,
    op: Op,
    share: f64,
    min_samples: u32,
) -> bool {
    let Some((v, ts)) = num_at(cx.data, metric) else {
        return false;
    };
    let w = st.win();
    let fresh = ts > w.last;
    let trig = w.n >= min_samples && op.holds(v, share * w.mean);
    // Learn only from healthy samples, so a fault does not become the norm.
    if fresh && !trig {
        w.n = w.n.saturating_add(1);
        let alpha = (1.0 / f64::from(w.n)).max(0.05);
        w.mean += alpha * (v - w.mean);
        w.last = ts;
    }
    trig
}

pub(super) fn eval(tree: &Tree, i: usize, cx: &Cx, st: &mut [NodeRt]) -> bool {
    let node = &tree.nodes[i];
    if let Some(g) = node.only_while {
        if flag(cx.data, g) != Some(true) {
            // Frozen: keep the last verdict and pause the duration timer.
            st[i].held_last = None;
            return st[i].out;
        }
    }
    let raw = match &node.form {
        Form::Threshold {
            metric,
            op,
            raise,
            clear,
        } => {
            if let Some((v, _)) = num_at(cx.data, *metric) {
                st[i].on = hysteresis(st[i].on, *op, v, *raise, *clear);
            }
            st[i].on
        }
        Form::Flag { metric, is } => flag(cx.data, *metric) == Some(*is),
        Form::Enum {
            metric,
            values,
            negate,
        } => enum_idx(cx.data, *metric).is_some_and(|x| values.contains(&x) != *negate),
        Form::Event { names } => cx.event.is_some_and(|e| names.iter().any(|n| n == e)),
        Form::CountEvents {
            names,
            n,
            within_ms,
        } => {
            let w = st[i].win();
            if cx.event.is_some_and(|e| names.iter().any(|n| n == e)) {
                w.times.push_back(cx.now);
            }
            prune(&mut w.times, cx.now - within_ms);
            w.times.len() >= *n
        }
        Form::CountRises {
            child,
            n,
            within_ms,
        } => {
            let c = eval(tree, *child, cx, st);
            let w = st[i].win();
            if c && !w.prev {
                w.times.push_back(cx.now);
            }
            w.prev = c;
            prune(&mut w.times, cx.now - within_ms);
            w.times.len() >= *n
        }
        Form::Silent { periods, ms } => {
            let limit = ms.unwrap_or(i64::from(periods.unwrap_or(2)) * cx.interval_ms);
            cx.data.last_seen_ms.is_some_and(|t| cx.now - t > limit)
        }
        Form::Offline => cx.data.offline,
        Form::Rate {
            metric,
            op,
            raise,
            clear,
            window_ms,
        } => rate(&mut st[i], cx, *metric, *op, (*raise, *clear), *window_ms),
        Form::Baseline {
            metric,
            op,
            share,
            while_flag,
            min_samples,
        } => {
            flag(cx.data, *while_flag) == Some(true)
                && baseline(&mut st[i], cx, *metric, *op, *share, *min_samples)
        }
        Form::All(kids) => {
            // Every child is evaluated: stateful children must see every sample.
            let mut r = true;
            for k in kids {
                r &= eval(tree, *k, cx, st);
            }
            r
        }
        Form::Any(kids) => {
            let mut r = false;
            for k in kids {
                r |= eval(tree, *k, cx, st);
            }
            r
        }
        Form::Compound { kind, tree: sub } => cx.members.iter().any(|(m, m_kind)| {
            m_kind == kind
                && &**m != cx.self_id
                && cx
                    .devices
                    .get(m)
                    .is_some_and(|d| d.data.kind == *kind && eval_now(sub, 0, &d.data))
        }),
    };
    let out = match node.for_ms {
        None => raw,
        Some(d) => {
            let s = &mut st[i];
            if raw {
                if let Some(t) = s.held_last {
                    s.held_ms += (cx.now - t).max(0);
                }
                s.held_last = Some(cx.now);
                s.held_ms >= d
            } else {
                s.held_ms = 0;
                s.held_last = None;
                false
            }
        }
    };
    st[i].out = out;
    out
}

/// Stateless evaluation against another device's current values (`compound.where`).
pub(super) fn eval_now(tree: &Tree, i: usize, d: &DeviceData) -> bool {
    match &tree.nodes[i].form {
        Form::Threshold {
            metric, op, raise, ..
        } => num_at(d, *metric).is_some_and(|(v, _)| op.holds(v, *raise)),
        Form::Flag { metric, is } => flag(d, *metric) == Some(*is),
        Form::Enum {
            metric,
            values,
            negate,
        } => enum_idx(d, *metric).is_some_and(|x| values.contains(&x) != *negate),
        Form::Offline => d.offline,
        Form::All(k) => k.iter().all(|c| eval_now(tree, *c, d)),
        Form::Any(k) => k.iter().any(|c| eval_now(tree, *c, d)),
        // Stateful forms are refused inside `where` when the pack is loaded.
        _ => false,
    }
}
