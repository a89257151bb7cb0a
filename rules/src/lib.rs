//! The rules stage: turns decoded readings, events and silences into conditions on
//! devices. This first slice keeps the per-device state every rule form builds on (last
//! seen, online/offline, latest value of each metric) and derives silence from each
//! device's reporting period; the rule pack and tickets build on it.
//!
//! Rules consume what ingest decoded (through [`steward_ingest::DecodedSink`]); they may
//! not write to QuestDB's telemetry tables, talk to MQTT clients or change the estate.

mod state;

pub use state::{DeviceState, DeviceStates, Liveness};
