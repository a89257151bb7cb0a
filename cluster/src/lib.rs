//! Cluster mode (DESIGN.md section 10): the same hub split over machines on Apache Kafka
//! and PostgreSQL.
//!
//! - [`Frontend`]: behind the embedded broker, produces every accepted device message to
//!   the telemetry topic keyed by compound and releases its PUBACK when Kafka
//!   acknowledged it (`acks=all`).
//! - [`RuleWorker`]: the `rules` consumer group; each batch's tickets, rule state and
//!   offsets go to PostgreSQL in one transaction fenced by a per-partition epoch.
//! - [`KafkaSource`]: the `storage` consumer group as an ingest source, so rows reach
//!   QuestDB through the ordinary ingest loop; DEDUP makes replays harmless.
//! - [`EventRelay`]: every node's live ticket events (SSE) from the shared event log.
//! - [`ensure_topics`]: the topics, made when absent.
//!
//! Boundaries: this crate moves messages between Kafka, the rules and the stores; it owns
//! no rule, ticket or decoding logic (those stay in rules, tickets and ingest) and serves
//! no HTTP. The single-machine hub does not use it.

mod config;
mod downlink;
mod estate_sync;
mod frontend;
mod metrics;
pub mod record;
mod relay;
mod source;
mod task;
mod topics;
mod worker;

pub use config::{ClusterConfig, Role};
pub use downlink::{DownlinkConsumer, DownlinkProducer, PublishFn};
pub use estate_sync::{EstateSync, EstateSyncCounters, ESTATE_SYNC_INTERVAL};
pub use frontend::Frontend;
pub use metrics::{FrontendMetrics, WorkerMetrics};
pub use relay::EventRelay;
pub use source::{KafkaSource, STORAGE_GROUP};
pub use topics::ensure_topics;
pub use worker::{RuleWorker, WorkerParts, RULES_GROUP};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("kafka: {what}: {source}")]
    Kafka {
        what: &'static str,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("kafka topics: {0}")]
    Topics(String),
    #[error("cluster: {0}")]
    Start(String),
}
