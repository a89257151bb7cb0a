//! Spool plus writer: rows go to disk first, sealed segments go to QuestDB in order, and
//! segments QuestDB could not take yet wait on disk (not in memory) until it can.

use crate::spool::{SegmentInfo, Spool};
use crate::writer::{Batch, Writer};
use crate::StorageError;
use crate::StorageMetrics;
use questdb::ingress::Buffer;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tracing::{error, warn};

/// Why the spool did not take rows.
#[derive(Debug)]
pub enum Refused {
    /// `ingest.spool_max_bytes` reached: QuestDB has been away long enough to fill it.
    Full,
    /// The disk refused the write (read-only, no space, I/O error).
    Failed(StorageError),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Full => f.write_str("spool full (ingest.spool_max_bytes)"),
            Refused::Failed(e) => write!(f, "{e}"),
        }
    }
}

/// Largest request made of segments waiting on disk.
const GROUP_BYTES: u64 = 16 << 20;

/// Longest pause for a busy but healthy writer before a batch waits on disk instead.
const MAX_WAIT: Duration = Duration::from_millis(50);

pub struct Outbox {
    spool: Spool,
    writer: Writer,
    /// Sealed segments the writer has not taken yet, oldest first; their bytes are on disk.
    pending: VecDeque<SegmentInfo>,
    metrics: StorageMetrics,
    full_warned: Option<Instant>,
}

impl Outbox {
    /// Open the spool in `dir` (sending again what a previous run left there) and start
    /// the writer to QuestDB at `questdb_http`.
    pub fn open(
        dir: &Path,
        max_bytes: u64,
        fsync: bool,
        questdb_http: SocketAddr,
        metrics: StorageMetrics,
    ) -> Result<Outbox, StorageError> {
        let (spool, found) = Spool::open(dir, max_bytes, fsync)?;
        let writer = Writer::start(
            questdb_http,
            dir.to_path_buf(),
            spool.shared_bytes(),
            metrics.clone(),
        )?;
        metrics.spool_bytes.set(spool.disk_bytes() as i64);
        metrics.spool_segments.set(found.len() as i64);
        metrics.spool_replayed_segments.inc_by(found.len() as u64);
        metrics
            .pending_rows
            .inc_by(found.iter().map(|s| s.rows as i64).sum());
        let mut outbox = Outbox {
            spool,
            writer,
            pending: found.into(),
            metrics,
            full_warned: None,
        };
        outbox.drain();
        Ok(outbox)
    }

    /// Append whole ILP rows to the open segment. On `Err` nothing of them is on disk:
    /// the caller decides whether to wait (holding acknowledgements) or to drop them
    /// (`dropped`) or to send them from memory alone.
    pub fn append(&mut self, ilp: &[u8], rows: u64) -> Result<(), Refused> {
        if self.spool.is_full(ilp.len()) {
            if self.warn_due() {
                warn!(
                    bytes = self.spool.disk_bytes(),
                    "spool full (ingest.spool_max_bytes): new rows wait until QuestDB catches up"
                );
            }
            return Err(Refused::Full);
        }
        if let Err(e) = self.spool.append(ilp, rows) {
            self.metrics.spool_write_errors.inc();
            if self.warn_due() {
                error!(error = %e, "cannot write to the spool");
            }
            return Err(Refused::Failed(e));
        }
        self.metrics.spool_bytes.set(self.spool.disk_bytes() as i64);
        Ok(())
    }

    /// Make what was appended survive a power cut (the `synced` ack mode).
    pub fn sync(&mut self) -> Result<(), StorageError> {
        self.spool.sync().inspect_err(|e| {
            self.metrics.spool_write_errors.inc();
            if self.warn_due() {
                error!(error = %e, "cannot sync the spool to disk");
            }
        })
    }

    /// Count rows the caller dropped after the spool refused them.
    pub fn dropped(&mut self, rows: u64) {
        self.metrics.spool_full_dropped_rows.inc_by(rows);
        self.metrics.pending_rows.dec_by(rows as i64);
    }

    /// Whether a warning about a refusing spool is due (one per 10 s, not one per batch).
    fn warn_due(&mut self) -> bool {
        let due = self
            .full_warned
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        if due {
            self.full_warned = Some(Instant::now());
        }
        due
    }

    /// Seal the open segment and hand it, with its bytes in `data`, to the writer.
    /// `wait_if_busy`: wait a little while a healthy writer is busy (that pause leaves
    /// QuestDB its CPU); never wait for a failing one, and never long, so decoding and
    /// rules go on and the broker's in-memory log never grows towards the point where
    /// rumqttd drops a lagging subscriber's data. What the writer cannot take yet waits in
    /// the spool on disk.
    /// Returns an empty buffer to fill next.
    pub fn send(&mut self, data: Buffer, wait_if_busy: bool) -> Buffer {
        let segment = match self.spool.seal() {
            Ok(Some(s)) => s,
            Ok(None) => return data,
            Err(e) => {
                warn!(error = %e, "cannot seal spool segment");
                return data;
            }
        };
        self.metrics.spool_segments.inc();
        self.drain();
        if !self.pending.is_empty() {
            self.pending.push_back(segment);
            return self.recycled(data);
        }
        let mut batch = Batch {
            segment,
            data: Some(data),
            more: Vec::new(),
        };
        let give_up = Instant::now() + MAX_WAIT;
        loop {
            match self.writer.try_submit(batch) {
                Ok(()) => return self.writer.buffer(),
                Err(kept)
                    if !wait_if_busy || self.writer.is_failing() || Instant::now() > give_up =>
                {
                    self.pending.push_back(kept.segment);
                    return kept
                        .data
                        .map_or_else(|| self.writer.buffer(), |d| self.recycled(d));
                }
                Err(kept) => {
                    batch = kept;
                    std::thread::sleep(Duration::from_micros(500));
                }
            }
        }
    }

    fn recycled(&self, mut data: Buffer) -> Buffer {
        data.clear();
        data
    }

    /// Hand waiting segments to the writer while it has room, grouped up to
    /// `GROUP_BYTES` per request.
    pub fn drain(&mut self) {
        while let Some(segment) = self.pending.pop_front() {
            let mut bytes = segment.bytes;
            let mut more = Vec::new();
            while let Some(next) = self.pending.front() {
                if bytes + next.bytes > GROUP_BYTES {
                    break;
                }
                bytes += next.bytes;
                more.extend(self.pending.pop_front());
            }
            if let Err(kept) = self.writer.try_submit(Batch {
                segment,
                data: None,
                more,
            }) {
                for s in kept.more.into_iter().rev() {
                    self.pending.push_front(s);
                }
                self.pending.push_front(kept.segment);
                return;
            }
        }
    }

    /// Seal what is open, try to deliver everything for up to `deadline`, and stop.
    /// Whatever QuestDB has not taken by then stays in the spool for the next start.
    pub fn shutdown(mut self, data: Buffer, deadline: Duration) {
        let start = Instant::now();
        let _ = self.send(data, false);
        while !self.pending.is_empty() && start.elapsed() < deadline {
            self.drain();
            if !self.pending.is_empty() {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.writer
            .shutdown(deadline.saturating_sub(start.elapsed()));
    }
}
