//! The estate file: the TOML document an operator keeps in git to describe stations,
//! streets, communities, compounds, buildings, gateways and devices. Devices may also come
//! from a CSV file named by `devices_csv`, which suits vendor hand-overs of many devices.

use crate::people::{
    CaptainDef, CrewDef, DistrictDef, GridCellDef, Management, PersonDef, RotaDef,
};
use crate::{secret, validate_id, DeviceKind, EstateError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstateFile {
    #[serde(default)]
    pub stations: Vec<StationDef>,
    #[serde(default)]
    pub streets: Vec<StreetDef>,
    #[serde(default)]
    pub communities: Vec<CommunityDef>,
    #[serde(default)]
    pub compounds: Vec<CompoundDef>,
    #[serde(default)]
    pub buildings: Vec<BuildingDef>,
    #[serde(default)]
    pub gateways: Vec<GatewayDef>,
    #[serde(default)]
    pub devices: Vec<DeviceDef>,
    /// Extra devices in CSV (header: id,kind,vendor,building,location,gateway,secret,report_interval_s),
    /// relative to the estate file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices_csv: Option<PathBuf>,
    // People of the estate (docs/people.md).
    /// IANA time zone of rotas and local times (default Asia/Shanghai).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<DistrictDef>,
    #[serde(default)]
    pub people: Vec<PersonDef>,
    #[serde(default)]
    pub crews: Vec<CrewDef>,
    #[serde(default)]
    pub grid_cells: Vec<GridCellDef>,
    #[serde(default)]
    pub captains: Vec<CaptainDef>,
    #[serde(default)]
    pub rotas: Vec<RotaDef>,
    /// Planned work during which non-life-safety rules open no tickets (windows.rs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub maintenance_windows: Vec<crate::windows::WindowDef>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StationDef {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Person id of the station head (second escalation tier).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreetDef {
    pub id: String,
    pub name: String,
    /// Station that answers for compounds of this street with no property company.
    pub fallback_station: String,
    /// Person id of the street platform's duty officer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty_officer: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommunityDef {
    pub id: String,
    pub name: String,
    pub street: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompoundDef {
    pub id: String,
    pub name: String,
    pub community: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub property_company: Option<String>,
    /// The property company's station; absent means the street's fall-back station.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub station: Option<String>,
    /// Who manages it; default `property_company` with a property company, else `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub management: Option<Management>,
    /// Since when the compound is covered, `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover_date: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildingDef {
    pub id: String,
    pub name: String,
    pub compound: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayDef {
    pub id: String,
    pub vendor: String,
    pub compound: String,
    /// Plain secret (hashed on load) or `secret_hash` (already hashed); exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceDef {
    pub id: String,
    pub kind: DeviceKind,
    pub vendor: String,
    pub building: String,
    #[serde(default)]
    pub location: String,
    /// Set for devices that publish only through a gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    /// Expected reporting period; silence past two periods means offline.
    #[serde(default = "default_report_interval")]
    pub report_interval_s: u32,
}

fn default_report_interval() -> u32 {
    60
}

#[derive(Debug, Deserialize)]
struct CsvDevice {
    id: String,
    kind: String,
    vendor: String,
    building: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    gateway: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    report_interval_s: Option<u32>,
}

impl EstateFile {
    /// The maintenance windows against the devices, buildings and compounds of this file.
    fn validate_windows(&self, errors: &mut Vec<String>) {
        use crate::windows::WindowTarget;
        let devices: HashSet<&str> = self.devices.iter().map(|d| d.id.as_str()).collect();
        let buildings: HashSet<&str> = self.buildings.iter().map(|b| b.id.as_str()).collect();
        let compounds: HashSet<&str> = self.compounds.iter().map(|c| c.id.as_str()).collect();
        let known = |t: &WindowTarget| match t {
            WindowTarget::Device(d) => devices.contains(d.as_str()),
            WindowTarget::Building(b) => buildings.contains(b.as_str()),
            WindowTarget::Compound(c) => compounds.contains(c.as_str()),
        };
        crate::windows::validate_defs(
            &self.maintenance_windows,
            self.timezone.as_deref(),
            &known,
            errors,
        );
    }

    /// Read, parse and validate an estate file (and its device CSV, if any).
    pub fn load(path: &Path) -> Result<EstateFile, EstateError> {
        let text = std::fs::read_to_string(path).map_err(|error| EstateError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let mut file = Self::parse(&text).map_err(|e| match e {
            EstateError::Parse { message, .. } => EstateError::Parse {
                path: path.to_path_buf(),
                message,
            },
            EstateError::Invalid(errors) => EstateError::InvalidFile {
                path: path.to_path_buf(),
                errors,
            },
            other => other,
        })?;
        if let Some(csv_path) = file.devices_csv.clone() {
            let csv_path = path.parent().unwrap_or(Path::new(".")).join(csv_path);
            file.devices.extend(read_devices_csv(&csv_path)?);
        }
        file.validate().map_err(|e| match e {
            EstateError::Invalid(errors) => EstateError::InvalidFile {
                path: path.to_path_buf(),
                errors,
            },
            other => other,
        })?;
        Ok(file)
    }

    /// Parse without touching the file system (no CSV), then validate.
    pub fn parse(text: &str) -> Result<EstateFile, EstateError> {
        let file: EstateFile = toml::from_str(text).map_err(|e| EstateError::Parse {
            path: PathBuf::from("<estate>"),
            message: e.to_string(),
        })?;
        if file.devices_csv.is_none() {
            file.validate()?;
        }
        Ok(file)
    }

    /// Check identifiers, references and secrets; every problem is reported with the
    /// key that holds it, e.g. `devices[3].building`.
    pub fn validate(&self) -> Result<(), EstateError> {
        let mut errors = Vec::new();
        let mut check_ids = |section: &str, ids: Vec<&str>| -> HashSet<String> {
            let mut seen = HashSet::new();
            for (i, id) in ids.into_iter().enumerate() {
                if let Err(e) = validate_id(id) {
                    errors.push(format!("{section}[{i}].id: {e}"));
                }
                if !seen.insert(id.to_string()) {
                    errors.push(format!("{section}[{i}].id: duplicate id `{id}`"));
                }
            }
            seen
        };
        let stations = check_ids(
            "stations",
            self.stations.iter().map(|s| s.id.as_str()).collect(),
        );
        let streets = check_ids(
            "streets",
            self.streets.iter().map(|s| s.id.as_str()).collect(),
        );
        let communities = check_ids(
            "communities",
            self.communities.iter().map(|s| s.id.as_str()).collect(),
        );
        let compounds = check_ids(
            "compounds",
            self.compounds.iter().map(|s| s.id.as_str()).collect(),
        );
        let buildings = check_ids(
            "buildings",
            self.buildings.iter().map(|s| s.id.as_str()).collect(),
        );
        let gateways = check_ids(
            "gateways",
            self.gateways.iter().map(|s| s.id.as_str()).collect(),
        );
        let devices = check_ids(
            "devices",
            self.devices.iter().map(|s| s.id.as_str()).collect(),
        );
        for id in gateways.intersection(&devices) {
            errors.push(format!(
                "gateways: id `{id}` is also a device id; gateways and devices share one namespace"
            ));
        }
        let missing = |set: &HashSet<String>, v: &str| !set.contains(v);
        for (i, s) in self.streets.iter().enumerate() {
            if missing(&stations, &s.fallback_station) {
                errors.push(format!(
                    "streets[{i}].fallback_station: unknown station `{}`",
                    s.fallback_station
                ));
            }
        }
        for (i, c) in self.communities.iter().enumerate() {
            if missing(&streets, &c.street) {
                errors.push(format!(
                    "communities[{i}].street: unknown street `{}`",
                    c.street
                ));
            }
        }
        for (i, c) in self.compounds.iter().enumerate() {
            if missing(&communities, &c.community) {
                errors.push(format!(
                    "compounds[{i}].community: unknown community `{}`",
                    c.community
                ));
            }
            if let Some(st) = &c.station {
                if missing(&stations, st) {
                    errors.push(format!("compounds[{i}].station: unknown station `{st}`"));
                }
            }
        }
        for (i, b) in self.buildings.iter().enumerate() {
            if missing(&compounds, &b.compound) {
                errors.push(format!(
                    "buildings[{i}].compound: unknown compound `{}`",
                    b.compound
                ));
            }
        }
        let mut check_secret = |section: &str,
                                i: usize,
                                plain: &Option<String>,
                                hashed: &Option<String>,
                                required: bool| {
            match (plain, hashed) {
                (Some(_), Some(_)) => errors.push(format!(
                    "{section}[{i}]: set either `secret` or `secret_hash`, not both"
                )),
                (Some(s), None) if s.len() < 8 => errors.push(format!(
                    "{section}[{i}].secret: must be at least 8 characters"
                )),
                (None, Some(h)) if !secret::is_valid_hash(h) => errors.push(format!(
                    "{section}[{i}].secret_hash: not of the form sha256$<salt hex>$<digest hex>"
                )),
                (None, None) if required => errors.push(format!(
                    "{section}[{i}]: needs `secret` or `secret_hash` (or a `gateway`)"
                )),
                _ => {}
            }
        };
        for (i, g) in self.gateways.iter().enumerate() {
            check_secret("gateways", i, &g.secret, &g.secret_hash, true);
        }
        for (i, d) in self.devices.iter().enumerate() {
            check_secret("devices", i, &d.secret, &d.secret_hash, d.gateway.is_none());
        }
        for (i, g) in self.gateways.iter().enumerate() {
            if missing(&compounds, &g.compound) {
                errors.push(format!(
                    "gateways[{i}].compound: unknown compound `{}`",
                    g.compound
                ));
            }
        }
        for (i, d) in self.devices.iter().enumerate() {
            if missing(&buildings, &d.building) {
                errors.push(format!(
                    "devices[{i}].building: unknown building `{}`",
                    d.building
                ));
            }
            if let Some(g) = &d.gateway {
                if missing(&gateways, g) {
                    errors.push(format!("devices[{i}].gateway: unknown gateway `{g}`"));
                }
            }
            if d.report_interval_s == 0 || d.report_interval_s > 7 * 86_400 {
                errors.push(format!(
                    "devices[{i}].report_interval_s: must be between 1 and 604800"
                ));
            }
        }
        crate::people::validate_file(self, &mut errors);
        self.validate_windows(&mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(EstateError::Invalid(errors))
        }
    }
}

fn read_devices_csv(path: &Path) -> Result<Vec<DeviceDef>, EstateError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| EstateError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for (i, row) in reader.deserialize::<CsvDevice>().enumerate() {
        let row = row.map_err(|e| EstateError::Parse {
            path: path.to_path_buf(),
            message: format!("row {}: {e}", i + 1),
        })?;
        let kind = row.kind.parse().map_err(|e| EstateError::Parse {
            path: path.to_path_buf(),
            message: format!("row {}: kind: {e}", i + 1),
        })?;
        let non_empty = |s: String| if s.is_empty() { None } else { Some(s) };
        out.push(DeviceDef {
            id: row.id,
            kind,
            vendor: row.vendor,
            building: row.building,
            location: row.location,
            gateway: non_empty(row.gateway),
            secret: non_empty(row.secret),
            secret_hash: None,
            report_interval_s: row
                .report_interval_s
                .unwrap_or_else(default_report_interval),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[stations]]
id = "st-1"
name = "North station"

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

[[devices]]
id = "lift-1"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "lift-1-secret"
"#;

    #[test]
    fn parses_good_file() {
        let f = EstateFile::parse(GOOD).unwrap();
        assert_eq!(f.devices.len(), 1);
        assert_eq!(f.devices[0].report_interval_s, 60);
    }

    #[test]
    fn devices_from_csv() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "id,kind,vendor,building,location,gateway,secret,report_interval_s\n\
                   smoke-7,smoke,firesafe,b-1,attic,,smoke-7-secret,120\n\
                   gate-7,gate,portalis,b-1,north gate,,gate-7-secret,\n";
        std::fs::write(dir.path().join("devices.csv"), csv).unwrap();
        let toml = format!("devices_csv = \"devices.csv\"\n{GOOD}");
        std::fs::write(dir.path().join("estate.toml"), toml).unwrap();
        let f = EstateFile::load(&dir.path().join("estate.toml")).unwrap();
        assert_eq!(f.devices.len(), 3);
        let smoke = f.devices.iter().find(|d| d.id == "smoke-7").unwrap();
        assert_eq!(smoke.kind, DeviceKind::Smoke);
        assert_eq!(smoke.report_interval_s, 120);
        assert_eq!(
            f.devices
                .iter()
                .find(|d| d.id == "gate-7")
                .unwrap()
                .report_interval_s,
            60
        );
        std::fs::write(
            dir.path().join("devices.csv"),
            "id,kind,vendor,building\nx-1,fridge,v,b-1\n",
        )
        .unwrap();
        let e = EstateFile::load(&dir.path().join("estate.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("devices.csv") && e.contains("row 1") && e.contains("fridge"),
            "{e}"
        );
    }

    #[test]
    fn names_the_key_at_fault() {
        let bad = GOOD.replace("building = \"b-1\"", "building = \"b-9\"");
        let err = EstateFile::parse(&bad).unwrap_err().to_string();
        assert!(
            err.contains("devices[0].building: unknown building `b-9`"),
            "{err}"
        );
        let bad = GOOD.replace("kind = \"lift\"", "kind = \"fridge\"");
        let err = EstateFile::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("fridge"), "{err}");
        let bad = GOOD.replace("secret = \"lift-1-secret\"", "");
        let err = EstateFile::parse(&bad).unwrap_err().to_string();
        assert!(err.contains("devices[0]: needs `secret`"), "{err}");
    }
}
