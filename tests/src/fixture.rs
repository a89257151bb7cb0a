//! The test estate, built from a few parameters instead of written out by hand in every
//! test: stations, one street with its fall-back station, one community, compounds,
//! buildings, gateways and devices, rendered as the `estate.toml` the hub reads.
//!
//! Dependency-free so other crates' tests can use it through the `fixture` feature
//! without building the whole hub harness.

use std::fmt::Write as _;
use std::sync::OnceLock;

/// A device of the estate. Unless set otherwise its secret is `{id}-secret` and its
/// vendor the usual one for its kind (firesafe, aquaflow, hoistwell, portalis).
#[derive(Debug, Clone)]
pub struct Device {
    id: String,
    kind: String,
    vendor: String,
    building: String,
    secret: Option<String>,
    gateway: Option<String>,
    report_interval_s: Option<u32>,
}

impl Device {
    /// `kind` is the estate file's spelling: `smoke`, `pump`, `lift` or `gate`.
    pub fn new(id: &str, kind: &str, building: &str) -> Self {
        let vendor = match kind {
            "smoke" => "firesafe",
            "pump" => "aquaflow",
            "lift" => "hoistwell",
            "gate" => "portalis",
            _ => "acme",
        };
        Device {
            id: id.into(),
            kind: kind.into(),
            vendor: vendor.into(),
            building: building.into(),
            secret: Some(format!("{id}-secret")),
            gateway: None,
            report_interval_s: None,
        }
    }

    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.into());
        self
    }

    pub fn vendor(mut self, vendor: &str) -> Self {
        self.vendor = vendor.into();
        self
    }

    /// Behind a gateway: no secret of its own, the gateway publishes for it.
    pub fn via(mut self, gateway: &str) -> Self {
        self.gateway = Some(gateway.into());
        self.secret = None;
        self
    }

    pub fn report_interval_s(mut self, seconds: u32) -> Self {
        self.report_interval_s = Some(seconds);
        self
    }
}

/// (id, name, Some((property company, station)) when a company runs it)
type Compound = (String, String, Option<(String, String)>);

/// An estate under construction; [`Estate::toml`] renders it.
#[derive(Debug, Clone)]
pub struct Estate {
    stations: Vec<(String, String)>,
    street: (String, String),
    community: (String, String),
    compounds: Vec<Compound>,
    buildings: Vec<(String, String, String)>,
    /// (id, vendor, compound, secret)
    gateways: Vec<(String, String, String, String)>,
    devices: Vec<Device>,
}

impl Estate {
    /// One station, which is the fall-back of the one street `street-1` and its one
    /// community `com-1`; no compounds yet.
    pub fn new(station: &str, station_name: &str) -> Self {
        Estate {
            stations: vec![(station.into(), station_name.into())],
            street: ("street-1".into(), "Riverside".into()),
            community: ("com-1".into(), "Elm".into()),
            compounds: Vec::new(),
            buildings: Vec::new(),
            gateways: Vec::new(),
            devices: Vec::new(),
        }
    }

    /// Station `st-1`, compound `cmp-1` ("Elm Court") with building `b-1`.
    pub fn one_compound() -> Self {
        Estate::new("st-1", "North")
            .compound("cmp-1", "Elm Court")
            .building("b-1", "Block 1", "cmp-1")
    }

    /// Two compounds of one street: `cmp-1` (building `b-1`) has no property company and
    /// goes to the street's fall-back station `st-north`; `cmp-2` (building `b-2`) is
    /// run by Acme PM, whose station is `st-acme`.
    pub fn two_compounds() -> Self {
        Estate::new("st-north", "North repair station")
            .station("st-acme", "Acme PM station")
            .compound("cmp-1", "Elm Court")
            .managed_compound("cmp-2", "Oak Court", "Acme PM", "st-acme")
            .building("b-1", "Block 1", "cmp-1")
            .building("b-2", "Block 2", "cmp-2")
    }

    /// The end-to-end tests' estate: [`Estate::two_compounds`] with every device kind
    /// in `b-1`, and in `cmp-2` a gateway `gw-1` with pump `pump-9` behind it, a gate
    /// and a smoke detector. Every device's secret is `{id}-secret`.
    pub fn standard() -> Self {
        Estate::two_compounds()
            .gateway("gw-1", "cmp-2", "gw-1-secret")
            .device(Device::new("smoke-1", "smoke", "b-1"))
            .device(Device::new("pump-1", "pump", "b-1"))
            .device(Device::new("lift-1", "lift", "b-1"))
            .device(Device::new("gate-1", "gate", "b-2"))
            .device(Device::new("pump-9", "pump", "b-2").via("gw-1"))
            .device(Device::new("smoke-2", "smoke", "b-2"))
    }

    /// `n` directly connected devices in compounds of 16 like a real one (8 smoke
    /// detectors, 2 pumps, 4 lifts, 2 gates): device `i` has id `dev-{i:05}`, secret
    /// `secret-{i:05}` and reports every 10 s. Compound size matters to the rules stage,
    /// whose compound-scope rules look at the other devices of the same compound.
    pub fn load(n: usize) -> Self {
        const PATTERN: [&str; 16] = [
            "smoke", "smoke", "smoke", "smoke", "smoke", "smoke", "smoke", "smoke", "pump", "pump",
            "lift", "lift", "lift", "lift", "gate", "gate",
        ];
        let mut e = Estate::new("st-1", "Load station");
        for c in 0..n.div_ceil(16) {
            e = e
                .compound(&format!("cmp-{c}"), &format!("Load compound {c}"))
                .building(
                    &format!("b-{c}"),
                    &format!("Block {c}"),
                    &format!("cmp-{c}"),
                );
        }
        for i in 0..n {
            e = e.device(
                Device::new(
                    &format!("dev-{i:05}"),
                    PATTERN[i % 16],
                    &format!("b-{}", i / 16),
                )
                .vendor("load")
                .secret(&format!("secret-{i:05}"))
                .report_interval_s(10),
            );
        }
        e
    }

    pub fn station(mut self, id: &str, name: &str) -> Self {
        self.stations.push((id.into(), name.into()));
        self
    }

    /// A compound without a property company: its tickets go to the street's station.
    pub fn compound(mut self, id: &str, name: &str) -> Self {
        self.compounds.push((id.into(), name.into(), None));
        self
    }

    /// A compound run by `company`, whose tickets go to `station`.
    pub fn managed_compound(mut self, id: &str, name: &str, company: &str, station: &str) -> Self {
        self.compounds.push((
            id.into(),
            name.into(),
            Some((company.into(), station.into())),
        ));
        self
    }

    pub fn building(mut self, id: &str, name: &str, compound: &str) -> Self {
        self.buildings
            .push((id.into(), name.into(), compound.into()));
        self
    }

    /// A gateway of vendor `acme`.
    pub fn gateway(mut self, id: &str, compound: &str, secret: &str) -> Self {
        self.gateways
            .push((id.into(), "acme".into(), compound.into(), secret.into()));
        self
    }

    pub fn device(mut self, device: Device) -> Self {
        self.devices.push(device);
        self
    }

    /// The ids of the devices, in the order they were added.
    pub fn device_ids(&self) -> Vec<String> {
        self.devices.iter().map(|d| d.id.clone()).collect()
    }

    /// The estate file text.
    pub fn toml(&self) -> String {
        let mut s = String::new();
        // Writing to a String cannot fail.
        let mut w = |args: std::fmt::Arguments| {
            let _ = s.write_fmt(args);
        };
        for (id, name) in &self.stations {
            w(format_args!("[[stations]]\nid = {id:?}\nname = {name:?}\n"));
        }
        let fallback = &self.stations[0].0;
        let (street, street_name) = &self.street;
        w(format_args!(
            "[[streets]]\nid = {street:?}\nname = {street_name:?}\nfallback_station = {fallback:?}\n"
        ));
        let (community, community_name) = &self.community;
        w(format_args!(
            "[[communities]]\nid = {community:?}\nname = {community_name:?}\nstreet = {street:?}\n"
        ));
        for (id, name, managed) in &self.compounds {
            w(format_args!(
                "[[compounds]]\nid = {id:?}\nname = {name:?}\ncommunity = {community:?}\n"
            ));
            if let Some((company, station)) = managed {
                w(format_args!(
                    "property_company = {company:?}\nstation = {station:?}\n"
                ));
            }
        }
        for (id, name, compound) in &self.buildings {
            w(format_args!(
                "[[buildings]]\nid = {id:?}\nname = {name:?}\ncompound = {compound:?}\n"
            ));
        }
        for (id, vendor, compound, secret) in &self.gateways {
            w(format_args!(
                "[[gateways]]\nid = {id:?}\nvendor = {vendor:?}\ncompound = {compound:?}\nsecret = {secret:?}\n"
            ));
        }
        for d in &self.devices {
            w(format_args!(
                "[[devices]]\nid = {:?}\nkind = {:?}\nvendor = {:?}\nbuilding = {:?}\n",
                d.id, d.kind, d.vendor, d.building
            ));
            if let Some(secret) = &d.secret {
                w(format_args!("secret = {secret:?}\n"));
            }
            if let Some(gateway) = &d.gateway {
                w(format_args!("gateway = {gateway:?}\n"));
            }
            if let Some(every) = d.report_interval_s {
                w(format_args!("report_interval_s = {every}\n"));
            }
        }
        s
    }
}

/// The text of [`Estate::standard`], rendered once. A unit value rather than a `&str`
/// constant so `TEST_ESTATE` can stay a constant that reads like one (`&TEST_ESTATE`,
/// `TEST_ESTATE.as_ref()`, or passed where `impl AsRef<str>` is taken).
#[derive(Debug, Clone, Copy)]
pub struct StandardEstate;

impl StandardEstate {
    pub fn as_str(&self) -> &'static str {
        static TEXT: OnceLock<String> = OnceLock::new();
        TEXT.get_or_init(|| Estate::standard().toml())
    }
}

impl AsRef<str> for StandardEstate {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::ops::Deref for StandardEstate {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

/// The end-to-end tests' estate ([`Estate::standard`]).
pub const TEST_ESTATE: StandardEstate = StandardEstate;

/// The text of [`Estate::load`].
pub fn load_estate(n: usize) -> String {
    Estate::load(n).toml()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_quoted_ids_and_optional_keys() {
        let text = Estate::one_compound()
            .gateway("gw-1", "cmp-1", "gw-secret")
            .device(Device::new("lift-1", "lift", "b-1").report_interval_s(10))
            .device(Device::new("pump-1", "pump", "b-1").via("gw-1"))
            .toml();
        assert!(text.contains(
            "[[streets]]\nid = \"street-1\"\nname = \"Riverside\"\nfallback_station = \"st-1\"\n"
        ));
        assert!(text.contains("id = \"lift-1\"\nkind = \"lift\"\nvendor = \"hoistwell\"\nbuilding = \"b-1\"\nsecret = \"lift-1-secret\"\nreport_interval_s = 10\n"));
        assert!(text.contains("id = \"pump-1\"\nkind = \"pump\"\nvendor = \"aquaflow\"\nbuilding = \"b-1\"\ngateway = \"gw-1\"\n"));
        assert_eq!(TEST_ESTATE.matches("[[devices]]").count(), 6);
        assert_eq!(Estate::load(33).toml().matches("[[compounds]]").count(), 3);
    }
}
