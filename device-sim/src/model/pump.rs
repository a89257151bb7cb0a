//! Submersible drainage pump in a basement sump pit, level controlled: it starts when the
//! sump reaches the start level and pumps it down to the stop level. The discharge pressure
//! sensor sits on the riser above the check valve, so it reads the static head while the
//! pump stands still.

use super::thresholds::{SUMP_HIGH_HIGH_M, SUMP_START_M, SUMP_STOP_M};
use super::{data, round, traffic, Cx};
use crate::Fault;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Map, Value};

const MAX_STEP_S: f64 = 10.0;
/// Pump intake height: the level cannot be pumped below it.
const INTAKE_M: f64 = 0.12;
/// Low-low electrode: stops the pump whatever the minimum run time says.
const LOW_LOW_M: f64 = 0.17;
/// Controller minimum run time, limiting starts per hour.
const MIN_RUN_MS: i64 = 2 * 60_000;
/// Level sensor ceiling: the pit rim, past which the basement floods.
const PIT_RIM_M: f64 = 2.6;
/// Hydrostatic pressure per metre of water, MPa.
const MPA_PER_M: f64 = 0.009_81;
/// Line voltage and power factor for the motor current.
const LINE_V: f64 = 400.0;
const POWER_FACTOR: f64 = 0.86;

pub(crate) struct Pump {
    baseline_kw: f64,
    nominal_flow_m3h: f64,
    area_m2: f64,
    head_mpa: f64,
    static_mpa: f64,
    ambient_c: f64,
    inflow_mean_m_h: f64,
    vib_run: f64,
    vib_fault: f64,
    imbalance_pct: f64,
    dry_share: f64,

    level_m: f64,
    inflow_m_h: f64,
    running: bool,
    started_at: i64,
    bearing_c: f64,
    starts: i64,
    run_hours: f64,
    tripped: bool,
    /// End of the running test run: until then the water goes back to the pit through the
    /// test line and the level control does not stop the pump.
    test_until: Option<i64>,
}

impl Pump {
    pub fn new(rng: &mut ChaCha8Rng) -> Self {
        // Pits are sized so the pump empties them in a few minutes.
        let area_m2 = rng.random_range(1.5..3.0);
        let pump_down_m_h: f64 = rng.random_range(6.0..12.0);
        let nominal_flow_m3h = pump_down_m_h * area_m2;
        let ambient_c = rng.random_range(14.0..24.0);
        Pump {
            // Roughly 5 m3/h per kW at 25-30 m of head.
            baseline_kw: nominal_flow_m3h / rng.random_range(4.5..5.5),
            nominal_flow_m3h,
            area_m2,
            head_mpa: rng.random_range(0.22..0.32),
            static_mpa: rng.random_range(0.10..0.15),
            ambient_c,
            inflow_mean_m_h: rng.random_range(0.3..0.8),
            vib_run: rng.random_range(0.8..1.2),
            vib_fault: rng.random_range(5.2..6.5),
            imbalance_pct: rng.random_range(1.0..3.0),
            dry_share: rng.random_range(0.35..0.45),
            level_m: rng.random_range(SUMP_STOP_M..SUMP_START_M),
            inflow_m_h: 0.5,
            running: false,
            started_at: 0,
            bearing_c: ambient_c,
            starts: rng.random_range(1_000..20_000),
            run_hours: rng.random_range(2_000.0..30_000.0),
            tripped: false,
            test_until: None,
        }
    }

    pub fn init(&mut self, _cx: &mut Cx, _t: i64) {
        self.inflow_m_h = self.inflow_mean_m_h;
    }

    pub fn on_fault(&mut self, cx: &mut Cx, t: i64, old: Option<Fault>, new: Option<Fault>) {
        if old == Some(Fault::SumpHighLevel) && new != old {
            // The crew resets the overload relay; the controller takes over again.
            self.tripped = false;
            self.inflow_m_h = self.inflow_mean_m_h;
        }
        match new {
            Some(Fault::SumpHighLevel) => {
                // A storm drives the inflow up while the motor overload trips.
                self.inflow_m_h = cx.range(9.0, 11.0);
                self.tripped = true;
                cx.emit(t, "fault", data([("code", json!("overload_trip"))]));
                if self.running {
                    self.stop(cx, t);
                }
            }
            // Start at once, as the controller's exercise run would, so the condition
            // shows now instead of when the sump next fills.
            Some(Fault::PumpDryRun | Fault::PumpHighVibration | Fault::PumpBearingHot)
                if !self.running =>
            {
                self.start(cx, t);
            }
            _ => {}
        }
    }

    /// The weekly test run (GB 50974-2014 14.2): start unless running or tripped.
    pub fn self_test(&mut self, cx: &mut Cx, t: i64) {
        if self.tripped {
            return;
        }
        self.test_until = Some(t + super::PUMP_TEST_RUN_MS);
        if !self.running {
            self.start(cx, t);
            if let Some(ev) = cx.events.last_mut() {
                ev.data.insert("test".into(), json!(true));
            }
        }
    }

    fn start(&mut self, cx: &mut Cx, t: i64) {
        self.running = true;
        self.started_at = t;
        self.starts += 1;
        cx.emit(
            t,
            "started",
            data([("level_m", json!(round(self.level_m, 2)))]),
        );
    }

    fn stop(&mut self, cx: &mut Cx, t: i64) {
        self.running = false;
        cx.emit(
            t,
            "stopped",
            data([("level_m", json!(round(self.level_m, 2)))]),
        );
    }

    /// Running with the water at the intake: it draws air and passes only the trickle that
    /// comes in. Below the low-low electrode, so a healthy controller never gets here.
    fn dry(&self) -> bool {
        self.running && self.level_m <= INTAKE_M + 0.04
    }

    pub fn advance(&mut self, cx: &mut Cx, from: i64, to: i64) {
        let mut t = from;
        while t < to {
            let step_ms = (to - t).min((MAX_STEP_S * 1000.0) as i64);
            let dt = step_ms as f64 / 1000.0;
            t += step_ms;

            self.inflow_m_h = if cx.fault == Some(Fault::SumpHighLevel) {
                cx.ou(self.inflow_m_h, 10.0, 300.0, 0.5, dt)
                    .clamp(8.0, 12.0)
            } else {
                // Drainage follows water use in the building.
                let mean = self.inflow_mean_m_h * (0.6 + 0.8 * traffic(t));
                cx.ou(self.inflow_m_h, mean, 1_800.0, 0.12, dt)
                    .clamp(0.02, 2.0)
            };
            let testing = self.test_until.is_some_and(|u| t < u);
            if !testing {
                self.test_until = None;
            }
            let outflow_m_h = if testing && !self.dry() {
                0.0
            } else if self.dry() {
                self.inflow_m_h
            } else if self.running {
                self.nominal_flow_m3h / self.area_m2
            } else {
                0.0
            };
            self.level_m = (self.level_m + (self.inflow_m_h - outflow_m_h) * dt / 3_600.0)
                .clamp(INTAKE_M, PIT_RIM_M);

            let (target_c, tau_s) = match (self.running, cx.fault) {
                (true, Some(Fault::PumpBearingHot)) => (115.0, 45.0),
                (true, _) => (self.ambient_c + 22.0, 900.0),
                (false, _) => (self.ambient_c, 1_500.0),
            };
            self.bearing_c = target_c + (self.bearing_c - target_c) * (-dt / tau_s).exp();
            if self.running {
                self.run_hours += dt / 3_600.0;
            }

            let stuck_float = cx.fault == Some(Fault::PumpDryRun);
            if self.running && !stuck_float && !testing {
                let min_run_done = t - self.started_at >= MIN_RUN_MS;
                if (self.level_m <= SUMP_STOP_M && min_run_done) || self.level_m <= LOW_LOW_M {
                    self.stop(cx, t);
                }
            } else if !self.running && !self.tripped && self.level_m >= SUMP_START_M {
                self.start(cx, t);
            }
        }
    }

    pub fn metrics(&mut self, cx: &mut Cx, _t: i64) -> Map<String, Value> {
        let fault = cx.fault;
        let (power_kw, flow, outlet, vibration, imbalance) = if !self.running {
            (
                0.0,
                0.0,
                self.static_mpa + 0.002 * cx.gauss(),
                0.12 + 0.04 * cx.gauss(),
                0.0,
            )
        } else if self.dry() {
            // No water at the intake: the impeller spins in air, little load and no head.
            (
                self.baseline_kw * (self.dry_share + 0.02 * cx.gauss()),
                (self.inflow_m_h * self.area_m2 * 0.5).min(1.0),
                self.static_mpa + 0.002 * cx.gauss(),
                (1.3 + 0.1 * cx.gauss()).min(1.7),
                self.imbalance_pct + 0.3 * cx.gauss(),
            )
        } else {
            let vibration = if fault == Some(Fault::PumpHighVibration) {
                (self.vib_fault + 0.2 * cx.gauss()).max(4.7)
            } else {
                (self.vib_run + 0.06 * cx.gauss()).clamp(0.4, 1.6)
            };
            (
                self.baseline_kw * (1.0 + 0.015 * cx.gauss()),
                self.nominal_flow_m3h * (1.0 + 0.02 * cx.gauss()),
                self.head_mpa + 0.004 * cx.gauss(),
                vibration,
                self.imbalance_pct + 0.3 * cx.gauss(),
            )
        };
        let current_a = power_kw * 1_000.0 / (3f64.sqrt() * LINE_V * POWER_FACTOR);
        let inlet = self.level_m * MPA_PER_M - if self.running { 0.002 } else { 0.0 };

        let mut m = Map::new();
        m.insert("running".into(), json!(self.running));
        m.insert(
            "inlet_pressure_mpa".into(),
            json!(round(inlet.clamp(-0.1, 10.0), 4)),
        );
        m.insert(
            "outlet_pressure_mpa".into(),
            json!(round(outlet.clamp(-0.1, 10.0), 4)),
        );
        m.insert(
            "flow_m3h".into(),
            json!(round(flow.clamp(0.0, 10_000.0), 2)),
        );
        m.insert(
            "power_kw".into(),
            json!(round(power_kw.clamp(0.0, 5_000.0), 3)),
        );
        m.insert(
            "current_a".into(),
            json!(round(current_a.clamp(0.0, 5_000.0), 2)),
        );
        m.insert(
            "current_imbalance_pct".into(),
            json!(round(imbalance.clamp(0.0, 100.0), 2)),
        );
        m.insert(
            "vibration_mm_s".into(),
            json!(round(vibration.clamp(0.0, 100.0), 2)),
        );
        m.insert(
            "bearing_temp_c".into(),
            json!(round(self.bearing_c.clamp(-40.0, 250.0), 1)),
        );
        m.insert("level_m".into(), json!(round(self.level_m, 3)));
        m.insert("starts".into(), json!(self.starts));
        m.insert("run_hours".into(), json!(round(self.run_hours, 3)));
        if self.tripped {
            m.insert("fault_code".into(), json!("overload_trip"));
        }
        m
    }
}

const _: () = assert!(SUMP_START_M < SUMP_HIGH_HIGH_M && PIT_RIM_M > SUMP_HIGH_HIGH_M);
