//! The seam between the ticket domain and where tickets are kept. [`SqliteTicketStore`]
//! (one hub, one file) implements it today; a PostgreSQL store shared by several hubs
//! (DESIGN.md section 10) plugs in here, so nothing in the trait names a database type.
//!
//! [`SqliteTicketStore`]: crate::SqliteTicketStore

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
use crate::TicketError;

/// Tickets with their audit trail, SLA clocks, the durable ticket event log and the
/// rules' saved per-device state. Every operation is all-or-nothing on its own; shared as
/// `Arc<dyn TicketStore>` between the rules thread and the API.
pub trait TicketStore: Send + Sync {
    /// Start a batch: writes until [`commit_batch`](Self::commit_batch) may share one
    /// transaction, so a burst of ticket operations (a power cut opening thousands of
    /// offline tickets) costs one commit instead of one each. No-op if a batch is open.
    fn begin_batch(&self) -> Result<(), TicketError>;

    /// Commit the open batch, if any.
    fn commit_batch(&self) -> Result<(), TicketError>;

    /// Open a ticket, or count one more occurrence on the active one of the same device and
    /// rule (its detail then becomes the latest metric values).
    fn raise(&self, r: &Raise, policy: &SlaPolicy) -> Result<RaiseOutcome, TicketError>;

    /// Open a ticket for a resident's report, or add it to the active ticket of the same
    /// compound and category (one more occurrence and an audit record with its text,
    /// recorded under `actor`).
    fn report(
        &self,
        r: &ResidentReport,
        policy: &SlaPolicy,
        actor: &str,
    ) -> Result<RaiseOutcome, TicketError>;

    /// Record that the condition cleared; resolve or close when the rule says so.
    /// `None` when the device and rule have no active ticket.
    fn condition_cleared(&self, c: &Clear) -> Result<Option<ClearOutcome>, TicketError>;

    /// Move a ticket along its lifecycle at `now_ms`; illegal moves are refused and change
    /// nothing.
    fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Ticket, TicketError>;

    /// Add a record to a ticket's audit trail without moving it (a crew's photo, by its
    /// SHA-256). `NotFound` when there is no such ticket.
    fn annotate(
        &self,
        id: i64,
        actor: &str,
        action: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<(), TicketError>;

    fn ticket(&self, id: i64) -> Result<Ticket, TicketError>;

    /// Add a record to a ticket's audit trail that moves nothing (a notification sent, a
    /// delivery attempt); an unknown ticket is an error.
    fn add_audit(
        &self,
        id: i64,
        ts_ms: i64,
        actor: &str,
        action: &str,
        note: &str,
    ) -> Result<(), TicketError>;

    /// A ticket with its audit trail, oldest record first.
    fn get(&self, id: i64) -> Result<TicketDetail, TicketError>;

    /// The active ticket of a device and rule, if any.
    fn active_for(&self, device_id: &str, rule_id: &str) -> Result<Option<Ticket>, TicketError>;

    /// Tickets matching every given filter, newest first.
    fn list(&self, f: &TicketFilter) -> Result<Vec<Ticket>, TicketError>;

    /// Reminders and SLA breaches due at `now_ms`. A breach escalates one level and is
    /// written to the audit trail; reminders repeat until the ticket is acknowledged.
    fn sla_tick(&self, now_ms: i64, policy: &SlaPolicy) -> Result<Vec<SlaEvent>, TicketError>;

    /// Service rating of a station or a compound (whichever `scope` names) for a month
    /// `YYYY-MM` (UTC), by the formula in docs/rating.md.
    fn rating(&self, scope: &str, month: &str) -> Result<Rating, TicketError>;

    /// Append a ticket event to the durable log and hand its id to `publish` before any
    /// other event can be appended, so that the order in which events are published is
    /// the order of their ids: a stream resuming after id `n` from the log and then
    /// following live events sees every event once. The log keeps the newest
    /// [`EVENT_LOG_KEEP`](crate::EVENT_LOG_KEEP) events.
    fn append_event(
        &self,
        event: &TicketEvent,
        publish: &mut dyn FnMut(i64),
    ) -> Result<i64, TicketError>;

    /// The id of the newest logged event (0 when none).
    fn last_event_id(&self) -> Result<i64, TicketError>;

    /// Logged events with an id above `after_id`, oldest first, at most `limit`, each with
    /// its `event_id` set.
    fn events_after(&self, after_id: i64, limit: u32) -> Result<Vec<TicketEvent>, TicketError>;

    /// Save the rules' per-device state: (device id, opaque JSON) rows.
    fn save_rule_states(&self, rows: &[(String, String)], now_ms: i64) -> Result<(), TicketError>;

    /// Every saved (device id, state) row, by device id.
    fn load_rule_states(&self) -> Result<Vec<(String, String)>, TicketError>;

    /// Open a planned round's work order (kind `work_order`, acknowledge and resolve due
    /// at `w.resolve_due_ms`), or return the ticket already opened for the same
    /// `(device_id, rule_id)`, whatever its state.
    fn open_work_order(
        &self,
        w: &crate::WorkOrder,
        policy: &SlaPolicy,
    ) -> Result<RaiseOutcome, TicketError>;
    // --- The dispatcher's desk and resident tracking (issue 14) ---

    /// Open a ticket from a phone call, recording the caller apart from its text and the
    /// dispatcher (`actor`) in its audit trail; all-or-nothing.
    fn call_in(
        &self,
        c: &CallTicket,
        policy: &SlaPolicy,
        actor: &str,
    ) -> Result<RaiseOutcome, TicketError>;

    /// The caller of a ticket opened from a call, if it was.
    fn caller(&self, id: i64) -> Result<Option<Caller>, TicketError>;

    /// Move an active ticket to `station`: its SLA due times stay, the holding history
    /// and the audit trail get a record. Refused for a ticket no longer active or already
    /// at `station`.
    fn transfer(
        &self,
        id: i64,
        station: &str,
        reason: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<Ticket, TicketError>;

    /// Who held a ticket, oldest first; empty for a ticket never transferred (its
    /// station held it from opening).
    fn holdings(&self, id: i64) -> Result<Vec<Holding>, TicketError>;

    /// Merge ticket `id` into `into`: `id` is cancelled ("merged into #N"), its
    /// occurrences and report texts go to `into`'s audit trail and count there, residents
    /// following `id` follow `into`. Returns (source, target) after the merge.
    fn merge(
        &self,
        id: i64,
        into: i64,
        note: &str,
        actor: &str,
        now_ms: i64,
    ) -> Result<(Ticket, Ticket), TicketError>;

    /// Link two tickets (`related` or `duplicate`), noted in both audit trails.
    fn link(
        &self,
        id: i64,
        other: i64,
        relation: LinkRelation,
        actor: &str,
        now_ms: i64,
    ) -> Result<TicketLink, TicketError>;

    /// Links from or to a ticket, oldest first.
    fn links(&self, id: i64) -> Result<Vec<TicketLink>, TicketError>;

    /// Give a resident report's ticket its tracking code.
    fn add_tracking_code(
        &self,
        code: &str,
        ticket_id: i64,
        category: &str,
        now_ms: i64,
    ) -> Result<(), TicketError>;

    /// What a tracking code follows; `UnknownCode` when none.
    fn track(&self, code: &str) -> Result<Tracked, TicketError>;

    /// A resident's 1-5 stars, once per code, after the ticket is resolved or closed.
    fn rate_by_resident(
        &self,
        code: &str,
        stars: u8,
        comment: &str,
        now_ms: i64,
    ) -> Result<ResidentRating, TicketError>;
}
