//! Motorised compound gate with a card/plate reader: opens on a granted credential, holds,
//! closes by itself, reverses when someone arrives while it closes. Event driven.

use super::thresholds::GATE_MAX_NORMAL_OPEN_S;
use super::{data, round, traffic, Cx};
use crate::Fault;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

/// Share of a closing travel after which an obstruction is detected.
const OBSTRUCTION_AT: f64 = 0.4;
/// UL 325: after this many obstructions in a row the operator stops and waits for a reset.
const OBSTRUCTION_LOCKOUT: u32 = 2;
const CREDENTIALS: [&str; 3] = ["card", "plate", "qr"];
const DENY_REASONS: [&str; 3] = ["unknown_credential", "expired", "outside_schedule"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Closed,
    Opening,
    Open,
    Closing,
}

pub(crate) struct Gate {
    travel_ms: i64,
    hold_ms: i64,
    run_current_a: f64,
    deny_p: f64,
    arrivals_per_h: f64,

    phase: Phase,
    /// End of the current travel, or the auto-close time while open.
    until: i64,
    phase_start: i64,
    open_since: i64,
    next_arrival: i64,
    cycles: i64,
    obstructions: u32,
    /// Open with no auto-close: propped, forced or locked out after obstructions.
    stay_open: bool,
    forced: bool,
}

impl Gate {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        Gate {
            travel_ms: rng.random_range(10_000..16_000),
            hold_ms: rng.random_range(8_000..20_000),
            run_current_a: rng.random_range(2.5..4.5),
            deny_p: rng.random_range(0.03..0.08),
            arrivals_per_h: rng.random_range(30.0..60.0),
            phase: Phase::Closed,
            until: i64::MAX,
            phase_start: 0,
            open_since: 0,
            next_arrival: 0,
            cycles: rng.random_range(10_000..500_000),
            obstructions: 0,
            stay_open: false,
            forced: false,
        }
    }

    pub fn init(&mut self, cx: &mut Cx, t: i64) {
        self.phase_start = t;
        self.next_arrival = t + self.arrival_wait(cx, t);
    }

    fn arrival_wait(&self, cx: &mut Cx, t: i64) -> i64 {
        cx.exp_wait_ms(2.0 + self.arrivals_per_h * traffic(t))
    }

    fn set_phase(&mut self, phase: Phase, t: i64, until: i64) {
        self.phase = phase;
        self.phase_start = t;
        self.until = until;
    }

    fn start_opening(&mut self, t: i64, travel_ms: i64) {
        if self.phase == Phase::Closed {
            self.cycles += 1;
        }
        self.set_phase(Phase::Opening, t, t + travel_ms);
    }

    fn start_closing(&mut self, cx: &mut Cx, t: i64) {
        let travel = if cx.fault == Some(Fault::GateObstruction) {
            (self.travel_ms as f64 * OBSTRUCTION_AT) as i64
        } else {
            self.travel_ms
        };
        self.set_phase(Phase::Closing, t, t + travel);
    }

    fn granted(&mut self, cx: &mut Cx, t: i64) {
        let credential = CREDENTIALS[cx.rng.random_range(0..CREDENTIALS.len())];
        let direction = if cx.chance(0.5) { "in" } else { "out" };
        cx.emit(
            t,
            "access_granted",
            data([
                ("credential", json!(credential)),
                ("direction", json!(direction)),
            ]),
        );
        match self.phase {
            Phase::Closed => self.start_opening(t, self.travel_ms),
            Phase::Opening => {}
            Phase::Open if self.stay_open => {}
            Phase::Open => {
                // Each passer keeps the gate open a while, up to a ceiling so a stream of
                // people never holds it open for minutes.
                let ceiling = self.open_since + (GATE_MAX_NORMAL_OPEN_S * 1000.0) as i64;
                self.until = self.until.max(t + self.hold_ms).min(ceiling);
            }
            Phase::Closing => {
                // Reverse: it reopens from where it is.
                let done = t - self.phase_start;
                self.set_phase(Phase::Opening, t, t + done.max(500));
            }
        }
    }

    fn arrival(&mut self, cx: &mut Cx, t: i64) {
        if cx.chance(self.deny_p) {
            let credential = CREDENTIALS[cx.rng.random_range(0..CREDENTIALS.len())];
            let reason = DENY_REASONS[cx.rng.random_range(0..DENY_REASONS.len())];
            cx.emit(
                t,
                "access_denied",
                data([("credential", json!(credential)), ("reason", json!(reason))]),
            );
        } else {
            self.granted(cx, t);
        }
        self.next_arrival = t + self.arrival_wait(cx, t);
    }

    pub fn on_fault(&mut self, cx: &mut Cx, t: i64, old: Option<Fault>, new: Option<Fault>) {
        if old.is_some() && new != old {
            // The crew clears the cause and resets the operator: it closes normally.
            self.stay_open = false;
            self.forced = false;
            self.obstructions = 0;
            if self.phase == Phase::Open {
                self.until = t + self.hold_ms;
            }
        }
        match new {
            Some(Fault::GateForced) => {
                // The leaf is pushed open past the lock, which still reports engaged.
                if self.phase == Phase::Closed {
                    self.cycles += 1;
                }
                self.set_phase(Phase::Open, t, i64::MAX);
                self.open_since = t;
                self.forced = true;
                self.stay_open = true;
                cx.emit(t, "forced_open", Map::new());
            }
            Some(Fault::GateObstruction) => {
                self.obstructions = 0;
                if matches!(self.phase, Phase::Closed | Phase::Closing) {
                    self.granted(cx, t);
                }
            }
            Some(Fault::GateHeldOpen) => {
                self.stay_open = true;
                match self.phase {
                    Phase::Open => self.until = i64::MAX,
                    Phase::Opening => {}
                    Phase::Closed | Phase::Closing => self.granted(cx, t),
                }
            }
            _ => {}
        }
    }

    pub fn advance(&mut self, cx: &mut Cx, from: i64, to: i64) {
        let mut t = from;
        loop {
            let next = self.next_arrival.min(self.until).max(t);
            if next > to {
                break;
            }
            t = next;
            if t == self.next_arrival {
                self.arrival(cx, t);
            } else {
                self.end_of_phase(cx, t);
            }
        }
    }

    fn end_of_phase(&mut self, cx: &mut Cx, t: i64) {
        match self.phase {
            Phase::Opening => {
                self.open_since = t;
                let until = if self.stay_open {
                    i64::MAX
                } else {
                    t + self.hold_ms
                };
                self.set_phase(Phase::Open, t, until);
            }
            Phase::Open => self.start_closing(cx, t),
            Phase::Closing if cx.fault == Some(Fault::GateObstruction) => {
                self.obstructions += 1;
                cx.emit(
                    t,
                    "obstruction",
                    data([("attempt", json!(self.obstructions))]),
                );
                let done = t - self.phase_start;
                if self.obstructions >= OBSTRUCTION_LOCKOUT {
                    // Lockout: the operator backs off and stays put until reset.
                    self.stay_open = true;
                }
                self.set_phase(Phase::Opening, t, t + done.max(500));
            }
            Phase::Closing => self.set_phase(Phase::Closed, t, i64::MAX),
            Phase::Closed => self.until = i64::MAX,
        }
    }

    pub fn metrics(&mut self, cx: &mut Cx, t: i64) -> Map<String, Value> {
        let state = match self.phase {
            Phase::Closed => "closed",
            Phase::Opening => "opening",
            Phase::Open => "open",
            Phase::Closing => "closing",
        };
        let held_open_s = if self.phase == Phase::Open {
            (t - self.open_since).max(0) as f64 / 1000.0
        } else {
            0.0
        };
        let motor_a = if matches!(self.phase, Phase::Opening | Phase::Closing) {
            self.run_current_a * (1.0 + 0.05 * cx.gauss())
        } else {
            0.0
        };
        let mut m = Map::new();
        m.insert("state".into(), json!(state));
        m.insert(
            "locked".into(),
            json!(self.phase == Phase::Closed || self.forced),
        );
        m.insert("on_battery".into(), json!(false));
        m.insert("mode".into(), json!("normal"));
        m.insert(
            "held_open_s".into(),
            json!(round(held_open_s.clamp(0.0, 604_800.0), 1)),
        );
        m.insert(
            "motor_current_a".into(),
            json!(round(motor_a.clamp(0.0, 100.0), 2)),
        );
        m.insert("cycles".into(), json!(self.cycles));
        m
    }
}
