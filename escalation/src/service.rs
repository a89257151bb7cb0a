//! The escalation service: every tick it walks the unacknowledged tickets, queues each due
//! ladder step for its people on their channels (the outbox's idempotency key makes a
//! repeat harmless), copies new delivery attempts to the ticket's audit trail and the
//! delivery log, and reloads the policy file when it changes. It also answers one-time
//! acknowledgement links.

use crate::ladder::{due_steps, Step};
use crate::link::{nonce, AckClaim, LinkError, LinkKey};
use crate::metrics::{AttemptLabel, EscalationMetrics, OutcomeLabel, StateLabel, TierLabel};
use crate::policy::{Audience, Policy};
use crate::roster::{Contact, Roster};
use crate::store::EscalationStore;
use crate::EscalationError;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use steward_estate::clock::Clock;
use steward_notify::{AttemptEntry, Dispatcher, Enqueued, Notification, Recipient};
use steward_tickets::{
    Ticket, TicketDesk, TicketError, TicketFilter, TicketState, TICKET_KIND_WORK_ORDER,
};
use tracing::{error, info, warn};

/// Where delivery attempts go besides the audit trail (the hub writes QuestDB's
/// `notification_events`).
pub trait DeliveryLog: Send + Sync {
    /// Attempts copied in one round, oldest first. Called from async code: it must not
    /// wait long (hand the rows to a spool, not to a remote server).
    fn attempts(&self, entries: &[AttemptEntry]);
}

/// A log that keeps nothing.
pub struct NoLog;

impl DeliveryLog for NoLog {
    fn attempts(&self, _: &[AttemptEntry]) {}
}

/// Everything the service is built from.
pub struct Parts {
    pub desk: TicketDesk,
    pub roster: Arc<dyn Roster>,
    pub dispatcher: Arc<Dispatcher>,
    pub store: EscalationStore,
    pub key: LinkKey,
    pub policy: Policy,
    /// The file `policy` came from, watched for changes.
    pub policy_path: Option<PathBuf>,
    /// Base of acknowledgement links, without a trailing slash.
    pub public_url: String,
    pub link_ttl: Duration,
    pub clock: Arc<dyn Clock>,
    pub metrics: EscalationMetrics,
    pub log: Arc<dyn DeliveryLog>,
    pub tick: Duration,
}

/// Cheap to clone: the API holds one to answer acknowledgement links.
#[derive(Clone)]
pub struct Escalation {
    inner: Arc<Inner>,
}

struct Inner {
    p: Parts,
    policy: RwLock<Arc<Policy>>,
    policy_stamp: Mutex<Option<SystemTime>>,
    /// Newest round queued per (ticket, station, tier): a step is looked at once, not
    /// every tick. The station is part of it so that a ticket transferred to another
    /// station reaches that station's people too.
    done: Mutex<HashMap<(i64, String, u32), u32>>,
    /// The delivery gauges need a recount (a full scan of the outbox): set at start and
    /// whenever a round queued or copied something, the only ways the states change
    /// besides an admin's retry, which the retry's own attempt then reflects.
    recount: std::sync::atomic::AtomicBool,
}

/// Tickets the ladder looks at in one tick; a storm beyond it is picked up as older
/// tickets are acknowledged.
const TICKETS_PER_TICK: u32 = 5_000;
const ATTEMPTS_PER_TICK: usize = 500;
const ATTEMPT_CURSOR: &str = "attempts";

/// What a link did.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkAck {
    pub claim: AckClaim,
    pub ticket: Ticket,
    /// Someone had acknowledged (or moved on) the ticket before: nothing changed.
    pub already: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AckError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error(transparent)]
    Ticket(#[from] TicketError),
    #[error(transparent)]
    Store(#[from] EscalationError),
}

async fn blocking<T: Send + 'static, E: Into<EscalationError>>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, EscalationError> {
    tokio::task::spawn_blocking(move || f().map_err(Into::into))
        .await
        .map_err(|e| EscalationError::Task(e.to_string()))?
}

impl Escalation {
    pub fn new(p: Parts) -> Escalation {
        let stamp = p.policy_path.as_ref().and_then(|f| mtime(f));
        let policy = Arc::new(p.policy.clone());
        Escalation {
            inner: Arc::new(Inner {
                p,
                policy: RwLock::new(policy),
                policy_stamp: Mutex::new(stamp),
                done: Mutex::new(HashMap::new()),
                recount: std::sync::atomic::AtomicBool::new(true),
            }),
        }
    }

    pub fn policy(&self) -> Arc<Policy> {
        self.inner.policy.read().clone()
    }

    pub fn dispatcher(&self) -> &Arc<Dispatcher> {
        &self.inner.p.dispatcher
    }

    /// Run the ladder and the delivery worker until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let worker = {
            let d = self.inner.p.dispatcher.clone();
            let mut rx = stop_rx.clone();
            tokio::spawn(async move {
                d.run(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
            })
        };
        let ladder = {
            let me = self.clone();
            let mut rx = stop_rx;
            tokio::spawn(async move {
                loop {
                    if let Err(e) = me.tick().await {
                        me.inner.p.metrics.errors.inc();
                        error!(error = %e, "escalation round failed");
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(me.inner.p.tick) => {}
                        _ = rx.wait_for(|s| *s) => break,
                    }
                }
            })
        };
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = ladder.await;
        let _ = worker.await;
    }

    /// One round: reload the policy if its file changed, queue due steps, copy attempts.
    /// Returns the number of deliveries queued.
    pub async fn tick(&self) -> Result<usize, EscalationError> {
        self.reload_policy();
        use std::sync::atomic::Ordering;
        let queued = self.ladder_round().await?;
        let copied = self.copy_attempts().await?;
        if queued + copied > 0 {
            self.inner.recount.store(true, Ordering::Relaxed);
        }
        if self.inner.recount.swap(false, Ordering::Relaxed) {
            self.update_gauges().await;
        }
        Ok(queued)
    }

    fn reload_policy(&self) {
        let Some(path) = &self.inner.p.policy_path else {
            return;
        };
        let now = mtime(path);
        let mut stamp = self.inner.policy_stamp.lock();
        if now == *stamp {
            return;
        }
        *stamp = now;
        let roster = self.inner.p.roster.clone();
        let m = &self.inner.p.metrics;
        match Policy::load(path, &|id| roster.person_exists(id)) {
            Ok(p) => {
                *self.inner.policy.write() = Arc::new(p);
                m.policy_reloads
                    .get_or_create(&OutcomeLabel { outcome: "ok" })
                    .inc();
                info!(file = %path.display(), "escalation policy reloaded");
            }
            Err(e) => {
                m.policy_reloads
                    .get_or_create(&OutcomeLabel { outcome: "error" })
                    .inc();
                error!(file = %path.display(), error = %e, "escalation policy not reloaded; the previous one stays");
            }
        }
    }

    async fn ladder_round(&self) -> Result<usize, EscalationError> {
        let store = self.inner.p.desk.store().clone();
        let open = blocking(move || {
            store.list(&TicketFilter {
                states: vec![TicketState::Open],
                active_only: true,
                limit: Some(TICKETS_PER_TICK),
                ..TicketFilter::default()
            })
        })
        .await?;
        let now = self.inner.p.clock.now_ms();
        let policy = self.policy();
        let mut due: Vec<(Ticket, Step)> = Vec::new();
        {
            let mut done = self.inner.done.lock();
            let live: HashSet<i64> = open.iter().map(|t| t.id).collect();
            done.retain(|(id, _, _), _| live.contains(id));
            // Planned work orders have their own deadline and are not emergencies: nobody
            // is paged up a ladder for them.
            let pageable =
                |t: &Ticket| t.acknowledged_ms.is_none() && t.ticket_kind != TICKET_KIND_WORK_ORDER;
            for t in open.into_iter().filter(pageable) {
                for s in due_steps(policy.ladder(t.priority), t.opened_ms, now) {
                    let key = (t.id, t.station.clone(), s.tier);
                    if done.get(&key).is_some_and(|r| *r >= s.round) {
                        continue;
                    }
                    due.push((t.clone(), s));
                }
            }
        }
        let mut queued = 0;
        for (t, s) in due {
            queued += self.send_step(&policy, &t, s).await?;
            self.inner
                .done
                .lock()
                .insert((t.id, t.station.clone(), s.tier), s.round);
        }
        Ok(queued)
    }

    /// Queue one step for every person of its tier on every channel they have.
    async fn send_step(
        &self,
        policy: &Policy,
        t: &Ticket,
        s: Step,
    ) -> Result<usize, EscalationError> {
        let Some(tier) = policy.ladder(t.priority).tiers.get(s.tier as usize) else {
            return Ok(0);
        };
        let mut people: Vec<(Contact, &Audience)> = Vec::new();
        for a in &tier.audiences {
            for c in self.inner.p.roster.resolve(a, t, s.due_ms) {
                if !people.iter().any(|(p, _)| p.id == c.id) {
                    people.push((c, a));
                }
            }
        }
        let m = &self.inner.p.metrics;
        let audiences: Vec<String> = tier.audiences.iter().map(|a| a.as_string()).collect();
        if people.is_empty() {
            m.unreachable.inc();
            if s.round == 0 {
                warn!(ticket = t.id, tier = s.tier, audiences = ?audiences, "escalation tier reaches nobody");
                self.audit(
                    t.id,
                    "escalation",
                    &format!(
                        "tier {} ({}): nobody to notify in the estate",
                        s.tier,
                        audiences.join(", ")
                    ),
                )
                .await;
            }
            return Ok(0);
        }
        let mut queued = 0;
        for (c, audience) in people {
            if c.channels.is_empty() {
                m.unreachable.inc();
                if s.round == 0 {
                    warn!(ticket = t.id, tier = s.tier, person = %c.id, "person has no notification channel");
                    self.audit(
                        t.id,
                        "escalation",
                        &format!(
                            "tier {}: {} ({}) has no notification channel",
                            s.tier,
                            c.id,
                            audience.as_string()
                        ),
                    )
                    .await;
                }
                continue;
            }
            for endpoint in &c.channels {
                let n = self.notification(t, s, &c, endpoint);
                let r = Recipient {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    phone: c.phone.clone(),
                    email: c.email.clone(),
                };
                match self.inner.p.dispatcher.enqueue(n, r, endpoint).await {
                    Ok(Enqueued::New { .. }) => {
                        queued += 1;
                        m.notices.get_or_create(&TierLabel { tier: s.tier }).inc();
                    }
                    Ok(Enqueued::Duplicate { .. }) => {}
                    Err(steward_notify::NotifyError::UnknownEndpoint(e)) => {
                        m.unreachable.inc();
                        warn!(ticket = t.id, person = %c.id, endpoint = %e, "person's channel is not a configured endpoint");
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(queued)
    }

    fn notification(&self, t: &Ticket, s: Step, c: &Contact, endpoint: &str) -> Notification {
        let claim = AckClaim {
            ticket_id: t.id,
            person: c.id.clone(),
            endpoint: endpoint.to_string(),
            expires_ms: s.due_ms.max(self.inner.p.clock.now_ms())
                + self.inner.p.link_ttl.as_millis().min(i64::MAX as u128 / 2) as i64,
            nonce: nonce(),
        };
        let link = format!(
            "{}/ack/{}",
            self.inner.p.public_url,
            self.inner.p.key.sign(&claim)
        );
        let mut where_ = vec![format!("小区 compound {}", t.compound)];
        if !t.building.is_empty() {
            where_.push(format!("楼栋 building {}", t.building));
        }
        if !t.device_id.is_empty() && !t.device_id.contains(':') {
            where_.push(format!("设备 device {}", t.device_id));
        }
        let mut text = format!(
            "工单 ticket #{} · {} · {}",
            t.id,
            where_.join(" · "),
            t.detail
        );
        if s.round > 0 {
            text.push_str(&format!("\n未确认 not acknowledged: reminder {}", s.round));
        }
        Notification {
            ticket_id: t.id.to_string(),
            tier: s.tier,
            round: s.round,
            priority: t.priority.as_str().to_string(),
            title: t.title.clone(),
            text,
            link: Some(link),
        }
    }

    async fn audit(&self, id: i64, action: &'static str, note: &str) {
        let store = self.inner.p.desk.store().clone();
        let (now, note) = (self.inner.p.clock.now_ms(), note.to_string());
        if let Err(e) = blocking(move || store.add_audit(id, now, "steward", action, &note)).await {
            warn!(ticket = id, error = %e, "cannot write the audit record");
        }
    }

    /// Copy attempts recorded since the last round to the audit trail and the delivery log.
    /// Returns how many attempts were copied.
    async fn copy_attempts(&self) -> Result<usize, EscalationError> {
        let after = self.inner.p.store.cursor(ATTEMPT_CURSOR)?;
        let outbox = self.inner.p.dispatcher.outbox().clone();
        let entries = blocking(move || outbox.attempts_after(after, ATTEMPTS_PER_TICK)).await?;
        let Some(last) = entries.last().map(|e| e.id) else {
            return Ok(0);
        };
        for e in &entries {
            let r = &e.record;
            self.inner
                .p
                .metrics
                .attempts
                .get_or_create(&AttemptLabel {
                    channel: r.channel.clone(),
                    outcome: r.outcome.clone(),
                })
                .inc();
        }
        self.inner.p.log.attempts(&entries);
        let store = self.inner.p.desk.store().clone();
        let list = entries.clone();
        blocking(move || -> Result<(), EscalationError> {
            for e in &list {
                let r = &e.record;
                let Ok(id) = r.ticket_id.parse::<i64>() else {
                    continue;
                };
                let mut note = format!(
                    "tier {} to {} over {} ({}), attempt {}: {}",
                    e.tier, r.recipient, r.endpoint, r.channel, r.attempt, r.outcome
                );
                if let Some(err) = &r.error {
                    note.push_str(&format!(" ({err})"));
                }
                match store.add_audit(id, r.at_ms, "notify", "notification", &note) {
                    Ok(()) | Err(TicketError::NotFound(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
        .await?;
        self.inner.p.store.set_cursor(ATTEMPT_CURSOR, last)?;
        Ok(entries.len())
    }

    async fn update_gauges(&self) {
        let outbox = self.inner.p.dispatcher.outbox().clone();
        if let Ok((pending, delivered, dead)) = blocking(move || outbox.counts()).await {
            let g = &self.inner.p.metrics.deliveries;
            g.get_or_create(&StateLabel { state: "pending" })
                .set(pending as i64);
            g.get_or_create(&StateLabel { state: "delivered" })
                .set(delivered as i64);
            g.get_or_create(&StateLabel { state: "dead" })
                .set(dead as i64);
        }
    }

    /// Check a link without using it (the page a recipient opens). Blocking.
    pub fn preview(&self, token: &str) -> Result<(AckClaim, Ticket), AckError> {
        let claim = self.verify(token)?;
        let ticket = self.inner.p.desk.store().ticket(claim.ticket_id)?;
        Ok((claim, ticket))
    }

    fn verify(&self, token: &str) -> Result<AckClaim, AckError> {
        let now = self.inner.p.clock.now_ms();
        let checked = self
            .inner
            .p
            .key
            .verify(token, now)
            .map_err(AckError::from)
            .and_then(|c| {
                if self.inner.p.store.link_used(&c.nonce)? {
                    Err(LinkError::Used.into())
                } else {
                    Ok(c)
                }
            });
        if checked.is_err() {
            self.inner.p.metrics.link_refused.inc();
        }
        checked
    }

    /// Acknowledge the link's ticket as its person, once. Blocking.
    pub fn acknowledge(&self, token: &str) -> Result<LinkAck, AckError> {
        let claim = self.verify(token)?;
        let now = self.inner.p.clock.now_ms();
        let desk = &self.inner.p.desk;
        let ticket = desk.store().ticket(claim.ticket_id)?;
        if !self.inner.p.store.use_link(
            &claim.nonce,
            claim.ticket_id,
            &claim.person,
            &claim.endpoint,
            now,
        )? {
            self.inner.p.metrics.link_refused.inc();
            return Err(LinkError::Used.into());
        }
        if ticket.acknowledged_ms.is_some() || !ticket.state.can_go_to(TicketState::Acknowledged) {
            return Ok(LinkAck {
                claim,
                ticket,
                already: true,
            });
        }
        let note = format!(
            "acknowledged through the one-time link sent over `{}`",
            claim.endpoint
        );
        let ticket = desk.transition(
            claim.ticket_id,
            TicketState::Acknowledged,
            &format!("person:{}", claim.person),
            &note,
        )?;
        self.inner.p.metrics.link_acks.inc();
        info!(ticket = ticket.id, person = %claim.person, endpoint = %claim.endpoint, "ticket acknowledged through a link");
        Ok(LinkAck {
            claim,
            ticket,
            already: false,
        })
    }
}

fn mtime(path: &std::path::Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}
