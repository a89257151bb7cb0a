//! Run-time estate changes as data, so that the nodes of a cluster, each with its own
//! registry loaded from the same estate file, can replay what the API changed on another
//! node (devices registered, retired or given a new secret, tokens created or revoked,
//! maintenance windows created or deleted).
//!
//! A [`Change`] records the *result* of a mutation, never the request: secrets and tokens
//! are random, so re-running a request elsewhere would give another one. Every change
//! sets absolute values (a device change carries the device's whole row), so applying the
//! same ordered log on every node gives every node the same state, applying a change
//! twice is harmless, and a later change of the same thing overrides an earlier one whole.
//!
//! Once [`Registry::record_changes`] is called (on this database, by any process: it
//! stays on), each mutation writes its change to an
//! outbox table in the registry's own database, under the same lock as the mutation: a
//! change survives a crash before it was published, and [`Registry::apply_changes`] can
//! tell that a change from the log is older than a local one still waiting to be
//! published (it then skips it: the local one comes later in the log and wins anyway).
//! Moving changes between nodes is the caller's business (steward-cluster's `EstateSync`).

use crate::roles::{Role, TokenScope};
use crate::windows::MaintenanceWindow;
use crate::{DeviceKind, EstateError};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

pub(crate) const OUTBOX: &str = "
CREATE TABLE IF NOT EXISTS estate_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, change TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS estate_outbox_key ON estate_outbox(key);
";

/// One run-time mutation of the registry, by its result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// A device created or updated through the API, as it is afterwards.
    DeviceUpserted(DeviceRow),
    /// A device retired, as it is afterwards.
    DeviceRetired(DeviceRow),
    /// A device given a new secret, as it is afterwards (only the hash travels).
    SecretRotated(DeviceRow),
    /// An API token created; tokens are known across nodes by their hash (their ids are
    /// each database's own).
    TokenCreated(TokenRow),
    /// A token revoked at `revoked_ms` (a token revoked twice keeps the first time).
    TokenRevoked { hash: String, revoked_ms: i64 },
    /// A maintenance window created through the API.
    WindowCreated { window: MaintenanceWindow },
    /// A maintenance window deleted.
    WindowDeleted { id: String },
}

/// Whether this database records its changes: [`Registry::record_changes`] was called on
/// it once. Recording then goes on in every process that opens it, so that a token made
/// with `steward tokens create` on a cluster node's database reaches the other nodes too.
pub(crate) fn outbox_exists(conn: &Connection) -> Result<bool, EstateError> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='estate_outbox'",
            [],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// A device's stored row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRow {
    pub id: String,
    pub kind: DeviceKind,
    pub vendor: String,
    pub building: String,
    pub location: String,
    pub gateway: Option<String>,
    /// Hash of the device's secret (see [`crate::secret`]); never the plain secret.
    pub secret_hash: Option<String>,
    pub report_interval_s: u32,
    pub retired: bool,
}

/// A token's stored row, without its local id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRow {
    pub name: String,
    pub role: Role,
    pub scope: TokenScope,
    /// Hex SHA-256 of the token ([`crate::tokens::hash_token`]).
    pub hash: String,
    pub created_ms: i64,
    pub revoked_ms: Option<i64>,
}

impl Change {
    /// What the change is about: a later change with the same key supersedes this one.
    pub fn key(&self) -> String {
        match self {
            Change::DeviceUpserted(d) | Change::DeviceRetired(d) | Change::SecretRotated(d) => {
                format!("device:{}", d.id)
            }
            Change::TokenCreated(t) => format!("token:{}", t.hash),
            Change::TokenRevoked { hash, .. } => format!("token:{hash}"),
            Change::WindowCreated { window } => format!("window:{}", window.id),
            Change::WindowDeleted { id } => format!("window:{id}"),
        }
    }
}

/// What [`Registry::apply_changes`] did with a batch.
#[derive(Debug, Default)]
pub struct Applied {
    pub applied: usize,
    /// Older than a local change of the same thing still in the outbox.
    pub skipped: usize,
    /// Changes this registry refused (e.g. a device in a building it does not know), by
    /// their index in the batch; the rest of the batch is applied.
    pub failed: Vec<(usize, EstateError)>,
}

pub(crate) fn corrupt(e: serde_json::Error) -> EstateError {
    EstateError::Corrupt(format!("estate change: {e}"))
}

/// The row of device `id` as the registry holds it now.
pub(crate) fn device_row(conn: &Connection, id: &str) -> Result<DeviceRow, EstateError> {
    conn.query_row(
        "SELECT id, kind, vendor, building, location, gateway, secret_hash,
           report_interval_s, retired FROM devices WHERE id=?1",
        [id],
        |r| {
            let kind: String = r.get(1)?;
            let kind = kind.parse().map_err(|e: String| {
                rusqlite::Error::FromSqlConversionFailure(
                    1,
                    rusqlite::types::Type::Text,
                    Box::new(EstateError::Corrupt(e)),
                )
            })?;
            Ok(DeviceRow {
                id: r.get(0)?,
                kind,
                vendor: r.get(2)?,
                building: r.get(3)?,
                location: r.get(4)?,
                gateway: r.get(5)?,
                secret_hash: r.get(6)?,
                report_interval_s: r.get(7)?,
                retired: r.get::<_, i64>(8)? != 0,
            })
        },
    )
    .optional()?
    .ok_or_else(|| EstateError::NotFound(format!("device `{id}`")))
}

pub(crate) fn apply_one(conn: &Connection, c: &Change) -> Result<(), EstateError> {
    match c {
        Change::DeviceUpserted(d) | Change::DeviceRetired(d) | Change::SecretRotated(d) => {
            conn.execute(
                "INSERT INTO devices(id,kind,vendor,building,location,gateway,secret_hash,
                   report_interval_s,retired) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9)
                 ON CONFLICT(id) DO UPDATE SET kind=excluded.kind, vendor=excluded.vendor,
                   building=excluded.building, location=excluded.location,
                   gateway=excluded.gateway, secret_hash=excluded.secret_hash,
                   report_interval_s=excluded.report_interval_s, retired=excluded.retired",
                params![
                    d.id,
                    d.kind.as_str(),
                    d.vendor,
                    d.building,
                    d.location,
                    d.gateway,
                    d.secret_hash,
                    d.report_interval_s,
                    d.retired as i64
                ],
            )?;
        }
        Change::TokenCreated(t) => {
            let scope = serde_json::to_string(&t.scope).map_err(corrupt)?;
            conn.execute(
                "INSERT INTO api_tokens(name, role, scope, token_hash, created_ms, revoked_ms)
                 VALUES(?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(token_hash) DO UPDATE
                   SET revoked_ms = COALESCE(api_tokens.revoked_ms, excluded.revoked_ms)",
                params![
                    t.name,
                    t.role.as_str(),
                    scope,
                    t.hash,
                    t.created_ms,
                    t.revoked_ms
                ],
            )?;
        }
        Change::TokenRevoked { hash, revoked_ms } => {
            conn.execute(
                "UPDATE api_tokens SET revoked_ms = COALESCE(revoked_ms, ?2)
                 WHERE token_hash = ?1",
                params![hash, revoked_ms],
            )?;
        }
        Change::WindowCreated { window } => {
            crate::windows::insert(conn, window, true)?;
        }
        Change::WindowDeleted { id } => {
            conn.execute("DELETE FROM maintenance_windows WHERE id=?1", [id])?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
