//! The ingest stage: device contract v1 (topic parsing, typed decoding per kind, units
//! and range validation) and rejects with reasons. Every accepted row and every reject is
//! encoded for QuestDB and handed to storage's outbox (spool first, then QuestDB); the
//! decoded message goes to the downstream [`DecodedSink`]s (device state, rules).
//!
//! Ingest reads from the broker through an in-process link. It may not raise tickets,
//! serve HTTP, change the estate, or know how rows are kept (that is `steward-storage`).

mod config;
pub mod contract;
pub mod metrics;
pub mod pipeline;

pub use config::{AckMode, IngestConfig};
pub use metrics::IngestMetrics;
pub use pipeline::Ingest;
pub use steward_estate::model::*;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The ingest thread could not be started.
    #[error("ingest: cannot start thread: {source}")]
    Thread { source: std::io::Error },
    /// The spool (or the writer behind it) could not be opened.
    #[error("ingest.spool_dir: {source}")]
    Spool {
        #[source]
        source: steward_storage::StorageError,
    },
}
