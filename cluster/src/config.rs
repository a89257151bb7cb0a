//! `[cluster]` section of the hub configuration.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What this node does in cluster mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// One machine: embedded broker, spool, SQLite (no Kafka, no PostgreSQL).
    #[default]
    Single,
    /// The broker devices connect to: each accepted message is produced to Kafka, keyed by
    /// compound, and acknowledged (PUBACK) once Kafka has it.
    Frontend,
    /// Rule worker (consumer group `rules`, tickets in PostgreSQL) and storage writer
    /// (consumer group `storage`, rows in QuestDB).
    Worker,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub role: Role,
    /// Kafka bootstrap servers, `host:port,host:port`.
    pub kafka: String,
    /// PostgreSQL connection string (libpq key=value or URL) for tickets, rule state,
    /// offsets and fencing epochs.
    pub postgres: String,
    /// Prefix of the topic names (`{prefix}telemetry`, `{prefix}downlink`).
    pub topic_prefix: String,
    /// Partitions of the telemetry topic, made when the topic does not exist yet.
    pub partitions: i32,
    pub replication_factor: i32,
    pub min_insync_replicas: i32,
    /// A worker silent this long loses its partitions to the others.
    #[serde(with = "humantime_serde")]
    pub session_timeout: Duration,
    /// The same for a storage writer. Longer: on saturated cores a short session expires
    /// under load and the group stops to rebalance, while a late row costs nothing.
    #[serde(with = "humantime_serde")]
    pub storage_session_timeout: Duration,
    /// Most records in one PostgreSQL transaction of a rule worker.
    pub batch_records: usize,
    /// A rule worker's PostgreSQL transaction left idle this long (a frozen worker) is
    /// ended by the server, which releases its row locks.
    #[serde(with = "humantime_serde")]
    pub idle_in_transaction_timeout: Duration,
    /// Run the storage writer on a worker node.
    pub storage_writer: bool,
    /// Name of this node in logs, metrics and the consumer group (default: the host name
    /// and process id).
    pub node_id: String,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            role: Role::Single,
            kafka: String::new(),
            postgres: String::new(),
            topic_prefix: "steward.".into(),
            partitions: 12,
            replication_factor: 3,
            min_insync_replicas: 2,
            session_timeout: Duration::from_secs(8),
            storage_session_timeout: Duration::from_secs(30),
            batch_records: 2000,
            idle_in_transaction_timeout: Duration::from_secs(10),
            storage_writer: true,
            node_id: String::new(),
        }
    }
}

impl ClusterConfig {
    /// Every problem, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if self.role == Role::Single {
            return e;
        }
        if self.kafka.trim().is_empty() {
            e.push("cluster.kafka: must list the Kafka bootstrap servers (host:port,...)".into());
        }
        for s in self.kafka.split(',').filter(|s| !s.trim().is_empty()) {
            let s = s.trim();
            let port_ok = s
                .rsplit_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !port_ok {
                e.push(format!("cluster.kafka: `{s}` is not host:port"));
            }
        }
        if self.role == Role::Worker && self.postgres.trim().is_empty() {
            e.push("cluster.postgres: a worker needs the PostgreSQL connection string".into());
        }
        if self.topic_prefix.is_empty()
            || !self
                .topic_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            e.push("cluster.topic_prefix: letters, digits, `.`, `_` and `-` only".into());
        }
        if !(1..=10_000).contains(&self.partitions) {
            e.push("cluster.partitions: must be between 1 and 10000".into());
        }
        if self.replication_factor < 1 {
            e.push("cluster.replication_factor: must be at least 1".into());
        }
        if self.min_insync_replicas < 1 || self.min_insync_replicas > self.replication_factor {
            e.push(
                "cluster.min_insync_replicas: must be between 1 and cluster.replication_factor"
                    .into(),
            );
        }
        if self.session_timeout < Duration::from_secs(1)
            || self.session_timeout > Duration::from_secs(300)
        {
            e.push("cluster.session_timeout: must be between 1s and 300s".into());
        }
        if self.storage_session_timeout < Duration::from_secs(1)
            || self.storage_session_timeout > Duration::from_secs(300)
        {
            e.push("cluster.storage_session_timeout: must be between 1s and 300s".into());
        }
        if !(1..=100_000).contains(&self.batch_records) {
            e.push("cluster.batch_records: must be between 1 and 100000".into());
        }
        if self.idle_in_transaction_timeout < Duration::from_secs(1) {
            e.push("cluster.idle_in_transaction_timeout: must be at least 1s".into());
        }
        e
    }

    pub fn telemetry_topic(&self) -> String {
        format!("{}telemetry", self.topic_prefix)
    }

    pub fn downlink_topic(&self) -> String {
        format!("{}downlink", self.topic_prefix)
    }

    /// This node's name: `node_id`, or host name and process id.
    pub fn node_name(&self) -> String {
        if !self.node_id.is_empty() {
            return self.node_id.clone();
        }
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "node".into());
        format!("{host}-{}", std::process::id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_needs_nothing_and_roles_name_their_keys() {
        assert!(ClusterConfig::default().validate().is_empty());
        let c = ClusterConfig {
            role: Role::Worker,
            kafka: "127.0.0.1".into(),
            min_insync_replicas: 4,
            ..ClusterConfig::default()
        };
        let e = c.validate().join("\n");
        assert!(
            e.contains("cluster.kafka: `127.0.0.1` is not host:port"),
            "{e}"
        );
        assert!(e.contains("cluster.postgres:"), "{e}");
        assert!(e.contains("cluster.min_insync_replicas:"), "{e}");
    }
}
