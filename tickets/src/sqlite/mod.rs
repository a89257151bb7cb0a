//! [`TicketStore`] in one SQLite file: one connection behind a mutex, each operation a
//! savepoint, batches one transaction. The modules hold the SQL by job; this one wires
//! them to the trait.

mod clock;
mod dispatch;
mod lifecycle;
mod log;
mod read;
mod schema;
mod work_order;

use crate::dispatch::{
    CallTicket, Caller, Holding, LinkRelation, ResidentRating, TicketLink, Tracked,
};
use crate::events::TicketEvent;
use crate::rating::Rating;
use crate::request::{Clear, Raise};
use crate::sla::{SlaEvent, SlaPolicy};
use crate::state::{
    ClearOutcome, RaiseOutcome, ResidentReport, Ticket, TicketDetail, TicketFilter, TicketState,
};
use crate::{TicketError, TicketStore};
use lifecycle::NewTicket;
use parking_lot::Mutex;
use rusqlite::Connection;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

impl From<rusqlite::Error> for TicketError {
    fn from(e: rusqlite::Error) -> Self {
        TicketError::Database(Box::new(e))
    }
}

/// SQLite-backed ticket store; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct SqliteTicketStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteTicketStore {
    pub fn open(path: &Path) -> Result<SqliteTicketStore, TicketError> {
        Self::init(Connection::open(path)?)
    }

    pub fn open_in_memory() -> Result<SqliteTicketStore, TicketError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteTicketStore, TicketError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Ticket operations run the same few statements thousands of times in a storm;
        // parsing them each time was a fifth of the rules thread's SQLite time.
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(schema::SCHEMA)?;
        schema::migrate(&conn)?;
        conn.execute_batch(schema::DESK_SCHEMA)?;
        Ok(SqliteTicketStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }
}

impl TicketStore for SqliteTicketStore {
    /// Every operation inside a batch stays all-or-nothing on its own (a savepoint);
    /// writes from other threads in the meantime join the batch.
    fn begin_batch(&self) -> Result<(), TicketError> {
        let conn = self.conn.lock();
        if conn.is_autocommit() {
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(())
    }

    fn commit_batch(&self) -> Result<(), TicketError> {
        let conn = self.conn.lock();
        if !conn.is_autocommit() {
            conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    fn raise(&self, r: &Raise, policy: &SlaPolicy) -> Result<RaiseOutcome, TicketError> {
        let new = NewTicket {
            device_id: &r.device_id,
            rule_id: &r.rule_id,
            kind: r.kind.as_str(),
            compound: &r.compound,
            building: &r.building,
            station: &r.station,
            priority: r.priority,
            title: &r.title,
            detail: &r.detail,
            ts_ms: r.ts_ms,
        };
        lifecycle::raise(&mut self.conn.lock(), &new, policy, None)
    }

    fn report(
        &self,
        r: &ResidentReport,
        policy: &SlaPolicy,
        actor: &str,
    ) -> Result<RaiseOutcome, TicketError> {
        let (device_id, rule_id) = (r.device_id(), r.rule_id());
        let new = NewTicket {
            device_id: &device_id,
            rule_id: &rule_id,
            kind: r.kind(),
            compound: &r.compound,
            building: r.building.as_deref().unwrap_or(""),
            station: &r.station,
            priority: r.priority,
            title: &r.title,
            detail: &r.detail,
            ts_ms: r.ts_ms,
        };
        lifecycle::raise(&mut self.conn.lock(), &new, policy, Some(actor))
    }

    fn condition_cleared(&self, c: &Clear) -> Result<Option<ClearOutcome>, TicketError> {
        lifecycle::condition_cleared(&mut self.conn.lock(), c)
    }

    fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Ticket, TicketError> {
        lifecycle::transition(&mut self.conn.lock(), id, to, actor, note, now_ms)
    }

    fn annotate(
        &self,
        id: i64,
        actor: &str,
        action: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<(), TicketError> {
        let conn = self.conn.lock();
        read::ticket(&conn, id)?;
        schema::audit(&conn, id, now_ms, actor, action, None, None, note)
    }

    fn ticket(&self, id: i64) -> Result<Ticket, TicketError> {
        read::ticket(&self.conn.lock(), id)
    }

    fn add_audit(
        &self,
        id: i64,
        ts_ms: i64,
        actor: &str,
        action: &str,
        note: &str,
    ) -> Result<(), TicketError> {
        let conn = self.conn.lock();
        // Checked first so a record never points at no ticket.
        read::ticket(&conn, id)?;
        schema::audit(&conn, id, ts_ms, actor, action, None, None, note)
    }

    fn get(&self, id: i64) -> Result<TicketDetail, TicketError> {
        read::get(&self.conn.lock(), id)
    }

    fn active_for(&self, device_id: &str, rule_id: &str) -> Result<Option<Ticket>, TicketError> {
        read::active_for(&self.conn.lock(), device_id, rule_id)
    }

    fn list(&self, f: &TicketFilter) -> Result<Vec<Ticket>, TicketError> {
        read::list(&self.conn.lock(), f)
    }

    fn sla_tick(&self, now_ms: i64, policy: &SlaPolicy) -> Result<Vec<SlaEvent>, TicketError> {
        clock::sla_tick(&mut self.conn.lock(), now_ms, policy)
    }

    fn rating(&self, scope: &str, month: &str) -> Result<Rating, TicketError> {
        read::rating(&self.conn.lock(), scope, month)
    }

    fn append_event(
        &self,
        event: &TicketEvent,
        publish: &mut dyn FnMut(i64),
    ) -> Result<i64, TicketError> {
        log::append_event(&self.conn.lock(), event, publish)
    }

    fn last_event_id(&self) -> Result<i64, TicketError> {
        log::last_event_id(&self.conn.lock())
    }

    fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TicketEvent>, TicketError> {
        log::events_after(&self.conn.lock(), after_id, limit)
    }

    fn save_rule_states(&self, rows: &[(String, String)], now_ms: i64) -> Result<(), TicketError> {
        log::save_rule_states(&mut self.conn.lock(), rows, now_ms)
    }

    fn load_rule_states(&self) -> Result<Vec<(String, String)>, TicketError> {
        log::load_rule_states(&self.conn.lock())
    }

    fn open_work_order(
        &self,
        w: &crate::WorkOrder,
        policy: &SlaPolicy,
    ) -> Result<RaiseOutcome, TicketError> {
        work_order::open_work_order(&mut self.conn.lock(), w, policy)
    }

    // --- The dispatcher's desk and resident tracking (issue 14) ---

    fn call_in(
        &self,
        c: &CallTicket,
        policy: &SlaPolicy,
        actor: &str,
    ) -> Result<RaiseOutcome, TicketError> {
        dispatch::call_in(&mut self.conn.lock(), c, policy, actor)
    }

    fn caller(&self, id: i64) -> Result<Option<Caller>, TicketError> {
        dispatch::caller(&self.conn.lock(), id)
    }

    fn transfer(
        &self,
        id: i64,
        station: &str,
        reason: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<Ticket, TicketError> {
        dispatch::transfer(&mut self.conn.lock(), id, station, reason, actor, now_ms)
    }

    fn holdings(&self, id: i64) -> Result<Vec<Holding>, TicketError> {
        dispatch::holdings(&self.conn.lock(), id)
    }

    fn merge(
        &self,
        id: i64,
        into: i64,
        note: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<(Ticket, Ticket), TicketError> {
        dispatch::merge(&mut self.conn.lock(), id, into, note, actor, now_ms)
    }

    fn link(
        &self,
        id: i64,
        other: i64,
        relation: LinkRelation,
        actor: &str,
        now_ms: i64,
    ) -> Result<TicketLink, TicketError> {
        dispatch::link(&mut self.conn.lock(), id, other, relation, actor, now_ms)
    }

    fn links(&self, id: i64) -> Result<Vec<TicketLink>, TicketError> {
        dispatch::links(&self.conn.lock(), id)
    }

    fn add_tracking_code(
        &self,
        code: &str,
        ticket_id: i64,
        category: &str,
        now_ms: i64,
    ) -> Result<(), TicketError> {
        dispatch::add_tracking_code(&self.conn.lock(), code, ticket_id, category, now_ms)
    }

    fn track(&self, code: &str) -> Result<Tracked, TicketError> {
        dispatch::track(&self.conn.lock(), code)
    }

    fn rate_by_resident(
        &self,
        code: &str,
        stars: u8,
        comment: &str,
        now_ms: i64,
    ) -> Result<ResidentRating, TicketError> {
        dispatch::rate_by_resident(&mut self.conn.lock(), code, stars, comment, now_ms)
    }
}
