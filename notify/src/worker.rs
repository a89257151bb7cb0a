//! The dispatcher: sends due deliveries from the outbox, a batch at a time and concurrently
//! (so one unreachable endpoint only costs its own timeout), and records each attempt.
//! A failed attempt is retried after an exponential backoff with jitter; after
//! `max_attempts`, or at once for a failure no retry can fix, the delivery is dead-lettered.
//!
//! Time comes from the injected [`Clock`], so tests move it by hand. One dispatcher per
//! outbox file: it is the only sender, which is what makes "never sent twice" hold.

use parking_lot::Mutex;
use rand::Rng;
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use steward_estate::clock::Clock;
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::channel::{Channels, Delivery};
use crate::config::OutboxConfig;
use crate::message::{Notification, Recipient};
use crate::outbox::{AttemptOutcome, DeliveryRecord, DueDelivery, Enqueued, Outbox};
use crate::NotifyError;

/// Exponential backoff: `initial * 2^(attempt-1)`, capped at `max`, of which the upper half
/// is random ("equal jitter"): retries of many deliveries that failed together spread out,
/// and none comes sooner than half its nominal delay.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The delay before the next attempt, after `attempts` attempts (1 or more).
    pub fn delay(&self, attempts: u32, rng: &mut impl Rng) -> Duration {
        let exp = attempts.saturating_sub(1).min(30);
        let nominal = self
            .initial
            .checked_mul(1u32 << exp)
            .unwrap_or(self.max)
            .min(self.max);
        let half = nominal / 2;
        let jitter_ms = rng.random_range(0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter_ms)
    }
}

pub struct Dispatcher {
    outbox: Arc<Outbox>,
    channels: Arc<Channels>,
    clock: Arc<dyn Clock>,
    cfg: OutboxConfig,
    wake: Notify,
    /// Deliveries being attempted now: a slow attempt keeps its slot, and the next round
    /// neither waits for it nor sends it a second time.
    in_flight: Mutex<HashSet<i64>>,
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, NotifyError> + Send + 'static,
) -> Result<T, NotifyError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NotifyError::Task(e.to_string()))?
}

impl Dispatcher {
    pub fn new(
        outbox: Arc<Outbox>,
        channels: Arc<Channels>,
        clock: Arc<dyn Clock>,
        cfg: OutboxConfig,
    ) -> Dispatcher {
        Dispatcher {
            outbox,
            channels,
            clock,
            cfg,
            wake: Notify::new(),
            in_flight: Mutex::new(HashSet::new()),
        }
    }

    pub fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Queue a notification for a recipient over a configured endpoint and wake the worker.
    /// A key already queued (or already delivered) is not queued again.
    pub async fn enqueue(
        &self,
        notification: Notification,
        recipient: Recipient,
        endpoint: &str,
    ) -> Result<Enqueued, NotifyError> {
        let channel = self
            .channels
            .endpoint(endpoint)
            .ok_or_else(|| NotifyError::UnknownEndpoint(endpoint.to_string()))?
            .kind();
        let outbox = self.outbox.clone();
        let endpoint = endpoint.to_string();
        let now = self.clock.now_ms();
        let result =
            blocking(move || outbox.enqueue(&notification, &recipient, &endpoint, channel, now))
                .await?;
        if matches!(result, Enqueued::New { .. }) {
            self.wake.notify_one();
        }
        Ok(result)
    }

    /// Due deliveries not in flight, up to `room`, marked in flight.
    async fn claim(&self, room: usize) -> Result<Vec<DueDelivery>, NotifyError> {
        if room == 0 {
            return Ok(Vec::new());
        }
        let outbox = self.outbox.clone();
        let now = self.clock.now_ms();
        // An attempt leaves the set only after its outcome is committed, so a delivery
        // missing from this snapshot is read below as it really is. One that was in flight
        // at the snapshot may have finished since, and the read may predate its outcome:
        // it is left for the next round.
        let before = self.in_flight.lock().clone();
        let limit = room + before.len();
        let due = blocking(move || outbox.due(now, limit)).await?;
        let mut in_flight = self.in_flight.lock();
        let mut claimed = Vec::new();
        for d in due {
            if claimed.len() == room {
                break;
            }
            if !before.contains(&d.id) && in_flight.insert(d.id) {
                claimed.push(d);
            }
        }
        Ok(claimed)
    }

    /// Send the deliveries due now (up to one batch) and wait for their outcomes; returns
    /// how many were attempted. [`Dispatcher::run`] does this continuously.
    pub async fn run_once(self: &Arc<Self>) -> Result<usize, NotifyError> {
        let due = self.claim(self.cfg.batch).await?;
        let n = due.len();
        let attempts =
            futures::future::join_all(due.into_iter().map(|d| self.clone().attempt(d))).await;
        for result in attempts {
            result?;
        }
        Ok(n)
    }

    async fn attempt(self: Arc<Self>, d: DueDelivery) -> Result<(), NotifyError> {
        let id = d.id;
        let result = self.attempt_inner(d).await;
        self.in_flight.lock().remove(&id);
        result
    }

    async fn attempt_inner(&self, d: DueDelivery) -> Result<(), NotifyError> {
        let result = self
            .channels
            .send(
                &d.endpoint,
                Delivery {
                    key: &d.key,
                    notification: &d.notification,
                    recipient: &d.recipient,
                },
            )
            .await;
        let at = self.clock.now_ms();
        let attempts = d.attempts + 1;
        let who = d.recipient.masked();
        let outcome = match result {
            Ok(()) => {
                tracing::info!(ticket = %d.notification.ticket_id, tier = d.notification.tier,
                    endpoint = %d.endpoint, channel = %d.channel, recipient = %who, attempts,
                    "notification delivered");
                AttemptOutcome::Delivered
            }
            Err(e) if e.is_permanent() || attempts >= self.cfg.max_attempts => {
                tracing::warn!(ticket = %d.notification.ticket_id, endpoint = %d.endpoint,
                    channel = %d.channel, recipient = %who, attempts, error = %e,
                    "notification dead-lettered");
                AttemptOutcome::Dead {
                    error: e.to_string(),
                }
            }
            Err(e) => {
                let backoff = Backoff {
                    initial: self.cfg.initial_backoff,
                    max: self.cfg.max_backoff,
                };
                let delay = backoff.delay(attempts, &mut rand::rng());
                tracing::debug!(ticket = %d.notification.ticket_id, endpoint = %d.endpoint,
                    channel = %d.channel, recipient = %who, attempts, error = %e,
                    retry_in_ms = delay.as_millis() as u64, "notification attempt failed");
                AttemptOutcome::Retry {
                    error: e.to_string(),
                    next_attempt_ms: at + delay.as_millis() as i64,
                }
            }
        };
        let outbox = self.outbox.clone();
        blocking(move || outbox.record_attempt(d.id, at, &outcome)).await
    }

    /// Run until `shutdown` resolves. Up to `batch` attempts run at once, each as its own
    /// task; due deliveries are claimed whenever something is enqueued, an attempt ends, or
    /// every `poll_interval`. An outbox error is logged and retried at the next tick. On
    /// shutdown, attempts still running are abandoned: an attempt whose outcome was not
    /// recorded is made again by the next dispatcher (same delivery key).
    pub async fn run(self: Arc<Self>, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tasks = JoinSet::new();
        loop {
            let room = self.cfg.batch.saturating_sub(tasks.len());
            match self.claim(room).await {
                Ok(due) => {
                    for d in due {
                        tasks.spawn(self.clone().attempt(d));
                    }
                }
                Err(e) => tracing::error!(error = %e, "notification outbox round failed"),
            }
            tokio::select! {
                _ = &mut shutdown => break,
                _ = self.wake.notified() => {}
                Some(done) = tasks.join_next(), if !tasks.is_empty() => match done {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, "notification attempt not recorded"),
                    Err(e) => tracing::error!(error = %e, "notification attempt task failed"),
                },
                _ = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
        tasks.shutdown().await;
        self.in_flight.lock().clear();
    }

    /// Dead letters for the API, newest first.
    pub async fn dead_letters(&self, limit: usize) -> Result<Vec<DeliveryRecord>, NotifyError> {
        let outbox = self.outbox.clone();
        blocking(move || outbox.dead_letters(limit)).await
    }

    /// Every delivery of a ticket with its state, for the ticket page.
    pub async fn deliveries_for_ticket(
        &self,
        ticket_id: &str,
    ) -> Result<Vec<DeliveryRecord>, NotifyError> {
        let outbox = self.outbox.clone();
        let ticket = ticket_id.to_string();
        blocking(move || outbox.deliveries_for_ticket(&ticket)).await
    }

    /// Queue a dead letter again (the endpoint was fixed) and wake the worker; false when
    /// `id` is not a dead letter.
    pub async fn retry_dead(&self, id: i64) -> Result<bool, NotifyError> {
        let outbox = self.outbox.clone();
        let now = self.clock.now_ms();
        let requeued = blocking(move || outbox.retry_dead(id, now)).await?;
        if requeued {
            self.wake.notify_one();
        }
        Ok(requeued)
    }

    /// Every attempt for a ticket, for its audit trail.
    pub async fn attempts_for_ticket(
        &self,
        ticket_id: &str,
    ) -> Result<Vec<crate::AttemptRecord>, NotifyError> {
        let outbox = self.outbox.clone();
        let ticket = ticket_id.to_string();
        blocking(move || outbox.attempts_for_ticket(&ticket)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let b = Backoff {
            initial: Duration::from_secs(5),
            max: Duration::from_secs(60),
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..100 {
            let d1 = b.delay(1, &mut rng);
            assert!(d1 >= Duration::from_millis(2_500) && d1 <= Duration::from_secs(5));
            let d3 = b.delay(3, &mut rng);
            assert!(d3 >= Duration::from_secs(10) && d3 <= Duration::from_secs(20));
            let d40 = b.delay(40, &mut rng);
            assert!(d40 >= Duration::from_secs(30) && d40 <= Duration::from_secs(60));
        }
    }
}
