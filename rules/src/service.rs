//! The running rules stage: a thread that owns the engine, takes decoded messages from a
//! bounded queue, ticks every second for timers and SLA clocks, applies actions to the
//! ticket store and publishes what happened as [`TicketEvent`]s.

use crate::engine::{alerts_topic, Action, Engine};
use crate::metrics::{RulesMetrics, StageLabel, StateLabel};
use crate::pack::{pack_files, Priority, RulePack};
use crate::store::{
    RaiseOutcome, ResidentReport, SlaConfig, SlaEvent, SlaPolicy, Ticket, TicketState, TicketStore,
};
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
use tokio::sync::broadcast;
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketEventKind {
    /// A new ticket.
    Raised,
    /// One more occurrence on an active ticket.
    Repeated,
    ConditionCleared,
    Transition,
    /// Unacknowledged ticket, again.
    Reminder,
    /// An SLA target was missed; `escalation_level`/`audience` say who is told now.
    Escalated,
    /// A rule's notification for the station.
    Notification,
}

impl TicketEventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TicketEventKind::Raised => "raised",
            TicketEventKind::Repeated => "repeated",
            TicketEventKind::ConditionCleared => "condition_cleared",
            TicketEventKind::Transition => "transition",
            TicketEventKind::Reminder => "reminder",
            TicketEventKind::Escalated => "escalated",
            TicketEventKind::Notification => "notification",
        }
    }

    /// Whether crews' devices get this event on the station's MQTT alert topic.
    pub fn is_alert(self) -> bool {
        matches!(
            self,
            TicketEventKind::Raised
                | TicketEventKind::Reminder
                | TicketEventKind::Escalated
                | TicketEventKind::Notification
        )
    }
}

/// Something that happened to a ticket, for the alert stream (SSE) and MQTT
/// (`topic`, i.e. `stations/{station}/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketEvent {
    /// Id in the ticket store's durable event log: monotonic, so a client can resume
    /// after the last id it saw. `None` only when the log could not be written.
    #[serde(default)]
    pub event_id: Option<i64>,
    pub kind: TicketEventKind,
    pub ts_ms: i64,
    pub ticket_id: Option<i64>,
    pub device_id: String,
    pub rule_id: String,
    pub station: String,
    pub compound: String,
    pub priority: Priority,
    pub state: Option<TicketState>,
    pub topic: String,
    pub escalation_level: u32,
    /// Name of the escalation level this event is for (`station`, `street_platform`, ...).
    pub audience: String,
    pub message: String,
}

impl TicketEvent {
    fn of(
        kind: TicketEventKind,
        t: &Ticket,
        ts_ms: i64,
        policy: &SlaPolicy,
        message: String,
    ) -> Self {
        TicketEvent {
            event_id: None,
            kind,
            ts_ms,
            ticket_id: Some(t.id),
            device_id: t.device_id.clone(),
            rule_id: t.rule_id.clone(),
            station: t.station.clone(),
            compound: t.compound.clone(),
            priority: t.priority,
            state: Some(t.state),
            topic: alerts_topic(&t.station),
            escalation_level: t.escalation_level,
            audience: policy.level_name(t.escalation_level),
            message,
        }
    }
}

/// Applies engine actions and SLA events: the one place tickets, notifications and
/// commands leave the rules stage. Shared by the service thread and by tests.
pub struct Dispatcher {
    pub store: TicketStore,
    pub policy: SlaPolicy,
    pub events: broadcast::Sender<TicketEvent>,
    pub commands: Arc<dyn CommandSink>,
    pub metrics: RulesMetrics,
    /// Events logged during an open batch, published once it is committed: nobody hears
    /// of a ticket that a crash could still take back.
    pub held_events: parking_lot::Mutex<Option<Vec<TicketEvent>>>,
}

impl Dispatcher {
    /// Apply what follows in one store transaction (see [`TicketStore::begin_batch`]).
    pub fn begin_batch(&self) {
        match self.store.begin_batch() {
            Ok(()) => {
                let mut held = self.held_events.lock();
                if held.is_none() {
                    *held = Some(Vec::new());
                }
            }
            Err(e) => {
                self.metrics.errors.inc();
                error!(error = %e, "cannot start a ticket batch; applying one by one");
            }
        }
    }

    /// Commit the batch, then publish the events it logged.
    pub fn end_batch(&self) {
        if let Err(e) = self.store.commit_batch() {
            self.metrics.errors.inc();
            error!(error = %e, "cannot commit a ticket batch");
        }
        let held = self.held_events.lock().take();
        for ev in held.into_iter().flatten() {
            let _ = self.events.send(ev);
        }
    }

    fn publish(&self, ev: TicketEvent) {
        let mut held = self.held_events.lock();
        match held.as_mut() {
            Some(v) => v.push(ev),
            None => {
                drop(held);
                let _ = self.events.send(ev);
            }
        }
    }

    /// Log the event durably, then publish it with its log id. No subscriber is fine:
    /// the tickets themselves are in the store.
    fn emit(&self, e: TicketEvent) {
        let json = match serde_json::to_string(&e) {
            Ok(j) => j,
            Err(err) => {
                self.metrics.errors.inc();
                error!(error = %err, "cannot encode ticket event");
                let _ = self.events.send(e);
                return;
            }
        };
        let ts_ms = e.ts_ms;
        let mut pending = Some(e);
        let logged = self.store.append_event(ts_ms, &json, |id| {
            if let Some(mut ev) = pending.take() {
                ev.event_id = Some(id);
                self.publish(ev);
            }
        });
        if let Err(err) = logged {
            self.metrics.errors.inc();
            error!(error = %err, "cannot log ticket event; published without an id");
            if let Some(ev) = pending.take() {
                let _ = self.events.send(ev);
            }
        }
    }

    pub fn apply(&self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Raise(r) => match self.store.raise(&r, &self.policy) {
                    Ok(o) => {
                        if o.created {
                            info!(ticket = o.ticket.id, device = %r.device_id, rule = %r.rule_id, priority = %r.priority, station = %r.station, "ticket raised");
                        }
                        self.announce_raise(&o, r.priority, r.ts_ms, r.detail.clone());
                    }
                    Err(e) => {
                        self.metrics.errors.inc();
                        error!(device = %r.device_id, rule = %r.rule_id, error = %e, "cannot raise ticket");
                    }
                },
                Action::Clear(c) => match self.store.condition_cleared(&c) {
                    Ok(Some(o)) => {
                        self.emit(TicketEvent::of(
                            TicketEventKind::ConditionCleared,
                            &o.ticket,
                            c.ts_ms,
                            &self.policy,
                            "condition cleared".into(),
                        ));
                        if let Some(s) = o.new_state {
                            self.metrics
                                .transitions
                                .get_or_create(&StateLabel { to: s.as_str() })
                                .inc();
                            self.emit(TicketEvent::of(
                                TicketEventKind::Transition,
                                &o.ticket,
                                c.ts_ms,
                                &self.policy,
                                format!("{s} by the rule: condition cleared"),
                            ));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.metrics.errors.inc();
                        error!(device = %c.device_id, rule = %c.rule_id, error = %e, "cannot record cleared condition");
                    }
                },
                Action::Notify(n) => {
                    self.metrics.notifications.inc();
                    let ticket_id = self
                        .store
                        .active_for(&n.device_id, &n.rule_id)
                        .ok()
                        .flatten()
                        .map(|t| t.id);
                    self.emit(TicketEvent {
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
                        audience: self.policy.level_name(1),
                        message: n.message,
                    });
                }
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

    pub fn sla_tick(&self, now_ms: i64) {
        let events = match self.store.sla_tick(now_ms, &self.policy) {
            Ok(e) => e,
            Err(e) => {
                self.metrics.errors.inc();
                error!(error = %e, "sla clock failed");
                return;
            }
        };
        for e in events {
            match e {
                SlaEvent::Reminder { ticket, ts_ms } => {
                    self.metrics.reminders.inc();
                    let msg = format!(
                        "reminder {}: {} not acknowledged",
                        ticket.reminders, ticket.title
                    );
                    self.emit(TicketEvent::of(
                        TicketEventKind::Reminder,
                        &ticket,
                        ts_ms,
                        &self.policy,
                        msg,
                    ));
                }
                SlaEvent::Breach {
                    ticket,
                    stage,
                    level,
                    audience,
                    ts_ms,
                } => {
                    self.metrics
                        .sla_breaches
                        .get_or_create(&StageLabel {
                            stage: stage.as_str(),
                        })
                        .inc();
                    warn!(ticket = ticket.id, stage = stage.as_str(), level, audience = %audience, "sla breached, escalated");
                    let msg = format!(
                        "{} target missed on {}; escalated to level {level} ({audience})",
                        stage.as_str(),
                        ticket.title
                    );
                    self.emit(TicketEvent::of(
                        TicketEventKind::Escalated,
                        &ticket,
                        ts_ms,
                        &self.policy,
                        msg,
                    ));
                }
            }
        }
    }

    /// A resident's report: opens (or adds to) a ticket for the compound's station and
    /// publishes it like a rule's, so crews are alerted the same way.
    pub fn report(&self, r: &ResidentReport) -> Result<RaiseOutcome, RulesError> {
        let o = self.store.report(r, &self.policy, RESIDENT_ACTOR)?;
        if o.created {
            info!(ticket = o.ticket.id, compound = %r.compound, category = %r.category, station = %r.station, "ticket opened by a resident report");
        }
        self.announce_raise(&o, r.priority, r.ts_ms, r.title.clone());
        Ok(o)
    }

    /// Count a new ticket or a repeat, and publish it: the same for rules and residents.
    fn announce_raise(&self, o: &RaiseOutcome, priority: Priority, ts_ms: i64, detail: String) {
        let kind = if o.created {
            self.metrics
                .tickets_raised
                .get_or_create(&crate::metrics::PriorityLabel {
                    priority: priority.as_str(),
                })
                .inc();
            TicketEventKind::Raised
        } else {
            self.metrics.occurrences.inc();
            TicketEventKind::Repeated
        };
        self.emit(TicketEvent::of(
            kind,
            &o.ticket,
            ts_ms,
            &self.policy,
            detail,
        ));
    }

    /// A crew's (or the API's) move of a ticket, published like the rules' own.
    pub fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Ticket, RulesError> {
        let t = self.store.transition(id, to, actor, note, now_ms)?;
        self.metrics
            .transitions
            .get_or_create(&StateLabel { to: to.as_str() })
            .inc();
        self.emit(TicketEvent::of(
            TicketEventKind::Transition,
            &t,
            now_ms,
            &self.policy,
            format!("{to} by {actor}: {note}"),
        ));
        Ok(t)
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

/// What the API needs of the rules stage: move tickets (publishing the event) and read
/// them; cheap to clone, does not keep the rules thread alive.
#[derive(Clone)]
pub struct TicketDesk {
    dispatcher: Arc<Dispatcher>,
    clock: Arc<dyn Clock>,
}

impl TicketDesk {
    pub fn store(&self) -> &TicketStore {
        &self.dispatcher.store
    }

    pub fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
    ) -> Result<Ticket, RulesError> {
        self.dispatcher
            .transition(id, to, actor, note, self.clock.now_ms())
    }

    pub fn sla_policy(&self) -> &SlaPolicy {
        &self.dispatcher.policy
    }

    /// Open a ticket from a resident's report, timestamped by the rules' clock.
    pub fn report(&self, mut r: ResidentReport) -> Result<RaiseOutcome, RulesError> {
        r.ts_ms = self.clock.now_ms();
        self.dispatcher.report(&r)
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Ticket events from now on, each with its durable log id.
    pub fn events(&self) -> broadcast::Receiver<TicketEvent> {
        self.dispatcher.events.subscribe()
    }

    /// The id of the newest logged event (0 when none).
    pub fn last_event_id(&self) -> Result<i64, RulesError> {
        Ok(self.dispatcher.store.last_event_id()?)
    }

    /// Logged events with an id above `after_id`, oldest first, at most `limit`.
    pub fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TicketEvent>, RulesError> {
        let rows = self.dispatcher.store.events_after(after_id, limit)?;
        rows.into_iter()
            .map(|(id, json)| {
                let mut ev: TicketEvent = serde_json::from_str(&json)
                    .map_err(|e| RulesError::Service(format!("ticket event log row {id}: {e}")))?;
                ev.event_id = Some(id);
                Ok(ev)
            })
            .collect()
    }
}

/// Actor recorded for tickets opened by resident reports.
pub const RESIDENT_ACTOR: &str = "resident";

/// The hub's handle on the running rules stage.
pub struct RulesHandle {
    tx: flume::Sender<Msg>,
    thread: Option<JoinHandle<()>>,
    dispatcher: Arc<Dispatcher>,
    clock: Arc<dyn Clock>,
}

impl RulesHandle {
    /// Ticket events from now on (new tickets, repeats, transitions, reminders,
    /// escalations, notifications).
    pub fn events(&self) -> broadcast::Receiver<TicketEvent> {
        self.dispatcher.events.subscribe()
    }

    pub fn store(&self) -> &TicketStore {
        &self.dispatcher.store
    }

    pub fn metrics(&self) -> &RulesMetrics {
        &self.dispatcher.metrics
    }

    pub fn sla_policy(&self) -> &SlaPolicy {
        &self.dispatcher.policy
    }

    /// A handle for the API to read and move tickets.
    pub fn desk(&self) -> TicketDesk {
        TicketDesk {
            dispatcher: self.dispatcher.clone(),
            clock: self.clock.clone(),
        }
    }

    /// Move a ticket (acknowledge, dispatch, ...) at the clock's now and publish it.
    pub fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
    ) -> Result<Ticket, RulesError> {
        self.dispatcher
            .transition(id, to, actor, note, self.clock.now_ms())
    }

    /// Validate the rules at `path` and swap them in atomically; per-device state of
    /// rules whose id still exists is kept. On error the running pack stays.
    pub fn reload(&self, path: &Path) -> Result<usize, RulesError> {
        let pack = match RulePack::load(path) {
            Ok(p) => p,
            Err(e) => {
                self.dispatcher.metrics.reload_errors.inc();
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
        store: TicketStore,
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
        store: TicketStore,
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
        let (events, _) = broadcast::channel(4096);
        let dispatcher = Arc::new(Dispatcher {
            store,
            policy: cfg.sla_policy(),
            events,
            commands,
            metrics: metrics.clone(),
            held_events: Default::default(),
        });
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
            dispatcher: dispatcher.clone(),
            clock: clock.clone(),
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
                metrics,
                queued,
                capacity,
                held: Vec::with_capacity(HANDOFF_BATCH),
            },
            RulesHandle {
                tx,
                thread: Some(thread),
                dispatcher,
                clock,
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
    dispatcher: Arc<Dispatcher>,
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
                    self.dispatcher.begin_batch();
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
                    self.dispatcher.end_batch();
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
        self.dispatcher.apply(actions);
    }

    fn tick(&mut self) {
        let now_ms = self.clock.now_ms();
        let actions = self.evaluate(|e, dir| e.tick(now_ms, dir));
        // A tick can open or resolve tickets for thousands of silent devices at once.
        self.dispatcher.begin_batch();
        self.dispatcher.apply(actions);
        self.dispatcher.sla_tick(now_ms);
        self.dispatcher.end_batch();
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
            .store
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
