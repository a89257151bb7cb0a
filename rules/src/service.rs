//! The running rules stage: a thread that owns the engine, takes decoded messages from a
//! bounded queue, ticks every second for timers and SLA clocks, applies actions to the
//! ticket desk, which publishes what happened as [`TicketEvent`]s.

use crate::engine::{Action, Engine, Notification};
use crate::metrics::{ReasonLabel, RulesMetrics};
use crate::pack::{pack_files, RulePack};
use crate::suppress::{self, Suppressed};
use crate::RulesError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use steward_estate::clock::Clock;
use steward_estate::{Decoded, DecodedSink};
use steward_estate::{Directory, Registry};
use steward_tickets::{
    SlaConfig, SlaPolicy, TicketDesk, TicketEvent, TicketEventKind, TicketStore,
};
use tracing::{debug, error, info, warn};

/// Downlink to devices; the hub publishes `payload` on `devices/{device_id}/commands`.
pub trait CommandSink: Send + Sync {
    fn send(&self, device_id: &str, payload: &str);
}

/// A sink that drops commands (backtests, hubs without downlink).
pub struct NoCommands;

impl CommandSink for NoCommands {
    fn send(&self, _device_id: &str, _payload: &str) {}
}

/// `[rules]` section of the hub configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Rule file or directory of `*.toml`; unset means the built-in default pack.
    pub rules: Option<PathBuf>,
    /// Tickets, audit trail and persisted rule state.
    pub database: PathBuf,
    /// Reload the rules when their files change (polling).
    pub watch: bool,
    #[serde(with = "humantime_serde")]
    pub watch_interval: Duration,
    pub sla: SlaConfig,
    /// Reminders repeat this often until a ticket is acknowledged.
    #[serde(with = "humantime_serde")]
    pub reminder_interval: Duration,
    /// Escalation levels, first = the responsible station; each breach moves one up.
    pub escalation_levels: Vec<String>,
    /// Decoded messages waiting for the rules thread; beyond it they are dropped and counted.
    pub queue_capacity: usize,
    #[serde(with = "humantime_serde")]
    pub tick_interval: Duration,
    /// Rule state of changed devices is saved this often (and at shutdown).
    #[serde(with = "humantime_serde")]
    pub snapshot_interval: Duration,
}

impl Default for RulesConfig {
    fn default() -> Self {
        let p = SlaPolicy::default();
        RulesConfig {
            rules: None,
            database: PathBuf::from("var/tickets.db"),
            watch: true,
            watch_interval: Duration::from_secs(2),
            sla: p.sla,
            reminder_interval: Duration::from_millis(p.reminder_interval_ms as u64),
            escalation_levels: p.levels,
            queue_capacity: 65_536,
            tick_interval: Duration::from_secs(1),
            snapshot_interval: Duration::from_secs(10),
        }
    }
}

impl RulesConfig {
    /// Every problem, each naming its key (`rules.sla.p1_ack: ...`).
    pub fn validate(&self) -> Vec<String> {
        let mut e = self.sla.validate("rules.sla");
        if self.reminder_interval < Duration::from_secs(1) {
            e.push("rules.reminder_interval: must be at least 1s".into());
        }
        if self.escalation_levels.is_empty() {
            e.push("rules.escalation_levels: must name at least one level".into());
        }
        if self.escalation_levels.iter().any(|l| l.trim().is_empty()) {
            e.push("rules.escalation_levels: names must not be empty".into());
        }
        if self.queue_capacity == 0 {
            e.push("rules.queue_capacity: must be positive".into());
        }
        if self.tick_interval < Duration::from_millis(10)
            || self.tick_interval > Duration::from_secs(60)
        {
            e.push("rules.tick_interval: must be between 10ms and 60s".into());
        }
        if self.watch_interval < Duration::from_millis(100) {
            e.push("rules.watch_interval: must be at least 100ms".into());
        }
        if self.snapshot_interval < Duration::from_millis(100) {
            e.push("rules.snapshot_interval: must be at least 100ms".into());
        }
        if let Some(p) = &self.rules {
            if !p.exists() {
                e.push(format!("rules.rules: {} does not exist", p.display()));
            }
        }
        if self.database.as_os_str().is_empty() {
            e.push("rules.database: must not be empty".into());
        }
        e
    }

    pub fn sla_policy(&self) -> SlaPolicy {
        SlaPolicy {
            sla: self.sla.clone(),
            reminder_interval_ms: self.reminder_interval.as_millis().min(i64::MAX as u128) as i64,
            levels: self.escalation_levels.clone(),
        }
    }

    /// The pack this configuration names (or the default pack).
    pub fn load_pack(&self) -> Result<RulePack, RulesError> {
        match &self.rules {
            Some(p) => RulePack::load(p),
            None => Ok(RulePack::default_pack()),
        }
    }
}

/// Applies engine actions: tickets through the [`TicketDesk`] (which publishes them),
/// notifications as ticket events, commands to the [`CommandSink`]. The one place the
/// rules' output leaves the rules stage; shared by the service thread and by tests.
pub struct Dispatcher {
    desk: TicketDesk,
    commands: Arc<dyn CommandSink>,
    metrics: RulesMetrics,
}

impl Dispatcher {
    pub fn new(desk: TicketDesk, commands: Arc<dyn CommandSink>, metrics: RulesMetrics) -> Self {
        Dispatcher {
            desk,
            commands,
            metrics,
        }
    }

    pub fn desk(&self) -> &TicketDesk {
        &self.desk
    }

    pub fn apply(&self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Raise(r) => {
                    if let Err(e) = self.desk.raise(&r) {
                        self.metrics.errors.inc();
                        error!(device = %r.device_id, rule = %r.rule_id, error = %e, "cannot raise ticket");
                    }
                }
                Action::Clear(c) => {
                    if let Err(e) = self.desk.condition_cleared(&c) {
                        self.metrics.errors.inc();
                        error!(device = %c.device_id, rule = %c.rule_id, error = %e, "cannot record cleared condition");
                    }
                }
                Action::Notify(n) => self.notify(n),
                Action::Command {
                    device_id, payload, ..
                } => {
                    self.metrics.commands.inc();
                    debug!(device = %device_id, "device command");
                    self.commands.send(&device_id, &payload);
                }
            }
        }
    }

    /// A rule's notification for the station, published as a ticket event (tied to the
    /// active ticket of the device and rule, if there is one).
    fn notify(&self, n: Notification) {
        self.metrics.notifications.inc();
        let ticket_id = self
            .desk
            .store()
            .active_for(&n.device_id, &n.rule_id)
            .ok()
            .flatten()
            .map(|t| t.id);
        self.desk.publish(TicketEvent {
            event_id: None,
            kind: TicketEventKind::Notification,
            ts_ms: n.ts_ms,
            ticket_id,
            device_id: n.device_id,
            rule_id: n.rule_id,
            station: n.station,
            compound: n.compound,
            priority: n.priority,
            state: None,
            topic: n.topic,
            escalation_level: 1,
            audience: self.desk.sla_policy().level_name(1),
            message: n.message,
        });
    }

    /// A ticket a rule would have opened on a device under maintenance: counted, logged
    /// and published as a `suppressed` ticket event (no ticket, not an alert), which
    /// lands in QuestDB's `ticket_events` like every other.
    pub fn suppressed(&self, s: Suppressed) {
        self.metrics
            .suppressed
            .get_or_create(&ReasonLabel {
                reason: s.because.label(),
            })
            .inc();
        let why = s.because.describe();
        info!(device = %s.device_id, rule = %s.rule_id, priority = %s.priority, because = %why, "ticket suppressed");
        self.desk.publish(TicketEvent {
            event_id: None,
            kind: TicketEventKind::Suppressed,
            ts_ms: s.ts_ms,
            ticket_id: None,
            topic: steward_tickets::alerts_topic(&s.station),
            device_id: s.device_id,
            rule_id: s.rule_id,
            station: s.station,
            compound: s.compound,
            priority: s.priority,
            state: None,
            escalation_level: 0,
            audience: s.because.audience(),
            message: format!("{} {}: suppressed by {why}", s.priority, s.title),
        });
    }

    /// Run the SLA clock; a failure is counted and logged, the next tick tries again.
    pub fn sla_tick(&self, now_ms: i64) {
        if let Err(e) = self.desk.sla_tick(now_ms) {
            self.metrics.errors.inc();
            error!(error = %e, "sla clock failed");
        }
    }
}

enum Msg {
    /// Decoded messages of one burst, in arrival order.
    Decoded(Vec<Decoded>),
    Reload(Arc<RulePack>, flume::Sender<()>),
    Shutdown,
}

/// Decoded messages handed to the rules thread at once: one channel operation (and at
/// most one wake-up of the rules thread) per burst instead of per message, which the
/// profile showed as a futex wake-up for most messages.
const HANDOFF_BATCH: usize = 128;

/// The ingest side: hands decoded messages to the rules thread without blocking, a burst
/// at a time.
pub struct RulesSink {
    tx: flume::Sender<Msg>,
    metrics: RulesMetrics,
    /// Decoded messages in the queue or being handed over; bounded by `capacity`.
    queued: Arc<AtomicUsize>,
    capacity: usize,
    held: Vec<Decoded>,
}

impl DecodedSink for RulesSink {
    fn accept(&mut self, decoded: &Decoded) {
        if has_work(decoded) {
            self.accept_owned(decoded.clone());
        }
    }

    fn accept_owned(&mut self, decoded: Decoded) {
        if !has_work(&decoded) {
            return;
        }
        self.held.push(decoded);
        if self.held.len() >= HANDOFF_BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let n = self.held.len();
        if n == 0 {
            return;
        }
        if self.queued.load(Ordering::Relaxed) + n > self.capacity {
            // Dropping beats stalling ingest; the loss is counted and, for silence
            // rules, made good by the next report.
            self.held.clear();
            let before = self.metrics.dropped.inc_by(n as u64);
            let total = before + n as u64;
            // Logged when the total passes a power of two: a flood does not flood the log.
            if before == 0 || total.ilog2() > before.ilog2() {
                warn!(
                    dropped = total,
                    "rules queue full, decoded messages dropped"
                );
            }
            return;
        }
        let batch = std::mem::replace(&mut self.held, Vec::with_capacity(HANDOFF_BATCH));
        self.queued.fetch_add(n, Ordering::Relaxed);
        if self.tx.send(Msg::Decoded(batch)).is_ok() {
            self.metrics.received.inc_by(n as u64);
        } else {
            self.queued.fetch_sub(n, Ordering::Relaxed);
        }
    }
}

fn has_work(d: &Decoded) -> bool {
    !(d.readings.is_empty() && d.events.is_empty() && d.statuses.is_empty())
}

/// The hub's handle on the running rules stage.
pub struct RulesHandle {
    tx: flume::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    desk: TicketDesk,
    metrics: RulesMetrics,
}

impl RulesHandle {
    pub fn metrics(&self) -> &RulesMetrics {
        &self.metrics
    }

    /// The ticket desk the rules publish through: for the API to read and move tickets,
    /// and to follow ticket events.
    pub fn desk(&self) -> TicketDesk {
        self.desk.clone()
    }

    /// Validate the rules at `path` and swap them in atomically; per-device state of
    /// rules whose id still exists is kept. On error the running pack stays.
    pub fn reload(&self, path: &Path) -> Result<usize, RulesError> {
        let pack = match RulePack::load(path) {
            Ok(p) => p,
            Err(e) => {
                self.metrics.reload_errors.inc();
                return Err(e);
            }
        };
        let n = pack.rules().len();
        let (done_tx, done_rx) = flume::bounded(1);
        self.tx
            .send(Msg::Reload(Arc::new(pack), done_tx))
            .map_err(|_| RulesError::Service("rules thread stopped".into()))?;
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| RulesError::Service("rules thread did not confirm the reload".into()))?;
        Ok(n)
    }

    /// Stop the thread after it has drained its queue and saved rule state.
    pub fn shutdown(mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for RulesHandle {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.tx.send(Msg::Shutdown);
        }
    }
}

pub struct RulesService;

impl RulesService {
    pub fn start(
        cfg: RulesConfig,
        registry: Registry,
        store: Arc<dyn TicketStore>,
        clock: Arc<dyn Clock>,
        commands: Arc<dyn CommandSink>,
    ) -> Result<(RulesSink, RulesHandle), RulesError> {
        Self::start_with_metrics(
            cfg,
            registry,
            store,
            clock,
            commands,
            RulesMetrics::default(),
        )
    }

    pub fn start_with_metrics(
        cfg: RulesConfig,
        registry: Registry,
        store: Arc<dyn TicketStore>,
        clock: Arc<dyn Clock>,
        commands: Arc<dyn CommandSink>,
        metrics: RulesMetrics,
    ) -> Result<(RulesSink, RulesHandle), RulesError> {
        let problems = cfg.validate();
        if !problems.is_empty() {
            return Err(RulesError::Config(problems));
        }
        let pack = Arc::new(cfg.load_pack()?);
        let mut engine = Engine::new(pack.clone());
        let restored = engine.restore(store.load_rule_states()?);
        // Hub downtime is not device silence: restart silence timers from now.
        engine.resume_at(clock.now_ms());
        info!(
            rules = pack.rules().len(),
            devices = restored,
            "rules started"
        );
        let desk = TicketDesk::new(store, cfg.sla_policy(), clock.clone(), metrics.tickets());
        let dispatcher = Dispatcher::new(desk.clone(), commands, metrics.clone());
        // Unbounded as a channel; `queued` bounds it in decoded messages, whatever the size
        // of each hand-over.
        let (tx, rx) = flume::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let capacity = cfg.queue_capacity;
        let worker = Worker {
            engine,
            rx,
            queued: queued.clone(),
            registry,
            dispatcher,
            clock,
            watch: cfg.rules.clone().filter(|_| cfg.watch),
            watch_stamp: cfg.rules.as_deref().map(stamp),
            cfg,
        };
        let thread = std::thread::Builder::new()
            .name("rules".into())
            .spawn(move || worker.run())
            .map_err(|e| RulesError::Service(format!("cannot start rules thread: {e}")))?;
        Ok((
            RulesSink {
                tx: tx.clone(),
                metrics: metrics.clone(),
                queued,
                capacity,
                held: Vec::with_capacity(HANDOFF_BATCH),
            },
            RulesHandle {
                tx,
                thread: Some(thread),
                desk,
                metrics,
            },
        ))
    }
}

/// Names, sizes and modification times of the rule files: changes when any of them does.
fn stamp(path: &Path) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
    let files = if path.is_dir() {
        pack_files(path).unwrap_or_default()
    } else {
        vec![path.to_path_buf()]
    };
    files
        .into_iter()
        .map(|f| {
            let m = std::fs::metadata(&f).ok();
            let len = m.as_ref().map_or(0, |m| m.len());
            let mtime = m.and_then(|m| m.modified().ok());
            (f, len, mtime)
        })
        .collect()
}

/// Messages applied in one store transaction, give or take one hand-over, so a batch's
/// events wait a few milliseconds at most before they are published.
const BATCH_MESSAGES: usize = 256;

struct Worker {
    engine: Engine,
    rx: flume::Receiver<Msg>,
    queued: Arc<AtomicUsize>,
    registry: Registry,
    dispatcher: Dispatcher,
    clock: Arc<dyn Clock>,
    cfg: RulesConfig,
    watch: Option<PathBuf>,
    watch_stamp: Option<Vec<(PathBuf, u64, Option<SystemTime>)>>,
}

impl Worker {
    fn run(mut self) {
        let mut next_tick = Instant::now() + self.cfg.tick_interval;
        let mut next_snapshot = Instant::now() + self.cfg.snapshot_interval;
        let mut next_watch = Instant::now() + self.cfg.watch_interval;
        let mut next_msg: Option<Msg> = None;
        loop {
            let wait = next_tick.saturating_duration_since(Instant::now());
            let msg = match next_msg.take() {
                Some(m) => Ok(m),
                None => self.rx.recv_timeout(wait),
            };
            match msg {
                Ok(Msg::Decoded(batch)) => {
                    // What is already queued joins this burst in one store transaction:
                    // under load, one commit per batch, not per ticket.
                    self.dispatcher.desk.begin_batch();
                    let mut applied = self.on_burst(batch);
                    while applied < BATCH_MESSAGES {
                        match self.rx.try_recv() {
                            Ok(Msg::Decoded(batch)) => applied += self.on_burst(batch),
                            Ok(other) => {
                                next_msg = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.dispatcher.desk.end_batch();
                }
                Ok(Msg::Reload(pack, done)) => {
                    let n = pack.rules().len();
                    self.engine.set_pack(pack);
                    self.dispatcher.metrics.reloads.inc();
                    info!(rules = n, "rule pack reloaded");
                    let _ = done.send(());
                }
                Ok(Msg::Shutdown) | Err(flume::RecvTimeoutError::Disconnected) => break,
                Err(flume::RecvTimeoutError::Timeout) => {}
            }
            let now = Instant::now();
            if now >= next_tick {
                self.tick();
                next_tick = now + self.cfg.tick_interval;
            }
            if now >= next_snapshot {
                self.save(false);
                next_snapshot = now + self.cfg.snapshot_interval;
            }
            if now >= next_watch {
                self.poll_files();
                next_watch = now + self.cfg.watch_interval;
            }
        }
        // Drain what ingest already handed over, so a clean stop loses nothing.
        while let Ok(Msg::Decoded(batch)) = self.rx.try_recv() {
            self.on_burst(batch);
        }
        self.save(true);
        info!("rules stopped");
    }

    /// Apply one hand-over from ingest; returns how many messages it held.
    fn on_burst(&mut self, batch: Vec<Decoded>) -> usize {
        let n = batch.len();
        self.queued.fetch_sub(n, Ordering::Relaxed);
        for d in &batch {
            self.on_decoded(d);
        }
        n
    }

    /// Run the engine on the current directory and count the rule evaluations it made.
    fn evaluate(&mut self, f: impl FnOnce(&mut Engine, &Directory) -> Vec<Action>) -> Vec<Action> {
        let dir = self.registry.directory();
        let before = self.engine.evaluations();
        let actions = f(&mut self.engine, &dir);
        self.dispatcher
            .metrics
            .evaluations
            .inc_by(self.engine.evaluations() - before);
        actions
    }

    fn on_decoded(&mut self, d: &Decoded) {
        let actions = self.evaluate(|e, dir| e.on_decoded(d, dir));
        let actions = self.screen(actions);
        self.dispatcher.apply(actions);
    }

    /// Hold back what would open tickets on devices under maintenance (suppress.rs).
    fn screen(&self, actions: Vec<Action>) -> Vec<Action> {
        if !actions
            .iter()
            .any(|a| matches!(a, Action::Raise(_) | Action::Notify(_)))
        {
            return actions;
        }
        let windows = self.registry.windows();
        let dir = self.registry.directory();
        let engine = &self.engine;
        let (kept, held) = suppress::screen(actions, engine.pack(), &windows, &dir, &|id| {
            engine.mode_of(id)
        });
        for s in held {
            self.dispatcher.suppressed(s);
        }
        kept
    }

    fn tick(&mut self) {
        let now_ms = self.clock.now_ms();
        let actions = self.evaluate(|e, dir| e.tick(now_ms, dir));
        let actions = self.screen(actions);
        // A tick can open or resolve tickets for thousands of silent devices at once.
        self.dispatcher.desk.begin_batch();
        self.dispatcher.apply(actions);
        self.dispatcher.sla_tick(now_ms);
        self.dispatcher.desk.end_batch();
        self.dispatcher
            .metrics
            .devices
            .set(self.engine.device_count() as i64);
    }

    fn save(&mut self, all: bool) {
        let rows = if all {
            let _ = self.engine.take_dirty();
            self.engine.snapshot()
        } else {
            self.engine.take_dirty()
        };
        if let Err(e) = self
            .dispatcher
            .desk
            .store()
            .save_rule_states(&rows, self.clock.now_ms())
        {
            self.dispatcher.metrics.errors.inc();
            error!(error = %e, devices = rows.len(), "cannot save rule state");
        }
    }

    fn poll_files(&mut self) {
        let Some(path) = self.watch.clone() else {
            return;
        };
        let now = stamp(&path);
        if self.watch_stamp.as_ref() == Some(&now) {
            return;
        }
        self.watch_stamp = Some(now);
        match RulePack::load(&path) {
            Ok(pack) => {
                let n = pack.rules().len();
                self.engine.set_pack(Arc::new(pack));
                self.dispatcher.metrics.reloads.inc();
                info!(rules = n, path = %path.display(), "rule files changed, pack reloaded");
            }
            Err(e) => {
                self.dispatcher.metrics.reload_errors.inc();
                warn!(error = %e, "rule files changed but are invalid, keeping the running pack");
            }
        }
    }
}
