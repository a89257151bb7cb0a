//! The QuestDB writer: a dedicated thread that sends sealed spool segments to QuestDB's
//! ILP-over-HTTP endpoint and deletes each segment once QuestDB has taken it.
//!
//! Segments are sent as raw ILP bytes (the same bytes questdb-rs encodes), because a
//! segment replayed after a restart exists only as bytes on disk. Network errors and 5xx
//! are retried without limit; a segment QuestDB refuses as invalid several times is moved
//! to `dead/` in the spool (kept for inspection, counted) so it cannot stall the stream.

use crate::spool::{read_segment, segment_path, SegmentInfo};
use crate::StorageError;
use crate::StorageMetrics;
pub use questdb::ingress::Buffer;
use questdb::ingress::ProtocolVersion;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{error, info, warn};

/// How many sealed segments may wait for the writer with their bytes still in memory;
/// beyond that a healthy but busy writer makes the ingest loop wait.
const QUEUE: usize = 4;
/// A segment QuestDB refuses as invalid this many times is set aside.
const MAX_INVALID_ATTEMPTS: u32 = 5;

/// A sealed segment handed to the writer; `data` holds its bytes when they are still in
/// memory, otherwise the writer reads the segment file.
pub struct Batch {
    pub segment: SegmentInfo,
    pub data: Option<Buffer>,
    /// Further segments on disk sent in the same request (only when `data` is `None`):
    /// a backlog goes out in large requests, not one small one per segment.
    pub more: Vec<SegmentInfo>,
}

pub struct Writer {
    /// Set while sends fail (QuestDB down or refusing); cleared by the next success.
    failing: Arc<AtomicBool>,
    tx: Option<SyncSender<Batch>>,
    recycle: Receiver<Buffer>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

pub fn new_buffer() -> Buffer {
    Buffer::new(ProtocolVersion::V2)
}

impl Writer {
    /// Start the writer for the spool in `dir`; `spool_bytes` is the spool's on-disk total,
    /// which the writer lowers as segments are delivered.
    pub fn start(
        addr: SocketAddr,
        dir: PathBuf,
        spool_bytes: Arc<AtomicU64>,
        metrics: StorageMetrics,
    ) -> Result<Writer, StorageError> {
        let (tx, rx) = sync_channel::<Batch>(QUEUE);
        let (recycle_tx, recycle) = sync_channel::<Buffer>(QUEUE + 2);
        let stop = Arc::new(AtomicBool::new(false));
        let failing = Arc::new(AtomicBool::new(false));
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let ctx = Ctx {
            url: format!("http://{addr}/write?precision=n"),
            agent,
            dir,
            spool_bytes,
            metrics,
            stop: stop.clone(),
            failing: failing.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("questdb-writer".into())
            .spawn(move || run(ctx, rx, recycle_tx))
            .map_err(|e| StorageError::Writer {
                reason: e.to_string(),
            })?;
        Ok(Writer {
            failing,
            tx: Some(tx),
            recycle,
            handle: Some(handle),
            stop,
        })
    }

    /// A cleared buffer to fill, reusing one the writer has finished with.
    pub fn buffer(&self) -> Buffer {
        self.recycle.try_recv().unwrap_or_else(|_| new_buffer())
    }

    /// Hand a sealed segment to the writer; blocks while the queue is full.
    pub fn submit(&self, batch: Batch) {
        if let Some(tx) = &self.tx {
            if tx.send(batch).is_err() {
                error!("questdb writer is gone; the segment stays in the spool");
            }
        }
    }

    /// Whether the last send failed (QuestDB down or refusing).
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Hand a segment over if the queue has room; otherwise give it back.
    // Handing the batch back by value keeps the hot path free of a box per batch.
    #[allow(clippy::result_large_err)]
    pub fn try_submit(&self, batch: Batch) -> Result<(), Batch> {
        match &self.tx {
            Some(tx) => match tx.try_send(batch) {
                Ok(()) => Ok(()),
                Err(std::sync::mpsc::TrySendError::Full(b)) => Err(b),
                Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                    error!("questdb writer is gone; the segment stays in the spool");
                    Ok(())
                }
            },
            None => Ok(()),
        }
    }

    /// Send what is queued and stop. `deadline` bounds how long an unreachable QuestDB
    /// may delay shutdown; what is not sent by then stays in the spool for the next start.
    pub fn shutdown(mut self, deadline: Duration) {
        self.tx.take();
        if let Some(h) = self.handle.take() {
            let start = std::time::Instant::now();
            while !h.is_finished() && start.elapsed() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.stop.store(true, Ordering::SeqCst);
            let _ = h.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.tx.take();
    }
}

struct Ctx {
    url: String,
    agent: ureq::Agent,
    dir: PathBuf,
    spool_bytes: Arc<AtomicU64>,
    metrics: StorageMetrics,
    stop: Arc<AtomicBool>,
    failing: Arc<AtomicBool>,
}

enum SendError {
    /// QuestDB answered that the data is invalid.
    Refused(String),
    /// QuestDB unreachable, timed out or failing (5xx): worth retrying.
    Transport(String),
}

impl Ctx {
    fn send(&self, body: &[u8]) -> Result<(), SendError> {
        let resp = self
            .agent
            .post(&self.url)
            .header("Content-Type", "text/plain; charset=utf-8")
            .send(body)
            .map_err(|e| SendError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let mut resp = resp;
        let text = resp
            .body_mut()
            .with_config()
            .limit(4096)
            .read_to_string()
            .unwrap_or_default();
        let msg = format!("HTTP {status}: {}", text.trim());
        if (400..500).contains(&status) {
            Err(SendError::Refused(msg))
        } else {
            Err(SendError::Transport(msg))
        }
    }

    fn delivered(&self, seg: &SegmentInfo) {
        let path = segment_path(&self.dir, seg.id);
        if let Err(e) = std::fs::remove_file(&path) {
            // A segment that stays is sent again at the next start; DEDUP absorbs it.
            warn!(file = %path.display(), error = %e, "cannot delete delivered segment");
        }
        self.release(seg);
        self.metrics.pending_rows.dec_by(seg.rows as i64);
        self.metrics.rows_written.inc_by(seg.rows);
        self.metrics.flushes.inc();
    }

    fn set_aside(&self, seg: &SegmentInfo, why: &str) {
        let path = segment_path(&self.dir, seg.id);
        let dead = self.dir.join("dead");
        let moved = std::fs::create_dir_all(&dead)
            .and_then(|_| std::fs::rename(&path, dead.join(path.file_name().unwrap_or_default())));
        error!(
            segment = seg.id,
            rows = seg.rows,
            reason = why,
            moved = moved.is_ok(),
            "questdb refused a spool segment repeatedly; set aside in spool/dead"
        );
        self.release(seg);
        self.metrics.pending_rows.dec_by(seg.rows as i64);
        self.metrics.rows_dropped.inc_by(seg.rows);
    }

    fn release(&self, seg: &SegmentInfo) {
        let prev = self
            .spool_bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some(b.saturating_sub(seg.bytes))
            })
            .unwrap_or(0);
        let left = prev.saturating_sub(seg.bytes);
        self.metrics.spool_bytes.set(left as i64);
        self.metrics.spool_segments.dec();
    }
}

fn run(ctx: Ctx, rx: Receiver<Batch>, recycle: SyncSender<Buffer>) {
    while let Ok(batch) = rx.recv() {
        let delivered = match &batch.data {
            Some(buf) => deliver(&ctx, std::slice::from_ref(&batch.segment), buf.as_bytes()),
            None => {
                let mut group = vec![batch.segment.clone()];
                group.extend(batch.more.iter().cloned());
                deliver_from_disk(&ctx, &group)
            }
        };
        if !delivered {
            return;
        }
        if let Some(mut buf) = batch.data {
            buf.clear();
            let _ = recycle.try_send(buf);
        }
    }
}

/// Send segments waiting on disk, several per request; if QuestDB refuses the group,
/// each segment is tried alone so one bad segment does not take the others with it.
/// `false` when stopping with QuestDB unreachable.
fn deliver_from_disk(ctx: &Ctx, group: &[SegmentInfo]) -> bool {
    let mut body = Vec::new();
    let mut readable = Vec::new();
    for seg in group {
        match read_segment(&segment_path(&ctx.dir, seg.id)) {
            Ok(b) => {
                body.extend_from_slice(&b);
                readable.push(seg.clone());
            }
            Err(e) => {
                error!(segment = seg.id, error = %e, "cannot read spool segment");
                ctx.set_aside(seg, "unreadable");
            }
        }
    }
    if readable.is_empty() {
        return true;
    }
    if readable.len() == 1 {
        return deliver(ctx, &readable, &body);
    }
    match send_retrying(ctx, &readable, &body, 1) {
        Outcome::Delivered => {
            readable.iter().for_each(|s| ctx.delivered(s));
            true
        }
        Outcome::Stopped => false,
        Outcome::Refused(_) => readable.iter().all(|seg| {
            read_segment(&segment_path(&ctx.dir, seg.id))
                .map(|b| deliver(ctx, std::slice::from_ref(seg), &b))
                .unwrap_or_else(|_| {
                    ctx.set_aside(seg, "unreadable");
                    true
                })
        }),
    }
}

/// Send `body` (the bytes of `segs`) until QuestDB takes it; set the segments aside
/// after repeated refusals. `false` when stopping with QuestDB unreachable.
fn deliver(ctx: &Ctx, segs: &[SegmentInfo], body: &[u8]) -> bool {
    match send_retrying(ctx, segs, body, MAX_INVALID_ATTEMPTS) {
        Outcome::Delivered => {
            segs.iter().for_each(|s| ctx.delivered(s));
            true
        }
        Outcome::Refused(m) => {
            segs.iter().for_each(|s| ctx.set_aside(s, &m));
            true
        }
        Outcome::Stopped => false,
    }
}

enum Outcome {
    Delivered,
    Refused(String),
    Stopped,
}

fn send_retrying(ctx: &Ctx, segs: &[SegmentInfo], body: &[u8], max_refusals: u32) -> Outcome {
    let rows: u64 = segs.iter().map(|s| s.rows).sum();
    let mut refusals = 0;
    let mut backoff = Duration::from_millis(50);
    loop {
        let msg = match ctx.send(body) {
            Ok(()) => {
                if ctx.failing.swap(false, Ordering::Relaxed) {
                    info!("questdb takes writes again");
                }
                return Outcome::Delivered;
            }
            Err(SendError::Refused(m)) => {
                refusals += 1;
                if refusals >= max_refusals {
                    return Outcome::Refused(m);
                }
                m
            }
            Err(SendError::Transport(m)) => m,
        };
        ctx.failing.store(true, Ordering::Relaxed);
        ctx.metrics.flush_errors.inc();
        if ctx.stop.load(Ordering::SeqCst) {
            warn!(rows, error = %msg, "questdb unreachable at shutdown; the rows stay in the spool");
            return Outcome::Stopped;
        }
        warn!(error = %msg, rows, retry_in = ?backoff, "questdb write failed");
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}
