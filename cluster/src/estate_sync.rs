//! Keeps the estate registries of a cluster's nodes alike. Every node loads the same
//! estate file, but the API changes one node's registry at run time (devices registered,
//! retired or given a new secret; tokens created or revoked; maintenance windows): the
//! registry records each such change (steward-estate's `changes`), [`EstateSync`]
//! publishes it to the shared PostgreSQL log and replays the log into its registry.
//!
//! Every node applies the whole log in id order, its own changes included: two nodes
//! changing one device at once then end with the same device (the later entry's) on
//! both, which skipping one's own entries would not give. A local change not yet in the
//! log makes the registry skip older log entries of the same thing (it is newer and will
//! be applied after them). A change a registry refuses (e.g. a building its estate file
//! lacks) is logged and counted, and the log goes on.

use crate::ClusterError;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use steward_estate::changes::Change;
use steward_estate::{EstateError, Registry};
use steward_pgstore::{PgEstateLog, PgStoreError};

/// How often local changes are published and others' applied.
pub const ESTATE_SYNC_INTERVAL: Duration = Duration::from_millis(500);

/// Changes read or written per round trip.
const BATCH: usize = 500;

/// What the sync has done since it started; read them at any time.
#[derive(Debug, Default)]
pub struct EstateSyncCounters {
    /// Local changes appended to the log.
    pub published: AtomicU64,
    /// Log entries applied to the registry (own ones included).
    pub applied: AtomicU64,
    /// Log entries skipped as older than a local change not yet published.
    pub skipped: AtomicU64,
    /// Log entries the registry refused or could not read; the log goes on past them.
    pub refused: AtomicU64,
    /// Rounds that failed (PostgreSQL unreachable, registry error); retried.
    pub errors: AtomicU64,
    /// Id of the last log entry read.
    pub last_id: AtomicI64,
}

#[derive(Debug, thiserror::Error)]
enum SyncError {
    #[error("estate log: {0}")]
    Log(#[from] PgStoreError),
    #[error("registry: {0}")]
    Estate(#[from] EstateError),
    #[error("estate change: {0}")]
    Json(#[from] serde_json::Error),
}

struct Syncer {
    registry: Registry,
    log: PgEstateLog,
    origin: String,
    counters: Arc<EstateSyncCounters>,
}

impl Syncer {
    /// Append every recorded change to the log, oldest first, then forget them.
    fn publish(&self) -> Result<(), SyncError> {
        loop {
            let pending = self.registry.pending_changes(BATCH)?;
            let Some(&(last, _)) = pending.last() else {
                return Ok(());
            };
            let values = pending
                .iter()
                .map(|(_, c)| serde_json::to_value(c))
                .collect::<Result<Vec<_>, _>>()?;
            self.log.append(&self.origin, &values)?;
            // A crash between the append and this leaves them to be appended again at
            // the next start: a replay of results, harmless.
            self.registry.ack_changes(last)?;
            self.counters
                .published
                .fetch_add(pending.len() as u64, Ordering::Relaxed);
            if pending.len() < BATCH {
                return Ok(());
            }
        }
    }

    /// Apply every log entry after the last one read.
    fn pull(&self) -> Result<(), SyncError> {
        loop {
            let after = self.counters.last_id.load(Ordering::Relaxed);
            let rows = self.log.after(after, BATCH)?;
            let Some(last) = rows.last().map(|r| r.0) else {
                return Ok(());
            };
            let mut ids = Vec::with_capacity(rows.len());
            let mut changes = Vec::with_capacity(rows.len());
            for (id, origin, value) in rows.iter() {
                match serde_json::from_value::<Change>(value.clone()) {
                    Ok(c) => {
                        ids.push(*id);
                        changes.push(c);
                    }
                    Err(e) => {
                        // Written by a newer version, perhaps: this node cannot use it.
                        tracing::warn!(id, origin, error = %e, "estate change not understood; skipped");
                        self.counters.refused.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            let done = self.registry.apply_changes(&changes)?;
            for (i, e) in &done.failed {
                tracing::warn!(id = ids[*i], error = %e, "estate change refused by this node's registry; skipped");
            }
            let c = &self.counters;
            c.applied.fetch_add(done.applied as u64, Ordering::Relaxed);
            c.skipped.fetch_add(done.skipped as u64, Ordering::Relaxed);
            c.refused
                .fetch_add(done.failed.len() as u64, Ordering::Relaxed);
            c.last_id.store(last, Ordering::Relaxed);
            if rows.len() < BATCH {
                return Ok(());
            }
        }
    }

    fn round(&self) {
        // Publishing first puts local changes in the log before older entries of the
        // same things are read; a failed publish leaves them in the outbox, where they
        // still make those entries skipped, so pulling goes on.
        if let Err(e) = self.publish() {
            self.failed("publish", e);
        }
        if let Err(e) = self.pull() {
            self.failed("apply", e);
        }
    }

    fn failed(&self, what: &str, e: SyncError) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(error = %e, "estate sync: {what} failed; retrying");
    }
}

/// The estate sync of one node: a thread publishing this registry's run-time changes to
/// the PostgreSQL log and applying the log's changes to it.
pub struct EstateSync {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<EstateSyncCounters>,
}

impl std::fmt::Debug for EstateSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EstateSync")
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

impl EstateSync {
    /// Connect to the log at `url` (a libpq connection string) and [`EstateSync::start`].
    pub fn connect(
        registry: Registry,
        url: &str,
        origin: String,
    ) -> Result<EstateSync, ClusterError> {
        let log = PgEstateLog::connect(url).map_err(start_err)?;
        Self::start(registry, log, origin)
    }

    /// Start recording the registry's changes, catch up (publish what a previous run
    /// left unpublished, apply the whole log: call this after the estate file was
    /// applied), then sync every [`ESTATE_SYNC_INTERVAL`] on a thread of its own.
    /// `origin` names this node in the log. Fails only when catching up fails; after
    /// that, errors are logged, counted and retried. Blocks (PostgreSQL round trips).
    pub fn start(
        registry: Registry,
        log: PgEstateLog,
        origin: String,
    ) -> Result<EstateSync, ClusterError> {
        registry.record_changes().map_err(start_err)?;
        let syncer = Syncer {
            registry,
            log,
            origin,
            counters: Arc::default(),
        };
        syncer.publish().map_err(start_err)?;
        syncer.pull().map_err(start_err)?;
        tracing::info!(
            origin = %syncer.origin,
            applied = syncer.counters.applied.load(Ordering::Relaxed),
            last_id = syncer.counters.last_id.load(Ordering::Relaxed),
            "estate caught up with the cluster log"
        );
        let counters = syncer.counters.clone();
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("estate-sync".into())
            .spawn(move || loop {
                match stopped.recv_timeout(ESTATE_SYNC_INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => syncer.round(),
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        if let Err(e) = syncer.publish() {
                            // They stay in the registry's outbox for the next start.
                            syncer.failed("final publish", e);
                        }
                        return;
                    }
                }
            })
            .map_err(|e| ClusterError::Start(format!("estate sync thread: {e}")))?;
        Ok(EstateSync {
            stop: Some(stop),
            thread: Some(thread),
            counters,
        })
    }

    pub fn counters(&self) -> &EstateSyncCounters {
        &self.counters
    }

    /// Publish the changes not yet published and stop. Blocks until done.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("estate sync thread panicked");
            }
        }
    }
}

impl Drop for EstateSync {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn start_err(e: impl Into<SyncError>) -> ClusterError {
    ClusterError::Start(format!("estate sync: {}", e.into()))
}
