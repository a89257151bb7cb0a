//! Steward's device simulator: realistic smoke detector, sump pump, lift and gate models,
//! fault scenarios (one per condition of the default rule pack, `rules/packs/default.toml`)
//! and a load generator, all publishing device contract v1 over real MQTT.
//!
//! - [`DeviceModel`] is a deterministic model of one device: the same `(id, seed)` and the
//!   same report times give the same payloads, so tests and demos are reproducible.
//! - [`run_fleet`] connects every direct device and every gateway of an estate and publishes
//!   status, telemetry and events at each device's report interval, optionally sped up and
//!   with faults injected. Given several brokers (cluster front ends), each connection
//!   starts on one and fails over to the next, re-sending unacknowledged messages.
//! - [`run_load`] pushes pre-serialised telemetry as fast as asked over many connections to
//!   measure the hub's ingest rate.
//!
//! Boundaries: this crate only talks MQTT to the broker, exactly like a vendor's device
//! would. It never touches QuestDB, SQLite or any hub internals, and it depends on no hub
//! stage; its only Steward dependency is `steward-estate` for device kinds, the metric
//! catalogue and the estate file.

mod failover;
mod fault;
mod fleet;
mod load;
mod model;
mod mqtt;
mod publisher;

pub use fault::Fault;
pub use fleet::{run_fleet, FleetConfig, FleetReport};
pub use load::{run_load, LoadConfig, LoadReport};
pub use model::{
    event_payload, telemetry_payload, thresholds, DeviceModel, Report, SelfTests, SimEvent,
    LOCAL_UTC_OFFSET_H, PUMP_TEST_RUN_MS,
};

use steward_estate::{DeviceKind, EstateFile};

/// One MQTT message a simulated device or gateway publishes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimMessage {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
}

/// A device as the simulator needs it: identity, plain credentials and reporting period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimDevice {
    pub id: String,
    pub kind: DeviceKind,
    /// Plain secret; `None` when the estate only holds a hash (such a device cannot be
    /// simulated over a direct connection).
    pub secret: Option<String>,
    /// Gateway the device publishes through, if any.
    pub gateway: Option<String>,
    pub report_interval_s: u32,
}

/// Devices of an estate file, in file order.
pub fn devices_from_estate(file: &EstateFile) -> Vec<SimDevice> {
    file.devices
        .iter()
        .map(|d| SimDevice {
            id: d.id.clone(),
            kind: d.kind,
            secret: d.secret.clone(),
            gateway: d.gateway.clone(),
            report_interval_s: d.report_interval_s,
        })
        .collect()
}

/// Gateways of an estate file that carry a plain secret, as `(id, secret)`; gateways known
/// only by their hash cannot log in and are left out.
pub fn gateways_from_estate(file: &EstateFile) -> Vec<(String, String)> {
    file.gateways
        .iter()
        .filter_map(|g| g.secret.clone().map(|s| (g.id.clone(), s)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("invalid broker address `{0}`: expected host:port")]
    BadBroker(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("unknown fault `{given}`; valid faults: {valid}")]
    UnknownFault { given: String, valid: String },
    #[error("fault `{fault}` targets unknown device `{device}`")]
    UnknownTarget { fault: &'static str, device: String },
    #[error("fault `{fault}` needs a {needs} device but `{device}` is a {actual}")]
    WrongKind {
        fault: &'static str,
        needs: DeviceKind,
        device: String,
        actual: DeviceKind,
    },
    #[error("fault `{fault}` has no {needs} device to act on")]
    NoTarget {
        fault: &'static str,
        needs: &'static str,
    },
    #[error("nothing to simulate: {0}")]
    NoDevices(String),
    #[error("cannot connect to the broker: {0}")]
    Connect(String),
    #[error("simulator task failed: {0}")]
    Task(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_from_estate_picks_secrets_and_gateways() {
        let file = EstateFile::parse(
            r#"
[[stations]]
id = "st-1"
name = "North"
[[streets]]
id = "street-1"
name = "Riverside"
fallback_station = "st-1"
[[communities]]
id = "com-1"
name = "Elm"
street = "street-1"
[[compounds]]
id = "cmp-1"
name = "Elm Court"
community = "com-1"
[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"
[[gateways]]
id = "gw-1"
vendor = "acme"
compound = "cmp-1"
secret = "gateway-secret"
[[devices]]
id = "lift-1"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "lift-1-secret"
report_interval_s = 10
[[devices]]
id = "pump-1"
kind = "pump"
vendor = "acme"
building = "b-1"
gateway = "gw-1"
"#,
        )
        .expect("test estate parses");
        let devices = devices_from_estate(&file);
        assert_eq!(
            devices,
            vec![
                SimDevice {
                    id: "lift-1".into(),
                    kind: DeviceKind::Lift,
                    secret: Some("lift-1-secret".into()),
                    gateway: None,
                    report_interval_s: 10,
                },
                SimDevice {
                    id: "pump-1".into(),
                    kind: DeviceKind::Pump,
                    secret: None,
                    gateway: Some("gw-1".into()),
                    report_interval_s: 60,
                },
            ]
        );
        assert_eq!(
            gateways_from_estate(&file),
            vec![("gw-1".to_string(), "gateway-secret".to_string())]
        );
    }
}
