//! The ticket desk: every change to a ticket that someone must hear of goes through here,
//! whoever makes it (the rules raising and clearing, the SLA clock, crews and residents
//! through the API). It applies the change in the [`TicketStore`], counts it, logs the
//! resulting [`TicketEvent`] durably and publishes it with its log id.

use crate::events::{TicketEvent, TicketEventKind};
use crate::metrics::{PriorityLabel, StageLabel, StateLabel, TicketMetrics};
use crate::request::{Clear, Raise};
use crate::sla::{SlaEvent, SlaPolicy};
use crate::state::{ClearOutcome, RaiseOutcome, ResidentReport, Ticket, TicketState};
use crate::{TicketError, TicketStore, RESIDENT_ACTOR};
use parking_lot::Mutex;
use std::sync::Arc;
use steward_estate::clock::Clock;
use tokio::sync::broadcast;
use tracing::{debug, error, info, warn};

/// Ticket events the live channel holds for slow subscribers; beyond it they lag and
/// catch up from the durable log.
const CHANNEL_CAPACITY: usize = 4096;

/// Moves, opens and reads tickets and publishes what happened; cheap to clone. Holding a
/// desk keeps the event channel open (its sender lives here).
#[derive(Clone)]
pub struct TicketDesk {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn TicketStore>,
    policy: SlaPolicy,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<TicketEvent>,
    metrics: TicketMetrics,
    /// Events logged during an open batch, published once it is committed: nobody hears
    /// of a ticket that a crash could still take back.
    held: Mutex<Option<Vec<TicketEvent>>>,
}

impl TicketDesk {
    pub fn new(
        store: Arc<dyn TicketStore>,
        policy: SlaPolicy,
        clock: Arc<dyn Clock>,
        metrics: TicketMetrics,
    ) -> TicketDesk {
        let (events, _) = broadcast::channel(CHANNEL_CAPACITY);
        TicketDesk {
            inner: Arc::new(Inner {
                store,
                policy,
                clock,
                events,
                metrics,
                held: Mutex::new(None),
            }),
        }
    }

    /// The store, for reads (lists, details, ratings) that publish nothing.
    pub fn store(&self) -> &Arc<dyn TicketStore> {
        &self.inner.store
    }

    pub fn sla_policy(&self) -> &SlaPolicy {
        &self.inner.policy
    }

    pub fn metrics(&self) -> &TicketMetrics {
        &self.inner.metrics
    }

    pub fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// Ticket events from now on (new tickets, repeats, transitions, reminders,
    /// escalations, notifications), each with its durable log id.
    pub fn events(&self) -> broadcast::Receiver<TicketEvent> {
        self.inner.events.subscribe()
    }

    /// The id of the newest logged event (0 when none).
    pub fn last_event_id(&self) -> Result<i64, TicketError> {
        self.inner.store.last_event_id()
    }

    /// Logged events with an id above `after_id`, oldest first, at most `limit`.
    pub fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TicketEvent>, TicketError> {
        self.inner.store.events_after(after_id, limit)
    }

    /// Apply what follows in one store transaction (see [`TicketStore::begin_batch`]).
    pub fn begin_batch(&self) {
        match self.inner.store.begin_batch() {
            Ok(()) => {
                let mut held = self.inner.held.lock();
                if held.is_none() {
                    *held = Some(Vec::new());
                }
            }
            Err(e) => {
                self.inner.metrics.errors.inc();
                error!(error = %e, "cannot start a ticket batch; applying one by one");
            }
        }
    }

    /// Commit the batch, then publish the events it logged.
    pub fn end_batch(&self) {
        if let Err(e) = self.inner.store.commit_batch() {
            self.inner.metrics.errors.inc();
            error!(error = %e, "cannot commit a ticket batch");
        }
        let held = self.inner.held.lock().take();
        for ev in held.into_iter().flatten() {
            let _ = self.inner.events.send(ev);
        }
    }

    /// Hand subscribers an event another node logged (cluster mode): it is in the shared
    /// log already, so it is only published here, not appended again.
    pub fn relay(&self, ev: TicketEvent) {
        let _ = self.inner.events.send(ev);
    }

    /// Forget the events of a batch the store rolled back (a cluster worker whose
    /// partition was fenced): nobody may hear of tickets that were never committed.
    pub fn abort_batch(&self) {
        self.inner.held.lock().take();
    }

    /// Log the event durably, then publish it with its log id (held back while a batch is
    /// open). No subscriber is fine: the tickets themselves are in the store.
    pub fn publish(&self, e: TicketEvent) {
        let mut pending = Some(e.clone());
        let logged = self.inner.store.append_event(&e, &mut |id| {
            if let Some(mut ev) = pending.take() {
                ev.event_id = Some(id);
                self.send(ev);
            }
        });
        if let Err(err) = logged {
            self.inner.metrics.errors.inc();
            error!(error = %err, "cannot log ticket event; published without an id");
            if let Some(ev) = pending.take() {
                let _ = self.inner.events.send(ev);
            }
        }
    }

    fn send(&self, ev: TicketEvent) {
        let mut held = self.inner.held.lock();
        match held.as_mut() {
            Some(v) => v.push(ev),
            None => {
                drop(held);
                let _ = self.inner.events.send(ev);
            }
        }
    }

    /// A condition holds: open its ticket or count a repeat, and publish it.
    pub fn raise(&self, r: &Raise) -> Result<RaiseOutcome, TicketError> {
        let o = self.inner.store.raise(r, &self.inner.policy)?;
        if o.replayed {
            debug!(ticket = o.ticket.id, device = %r.device_id, rule = %r.rule_id, ts_ms = r.ts_ms, "trigger already counted; ignored");
            self.inner.metrics.replayed_triggers.inc();
            return Ok(o);
        }
        if o.created {
            info!(ticket = o.ticket.id, device = %r.device_id, rule = %r.rule_id, priority = %r.priority, station = %r.station, "ticket raised");
        }
        self.announce_raise(&o, r.ts_ms, r.detail.clone());
        Ok(o)
    }

    /// A resident's report, timestamped by the desk's clock: opens (or adds to) a ticket
    /// for the compound's station and publishes it like a rule's, so crews are alerted the
    /// same way.
    pub fn report(&self, r: ResidentReport) -> Result<RaiseOutcome, TicketError> {
        self.report_by(r, RESIDENT_ACTOR)
    }

    /// [`Self::report`] filed by someone known (a building captain, `captain:<who>`),
    /// recorded under `actor` in the audit trail.
    pub fn report_by(
        &self,
        mut r: ResidentReport,
        actor: &str,
    ) -> Result<RaiseOutcome, TicketError> {
        r.ts_ms = self.now_ms();
        let o = self.inner.store.report(&r, &self.inner.policy, actor)?;
        if o.created {
            info!(ticket = o.ticket.id, compound = %r.compound, category = %r.category, station = %r.station, actor, "ticket opened by a report");
        }
        self.announce_raise(&o, r.ts_ms, r.title.clone());
        Ok(o)
    }

    /// Count a new ticket or a repeat, and publish it: the same for rules and residents.
    pub(crate) fn announce_raise(&self, o: &RaiseOutcome, ts_ms: i64, detail: String) {
        let m = &self.inner.metrics;
        let kind = if o.created {
            m.tickets_raised
                .get_or_create(&PriorityLabel {
                    priority: o.ticket.priority.as_str(),
                })
                .inc();
            TicketEventKind::Raised
        } else {
            m.occurrences.inc();
            TicketEventKind::Repeated
        };
        self.publish(TicketEvent::of(
            kind,
            &o.ticket,
            ts_ms,
            &self.inner.policy,
            detail,
        ));
    }

    /// The condition of a rule cleared: record it (moving the ticket on when the rule says
    /// so) and publish it.
    pub fn condition_cleared(&self, c: &Clear) -> Result<Option<ClearOutcome>, TicketError> {
        let Some(o) = self.inner.store.condition_cleared(c)? else {
            return Ok(None);
        };
        let policy = &self.inner.policy;
        self.publish(TicketEvent::of(
            TicketEventKind::ConditionCleared,
            &o.ticket,
            c.ts_ms,
            policy,
            "condition cleared".into(),
        ));
        if let Some(s) = o.new_state {
            self.count_transition(s);
            self.publish(TicketEvent::of(
                TicketEventKind::Transition,
                &o.ticket,
                c.ts_ms,
                policy,
                format!("{s} by the rule: condition cleared"),
            ));
        }
        Ok(Some(o))
    }

    /// A crew's (or the API's) move of a ticket at the desk clock's now, published like
    /// the rules' own.
    pub fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
    ) -> Result<Ticket, TicketError> {
        let now_ms = self.now_ms();
        let t = self.inner.store.transition(id, to, actor, note, now_ms)?;
        self.count_transition(to);
        self.publish(TicketEvent::of(
            TicketEventKind::Transition,
            &t,
            now_ms,
            &self.inner.policy,
            format!("{to} by {actor}: {note}"),
        ));
        Ok(t)
    }

    fn count_transition(&self, to: TicketState) {
        self.inner
            .metrics
            .transitions
            .get_or_create(&StateLabel { to: to.as_str() })
            .inc();
    }

    /// Run the SLA clock at `now_ms` and publish its reminders and escalations.
    pub fn sla_tick(&self, now_ms: i64) -> Result<(), TicketError> {
        let events = self.inner.store.sla_tick(now_ms, &self.inner.policy)?;
        for e in events {
            self.announce_sla(e);
        }
        Ok(())
    }

    fn announce_sla(&self, e: SlaEvent) {
        let (m, policy) = (&self.inner.metrics, &self.inner.policy);
        match e {
            SlaEvent::Reminder { ticket, ts_ms } => {
                m.reminders.inc();
                let msg = format!(
                    "reminder {}: {} not acknowledged",
                    ticket.reminders, ticket.title
                );
                let kind = TicketEventKind::Reminder;
                self.publish(TicketEvent::of(kind, &ticket, ts_ms, policy, msg));
            }
            SlaEvent::Breach {
                ticket,
                stage,
                level,
                audience,
                ts_ms,
            } => {
                m.sla_breaches
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
                let kind = TicketEventKind::Escalated;
                self.publish(TicketEvent::of(kind, &ticket, ts_ms, policy, msg));
            }
        }
    }
}
