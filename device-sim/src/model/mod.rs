//! Device models: deterministic state machines advanced by simulated time.
//!
//! A model is driven by [`DeviceModel::metrics_at`]: it steps its physics from the last time
//! it was asked to the new one and returns the metrics a device would report at that
//! instant. Events that happen in between (a gate opening, a pump starting) are queued with
//! their own timestamps and handed out by [`DeviceModel::take_events`] or [`DeviceModel::tick`].

mod gate;
mod lift;
mod pump;
mod smoke;

use crate::{Fault, SimMessage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};
use std::collections::VecDeque;
use steward_estate::DeviceKind;

/// Daily patterns (traffic, temperature) follow local time of the estates, which are in
/// China; timestamps stay UTC.
pub const LOCAL_UTC_OFFSET_H: f64 = 8.0;

/// Levels the models keep to in normal operation and cross under faults; rule packs and
/// tests can line their thresholds up with these.
pub mod thresholds {
    /// Sump level at which the pump starts, m (the highest level seen in normal operation
    /// is a few centimetres above it).
    pub const SUMP_START_M: f64 = 1.2;
    /// Sump level at which the pump stops, m.
    pub const SUMP_STOP_M: f64 = 0.4;
    /// Sump high-high alarm level, m; never reached in normal operation.
    pub const SUMP_HIGH_HIGH_M: f64 = 1.8;
    /// Running power below this share of the baseline means the pump runs dry.
    pub const DRY_RUN_POWER_SHARE: f64 = 0.6;
    /// Smoke obscuration at which a detector goes into alarm, %/m.
    pub const SMOKE_ALARM_OBSCURATION: f64 = 8.0;
    /// Smoke obscuration at which a detector reports pre-alarm, %/m.
    pub const SMOKE_PRE_ALARM_OBSCURATION: f64 = 3.0;
    /// Smoke detector battery below this is low, V.
    pub const SMOKE_LOW_BATTERY_V: f64 = 2.7;
    /// Half height of a lift landing zone, m.
    pub const LIFT_LANDING_ZONE_M: f64 = 0.2;
    /// Longest a gate stays open in normal operation, s.
    pub const GATE_MAX_NORMAL_OPEN_S: f64 = 90.0;
}

/// Longest stretch of history a model replays when asked for a time far ahead; older time
/// is skipped so a model woken after days does not spin through all of it.
const MAX_CATCH_UP_MS: i64 = 6 * 3_600_000;
/// Events queued and never taken are dropped past this many, oldest first.
const MAX_PENDING_EVENTS: usize = 1024;

/// Periodic self-tests that let a simulated fleet prove planned rounds (docs/rounds.md):
/// each device tests at a time fixed by `(seed, id)` within every interval, so a fleet is
/// reproducible. Off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SelfTests {
    /// Smoke detectors send a `test` event this often, ms.
    pub smoke_test_every_ms: Option<i64>,
    /// Pumps do a test run (started, running with pressure for [`PUMP_TEST_RUN_MS`],
    /// water returned to the pit through the test line) this often, ms.
    pub pump_run_every_ms: Option<i64>,
}

/// How long a pump's test run lasts.
pub const PUMP_TEST_RUN_MS: i64 = 5 * 60_000;

/// An event a device publishes on `devices/{id}/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    pub ts: i64,
    pub event: &'static str,
    pub data: Map<String, Value>,
}

/// What a kind model needs while it steps: randomness, the active fault and a place to put
/// events.
pub(crate) struct Cx<'a> {
    pub rng: &'a mut ChaCha8Rng,
    pub fault: Option<Fault>,
    events: &'a mut Vec<SimEvent>,
}

impl Cx<'_> {
    pub fn emit(&mut self, ts: i64, event: &'static str, data: Map<String, Value>) {
        self.events.push(SimEvent { ts, event, data });
    }

    /// Standard normal sample (Box-Muller); rand_distr is not worth a dependency for this.
    pub fn gauss(&mut self) -> f64 {
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.rng.random::<f64>()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p.clamp(0.0, 1.0))
    }

    /// Exponential wait in ms for a Poisson process of `per_hour` events.
    pub fn exp_wait_ms(&mut self, per_hour: f64) -> i64 {
        let u: f64 = self.rng.random::<f64>().max(1e-12);
        let hours = -u.ln() / per_hour.max(1e-6);
        ((hours * 3_600_000.0) as i64).max(1_000)
    }

    /// One exact step of an Ornstein-Uhlenbeck process: mean reversion with time constant
    /// `tau_s` and stationary standard deviation `sd`, so step size does not change the
    /// statistics.
    pub fn ou(&mut self, x: f64, mean: f64, tau_s: f64, sd: f64, dt_s: f64) -> f64 {
        let a = (-dt_s / tau_s.max(1e-9)).exp();
        mean + (x - mean) * a + sd * (1.0 - a * a).max(0.0).sqrt() * self.gauss()
    }
}

/// Local hour of day in [0, 24).
pub(crate) fn local_hour(ts_ms: i64) -> f64 {
    let day_ms = 86_400_000_i64;
    let local = ts_ms + (LOCAL_UTC_OFFSET_H * 3_600_000.0) as i64;
    local.rem_euclid(day_ms) as f64 / 3_600_000.0
}

/// Share of peak activity (people arriving, lifts called) by local hour: quiet nights, a
/// morning and an evening peak, as in residential compounds.
pub(crate) fn traffic(ts_ms: i64) -> f64 {
    match local_hour(ts_ms) {
        h if h < 6.0 => 0.05,
        h if h < 7.0 => 0.4,
        h if h < 9.0 => 1.0,
        h if h < 11.0 => 0.5,
        h if h < 13.0 => 0.7,
        h if h < 17.0 => 0.45,
        h if h < 20.0 => 0.95,
        h if h < 22.0 => 0.6,
        _ => 0.2,
    }
}

/// Round to `decimals` places, as a device would report.
pub(crate) fn round(x: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (x * p).round() / p
}

pub(crate) fn data<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

enum State {
    Smoke(smoke::Smoke),
    Pump(pump::Pump),
    Lift(lift::Lift),
    Gate(gate::Gate),
}

/// A simulated device of one kind.
pub struct DeviceModel {
    id: String,
    kind: DeviceKind,
    rng: ChaCha8Rng,
    seq: u64,
    now_ms: Option<i64>,
    /// Fault asked for by [`DeviceModel::set_fault`]; it takes effect at the model's
    /// current time on the next advance.
    requested: Option<Fault>,
    applied: Option<Fault>,
    state: State,
    events: VecDeque<SimEvent>,
    last_event_ts: i64,
    telemetry_topic: String,
    events_topic: String,
    /// Self-test interval of this model's kind, ms, and where in it this device tests.
    self_test_every: Option<i64>,
    self_test_phase: f64,
}

impl DeviceModel {
    /// A model whose randomness derives from `(id, seed)` only.
    pub fn new(id: &str, kind: DeviceKind, seed: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(splitmix64(seed ^ fnv1a(id.as_bytes())));
        let state = match kind {
            DeviceKind::Smoke => State::Smoke(smoke::Smoke::new(&mut rng)),
            DeviceKind::Pump => State::Pump(pump::Pump::new(&mut rng)),
            DeviceKind::Lift => State::Lift(lift::Lift::new(&mut rng)),
            DeviceKind::Gate => State::Gate(gate::Gate::new(&mut rng)),
        };
        DeviceModel {
            id: id.to_string(),
            kind,
            rng,
            seq: 0,
            now_ms: None,
            requested: None,
            applied: None,
            state,
            events: VecDeque::new(),
            last_event_ts: i64::MIN,
            telemetry_topic: format!("devices/{id}/telemetry"),
            events_topic: format!("devices/{id}/events"),
            self_test_every: None,
            self_test_phase: unit_hash(seed ^ 0x5e1f_7e57, id),
        }
    }

    /// Turn on the self-tests of this model's kind (others ignore theirs).
    pub fn set_self_tests(&mut self, t: SelfTests) {
        self.self_test_every = match self.kind {
            DeviceKind::Smoke => t.smoke_test_every_ms,
            DeviceKind::Pump => t.pump_run_every_ms,
            _ => None,
        }
        .filter(|ms| *ms > 0);
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    pub fn fault(&self) -> Option<Fault> {
        self.requested
    }

    /// Start or clear a fault. A fault of another kind than the model's is ignored (use
    /// [`DeviceModel::try_set_fault`] to be told); `Offline` silences [`DeviceModel::tick`].
    pub fn set_fault(&mut self, fault: Option<Fault>) {
        if let Err(e) = self.try_set_fault(fault) {
            tracing::debug!(device = %self.id, error = %e, "fault ignored");
        }
    }

    /// Like [`DeviceModel::set_fault`] but refuses a fault of another device kind.
    pub fn try_set_fault(&mut self, fault: Option<Fault>) -> Result<(), crate::SimError> {
        if let Some(f) = fault {
            if let Some(needs) = f.kind().filter(|k| *k != self.kind) {
                return Err(crate::SimError::WrongKind {
                    fault: f.name(),
                    needs,
                    device: self.id.clone(),
                    actual: self.kind,
                });
            }
        }
        self.requested = fault;
        Ok(())
    }

    /// Advance the model to `ts_ms` and return the metrics object it reports there. A time
    /// at or before the model's current time reports the current state again.
    pub fn metrics_at(&mut self, ts_ms: i64) -> Map<String, Value> {
        let mut fresh = Vec::new();
        let now = match self.now_ms {
            None => {
                let mut cx = Cx {
                    rng: &mut self.rng,
                    fault: None,
                    events: &mut fresh,
                };
                match &mut self.state {
                    State::Smoke(m) => m.init(&mut cx, ts_ms),
                    State::Pump(m) => m.init(&mut cx, ts_ms),
                    State::Lift(m) => m.init(&mut cx, ts_ms),
                    State::Gate(m) => m.init(&mut cx, ts_ms),
                }
                ts_ms
            }
            Some(prev) => prev.max(ts_ms - MAX_CATCH_UP_MS),
        };
        let to = ts_ms.max(now);
        let mut cx = Cx {
            rng: &mut self.rng,
            fault: self.requested,
            events: &mut fresh,
        };
        if self.requested != self.applied {
            let (old, new) = (self.applied, self.requested);
            match &mut self.state {
                State::Smoke(m) => m.on_fault(&mut cx, now, old, new),
                State::Pump(m) => m.on_fault(&mut cx, now, old, new),
                State::Lift(m) => m.on_fault(&mut cx, now, old, new),
                State::Gate(m) => m.on_fault(&mut cx, now, old, new),
            }
            self.applied = self.requested;
        }
        // Self-tests fall due between the two instants: advance to each, run it, go on.
        let (every, phase) = (self.self_test_every, self.self_test_phase);
        let mut from = now;
        while let Some(t) = next_self_test(every, phase, from).filter(|t| *t <= to) {
            match &mut self.state {
                State::Smoke(m) => {
                    m.advance(&mut cx, from, t);
                    m.self_test(&mut cx, t);
                }
                State::Pump(m) => {
                    m.advance(&mut cx, from, t);
                    m.self_test(&mut cx, t);
                }
                _ => {}
            }
            from = t;
        }
        let now = from;
        let metrics = match &mut self.state {
            State::Smoke(m) => {
                m.advance(&mut cx, now, to);
                m.metrics(&mut cx, to)
            }
            State::Pump(m) => {
                m.advance(&mut cx, now, to);
                m.metrics(&mut cx, to)
            }
            State::Lift(m) => {
                m.advance(&mut cx, now, to);
                m.metrics(&mut cx, to)
            }
            State::Gate(m) => {
                m.advance(&mut cx, now, to);
                m.metrics(&mut cx, to)
            }
        };
        self.now_ms = Some(to);
        fresh.sort_by_key(|e| e.ts);
        for mut ev in fresh {
            // Events are stored keyed by (ts, device): two in one millisecond would collapse.
            ev.ts = ev.ts.max(self.last_event_ts.saturating_add(1));
            self.last_event_ts = ev.ts;
            self.events.push_back(ev);
        }
        while self.events.len() > MAX_PENDING_EVENTS {
            self.events.pop_front();
        }
        metrics
    }

    /// Events that happened up to the last advance, oldest first.
    pub fn take_events(&mut self) -> Vec<SimEvent> {
        self.events.drain(..).collect()
    }

    /// Next telemetry sequence number (1, 2, 3, ...).
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// Advance to `ts_ms` and return what a directly connected device publishes: its events
    /// since the last tick, then one telemetry message. An `Offline` device publishes
    /// nothing.
    pub fn tick(&mut self, ts_ms: i64) -> Vec<SimMessage> {
        self.tick_mapped(ts_ms, |t| t)
    }

    /// [`DeviceModel::tick`] with simulated time `sim_ms` and a mapping from simulated to
    /// published (wall clock) time, for fleets that run faster than real time.
    pub fn tick_mapped(&mut self, sim_ms: i64, to_wall: impl Fn(i64) -> i64) -> Vec<SimMessage> {
        let Some(report) = self.report_mapped(sim_ms, to_wall) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(report.events.len() + 1);
        for ev in &report.events {
            out.push(SimMessage {
                topic: self.events_topic.clone(),
                payload: event_payload(ev),
                retain: false,
            });
        }
        out.push(SimMessage {
            topic: self.telemetry_topic.clone(),
            payload: telemetry_payload(report.ts, report.seq, &report.metrics),
            retain: false,
        });
        out
    }

    /// One report of the device at simulated time `sim_ms`, with timestamps mapped to
    /// published time: what a gateway forwards. `None` while the device is `Offline`.
    pub fn report_mapped(&mut self, sim_ms: i64, to_wall: impl Fn(i64) -> i64) -> Option<Report> {
        let metrics = self.metrics_at(sim_ms);
        let mut events = self.take_events();
        if self.requested == Some(Fault::Offline) {
            return None;
        }
        let mut last = i64::MIN;
        for ev in &mut events {
            // Compressing time can map two events onto one millisecond; keep them distinct.
            ev.ts = to_wall(ev.ts).max(last.saturating_add(1));
            last = ev.ts;
        }
        Some(Report {
            ts: to_wall(sim_ms),
            seq: self.next_seq(),
            metrics,
            events,
        })
    }
}

/// What a device reports at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub ts: i64,
    pub seq: u64,
    pub metrics: Map<String, Value>,
    /// Events since the previous report, oldest first.
    pub events: Vec<SimEvent>,
}

/// The first self-test instant after `after`, with tests every `every` ms at `phase`
/// (a share of the interval) into each.
fn next_self_test(every: Option<i64>, phase: f64, after: i64) -> Option<i64> {
    let every = every?;
    let offset = (phase * every as f64) as i64;
    let k = (after - offset).div_euclid(every) + 1;
    Some(offset + k * every)
}

/// A number in [0, 1) fixed by `(seed, id)`, e.g. to spread devices' first reports.
pub(crate) fn unit_hash(seed: u64, id: &str) -> f64 {
    (splitmix64(seed ^ fnv1a(id.as_bytes())) >> 11) as f64 / (1u64 << 53) as f64
}

/// `{"ts":..,"seq":..,"metrics":{..}}` as sent on `devices/{id}/telemetry`.
pub fn telemetry_payload(ts_ms: i64, seq: u64, metrics: &Map<String, Value>) -> Vec<u8> {
    let doc = serde_json::json!({ "ts": ts_ms, "seq": seq, "metrics": metrics });
    doc.to_string().into_bytes()
}

/// `{"ts":..,"event":..,"data":{..}}` as sent on `devices/{id}/events`.
pub fn event_payload(ev: &SimEvent) -> Vec<u8> {
    let doc = serde_json::json!({ "ts": ev.ts, "event": ev.event, "data": ev.data });
    doc.to_string().into_bytes()
}

/// FNV-1a: a hash that never changes between Rust releases, unlike `DefaultHasher`, so seeds
/// stay reproducible.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests;
