//! The front end's forwarder: takes what the embedded broker accepted (authenticated,
//! own topic, within rate limits) and produces it to the telemetry topic, keyed by
//! compound, with `acks=all` and idempotence. A message's PUBACK is released only when
//! Kafka has acknowledged it and every message before it: the broker's acknowledgement
//! tokens are released in order, through the last one whose predecessors are all in.

use crate::metrics::FrontendMetrics;
use crate::record;
use crate::task::Task;
use crate::{ClusterConfig, ClusterError};
use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_estate::clock::now_us;
use steward_estate::inbound::{AckToken, Inbound, InboundSource, Received};
use steward_estate::Registry;
use steward_ingest::contract::{self, Channel, Topic};
use tracing::{error, info, warn};

/// A message on its way to Kafka; kept until acknowledged so a failed delivery can be
/// produced again.
struct Pending {
    token: u64,
    key: String,
    topic: Bytes,
    payload: Bytes,
    sender: Option<Arc<str>>,
    received_us: i64,
}

#[derive(Default)]
struct Deliveries {
    done: Vec<u64>,
    // Boxed as they came back from librdkafka: each goes out again as the same opaque.
    #[allow(clippy::vec_box)]
    failed: Vec<Box<Pending>>,
}

struct Ctx {
    deliveries: Mutex<Deliveries>,
    metrics: FrontendMetrics,
}

impl ClientContext for Ctx {}

impl ProducerContext for Ctx {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, p: Box<Pending>) {
        let mut d = self.deliveries.lock();
        match result {
            Ok(_) => {
                self.metrics.produced.inc();
                d.done.push(p.token);
            }
            Err((e, _)) => {
                self.metrics.delivery_errors.inc();
                warn!(error = %e, key = %p.key, "kafka delivery failed; producing again");
                d.failed.push(p);
            }
        }
    }
}

pub struct Frontend {
    task: Task,
}

/// Longest a quiet forwarder waits for the broker before it looks at deliveries again.
const IDLE_WAIT: Duration = Duration::from_millis(20);
/// While deliveries are outstanding the forwarder wakes this often to release PUBACKs.
const BUSY_WAIT: Duration = Duration::from_millis(2);

impl Frontend {
    pub fn start(
        cfg: &ClusterConfig,
        source: impl InboundSource,
        registry: Registry,
        metrics: FrontendMetrics,
    ) -> Result<Frontend, ClusterError> {
        let ctx = Ctx {
            deliveries: Mutex::new(Deliveries::default()),
            metrics: metrics.clone(),
        };
        let producer: ThreadedProducer<Ctx> = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka)
            .set("client.id", cfg.node_name())
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // Never give up on a message: its device has no PUBACK until Kafka has it.
            .set("message.timeout.ms", "0")
            // Fuller produce requests (Kafka's network threads cost per request); a PUBACK
            // waits this much longer.
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            .set("compression.type", "lz4")
            .set("queue.buffering.max.messages", "200000")
            .create_with_context(ctx)
            .map_err(|e| ClusterError::Kafka {
                what: "front end producer",
                source: e,
            })?;
        let topic = cfg.telemetry_topic();
        let task = Task::spawn("kafka-forward", move |stop| {
            let mut f = Forwarder {
                producer,
                topic,
                registry,
                metrics,
                order: VecDeque::new(),
                done: HashSet::new(),
            };
            f.run(source, stop)
        })?;
        info!("front end forwarding to kafka");
        Ok(Frontend { task })
    }

    /// Stop taking messages, wait (bounded) for Kafka to acknowledge what was sent and
    /// release those PUBACKs.
    pub fn shutdown(self) {
        self.task.shutdown();
    }
}

struct Forwarder {
    producer: ThreadedProducer<Ctx>,
    topic: String,
    registry: Registry,
    metrics: FrontendMetrics,
    /// Tokens sent, in the order the broker handed them out.
    order: VecDeque<u64>,
    /// Acknowledged tokens not yet at the front of `order`.
    done: HashSet<u64>,
}

impl Forwarder {
    fn run(&mut self, mut source: impl InboundSource, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            self.settle(&mut source);
            let wait = if self.order.is_empty() {
                IDLE_WAIT
            } else {
                BUSY_WAIT
            };
            match source.recv_until(Instant::now() + wait) {
                Received::Message(m) => {
                    self.forward(m);
                    // Take what else is queued before looking at deliveries again.
                    while let Received::Message(m) = source.recv_until(Instant::now()) {
                        self.forward(m);
                    }
                }
                Received::Idle => {}
                Received::Closed(reason) => {
                    error!(reason, "broker link closed");
                    break;
                }
            }
        }
        let _ = self.producer.flush(Duration::from_secs(10));
        self.settle(&mut source);
        info!(unacknowledged = self.order.len(), "forwarder stopped");
    }

    /// Produce a device's message; what the hub itself publishes on this broker (station
    /// alerts and device commands from the downlink) is not telemetry and goes nowhere.
    fn forward(&mut self, m: Inbound) {
        let downlink = matches!(
            contract::parse_topic(&m.topic),
            Ok(Topic::StationAlerts { .. })
                | Ok(Topic::Device {
                    channel: Channel::Commands,
                    ..
                })
        );
        if downlink {
            self.order.push_back(m.ack.0);
            self.done.insert(m.ack.0);
            return;
        }
        let received_us = m.received_us.unwrap_or_else(now_us);
        let key = record::key_of(&m.topic, &self.registry.directory());
        self.send(Box::new(Pending {
            token: m.ack.0,
            key,
            topic: m.topic,
            payload: m.payload,
            sender: m.sender,
            received_us,
        }));
    }

    fn send(&mut self, p: Box<Pending>) {
        self.order.push_back(p.token);
        self.metrics.in_flight.set(self.order.len() as i64);
        self.produce(p);
    }

    fn produce(&self, p: Box<Pending>) {
        let headers = record::headers(&p.topic, p.sender.as_deref(), p.received_us);
        // The record borrows key and payload from the boxed message it carries as opaque.
        let key = p.key.clone();
        let payload = p.payload.clone();
        let mut rec = BaseRecord::with_opaque_to(&self.topic, p)
            .key(key.as_str())
            .payload(payload.as_ref())
            .headers(headers);
        loop {
            match self.producer.send(rec) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    // Backpressure: the devices wait for their PUBACKs meanwhile.
                    rec = r;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err((e, r)) => {
                    warn!(error = %e, "cannot produce; retrying");
                    rec = r;
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Produce failed deliveries again and release the PUBACKs of the acknowledged prefix.
    fn settle(&mut self, source: &mut impl InboundSource) {
        let (done, failed) = {
            let mut d = self.producer.context().deliveries.lock();
            (std::mem::take(&mut d.done), std::mem::take(&mut d.failed))
        };
        for p in failed {
            self.produce(p);
        }
        // Downlink messages are marked done when they arrive, so look even when Kafka
        // acknowledged nothing new.
        self.done.extend(done);
        let mut release = None;
        while let Some(t) = self.order.front().copied() {
            if !self.done.remove(&t) {
                break;
            }
            self.order.pop_front();
            release = Some(t);
        }
        self.metrics.in_flight.set(self.order.len() as i64);
        if let Some(t) = release {
            source.release_through(AckToken(t));
        }
    }
}
