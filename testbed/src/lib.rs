//! Engines that cluster mode runs on, started locally for tests, benchmarks and the
//! cluster demo: a Kafka cluster in KRaft mode from the Maven Central jars
//! (`scripts/fetch-kafka.sh`) and a PostgreSQL server from Debian's binaries, each in a
//! temporary directory on loopback ports, stopped (killed) when dropped.
//!
//! It starts and kills processes and nothing else: it knows no Steward crate, topic or
//! table (the cluster crate creates its topics and schema itself, as it must against
//! engines users run).

pub mod kafka;
pub mod postgres;

pub use kafka::{KafkaCluster, KafkaError};
pub use postgres::{LocalPostgres, PostgresError};
