//! Downlink: what leaves the rules for devices and crews (device commands, station
//! alerts) goes through one Kafka topic that every front end reads, so it reaches a
//! device or a crew's app whichever front end they are connected to. The record key is
//! the MQTT topic, the value the payload.

use crate::task::Task;
use crate::{ClusterConfig, ClusterError};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::Message;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// The workers' side: produce an MQTT publish for the front ends.
pub struct DownlinkProducer {
    producer: ThreadedProducer<DefaultProducerContext>,
    topic: String,
}

impl DownlinkProducer {
    pub fn new(cfg: &ClusterConfig) -> Result<DownlinkProducer, ClusterError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka)
            .set("client.id", format!("{}-downlink", cfg.node_name()))
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "1")
            .create()
            .map_err(|e| ClusterError::Kafka {
                what: "downlink producer",
                source: e,
            })?;
        Ok(DownlinkProducer {
            producer,
            topic: cfg.downlink_topic(),
        })
    }

    pub fn publish(&self, mqtt_topic: &str, payload: &[u8]) {
        let rec = BaseRecord::to(&self.topic).key(mqtt_topic).payload(payload);
        if let Err((e, _)) = self.producer.send(rec) {
            warn!(topic = mqtt_topic, error = %e, "cannot produce downlink message");
        }
    }

    pub fn flush(&self) {
        let _ = self.producer.flush(Duration::from_secs(5));
    }
}

/// The front ends' side: every front end reads the whole downlink topic from where it
/// joined (its own consumer group) and publishes each record on its broker.
pub struct DownlinkConsumer {
    task: Task,
}

pub type PublishFn = Arc<dyn Fn(&str, Vec<u8>) + Send + Sync>;

impl DownlinkConsumer {
    pub fn start(
        cfg: &ClusterConfig,
        publish: PublishFn,
    ) -> Result<DownlinkConsumer, ClusterError> {
        let node = cfg.node_name();
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka)
            .set("group.id", format!("steward-frontend-{node}"))
            .set("client.id", format!("{node}-downlink"))
            .set("enable.auto.commit", "true")
            .set("auto.offset.reset", "latest")
            .set("fetch.wait.max.ms", "20")
            .create()
            .map_err(|e| ClusterError::Kafka {
                what: "downlink consumer",
                source: e,
            })?;
        consumer
            .subscribe(&[&cfg.downlink_topic()])
            .map_err(|e| ClusterError::Kafka {
                what: "subscribe to the downlink topic",
                source: e,
            })?;
        let task = Task::spawn("kafka-downlink", move |stop| {
            while !stop.load(Ordering::Relaxed) {
                match consumer.poll(Duration::from_millis(100)) {
                    Some(Ok(m)) => {
                        let topic = m.key().and_then(|k| std::str::from_utf8(k).ok());
                        if let Some(t) = topic {
                            publish(t, m.payload().unwrap_or(&[]).to_vec());
                        }
                    }
                    Some(Err(e)) => warn!(error = %e, "downlink consumer error"),
                    None => {}
                }
            }
            consumer.unsubscribe();
            info!("downlink consumer stopped");
        })?;
        Ok(DownlinkConsumer { task })
    }

    pub fn shutdown(self) {
        self.task.shutdown();
    }
}
