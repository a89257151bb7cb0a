//! The ingest loop: one thread that takes messages from an [`InboundSource`] (the broker
//! link, or in cluster mode a Kafka consumer), decodes them, appends rows to the current
//! QuestDB batch and hands decoded data to the downstream sinks (rules).
//!
//! Acknowledgements are released a group at a time: after each spool write (and sync, in
//! `synced` mode) every message handled so far is released to the source, which sends
//! the PUBACKs it held. When the spool refuses rows (full, or a failing disk) the loop
//! stops taking messages and holds the acknowledgements, so devices wait and keep their
//! data instead of losing it; it retries until the spool takes rows again.

use crate::config::AckMode;
use crate::contract;
use crate::metrics::{IngestMetrics, KindLabel, ReasonLabel};
use crate::{IngestConfig, IngestError};
use questdb::ingress::Buffer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use steward_estate::clock::now_us;
use steward_estate::inbound::{AckToken, InboundSource, Received};
use steward_estate::{validate_id, Registry};
use steward_estate::{Decoded, DecodedSink};
use steward_storage::questdb::ilp::{self, RejectRow};
use steward_storage::{new_buffer, Outbox, Refused};
use tracing::{debug, error, info, warn};

/// While messages keep coming, the batch is checked for its flush interval and finished
/// writes are collected once per this many messages, not after every one.
const CHECK_EVERY: u32 = 64;

pub struct Ingest {
    stop: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
    blocked: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

struct Loop {
    cfg: IngestConfig,
    registry: Registry,
    metrics: IngestMetrics,
    sinks: Vec<Box<dyn DecodedSink>>,
    buf: Buffer,
    /// Bytes and rows at the start of `buf` already appended to the spool.
    spooled_len: usize,
    spooled_rows: usize,
    first_row_at: Option<Instant>,
    outbox: Outbox,
    /// Last time a `rate_limited` reject row was written per device: a flood is counted
    /// in full but leaves at most one row per second in QuestDB.
    shed_rows_at: HashMap<String, Instant>,
    /// The last message handled whose acknowledgement is not released yet.
    pending_ack: Option<AckToken>,
    /// The spool refuses rows: messages are not taken and acknowledgements are held.
    blocked: bool,
    blocked_flag: Arc<AtomicBool>,
    /// Bytes spooled since the last sync (`synced` mode).
    unsynced: usize,
}

/// In `synced` mode, the spool bytes after which a long burst is synced and its
/// acknowledgements released before the burst ends. An fsync costs milliseconds here
/// whatever its size, so under sustained load a group this big amortises it (at 64 KiB
/// groups the fsyncs alone capped the hub at a third of its throughput); a burst that
/// ends sooner is synced at its end.
const SYNC_CHUNK: usize = 1 << 20;

/// How long a blocked loop waits before it offers the spool the held rows again.
const BLOCKED_RETRY: Duration = Duration::from_millis(100);

/// Unspooled bytes after which the ingest loop writes to the spool even in the middle of
/// a burst: bounds what a killed hub can lose from its own memory.
const SPOOL_CHUNK: usize = 64 * 1024;

/// A source quiet this long at shutdown has nothing more queued.
const DRAIN_QUIET: Duration = Duration::from_millis(200);
/// Longest a shutdown waits for the source to run dry.
const DRAIN_LIMIT: Duration = Duration::from_secs(5);

impl Ingest {
    /// Start the ingest thread reading `source`: open the spool (sending again what a
    /// previous run left in it) and the writer to QuestDB at `questdb_http`.
    pub fn start(
        source: impl InboundSource,
        registry: Registry,
        cfg: IngestConfig,
        questdb_http: SocketAddr,
        metrics: IngestMetrics,
        sinks: Vec<Box<dyn DecodedSink>>,
    ) -> Result<Ingest, IngestError> {
        let outbox = Outbox::open(
            &cfg.spool_dir,
            cfg.spool_max_bytes,
            cfg.spool_fsync,
            questdb_http,
            metrics.storage.clone(),
        )
        .map_err(|source| IngestError::Spool { source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let blocked = Arc::new(AtomicBool::new(false));
        let state = Loop {
            pending_ack: None,
            unsynced: 0,
            blocked: false,
            blocked_flag: blocked.clone(),
            cfg,
            registry,
            metrics,
            sinks,
            buf: new_buffer(),
            spooled_len: 0,
            spooled_rows: 0,
            first_row_at: None,
            outbox,
            shed_rows_at: HashMap::new(),
        };
        let running = Arc::new(AtomicBool::new(true));
        let running2 = running.clone();
        let thread = std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || {
                // Cleared however the thread ends, a panic included.
                let _running = ClearOnDrop(running2);
                state.run(source, stop2)
            })
            .map_err(|source| IngestError::Thread { source })?;
        Ok(Ingest {
            stop,
            running,
            blocked,
            thread: Some(thread),
        })
    }

    /// A flag that is true while the spool refuses rows and ingest holds acknowledgements
    /// (for readiness checks).
    pub fn blocked(&self) -> Arc<AtomicBool> {
        self.blocked.clone()
    }

    /// A flag that is true while the ingest thread runs (for readiness checks).
    pub fn running(&self) -> Arc<AtomicBool> {
        self.running.clone()
    }

    /// Spool and send the current batch, let the writer drain (bounded) and stop.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct ClearOnDrop(Arc<AtomicBool>);

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Loop {
    fn run(mut self, mut source: impl InboundSource, stop: Arc<AtomicBool>) {
        info!(ack = ?self.cfg.ack, "ingest started");
        // A deadline already past makes `recv_until` a non-blocking receive.
        let past = Instant::now();
        let mut since_check = 0u32;
        while !stop.load(Ordering::Relaxed) {
            if self.blocked {
                // Taking more messages would only grow what cannot be stored; the devices
                // wait for their acknowledgements meanwhile. The writer frees spool space
                // as QuestDB takes segments.
                self.outbox.drain();
                if !self.commit(&mut source) {
                    std::thread::sleep(BLOCKED_RETRY);
                    continue;
                }
            }
            // Take what the source has queued without waiting; when nothing is, the burst
            // has ended: spool its tail, release its acknowledgements, hand the rules what
            // they wait for, then wait.
            let next = match source.recv_until(past) {
                Received::Idle => {
                    for s in &mut self.sinks {
                        s.flush();
                    }
                    self.commit(&mut source);
                    self.maybe_flush(&mut source, false);
                    since_check = 0;
                    let deadline = match self.first_row_at {
                        Some(t) => t + self.cfg.flush_interval,
                        None => Instant::now() + Duration::from_millis(100),
                    };
                    source.recv_until(deadline)
                }
                other => other,
            };
            match next {
                Received::Message(m) => {
                    self.handle(&m.topic, &m.payload, m.received_us);
                    self.pending_ack = Some(m.ack);
                }
                Received::Idle => {}
                Received::Closed(reason) => {
                    error!(reason, "ingest source closed");
                    break;
                }
            }
            if self.buf.len() - self.spooled_len >= SPOOL_CHUNK {
                self.commit_chunk(&mut source);
            }
            since_check += 1;
            if since_check >= CHECK_EVERY || self.buf.row_count() >= self.cfg.batch_rows {
                since_check = 0;
                self.maybe_flush(&mut source, false);
            }
        }
        if !self.blocked {
            self.drain(&mut source);
        }
        for s in &mut self.sinks {
            s.flush();
        }
        self.commit(&mut source);
        let Loop { outbox, buf, .. } = self;
        outbox.shutdown(buf, Duration::from_secs(10));
        info!("ingest stopped");
    }

    /// At shutdown the broker's listeners are already closed, but what devices published
    /// before that may still wait in the source (acknowledged already in `received` mode):
    /// take it all, so a clean stop loses nothing. Ends when the source has been quiet for
    /// a moment, or after `DRAIN_LIMIT` if something keeps publishing.
    fn drain(&mut self, source: &mut impl InboundSource) {
        let until = Instant::now() + DRAIN_LIMIT;
        let mut drained = 0u64;
        while Instant::now() < until {
            match source.recv_until(Instant::now() + DRAIN_QUIET) {
                Received::Message(m) => {
                    self.handle(&m.topic, &m.payload, m.received_us);
                    self.pending_ack = Some(m.ack);
                    drained += 1;
                    if self.buf.len() - self.spooled_len >= SPOOL_CHUNK
                        && !self.commit_chunk(source)
                    {
                        break;
                    }
                }
                Received::Idle | Received::Closed(_) => break,
            }
        }
        if drained > 0 {
            info!(drained, "ingest took what was queued before stopping");
        }
    }

    /// Spool what was decoded since the last call (syncing it in `synced` mode) and
    /// release the acknowledgements of every message handled so far. `false` when the
    /// spool refused: the acknowledgements stay held and the loop is blocked.
    fn commit(&mut self, source: &mut impl InboundSource) -> bool {
        if !self.spool_tail() {
            return false;
        }
        if self.cfg.ack == AckMode::Synced {
            if self.outbox.sync().is_err() {
                self.set_blocked(true);
                return false;
            }
            self.unsynced = 0;
        }
        self.set_blocked(false);
        if let Some(token) = self.pending_ack.take() {
            source.release_through(token);
        }
        true
    }

    /// The middle of a long burst: spool what was decoded, and in `synced` mode sync and
    /// release only once `SYNC_CHUNK` bytes wait for it (the burst's end syncs the rest).
    fn commit_chunk(&mut self, source: &mut impl InboundSource) -> bool {
        if self.cfg.ack == AckMode::Synced {
            if !self.spool_tail() {
                return false;
            }
            if self.unsynced < SYNC_CHUNK {
                return true;
            }
        }
        self.commit(source)
    }

    /// Append the rows decoded since the last call to the spool. `false` when the spool
    /// refused them and the ack mode says to wait: they stay in the batch, unspooled.
    /// In `received` mode a full spool drops them (counted) and a failing disk leaves
    /// them to be sent from memory alone, as the devices were acknowledged already.
    fn spool_tail(&mut self) -> bool {
        let rows = self.buf.row_count() - self.spooled_rows;
        if rows == 0 {
            return true;
        }
        let tail = &self.buf.as_bytes()[self.spooled_len..];
        match self.outbox.append(tail, rows as u64) {
            Ok(()) => {
                self.mark_spooled();
                true
            }
            Err(refused) if self.cfg.ack.holds_acks() => {
                if !self.blocked {
                    warn!(reason = %refused, rows, "spool refuses rows; holding acknowledgements until it takes them");
                }
                self.set_blocked(true);
                false
            }
            Err(Refused::Failed(_)) => {
                self.mark_spooled();
                true
            }
            Err(Refused::Full) => {
                self.outbox.dropped(rows as u64);
                if let Err(e) = self.buf.rewind_to_marker() {
                    // No marker yet: the batch holds only the rows just refused.
                    debug!(error = %e, "no marker; clearing batch");
                    self.buf.clear();
                }
                true
            }
        }
    }

    fn mark_spooled(&mut self) {
        self.unsynced += self.buf.len() - self.spooled_len;
        self.spooled_len = self.buf.len();
        self.spooled_rows = self.buf.row_count();
        // Rows after this point can be taken back out if the spool fills up.
        if let Err(e) = self.buf.set_marker() {
            warn!(error = %e, "cannot mark ingest batch");
        }
    }

    fn set_blocked(&mut self, blocked: bool) {
        if self.blocked == blocked {
            return;
        }
        self.blocked = blocked;
        self.blocked_flag.store(blocked, Ordering::SeqCst);
        self.metrics.storage.spool_blocked.set(i64::from(blocked));
        if !blocked {
            info!("spool takes rows again; acknowledgements resume");
        }
    }

    fn maybe_flush(&mut self, source: &mut impl InboundSource, force: bool) {
        self.outbox.drain();
        let rows = self.buf.row_count();
        if rows == 0 {
            return;
        }
        let due = self
            .first_row_at
            .is_some_and(|t| t.elapsed() >= self.cfg.flush_interval);
        if !(force || due || rows >= self.cfg.batch_rows) {
            return;
        }
        let full_batch = rows >= self.cfg.batch_rows;
        // Only a batch that is all on disk is sent: its segment is its copy for replay.
        if !self.commit(source) {
            return;
        }
        let full = std::mem::replace(&mut self.buf, new_buffer());
        self.first_row_at = None;
        self.spooled_len = 0;
        self.spooled_rows = 0;
        // A healthy but busy writer is waited for when batches fill up: on two cores that
        // backpressure leaves QuestDB the CPU it needs (bench: 107-130K msg/s vs 98-110K
        // without). A batch sent because its time was up (light load) is not waited
        // for when PUBACKs wait for the spool: every acknowledgement would wait behind
        // QuestDB (p99 publish -> PUBACK at 10K msg/s: 17.8 ms waiting, 9.7 ms not).
        // A failing writer is never waited for: rules must go on while QuestDB is down,
        // and the batch waits in the spool.
        let wait = full_batch || !self.cfg.ack.holds_acks();
        self.buf = self.outbox.send(full, wait);
    }

    fn shed_row_due(&mut self, r: &crate::Reject) -> bool {
        let Some(device) = r.device_id.as_deref() else {
            return true;
        };
        let now = Instant::now();
        match self.shed_rows_at.get_mut(device) {
            Some(t) if now.duration_since(*t) < Duration::from_secs(1) => false,
            Some(t) => {
                *t = now;
                true
            }
            None => {
                self.shed_rows_at.insert(device.to_string(), now);
                true
            }
        }
    }

    fn handle(&mut self, topic: &[u8], payload: &[u8], received_us: Option<i64>) {
        self.metrics.received.inc();
        let dir = self.registry.directory();
        // A decoder bug must cost one message, not the ingest thread (and with it all
        // later data): the message is rejected and the panic counted.
        // One clock read per message: decoding's notion of now and the receive time agree.
        let received_us = received_us.unwrap_or_else(now_us);
        let decoded = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            contract::decode(topic, payload, &dir, received_us / 1000, &self.cfg)
        })) {
            Ok(d) => d,
            Err(_) => {
                self.metrics.decode_panics.inc();
                error!(
                    topic = %String::from_utf8_lossy(&topic[..topic.len().min(200)]),
                    "decoder panicked; message rejected"
                );
                let mut d = Decoded::default();
                d.rejects.push(crate::Reject {
                    reason: crate::RejectReason::BadShape,
                    device_id: None,
                    detail: "the hub could not decode this message (internal error); \
                             it was dropped and counted"
                        .into(),
                });
                d
            }
        };
        let before = self.buf.row_count();
        for r in &decoded.readings {
            match ilp::append_reading(&mut self.buf, r, received_us) {
                Ok(()) => {
                    self.metrics
                        .readings
                        .get_or_create(&KindLabel {
                            kind: r.kind.as_str(),
                        })
                        .inc();
                }
                Err(e) => warn!(error = %e, device = %r.device_id, "cannot encode reading"),
            }
        }
        for e in &decoded.events {
            match ilp::append_event(&mut self.buf, e, received_us) {
                Ok(()) => {
                    self.metrics.events.inc();
                }
                Err(err) => warn!(error = %err, device = %e.device_id, "cannot encode event"),
            }
        }
        for s in &decoded.statuses {
            match ilp::append_status(&mut self.buf, s, received_us) {
                Ok(()) => {
                    self.metrics.statuses.inc();
                }
                Err(err) => warn!(error = %err, device = %s.device_id, "cannot encode status"),
            }
        }
        for r in &decoded.rejects {
            self.metrics
                .rejected
                .get_or_create(&ReasonLabel {
                    reason: r.reason.as_str(),
                })
                .inc();
            debug!(reason = %r.reason, detail = %r.detail, "rejected");
            if r.reason == crate::RejectReason::RateLimited && !self.shed_row_due(r) {
                continue;
            }
            // Only registry-shaped ids become symbols; anything else stays in the detail.
            let device_id = r.device_id.as_deref().filter(|d| validate_id(d).is_ok());
            let row = RejectRow {
                received_us,
                device_id,
                reason: r.reason.as_str(),
                topic,
                detail: &r.detail,
                payload,
                keep_bytes: self.cfg.reject_payload_bytes,
            };
            if let Err(e) = ilp::append_reject(&mut self.buf, &row) {
                warn!(error = %e, "cannot encode reject");
            }
        }
        let added = self.buf.row_count() - before;
        if added > 0 {
            self.metrics.storage.pending_rows.inc_by(added as i64);
            self.first_row_at.get_or_insert_with(Instant::now);
        }
        if !(decoded.readings.is_empty()
            && decoded.events.is_empty()
            && decoded.statuses.is_empty())
        {
            if let Some((last, others)) = self.sinks.split_last_mut() {
                for s in others {
                    s.accept(&decoded);
                }
                last.accept_owned(decoded);
            }
        }
    }
}
