//! Maintenance windows: a device, a building or a compound under planned work from one
//! time to another. During a window the rules stage does not open tickets from rules
//! that are not life-safety rules (see docs/maintenance-windows.md).
//!
//! Windows come from the estate file (`[[maintenance_windows]]`, re-applied at every load)
//! and from the API; both are kept in the registry database, and a read-only
//! [`WindowSet`] snapshot (like the [`crate::Directory`]) serves the rules' hot path.

use crate::clock::now_ms;
use crate::{validate_id, EstateError};
use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;
use rusqlite::{params, Connection, Transaction};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The estate's time zone when the estate file names none.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS maintenance_windows (
    id TEXT PRIMARY KEY, target_kind TEXT NOT NULL, target TEXT NOT NULL,
    from_ms INTEGER NOT NULL, to_ms INTEGER NOT NULL, reason TEXT NOT NULL,
    source TEXT NOT NULL, created_ms INTEGER NOT NULL, created_by TEXT
);
"#;

/// The time zone local window times are read in: the estate's `timezone` (IANA name;
/// `None` means [`DEFAULT_TIMEZONE`]), the same zone the on-call rotas use.
pub fn estate_offset(timezone: Option<&str>) -> Result<Tz, String> {
    let name = timezone.unwrap_or(DEFAULT_TIMEZONE);
    name.parse::<Tz>()
        .map_err(|_| format!("unknown time zone `{name}`"))
}

/// A window as written in the estate file or posted to the API.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WindowDef {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compound: Option<String>,
    /// RFC 3339 with an offset, or local `YYYY-MM-DDTHH:MM[:SS]` in the estate's zone.
    pub from: String,
    pub to: String,
    /// Required; optional here only so a missing one is reported with its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a window covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "id")]
pub enum WindowTarget {
    Device(String),
    Building(String),
    Compound(String),
}

impl WindowTarget {
    pub fn kind(&self) -> &'static str {
        match self {
            WindowTarget::Device(_) => "device",
            WindowTarget::Building(_) => "building",
            WindowTarget::Compound(_) => "compound",
        }
    }

    pub fn id(&self) -> &str {
        match self {
            WindowTarget::Device(s) | WindowTarget::Building(s) | WindowTarget::Compound(s) => s,
        }
    }

    fn from_parts(kind: &str, id: String) -> Option<WindowTarget> {
        match kind {
            "device" => Some(WindowTarget::Device(id)),
            "building" => Some(WindowTarget::Building(id)),
            "compound" => Some(WindowTarget::Compound(id)),
            _ => None,
        }
    }
}

/// Where a window came from: the estate file's are replaced at every load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowSource {
    File,
    Api,
}

impl WindowSource {
    pub fn as_str(self) -> &'static str {
        match self {
            WindowSource::File => "file",
            WindowSource::Api => "api",
        }
    }
}

/// A validated window, with its times in milliseconds since the epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub id: String,
    pub target: WindowTarget,
    pub from_ms: i64,
    pub to_ms: i64,
    pub reason: String,
    pub source: WindowSource,
    /// Name of the API token that created it (API windows only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl MaintenanceWindow {
    /// Whether the window is open at `ts_ms` (from inclusive, to exclusive).
    pub fn open_at(&self, ts_ms: i64) -> bool {
        self.from_ms <= ts_ms && ts_ms < self.to_ms
    }
}

/// Read a window time: RFC 3339 with an offset, or a local time in `offset`.
pub fn parse_time(s: &str, offset: Tz) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return offset
                .from_local_datetime(&n)
                .single()
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| format!("`{s}` is not a valid local time"));
        }
    }
    Err(format!(
        "`{s}` is neither RFC 3339 with an offset (2026-05-01T09:00:00+08:00) nor a local \
         time YYYY-MM-DDTHH:MM"
    ))
}

/// Checks a window's own fields and, through `known`, that its target exists. Errors
/// name the key, prefixed with `prefix` (`maintenance_windows[2].` in the file, empty in
/// the API).
pub fn check(
    def: &WindowDef,
    prefix: &str,
    offset: Tz,
    known: &dyn Fn(&WindowTarget) -> bool,
    source: WindowSource,
) -> Result<MaintenanceWindow, Vec<String>> {
    let mut errors = Vec::new();
    if let Err(e) = validate_id(&def.id) {
        errors.push(format!("{prefix}id: {e}"));
    }
    let mut targets = Vec::new();
    if let Some(d) = &def.device {
        targets.push(WindowTarget::Device(d.clone()));
    }
    if let Some(b) = &def.building {
        targets.push(WindowTarget::Building(b.clone()));
    }
    if let Some(c) = &def.compound {
        targets.push(WindowTarget::Compound(c.clone()));
    }
    let target = match targets.len() {
        1 => targets.pop(),
        0 => {
            errors.push(format!(
                "{prefix}device: set exactly one of `device`, `building` or `compound`"
            ));
            None
        }
        _ => {
            errors.push(format!(
                "{prefix}{}: set only one of `device`, `building` or `compound`",
                targets[1].kind()
            ));
            None
        }
    };
    if let Some(t) = &target {
        if !known(t) {
            errors.push(format!(
                "{prefix}{}: unknown {} `{}`",
                t.kind(),
                t.kind(),
                t.id()
            ));
        }
    }
    let from = parse_time(&def.from, offset).map_err(|e| errors.push(format!("{prefix}from: {e}")));
    let to = parse_time(&def.to, offset).map_err(|e| errors.push(format!("{prefix}to: {e}")));
    if let (Ok(f), Ok(t)) = (from, to) {
        if t <= f {
            errors.push(format!("{prefix}to: must be after `from`"));
        }
    }
    let reason = def.reason.as_deref().map(str::trim).unwrap_or_default();
    if reason.is_empty() {
        errors.push(format!(
            "{prefix}reason: missing (say why the window is open)"
        ));
    } else if reason.len() > 500 {
        errors.push(format!("{prefix}reason: at most 500 characters"));
    }
    match (target, from, to) {
        (Some(target), Ok(from_ms), Ok(to_ms)) if errors.is_empty() => Ok(MaintenanceWindow {
            id: def.id.clone(),
            target,
            from_ms,
            to_ms,
            reason: reason.to_string(),
            source,
            created_by: None,
        }),
        _ => Err(errors),
    }
}

/// Validate the estate file's windows (`maintenance_windows`, local times in
/// `timezone`); `known` says whether a target is defined by the file. Called from
/// [`EstateFile::validate`](crate::file::EstateFile::validate), which owns the ids.
pub(crate) fn validate_defs(
    defs: &[WindowDef],
    timezone: Option<&str>,
    known: &dyn Fn(&WindowTarget) -> bool,
    errors: &mut Vec<String>,
) {
    // A bad `timezone` is reported once, by the people's checks.
    let Ok(offset) = estate_offset(timezone) else {
        return;
    };
    let mut seen = HashSet::new();
    for (i, w) in defs.iter().enumerate() {
        let prefix = format!("maintenance_windows[{i}].");
        if let Err(e) = check(w, &prefix, offset, known, WindowSource::File) {
            errors.extend(e);
        }
        if !seen.insert(w.id.as_str()) {
            errors.push(format!("{prefix}id: duplicate id `{}`", w.id));
        }
    }
}

/// Replace the file's windows in the registry (inside `Registry::apply`'s transaction):
/// a window removed from the file is gone after the next load; API windows are kept.
pub(crate) fn apply_defs(
    tx: &Transaction<'_>,
    defs: &[WindowDef],
    timezone: Option<&str>,
) -> Result<(), EstateError> {
    let offset = estate_offset(timezone).map_err(|e| EstateError::Invalid(vec![e]))?;
    tx.execute("DELETE FROM maintenance_windows WHERE source='file'", [])?;
    for (i, def) in defs.iter().enumerate() {
        let prefix = format!("maintenance_windows[{i}].");
        let w = check(def, &prefix, offset, &|_| true, WindowSource::File)
            .map_err(EstateError::Invalid)?;
        insert(tx, &w, true)?;
    }
    Ok(())
}

pub(crate) fn insert(
    conn: &Connection,
    w: &MaintenanceWindow,
    replace: bool,
) -> rusqlite::Result<usize> {
    let verb = if replace {
        "INSERT OR REPLACE"
    } else {
        "INSERT"
    };
    conn.execute(
        &format!(
            "{verb} INTO maintenance_windows(id,target_kind,target,from_ms,to_ms,reason,source,
               created_ms,created_by) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)"
        ),
        params![
            w.id,
            w.target.kind(),
            w.target.id(),
            w.from_ms,
            w.to_ms,
            w.reason,
            w.source.as_str(),
            now_ms(),
            w.created_by
        ],
    )
}

pub(crate) fn load(conn: &Connection) -> Result<WindowSet, EstateError> {
    let mut stmt = conn.prepare(
        "SELECT id, target_kind, target, from_ms, to_ms, reason, source, created_by
         FROM maintenance_windows ORDER BY from_ms, id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let kind: String = r.get(1)?;
        let target = WindowTarget::from_parts(&kind, r.get(2)?)
            .ok_or_else(|| EstateError::Corrupt(format!("window target kind `{kind}`")))?;
        let source = match r.get::<_, String>(6)?.as_str() {
            "file" => WindowSource::File,
            _ => WindowSource::Api,
        };
        out.push(MaintenanceWindow {
            id: r.get(0)?,
            target,
            from_ms: r.get(3)?,
            to_ms: r.get(4)?,
            reason: r.get(5)?,
            source,
            created_by: r.get(7)?,
        });
    }
    Ok(WindowSet::new(out))
}

/// Immutable snapshot of every window, indexed by what it covers.
#[derive(Debug, Default)]
pub struct WindowSet {
    windows: Vec<Arc<MaintenanceWindow>>,
    by_target: HashMap<WindowTarget, Vec<usize>>,
}

impl WindowSet {
    pub fn new(windows: Vec<MaintenanceWindow>) -> WindowSet {
        let windows: Vec<Arc<MaintenanceWindow>> = windows.into_iter().map(Arc::new).collect();
        let mut by_target: HashMap<WindowTarget, Vec<usize>> = HashMap::new();
        for (i, w) in windows.iter().enumerate() {
            by_target.entry(w.target.clone()).or_default().push(i);
        }
        WindowSet { windows, by_target }
    }

    pub fn all(&self) -> &[Arc<MaintenanceWindow>] {
        &self.windows
    }

    pub fn get(&self, id: &str) -> Option<&Arc<MaintenanceWindow>> {
        self.windows.iter().find(|w| w.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// The window open at `ts_ms` over the device itself, its building or its compound
    /// (the one closing last when several are), if any.
    pub fn covering(
        &self,
        device: &str,
        building: &str,
        compound: &str,
        ts_ms: i64,
    ) -> Option<&Arc<MaintenanceWindow>> {
        if self.windows.is_empty() {
            return None;
        }
        let targets = [
            WindowTarget::Device(device.to_string()),
            WindowTarget::Building(building.to_string()),
            WindowTarget::Compound(compound.to_string()),
        ];
        targets
            .iter()
            .filter_map(|t| self.by_target.get(t))
            .flatten()
            .map(|i| &self.windows[*i])
            .filter(|w| w.open_at(ts_ms))
            .max_by_key(|w| (w.to_ms, std::cmp::Reverse(w.id.clone())))
    }
}

#[cfg(test)]
#[path = "windows_tests.rs"]
mod tests;
