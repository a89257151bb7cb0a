//! Telemetry as evidence: the [`DecodedSink`] that picks out of ingest's output the few
//! readings and events some schedule's proof looks at (by kind and name first, so the
//! hot path stays cheap), and the check of one observation against one proof.

use crate::schedule::{Proof, ScheduleSet};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::Arc;
use steward_estate::model::Value;
use steward_estate::{Decoded, DecodedSink, DeviceKind};

/// One reading or event that may prove an item: only the values some proof names.
#[derive(Debug, Clone, PartialEq)]
pub struct Obs {
    pub device_id: Arc<str>,
    pub kind: DeviceKind,
    pub ts_ms: i64,
    pub event: Option<String>,
    pub values: Vec<(&'static str, Value)>,
}

impl Obs {
    fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// What some schedule's proof looks at: kinds, event names, metric names.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filter {
    pub kinds: HashSet<DeviceKind>,
    pub events: HashSet<String>,
    pub metrics: HashSet<String>,
}

impl Filter {
    pub fn of(set: &ScheduleSet) -> Filter {
        let mut f = Filter::default();
        for s in &set.schedules {
            for p in s.items.iter().filter_map(|i| i.proof.as_ref()) {
                f.kinds.extend(s.kinds.iter().copied());
                f.events.extend(p.event.clone());
                f.metrics.extend(p.metric.clone());
                f.metrics.extend(p.when.clone());
            }
        }
        f
    }

    /// The observations of one decoded message this filter keeps.
    pub fn pick(&self, d: &Decoded, out: &mut Vec<Obs>) {
        for r in &d.readings {
            if !self.kinds.contains(&r.kind) {
                continue;
            }
            let values: Vec<_> = r
                .values
                .iter()
                .filter(|(n, _)| self.metrics.contains(*n))
                .cloned()
                .collect();
            if !values.is_empty() {
                out.push(Obs {
                    device_id: r.device_id.clone(),
                    kind: r.kind,
                    ts_ms: r.ts_ms,
                    event: None,
                    values,
                });
            }
        }
        for e in &d.events {
            if self.kinds.contains(&e.kind) && self.events.contains(&e.event) {
                out.push(Obs {
                    device_id: e.device_id.clone(),
                    kind: e.kind,
                    ts_ms: e.ts_ms,
                    event: Some(e.event.clone()),
                    values: Vec::new(),
                });
            }
        }
    }
}

/// The filter the sink applies, swapped when schedules reload; the sink notices through
/// the generation counter without taking a lock per message.
#[derive(Default)]
pub struct SharedFilter {
    filter: parking_lot::RwLock<Arc<Filter>>,
    generation: AtomicU64,
}

impl SharedFilter {
    pub fn set(&self, f: Filter) {
        *self.filter.write() = Arc::new(f);
        self.generation.fetch_add(1, Ordering::Release);
    }
    fn get(&self) -> (u64, Arc<Filter>) {
        let g = self.generation.load(Ordering::Acquire);
        (g, self.filter.read().clone())
    }
}

/// Observations handed to the rounds thread per send.
const BATCH: usize = 256;

/// The ingest side of the rounds stage (runs on ingest's thread): filters, batches and
/// hands over without blocking; a full queue drops the batch and counts it.
pub struct RoundsSink {
    pub(crate) shared: Arc<SharedFilter>,
    pub(crate) tx: SyncSender<Vec<Obs>>,
    pub(crate) dropped: Arc<AtomicUsize>,
    pub(crate) seen: u64,
    pub(crate) filter: Arc<Filter>,
    pub(crate) held: Vec<Obs>,
}

impl RoundsSink {
    pub(crate) fn new(
        shared: Arc<SharedFilter>,
        tx: SyncSender<Vec<Obs>>,
        dropped: Arc<AtomicUsize>,
    ) -> RoundsSink {
        let (seen, filter) = shared.get();
        RoundsSink {
            shared,
            tx,
            dropped,
            seen,
            filter,
            held: Vec::new(),
        }
    }
}

impl DecodedSink for RoundsSink {
    fn accept(&mut self, decoded: &Decoded) {
        if self.filter.kinds.is_empty() {
            return;
        }
        self.filter.pick(decoded, &mut self.held);
        if self.held.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.shared.generation.load(Ordering::Acquire) != self.seen {
            (self.seen, self.filter) = self.shared.get();
        }
        if self.held.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.held);
        let n = batch.len();
        match self.tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(n, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The verdict of one observation on one proof: `Some((passed, evidence))`, or `None`
/// when it says nothing (another event, a pump not running).
pub fn check(p: &Proof, o: &Obs) -> Option<(bool, String)> {
    let at = crate::fmt_ts(o.ts_ms);
    if let Some(e) = &p.event {
        return (o.event.as_deref() == Some(e.as_str()))
            .then(|| (true, format!("`{e}` event from {} at {at}", o.device_id)));
    }
    let m = p.metric.as_deref()?;
    if let Some(w) = &p.when {
        if o.get(w).and_then(Value::as_bool) != Some(true) {
            return None;
        }
    }
    let v = o.get(m)?.as_f64()?;
    let ok = p.min.is_none_or(|lo| v >= lo) && p.max.is_none_or(|hi| v <= hi);
    let cond = p
        .when
        .as_deref()
        .map(|w| format!(" while {w}"))
        .unwrap_or_default();
    let verdict = if ok { "within" } else { "outside" };
    Some((
        ok,
        format!(
            "{m} = {v}{cond} from {} at {at}, {verdict} {}",
            o.device_id,
            p.describe()
        ),
    ))
}
