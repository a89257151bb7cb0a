//! The ingest stage: device contract v1 (topic parsing, typed decoding per kind, units
//! and range validation), rejects with reasons, a durable on-disk spool of every accepted
//! row, and the QuestDB writer (ILP over HTTP, batched, flushed on size and interval) into
//! per-kind tables created at start-up.
//!
//! Ingest reads from the broker through an in-process link and hands decoded data to
//! downstream sinks (rules). It may not raise tickets, serve HTTP or change the estate.

mod config;
pub mod contract;
pub mod metrics;
pub mod outbox;
pub mod pipeline;
pub mod questdb;
pub mod reading;
pub mod spool;
pub mod writer;

pub use config::IngestConfig;
pub use metrics::IngestMetrics;
pub use pipeline::{DecodedSink, Ingest};
pub use reading::*;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("questdb start: {0}")]
    QuestDbStart(String),
    #[error("questdb query: {0}")]
    Query(String),
    #[error("questdb writer: {0}")]
    Writer(String),
    #[error("broker link: {0}")]
    Link(String),
    #[error("ingest.spool_dir: {0}")]
    Spool(String),
}
