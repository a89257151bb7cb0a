//! The evaluation engine: per-device state and rule conditions, advanced only by the event
//! time of what ingest decoded and by `tick(now_ms)`. It reads no clock and does no I/O, so
//! the same input always gives the same actions; the service and the backtest both drive it.

mod eval;

use crate::pack::{CommandTarget, Rule, RulePack};
use eval::{eval, Cx};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

/// Device-keyed maps are looked up several times per reading: a fast, fixed-seed hash
/// (ids come from the estate registry, not from attackers) instead of ordered string
/// compares, which the profile showed as the engine's largest cost. Where order matters
/// (ticks, snapshots) the ids are sorted.
type Fast = foldhash::fast::FixedState;
use std::sync::Arc;
use steward_estate::catalog::{self, MetricType};
use steward_estate::{Decoded, Reading, Status, Value};
use steward_estate::{DeviceInfo, DeviceKind, Directory};
use steward_tickets::{alerts_topic, Clear, OnClear, Priority, Raise};

/// An outgoing alert for a station, published on `topic`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub station: String,
    /// `stations/{station}/alerts`.
    pub topic: String,
    pub device_id: String,
    pub compound: String,
    pub rule_id: String,
    pub priority: Priority,
    pub message: String,
    pub ts_ms: i64,
}

/// What evaluation asks the outside world to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Raise(Raise),
    Clear(Clear),
    Notify(Notification),
    /// Downlink to a device on `devices/{id}/commands`.
    Command {
        device_id: String,
        topic: String,
        payload: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Val {
    B(bool),
    N(f64),
    /// Index into the catalogue's allowed values.
    E(u16),
    T(String),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DeviceData {
    kind: DeviceKind,
    compound: Arc<str>,
    last_seen_ms: Option<i64>,
    last_reading_ms: Option<i64>,
    /// Last will received and nothing heard since.
    offline: bool,
    /// Newest event time seen: evaluation time never moves backwards for a device.
    clock_ms: i64,
    /// Latest value and its event time, by catalogue position.
    values: Vec<Option<(Val, i64)>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Window {
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    times: VecDeque<i64>,
    #[serde(default, skip_serializing_if = "VecDeque::is_empty")]
    samples: VecDeque<(i64, f64)>,
    #[serde(default)]
    prev: bool,
    #[serde(default)]
    mean: f64,
    #[serde(default)]
    n: u32,
    #[serde(default)]
    last: i64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct NodeRt {
    #[serde(default)]
    out: bool,
    /// Hysteresis state of thresholds and rates.
    #[serde(default)]
    on: bool,
    #[serde(default)]
    held_ms: i64,
    #[serde(default)]
    held_last: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    win: Option<Box<Window>>,
}

impl NodeRt {
    fn win(&mut self) -> &mut Window {
        self.win.get_or_insert_with(Default::default)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RuleRt {
    id: String,
    fp: u64,
    active: bool,
    nodes: Vec<NodeRt>,
}

impl RuleRt {
    fn fresh(rule: &Rule, kind: DeviceKind) -> RuleRt {
        RuleRt {
            id: rule.id.clone(),
            fp: rule.fingerprint,
            active: false,
            nodes: vec![NodeRt::default(); rule.tree(kind).map_or(0, |t| t.nodes.len())],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Dev {
    data: DeviceData,
    rules: Vec<RuleRt>,
    /// In `Engine::dirty` (saves hashing the id again on every evaluation).
    #[serde(skip)]
    dirty: bool,
}

/// A compound's devices with their kinds, sorted by id. Shared with evaluation by an `Arc`
/// (cloned per watcher pass instead of every id), and the kinds let watchers and compound
/// conditions skip other kinds without looking devices up.
type Members = Arc<Vec<(Arc<str>, DeviceKind)>>;

/// Add or update `id` in a compound's members.
fn join(members: &mut Members, id: &Arc<str>, kind: DeviceKind) {
    let list = Arc::make_mut(members);
    match list.binary_search_by(|(m, _)| m.cmp(id)) {
        Ok(i) => list[i].1 = kind,
        Err(i) => list.insert(i, (id.clone(), kind)),
    }
}

#[derive(Clone, Copy)]
enum Which {
    All,
    Timed,
    Only(usize),
}

/// Rule evaluation over every device the engine has heard from.
pub struct Engine {
    pack: Arc<RulePack>,
    devices: HashMap<Arc<str>, Dev, Fast>,
    compounds: HashMap<Arc<str>, Members, Fast>,
    dirty: HashSet<Arc<str>, Fast>,
    evaluations: u64,
}

impl Engine {
    pub fn new(pack: Arc<RulePack>) -> Engine {
        Engine {
            pack,
            devices: HashMap::default(),
            compounds: HashMap::default(),
            dirty: HashSet::default(),
            evaluations: 0,
        }
    }

    pub fn pack(&self) -> &Arc<RulePack> {
        &self.pack
    }

    /// Rule evaluations so far (for the metrics).
    pub fn evaluations(&self) -> u64 {
        self.evaluations
    }

    pub fn device_count(&self) -> usize {
        self.devices.len()
    }

    /// Whether the condition of `rule_id` currently holds on `device_id`.
    pub fn is_active(&self, device_id: &str, rule_id: &str) -> bool {
        self.devices
            .get(device_id)
            .and_then(|d| d.rules.iter().find(|r| r.id == rule_id))
            .is_some_and(|r| r.active)
    }

    /// The device's latest reported `mode` (lifts and gates), from its saved state, so it
    /// survives restarts like every other value.
    pub fn mode_of(&self, device_id: &str) -> Option<&'static str> {
        let data = &self.devices.get(device_id)?.data;
        let specs = catalog::metrics(data.kind);
        let pos = specs.iter().position(|m| m.name == "mode")?;
        match (data.values.get(pos), specs[pos].ty) {
            (Some(Some((Val::E(i), _))), MetricType::Enum(allowed)) => {
                allowed.get(usize::from(*i)).copied()
            }
            _ => None,
        }
    }

    /// Swap in a new pack. Per-device state of rules whose id still exists is kept; when
    /// a rule's condition changed, only whether it is active is kept (its timers restart),
    /// so a changed rule neither re-raises nor loses track of an open condition.
    pub fn set_pack(&mut self, pack: Arc<RulePack>) {
        for dev in self.devices.values_mut() {
            dev.rules = remap(&pack, dev.data.kind, std::mem::take(&mut dev.rules));
            dev.dirty = true;
        }
        self.dirty.extend(self.devices.keys().cloned());
        self.pack = pack;
    }

    pub fn on_decoded(&mut self, d: &Decoded, dir: &Directory) -> Vec<Action> {
        let mut out = Vec::new();
        // Event time order inside one message (a gateway batch, events before telemetry).
        let mut items: Vec<(i64, u8, usize)> =
            Vec::with_capacity(d.readings.len() + d.events.len() + d.statuses.len());
        items.extend(d.readings.iter().enumerate().map(|(i, r)| (r.ts_ms, 0, i)));
        items.extend(d.events.iter().enumerate().map(|(i, e)| (e.ts_ms, 1, i)));
        items.extend(d.statuses.iter().enumerate().map(|(i, s)| (s.ts_ms, 2, i)));
        if items.len() > 1 {
            items.sort_by_key(|(ts, _, _)| *ts);
        }
        for (_, what, i) in items {
            match what {
                0 => {
                    let r = &d.readings[i];
                    let now = self.apply_reading(r);
                    self.eval_device(&r.device_id, now, None, Which::All, dir, &mut out);
                    self.eval_watchers(&r.device_id, r.kind, &r.compound, now, dir, &mut out);
                }
                1 => {
                    let e = &d.events[i];
                    let now = {
                        let dev = self.touch(&e.device_id, e.kind, &e.compound);
                        seen(&mut dev.data, e.ts_ms);
                        dev.data.offline = false;
                        dev.data.clock_ms = dev.data.clock_ms.max(e.ts_ms);
                        dev.data.clock_ms
                    };
                    self.eval_device(&e.device_id, now, Some(&e.event), Which::All, dir, &mut out);
                }
                _ => {
                    let s = &d.statuses[i];
                    let now = {
                        let dev = self.touch(&s.device_id, s.kind, &s.compound);
                        // A retained status can be older than data already seen; only a
                        // status newer than the last data says anything about now.
                        let newer = dev.data.last_seen_ms.is_none_or(|t| s.ts_ms >= t);
                        if newer {
                            dev.data.offline = s.status == Status::Offline;
                            if s.status == Status::Online {
                                seen(&mut dev.data, s.ts_ms);
                            }
                        }
                        dev.data.clock_ms = dev.data.clock_ms.max(s.ts_ms);
                        dev.data.clock_ms
                    };
                    self.eval_device(&s.device_id, now, None, Which::All, dir, &mut out);
                    self.eval_watchers(&s.device_id, s.kind, &s.compound, now, dir, &mut out);
                }
            }
        }
        out
    }

    /// Advance timers (durations, windows, silence) to `now_ms`.
    pub fn tick(&mut self, now_ms: i64, dir: &Directory) -> Vec<Action> {
        let mut out = Vec::new();
        let pack = self.pack.clone();
        let mut timed: Vec<(Arc<str>, i64)> = self
            .devices
            .iter()
            .filter(|(_, d)| {
                pack.for_kind(d.data.kind)
                    .iter()
                    .any(|ri| pack.at(*ri).timed)
            })
            .map(|(id, d)| (id.clone(), now_ms.max(d.data.clock_ms)))
            .collect();
        // Deterministic order of the actions a tick produces.
        timed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (id, now) in timed {
            self.eval_device(&id, now, None, Which::Timed, dir, &mut out);
        }
        out
    }

    fn touch(&mut self, id: &Arc<str>, kind: DeviceKind, compound: &Arc<str>) -> &mut Dev {
        // Known device, same kind and compound (nearly every message): one lookup.
        let known = self.devices.get(&**id).is_some_and(|d| {
            d.data.kind == kind
                && (Arc::ptr_eq(&d.data.compound, compound) || d.data.compound == *compound)
        });
        if !known {
            self.admit(id, kind, compound);
        }
        let Engine { devices, dirty, .. } = self;
        let dev = devices.get_mut(&**id).expect("device entry exists");
        if !dev.dirty {
            dev.dirty = true;
            dirty.insert(id.clone());
        }
        dev
    }

    /// A device first heard from, or one that changed kind or compound.
    fn admit(&mut self, id: &Arc<str>, kind: DeviceKind, compound: &Arc<str>) {
        let pack = &self.pack;
        let fresh = || Dev {
            data: DeviceData {
                kind,
                compound: compound.clone(),
                last_seen_ms: None,
                last_reading_ms: None,
                offline: false,
                clock_ms: i64::MIN,
                values: vec![None; catalog::metrics(kind).len()],
            },
            rules: remap(pack, kind, Vec::new()),
            dirty: false,
        };
        let dev = self.devices.entry(id.clone()).or_insert_with(fresh);
        if dev.data.kind != kind {
            // Re-registered as another kind: nothing of the old state applies.
            let was_dirty = dev.dirty;
            *dev = fresh();
            dev.dirty = was_dirty;
        }
        if dev.data.compound != *compound {
            if let Some(m) = self.compounds.get_mut(&dev.data.compound) {
                Arc::make_mut(m).retain(|(x, _)| x != id);
            }
            dev.data.compound = compound.clone();
        }
        join(
            self.compounds.entry(compound.clone()).or_default(),
            id,
            kind,
        );
    }

    fn apply_reading(&mut self, r: &Reading) -> i64 {
        let dev = self.touch(&r.device_id, r.kind, &r.compound);
        let d = &mut dev.data;
        seen(d, r.ts_ms);
        d.last_reading_ms = Some(d.last_reading_ms.map_or(r.ts_ms, |t| t.max(r.ts_ms)));
        d.offline = false;
        d.clock_ms = d.clock_ms.max(r.ts_ms);
        let specs = catalog::metrics(r.kind);
        for (name, v) in &r.values {
            let Some(pos) = specs.iter().position(|m| m.name == *name) else {
                continue;
            };
            let val = match (v, specs[pos].ty) {
                (Value::Bool(b), _) => Val::B(*b),
                (Value::Float(f), _) => Val::N(*f),
                (Value::Int(i), _) => Val::N(*i as f64),
                (Value::Sym(s), MetricType::Enum(allowed)) => {
                    match allowed.iter().position(|a| a == s) {
                        Some(p) => Val::E(p as u16),
                        None => continue,
                    }
                }
                (Value::Sym(s), _) => Val::T((*s).to_string()),
                (Value::Text(t), _) => Val::T(t.clone()),
            };
            if d.values[pos].as_ref().is_none_or(|(_, t)| *t <= r.ts_ms) {
                d.values[pos] = Some((val, r.ts_ms));
            }
        }
        d.clock_ms
    }

    fn eval_watchers(
        &mut self,
        id: &Arc<str>,
        kind: DeviceKind,
        compound: &Arc<str>,
        now: i64,
        dir: &Directory,
        out: &mut Vec<Action>,
    ) {
        let pack = self.pack.clone();
        let watchers = pack.watchers(kind);
        if watchers.is_empty() {
            return;
        }
        let Some(members) = self.compounds.get(compound).cloned() else {
            return;
        };
        for ri in watchers {
            let rule = pack.at(*ri);
            for (m, m_kind) in members.iter() {
                if !rule.kinds.contains(m_kind) || Arc::ptr_eq(m, id) || m == id {
                    continue;
                }
                let Some(dev) = self.devices.get(m) else {
                    continue;
                };
                if !rule.kinds.contains(&dev.data.kind) {
                    continue;
                }
                let t = now.max(dev.data.clock_ms);
                self.eval_device(m, t, None, Which::Only(*ri), dir, out);
            }
        }
    }

    fn eval_device(
        &mut self,
        id: &str,
        now: i64,
        event: Option<&str>,
        which: Which,
        dir: &Directory,
        out: &mut Vec<Action>,
    ) {
        let Some(info) = dir.device(id) else {
            return;
        };
        if info.retired {
            return;
        }
        let pack = self.pack.clone();
        let Some(dev) = self.devices.get_mut(id) else {
            return;
        };
        let kind = dev.data.kind;
        let mut rts = std::mem::take(&mut dev.rules);
        let positions = pack.for_kind(kind);
        if rts.len() != positions.len() {
            rts = remap(&pack, kind, rts);
        }
        let Some((key, dev)) = self.devices.get_key_value(id) else {
            return;
        };
        let key = key.clone();
        let no_members = Vec::new();
        let members: &[(Arc<str>, DeviceKind)] = self
            .compounds
            .get(&dev.data.compound)
            .map_or(&no_members, |v| v.as_slice());
        let cx = Cx {
            now,
            event,
            data: &dev.data,
            self_id: id,
            interval_ms: i64::from(info.report_interval_s.max(1)) * 1000,
            devices: &self.devices,
            members,
        };
        let mut evaluations = 0;
        for (slot, ri) in positions.iter().enumerate() {
            let rule = pack.at(*ri);
            match which {
                Which::Timed if !rule.timed => continue,
                Which::Only(x) if x != *ri => continue,
                _ => {}
            }
            let Some(tree) = rule.tree(kind) else {
                continue;
            };
            let rt = &mut rts[slot];
            evaluations += 1;
            let val = eval(tree, 0, &cx, &mut rt.nodes);
            if rule.momentary {
                if val {
                    fire(rule, info, &cx, dir, out);
                }
            } else if val != rt.active {
                rt.active = val;
                if val {
                    fire(rule, info, &cx, dir, out);
                } else if rule.on_clear != OnClear::Ignore {
                    out.push(Action::Clear(Clear {
                        device_id: id.to_string(),
                        rule_id: rule.id.clone(),
                        on_clear: rule.on_clear,
                        ts_ms: now,
                    }));
                }
            }
        }
        self.evaluations += evaluations;
        let Engine { devices, dirty, .. } = self;
        if let Some(dev) = devices.get_mut(id) {
            dev.rules = rts;
            if !dev.dirty {
                dev.dirty = true;
                dirty.insert(key);
            }
        }
    }

    /// Called after [`Engine::restore`] at start-up: the time the hub was down is not
    /// device silence, so silence is measured from `now_ms` for devices whose silence
    /// rules are not already active.
    pub fn resume_at(&mut self, now_ms: i64) {
        let pack = self.pack.clone();
        for dev in self.devices.values_mut() {
            let silent_active = pack
                .for_kind(dev.data.kind)
                .iter()
                .zip(&dev.rules)
                .any(|(ri, rt)| rt.active && pack.at(*ri).silence);
            if !silent_active {
                if let Some(t) = dev.data.last_seen_ms.as_mut() {
                    *t = (*t).max(now_ms);
                }
            }
        }
    }

    /// `(device_id, state JSON)` of devices changed since the last call.
    pub fn take_dirty(&mut self) -> Vec<(String, String)> {
        let mut dirty: Vec<Arc<str>> = std::mem::take(&mut self.dirty).into_iter().collect();
        dirty.sort_unstable();
        for id in &dirty {
            if let Some(dev) = self.devices.get_mut(id) {
                dev.dirty = false;
            }
        }
        dirty
            .iter()
            .filter_map(|id| {
                let dev = self.devices.get(id)?;
                let json = serde_json::to_string(dev).ok()?;
                Some((id.to_string(), json))
            })
            .collect()
    }

    /// Every device's state, for a full snapshot.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = self
            .devices
            .iter()
            .filter_map(|(id, dev)| Some((id.to_string(), serde_json::to_string(dev).ok()?)))
            .collect();
        v.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// [`Engine::restore`] then [`Engine::resume_at`] for the restored devices only: a
    /// cluster worker loads a compound's devices when it first sees the compound, and the
    /// devices already loaded keep their silence clocks.
    pub fn restore_at(&mut self, rows: Vec<(String, String)>, now_ms: i64) -> usize {
        let ids: Vec<String> = rows.iter().map(|(id, _)| id.clone()).collect();
        let n = self.restore(rows);
        let pack = self.pack.clone();
        for id in ids {
            let Some(dev) = self.devices.get_mut(id.as_str()) else {
                continue;
            };
            let silent_active = pack
                .for_kind(dev.data.kind)
                .iter()
                .zip(&dev.rules)
                .any(|(ri, rt)| rt.active && pack.at(*ri).silence);
            if !silent_active {
                if let Some(t) = dev.data.last_seen_ms.as_mut() {
                    *t = (*t).max(now_ms);
                }
            }
        }
        n
    }

    /// Load states saved by [`Engine::take_dirty`] / [`Engine::snapshot`]. Unreadable rows
    /// are skipped (returned count tells how many were restored).
    pub fn restore(&mut self, rows: impl IntoIterator<Item = (String, String)>) -> usize {
        let mut n = 0;
        for (id, json) in rows {
            let mut dev: Dev = match serde_json::from_str(&json) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(device = %id, error = %e, "rule state unreadable, starting fresh");
                    continue;
                }
            };
            if dev.data.values.len() != catalog::metrics(dev.data.kind).len() {
                continue;
            }
            dev.rules = remap(&self.pack, dev.data.kind, std::mem::take(&mut dev.rules));
            let id: Arc<str> = Arc::from(id.as_str());
            join(
                self.compounds.entry(dev.data.compound.clone()).or_default(),
                &id,
                dev.data.kind,
            );
            dev.dirty = false;
            self.devices.insert(id, dev);
            n += 1;
        }
        n
    }
}

fn seen(d: &mut DeviceData, ts: i64) {
    d.last_seen_ms = Some(d.last_seen_ms.map_or(ts, |t| t.max(ts)));
}

fn remap(pack: &RulePack, kind: DeviceKind, old: Vec<RuleRt>) -> Vec<RuleRt> {
    let mut old: BTreeMap<String, RuleRt> = old.into_iter().map(|r| (r.id.clone(), r)).collect();
    pack.for_kind(kind)
        .iter()
        .map(|ri| {
            let rule = pack.at(*ri);
            let fresh = RuleRt::fresh(rule, kind);
            match old.remove(&rule.id) {
                Some(o) if o.fp == rule.fingerprint && o.nodes.len() == fresh.nodes.len() => o,
                Some(o) => RuleRt {
                    active: o.active,
                    ..fresh
                },
                None => fresh,
            }
        })
        .collect()
}

fn fire(rule: &Rule, info: &DeviceInfo, cx: &Cx, dir: &Directory, out: &mut Vec<Action>) {
    let kind = cx.data.kind;
    if rule.ticket {
        out.push(Action::Raise(Raise {
            device_id: info.id.to_string(),
            rule_id: rule.id.clone(),
            kind,
            compound: info.compound.to_string(),
            building: info.building.clone(),
            station: info.station.clone(),
            priority: rule.priority,
            title: rule.title.clone(),
            detail: detail(rule, cx),
            ts_ms: cx.now,
        }));
    }
    if rule.notify {
        out.push(Action::Notify(Notification {
            station: info.station.clone(),
            topic: alerts_topic(&info.station),
            device_id: info.id.to_string(),
            compound: info.compound.to_string(),
            rule_id: rule.id.clone(),
            priority: rule.priority,
            message: format!(
                "{} {}: {} {} in {} / {}",
                rule.priority, rule.title, kind, info.id, info.compound, info.building
            ),
            ts_ms: cx.now,
        }));
    }
    for c in &rule.commands {
        let targets: Vec<String> = match &c.target {
            CommandTarget::Device => vec![info.id.to_string()],
            CommandTarget::Compound(k) => {
                // The estate, not what has reported so far, says which devices exist.
                let mut v: Vec<String> = dir
                    .devices
                    .values()
                    .filter(|d| d.compound == info.compound && d.kind == *k && !d.retired)
                    .map(|d| d.id.to_string())
                    .collect();
                v.sort();
                v
            }
        };
        let mut payload = c.payload.clone();
        payload.insert("rule".into(), rule.id.clone().into());
        payload.insert("source_device".into(), info.id.to_string().into());
        payload.insert("ts".into(), cx.now.into());
        let payload = serde_json::Value::Object(payload).to_string();
        for t in targets {
            out.push(Action::Command {
                topic: format!("devices/{t}/commands"),
                device_id: t,
                payload: payload.clone(),
            });
        }
    }
}

fn detail(rule: &Rule, cx: &Cx) -> String {
    let kind = cx.data.kind;
    let specs = catalog::metrics(kind);
    let mut parts = Vec::new();
    if let Some(e) = cx.event {
        parts.push(format!("event={e}"));
    }
    for m in &rule.metrics[crate::pack::kind_index(kind)] {
        let Some(Some((v, _))) = cx.data.values.get(*m) else {
            continue;
        };
        let text = match v {
            Val::B(b) => b.to_string(),
            Val::N(n) => format!("{n}"),
            Val::E(e) => match specs[*m].ty {
                MetricType::Enum(allowed) => allowed.get(*e as usize).unwrap_or(&"?").to_string(),
                _ => "?".into(),
            },
            Val::T(t) => t.clone(),
        };
        parts.push(format!("{}={text}", specs[*m].name));
    }
    parts.join(", ")
}
