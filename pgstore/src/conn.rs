//! The connection behind [`PgTicketStore`]: one client behind a mutex with its prepared
//! statements, each operation its own transaction (a savepoint inside a batch), and a
//! transparent reconnect when the server or the network dropped the connection.

use crate::PgStoreError;
use parking_lot::Mutex;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

type E = PgStoreError;
pub(crate) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Session settings of the store's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The server ends a session idle this long inside a transaction, releasing its
    /// locks: a worker frozen mid-batch (SIGSTOP, a long GC-like stall) cannot hold the
    /// rows of a partition that moved to another worker for longer than this.
    pub idle_in_transaction_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            idle_in_transaction_timeout: Duration::from_secs(10),
        }
    }
}

/// One connection and its prepared statements (ticket operations run the same few
/// statements thousands of times in a storm; preparing each costs a round trip).
pub(crate) struct Db {
    client: Client,
    cache: HashMap<String, Statement>,
}

impl Db {
    pub(crate) fn connect(url: &str, opts: &Options) -> Result<Db, E> {
        let mut client = Client::connect(url, NoTls).map_err(E::Connect)?;
        let ms = opts
            .idle_in_transaction_timeout
            .as_millis()
            .clamp(1, i32::MAX as u128);
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = {ms}; SET TIME ZONE 'UTC'"
            ))
            .map_err(E::Connect)?;
        Ok(Db {
            client,
            cache: HashMap::new(),
        })
    }

    /// Create the tables absent, under a lock so processes connecting at once do not race.
    pub(crate) fn create_schema(&mut self) -> Result<(), E> {
        use crate::ddl::{SCHEMA, SCHEMA_LOCK};
        self.simple(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;"
        ))
        .inspect_err(|_| {
            let _ = self.simple("ROLLBACK");
        })
    }

    fn stmt(&mut self, sql: &str) -> Result<Statement, E> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(sql)?;
        self.cache.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    pub(crate) fn query(&mut self, sql: &str, p: Params) -> Result<Vec<Row>, E> {
        let s = self.stmt(sql)?;
        Ok(self.client.query(&s, p)?)
    }

    pub(crate) fn opt(&mut self, sql: &str, p: Params) -> Result<Option<Row>, E> {
        let s = self.stmt(sql)?;
        Ok(self.client.query_opt(&s, p)?)
    }

    pub(crate) fn one(&mut self, sql: &str, p: Params) -> Result<Row, E> {
        let s = self.stmt(sql)?;
        Ok(self.client.query_one(&s, p)?)
    }

    pub(crate) fn exec(&mut self, sql: &str, p: Params) -> Result<u64, E> {
        let s = self.stmt(sql)?;
        Ok(self.client.execute(&s, p)?)
    }

    /// A statement built at run time (filters): not worth caching.
    pub(crate) fn dynamic(&mut self, sql: &str, p: Params) -> Result<Vec<Row>, E> {
        Ok(self.client.query(sql, p)?)
    }

    /// Statements without parameters (transaction control, DDL).
    pub(crate) fn simple(&mut self, sql: &str) -> Result<(), E> {
        Ok(self.client.batch_execute(sql)?)
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
}

/// Whether `e` means the connection is gone (rather than a refused statement).
pub(crate) fn lost(e: &E, db: Option<&Db>) -> bool {
    match e {
        E::Postgres(p) | E::Connect(p) => {
            let io = std::error::Error::source(p).is_some_and(|s| s.is::<std::io::Error>());
            // Connection exceptions, the server shutting the session down, the
            // idle-in-transaction timeout.
            let ended = p.code().is_some_and(|c| {
                let c = c.code();
                c.starts_with("08") || c.starts_with("57") || c == "25P03"
            });
            p.is_closed() || io || ended || db.is_some_and(Db::is_closed)
        }
        _ => db.is_some_and(Db::is_closed),
    }
}

pub(crate) struct State {
    pub(crate) db: Option<Db>,
    pub(crate) in_batch: bool,
    /// The batch's connection died: its writes are gone.
    pub(crate) broken: bool,
}

pub(crate) struct Shared {
    pub(crate) url: String,
    pub(crate) opts: Options,
    pub(crate) state: Mutex<State>,
    /// Partition claims commit on their own, whatever batch is open.
    pub(crate) claims: Mutex<Option<Db>>,
}

/// The [`TicketStore`](steward_tickets::TicketStore) on PostgreSQL; cheap to clone, safe
/// to share between threads, and several processes may use one database at once.
#[derive(Clone)]
pub struct PgTicketStore {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for PgTicketStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTicketStore").finish_non_exhaustive()
    }
}

impl PgTicketStore {
    /// Connect with the default [`Options`] and create the schema if it is absent.
    /// `url` is a libpq connection string (`host=.. port=.. user=.. dbname=..`) or URL.
    pub fn connect(url: &str) -> Result<PgTicketStore, PgStoreError> {
        Self::connect_with(url, Options::default())
    }

    pub fn connect_with(url: &str, opts: Options) -> Result<PgTicketStore, PgStoreError> {
        let db = off_runtime(|| {
            let mut db = Db::connect(url, &opts)?;
            db.create_schema()?;
            Ok::<_, E>(db)
        })?;
        Ok(PgTicketStore {
            shared: Arc::new(Shared {
                url: url.to_string(),
                opts,
                state: Mutex::new(State {
                    db: Some(db),
                    in_batch: false,
                    broken: false,
                }),
                claims: Mutex::new(None),
            }),
        })
    }

    /// Run `f` as one all-or-nothing operation: its own transaction, or a savepoint of
    /// the open batch. Outside a batch a lost connection is replaced and `f` run once
    /// more. `after` runs on the result after the commit, still under the lock.
    pub(crate) fn run<T: Send>(
        &self,
        write: bool,
        f: impl FnMut(&mut Db) -> Result<T, E> + Send,
        after: impl FnOnce(&T),
    ) -> Result<T, E> {
        let mut guard = self.shared.state.lock();
        let st: &mut State = &mut guard;
        let v = off_runtime(|| {
            if st.in_batch {
                in_batch(st, write, f)
            } else {
                self.own_transaction(st, write, f)
            }
        })?;
        after(&v);
        Ok(v)
    }

    fn own_transaction<T>(
        &self,
        st: &mut State,
        write: bool,
        mut f: impl FnMut(&mut Db) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let db = self.connected(&mut st.db)?;
            let r = if write {
                db.simple("BEGIN")
                    .and_then(|_| f(db))
                    .and_then(|v| db.simple("COMMIT").map(|_| v))
            } else {
                f(db)
            };
            let e = match r {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            if lost(&e, Some(db)) {
                st.db = None;
                if attempt < 2 {
                    tracing::warn!(error = %e, "PostgreSQL connection lost; retrying on a new one");
                    continue;
                }
                return Err(e);
            }
            if write {
                if let Err(r) = db.simple("ROLLBACK") {
                    tracing::warn!(error = %r, "rollback failed; dropping the connection");
                    st.db = None;
                }
            }
            return Err(e);
        }
    }

    /// The connection in `slot`, opened anew when there is none or it was closed.
    pub(crate) fn connected<'a>(&self, slot: &'a mut Option<Db>) -> Result<&'a mut Db, E> {
        if slot.as_ref().is_none_or(Db::is_closed) {
            *slot = None;
            *slot = Some(Db::connect(&self.shared.url, &self.shared.opts)?);
        }
        slot.as_mut().ok_or(E::BatchLost)
    }

    pub(crate) fn begin(&self) -> Result<(), E> {
        let mut guard = self.shared.state.lock();
        let st: &mut State = &mut guard;
        if st.in_batch {
            return Ok(());
        }
        off_runtime(|| {
            let mut attempt = 0;
            loop {
                attempt += 1;
                let db = self.connected(&mut st.db)?;
                match db.simple("BEGIN") {
                    Ok(()) => {
                        st.in_batch = true;
                        st.broken = false;
                        return Ok(());
                    }
                    Err(e) if attempt < 2 && lost(&e, Some(db)) => st.db = None,
                    Err(e) => return Err(e),
                }
            }
        })
    }

    pub(crate) fn commit(&self) -> Result<(), E> {
        let mut guard = self.shared.state.lock();
        let st: &mut State = &mut guard;
        if !st.in_batch {
            return Ok(());
        }
        st.in_batch = false;
        if std::mem::take(&mut st.broken) {
            st.db = None;
            return Err(E::BatchLost);
        }
        let Some(db) = st.db.as_mut() else {
            return Err(E::BatchLost);
        };
        let r = off_runtime(|| db.simple("COMMIT"));
        if r.is_err() {
            st.db = None;
        }
        r
    }

    /// Discard the open batch, if any.
    pub fn rollback_batch(&self) -> Result<(), PgStoreError> {
        let mut guard = self.shared.state.lock();
        let st: &mut State = &mut guard;
        if !st.in_batch {
            return Ok(());
        }
        st.in_batch = false;
        if std::mem::take(&mut st.broken) {
            st.db = None;
            return Ok(());
        }
        let Some(db) = st.db.as_mut() else {
            return Ok(());
        };
        if let Err(e) = off_runtime(|| db.simple("ROLLBACK")) {
            st.db = None;
            // A connection that died took its transaction with it.
            if !lost(&e, None) {
                return Err(e);
            }
        }
        Ok(())
    }
}

/// Run `f` here, or on a thread of its own when this thread belongs to an async
/// runtime: the synchronous client drives a runtime of its own, which tokio refuses to
/// start (it panics) on a thread that already runs one. The API calls the store from
/// blocking tasks; this keeps a call that slipped onto a runtime thread from panicking.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping a client drops its runtime, which tokio also refuses on a runtime
        // thread (the last handle of the store may go with an async server's state).
        let dbs = (self.state.get_mut().db.take(), self.claims.get_mut().take());
        off_runtime(move || drop(dbs));
    }
}

/// One operation inside the open batch: a savepoint for writes, so a refused
/// operation leaves the rest of the batch standing.
fn in_batch<T>(
    st: &mut State,
    write: bool,
    mut f: impl FnMut(&mut Db) -> Result<T, E>,
) -> Result<T, E> {
    if st.broken {
        return Err(E::BatchLost);
    }
    let Some(db) = st.db.as_mut() else {
        st.broken = true;
        return Err(E::BatchLost);
    };
    let r = if write {
        db.simple("SAVEPOINT op")
            .and_then(|_| f(db))
            .and_then(|v| db.simple("RELEASE SAVEPOINT op").map(|_| v))
    } else {
        f(db)
    };
    let e = match r {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    let aborted = matches!(e, E::Postgres(_) | E::Connect(_));
    if lost(&e, Some(db)) {
        st.broken = true;
    } else if write {
        if db
            .simple("ROLLBACK TO SAVEPOINT op; RELEASE SAVEPOINT op")
            .is_err()
        {
            st.broken = true;
        }
    } else if aborted {
        // A failed read aborted the batch's transaction (no savepoint to return to).
        st.broken = true;
    }
    Err(e)
}
