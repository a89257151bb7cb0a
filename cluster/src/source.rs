//! The storage writers' source: a member of the `storage` consumer group read by the
//! ordinary ingest loop, so rows reach QuestDB exactly as on one machine (decoded,
//! rejects with reasons, spool first). Offsets are committed to Kafka when ingest
//! releases them (after the spool write); what a failover reads twice is the same rows
//! with the same receive time, which QuestDB's `DEDUP UPSERT KEYS` keeps once.

use crate::record;
use crate::{ClusterConfig, ClusterError};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, DefaultConsumerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::Message;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_estate::inbound::{AckToken, Inbound, InboundSource, Received};
use tracing::warn;

pub const STORAGE_GROUP: &str = "steward-storage";

pub struct KafkaSource {
    consumer: BaseConsumer<DefaultConsumerContext>,
    topic: String,
    next_token: u64,
    /// (token, partition, offset) of messages handed out and not yet released.
    handed: VecDeque<(u64, i32, i64)>,
    /// Released offsets not committed yet, and when the last commit went out.
    uncommitted: BTreeMap<i32, i64>,
    committed_at: Instant,
}

/// Offsets are committed at most this often: a commit per spool write crowded the
/// coordinator connection that carries the heartbeats, and on saturated cores the
/// member was thrown out of the group (the benchmark saw 5-12 s stalls). What a crash
/// loses of it is read again, and DEDUP absorbs it.
const COMMIT_EVERY: Duration = Duration::from_secs(1);

impl KafkaSource {
    pub fn new(cfg: &ClusterConfig) -> Result<KafkaSource, ClusterError> {
        let topic = cfg.telemetry_topic();
        let session = cfg.storage_session_timeout.as_millis().max(1000);
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka)
            .set("group.id", STORAGE_GROUP)
            .set("client.id", format!("{}-storage", cfg.node_name()))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 3).max(300).to_string())
            // Fewer, fuller fetches: rows wait up to 50 ms more, which no one sees.
            .set("fetch.min.bytes", "65536")
            .set("fetch.wait.max.ms", "50")
            .create()
            .map_err(|e| ClusterError::Kafka {
                what: "storage writer consumer",
                source: e,
            })?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| ClusterError::Kafka {
                what: "subscribe to the telemetry topic",
                source: e,
            })?;
        Ok(KafkaSource {
            consumer,
            topic,
            next_token: 1,
            handed: VecDeque::new(),
            uncommitted: BTreeMap::new(),
            committed_at: Instant::now(),
        })
    }
}

impl InboundSource for KafkaSource {
    fn recv_until(&mut self, deadline: Instant) -> Received {
        loop {
            let timeout = deadline.saturating_duration_since(Instant::now());
            let m = match self.consumer.poll(timeout) {
                None => return Received::Idle,
                Some(Err(e)) => {
                    warn!(error = %e, "kafka consumer error");
                    if Instant::now() >= deadline {
                        return Received::Idle;
                    }
                    continue;
                }
                Some(Ok(m)) => m,
            };
            let token = self.next_token;
            self.next_token += 1;
            self.handed.push_back((token, m.partition(), m.offset()));
            let Some(r) = record::read(&m) else {
                // Not a Steward record: skip it (its offset is released with the next).
                continue;
            };
            return Received::Message(Inbound {
                sender: r.sender.map(Arc::from),
                topic: bytes::Bytes::copy_from_slice(r.topic),
                payload: bytes::Bytes::copy_from_slice(r.payload),
                ack: AckToken(token),
                received_us: r.received_us,
            });
        }
    }

    fn release_through(&mut self, token: AckToken) {
        while let Some(&(t, p, o)) = self.handed.front() {
            if t > token.0 {
                break;
            }
            self.handed.pop_front();
            self.uncommitted.insert(p, o + 1);
        }
        if self.committed_at.elapsed() >= COMMIT_EVERY {
            self.commit(CommitMode::Async);
        }
    }
}

impl KafkaSource {
    fn commit(&mut self, mode: CommitMode) {
        if self.uncommitted.is_empty() {
            return;
        }
        let mut tpl = TopicPartitionList::new();
        for (p, o) in std::mem::take(&mut self.uncommitted) {
            let _ = tpl.add_partition_offset(&self.topic, p, Offset::Offset(o));
        }
        self.committed_at = Instant::now();
        // A partition revoked meanwhile refuses the commit; its new owner rewrites the
        // same rows, which DEDUP absorbs.
        if let Err(e) = self.consumer.commit(&tpl, mode) {
            tracing::debug!(error = %e, "offset commit refused");
        }
    }
}

impl Drop for KafkaSource {
    /// Ingest released these after spooling them: commit them before leaving the group.
    fn drop(&mut self) {
        self.commit(CommitMode::Sync);
    }
}
