//! The topics cluster mode needs, made when absent (a user's own Kafka may have them
//! already, made by their operators with their own settings).

use crate::{ClusterConfig, ClusterError};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;
use tracing::info;

/// Create the telemetry and downlink topics unless they exist; waits for the cluster up
/// to `wait` (brokers may still be starting).
pub async fn ensure_topics(cfg: &ClusterConfig, wait: Duration) -> Result<(), ClusterError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &cfg.kafka)
        .create()
        .map_err(|e| ClusterError::Kafka {
            what: "admin client",
            source: e,
        })?;
    let isr = cfg.min_insync_replicas.to_string();
    let telemetry = cfg.telemetry_topic();
    let downlink = cfg.downlink_topic();
    let topics = [
        NewTopic::new(
            &telemetry,
            cfg.partitions,
            TopicReplication::Fixed(cfg.replication_factor),
        )
        .set("min.insync.replicas", &isr),
        NewTopic::new(
            &downlink,
            1,
            TopicReplication::Fixed(cfg.replication_factor),
        )
        .set("min.insync.replicas", &isr),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let until = std::time::Instant::now() + wait;
    loop {
        let res = admin.create_topics(&topics, &opts).await;
        let last = match res {
            Ok(results) => {
                let mut failure = None;
                for r in results {
                    match r {
                        Ok(name) => info!(topic = %name, "kafka topic created"),
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((name, code)) => failure = Some(format!("{name}: {code}")),
                    }
                }
                match failure {
                    None => return Ok(()),
                    Some(f) => f,
                }
            }
            Err(e) => e.to_string(),
        };
        if std::time::Instant::now() >= until {
            return Err(ClusterError::Topics(last));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
