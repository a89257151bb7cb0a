//! The storage stage: everything QuestDB. The table schemas (one table per device kind
//! from the metric catalogue, plus device events, status, rejects and ticket events), the
//! hourly and daily rollups of telemetry (materialized views), retention as TTLs, ILP
//! row encoding, a query client for `/exec`, the managed QuestDB process, and the durable
//! path to it: rows are appended to an on-disk spool first, sealed segments go to QuestDB
//! in order, and what QuestDB cannot take yet waits on disk, across restarts.
//!
//! Storage knows rows, not devices: it may not parse topics or payloads (the device
//! contract is ingest's), raise tickets or talk to MQTT. Callers hand it typed rows
//! ([`steward_estate::Reading`] and friends) or ILP bytes.

mod error;
mod metrics;
pub mod outbox;
pub mod questdb;
pub mod spool;
pub mod writer;

pub use error::StorageError;
pub use metrics::StorageMetrics;
pub use outbox::{Outbox, Refused};
pub use questdb::{QueryResult, QuestDbClient, QuestDbConfig, QuestDbMode};
pub use writer::{new_buffer, Buffer};
