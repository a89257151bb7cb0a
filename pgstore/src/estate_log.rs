//! The shared log of run-time estate changes in cluster mode: every node appends the
//! changes the API made to its own registry and replays the others' in id order
//! (steward-cluster's `EstateSync`; the changes are steward-estate's `Change` as JSON).
//!
//! Appends are serialised by a table lock held to their commit, so ids become visible in
//! increasing order: a reader that has seen id N never misses a smaller id committed
//! later (with concurrent appenders a sequence alone does not promise that).

use crate::conn::{lost, off_runtime};
use crate::PgStoreError;
use parking_lot::Mutex;
use postgres::{Client, NoTls};

type E = PgStoreError;

/// Serialises schema creation between processes (`CREATE TABLE IF NOT EXISTS` alone
/// races); not the ticket schema's key, so either may be created first.
const SCHEMA_LOCK: i64 = 0x5374_6577_6172_6402;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS estate_changes (
    id BIGSERIAL PRIMARY KEY,
    origin TEXT NOT NULL,
    change JSONB NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
";

/// The `estate_changes` table, over a connection of its own (reconnected when lost).
/// Safe to share between threads; calls block, and may be made from an async runtime's
/// thread (they then run on a thread of their own).
pub struct PgEstateLog {
    url: String,
    client: Mutex<Option<Client>>,
}

impl std::fmt::Debug for PgEstateLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgEstateLog").finish_non_exhaustive()
    }
}

impl PgEstateLog {
    /// Connect and create the table if it is absent. `url` as for
    /// [`PgTicketStore::connect`](crate::PgTicketStore::connect).
    pub fn connect(url: &str) -> Result<PgEstateLog, PgStoreError> {
        let client = off_runtime(|| {
            let mut c = Client::connect(url, NoTls).map_err(E::Connect)?;
            let ddl =
                format!("BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;");
            c.batch_execute(&ddl)?;
            Ok::<_, E>(c)
        })?;
        Ok(PgEstateLog {
            url: url.to_string(),
            client: Mutex::new(Some(client)),
        })
    }

    /// Append `changes` in their order, in one transaction; returns the id of the last
    /// (`None` when there were none).
    pub fn append(
        &self,
        origin: &str,
        changes: &[serde_json::Value],
    ) -> Result<Option<i64>, PgStoreError> {
        if changes.is_empty() {
            return Ok(None);
        }
        let texts: Vec<String> = changes.iter().map(|c| c.to_string()).collect();
        self.run(|c| {
            let mut tx = c.transaction()?;
            tx.batch_execute("LOCK TABLE estate_changes IN EXCLUSIVE MODE")?;
            let stmt = tx.prepare(
                "INSERT INTO estate_changes(origin, change) VALUES($1, $2::text::jsonb) RETURNING id",
            )?;
            let mut last = None;
            for t in &texts {
                last = Some(tx.query_one(&stmt, &[&origin, t])?.get::<_, i64>(0));
            }
            tx.commit()?;
            Ok(last)
        })
    }

    /// Up to `limit` changes with an id above `id`, in id order: (id, origin, change).
    pub fn after(
        &self,
        id: i64,
        limit: usize,
    ) -> Result<Vec<(i64, String, serde_json::Value)>, PgStoreError> {
        let limit = limit.min(i64::MAX as usize) as i64;
        let rows = self.run(|c| {
            Ok(c.query(
                "SELECT id, origin, change::text FROM estate_changes
                 WHERE id > $1 ORDER BY id LIMIT $2",
                &[&id, &limit],
            )?)
        })?;
        rows.into_iter()
            .map(|r| {
                let text: String = r.get(2);
                let change = serde_json::from_str(&text).map_err(|e| {
                    PgStoreError::corrupt(format!("estate change {}: {e}", r.get::<_, i64>(0)))
                })?;
                Ok((r.get(0), r.get(1), change))
            })
            .collect()
    }

    /// The highest id in the log (0 when empty).
    pub fn last_id(&self) -> Result<i64, PgStoreError> {
        self.run(|c| {
            Ok(
                c.query_one("SELECT COALESCE(MAX(id), 0) FROM estate_changes", &[])?
                    .get(0),
            )
        })
    }

    /// Run `f` on the connection, opening one when there is none; a connection found
    /// lost is replaced and `f` run once more.
    fn run<T: Send>(&self, mut f: impl FnMut(&mut Client) -> Result<T, E> + Send) -> Result<T, E> {
        let mut guard = self.client.lock();
        let slot: &mut Option<Client> = &mut guard;
        off_runtime(|| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                if slot.as_ref().is_none_or(Client::is_closed) {
                    *slot = None;
                    *slot = Some(Client::connect(&self.url, NoTls).map_err(E::Connect)?);
                }
                let Some(c) = slot.as_mut() else {
                    continue;
                };
                match f(c) {
                    Ok(v) => return Ok(v),
                    Err(e) => {
                        if lost(&e, None) || c.is_closed() {
                            *slot = None;
                            if attempt < 2 {
                                continue;
                            }
                        }
                        return Err(e);
                    }
                }
            }
        })
    }
}

impl Drop for PgEstateLog {
    fn drop(&mut self) {
        // Dropping a client drops its runtime, which tokio refuses on a runtime thread.
        let client = self.client.get_mut().take();
        off_runtime(move || drop(client));
    }
}
