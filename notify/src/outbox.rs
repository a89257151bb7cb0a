//! The delivery outbox: one SQLite file (WAL) with every delivery and every attempt.
//!
//! A delivery is keyed by `ticket/tier/recipient/endpoint`: enqueueing the same key again
//! does nothing, so a repeated escalation step or a replay after a restart never produces a
//! second message. Pending deliveries survive restarts; delivered and dead ones stay for
//! the record. Calls block on SQLite: async callers go through `spawn_blocking` (the
//! [`crate::Dispatcher`] does).

use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use std::path::Path;

use crate::config::ChannelKind;
use crate::message::{Notification, Recipient};
use crate::NotifyError;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    idem_key TEXT NOT NULL UNIQUE,
    ticket_id TEXT NOT NULL,
    tier INTEGER NOT NULL,
    recipient_id TEXT NOT NULL,
    recipient_masked TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    channel TEXT NOT NULL,
    notification TEXT NOT NULL,
    recipient TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    finished_ms INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries(state, next_attempt_ms);
CREATE INDEX IF NOT EXISTS deliveries_ticket ON deliveries(ticket_id);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    id INTEGER PRIMARY KEY,
    delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
    ticket_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at_ms INTEGER NOT NULL,
    endpoint TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    outcome TEXT NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS delivery_attempts_ticket ON delivery_attempts(ticket_id);
";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "dead" => Some(DeliveryState::Dead),
            _ => None,
        }
    }
}

/// What [`Outbox::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enqueued {
    New {
        id: i64,
        key: String,
    },
    /// The key was already there (in whatever state): nothing new is sent.
    Duplicate {
        id: i64,
        key: String,
        state: DeliveryState,
    },
}

/// A delivery as the API shows it (contact details masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub key: String,
    pub ticket_id: String,
    pub tier: u32,
    pub recipient_id: String,
    pub recipient: String,
    pub endpoint: String,
    pub channel: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub next_attempt_ms: i64,
    pub created_ms: i64,
    pub finished_ms: Option<i64>,
    pub last_error: Option<String>,
}

/// One attempt: when, over what, to whom (masked), and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptRecord {
    pub delivery_id: i64,
    pub ticket_id: String,
    pub attempt: u32,
    pub at_ms: i64,
    pub endpoint: String,
    pub channel: String,
    pub recipient: String,
    /// `delivered`, `retry` or `dead`.
    pub outcome: String,
    pub error: Option<String>,
}

/// An attempt with its id and its delivery's tier, key and recipient id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttemptEntry {
    pub id: i64,
    pub tier: u32,
    pub key: String,
    pub recipient_id: String,
    pub record: AttemptRecord,
}

impl AttemptEntry {
    /// The reminder round, read back from the key ([`delivery_key`]).
    pub fn round(&self) -> u32 {
        self.key
            .split('/')
            .nth(2)
            .and_then(|p| p.strip_prefix('r'))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

/// A pending delivery the worker sends.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub key: String,
    pub endpoint: String,
    pub channel: String,
    pub attempts: u32,
    pub notification: Notification,
    pub recipient: Recipient,
}

/// How an attempt ended, as the worker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    Retry { error: String, next_attempt_ms: i64 },
    Dead { error: String },
}

pub struct Outbox {
    conn: Mutex<Connection>,
}

/// The idempotency key of a delivery.
pub fn delivery_key(n: &Notification, recipient: &Recipient, endpoint: &str) -> String {
    if n.round == 0 {
        format!("{}/{}/{}/{}", n.ticket_id, n.tier, recipient.id, endpoint)
    } else {
        format!(
            "{}/{}/r{}/{}/{}",
            n.ticket_id, n.tier, n.round, recipient.id, endpoint
        )
    }
}

const RECORD_COLUMNS: &str = "id, idem_key, ticket_id, tier, recipient_id, recipient_masked, \
     endpoint, channel, state, attempts, next_attempt_ms, created_ms, finished_ms, last_error";

fn record_from_row(row: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let state: String = row.get(8)?;
    Ok(DeliveryRecord {
        id: row.get(0)?,
        key: row.get(1)?,
        ticket_id: row.get(2)?,
        tier: row.get(3)?,
        recipient_id: row.get(4)?,
        recipient: row.get(5)?,
        endpoint: row.get(6)?,
        channel: row.get(7)?,
        // Only this module writes the column; an unknown value reads as dead, so it shows.
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Dead),
        attempts: row.get(9)?,
        next_attempt_ms: row.get(10)?,
        created_ms: row.get(11)?,
        finished_ms: row.get(12)?,
        last_error: row.get(13)?,
    })
}

impl Outbox {
    /// Open (or create) the outbox file; pending deliveries in it are resumed by the worker.
    pub fn open(path: &Path) -> Result<Outbox, NotifyError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| NotifyError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Outbox {
            conn: Mutex::new(conn),
        })
    }

    /// Queue a notification for one recipient over one endpoint, due at once.
    pub fn enqueue(
        &self,
        n: &Notification,
        recipient: &Recipient,
        endpoint: &str,
        channel: ChannelKind,
        now_ms: i64,
    ) -> Result<Enqueued, NotifyError> {
        let key = delivery_key(n, recipient, endpoint);
        let notification = serde_json::to_string(n).map_err(|e| NotifyError::Corrupt {
            id: 0,
            message: e.to_string(),
        })?;
        let recipient_json =
            serde_json::to_string(recipient).map_err(|e| NotifyError::Corrupt {
                id: 0,
                message: e.to_string(),
            })?;
        let conn = self.conn.lock();
        let inserted = conn.execute(
            "INSERT INTO deliveries (idem_key, ticket_id, tier, recipient_id, recipient_masked,
                 endpoint, channel, notification, recipient, state, next_attempt_ms, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10, ?10)
             ON CONFLICT(idem_key) DO NOTHING",
            params![
                key,
                n.ticket_id,
                n.tier,
                recipient.id,
                recipient.masked(),
                endpoint,
                channel.as_str(),
                notification,
                recipient_json,
                now_ms
            ],
        )?;
        let (id, state): (i64, String) = conn.query_row(
            "SELECT id, state FROM deliveries WHERE idem_key = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if inserted == 1 {
            Ok(Enqueued::New { id, key })
        } else {
            let state = DeliveryState::parse(&state).ok_or(NotifyError::Corrupt {
                id,
                message: format!("unknown state `{state}`"),
            })?;
            Ok(Enqueued::Duplicate { id, key, state })
        }
    }

    /// Pending deliveries due at `now_ms`, oldest due first.
    pub fn due(&self, now_ms: i64, limit: usize) -> Result<Vec<DueDelivery>, NotifyError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT id, idem_key, endpoint, channel, attempts, notification, recipient
             FROM deliveries WHERE state = 'pending' AND next_attempt_ms <= ?1
             ORDER BY next_attempt_ms, id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, key, endpoint, channel, attempts, n, rcpt) = row?;
            let corrupt = |e: serde_json::Error| NotifyError::Corrupt {
                id,
                message: e.to_string(),
            };
            out.push(DueDelivery {
                id,
                key,
                endpoint,
                channel,
                attempts,
                notification: serde_json::from_str(&n).map_err(corrupt)?,
                recipient: serde_json::from_str(&rcpt).map_err(corrupt)?,
            });
        }
        Ok(out)
    }

    /// Record one attempt and move the delivery on, in one transaction.
    pub fn record_attempt(
        &self,
        id: i64,
        at_ms: i64,
        outcome: &AttemptOutcome,
    ) -> Result<(), NotifyError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let (ticket_id, endpoint, channel, recipient, attempts): (
            String,
            String,
            String,
            String,
            u32,
        ) = tx.query_row(
            "SELECT ticket_id, endpoint, channel, recipient_masked, attempts
                 FROM deliveries WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let attempt = attempts + 1;
        let (label, error) = match outcome {
            AttemptOutcome::Delivered => ("delivered", None),
            AttemptOutcome::Retry { error, .. } => ("retry", Some(error.as_str())),
            AttemptOutcome::Dead { error } => ("dead", Some(error.as_str())),
        };
        tx.execute(
            "INSERT INTO delivery_attempts
                 (delivery_id, ticket_id, attempt, at_ms, endpoint, channel, recipient, outcome, error)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![id, ticket_id, attempt, at_ms, endpoint, channel, recipient, label, error],
        )?;
        match outcome {
            AttemptOutcome::Delivered => tx.execute(
                "UPDATE deliveries SET state = 'delivered', attempts = ?2, finished_ms = ?3,
                     last_error = NULL WHERE id = ?1",
                params![id, attempt, at_ms],
            )?,
            AttemptOutcome::Retry {
                error,
                next_attempt_ms,
            } => tx.execute(
                "UPDATE deliveries SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4
                 WHERE id = ?1",
                params![id, attempt, next_attempt_ms, error],
            )?,
            AttemptOutcome::Dead { error } => tx.execute(
                "UPDATE deliveries SET state = 'dead', attempts = ?2, finished_ms = ?3,
                     last_error = ?4 WHERE id = ?1",
                params![id, attempt, at_ms, error],
            )?,
        };
        tx.commit()?;
        Ok(())
    }

    /// Put a dead letter back in the queue (an operator fixed the endpoint), due at once.
    /// Returns false when `id` is not a dead letter.
    pub fn retry_dead(&self, id: i64, now_ms: i64) -> Result<bool, NotifyError> {
        let n = self.conn.lock().execute(
            "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_ms = ?2,
                 finished_ms = NULL WHERE id = ?1 AND state = 'dead'",
            params![id, now_ms],
        )?;
        Ok(n == 1)
    }

    /// Dead letters, newest first.
    pub fn dead_letters(&self, limit: usize) -> Result<Vec<DeliveryRecord>, NotifyError> {
        self.records(
            &format!(
                "SELECT {RECORD_COLUMNS} FROM deliveries WHERE state = 'dead'
                 ORDER BY finished_ms DESC, id DESC LIMIT ?1"
            ),
            params![limit as i64],
        )
    }

    /// Every delivery of a ticket, in the order they were queued.
    pub fn deliveries_for_ticket(
        &self,
        ticket_id: &str,
    ) -> Result<Vec<DeliveryRecord>, NotifyError> {
        self.records(
            &format!("SELECT {RECORD_COLUMNS} FROM deliveries WHERE ticket_id = ?1 ORDER BY id"),
            params![ticket_id],
        )
    }

    pub fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>, NotifyError> {
        let conn = self.conn.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {RECORD_COLUMNS} FROM deliveries WHERE id = ?1"),
                [id],
                record_from_row,
            )
            .optional()?)
    }

    fn records(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<DeliveryRecord>, NotifyError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params, record_from_row)?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Every attempt made for a ticket's deliveries, in time order.
    pub fn attempts_for_ticket(&self, ticket_id: &str) -> Result<Vec<AttemptRecord>, NotifyError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT delivery_id, ticket_id, attempt, at_ms, endpoint, channel, recipient,
                    outcome, error
             FROM delivery_attempts WHERE ticket_id = ?1 ORDER BY at_ms, id",
        )?;
        let rows = stmt.query_map([ticket_id], |r| {
            Ok(AttemptRecord {
                delivery_id: r.get(0)?,
                ticket_id: r.get(1)?,
                attempt: r.get(2)?,
                at_ms: r.get(3)?,
                endpoint: r.get(4)?,
                channel: r.get(5)?,
                recipient: r.get(6)?,
                outcome: r.get(7)?,
                error: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Attempts recorded after attempt id `after_id`, oldest first, at most `limit`, with
    /// their delivery's tier and key: a follower copies them elsewhere (an audit trail, a
    /// time-series table) and keeps the last id it copied.
    pub fn attempts_after(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<AttemptEntry>, NotifyError> {
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT a.id, d.tier, d.idem_key, d.recipient_id, a.delivery_id, a.ticket_id,
                    a.attempt, a.at_ms, a.endpoint, a.channel, a.recipient, a.outcome, a.error
             FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
             WHERE a.id > ?1 ORDER BY a.id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after_id, limit as i64], |r| {
            Ok(AttemptEntry {
                id: r.get(0)?,
                tier: r.get(1)?,
                key: r.get(2)?,
                recipient_id: r.get(3)?,
                record: AttemptRecord {
                    delivery_id: r.get(4)?,
                    ticket_id: r.get(5)?,
                    attempt: r.get(6)?,
                    at_ms: r.get(7)?,
                    endpoint: r.get(8)?,
                    channel: r.get(9)?,
                    recipient: r.get(10)?,
                    outcome: r.get(11)?,
                    error: r.get(12)?,
                },
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Deliveries per state: (pending, delivered, dead).
    pub fn counts(&self) -> Result<(u64, u64, u64), NotifyError> {
        let conn = self.conn.lock();
        Ok(conn.query_row(
            "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'delivered'), 0),
                    COALESCE(SUM(state = 'dead'), 0) FROM deliveries",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(ticket: &str, tier: u32) -> Notification {
        Notification {
            ticket_id: ticket.into(),
            tier,
            round: 0,
            priority: "P1".into(),
            title: "trapped passenger".into(),
            text: "lift-1".into(),
            link: None,
        }
    }

    #[test]
    fn enqueue_is_idempotent_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("outbox.db");
        let r = Recipient::new("crew-1", "Crew One").with_phone("13812345678");
        let first = {
            let o = Outbox::open(&path).expect("open");
            let first = o
                .enqueue(&note("t-1", 0), &r, "hook", ChannelKind::Webhook, 1_000)
                .expect("enqueue");
            assert!(matches!(first, Enqueued::New { .. }));
            o.record_attempt(
                1,
                1_500,
                &AttemptOutcome::Retry {
                    error: "down".into(),
                    next_attempt_ms: 9_000,
                },
            )
            .expect("attempt");
            first
        };
        let o = Outbox::open(&path).expect("reopen");
        let again = o
            .enqueue(&note("t-1", 0), &r, "hook", ChannelKind::Webhook, 2_000)
            .expect("enqueue");
        let Enqueued::New { id, key } = first else {
            unreachable!()
        };
        assert_eq!(
            again,
            Enqueued::Duplicate {
                id,
                key: key.clone(),
                state: DeliveryState::Pending
            }
        );
        assert!(o.due(8_999, 10).expect("due").is_empty());
        let due = o.due(9_000, 10).expect("due");
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].attempts, 1);
        assert_eq!(due[0].recipient.phone.as_deref(), Some("13812345678"));
        o.record_attempt(id, 9_100, &AttemptOutcome::Delivered)
            .expect("attempt");
        assert!(o.due(i64::MAX, 10).expect("due").is_empty());
        let attempts = o.attempts_for_ticket("t-1").expect("attempts");
        assert_eq!(attempts.len(), 2);
        assert_eq!(attempts[0].recipient, "crew-1 (138****5678)");
        assert_eq!(attempts[1].outcome, "delivered");
        assert_eq!(o.counts().expect("counts"), (0, 1, 0));
        let next_tier = o
            .enqueue(&note("t-1", 1), &r, "hook", ChannelKind::Webhook, 10_000)
            .expect("enqueue");
        assert!(matches!(next_tier, Enqueued::New { .. }));
    }
}
