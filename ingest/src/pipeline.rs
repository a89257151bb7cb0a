//! The ingest loop: one thread that takes forwarded publishes from the broker link,
//! decodes them, appends rows to the current QuestDB batch and hands decoded data to the
//! downstream sinks (rules).

use crate::contract;
use crate::metrics::{IngestMetrics, KindLabel, ReasonLabel};
use crate::questdb::ilp::{self, RejectRow};
use crate::reading::Decoded;
use crate::writer::{new_buffer, Writer};
use crate::{IngestConfig, IngestError};
use questdb::ingress::Buffer;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use steward_broker::{LinkRx, LinkTx, Notification};
use steward_estate::{validate_id, Registry};
use tracing::{debug, error, info, warn};

/// Downstream consumer of decoded messages (the rules engine). Called on the ingest
/// thread, so implementations hand work off instead of doing it inline.
pub trait DecodedSink: Send {
    fn accept(&mut self, decoded: &Decoded);
}

/// Filters ingest subscribes to: everything, so a topic outside the contract is seen and
/// rejected rather than silently ignored.
const FILTER: &str = "#";

pub struct Ingest {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

struct Loop {
    cfg: IngestConfig,
    registry: Registry,
    metrics: IngestMetrics,
    sinks: Vec<Box<dyn DecodedSink>>,
    buf: Buffer,
    first_row_at: Option<Instant>,
    /// Full batches the writer could not take yet (QuestDB slow or down), oldest first.
    /// Each stays at most `batch_rows` so no HTTP request grows past that.
    pending: std::collections::VecDeque<Buffer>,
    pending_rows: usize,
    writer: Writer,
}

impl Ingest {
    pub fn start(
        link: (LinkTx, LinkRx),
        registry: Registry,
        cfg: IngestConfig,
        writer: Writer,
        metrics: IngestMetrics,
        sinks: Vec<Box<dyn DecodedSink>>,
    ) -> Result<Ingest, IngestError> {
        let (mut tx, rx) = link;
        tx.subscribe(FILTER)
            .map_err(|e| IngestError::Link(e.to_string()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let state = Loop {
            cfg,
            registry,
            metrics,
            sinks,
            buf: new_buffer(),
            first_row_at: None,
            pending: std::collections::VecDeque::new(),
            pending_rows: 0,
            writer,
        };
        let thread = std::thread::Builder::new()
            .name("ingest".into())
            .spawn(move || state.run(tx, rx, stop2))
            .map_err(|e| IngestError::Link(e.to_string()))?;
        Ok(Ingest {
            stop,
            thread: Some(thread),
        })
    }

    /// Flush the current batch, let the writer drain (bounded by `deadline`) and stop.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Loop {
    fn run(mut self, _tx: LinkTx, mut rx: LinkRx, stop: Arc<AtomicBool>) {
        info!("ingest started");
        while !stop.load(Ordering::Relaxed) {
            let deadline = match self.first_row_at {
                Some(t) => t + self.cfg.flush_interval,
                None => Instant::now() + Duration::from_millis(100),
            };
            match rx.recv_deadline(deadline) {
                Ok(Some(Notification::Forward(f))) => {
                    self.handle(&f.publish.topic, &f.publish.payload);
                }
                Ok(Some(Notification::Unschedule)) => {
                    // The router parks a link whose queue filled up; it resumes only
                    // after we say we are ready again.
                    self.metrics.link_unscheduled.inc();
                    if let Err(e) = rx.ready() {
                        error!(error = %e, "cannot wake ingest link");
                        break;
                    }
                }
                Ok(Some(other)) => debug!(?other, "ignored notification"),
                Ok(None) => {}
                Err(steward_broker::LinkError::RecvTimeout(flume::RecvTimeoutError::Timeout)) => {}
                Err(e) => {
                    error!(error = %e, "ingest link closed");
                    break;
                }
            }
            self.maybe_flush(false);
        }
        self.maybe_flush(true);
        let Loop { writer, .. } = self;
        writer.shutdown(Duration::from_secs(10));
        info!("ingest stopped");
    }

    fn maybe_flush(&mut self, force: bool) {
        self.drain_pending(force);
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
        let full = std::mem::replace(&mut self.buf, new_buffer());
        self.first_row_at = None;
        if force {
            self.buf = self.writer.submit(full);
            return;
        }
        if self.pending.is_empty() {
            // A healthy but busy writer is waited for: on two cores that backpressure
            // leaves QuestDB the CPU it needs (bench: 107-130K msg/s vs 98-110K without).
            // A failing writer is not: rules must go on while QuestDB is down.
            let mut full = full;
            loop {
                match self.writer.try_submit(full) {
                    Ok(empty) => {
                        self.buf = empty;
                        return;
                    }
                    Err(kept) if self.writer.is_failing() => {
                        self.pending_rows += kept.row_count();
                        self.pending.push_back(kept);
                        break;
                    }
                    Err(kept) => {
                        full = kept;
                        std::thread::sleep(Duration::from_micros(500));
                    }
                }
            }
        } else {
            self.pending_rows += full.row_count();
            self.pending.push_back(full);
        }
        // The writer is busy (QuestDB slow or down): keep the batch and go on decoding,
        // so rules still see every message. At the memory bound, wait for the writer:
        // backpressure reaches the broker instead of memory growing without limit.
        if self.pending_rows >= self.cfg.max_buffered_rows {
            warn!(
                rows = self.pending_rows,
                "ingest buffer full; waiting for questdb"
            );
            self.drain_pending(true);
        }
    }

    /// Hand waiting batches to the writer in order; `block` waits until all are taken.
    fn drain_pending(&mut self, block: bool) {
        while let Some(b) = self.pending.pop_front() {
            let rows = b.row_count();
            if block {
                let _ = self.writer.submit(b);
            } else if let Err(kept) = self.writer.try_submit(b) {
                self.pending.push_front(kept);
                return;
            }
            self.pending_rows -= rows;
        }
    }

    fn handle(&mut self, topic: &[u8], payload: &[u8]) {
        self.metrics.received.inc();
        let dir = self.registry.directory();
        let decoded = contract::decode(topic, payload, &dir, now_ms(), &self.cfg);
        let received_us = now_us();
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
            self.metrics.pending_rows.inc_by(added as i64);
            self.first_row_at.get_or_insert_with(Instant::now);
        }
        if !(decoded.readings.is_empty()
            && decoded.events.is_empty()
            && decoded.statuses.is_empty())
        {
            for s in &mut self.sinks {
                s.accept(&decoded);
            }
        }
    }
}
