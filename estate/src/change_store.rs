//! The registry's side of run-time changes: recording them in its outbox, replaying
//! other nodes' (the data and SQL helpers are in `changes`).

use crate::changes::*;
use crate::registry::Registry;
use crate::EstateError;
use rusqlite::{params, Connection};
use std::collections::HashSet;
use std::sync::atomic::Ordering;

impl Registry {
    /// From now on, record every run-time mutation as a [`Change`] in the outbox (see
    /// [`Registry::pending_changes`]), here and in every later opening of this database
    /// (a file's; e.g. the `steward tokens` command on a node's database). Changes
    /// recorded before a restart are still there.
    pub fn record_changes(&self) -> Result<(), EstateError> {
        self.conn.lock().execute_batch(OUTBOX)?;
        self.record_changes.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Put the change `make` describes in the outbox, when recording. Called by the
    /// mutations with the connection they hold, so that no other mutation and no applied
    /// change comes between a mutation and its record.
    pub(crate) fn record(
        &self,
        conn: &Connection,
        make: impl FnOnce() -> Result<Change, EstateError>,
    ) -> Result<(), EstateError> {
        if !self.record_changes.load(Ordering::SeqCst) {
            return Ok(());
        }
        let change = make()?;
        let json = serde_json::to_string(&change).map_err(corrupt)?;
        conn.execute(
            "INSERT INTO estate_outbox(key, change) VALUES(?1, ?2)",
            params![change.key(), json],
        )?;
        Ok(())
    }

    /// Up to `limit` recorded changes not yet acknowledged, oldest first, with their
    /// outbox sequence numbers. Empty when not recording.
    pub fn pending_changes(&self, limit: usize) -> Result<Vec<(i64, Change)>, EstateError> {
        if !self.record_changes.load(Ordering::SeqCst) {
            return Ok(Vec::new());
        }
        let conn = self.conn.lock();
        let mut st = conn.prepare("SELECT seq, change FROM estate_outbox ORDER BY seq LIMIT ?1")?;
        let rows = st
            .query_map([limit.min(i64::MAX as usize) as i64], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(seq, json)| Ok((seq, serde_json::from_str(&json).map_err(corrupt)?)))
            .collect()
    }

    /// Forget the recorded changes up to sequence number `seq` (they were published).
    pub fn ack_changes(&self, seq: i64) -> Result<(), EstateError> {
        if self.record_changes.load(Ordering::SeqCst) {
            self.conn
                .lock()
                .execute("DELETE FROM estate_outbox WHERE seq <= ?1", [seq])?;
        }
        Ok(())
    }

    /// Apply one change made elsewhere (not recorded). Idempotent.
    pub fn apply_change(&self, change: &Change) -> Result<(), EstateError> {
        apply_one(&self.conn.lock(), change)?;
        self.reload()?;
        self.reload_windows()
    }

    /// Apply changes from the shared log, in its order, without recording them. A change
    /// whose key has a local change still in the outbox is skipped: that one is newer and
    /// will be applied everywhere after it. A change this registry refuses is reported
    /// in [`Applied::failed`] and the others still applied; the snapshots are rebuilt once.
    pub fn apply_changes(&self, changes: &[Change]) -> Result<Applied, EstateError> {
        let mut out = Applied::default();
        if changes.is_empty() {
            return Ok(out);
        }
        {
            let conn = self.conn.lock();
            let pending: HashSet<String> = if self.record_changes.load(Ordering::SeqCst) {
                let mut st = conn.prepare("SELECT DISTINCT key FROM estate_outbox")?;
                let keys = st
                    .query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<_, _>>()?;
                keys
            } else {
                HashSet::new()
            };
            for (i, c) in changes.iter().enumerate() {
                if pending.contains(&c.key()) {
                    out.skipped += 1;
                    continue;
                }
                match apply_one(&conn, c) {
                    Ok(()) => out.applied += 1,
                    Err(e) => out.failed.push((i, e)),
                }
            }
        }
        self.reload()?;
        self.reload_windows()?;
        Ok(out)
    }
}
