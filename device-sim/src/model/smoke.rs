//! Photoelectric smoke detector with a CO cell and a lithium battery, mounted indoors
//! (stairwell or corridor).

use super::thresholds::{SMOKE_ALARM_OBSCURATION, SMOKE_PRE_ALARM_OBSCURATION};
use super::{data, local_hour, round, Cx};
use crate::Fault;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

const MAX_STEP_S: f64 = 30.0;
/// A lithium cell loses about 0.07 V a year under detector load.
const BATTERY_DROP_V_PER_DAY: f64 = 0.0002;
/// Floor of the battery in normal operation: well above the 2.7 V low-battery level, as
/// a detector would be serviced long before.
const BATTERY_NORMAL_MIN_V: f64 = 2.85;

pub(crate) struct Smoke {
    base_c: f64,
    amplitude_c: f64,
    temp_dev_c: f64,
    fire_rise_c: f64,
    clean_obscuration: f64,
    obscuration: f64,
    alarm_obscuration: f64,
    co_ppm: f64,
    co_target_ppm: f64,
    battery_v: f64,
    low_battery_v: f64,
    alarm: bool,
}

impl Smoke {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        let clean = rng.random_range(0.02..0.08);
        Smoke {
            base_c: rng.random_range(18.0..24.0),
            amplitude_c: rng.random_range(1.0..3.0),
            temp_dev_c: 0.0,
            fire_rise_c: 0.0,
            clean_obscuration: clean,
            obscuration: clean,
            alarm_obscuration: rng.random_range(12.0..18.0),
            co_ppm: 0.5,
            co_target_ppm: rng.random_range(430.0..560.0),
            battery_v: rng.random_range(2.95..3.1),
            low_battery_v: rng.random_range(2.5..2.62),
            alarm: false,
        }
    }

    pub fn init(&mut self, _cx: &mut Cx, _t: i64) {}

    pub fn on_fault(&mut self, cx: &mut Cx, t: i64, old: Option<Fault>, new: Option<Fault>) {
        match new {
            // Smoke fills a chamber in seconds: the detector is in alarm on its next report.
            Some(Fault::SmokeAlarm) => {
                self.obscuration = self.obscuration.max(self.alarm_obscuration);
                self.update_alarm(cx, t);
            }
            Some(Fault::SmokeCo) => self.co_ppm = self.co_ppm.max(self.co_target_ppm),
            Some(Fault::SmokeFault) => {
                cx.emit(t, "fault", data([("code", json!("chamber_fault"))]));
            }
            _ => {}
        }
        // A battery reported low gets replaced when the fault is cleared.
        if old == Some(Fault::SmokeLowBattery) && new != old {
            self.battery_v = cx.range(3.0, 3.1);
        }
    }

    pub fn advance(&mut self, cx: &mut Cx, from: i64, to: i64) {
        let mut t = from;
        while t < to {
            let step_ms = (to - t).min((MAX_STEP_S * 1000.0) as i64);
            let dt = step_ms as f64 / 1000.0;
            t += step_ms;
            let fire = cx.fault == Some(Fault::SmokeAlarm);
            self.obscuration = if fire {
                cx.ou(self.obscuration, self.alarm_obscuration, 30.0, 1.0, dt)
                    .max(SMOKE_ALARM_OBSCURATION + 1.0)
            } else if self.obscuration > 1.0 {
                // Smoke clears through ventilation over a few minutes.
                let a = (-dt / 120.0).exp();
                self.clean_obscuration + (self.obscuration - self.clean_obscuration) * a
            } else {
                cx.ou(self.obscuration, self.clean_obscuration, 3_600.0, 0.015, dt)
                    .clamp(0.0, 0.4)
            };
            self.fire_rise_c = cx.ou(
                self.fire_rise_c,
                if fire { 6.0 } else { 0.0 },
                180.0,
                0.2,
                dt,
            );
            self.co_ppm = if cx.fault == Some(Fault::SmokeCo) {
                cx.ou(self.co_ppm, self.co_target_ppm, 60.0, 15.0, dt)
                    .max(405.0)
            } else if self.co_ppm > 10.0 {
                let a = (-dt / 300.0).exp();
                0.5 + (self.co_ppm - 0.5) * a
            } else {
                cx.ou(self.co_ppm, 0.6, 1_200.0, 0.4, dt).clamp(0.0, 9.0)
            };
            self.temp_dev_c = cx.ou(self.temp_dev_c, 0.0, 1_800.0, 0.3, dt);
            self.battery_v =
                (self.battery_v - BATTERY_DROP_V_PER_DAY * dt / 86_400.0).max(BATTERY_NORMAL_MIN_V);
            self.update_alarm(cx, t);
        }
    }

    /// The periodic function test: the detector reports it passed.
    pub fn self_test(&mut self, cx: &mut Cx, t: i64) {
        cx.emit(t, "test", data([("result", json!("pass"))]));
    }

    fn update_alarm(&mut self, cx: &mut Cx, t: i64) {
        let alarm = self.obscuration >= SMOKE_ALARM_OBSCURATION;
        if alarm != self.alarm {
            let obscuration = json!(round(self.obscuration, 2));
            if alarm {
                cx.emit(t, "alarm", data([("obscuration_pct_per_m", obscuration)]));
            } else {
                cx.emit(
                    t,
                    "alarm_cleared",
                    data([("obscuration_pct_per_m", obscuration)]),
                );
            }
            self.alarm = alarm;
        }
    }

    pub fn metrics(&mut self, cx: &mut Cx, t: i64) -> Map<String, Value> {
        // Indoor air peaks mid-afternoon, lowest before dawn.
        let daily = (std::f64::consts::TAU * (local_hour(t) - 15.0) / 24.0).cos();
        let temperature =
            self.base_c + self.amplitude_c * daily + self.temp_dev_c + self.fire_rise_c;
        let battery = if cx.fault == Some(Fault::SmokeLowBattery) {
            self.low_battery_v + 0.01 * cx.gauss()
        } else {
            self.battery_v + 0.002 * cx.gauss()
        };
        let mut m = Map::new();
        m.insert("alarm".into(), json!(self.alarm));
        m.insert(
            "pre_alarm".into(),
            json!(self.obscuration >= SMOKE_PRE_ALARM_OBSCURATION),
        );
        m.insert("fault".into(), json!(cx.fault == Some(Fault::SmokeFault)));
        m.insert("tamper".into(), json!(false));
        m.insert("dirty".into(), json!(false));
        m.insert(
            "obscuration_pct_per_m".into(),
            json!(round(self.obscuration.clamp(0.0, 100.0), 3)),
        );
        m.insert(
            "co_ppm".into(),
            json!(round(self.co_ppm.clamp(0.0, 10_000.0), 1)),
        );
        m.insert(
            "temperature_c".into(),
            json!(round(temperature.clamp(-40.0, 150.0), 1)),
        );
        m.insert(
            "battery_v".into(),
            json!(round(battery.clamp(0.0, 15.0), 3)),
        );
        m
    }
}
