//! Steward's domain: device kinds, the metric catalogue of device contract v1, the estate
//! file (stations, streets, communities, compounds, buildings, gateways, devices, and the
//! people to reach: crews, on-call rotas, captains, duty officers), the estate registry
//! kept in SQLite, maintenance windows, and the API's access tokens (roles and scopes over
//! that estate, stored hashed in the same database).
//!
//! This crate is shared by every stage; it may not depend on any of them, talk to MQTT or
//! QuestDB, or hold tickets.

pub mod catalog;
mod change_store;
pub mod changes;
pub mod clock;
pub mod file;
pub mod inbound;
mod kind;
pub mod model;
pub mod people;
pub mod registry;
mod roles;
pub mod schema;
pub mod secret;
pub mod tokens;
mod window_store;
pub mod windows;

pub use file::EstateFile;
pub use kind::{validate_id, DeviceKind};
pub use model::{
    Decoded, DecodedSink, DeviceEvent, Reading, Reject, RejectReason, Status, StatusChange, Value,
};
pub use people::{People, Person};
pub use registry::{AuthOutcome, CompoundInfo, DeviceInfo, DeviceUpsert, Directory, Registry};
pub use tokens::{IssuedToken, NewToken, Role, TokenInfo, TokenScope};
pub use windows::{MaintenanceWindow, WindowDef, WindowSet, WindowSource, WindowTarget};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EstateError {
    // The io error is part of the message, not a `source`, so a printed error chain says
    // it once.
    #[error("cannot read {path}: {error}")]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("cannot parse {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid estate: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// [`EstateError::Invalid`] of a file read from disk, naming the file.
    #[error("invalid estate file {}: {}", path.display(), errors.join("; "))]
    InvalidFile { path: PathBuf, errors: Vec<String> },
    #[error("{0} not found")]
    NotFound(String),
    #[error("estate database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("estate database holds an invalid value: {0}")]
    Corrupt(String),
}
