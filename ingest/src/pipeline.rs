//! The ingest loop: one thread that takes messages from an [`InboundSource`] (the broker
//! link, or in cluster mode a Kafka consumer), decodes them, appends rows to the current
//! QuestDB batch and hands decoded data to the downstream sinks (rules).

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
use steward_estate::inbound::{InboundSource, Received};
use steward_estate::{validate_id, Registry};
use steward_estate::{Decoded, DecodedSink};
use steward_storage::questdb::ilp::{self, RejectRow};
use steward_storage::{new_buffer, Outbox};
use tracing::{debug, error, info, warn};

/// While messages keep coming, the batch is checked for its flush interval and finished
/// writes are collected once per this many messages, not after every one.
const CHECK_EVERY: u32 = 64;

pub struct Ingest {
    stop: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
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
}

/// Unspooled bytes after which the ingest loop writes to the spool even in the middle of
/// a burst: bounds what a killed hub can lose from its own memory.
const SPOOL_CHUNK: usize = 64 * 1024;

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
        let state = Loop {
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
            thread: Some(thread),
        })
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
        info!("ingest started");
        // A deadline already past makes `recv_until` a non-blocking receive.
        let past = Instant::now();
        let mut since_check = 0u32;
        while !stop.load(Ordering::Relaxed) {
            // Take what the source has queued without waiting; when nothing is, the burst
            // has ended: spool its tail, hand the rules what they wait for, then wait.
            let next = match source.recv_until(past) {
                Received::Idle => {
                    for s in &mut self.sinks {
                        s.flush();
                    }
                    self.spool_tail();
                    self.maybe_flush(false);
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
                    self.handle(&m.topic, &m.payload);
                    // Today's sources acknowledge on their own (rumqttd, at receipt); a
                    // source that waits for us is released once the message is decoded
                    // and queued for the spool.
                    m.ack.release();
                }
                Received::Idle => {}
                Received::Closed(reason) => {
                    error!(reason, "ingest source closed");
                    break;
                }
            }
            if self.buf.len() - self.spooled_len >= SPOOL_CHUNK {
                self.spool_tail();
            }
            since_check += 1;
            if since_check >= CHECK_EVERY || self.buf.row_count() >= self.cfg.batch_rows {
                since_check = 0;
                self.maybe_flush(false);
            }
        }
        for s in &mut self.sinks {
            s.flush();
        }
        self.spool_tail();
        let Loop { outbox, buf, .. } = self;
        outbox.shutdown(buf, Duration::from_secs(10));
        info!("ingest stopped");
    }

    /// Append the rows decoded since the last call to the spool; if the spool is full,
    /// take them back out of the batch (the outbox counts them).
    fn spool_tail(&mut self) {
        let rows = self.buf.row_count() - self.spooled_rows;
        if rows == 0 {
            return;
        }
        let tail = &self.buf.as_bytes()[self.spooled_len..];
        if self.outbox.append(tail, rows as u64) {
            self.spooled_len = self.buf.len();
            self.spooled_rows = self.buf.row_count();
            // Rows after this point can be taken back out if the spool fills up.
            if let Err(e) = self.buf.set_marker() {
                warn!(error = %e, "cannot mark ingest batch");
            }
        } else if let Err(e) = self.buf.rewind_to_marker() {
            // No marker yet: the batch holds only the rows just refused.
            debug!(error = %e, "no marker; clearing batch");
            self.buf.clear();
        }
    }

    fn maybe_flush(&mut self, force: bool) {
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
        self.spool_tail();
        let full = std::mem::replace(&mut self.buf, new_buffer());
        self.first_row_at = None;
        self.spooled_len = 0;
        self.spooled_rows = 0;
        // A healthy but busy writer is waited for: on two cores that backpressure
        // leaves QuestDB the CPU it needs (bench: 107-130K msg/s vs 98-110K without).
        // A failing writer is not: rules must go on while QuestDB is down, and the
        // batch waits in the spool.
        self.buf = self.outbox.send(full, true);
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

    fn handle(&mut self, topic: &[u8], payload: &[u8]) {
        self.metrics.received.inc();
        let dir = self.registry.directory();
        // A decoder bug must cost one message, not the ingest thread (and with it all
        // later data): the message is rejected and the panic counted.
        // One clock read per message: decoding's notion of now and the receive time agree.
        let received_us = now_us();
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
