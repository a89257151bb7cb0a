//! The rule worker: a member of the `rules` consumer group over the telemetry topic.
//!
//! Exactly once into PostgreSQL: for each batch of records, the tickets the rules raise
//! or clear, the rule state of the devices they touched and the next offset of every
//! partition in the batch are written in one transaction, and that transaction commits
//! only while this worker's epoch is still the partition's epoch. A partition assigned
//! to the worker is claimed first (its epoch goes up, which fences the previous owner)
//! and read from the offset PostgreSQL holds, not from Kafka's committed offset. So a
//! record read twice after a failover changes nothing, and a worker that lost its
//! partition while frozen cannot write late.
//!
//! Rule state is loaded per compound when the worker first meets the compound (partition
//! by compound keeps a compound's devices together), and dropped whenever a transaction
//! fails: what is in memory is then rebuilt from what was committed.

use crate::metrics::WorkerMetrics;
use crate::record;
use crate::task::Task;
use crate::{ClusterConfig, ClusterError};
use parking_lot::Mutex;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_estate::{Decoded, Directory, Registry};
use steward_ingest::{contract, IngestConfig};
use steward_pgstore::{Fence, PgStoreError, PgTicketStore};
use steward_rules::{screen, Action, Clock, Dispatcher, Engine, RulesConfig};
use steward_tickets::TicketStore;
use tracing::{debug, error, info, warn};

pub const RULES_GROUP: &str = "steward-rules";

/// A partition this worker has claimed: its epoch and the next offset to apply.
#[derive(Debug, Clone, Copy)]
struct Owned {
    epoch: i64,
    next: i64,
}

#[derive(Default)]
struct Changes {
    claimed: Vec<(i32, Owned)>,
    revoked: Vec<i32>,
    unclaimed: Vec<i32>,
}

/// Claims partitions in PostgreSQL inside the rebalance callback, before they are
/// assigned, so the consumer starts each one at the offset PostgreSQL committed.
struct WorkerCtx {
    store: Arc<PgTicketStore>,
    topic: String,
    changes: Mutex<Changes>,
    metrics: WorkerMetrics,
}

impl ClientContext for WorkerCtx {}

impl ConsumerContext for WorkerCtx {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        self.metrics.rebalances.inc();
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                let mut ch = self.changes.lock();
                for p in parts {
                    match self.store.claim_partition(RULES_GROUP, &self.topic, p) {
                        Ok(c) => {
                            let off = if c.next_offset >= 0 {
                                Offset::Offset(c.next_offset)
                            } else {
                                Offset::Beginning
                            };
                            let _ = tpl.set_partition_offset(&self.topic, p, off);
                            ch.claimed.push((
                                p,
                                Owned {
                                    epoch: c.epoch,
                                    next: c.next_offset.max(0),
                                },
                            ));
                        }
                        Err(e) => {
                            warn!(partition = p, error = %e, "cannot claim partition; retrying");
                            ch.unclaimed.push(p);
                        }
                    }
                }
                drop(ch);
                if let Err(e) = consumer.incremental_assign(tpl) {
                    error!(error = %e, "cannot take assigned partitions");
                }
                info!(partitions = ?tpl.elements().iter().map(|e| e.partition()).collect::<Vec<_>>(), "partitions assigned");
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                info!(partitions = ?parts, "partitions revoked");
                self.changes.lock().revoked.extend(parts);
                if let Err(e) = consumer.incremental_unassign(tpl) {
                    error!(error = %e, "cannot give up revoked partitions");
                }
            }
            other => {
                error!(error = ?other, "rebalance failed");
                // Whatever we held is in doubt: drop it all; a later assignment claims anew.
                let parts: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                self.changes.lock().revoked.extend(parts);
                let _ = consumer.unassign();
            }
        }
    }
}

/// What the worker needs from the hub.
pub struct WorkerParts {
    pub registry: Registry,
    pub rules: RulesConfig,
    pub ingest: IngestConfig,
    pub store: Arc<PgTicketStore>,
    pub dispatcher: Dispatcher,
    pub clock: Arc<dyn Clock>,
    pub metrics: WorkerMetrics,
}

pub struct RuleWorker {
    task: Task,
}

impl RuleWorker {
    pub fn start(cfg: &ClusterConfig, parts: WorkerParts) -> Result<RuleWorker, ClusterError> {
        let topic = cfg.telemetry_topic();
        let ctx = WorkerCtx {
            store: parts.store.clone(),
            topic: topic.clone(),
            changes: Mutex::new(Changes::default()),
            metrics: parts.metrics.clone(),
        };
        let session = cfg.session_timeout.as_millis().max(1000);
        let consumer: BaseConsumer<WorkerCtx> = ClientConfig::new()
            .set("bootstrap.servers", &cfg.kafka)
            .set("group.id", RULES_GROUP)
            .set("client.id", cfg.node_name())
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "cooperative-sticky")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 3).max(300).to_string())
            .set(
                "max.poll.interval.ms",
                (session * 5).max(30_000).to_string(),
            )
            // Fuller fetches under load; an alarm waits at most 20 ms more when quiet.
            .set("fetch.min.bytes", "16384")
            .set("fetch.wait.max.ms", "20")
            .set("enable.partition.eof", "false")
            .create_with_context(ctx)
            .map_err(|e| ClusterError::Kafka {
                what: "rule worker consumer",
                source: e,
            })?;
        consumer
            .subscribe(&[&topic])
            .map_err(|e| ClusterError::Kafka {
                what: "subscribe to the telemetry topic",
                source: e,
            })?;
        let pack = Arc::new(
            parts
                .rules
                .load_pack()
                .map_err(|e| ClusterError::Start(format!("rules: {e}")))?,
        );
        let mut w = Loop {
            consumer,
            topic,
            batch_records: cfg.batch_records,
            engine: Engine::new(pack.clone()),
            pack,
            loaded: HashSet::new(),
            members: MemberIndex::default(),
            owned: HashMap::new(),
            unclaimed: HashSet::new(),
            parts,
        };
        let task = Task::spawn("rule-worker", move |stop| w.run(stop))?;
        Ok(RuleWorker { task })
    }

    /// Finish the batch in hand, leave the group (its partitions move at once) and stop.
    pub fn shutdown(self) {
        self.task.shutdown();
    }
}

/// Devices of each compound in the current directory (rebuilt when it changes).
#[derive(Default)]
struct MemberIndex {
    dir: Option<Arc<Directory>>,
    by_compound: HashMap<Arc<str>, Vec<String>>,
}

impl MemberIndex {
    fn devices_of(&mut self, dir: &Arc<Directory>, compound: &str) -> Vec<String> {
        if !self.dir.as_ref().is_some_and(|d| Arc::ptr_eq(d, dir)) {
            self.by_compound.clear();
            for d in dir.devices.values() {
                self.by_compound
                    .entry(d.compound.clone())
                    .or_default()
                    .push(d.id.to_string());
            }
            self.dir = Some(dir.clone());
        }
        self.by_compound.get(compound).cloned().unwrap_or_default()
    }
}

struct Loop {
    consumer: BaseConsumer<WorkerCtx>,
    topic: String,
    batch_records: usize,
    engine: Engine,
    pack: Arc<steward_rules::RulePack>,
    /// Compounds whose devices' rule state is in the engine.
    loaded: HashSet<Arc<str>>,
    members: MemberIndex,
    owned: HashMap<i32, Owned>,
    unclaimed: HashSet<i32>,
    parts: WorkerParts,
}

/// One record of a batch: its partition and offset, and what it decoded to.
struct Item {
    partition: i32,
    offset: i64,
    decoded: Decoded,
}

/// Pause after a transaction failed for another reason than fencing (PostgreSQL away).
const RETRY_PAUSE: Duration = Duration::from_millis(500);

impl Loop {
    fn run(&mut self, stop: &AtomicBool) {
        info!(topic = %self.topic, "rule worker started");
        let tick_every = self.parts.rules.tick_interval;
        let mut next_tick = Instant::now() + tick_every;
        while !stop.load(Ordering::Relaxed) {
            let batch = self.collect(Duration::from_millis(50));
            self.apply_changes();
            if !batch.is_empty() {
                self.commit_batch(batch);
            }
            if Instant::now() >= next_tick {
                self.retry_unclaimed();
                self.tick();
                next_tick = Instant::now() + tick_every;
            }
        }
        // Leaving the group hands the partitions over now instead of after the session
        // timeout.
        self.consumer.unsubscribe();
        let _ = self.consumer.poll(Duration::from_millis(100));
        info!("rule worker stopped");
    }

    /// Records until the batch is full, nothing more comes within `wait`, or the
    /// assignment changes.
    fn collect(&mut self, wait: Duration) -> Vec<Item> {
        let mut batch = Vec::new();
        let until = Instant::now() + wait;
        let dir = self.parts.registry.directory();
        let mut expect: HashMap<i32, i64> = HashMap::new();
        while batch.len() < self.batch_records {
            let left = until.saturating_duration_since(Instant::now());
            let timeout = if batch.is_empty() {
                left
            } else {
                Duration::ZERO
            };
            let Some(res) = self.consumer.poll(timeout) else {
                break;
            };
            if self.changes_pending() {
                // Records of a partition just claimed or revoked must not join a batch
                // built under the old assignment.
                let p = res.as_ref().ok().map(|m| m.partition());
                drop(res);
                self.apply_changes();
                if let Some(p) = p {
                    self.rewind(p);
                }
                break;
            }
            let m = match res {
                Ok(m) => m,
                Err(e) => {
                    warn!(error = %e, "kafka consumer error");
                    self.parts.metrics.errors.inc();
                    continue;
                }
            };
            let (p, o) = (m.partition(), m.offset());
            let Some(owned) = self.owned.get(&p).copied() else {
                continue;
            };
            let next = *expect.get(&p).unwrap_or(&owned.next);
            if o < next {
                self.parts.metrics.skipped.inc();
                continue;
            }
            if o > next {
                // A gap means the fetch position is not where PostgreSQL says: go back.
                debug!(
                    partition = p,
                    offset = o,
                    expected = next,
                    "seek back to the committed offset"
                );
                self.rewind(p);
                continue;
            }
            expect.insert(p, o + 1);
            let decoded = match record::read(&m) {
                Some(r) => {
                    let now_ms = r
                        .received_us
                        .map(|u| u / 1000)
                        .unwrap_or_else(|| self.parts.clock.now_ms());
                    contract::decode(r.topic, r.payload, &dir, now_ms, &self.parts.ingest)
                }
                None => Decoded::default(),
            };
            batch.push(Item {
                partition: p,
                offset: o,
                decoded,
            });
        }
        batch
    }

    fn changes_pending(&self) -> bool {
        let ch = self.consumer.context().changes.lock();
        !(ch.claimed.is_empty() && ch.revoked.is_empty() && ch.unclaimed.is_empty())
    }

    fn apply_changes(&mut self) {
        let ch = std::mem::take(&mut *self.consumer.context().changes.lock());
        if ch.claimed.is_empty() && ch.revoked.is_empty() && ch.unclaimed.is_empty() {
            return;
        }
        for p in ch.revoked {
            self.owned.remove(&p);
            self.unclaimed.remove(&p);
        }
        for (p, o) in ch.claimed {
            self.owned.insert(p, o);
            self.unclaimed.remove(&p);
        }
        self.unclaimed.extend(ch.unclaimed);
        self.parts.metrics.partitions.set(self.owned.len() as i64);
        // Compounds may have moved: what is in memory is rebuilt from what is committed.
        self.reset_engine();
    }

    fn reset_engine(&mut self) {
        self.engine = Engine::new(self.pack.clone());
        self.loaded.clear();
    }

    /// Read `p` again from its committed offset.
    fn rewind(&self, p: i32) {
        let Some(o) = self.owned.get(&p) else {
            return;
        };
        if let Err(e) = self.seek(p, o.next) {
            warn!(partition = p, error = %e, "cannot seek");
        }
    }

    fn seek(&self, p: i32, offset: i64) -> KafkaResult<()> {
        self.consumer.seek(
            &self.topic,
            p,
            Offset::Offset(offset),
            Duration::from_secs(5),
        )
    }

    fn retry_unclaimed(&mut self) {
        let parts: Vec<i32> = self.unclaimed.iter().copied().collect();
        for p in parts {
            match self
                .parts
                .store
                .claim_partition(RULES_GROUP, &self.topic, p)
            {
                Ok(c) => {
                    let o = Owned {
                        epoch: c.epoch,
                        next: c.next_offset.max(0),
                    };
                    self.owned.insert(p, o);
                    self.unclaimed.remove(&p);
                    self.reset_engine();
                    let _ = self.seek(p, o.next);
                }
                Err(e) => debug!(partition = p, error = %e, "claim still failing"),
            }
        }
    }

    /// Load the rule state of every device of the compounds in `d` not loaded yet.
    fn load_compounds(&mut self, d: &Decoded, dir: &Arc<Directory>) -> Result<(), PgStoreError> {
        let compounds = d
            .readings
            .iter()
            .map(|r| &r.compound)
            .chain(d.events.iter().map(|e| &e.compound))
            .chain(d.statuses.iter().map(|s| &s.compound));
        let mut want = Vec::new();
        for c in compounds {
            if !self.loaded.contains(c) && !want.contains(c) {
                want.push(c.clone());
            }
        }
        for c in want {
            let ids = self.members.devices_of(dir, &c);
            let rows = self.parts.store.load_rule_states_for(&ids)?;
            self.engine.restore_at(rows, self.parts.clock.now_ms());
            self.loaded.insert(c);
        }
        Ok(())
    }

    fn apply_actions(&mut self, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        let actions = if actions
            .iter()
            .any(|a| matches!(a, Action::Raise(_) | Action::Notify(_)))
        {
            let windows = self.parts.registry.windows();
            let dir = self.parts.registry.directory();
            let engine = &self.engine;
            let (kept, held) = screen(actions, engine.pack(), &windows, &dir, &|id| {
                engine.mode_of(id)
            });
            for s in held {
                self.parts.dispatcher.suppressed(s);
            }
            kept
        } else {
            actions
        };
        self.parts.dispatcher.apply(actions);
    }

    fn commit_batch(&mut self, batch: Vec<Item>) {
        let dir = self.parts.registry.directory();
        let desk = self.parts.dispatcher.desk().clone();
        desk.begin_batch();
        let mut next: HashMap<i32, i64> = HashMap::new();
        let n = batch.len();
        for item in batch {
            if let Err(e) = self.load_compounds(&item.decoded, &dir) {
                self.failed(&format!("cannot load rule state: {e}"));
                return;
            }
            let actions = self.engine.on_decoded(&item.decoded, &dir);
            self.apply_actions(actions);
            next.insert(item.partition, item.offset + 1);
        }
        if self.commit(&next) {
            self.parts.metrics.records.inc_by(n as u64);
            self.parts.metrics.batches.inc();
        }
    }

    /// Timers (silences, reminders) of the devices in memory, and the SLA clock on the
    /// worker that holds partition 0 (one worker at a time runs it).
    fn tick(&mut self) {
        if self.owned.is_empty() {
            return;
        }
        let now = self.parts.clock.now_ms();
        let dir = self.parts.registry.directory();
        let desk = self.parts.dispatcher.desk().clone();
        desk.begin_batch();
        let actions = self.engine.tick(now, &dir);
        self.apply_actions(actions);
        if self.owned.contains_key(&0) {
            self.parts.dispatcher.sla_tick(now);
        }
        self.commit(&HashMap::new());
    }

    /// Save the touched rule state and commit, fenced by every owned partition's epoch
    /// (the offsets of the partitions in `next` move on). Returns whether it committed.
    fn commit(&mut self, next: &HashMap<i32, i64>) -> bool {
        let desk = self.parts.dispatcher.desk().clone();
        let rows = self.engine.take_dirty();
        let now = self.parts.clock.now_ms();
        if let Err(e) = self.parts.store.save_rule_states(&rows, now) {
            self.failed(&format!("cannot save rule state: {e}"));
            return false;
        }
        let fences: Vec<Fence> = self
            .owned
            .iter()
            .map(|(p, o)| Fence {
                group: RULES_GROUP.to_string(),
                topic: self.topic.clone(),
                partition: *p,
                epoch: o.epoch,
                next_offset: *next.get(p).unwrap_or(&o.next),
            })
            .collect();
        match self.parts.store.commit_fenced(&fences) {
            Ok(()) => {
                for (p, n) in next {
                    if let Some(o) = self.owned.get_mut(p) {
                        o.next = *n;
                    }
                }
                // Published only now: nobody hears of a ticket that could be taken back.
                desk.end_batch();
                true
            }
            Err(PgStoreError::Fenced {
                partition, current, ..
            }) => {
                self.parts.metrics.fenced.inc();
                warn!(partition, current = ?current, "fenced: another worker owns the partition; batch dropped");
                self.owned.remove(&partition);
                self.parts.metrics.partitions.set(self.owned.len() as i64);
                self.failed("fenced");
                false
            }
            Err(e) => {
                self.failed(&format!("cannot commit: {e}"));
                std::thread::sleep(RETRY_PAUSE);
                false
            }
        }
    }

    /// The transaction did not commit: forget its events and everything in memory, and
    /// read every owned partition again from its committed offset.
    fn failed(&mut self, why: &str) {
        let desk = self.parts.dispatcher.desk().clone();
        let _ = self.parts.store.rollback_batch();
        desk.abort_batch();
        self.parts.metrics.errors.inc();
        debug!(why, "batch rolled back");
        self.reset_engine();
        let parts: Vec<(i32, i64)> = self.owned.iter().map(|(p, o)| (*p, o.next)).collect();
        for (p, next) in parts {
            if let Err(e) = self.seek(p, next) {
                warn!(partition = p, error = %e, "cannot seek after a rollback");
            }
        }
    }
}
