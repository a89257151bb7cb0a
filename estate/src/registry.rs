//! The estate registry: SQLite is the source of truth; a read-optimised [`Directory`]
//! snapshot serves the hot paths (broker authentication, ingest lookups) without touching
//! the database per message.

use crate::file::EstateFile;
use crate::{secret, validate_id, DeviceKind, EstateError};
use parking_lot::{Mutex, RwLock};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS stations (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, phone TEXT
);
CREATE TABLE IF NOT EXISTS streets (
    id TEXT PRIMARY KEY, name TEXT NOT NULL,
    fallback_station TEXT NOT NULL REFERENCES stations(id)
);
CREATE TABLE IF NOT EXISTS communities (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, street TEXT NOT NULL REFERENCES streets(id)
);
CREATE TABLE IF NOT EXISTS compounds (
    id TEXT PRIMARY KEY, name TEXT NOT NULL,
    community TEXT NOT NULL REFERENCES communities(id),
    property_company TEXT, station TEXT REFERENCES stations(id)
);
CREATE TABLE IF NOT EXISTS buildings (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, compound TEXT NOT NULL REFERENCES compounds(id)
);
CREATE TABLE IF NOT EXISTS gateways (
    id TEXT PRIMARY KEY, vendor TEXT NOT NULL,
    compound TEXT NOT NULL REFERENCES compounds(id),
    secret_hash TEXT NOT NULL, retired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, vendor TEXT NOT NULL,
    building TEXT NOT NULL REFERENCES buildings(id), location TEXT NOT NULL DEFAULT '',
    gateway TEXT REFERENCES gateways(id), secret_hash TEXT,
    report_interval_s INTEGER NOT NULL, retired INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, role TEXT NOT NULL,
    scope TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL,
    revoked_ms INTEGER
);
"#;

/// What the hot paths need to know of a device.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DeviceInfo {
    pub id: Arc<str>,
    pub kind: DeviceKind,
    pub vendor: String,
    pub building: String,
    pub compound: Arc<str>,
    pub location: String,
    pub gateway: Option<String>,
    pub report_interval_s: u32,
    pub retired: bool,
    /// Station responsible for the device's compound (property company or street fall-back).
    pub station: String,
    #[serde(skip)]
    pub secret_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GatewayInfo {
    pub id: String,
    pub compound: String,
    pub secret_hash: String,
    pub retired: bool,
}

/// Result of checking MQTT credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Device,
    Gateway,
    UnknownClient,
    BadSecret,
    Retired,
}

impl AuthOutcome {
    pub fn reason(self) -> &'static str {
        match self {
            AuthOutcome::Device | AuthOutcome::Gateway => "ok",
            AuthOutcome::UnknownClient => "unknown_client",
            AuthOutcome::BadSecret => "bad_secret",
            AuthOutcome::Retired => "retired",
        }
    }
}

/// Where a compound sits and who answers for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundInfo {
    pub id: String,
    pub street: String,
    /// Responsible station (property company's, or the street's fall-back).
    pub station: String,
}

/// Immutable snapshot of devices, gateways and compounds.
#[derive(Debug, Default)]
pub struct Directory {
    pub devices: HashMap<String, DeviceInfo>,
    pub gateways: HashMap<String, GatewayInfo>,
    pub compounds: HashMap<String, CompoundInfo>,
}

impl Directory {
    pub fn device(&self, id: &str) -> Option<&DeviceInfo> {
        self.devices.get(id)
    }

    pub fn authenticate(&self, username: &str, password: &str) -> AuthOutcome {
        if let Some(d) = self.devices.get(username) {
            return match &d.secret_hash {
                _ if d.retired => AuthOutcome::Retired,
                Some(h) if secret::verify_secret(password, h) => AuthOutcome::Device,
                _ => AuthOutcome::BadSecret,
            };
        }
        if let Some(g) = self.gateways.get(username) {
            return if g.retired {
                AuthOutcome::Retired
            } else if secret::verify_secret(password, &g.secret_hash) {
                AuthOutcome::Gateway
            } else {
                AuthOutcome::BadSecret
            };
        }
        AuthOutcome::UnknownClient
    }
}

/// Fields of a device created or updated through the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceUpsert {
    pub id: String,
    pub kind: DeviceKind,
    pub vendor: String,
    pub building: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default = "sixty")]
    pub report_interval_s: u32,
}

fn sixty() -> u32 {
    60
}

#[derive(Debug, Clone, Serialize)]
pub struct CompoundSummary {
    pub id: String,
    pub name: String,
    pub community: String,
    pub street: String,
    pub station: String,
    pub buildings: usize,
    pub devices: usize,
}

/// Display names by id (see [`Registry::place_names`]).
#[derive(Debug, Clone, Default)]
pub struct PlaceNames {
    pub stations: HashMap<String, String>,
    pub streets: HashMap<String, String>,
    pub communities: HashMap<String, String>,
    pub compounds: HashMap<String, String>,
    pub buildings: HashMap<String, String>,
}

/// The registry: one SQLite connection behind a mutex (SQLite serialises writers anyway)
/// and the current directory snapshot.
#[derive(Clone)]
pub struct Registry {
    pub(crate) conn: Arc<Mutex<Connection>>,
    directory: Arc<RwLock<Arc<Directory>>>,
    people: Arc<RwLock<Arc<crate::people::People>>>,
    /// Maintenance windows (estate/src/windows.rs), refreshed when they change.
    windows: Arc<RwLock<Arc<crate::windows::WindowSet>>>,
    /// Whether mutations record their changes (estate/src/changes.rs).
    pub(crate) record_changes: Arc<std::sync::atomic::AtomicBool>,
}

impl Registry {
    pub fn open(path: &Path) -> Result<Registry, EstateError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    pub fn open_in_memory() -> Result<Registry, EstateError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Registry, EstateError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(crate::people::store::SCHEMA)?;
        conn.execute_batch(crate::windows::SCHEMA)?;
        let recording = crate::changes::outbox_exists(&conn)?;
        let reg = Registry {
            conn: Arc::new(Mutex::new(conn)),
            directory: Arc::new(RwLock::new(Arc::new(Directory::default()))),
            people: Arc::new(RwLock::new(Arc::new(crate::people::People::default()))),
            windows: Arc::default(),
            record_changes: Arc::new(recording.into()),
        };
        reg.reload()?;
        reg.reload_windows()?;
        Ok(reg)
    }

    /// Current snapshot; cheap to call per message.
    pub fn directory(&self) -> Arc<Directory> {
        self.directory.read().clone()
    }

    /// Current people snapshot (crews, rotas, captains, escalation tiers), rebuilt
    /// whenever the estate is applied or reloaded.
    pub fn people(&self) -> Arc<crate::people::People> {
        self.people.read().clone()
    }

    /// Upsert everything in an estate file in one transaction. Secrets given in plain are
    /// hashed. The file seeds the registry: what changed through the API since (a rotated
    /// secret, a retirement) is kept when the file is applied again at the next start.
    pub fn apply(&self, file: &EstateFile) -> Result<(), EstateError> {
        file.validate()?;
        {
            let mut conn = self.conn.lock();
            let tx = conn.transaction()?;
            for s in &file.stations {
                tx.execute(
                    "INSERT INTO stations(id,name,phone) VALUES(?1,?2,?3)
                     ON CONFLICT(id) DO UPDATE SET name=excluded.name, phone=excluded.phone",
                    params![s.id, s.name, s.phone],
                )?;
            }
            for s in &file.streets {
                tx.execute(
                    "INSERT INTO streets(id,name,fallback_station) VALUES(?1,?2,?3)
                     ON CONFLICT(id) DO UPDATE SET name=excluded.name,
                       fallback_station=excluded.fallback_station",
                    params![s.id, s.name, s.fallback_station],
                )?;
            }
            for c in &file.communities {
                tx.execute(
                    "INSERT INTO communities(id,name,street) VALUES(?1,?2,?3)
                     ON CONFLICT(id) DO UPDATE SET name=excluded.name, street=excluded.street",
                    params![c.id, c.name, c.street],
                )?;
            }
            for c in &file.compounds {
                tx.execute(
                    "INSERT INTO compounds(id,name,community,property_company,station)
                     VALUES(?1,?2,?3,?4,?5)
                     ON CONFLICT(id) DO UPDATE SET name=excluded.name,
                       community=excluded.community, property_company=excluded.property_company,
                       station=excluded.station",
                    params![c.id, c.name, c.community, c.property_company, c.station],
                )?;
            }
            for b in &file.buildings {
                tx.execute(
                    "INSERT INTO buildings(id,name,compound) VALUES(?1,?2,?3)
                     ON CONFLICT(id) DO UPDATE SET name=excluded.name, compound=excluded.compound",
                    params![b.id, b.name, b.compound],
                )?;
            }
            for g in &file.gateways {
                let hash = g
                    .secret
                    .as_deref()
                    .map(secret::hash_secret)
                    .or_else(|| g.secret_hash.clone());
                tx.execute(
                    "INSERT INTO gateways(id,vendor,compound,secret_hash) VALUES(?1,?2,?3,?4)
                     ON CONFLICT(id) DO UPDATE SET vendor=excluded.vendor,
                       compound=excluded.compound",
                    params![g.id, g.vendor, g.compound, hash],
                )?;
            }
            for d in &file.devices {
                let hash = d
                    .secret
                    .as_deref()
                    .map(secret::hash_secret)
                    .or_else(|| d.secret_hash.clone());
                tx.execute(
                    "INSERT INTO devices(id,kind,vendor,building,location,gateway,secret_hash,
                       report_interval_s) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)
                     ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, vendor=excluded.vendor,
                       building=excluded.building, location=excluded.location,
                       gateway=excluded.gateway,
                       secret_hash=COALESCE(devices.secret_hash, excluded.secret_hash),
                       report_interval_s=excluded.report_interval_s",
                    params![
                        d.id,
                        d.kind.as_str(),
                        d.vendor,
                        d.building,
                        d.location,
                        d.gateway,
                        hash,
                        d.report_interval_s
                    ],
                )?;
            }
            crate::people::store::write(&tx, file)?;
            crate::windows::apply_defs(&tx, &file.maintenance_windows, file.timezone.as_deref())?;
            tx.commit()?;
        }
        self.reload_windows()?;
        self.reload()
    }

    /// Create or update one device. Returns the new plain secret when one was issued
    /// (new devices that do not publish through a gateway).
    pub fn upsert_device(&self, d: &DeviceUpsert) -> Result<Option<String>, EstateError> {
        let mut errors = Vec::new();
        if let Err(e) = validate_id(&d.id) {
            errors.push(format!("id: {e}"));
        }
        if d.report_interval_s == 0 || d.report_interval_s > 7 * 86_400 {
            errors.push("report_interval_s: must be between 1 and 604800".to_string());
        }
        if !errors.is_empty() {
            return Err(EstateError::Invalid(errors));
        }
        let issued;
        {
            let conn = self.conn.lock();
            let exists = |sql: &str, v: &str| -> Result<bool, rusqlite::Error> {
                conn.query_row(sql, [v], |_| Ok(()))
                    .optional()
                    .map(|o| o.is_some())
            };
            if !exists("SELECT 1 FROM buildings WHERE id=?1", &d.building)? {
                errors.push(format!("building: unknown building `{}`", d.building));
            }
            if let Some(g) = &d.gateway {
                if !exists("SELECT 1 FROM gateways WHERE id=?1", g)? {
                    errors.push(format!("gateway: unknown gateway `{g}`"));
                }
            }
            if exists("SELECT 1 FROM gateways WHERE id=?1", &d.id)? {
                errors.push(format!("id: `{}` is a gateway id", d.id));
            }
            if !errors.is_empty() {
                return Err(EstateError::Invalid(errors));
            }
            let existing: Option<Option<String>> = conn
                .query_row(
                    "SELECT secret_hash FROM devices WHERE id=?1",
                    [&d.id],
                    |r| r.get(0),
                )
                .optional()?;
            let needs_secret = d.gateway.is_none() && existing.as_ref().is_none_or(|h| h.is_none());
            issued = needs_secret.then(secret::generate_secret);
            let hash = issued.as_deref().map(secret::hash_secret);
            conn.execute(
                "INSERT INTO devices(id,kind,vendor,building,location,gateway,secret_hash,
                   report_interval_s) VALUES(?1,?2,?3,?4,?5,?6,?7,?8)
                 ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, vendor=excluded.vendor,
                   building=excluded.building, location=excluded.location,
                   gateway=excluded.gateway,
                   secret_hash=COALESCE(excluded.secret_hash, devices.secret_hash),
                   report_interval_s=excluded.report_interval_s, retired=0",
                params![
                    d.id,
                    d.kind.as_str(),
                    d.vendor,
                    d.building,
                    d.location,
                    d.gateway,
                    hash,
                    d.report_interval_s
                ],
            )?;
            self.record(&conn, || {
                crate::changes::device_row(&conn, &d.id).map(crate::changes::Change::DeviceUpserted)
            })?;
        }
        self.reload()?;
        Ok(issued)
    }

    /// Retire a device: it can no longer connect and its messages are rejected.
    pub fn retire_device(&self, id: &str) -> Result<(), EstateError> {
        {
            let conn = self.conn.lock();
            let n = conn.execute("UPDATE devices SET retired=1 WHERE id=?1", [id])?;
            if n == 0 {
                return Err(EstateError::NotFound(format!("device `{id}`")));
            }
            self.record(&conn, || {
                crate::changes::device_row(&conn, id).map(crate::changes::Change::DeviceRetired)
            })?;
        }
        self.reload()
    }

    /// Issue a new secret for a device; the old one stops working at once.
    pub fn rotate_secret(&self, id: &str) -> Result<String, EstateError> {
        let plain = secret::generate_secret();
        {
            let conn = self.conn.lock();
            let n = conn.execute(
                "UPDATE devices SET secret_hash=?2 WHERE id=?1",
                params![id, secret::hash_secret(&plain)],
            )?;
            if n == 0 {
                return Err(EstateError::NotFound(format!("device `{id}`")));
            }
            self.record(&conn, || {
                crate::changes::device_row(&conn, id).map(crate::changes::Change::SecretRotated)
            })?;
        }
        self.reload()?;
        Ok(plain)
    }

    pub fn compounds(&self) -> Result<Vec<CompoundSummary>, EstateError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare(
            "SELECT c.id, c.name, c.community, s.id, COALESCE(c.station, s.fallback_station),
               (SELECT COUNT(*) FROM buildings b WHERE b.compound=c.id),
               (SELECT COUNT(*) FROM devices d JOIN buildings b ON d.building=b.id
                  WHERE b.compound=c.id AND d.retired=0)
             FROM compounds c JOIN communities m ON c.community=m.id
               JOIN streets s ON m.street=s.id ORDER BY c.id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(CompoundSummary {
                id: r.get(0)?,
                name: r.get(1)?,
                community: r.get(2)?,
                street: r.get(3)?,
                station: r.get(4)?,
                buildings: r.get::<_, i64>(5)? as usize,
                devices: r.get::<_, i64>(6)? as usize,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The display name of every station, street, community, compound and building, so
    /// the API can show names next to the ids it keeps in tickets and devices.
    pub fn place_names(&self) -> Result<PlaceNames, EstateError> {
        let conn = self.conn.lock();
        let read = |table: &str| -> Result<HashMap<String, String>, EstateError> {
            // `table` is one of the fixed names below, never input.
            let mut stmt = conn.prepare(&format!("SELECT id, name FROM {table}"))?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        };
        Ok(PlaceNames {
            stations: read("stations")?,
            streets: read("streets")?,
            communities: read("communities")?,
            compounds: read("compounds")?,
            buildings: read("buildings")?,
        })
    }

    pub(crate) fn windows_snapshot(&self) -> Arc<crate::windows::WindowSet> {
        self.windows.read().clone()
    }

    /// Rebuild the maintenance windows snapshot from SQLite.
    pub fn reload_windows(&self) -> Result<(), EstateError> {
        let set = crate::windows::load(&self.conn.lock())?;
        *self.windows.write() = Arc::new(set);
        Ok(())
    }

    /// Rebuild the directory snapshot from SQLite.
    pub fn reload(&self) -> Result<(), EstateError> {
        let dir = {
            let conn = self.conn.lock();
            let mut devices = HashMap::new();
            let mut stmt = conn.prepare(
                "SELECT d.id, d.kind, d.vendor, d.building, b.compound, d.location, d.gateway,
                   d.report_interval_s, d.retired, COALESCE(c.station, s.fallback_station),
                   d.secret_hash
                 FROM devices d JOIN buildings b ON d.building=b.id
                   JOIN compounds c ON b.compound=c.id JOIN communities m ON c.community=m.id
                   JOIN streets s ON m.street=s.id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let kind: String = r.get(1)?;
                let kind = kind.parse().map_err(EstateError::Corrupt)?;
                let info = DeviceInfo {
                    id: Arc::from(r.get::<_, String>(0)?),
                    kind,
                    vendor: r.get(2)?,
                    building: r.get(3)?,
                    compound: Arc::from(r.get::<_, String>(4)?),
                    location: r.get(5)?,
                    gateway: r.get(6)?,
                    report_interval_s: r.get(7)?,
                    retired: r.get::<_, i64>(8)? != 0,
                    station: r.get(9)?,
                    secret_hash: r.get(10)?,
                };
                devices.insert(info.id.to_string(), info);
            }
            let mut gateways = HashMap::new();
            let mut stmt =
                conn.prepare("SELECT id, compound, secret_hash, retired FROM gateways")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let g = GatewayInfo {
                    id: r.get(0)?,
                    compound: r.get(1)?,
                    secret_hash: r.get(2)?,
                    retired: r.get::<_, i64>(3)? != 0,
                };
                gateways.insert(g.id.clone(), g);
            }
            let mut compounds = HashMap::new();
            let mut stmt = conn.prepare(
                "SELECT c.id, s.id, COALESCE(c.station, s.fallback_station)
                 FROM compounds c JOIN communities m ON c.community=m.id
                   JOIN streets s ON m.street=s.id",
            )?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let c = CompoundInfo {
                    id: r.get(0)?,
                    street: r.get(1)?,
                    station: r.get(2)?,
                };
                compounds.insert(c.id.clone(), c);
            }
            Directory {
                devices,
                gateways,
                compounds,
            }
        };
        let people = crate::people::store::load(&self.conn.lock())?;
        *self.directory.write() = Arc::new(dir);
        *self.people.write() = Arc::new(people);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn estate() -> EstateFile {
        EstateFile::parse(
            r#"
[[stations]]
id = "st-1"
name = "North"
[[stations]]
id = "st-2"
name = "Company station"
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
[[compounds]]
id = "cmp-2"
name = "Oak Court"
community = "com-1"
property_company = "Acme PM"
station = "st-2"
[[buildings]]
id = "b-1"
name = "Block 1"
compound = "cmp-1"
[[buildings]]
id = "b-2"
name = "Block 2"
compound = "cmp-2"
[[gateways]]
id = "gw-1"
vendor = "acme"
compound = "cmp-2"
secret = "gateway-secret"
[[devices]]
id = "lift-1"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "lift-1-secret"
[[devices]]
id = "pump-1"
kind = "pump"
vendor = "acme"
building = "b-2"
gateway = "gw-1"
"#,
        )
        .unwrap()
    }

    #[test]
    fn place_names_by_id() {
        let reg = Registry::open_in_memory().unwrap();
        reg.apply(&estate()).unwrap();
        let n = reg.place_names().unwrap();
        assert_eq!(n.stations["st-2"], "Company station");
        assert_eq!(n.streets["street-1"], "Riverside");
        assert_eq!(n.communities["com-1"], "Elm");
        assert_eq!(n.compounds["cmp-2"], "Oak Court");
        assert_eq!(n.buildings["b-1"], "Block 1");
    }

    #[test]
    fn routing_and_auth() {
        let reg = Registry::open_in_memory().unwrap();
        reg.apply(&estate()).unwrap();
        let dir = reg.directory();
        assert_eq!(
            dir.device("lift-1").unwrap().station,
            "st-1",
            "street fall-back"
        );
        assert_eq!(
            dir.device("pump-1").unwrap().station,
            "st-2",
            "property company"
        );
        assert_eq!(
            dir.authenticate("lift-1", "lift-1-secret"),
            AuthOutcome::Device
        );
        assert_eq!(dir.authenticate("lift-1", "nope"), AuthOutcome::BadSecret);
        assert_eq!(
            dir.authenticate("gw-1", "gateway-secret"),
            AuthOutcome::Gateway
        );
        assert_eq!(
            dir.authenticate("pump-1", ""),
            AuthOutcome::BadSecret,
            "no secret"
        );
        assert_eq!(dir.authenticate("ghost", "x"), AuthOutcome::UnknownClient);
    }

    #[test]
    fn rotate_and_retire_persist() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("estate.db");
        let reg = Registry::open(&path).unwrap();
        reg.apply(&estate()).unwrap();
        let new = reg.rotate_secret("lift-1").unwrap();
        drop(reg);
        let reg = Registry::open(&path).unwrap();
        let dir = reg.directory();
        assert_eq!(dir.authenticate("lift-1", &new), AuthOutcome::Device);
        assert_eq!(
            dir.authenticate("lift-1", "lift-1-secret"),
            AuthOutcome::BadSecret
        );
        reg.retire_device("lift-1").unwrap();
        assert_eq!(
            reg.directory().authenticate("lift-1", &new),
            AuthOutcome::Retired
        );
        assert!(reg.retire_device("ghost").is_err());
    }

    #[test]
    fn api_upsert_issues_secret_and_checks_refs() {
        let reg = Registry::open_in_memory().unwrap();
        reg.apply(&estate()).unwrap();
        let up = DeviceUpsert {
            id: "gate-9".into(),
            kind: DeviceKind::Gate,
            vendor: "acme".into(),
            building: "b-1".into(),
            location: "north gate".into(),
            gateway: None,
            report_interval_s: 30,
        };
        let secret = reg.upsert_device(&up).unwrap().unwrap();
        assert_eq!(
            reg.directory().authenticate("gate-9", &secret),
            AuthOutcome::Device
        );
        assert!(
            reg.upsert_device(&up).unwrap().is_none(),
            "update keeps secret"
        );
        let bad = DeviceUpsert {
            building: "nowhere".into(),
            ..up
        };
        let err = reg.upsert_device(&bad).unwrap_err().to_string();
        assert!(err.contains("building: unknown building"), "{err}");
        assert_eq!(reg.compounds().unwrap().len(), 2);
    }
}

#[cfg(test)]
mod reapply_tests {
    use super::*;

    #[test]
    fn reapplying_the_file_keeps_api_changes() {
        let file = EstateFile::parse(
            r#"
[[stations]]
id = "st-1"
name = "North"
[[streets]]
id = "s-1"
name = "Riverside"
fallback_station = "st-1"
[[communities]]
id = "c-1"
name = "Elm"
street = "s-1"
[[compounds]]
id = "cmp-1"
name = "Elm Court"
community = "c-1"
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
[[devices]]
id = "lift-2"
kind = "lift"
vendor = "acme"
building = "b-1"
secret = "lift-2-secret"
"#,
        )
        .unwrap();
        let reg = Registry::open_in_memory().unwrap();
        reg.apply(&file).unwrap();
        let rotated = reg.rotate_secret("lift-1").unwrap();
        reg.retire_device("lift-2").unwrap();
        reg.apply(&file).unwrap();
        let dir = reg.directory();
        assert_eq!(dir.authenticate("lift-1", &rotated), AuthOutcome::Device);
        assert_eq!(
            dir.authenticate("lift-2", "lift-2-secret"),
            AuthOutcome::Retired
        );
    }
}
