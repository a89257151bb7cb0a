//! The QuestDB writer: a dedicated thread (questdb-rs is blocking) that flushes full
//! buffers handed over by the ingest loop, retrying until QuestDB takes them.

use crate::metrics::IngestMetrics;
use crate::IngestError;
use questdb::ingress::{Buffer, ProtocolVersion, Sender};
use questdb::ErrorCode;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::{error, warn};

/// How many filled buffers may wait for the writer; beyond that the ingest loop blocks,
/// which is the backpressure that keeps memory bounded while QuestDB is slow.
const QUEUE: usize = 4;
/// A batch QuestDB refuses as invalid this many times is dropped (and counted) so one
/// bad row cannot stall the stream forever; network errors are retried without limit.
const MAX_INVALID_ATTEMPTS: u32 = 5;

pub struct Writer {
    /// Set while flushes fail (QuestDB down or refusing); cleared by the next success.
    failing: Arc<AtomicBool>,
    tx: Option<SyncSender<Buffer>>,
    recycle: Receiver<Buffer>,
    handle: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

pub fn new_buffer() -> Buffer {
    Buffer::new(ProtocolVersion::V2)
}

impl Writer {
    pub fn start(addr: SocketAddr, metrics: IngestMetrics) -> Result<Writer, IngestError> {
        let (tx, rx) = sync_channel::<Buffer>(QUEUE);
        let (recycle_tx, recycle) = sync_channel::<Buffer>(QUEUE + 2);
        let stop = Arc::new(AtomicBool::new(false));
        // protocol_version=2 lets the sender start while QuestDB is down (no probe).
        let conf = format!(
            "http::addr={addr};protocol_version=2;retry_timeout=1000;request_timeout=15000;"
        );
        Sender::from_conf(&conf).map_err(|e| IngestError::Writer(e.to_string()))?;
        let stop2 = stop.clone();
        let failing = Arc::new(AtomicBool::new(false));
        let failing2 = failing.clone();
        let handle = std::thread::Builder::new()
            .name("questdb-writer".into())
            .spawn(move || run(conf, rx, recycle_tx, metrics, stop2, failing2))
            .map_err(|e| IngestError::Writer(e.to_string()))?;
        Ok(Writer {
            failing,
            tx: Some(tx),
            recycle,
            handle: Some(handle),
            stop,
        })
    }

    /// Hand a filled buffer to the writer; blocks while the queue is full. Returns an
    /// empty buffer to keep filling.
    pub fn submit(&self, buf: Buffer) -> Buffer {
        if let Some(tx) = &self.tx {
            if let Err(e) = tx.send(buf) {
                error!("questdb writer is gone; batch lost");
                drop(e);
            }
        }
        self.recycle.try_recv().unwrap_or_else(|_| new_buffer())
    }

    /// Whether the last flush attempt failed (QuestDB down or refusing).
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// Hand a filled buffer over if the queue has room; otherwise give it back, so the
    /// caller can keep decoding (and feeding rules) while QuestDB is slow or down.
    pub fn try_submit(&self, buf: Buffer) -> Result<Buffer, Buffer> {
        match &self.tx {
            Some(tx) => match tx.try_send(buf) {
                Ok(()) => Ok(self.recycle.try_recv().unwrap_or_else(|_| new_buffer())),
                Err(std::sync::mpsc::TrySendError::Full(b)) => Err(b),
                Err(std::sync::mpsc::TrySendError::Disconnected(b)) => {
                    error!("questdb writer is gone; batch lost");
                    drop(b);
                    Ok(new_buffer())
                }
            },
            None => Ok(new_buffer()),
        }
    }

    /// Flush what is queued and stop. `deadline` bounds how long an unreachable QuestDB
    /// may delay shutdown.
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

fn run(
    conf: String,
    rx: Receiver<Buffer>,
    recycle: SyncSender<Buffer>,
    metrics: IngestMetrics,
    stop: Arc<AtomicBool>,
    failing: Arc<AtomicBool>,
) {
    let mut sender: Option<Sender> = None;
    while let Ok(mut buf) = rx.recv() {
        let rows = buf.row_count() as i64;
        let mut invalid_attempts = 0;
        let mut backoff = Duration::from_millis(50);
        loop {
            if sender.is_none() {
                match Sender::from_conf(&conf) {
                    Ok(s) => sender = Some(s),
                    Err(e) => warn!(error = %e, "cannot create questdb sender"),
                }
            }
            let result = match sender.as_mut() {
                Some(s) => s.flush_and_keep(&buf),
                None => Err(questdb::Error::new(
                    ErrorCode::SocketError,
                    "no sender".to_string(),
                )),
            };
            match result {
                Ok(()) => {
                    failing.store(false, Ordering::Relaxed);
                    metrics.rows_written.inc_by(rows as u64);
                    metrics.flushes.inc();
                    metrics.pending_rows.dec_by(rows);
                    break;
                }
                Err(e) => {
                    failing.store(true, Ordering::Relaxed);
                    metrics.flush_errors.inc();
                    if e.code() == ErrorCode::ServerFlushError {
                        invalid_attempts += 1;
                        if invalid_attempts >= MAX_INVALID_ATTEMPTS {
                            error!(error = %e, rows, "questdb refused a batch repeatedly; dropping it");
                            metrics.rows_dropped.inc_by(rows as u64);
                            metrics.pending_rows.dec_by(rows);
                            break;
                        }
                    } else {
                        // A broken connection is not reused.
                        sender = None;
                    }
                    if stop.load(Ordering::SeqCst) {
                        error!(error = %e, rows, "questdb unreachable at shutdown; batch lost");
                        metrics.rows_dropped.inc_by(rows as u64);
                        metrics.pending_rows.dec_by(rows);
                        break;
                    }
                    warn!(error = %e, rows, retry_in = ?backoff, "questdb flush failed");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
        buf.clear();
        let _ = recycle.try_send(buf);
    }
}
