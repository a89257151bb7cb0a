//! Rounds and their checklist items in the stage's own SQLite file. A round is unique by
//! (schedule, asset, period), which is what makes generation idempotent across restarts.

use crate::RoundsError;
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id TEXT NOT NULL,
    schedule_name TEXT NOT NULL,
    asset TEXT NOT NULL,
    asset_kind TEXT NOT NULL,
    compound TEXT NOT NULL,
    building TEXT NOT NULL,
    station TEXT NOT NULL,
    assignee TEXT NOT NULL,
    period TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    due_ms INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    ticket_id INTEGER,
    status TEXT NOT NULL,
    completed_ms INTEGER,
    UNIQUE(schedule_id, asset, period)
);
CREATE INDEX IF NOT EXISTS rounds_status ON rounds(status, due_ms);
CREATE INDEX IF NOT EXISTS rounds_window ON rounds(window_start_ms);
CREATE INDEX IF NOT EXISTS rounds_no_ticket ON rounds(id) WHERE ticket_id IS NULL;
CREATE TABLE IF NOT EXISTS round_items (
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    item_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    proof TEXT,
    state TEXT NOT NULL,
    actor TEXT,
    evidence TEXT,
    ts_ms INTEGER,
    corrective_ticket INTEGER,
    PRIMARY KEY(round_id, item_id)
);
";

/// A round's state: `open` until every item is decided, then `done` (all done) or
/// `failed` (at least one item failed; its corrective ticket carries the repair).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Round {
    pub id: i64,
    pub schedule_id: String,
    pub schedule_name: String,
    /// Device id, or `building:<id>` / `compound:<id>`.
    pub asset: String,
    pub asset_kind: String,
    pub compound: String,
    pub building: String,
    pub station: String,
    /// `station` or `captain`.
    pub assignee: String,
    pub period: String,
    pub window_start_ms: i64,
    pub due_ms: i64,
    pub opened_ms: i64,
    /// The work order (a ticket of kind `work_order`).
    pub ticket_id: Option<i64>,
    pub status: String,
    pub completed_ms: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundItem {
    pub item_id: String,
    pub text: String,
    /// What telemetry must show to prove it, if it can.
    pub proof: Option<String>,
    /// `open`, `done` or `failed`.
    pub state: String,
    /// Who decided it: a person, or `telemetry`.
    pub actor: Option<String>,
    /// The note or the reading/event that decided it.
    pub evidence: Option<String>,
    pub ts_ms: Option<i64>,
    /// The incident opened because the item failed.
    pub corrective_ticket: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoundDetail {
    pub round: Round,
    pub items: Vec<RoundItem>,
}

/// A new round as the generator makes it.
pub struct NewRound<'a> {
    pub round: &'a Round,
    /// (item id, text, proof description).
    pub items: Vec<(&'a str, &'a str, Option<String>)>,
}

#[derive(Clone)]
pub struct RoundStore {
    conn: Arc<Mutex<Connection>>,
}

const COLS: &str = "id, schedule_id, schedule_name, asset, asset_kind, compound, building, \
    station, assignee, period, window_start_ms, due_ms, opened_ms, ticket_id, status, completed_ms";

fn round_row(r: &Row) -> rusqlite::Result<Round> {
    Ok(Round {
        id: r.get(0)?,
        schedule_id: r.get(1)?,
        schedule_name: r.get(2)?,
        asset: r.get(3)?,
        asset_kind: r.get(4)?,
        compound: r.get(5)?,
        building: r.get(6)?,
        station: r.get(7)?,
        assignee: r.get(8)?,
        period: r.get(9)?,
        window_start_ms: r.get(10)?,
        due_ms: r.get(11)?,
        opened_ms: r.get(12)?,
        ticket_id: r.get(13)?,
        status: r.get(14)?,
        completed_ms: r.get(15)?,
    })
}

impl RoundStore {
    pub fn open(path: &Path) -> Result<RoundStore, RoundsError> {
        Self::init(Connection::open(path)?)
    }

    pub fn open_in_memory() -> Result<RoundStore, RoundsError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<RoundStore, RoundsError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        Ok(RoundStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Insert a round with its items unless (schedule, asset, period) exists; the round
    /// as stored either way, and whether it was new.
    pub fn insert(&self, n: &NewRound) -> Result<(Round, bool), RoundsError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let r = n.round;
        let added = tx.execute(
            "INSERT OR IGNORE INTO rounds(schedule_id, schedule_name, asset, asset_kind,
                compound, building, station, assignee, period, window_start_ms, due_ms,
                opened_ms, status)
             VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,'open')",
            params![
                r.schedule_id,
                r.schedule_name,
                r.asset,
                r.asset_kind,
                r.compound,
                r.building,
                r.station,
                r.assignee,
                r.period,
                r.window_start_ms,
                r.due_ms,
                r.opened_ms
            ],
        )? == 1;
        let stored = tx.query_row(
            &format!("SELECT {COLS} FROM rounds WHERE schedule_id=?1 AND asset=?2 AND period=?3"),
            params![r.schedule_id, r.asset, r.period],
            round_row,
        )?;
        if added {
            for (pos, (id, text, proof)) in n.items.iter().enumerate() {
                tx.execute(
                    "INSERT INTO round_items(round_id, item_id, position, text, proof, state)
                     VALUES(?1,?2,?3,?4,?5,'open')",
                    params![stored.id, id, pos as i64, text, proof],
                )?;
            }
        }
        tx.commit()?;
        Ok((stored, added))
    }

    pub fn set_ticket(&self, round_id: i64, ticket_id: i64) -> Result<(), RoundsError> {
        self.conn.lock().execute(
            "UPDATE rounds SET ticket_id=?2 WHERE id=?1",
            params![round_id, ticket_id],
        )?;
        Ok(())
    }

    pub fn round(&self, id: i64) -> Result<Round, RoundsError> {
        self.conn
            .lock()
            .query_row(
                &format!("SELECT {COLS} FROM rounds WHERE id=?1"),
                [id],
                round_row,
            )
            .optional()?
            .ok_or(RoundsError::NotFound(id))
    }

    pub fn detail(&self, id: i64) -> Result<RoundDetail, RoundsError> {
        let round = self.round(id)?;
        let conn = self.conn.lock();
        let mut st = conn.prepare_cached(
            "SELECT item_id, text, proof, state, actor, evidence, ts_ms, corrective_ticket
             FROM round_items WHERE round_id=?1 ORDER BY position",
        )?;
        let items = st
            .query_map([id], |r| {
                Ok(RoundItem {
                    item_id: r.get(0)?,
                    text: r.get(1)?,
                    proof: r.get(2)?,
                    state: r.get(3)?,
                    actor: r.get(4)?,
                    evidence: r.get(5)?,
                    ts_ms: r.get(6)?,
                    corrective_ticket: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RoundDetail { round, items })
    }

    /// Rounds matching `status` (`open`, `done`, `failed`; `overdue` = open past due at
    /// `now_ms`; `None` = all), newest window first, at most `limit`.
    pub fn list(
        &self,
        status: Option<&str>,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<Round>, RoundsError> {
        let conn = self.conn.lock();
        let (cond, arg): (&str, rusqlite::types::Value) = match status {
            None => ("1=?1", 1.into()),
            Some("overdue") => ("status='open' AND due_ms < ?1", now_ms.into()),
            Some(s) => ("status=?1", s.to_string().into()),
        };
        let mut st = conn.prepare(&format!(
            "SELECT {COLS} FROM rounds WHERE {cond} ORDER BY window_start_ms DESC, id DESC LIMIT {limit}"
        ))?;
        let rows = st
            .query_map([arg], round_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Rounds whose window starts in `[from_ms, to_ms)`.
    pub fn in_window(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Round>, RoundsError> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {COLS} FROM rounds WHERE window_start_ms >= ?1 AND window_start_ms < ?2
             ORDER BY id"
        ))?;
        let rows = st
            .query_map(params![from_ms, to_ms], round_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Open items with telemetry proof of open rounds: (round, item id).
    pub fn open_proof_items(&self) -> Result<Vec<(Round, String)>, RoundsError> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {}, i.item_id FROM rounds r JOIN round_items i ON i.round_id = r.id
             WHERE r.status='open' AND i.state='open' AND i.proof IS NOT NULL ORDER BY r.id",
            COLS.split(", ")
                .map(|c| format!("r.{}", c.trim()))
                .collect::<Vec<_>>()
                .join(", ")
        ))?;
        let rows = st
            .query_map([], |r| Ok((round_row(r)?, r.get(16)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Decide an open item; false when it was already decided (nothing changed).
    pub fn decide(
        &self,
        round_id: i64,
        item_id: &str,
        state: &str,
        actor: &str,
        evidence: &str,
        ts_ms: i64,
    ) -> Result<bool, RoundsError> {
        let n = self.conn.lock().execute(
            "UPDATE round_items SET state=?3, actor=?4, evidence=?5, ts_ms=?6
             WHERE round_id=?1 AND item_id=?2 AND state='open'",
            params![round_id, item_id, state, actor, evidence, ts_ms],
        )?;
        Ok(n == 1)
    }

    pub fn set_corrective(
        &self,
        round_id: i64,
        item_id: &str,
        ticket: i64,
    ) -> Result<(), RoundsError> {
        self.conn.lock().execute(
            "UPDATE round_items SET corrective_ticket=?3 WHERE round_id=?1 AND item_id=?2",
            params![round_id, item_id, ticket],
        )?;
        Ok(())
    }

    /// Close the round once no item is open: `done` or `failed`. Returns the new status.
    pub fn complete_if_decided(
        &self,
        round_id: i64,
        now_ms: i64,
    ) -> Result<Option<String>, RoundsError> {
        let conn = self.conn.lock();
        let (open, failed): (i64, i64) = conn.query_row(
            "SELECT COALESCE(SUM(state='open'),0), COALESCE(SUM(state='failed'),0)
             FROM round_items WHERE round_id=?1",
            [round_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if open > 0 {
            return Ok(None);
        }
        let status = if failed > 0 { "failed" } else { "done" };
        let n = conn.execute(
            "UPDATE rounds SET status=?2, completed_ms=?3 WHERE id=?1 AND status='open'",
            params![round_id, status, now_ms],
        )?;
        Ok((n == 1).then(|| status.to_string()))
    }

    /// Rounds stored without their work order (a stop between the two writes).
    pub fn without_ticket(&self) -> Result<Vec<Round>, RoundsError> {
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {COLS} FROM rounds WHERE ticket_id IS NULL ORDER BY id"
        ))?;
        let rows = st
            .query_map([], round_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}
