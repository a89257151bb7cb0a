//! [`TicketStore`] for [`PgTicketStore`]: each method one transaction (a savepoint of
//! the open batch), running the SQL of its module.

use crate::conn::PgTicketStore;
use crate::lifecycle::{self, NewTicket};
use crate::{dispatch, log, read, schema};
use steward_tickets::{
    CallTicket, Caller, Clear, ClearOutcome, Holding, LinkRelation, Raise, RaiseOutcome, Rating,
    ResidentRating, ResidentReport, SlaEvent, SlaPolicy, Ticket, TicketDetail, TicketError,
    TicketEvent, TicketFilter, TicketLink, TicketState, TicketStore, Tracked, WorkOrder,
};

impl PgTicketStore {
    fn write<T: Send>(
        &self,
        f: impl FnMut(&mut crate::conn::Db) -> Result<T, crate::PgStoreError> + Send,
    ) -> Result<T, TicketError> {
        Ok(self.run(true, f, |_| {})?)
    }

    fn read<T: Send>(
        &self,
        f: impl FnMut(&mut crate::conn::Db) -> Result<T, crate::PgStoreError> + Send,
    ) -> Result<T, TicketError> {
        Ok(self.run(false, f, |_| {})?)
    }
}

impl TicketStore for PgTicketStore {
    /// Writes until [`commit_batch`](TicketStore::commit_batch) share one transaction;
    /// every operation inside stays all-or-nothing on its own (a savepoint).
    fn begin_batch(&self) -> Result<(), TicketError> {
        Ok(self.begin()?)
    }

    fn commit_batch(&self) -> Result<(), TicketError> {
        Ok(self.commit()?)
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
        self.write(|db| lifecycle::raise(db, &new, policy, None))
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
        self.write(|db| lifecycle::raise(db, &new, policy, Some(actor)))
    }

    fn condition_cleared(&self, c: &Clear) -> Result<Option<ClearOutcome>, TicketError> {
        self.write(|db| lifecycle::condition_cleared(db, c))
    }

    fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Ticket, TicketError> {
        self.write(|db| lifecycle::transition(db, id, to, actor, note, now_ms))
    }

    fn annotate(
        &self,
        id: i64,
        actor: &str,
        action: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<(), TicketError> {
        self.add_audit(id, now_ms, actor, action, note)
    }

    fn ticket(&self, id: i64) -> Result<Ticket, TicketError> {
        self.read(|db| Ok(schema::load(db, id)?.0))
    }

    fn add_audit(
        &self,
        id: i64,
        ts_ms: i64,
        actor: &str,
        action: &str,
        note: &str,
    ) -> Result<(), TicketError> {
        self.write(|db| {
            // Checked first so a record never points at no ticket.
            schema::load(db, id)?;
            schema::audit(db, id, ts_ms, actor, action, None, None, note)
        })
    }

    fn get(&self, id: i64) -> Result<TicketDetail, TicketError> {
        self.read(|db| read::get(db, id))
    }

    fn active_for(&self, device_id: &str, rule_id: &str) -> Result<Option<Ticket>, TicketError> {
        self.read(|db| read::active_for(db, device_id, rule_id))
    }

    fn list(&self, f: &TicketFilter) -> Result<Vec<Ticket>, TicketError> {
        self.read(|db| read::list(db, f))
    }

    fn sla_tick(&self, now_ms: i64, policy: &SlaPolicy) -> Result<Vec<SlaEvent>, TicketError> {
        self.write(|db| log::sla_tick(db, now_ms, policy))
    }

    fn rating(&self, scope: &str, month: &str) -> Result<Rating, TicketError> {
        self.read(|db| dispatch::rating(db, scope, month))
    }

    /// The id is handed to `publish` after the commit, before the connection is
    /// released, so this process publishes its ids in order. Across processes ids are
    /// taken at insert and become visible at commit, so a reader may briefly see id n+1
    /// before n of another node's transaction still in flight.
    fn append_event(
        &self,
        event: &TicketEvent,
        publish: &mut dyn FnMut(i64),
    ) -> Result<i64, TicketError> {
        Ok(self.run(true, |db| log::append_event(db, event), |id| publish(*id))?)
    }

    fn last_event_id(&self) -> Result<i64, TicketError> {
        self.read(log::last_event_id)
    }

    fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TicketEvent>, TicketError> {
        self.read(|db| log::events_after(db, after_id, limit))
    }

    fn save_rule_states(&self, rows: &[(String, String)], now_ms: i64) -> Result<(), TicketError> {
        if rows.is_empty() {
            return Ok(());
        }
        self.write(|db| log::save_rule_states(db, rows, now_ms))
    }

    fn load_rule_states(&self) -> Result<Vec<(String, String)>, TicketError> {
        self.read(log::load_rule_states)
    }

    fn open_work_order(
        &self,
        w: &WorkOrder,
        policy: &SlaPolicy,
    ) -> Result<RaiseOutcome, TicketError> {
        self.write(|db| lifecycle::open_work_order(db, w, policy))
    }

    fn call_in(
        &self,
        c: &CallTicket,
        policy: &SlaPolicy,
        actor: &str,
    ) -> Result<RaiseOutcome, TicketError> {
        self.write(|db| dispatch::call_in(db, c, policy, actor))
    }

    fn caller(&self, id: i64) -> Result<Option<Caller>, TicketError> {
        self.read(|db| dispatch::caller(db, id))
    }

    fn transfer(
        &self,
        id: i64,
        station: &str,
        reason: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<Ticket, TicketError> {
        self.write(|db| dispatch::transfer(db, id, station, reason, actor, now_ms))
    }

    fn holdings(&self, id: i64) -> Result<Vec<Holding>, TicketError> {
        self.read(|db| dispatch::holdings(db, id))
    }

    fn merge(
        &self,
        id: i64,
        into: i64,
        note: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<(Ticket, Ticket), TicketError> {
        self.write(|db| dispatch::merge(db, id, into, note, actor, now_ms))
    }

    fn link(
        &self,
        id: i64,
        other: i64,
        relation: LinkRelation,
        actor: &str,
        now_ms: i64,
    ) -> Result<TicketLink, TicketError> {
        self.write(|db| dispatch::link(db, id, other, relation, actor, now_ms))
    }

    fn links(&self, id: i64) -> Result<Vec<TicketLink>, TicketError> {
        self.read(|db| dispatch::links(db, id))
    }

    fn add_tracking_code(
        &self,
        code: &str,
        ticket_id: i64,
        category: &str,
        now_ms: i64,
    ) -> Result<(), TicketError> {
        self.write(|db| dispatch::add_tracking_code(db, code, ticket_id, category, now_ms))
    }

    fn track(&self, code: &str) -> Result<Tracked, TicketError> {
        self.read(|db| dispatch::track(db, code))
    }

    fn rate_by_resident(
        &self,
        code: &str,
        stars: u8,
        comment: &str,
        now_ms: i64,
    ) -> Result<ResidentRating, TicketError> {
        self.write(|db| dispatch::rate_by_resident(db, code, stars, comment, now_ms))
    }
}
