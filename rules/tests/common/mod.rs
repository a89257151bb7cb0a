//! Simulated-time harness: device-sim models publish contract payloads, the real decoder
//! turns them into `Decoded`, and the engine sees exactly what it would in the hub.
#![allow(dead_code)]

use std::sync::Arc;
use steward_device_sim::{DeviceModel, Fault};
use steward_estate::{Directory, EstateFile, Registry};
use steward_ingest::contract::decode;
use steward_ingest::IngestConfig;
use steward_rules::{Action, Engine, RulePack};
use steward_tests::fixture::{Device, Estate};

/// 2025-03-03T00:00:00Z.
pub const T0: i64 = 1_740_960_000_000;
pub const MIN: i64 = 60_000;
pub const HOUR: i64 = 3_600_000;

/// Two compounds of one street: cmp-1 has no property company (street fall-back station
/// st-north), cmp-2 is run by Acme (st-acme). Every kind twice in cmp-1 (`lift-2` reports
/// every 30 s), once in cmp-2.
pub fn estate() -> Estate {
    Estate::two_compounds()
        .device(Device::new("smoke-1", "smoke", "b-1"))
        .device(Device::new("smoke-2", "smoke", "b-1"))
        .device(Device::new("pump-1", "pump", "b-1"))
        .device(Device::new("lift-1", "lift", "b-1"))
        .device(Device::new("lift-2", "lift", "b-1").report_interval_s(30))
        .device(Device::new("gate-1", "gate", "b-1"))
        .device(Device::new("gate-2", "gate", "b-1"))
        .device(Device::new("smoke-9", "smoke", "b-2"))
        .device(Device::new("pump-9", "pump", "b-2"))
        .device(Device::new("lift-9", "lift", "b-2"))
        .device(Device::new("gate-9", "gate", "b-2"))
}

pub const ALL_DEVICES: &[&str] = &[
    "smoke-1", "smoke-2", "pump-1", "lift-1", "lift-2", "gate-1", "gate-2", "smoke-9", "pump-9",
    "lift-9", "gate-9",
];

pub fn registry() -> Registry {
    let r = Registry::open_in_memory().expect("registry");
    r.apply(&EstateFile::parse(&estate().toml()).expect("estate parses"))
        .expect("estate applies");
    r
}

struct Model {
    m: DeviceModel,
    next: i64,
    every: i64,
}

pub struct Sim {
    pub dir: Arc<Directory>,
    pub engine: Engine,
    pub actions: Vec<Action>,
    pub now: i64,
    pub rejects: Vec<String>,
    models: Vec<Model>,
    cfg: IngestConfig,
    tick_ms: i64,
}

impl Sim {
    pub fn new(pack: RulePack, devices: &[&str]) -> Sim {
        let dir = registry().directory();
        let models = devices
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let d = dir.device(id).expect("device in estate");
                Model {
                    m: DeviceModel::new(id, d.kind, 42),
                    // Spread first reports so devices do not all speak in one instant.
                    next: T0 + 1_000 + i as i64 * 3_700,
                    every: i64::from(d.report_interval_s) * 1000,
                }
            })
            .collect();
        Sim {
            dir,
            engine: Engine::new(Arc::new(pack)),
            actions: Vec::new(),
            now: T0,
            rejects: Vec::new(),
            models,
            cfg: IngestConfig::default(),
            tick_ms: 5_000,
        }
    }

    pub fn default_pack(devices: &[&str]) -> Sim {
        Sim::new(RulePack::default_pack(), devices)
    }

    /// Decode one message as ingest would at `ts` and hand it to the engine.
    pub fn feed(&mut self, topic: &str, payload: &[u8], ts: i64) {
        let d = decode(topic.as_bytes(), payload, &self.dir, ts, &self.cfg);
        for r in &d.rejects {
            self.rejects
                .push(format!("{topic}: {:?} {}", r.reason, r.detail));
        }
        let a = self.engine.on_decoded(&d, &self.dir);
        self.actions.extend(a);
    }

    pub fn fault(&mut self, id: &str, f: Option<Fault>) {
        for m in &mut self.models {
            if m.m.id() == id {
                m.m.set_fault(f);
            }
        }
    }

    /// Advance simulated time to `end`: every model reports on its period, the engine
    /// ticks every 5 s.
    pub fn run_until(&mut self, end: i64) {
        let mut t = self.now;
        while t < end {
            t = (t + self.tick_ms).min(end);
            for i in 0..self.models.len() {
                while self.models[i].next <= t {
                    let at = self.models[i].next;
                    let msgs = self.models[i].m.tick(at);
                    self.models[i].next += self.models[i].every;
                    for msg in msgs {
                        self.feed(&msg.topic, &msg.payload, at);
                    }
                }
            }
            let a = self.engine.tick(t, &self.dir);
            self.actions.extend(a);
        }
        self.now = end;
    }

    pub fn run_for(&mut self, ms: i64) {
        let end = self.now + ms;
        self.run_until(end);
    }

    pub fn raises(&self) -> Vec<&steward_tickets::Raise> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Raise(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    pub fn raised(&self, device: &str, rule: &str) -> Option<&steward_tickets::Raise> {
        self.raises()
            .into_iter()
            .find(|r| r.device_id == device && r.rule_id == rule)
    }

    pub fn summary(&self) -> Vec<String> {
        self.raises()
            .iter()
            .map(|r| format!("{} {} @{}s", r.device_id, r.rule_id, (r.ts_ms - T0) / 1000))
            .collect()
    }

    pub fn clear_actions(&mut self) {
        self.actions.clear();
    }
}
