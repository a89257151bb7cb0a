//! The running rounds stage: its `[rounds]` configuration and a thread that generates due
//! rounds, applies telemetry evidence handed over by [`RoundsSink`], and reloads the
//! schedule file when it changes (polling its size and mtime, like rule files).

use crate::engine::Rounds;
use crate::evidence::{Obs, RoundsSink};
use crate::schedule::ScheduleSet;
use crate::store::RoundStore;
use crate::RoundsError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use steward_estate::clock::Clock;
use steward_estate::Registry;
use steward_tickets::TicketDesk;
use tracing::{error, info, warn};

/// `[rounds]` section of the hub configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoundsConfig {
    /// Schedule file (docs/rounds.md); unset: no planned rounds.
    pub schedules: Option<PathBuf>,
    /// Rounds and their checklist items; unset: `rounds.db` next to the ticket database.
    pub database: Option<PathBuf>,
    /// Reload the schedule file when it changes (polling).
    pub watch: bool,
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
    /// How often due rounds are looked for.
    #[serde(with = "humantime_serde")]
    pub generate_interval: Duration,
    /// Batches of telemetry evidence waiting for the rounds thread; beyond it they are
    /// dropped and counted.
    pub queue_capacity: usize,
}

impl Default for RoundsConfig {
    fn default() -> Self {
        RoundsConfig {
            schedules: None,
            database: None,
            watch: true,
            watch_interval: Duration::from_secs(2),
            generate_interval: Duration::from_secs(60),
            queue_capacity: 1024,
        }
    }
}

impl RoundsConfig {
    /// Every problem, each naming its key; the schedule file itself is validated whole.
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if let Some(p) = &self.schedules {
            if let Err(err) = ScheduleSet::load(p) {
                e.push(format!("rounds.schedules: {err}"));
            }
        }
        if self
            .database
            .as_ref()
            .is_some_and(|d| d.as_os_str().is_empty())
        {
            e.push("rounds.database: must not be empty".into());
        }
        if self.watch_interval < Duration::from_millis(100) {
            e.push("rounds.watch_interval: must be at least 100ms".into());
        }
        if self.generate_interval < Duration::from_millis(100)
            || self.generate_interval > Duration::from_secs(3600)
        {
            e.push("rounds.generate_interval: must be between 100ms and 1h".into());
        }
        if self.queue_capacity == 0 {
            e.push("rounds.queue_capacity: must be positive".into());
        }
        e
    }
}

/// The hub's handle on the running stage.
pub struct RoundsHandle {
    rounds: Rounds,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Evidence observations dropped because the queue was full.
    pub dropped: Arc<AtomicUsize>,
    /// Schedule file reloads, and changes refused as invalid.
    pub reloads: Arc<AtomicUsize>,
    pub reload_errors: Arc<AtomicUsize>,
}

impl RoundsHandle {
    pub fn rounds(&self) -> &Rounds {
        &self.rounds
    }

    /// Stop the thread after it has applied what it was handed.
    pub fn shutdown(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Open the store at `database`, load the schedules and start the thread; the sink goes
/// to ingest.
pub fn start(
    cfg: &RoundsConfig,
    database: &Path,
    registry: Registry,
    desk: TicketDesk,
    clock: Arc<dyn Clock>,
) -> Result<(RoundsSink, RoundsHandle), RoundsError> {
    let store = RoundStore::open(database)?;
    let set = match &cfg.schedules {
        Some(p) => ScheduleSet::load(p)?,
        None => ScheduleSet::default(),
    };
    info!(schedules = set.schedules.len(), "rounds schedules loaded");
    let rounds = Rounds::new(store, desk, registry, set)?;
    let (tx, rx) = sync_channel::<Vec<Obs>>(cfg.queue_capacity);
    let dropped = Arc::new(AtomicUsize::new(0));
    let sink = RoundsSink::new(rounds.shared_filter(), tx, dropped.clone());
    let stop = Arc::new(AtomicBool::new(false));
    let (reloads, reload_errors) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let worker = Worker {
        rounds: rounds.clone(),
        rx,
        clock,
        watch: cfg.schedules.clone().filter(|_| cfg.watch),
        stamp: cfg.schedules.as_deref().map(stamp),
        cfg: cfg.clone(),
        stop: stop.clone(),
        reloads: reloads.clone(),
        reload_errors: reload_errors.clone(),
    };
    let thread = std::thread::Builder::new()
        .name("steward-rounds".into())
        .spawn(move || worker.run())
        .map_err(|e| RoundsError::Start(e.to_string()))?;
    Ok((
        sink,
        RoundsHandle {
            rounds,
            stop,
            thread: Some(thread),
            dropped,
            reloads,
            reload_errors,
        },
    ))
}

struct Worker {
    rounds: Rounds,
    rx: Receiver<Vec<Obs>>,
    clock: Arc<dyn Clock>,
    watch: Option<PathBuf>,
    stamp: Option<(u64, Option<SystemTime>)>,
    cfg: RoundsConfig,
    stop: Arc<AtomicBool>,
    reloads: Arc<AtomicUsize>,
    reload_errors: Arc<AtomicUsize>,
}

impl Worker {
    fn run(mut self) {
        let mut next_gen = Instant::now();
        let mut next_watch = Instant::now() + self.cfg.watch_interval;
        loop {
            let now = Instant::now();
            if now >= next_gen {
                if let Err(e) = self.rounds.generate(self.clock.now_ms()) {
                    error!(error = %e, "cannot generate rounds");
                }
                next_gen = now + self.cfg.generate_interval;
            }
            if now >= next_watch {
                self.poll_file();
                next_watch = now + self.cfg.watch_interval;
            }
            let wait = next_gen.min(next_watch).saturating_duration_since(now);
            match self.rx.recv_timeout(wait) {
                Ok(batch) => self.apply(&batch),
                Err(RecvTimeoutError::Timeout) => {}
                // Every sender is gone: the hub stopped ingest and dropped its handle.
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if self.stop.load(Ordering::SeqCst) {
                // Apply what ingest already handed over, so a clean stop loses nothing.
                while let Ok(batch) = self.rx.try_recv() {
                    self.apply(&batch);
                }
                break;
            }
        }
        info!("rounds stopped");
    }

    fn apply(&self, batch: &[Obs]) {
        if let Err(e) = self.rounds.observe(batch) {
            error!(error = %e, "cannot apply telemetry evidence to rounds");
        }
    }

    fn poll_file(&mut self) {
        let Some(path) = self.watch.clone() else {
            return;
        };
        let now = stamp(&path);
        if self.stamp == Some(now) {
            return;
        }
        self.stamp = Some(now);
        match ScheduleSet::load(&path) {
            Ok(set) => {
                let n = set.schedules.len();
                self.rounds.set_schedules(set);
                self.reloads.fetch_add(1, Ordering::SeqCst);
                info!(schedules = n, path = %path.display(), "schedule file changed, reloaded");
            }
            Err(e) => {
                self.reload_errors.fetch_add(1, Ordering::SeqCst);
                warn!(error = %e, "schedule file changed but is invalid, keeping the running schedules")
            }
        }
    }
}

fn stamp(path: &Path) -> (u64, Option<SystemTime>) {
    let m = std::fs::metadata(path).ok();
    (
        m.as_ref().map_or(0, |m| m.len()),
        m.and_then(|m| m.modified().ok()),
    )
}
