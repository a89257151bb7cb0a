//! Passenger lift of a residential block: answers calls with a trapezoidal speed profile,
//! opens and closes its doors at each stop, carries a passenger from the call floor to the
//! destination. Event driven: the model jumps from one phase change to the next.

use super::thresholds::LIFT_LANDING_ZONE_M;
use super::{data, round, traffic, Cx};
use crate::Fault;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;

const FLOOR_HEIGHT_M: f64 = 3.0;
const ACCEL_M_S2: f64 = 0.9;
/// Speed of a rescue run to the nearest landing after an entrapment.
const RESCUE_SPEED_M_S: f64 = 0.3;
const DOOR_OPENING_MS: i64 = 2_500;
const DOOR_CLOSING_MS: i64 = 3_000;
/// A trapped passenger presses the alarm button again this often.
const ALARM_REPEAT_MS: i64 = 3 * 60_000;
/// Door faults in a row before the controller takes the lift out of service.
const DOOR_FAULT_LIMIT: u32 = 5;

#[derive(Debug, Clone, Copy)]
struct Travel {
    from_m: f64,
    to_idx: usize,
    start: i64,
    dist_m: f64,
    up: bool,
    speed: f64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Idle,
    Moving(Travel),
    Opening,
    Open,
    Closing,
    /// Doors open until something changes (alarm press at a landing, out of service).
    HeldOpen,
    /// Stopped between floors.
    Stuck,
}

#[derive(Debug, Clone, Copy)]
struct Stop {
    idx: usize,
    board: bool,
}

pub(crate) struct Lift {
    floors: Vec<i64>,
    lobby: usize,
    rated_m_s: f64,
    calls_per_h: f64,

    pos_m: f64,
    idx: usize,
    phase: Phase,
    until: i64,
    stop: Option<Stop>,
    stops: VecDeque<Stop>,
    next_call: i64,
    occupied: bool,
    load_pct: f64,
    levelling_mm: f64,
    door_cycles: i64,
    run_hours: f64,
    trapped: bool,
    alarm_button: bool,
    door_failures: u32,
    out_of_service: bool,
    fault_code: Option<&'static str>,
    next_alarm: i64,
}

impl Lift {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        let basements: i64 = rng.random_range(0..=2);
        let top: i64 = rng.random_range(6..=33);
        // Floors are numbered 1.. above ground and -1.. below: there is no floor 0.
        let floors: Vec<i64> = (-basements..=top).filter(|f| *f != 0).collect();
        let lobby = basements as usize;
        let rated_m_s = match top {
            ..=11 => 1.0,
            12..=20 => 1.6,
            _ => 2.5,
        };
        Lift {
            lobby,
            rated_m_s,
            calls_per_h: rng.random_range(20.0..40.0),
            pos_m: lobby as f64 * FLOOR_HEIGHT_M,
            idx: lobby,
            phase: Phase::Idle,
            until: i64::MAX,
            stop: None,
            stops: VecDeque::new(),
            next_call: 0,
            occupied: false,
            load_pct: 0.0,
            levelling_mm: 0.0,
            door_cycles: rng.random_range(50_000..900_000),
            run_hours: rng.random_range(1_000.0..40_000.0),
            trapped: false,
            alarm_button: false,
            door_failures: 0,
            out_of_service: false,
            fault_code: None,
            next_alarm: i64::MAX,
            floors,
        }
    }

    pub fn init(&mut self, cx: &mut Cx, t: i64) {
        self.idx = if cx.chance(0.5) {
            self.lobby
        } else {
            cx.rng.random_range(0..self.floors.len())
        };
        self.pos_m = self.idx as f64 * FLOOR_HEIGHT_M;
        self.levelling_mm = cx.range(-4.0, 4.0);
        self.next_call = t + self.call_wait(cx, t);
    }

    fn call_wait(&self, cx: &mut Cx, t: i64) -> i64 {
        cx.exp_wait_ms(2.0 + self.calls_per_h * traffic(t))
    }

    fn floor_pos(idx: usize) -> f64 {
        idx as f64 * FLOOR_HEIGHT_M
    }

    fn nearest_idx(&self, pos: f64) -> usize {
        let i = (pos / FLOOR_HEIGHT_M).round().max(0.0) as usize;
        i.min(self.floors.len() - 1)
    }

    /// Position and speed at `t`.
    fn kinematics(&self, t: i64) -> (f64, f64) {
        match self.phase {
            Phase::Moving(tr) => {
                let (s, v) = profile(tr.dist_m, tr.speed, (t - tr.start) as f64 / 1000.0);
                let pos = if tr.up { tr.from_m + s } else { tr.from_m - s };
                (pos, v)
            }
            _ => (self.pos_m, 0.0),
        }
    }

    fn begin_travel(&mut self, t: i64, to_idx: usize, speed: f64) {
        let to_m = Self::floor_pos(to_idx);
        let dist_m = (to_m - self.pos_m).abs();
        let dur_s = profile_duration(dist_m, speed);
        self.phase = Phase::Moving(Travel {
            from_m: self.pos_m,
            to_idx,
            start: t,
            dist_m,
            up: to_m > self.pos_m,
            speed,
        });
        self.until = t + (dur_s * 1000.0).ceil() as i64;
    }

    fn open_doors(&mut self, t: i64) {
        self.phase = Phase::Opening;
        self.until = t + DOOR_OPENING_MS;
        self.door_cycles += 1;
    }

    fn close_doors(&mut self, t: i64) {
        self.phase = Phase::Closing;
        self.until = t + DOOR_CLOSING_MS;
    }

    fn next_stop(&mut self, t: i64) {
        match self.stops.pop_front() {
            Some(s) => {
                self.stop = Some(s);
                if s.idx == self.idx {
                    self.open_doors(t);
                } else {
                    self.begin_travel(t, s.idx, self.rated_m_s);
                }
            }
            None => {
                self.stop = None;
                self.phase = Phase::Idle;
                self.until = i64::MAX;
                self.next_call = self.next_call.max(t + 1_000);
            }
        }
    }

    fn answer_call(&mut self, cx: &mut Cx, t: i64) {
        let n = self.floors.len();
        let other = |cx: &mut Cx, not: usize| loop {
            let i = cx.rng.random_range(0..n);
            if i != not {
                break i;
            }
        };
        // Most trips in a residential block start or end at the ground floor.
        let origin = if cx.chance(0.55) {
            self.lobby
        } else {
            other(cx, self.lobby)
        };
        let dest = if origin == self.lobby || cx.chance(0.3) {
            other(cx, origin)
        } else {
            self.lobby
        };
        self.stops.push_back(Stop {
            idx: origin,
            board: true,
        });
        self.stops.push_back(Stop {
            idx: dest,
            board: false,
        });
        self.next_call = t + self.call_wait(cx, t);
        self.next_stop(t);
    }

    /// Car stops on its way or at a landing; the fault scenarios start from here.
    fn halt(&mut self, t: i64) -> f64 {
        let (pos, _) = self.kinematics(t);
        self.pos_m = pos;
        self.stops.clear();
        self.stop = None;
        self.until = i64::MAX;
        pos
    }

    fn snap_to_landing(&mut self, cx: &mut Cx, t: i64) {
        let pos = self.halt(t);
        self.idx = self.nearest_idx(pos);
        self.pos_m = Self::floor_pos(self.idx);
        self.levelling_mm = cx.range(-4.0, 4.0);
    }

    fn floor_data(&self) -> Map<String, Value> {
        data([("floor", json!(self.floors[self.idx]))])
    }

    pub fn on_fault(&mut self, cx: &mut Cx, t: i64, old: Option<Fault>, new: Option<Fault>) {
        match old {
            Some(Fault::LiftTrapped) if new != old => {
                self.trapped = false;
                self.alarm_button = false;
                self.fault_code = None;
                self.next_alarm = i64::MAX;
                cx.emit(t, "released", self.floor_data());
                // Rescue: the car creeps to the nearest landing and lets the passenger out.
                let to = self.nearest_idx(self.pos_m);
                self.stop = Some(Stop {
                    idx: to,
                    board: false,
                });
                self.begin_travel(t, to, RESCUE_SPEED_M_S);
            }
            Some(Fault::LiftAlarmButton) if new != old => {
                self.alarm_button = false;
                self.occupied = false;
                self.load_pct = 0.0;
                self.close_doors(t);
            }
            Some(Fault::LiftDoorFault) if new != old => {
                self.out_of_service = false;
                self.door_failures = 0;
                self.fault_code = None;
                self.close_doors(t);
            }
            _ => {}
        }
        match new {
            Some(Fault::LiftTrapped) => {
                let (pos, _) = self.kinematics(t);
                let near = self.nearest_idx(pos);
                let off = pos - Self::floor_pos(near);
                self.halt(t);
                if off.abs() <= LIFT_LANDING_ZONE_M {
                    // Safety circuit opened near a landing: the car stops well past it.
                    let up = near + 1 < self.floors.len();
                    let d = cx.range(0.5, 0.95);
                    self.pos_m = Self::floor_pos(near) + if up { d } else { -d };
                }
                self.idx = self.nearest_idx(self.pos_m);
                self.phase = Phase::Stuck;
                self.occupied = true;
                self.load_pct = self.load_pct.max(cx.range(15.0, 60.0));
                self.trapped = true;
                self.alarm_button = true;
                self.fault_code = Some("safety_circuit_open");
                self.next_alarm = t + ALARM_REPEAT_MS;
                cx.emit(t, "trapped", self.floor_data());
                cx.emit(t, "alarm_button", self.floor_data());
            }
            Some(Fault::LiftAlarmButton) => {
                self.snap_to_landing(cx, t);
                self.phase = Phase::HeldOpen;
                self.occupied = true;
                self.load_pct = cx.range(10.0, 40.0);
                self.alarm_button = true;
                cx.emit(t, "alarm_button", self.floor_data());
            }
            Some(Fault::LiftDoorFault) => {
                self.snap_to_landing(cx, t);
                self.occupied = false;
                self.load_pct = 0.0;
                self.door_failures = 0;
                self.close_doors(t);
            }
            _ => {}
        }
    }

    pub fn advance(&mut self, cx: &mut Cx, from: i64, to: i64) {
        let mut t = from;
        loop {
            let next = match self.phase {
                Phase::Idle => self.next_call.max(t),
                Phase::Stuck => self.next_alarm,
                Phase::HeldOpen => i64::MAX,
                _ => self.until,
            };
            let end = next.min(to);
            if matches!(self.phase, Phase::Moving(_)) {
                self.run_hours += (end - t) as f64 / 3_600_000.0;
            }
            t = end;
            if next > to {
                break;
            }
            self.transition(cx, t);
        }
    }

    fn transition(&mut self, cx: &mut Cx, t: i64) {
        match self.phase {
            Phase::Idle => self.answer_call(cx, t),
            Phase::Moving(tr) => {
                self.idx = tr.to_idx;
                self.pos_m = Self::floor_pos(tr.to_idx);
                self.levelling_mm = cx.range(-4.0, 4.0);
                self.open_doors(t);
            }
            Phase::Opening => {
                match self.stop {
                    Some(Stop { board: true, .. }) => {
                        self.occupied = true;
                        self.load_pct = cx.range(8.0, 75.0);
                    }
                    Some(Stop { board: false, .. }) => {
                        self.occupied = false;
                        self.load_pct = 0.0;
                    }
                    None => {}
                }
                self.phase = Phase::Open;
                let dwell = if self.occupied {
                    (4.0, 9.0)
                } else {
                    (3.0, 6.0)
                };
                self.until = t + (cx.range(dwell.0, dwell.1) * 1000.0) as i64;
            }
            Phase::Open => self.close_doors(t),
            Phase::Closing if cx.fault == Some(Fault::LiftDoorFault) => {
                self.door_failures += 1;
                self.fault_code = Some("door_lock_fault");
                let mut d = self.floor_data();
                d.insert("attempt".into(), json!(self.door_failures));
                cx.emit(t, "door_fault", d);
                if self.door_failures >= DOOR_FAULT_LIMIT {
                    self.out_of_service = true;
                    self.phase = Phase::HeldOpen;
                    self.until = i64::MAX;
                } else {
                    self.open_doors(t);
                }
            }
            Phase::Closing => self.next_stop(t),
            Phase::HeldOpen => {}
            Phase::Stuck => {
                cx.emit(t, "alarm_button", self.floor_data());
                self.next_alarm = t + ALARM_REPEAT_MS;
            }
        }
    }

    pub fn metrics(&mut self, cx: &mut Cx, t: i64) -> Map<String, Value> {
        let (pos, speed) = self.kinematics(t);
        let near = self.nearest_idx(pos);
        let offset_m = pos - Self::floor_pos(near);
        // Creeping below a centimetre per second is the last millimetre of levelling.
        let moving = matches!(self.phase, Phase::Moving(_)) && speed >= 0.01;
        let direction = match self.phase {
            Phase::Moving(tr) if moving => {
                if tr.up {
                    "up"
                } else {
                    "down"
                }
            }
            _ => "idle",
        };
        let door = match self.phase {
            Phase::Opening => "opening",
            Phase::Open | Phase::HeldOpen => "open",
            Phase::Closing => "closing",
            Phase::Idle | Phase::Moving(_) | Phase::Stuck => "closed",
        };
        let levelling_mm = match self.phase {
            Phase::Moving(_) | Phase::Stuck => offset_m * 1000.0,
            _ => self.levelling_mm,
        };
        let load = if self.occupied {
            self.load_pct + 0.5 * cx.gauss()
        } else {
            0.0
        };
        let mode = if self.out_of_service {
            "out_of_service"
        } else {
            "normal"
        };

        let mut m = Map::new();
        m.insert("floor".into(), json!(self.floors[near]));
        m.insert("direction".into(), json!(direction));
        m.insert("door".into(), json!(door));
        m.insert("moving".into(), json!(moving));
        m.insert("occupied".into(), json!(self.occupied));
        m.insert("trapped".into(), json!(self.trapped));
        m.insert("alarm_button".into(), json!(self.alarm_button));
        m.insert(
            "in_landing_zone".into(),
            json!(offset_m.abs() <= LIFT_LANDING_ZONE_M),
        );
        let speed = if moving { speed } else { 0.0 };
        m.insert("speed_m_s".into(), json!(round(speed.clamp(0.0, 20.0), 2)));
        m.insert("load_pct".into(), json!(round(load.clamp(0.0, 200.0), 1)));
        m.insert(
            "levelling_error_mm".into(),
            json!(round(levelling_mm.clamp(-1_000.0, 1_000.0), 1)),
        );
        m.insert("mode".into(), json!(mode));
        if let Some(code) = self.fault_code {
            m.insert("fault_code".into(), json!(code));
        }
        m.insert("door_cycles".into(), json!(self.door_cycles));
        m.insert("run_hours".into(), json!(round(self.run_hours, 3)));
        m
    }
}

/// Travel time of a trapezoidal (or triangular, for short hops) speed profile, s.
fn profile_duration(dist_m: f64, v_max: f64) -> f64 {
    let a = ACCEL_M_S2;
    if dist_m <= 0.0 {
        0.0
    } else if dist_m >= v_max * v_max / a {
        dist_m / v_max + v_max / a
    } else {
        2.0 * (dist_m / a).sqrt()
    }
}

/// Distance covered and speed `tau_s` seconds into a travel of `dist_m`.
fn profile(dist_m: f64, v_max: f64, tau_s: f64) -> (f64, f64) {
    let a = ACCEL_M_S2;
    let total = profile_duration(dist_m, v_max);
    if tau_s <= 0.0 || dist_m <= 0.0 {
        return (0.0, 0.0);
    }
    if tau_s >= total {
        return (dist_m, 0.0);
    }
    let v_peak = v_max.min((a * dist_m).sqrt());
    let t_acc = v_peak / a;
    if tau_s < t_acc {
        (0.5 * a * tau_s * tau_s, a * tau_s)
    } else if tau_s <= total - t_acc {
        (0.5 * a * t_acc * t_acc + v_peak * (tau_s - t_acc), v_peak)
    } else {
        let r = total - tau_s;
        (dist_m - 0.5 * a * r * r, a * r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_is_continuous_and_bounded() {
        for dist in [0.5, 3.0, 30.0, 90.0] {
            let total = profile_duration(dist, 1.6);
            let mut last = 0.0;
            let mut tau = 0.0;
            while tau <= total + 0.1 {
                let (s, v) = profile(dist, 1.6, tau);
                assert!(s + 1e-9 >= last && s <= dist + 1e-9, "{dist} {tau} {s}");
                assert!((0.0..=1.6 + 1e-9).contains(&v));
                last = s;
                tau += 0.05;
            }
            assert!((profile(dist, 1.6, total).0 - dist).abs() < 1e-9);
        }
    }
}
