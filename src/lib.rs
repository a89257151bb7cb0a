//! The `steward` hub: configuration, the wiring of broker -> ingest -> (QuestDB, rules)
//! -> API into one process, and the demo estate. The binary is a thin CLI: `main.rs` parses
//! the arguments, `cli/` holds one module per subcommand (not part of this library).

mod alerts;
mod cluster;
pub mod config;
pub mod demo;
mod hub;
mod people;

pub use cluster::ClusterNode;
pub use config::HubConfig;
pub use hub::{open_registry, Hub};

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid configuration:\n  {}", .0.join("\n  "))]
    Config(Vec<String>),
    #[error("estate: {0}")]
    Estate(#[from] steward_estate::EstateError),
    #[error("{0}")]
    Broker(#[from] steward_broker::BrokerError),
    #[error("{0}")]
    Ingest(#[from] steward_ingest::IngestError),
    #[error("{0}")]
    Storage(#[from] steward_storage::StorageError),
    #[error("{0}")]
    Api(#[from] steward_api::ApiError),
    #[error("start-up: {0}")]
    Start(String),
}
