//! Maintenance tickets in SQLite: lifecycle with an audit record per change, one active
//! ticket per (device, rule), SLA clocks with reminders and escalation, the monthly service
//! rating, and the per-device rule state that must survive a restart.
//!
//! The store is a narrow API over one connection so it can move to PostgreSQL when several
//! hubs share tickets (DESIGN.md section 10).

use crate::engine::{Clear, Raise};
use crate::pack::{OnClear, Priority};
use parking_lot::Mutex;
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const WEEK_MS: i64 = 7 * 86_400_000;

/// How many ticket events the durable log keeps for clients resuming a stream.
pub const EVENT_LOG_KEEP: i64 = 100_000;

/// Actor recorded for changes the rules make on their own.
pub const SYSTEM_ACTOR: &str = "rules";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TicketState {
    Open,
    Acknowledged,
    Dispatched,
    OnSite,
    Resolved,
    Closed,
    OnHold,
    Cancelled,
}

impl TicketState {
    pub const ALL: [TicketState; 8] = [
        TicketState::Open,
        TicketState::Acknowledged,
        TicketState::Dispatched,
        TicketState::OnSite,
        TicketState::Resolved,
        TicketState::Closed,
        TicketState::OnHold,
        TicketState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TicketState::Open => "open",
            TicketState::Acknowledged => "acknowledged",
            TicketState::Dispatched => "dispatched",
            TicketState::OnSite => "on_site",
            TicketState::Resolved => "resolved",
            TicketState::Closed => "closed",
            TicketState::OnHold => "on_hold",
            TicketState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<TicketState> {
        TicketState::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// Still needs work: at most one such ticket per (device, rule).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TicketState::Open
                | TicketState::Acknowledged
                | TicketState::Dispatched
                | TicketState::OnSite
                | TicketState::OnHold
        )
    }

    /// The lifecycle of DESIGN.md section 6. `open -> resolved` is allowed for conditions
    /// that clear themselves (offline -> online) and fixes made remotely.
    pub fn can_go_to(self, to: TicketState) -> bool {
        use TicketState::*;
        matches!(
            (self, to),
            (Open, Acknowledged | OnHold | Cancelled | Resolved)
                | (
                    Acknowledged,
                    Dispatched | OnSite | OnHold | Cancelled | Resolved
                )
                | (Dispatched, OnSite | OnHold | Cancelled | Resolved)
                | (OnSite, Resolved | OnHold)
                | (
                    OnHold,
                    Acknowledged | Dispatched | OnSite | Cancelled | Resolved
                )
                | (Resolved, Closed)
        )
    }
}

impl std::fmt::Display for TicketState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
    #[error("ticket {0} not found")]
    NotFound(i64),
    #[error("ticket {id}: illegal transition from {from} to {to}")]
    IllegalTransition {
        id: i64,
        from: TicketState,
        to: TicketState,
    },
    #[error("ticket {id}: actor must not be empty")]
    NoActor { id: i64 },
    #[error("invalid month `{0}` (expected YYYY-MM)")]
    BadMonth(String),
    #[error("ticket database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("ticket database holds an invalid value: {0}")]
    Corrupt(String),
}

/// SLA targets per priority (DESIGN.md section 6). `None` means no target for that stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    #[serde(with = "humantime_serde")]
    pub p1_ack: Duration,
    #[serde(with = "humantime_serde")]
    pub p1_on_site: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub p1_resolve: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub p2_ack: Duration,
    #[serde(with = "humantime_serde")]
    pub p2_on_site: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub p2_resolve: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub p3_ack: Duration,
    #[serde(with = "humantime_serde")]
    pub p3_on_site: Option<Duration>,
    #[serde(with = "humantime_serde")]
    pub p3_resolve: Option<Duration>,
}

impl Default for SlaConfig {
    fn default() -> Self {
        let m = |x: u64| Duration::from_secs(x * 60);
        SlaConfig {
            p1_ack: m(5),
            // TSG T5002 asks for 30 min in cities; a stricter local 15 min is a config change.
            p1_on_site: Some(m(30)),
            p1_resolve: None,
            p2_ack: m(30),
            p2_on_site: None,
            p2_resolve: Some(m(4 * 60)),
            p3_ack: m(4 * 60),
            p3_on_site: None,
            p3_resolve: Some(m(5 * 24 * 60)),
        }
    }
}

/// Targets of one priority, in ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Targets {
    pub ack_ms: i64,
    pub on_site_ms: Option<i64>,
    pub resolve_ms: Option<i64>,
}

fn ms(d: Duration) -> i64 {
    d.as_millis().min(i64::MAX as u128) as i64
}

impl SlaConfig {
    pub fn targets(&self, p: Priority) -> Targets {
        let (a, o, r) = match p {
            Priority::P1 => (self.p1_ack, self.p1_on_site, self.p1_resolve),
            Priority::P2 => (self.p2_ack, self.p2_on_site, self.p2_resolve),
            Priority::P3 => (self.p3_ack, self.p3_on_site, self.p3_resolve),
        };
        Targets {
            ack_ms: ms(a),
            on_site_ms: o.map(ms),
            resolve_ms: r.map(ms),
        }
    }

    /// Problems, each naming its key under `prefix` (e.g. `rules.sla`).
    pub fn validate(&self, prefix: &str) -> Vec<String> {
        let mut e = Vec::new();
        for p in Priority::ALL {
            let t = self.targets(p);
            let n = p.as_str().to_ascii_lowercase();
            if t.ack_ms <= 0 {
                e.push(format!("{prefix}.{n}_ack: must be longer than zero"));
            }
            for (stage, v) in [("on_site", t.on_site_ms), ("resolve", t.resolve_ms)] {
                if let Some(v) = v {
                    if v < t.ack_ms {
                        e.push(format!(
                            "{prefix}.{n}_{stage}: must not be shorter than {prefix}.{n}_ack"
                        ));
                    }
                }
            }
            if let (Some(o), Some(r)) = (t.on_site_ms, t.resolve_ms) {
                if r < o {
                    e.push(format!(
                        "{prefix}.{n}_resolve: must not be shorter than {prefix}.{n}_on_site"
                    ));
                }
            }
        }
        e
    }
}

/// Everything the SLA clock needs.
#[derive(Debug, Clone, PartialEq)]
pub struct SlaPolicy {
    pub sla: SlaConfig,
    /// Reminders repeat this often until the ticket is acknowledged.
    pub reminder_interval_ms: i64,
    /// Escalation levels by name; level 1 is the first entry (the responsible station).
    pub levels: Vec<String>,
}

impl Default for SlaPolicy {
    fn default() -> Self {
        SlaPolicy {
            sla: SlaConfig::default(),
            reminder_interval_ms: 5 * 60_000,
            levels: vec![
                "station".into(),
                "street_platform".into(),
                "district".into(),
            ],
        }
    }
}

impl SlaPolicy {
    pub fn level_name(&self, level: u32) -> String {
        self.levels
            .get(level.saturating_sub(1) as usize)
            .cloned()
            .unwrap_or_else(|| format!("level_{level}"))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ticket {
    pub id: i64,
    pub device_id: String,
    pub rule_id: String,
    pub kind: String,
    pub compound: String,
    pub building: String,
    /// Responsible station the ticket is routed to.
    pub station: String,
    pub priority: Priority,
    pub title: String,
    pub detail: String,
    pub state: TicketState,
    pub opened_ms: i64,
    pub last_seen_ms: i64,
    pub occurrences: i64,
    /// Whether the rule's condition still holds.
    pub condition_active: bool,
    pub cleared_ms: Option<i64>,
    pub acknowledged_ms: Option<i64>,
    pub dispatched_ms: Option<i64>,
    pub on_site_ms: Option<i64>,
    pub resolved_ms: Option<i64>,
    pub closed_ms: Option<i64>,
    pub cancelled_ms: Option<i64>,
    pub ack_due_ms: i64,
    pub on_site_due_ms: Option<i64>,
    pub resolve_due_ms: Option<i64>,
    pub ack_breached: bool,
    pub on_site_breached: bool,
    pub resolve_breached: bool,
    /// 1 = the responsible station; each SLA breach moves one level up.
    pub escalation_level: u32,
    pub reminders: i64,
    /// Previous ticket of the same device and rule resolved within 7 days before this one.
    pub repeat_of: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub ticket_id: i64,
    pub ts_ms: i64,
    pub actor: String,
    /// raised, transition, condition_cleared, sla_breach.
    pub action: String,
    pub from_state: Option<TicketState>,
    pub to_state: Option<TicketState>,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TicketDetail {
    pub ticket: Ticket,
    pub audit: Vec<AuditRecord>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RaiseOutcome {
    pub ticket: Ticket,
    /// False when an active ticket was found and its occurrence count raised.
    pub created: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClearOutcome {
    pub ticket: Ticket,
    /// Set when the rule's `on_clear` moved the ticket on.
    pub new_state: Option<TicketState>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaStage {
    Ack,
    OnSite,
    Resolve,
}

impl SlaStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SlaStage::Ack => "ack",
            SlaStage::OnSite => "on_site",
            SlaStage::Resolve => "resolve",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SlaEvent {
    Reminder {
        ticket: Ticket,
        ts_ms: i64,
    },
    Breach {
        ticket: Ticket,
        stage: SlaStage,
        /// Level escalated to, and its name.
        level: u32,
        audience: String,
        ts_ms: i64,
    },
}

/// Filters of [`TicketStore::list`]; every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketFilter {
    pub station: Option<String>,
    pub compound: Option<String>,
    pub device_id: Option<String>,
    pub rule_id: Option<String>,
    pub priority: Option<Priority>,
    pub state: Option<TicketState>,
    /// Any of these priorities (with `priority`, both must hold).
    pub priorities: Vec<Priority>,
    /// Any of these states (with `state`, both must hold).
    pub states: Vec<TicketState>,
    /// Only tickets that still need work.
    pub active_only: bool,
    /// Opened at or after, ms.
    pub from_ms: Option<i64>,
    /// Opened before, ms.
    pub to_ms: Option<i64>,
    /// Newest first; at most this many (default 500).
    pub limit: Option<u32>,
    /// Skip this many of the matching tickets first (paging).
    pub offset: Option<u32>,
    /// Restrict to what a caller may see: when set, a ticket must be routed to one of
    /// `stations` or belong to one of `compounds`. Empty lists then match nothing.
    pub within: Option<TicketScope>,
}

/// Part of the estate a ticket list is restricted to (see [`TicketFilter::within`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketScope {
    pub stations: Vec<String>,
    pub compounds: Vec<String>,
}

/// A fault reported by a resident (not by a device): opens a ticket for the compound's
/// station. Repeated reports of the same category in the same compound while a ticket is
/// active add an occurrence and an audit record to that ticket.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidentReport {
    pub compound: String,
    /// Station responsible for the compound, from the estate.
    pub station: String,
    /// One of a fixed list the API validates, e.g. `lift`.
    pub category: String,
    pub priority: Priority,
    pub title: String,
    /// Description, location and contact as the resident gave them.
    pub detail: String,
    pub ts_ms: i64,
}

impl ResidentReport {
    /// Pseudo device id of a compound's resident reports (no device is involved).
    pub fn device_id(&self) -> String {
        format!("resident:{}", self.compound)
    }

    pub fn rule_id(&self) -> String {
        format!("resident-{}", self.category)
    }
}

/// Ticket kind of resident reports.
pub const RESIDENT_KIND: &str = "resident";

/// Monthly service figures of a station or compound (docs/rating.md).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rating {
    pub scope: String,
    pub month: String,
    pub tickets: u32,
    pub cancelled: u32,
    /// Share acknowledged within SLA among tickets whose ack verdict is known.
    pub ack_within_sla: Option<f64>,
    pub on_site_within_sla: Option<f64>,
    pub resolved_within_sla: Option<f64>,
    pub mean_ack_min: Option<f64>,
    pub mean_resolve_min: Option<f64>,
    /// Tickets that repeat a failure resolved within the 7 days before.
    pub repeat_failures: u32,
    pub repeat_rate: Option<f64>,
    /// 0-100, see docs/rating.md; `None` when there is nothing to rate.
    pub score: Option<f64>,
    pub stars: Option<u8>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tickets (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    device_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    compound TEXT NOT NULL,
    building TEXT NOT NULL,
    station TEXT NOT NULL,
    priority TEXT NOT NULL,
    title TEXT NOT NULL,
    detail TEXT NOT NULL,
    state TEXT NOT NULL,
    active INTEGER NOT NULL,
    opened_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    occurrences INTEGER NOT NULL,
    condition_active INTEGER NOT NULL,
    cleared_ms INTEGER,
    acknowledged_ms INTEGER,
    dispatched_ms INTEGER,
    on_site_ms INTEGER,
    resolved_ms INTEGER,
    closed_ms INTEGER,
    cancelled_ms INTEGER,
    ack_due_ms INTEGER NOT NULL,
    on_site_due_ms INTEGER,
    resolve_due_ms INTEGER,
    ack_breached INTEGER NOT NULL DEFAULT 0,
    on_site_breached INTEGER NOT NULL DEFAULT 0,
    resolve_breached INTEGER NOT NULL DEFAULT 0,
    escalation_level INTEGER NOT NULL DEFAULT 1,
    reminders INTEGER NOT NULL DEFAULT 0,
    next_reminder_ms INTEGER,
    hold_since_ms INTEGER,
    next_check_ms INTEGER,
    repeat_of INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS tickets_one_active ON tickets(device_id, rule_id) WHERE active = 1;
CREATE INDEX IF NOT EXISTS tickets_check ON tickets(next_check_ms) WHERE active = 1;
CREATE INDEX IF NOT EXISTS tickets_station ON tickets(station, opened_ms);
CREATE INDEX IF NOT EXISTS tickets_compound ON tickets(compound, opened_ms);
CREATE INDEX IF NOT EXISTS tickets_device_rule ON tickets(device_id, rule_id, resolved_ms);
CREATE TABLE IF NOT EXISTS ticket_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id INTEGER NOT NULL REFERENCES tickets(id),
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ticket_audit_ticket ON ticket_audit(ticket_id, id);
CREATE TABLE IF NOT EXISTS ticket_event_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    event TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rule_state (
    device_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    saved_ms INTEGER NOT NULL
);
";

const COLS: &str = "id, device_id, rule_id, kind, compound, building, station, priority, title, \
    detail, state, opened_ms, last_seen_ms, occurrences, condition_active, cleared_ms, \
    acknowledged_ms, dispatched_ms, on_site_ms, resolved_ms, closed_ms, cancelled_ms, \
    ack_due_ms, on_site_due_ms, resolve_due_ms, ack_breached, on_site_breached, \
    resolve_breached, escalation_level, reminders, repeat_of, next_reminder_ms, hold_since_ms";

/// What opening a ticket needs, whatever raised it.
struct NewTicket<'a> {
    device_id: &'a str,
    rule_id: &'a str,
    kind: &'a str,
    compound: &'a str,
    building: &'a str,
    station: &'a str,
    priority: Priority,
    title: &'a str,
    detail: &'a str,
    ts_ms: i64,
}

/// Internal columns the SLA clock needs besides the public ticket.
struct Clocks {
    next_reminder_ms: Option<i64>,
    hold_since_ms: Option<i64>,
}

fn from_row(r: &Row) -> rusqlite::Result<(Ticket, Clocks)> {
    let prio: String = r.get(7)?;
    let state: String = r.get(10)?;
    let bad = |what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(TicketError::Corrupt(what)),
        )
    };
    let t = Ticket {
        id: r.get(0)?,
        device_id: r.get(1)?,
        rule_id: r.get(2)?,
        kind: r.get(3)?,
        compound: r.get(4)?,
        building: r.get(5)?,
        station: r.get(6)?,
        priority: Priority::parse(&prio).ok_or_else(|| bad(format!("priority `{prio}`")))?,
        title: r.get(8)?,
        detail: r.get(9)?,
        state: TicketState::parse(&state).ok_or_else(|| bad(format!("state `{state}`")))?,
        opened_ms: r.get(11)?,
        last_seen_ms: r.get(12)?,
        occurrences: r.get(13)?,
        condition_active: r.get(14)?,
        cleared_ms: r.get(15)?,
        acknowledged_ms: r.get(16)?,
        dispatched_ms: r.get(17)?,
        on_site_ms: r.get(18)?,
        resolved_ms: r.get(19)?,
        closed_ms: r.get(20)?,
        cancelled_ms: r.get(21)?,
        ack_due_ms: r.get(22)?,
        on_site_due_ms: r.get(23)?,
        resolve_due_ms: r.get(24)?,
        ack_breached: r.get(25)?,
        on_site_breached: r.get(26)?,
        resolve_breached: r.get(27)?,
        escalation_level: r.get(28)?,
        reminders: r.get(29)?,
        repeat_of: r.get(30)?,
    };
    Ok((
        t,
        Clocks {
            next_reminder_ms: r.get(31)?,
            hold_since_ms: r.get(32)?,
        },
    ))
}

/// When the SLA clock next needs to look at a ticket.
fn next_check(t: &Ticket, c: &Clocks) -> Option<i64> {
    if !t.state.is_active() || t.state == TicketState::OnHold {
        return None;
    }
    let mut next: Option<i64> = None;
    let mut consider = |x: Option<i64>| {
        if let Some(x) = x {
            next = Some(next.map_or(x, |n| n.min(x)));
        }
    };
    if t.acknowledged_ms.is_none() {
        consider(c.next_reminder_ms);
        if !t.ack_breached {
            consider(Some(t.ack_due_ms));
        }
    }
    if t.on_site_ms.is_none() && !t.on_site_breached {
        consider(t.on_site_due_ms);
    }
    if t.resolved_ms.is_none() && !t.resolve_breached {
        consider(t.resolve_due_ms);
    }
    next
}

/// SQLite-backed ticket store; cheap to clone, safe to share between threads.
#[derive(Clone)]
pub struct TicketStore {
    conn: Arc<Mutex<Connection>>,
}

impl TicketStore {
    pub fn open(path: &Path) -> Result<TicketStore, TicketError> {
        Self::init(Connection::open(path)?)
    }

    pub fn open_in_memory() -> Result<TicketStore, TicketError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<TicketStore, TicketError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        // Ticket operations run the same few statements thousands of times in a storm;
        // parsing them each time was a fifth of the rules thread's SQLite time.
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA)?;
        Ok(TicketStore {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Start a batch: the store's writes until [`commit_batch`](Self::commit_batch) share
    /// one SQLite transaction, so a burst of ticket operations (a power cut opening
    /// thousands of offline tickets) costs one commit instead of one each. Every operation
    /// inside stays all-or-nothing on its own (a savepoint); writes from other threads in
    /// the meantime join the batch. No-op if a batch is already open.
    pub fn begin_batch(&self) -> Result<(), TicketError> {
        let conn = self.conn.lock();
        if conn.is_autocommit() {
            conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        Ok(())
    }

    /// Commit the open batch, if any.
    pub fn commit_batch(&self) -> Result<(), TicketError> {
        let conn = self.conn.lock();
        if !conn.is_autocommit() {
            conn.execute_batch("COMMIT")?;
        }
        Ok(())
    }

    /// Open a ticket, or count one more occurrence on the active one.
    pub fn raise(&self, r: &Raise, policy: &SlaPolicy) -> Result<RaiseOutcome, TicketError> {
        self.raise_new(
            &NewTicket {
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
            },
            policy,
            None,
        )
    }

    /// Open a ticket for a resident's report, or add it to the active ticket of the same
    /// compound and category (one more occurrence and an audit record with its text).
    pub fn report(
        &self,
        r: &ResidentReport,
        policy: &SlaPolicy,
        actor: &str,
    ) -> Result<RaiseOutcome, TicketError> {
        let (device_id, rule_id) = (r.device_id(), r.rule_id());
        self.raise_new(
            &NewTicket {
                device_id: &device_id,
                rule_id: &rule_id,
                kind: RESIDENT_KIND,
                compound: &r.compound,
                building: "",
                station: &r.station,
                priority: r.priority,
                title: &r.title,
                detail: &r.detail,
                ts_ms: r.ts_ms,
            },
            policy,
            Some(actor),
        )
    }

    /// `repeat_actor`: when set, a repeat keeps the ticket's detail and records the new
    /// one in the audit trail under this actor (each resident's words are kept); when not,
    /// a repeat replaces the detail with the latest metric values.
    fn raise_new(
        &self,
        r: &NewTicket,
        policy: &SlaPolicy,
        repeat_actor: Option<&str>,
    ) -> Result<RaiseOutcome, TicketError> {
        let mut conn = self.conn.lock();
        let tx = conn.savepoint()?;
        let existing: Option<i64> = tx
            .prepare_cached(
                "SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2 AND active=1",
            )?
            .query_row(params![r.device_id, r.rule_id], |row| row.get(0))
            .optional()?;
        let (id, created) = match existing {
            Some(id) => {
                match repeat_actor {
                    None => {
                        tx.prepare_cached(
                            "UPDATE tickets SET occurrences = occurrences + 1,
                                last_seen_ms = MAX(last_seen_ms, ?2), condition_active = 1,
                                detail = ?3
                             WHERE id = ?1",
                        )?
                        .execute(params![id, r.ts_ms, r.detail])?;
                    }
                    Some(actor) => {
                        tx.prepare_cached(
                            "UPDATE tickets SET occurrences = occurrences + 1,
                                last_seen_ms = MAX(last_seen_ms, ?2), condition_active = 1
                             WHERE id = ?1",
                        )?
                        .execute(params![id, r.ts_ms])?;
                        audit(&tx, id, r.ts_ms, actor, "reported", None, None, r.detail)?;
                    }
                }
                (id, false)
            }
            None => {
                let repeat_of: Option<i64> = tx
                    .prepare_cached(
                        "SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2
                           AND resolved_ms IS NOT NULL AND resolved_ms >= ?3 AND resolved_ms <= ?4
                         ORDER BY resolved_ms DESC LIMIT 1",
                    )?
                    .query_row(
                        params![r.device_id, r.rule_id, r.ts_ms - WEEK_MS, r.ts_ms],
                        |row| row.get(0),
                    )
                    .optional()?;
                let t = policy.sla.targets(r.priority);
                let ack_due = r.ts_ms + t.ack_ms;
                let next_reminder = r.ts_ms + policy.reminder_interval_ms.max(1_000);
                let mut next = ack_due.min(next_reminder);
                for d in [t.on_site_ms, t.resolve_ms].into_iter().flatten() {
                    next = next.min(r.ts_ms + d);
                }
                tx.prepare_cached("INSERT INTO tickets(device_id, rule_id, kind, compound, building, station,
                        priority, title, detail, state, active, opened_ms, last_seen_ms,
                        occurrences, condition_active, ack_due_ms, on_site_due_ms,
                        resolve_due_ms, next_reminder_ms, next_check_ms, repeat_of)
                     VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,'open',1,?10,?10,1,1,?11,?12,?13,?14,?15,?16)")?
            .execute(
                    params![
                        r.device_id,
                        r.rule_id,
                        r.kind,
                        r.compound,
                        r.building,
                        r.station,
                        r.priority.as_str(),
                        r.title,
                        r.detail,
                        r.ts_ms,
                        ack_due,
                        t.on_site_ms.map(|d| r.ts_ms + d),
                        t.resolve_ms.map(|d| r.ts_ms + d),
                        next_reminder,
                        next,
                        repeat_of,
                    ],
                )?;
                let id = tx.last_insert_rowid();
                audit(
                    &tx,
                    id,
                    r.ts_ms,
                    repeat_actor.unwrap_or(SYSTEM_ACTOR),
                    "raised",
                    None,
                    Some(TicketState::Open),
                    r.detail,
                )?;
                (id, true)
            }
        };
        let ticket = load(&tx, id)?.0;
        tx.commit()?;
        Ok(RaiseOutcome { ticket, created })
    }

    /// Record that the condition cleared; resolve or close when the rule says so.
    pub fn condition_cleared(&self, c: &Clear) -> Result<Option<ClearOutcome>, TicketError> {
        let id: Option<i64> = {
            let conn = self.conn.lock();
            let id = conn
                .prepare_cached(
                    "SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2 AND active=1",
                )?
                .query_row(params![c.device_id, c.rule_id], |row| row.get(0))
                .optional()?;
            id
        };
        let Some(id) = id else {
            return Ok(None);
        };
        {
            let mut conn = self.conn.lock();
            let tx = conn.savepoint()?;
            tx.prepare_cached(
                "UPDATE tickets SET condition_active = 0, cleared_ms = ?2 WHERE id = ?1",
            )?
            .execute(params![id, c.ts_ms])?;
            audit(
                &tx,
                id,
                c.ts_ms,
                SYSTEM_ACTOR,
                "condition_cleared",
                None,
                None,
                "condition no longer holds",
            )?;
            tx.commit()?;
        }
        let mut new_state = None;
        if matches!(c.on_clear, OnClear::Resolve | OnClear::Close) {
            self.transition(
                id,
                TicketState::Resolved,
                SYSTEM_ACTOR,
                "condition cleared",
                c.ts_ms,
            )?;
            new_state = Some(TicketState::Resolved);
            if c.on_clear == OnClear::Close {
                self.transition(
                    id,
                    TicketState::Closed,
                    SYSTEM_ACTOR,
                    "condition cleared",
                    c.ts_ms,
                )?;
                new_state = Some(TicketState::Closed);
            }
        }
        Ok(Some(ClearOutcome {
            ticket: self.ticket(id)?,
            new_state,
        }))
    }

    /// Move a ticket along its lifecycle; illegal moves are refused and change nothing.
    pub fn transition(
        &self,
        id: i64,
        to: TicketState,
        actor: &str,
        note: &str,
        now_ms: i64,
    ) -> Result<Ticket, TicketError> {
        if actor.trim().is_empty() {
            return Err(TicketError::NoActor { id });
        }
        let mut conn = self.conn.lock();
        let tx = conn.savepoint()?;
        let (mut t, mut c) = load(&tx, id)?;
        let from = t.state;
        if !from.can_go_to(to) {
            return Err(TicketError::IllegalTransition { id, from, to });
        }
        if from == TicketState::OnHold {
            // Time on hold (waiting for parts, access) does not count against the SLA.
            let held = (now_ms - c.hold_since_ms.unwrap_or(now_ms)).max(0);
            if t.acknowledged_ms.is_none() {
                t.ack_due_ms += held;
                c.next_reminder_ms = c.next_reminder_ms.map(|x| x + held);
            }
            if t.on_site_ms.is_none() {
                t.on_site_due_ms = t.on_site_due_ms.map(|x| x + held);
            }
            if t.resolved_ms.is_none() {
                t.resolve_due_ms = t.resolve_due_ms.map(|x| x + held);
            }
            c.hold_since_ms = None;
        }
        let set = |slot: &mut Option<i64>| {
            if slot.is_none() {
                *slot = Some(now_ms);
            }
        };
        match to {
            TicketState::Acknowledged => set(&mut t.acknowledged_ms),
            TicketState::Dispatched => set(&mut t.dispatched_ms),
            TicketState::OnSite => set(&mut t.on_site_ms),
            TicketState::Resolved => set(&mut t.resolved_ms),
            TicketState::Closed => set(&mut t.closed_ms),
            TicketState::Cancelled => set(&mut t.cancelled_ms),
            TicketState::OnHold => c.hold_since_ms = Some(now_ms),
            TicketState::Open => {}
        }
        // Dispatching or arriving implies the alert was seen.
        if matches!(to, TicketState::Dispatched | TicketState::OnSite) {
            set(&mut t.acknowledged_ms);
        }
        t.state = to;
        tx.prepare_cached(
            "UPDATE tickets SET state=?2, active=?3, acknowledged_ms=?4, dispatched_ms=?5,
                on_site_ms=?6, resolved_ms=?7, closed_ms=?8, cancelled_ms=?9, ack_due_ms=?10,
                on_site_due_ms=?11, resolve_due_ms=?12, next_reminder_ms=?13,
                hold_since_ms=?14, next_check_ms=?15
             WHERE id=?1",
        )?
        .execute(params![
            id,
            to.as_str(),
            to.is_active(),
            t.acknowledged_ms,
            t.dispatched_ms,
            t.on_site_ms,
            t.resolved_ms,
            t.closed_ms,
            t.cancelled_ms,
            t.ack_due_ms,
            t.on_site_due_ms,
            t.resolve_due_ms,
            c.next_reminder_ms,
            c.hold_since_ms,
            next_check(&t, &c),
        ])?;
        audit(
            &tx,
            id,
            now_ms,
            actor,
            "transition",
            Some(from),
            Some(to),
            note,
        )?;
        tx.commit()?;
        Ok(t)
    }

    pub fn ticket(&self, id: i64) -> Result<Ticket, TicketError> {
        let conn = self.conn.lock();
        Ok(load(&conn, id)?.0)
    }

    /// A ticket with its audit trail, oldest record first.
    pub fn get(&self, id: i64) -> Result<TicketDetail, TicketError> {
        let conn = self.conn.lock();
        let ticket = load(&conn, id)?.0;
        let mut st = conn.prepare(
            "SELECT id, ticket_id, ts_ms, actor, action, from_state, to_state, note
             FROM ticket_audit WHERE ticket_id = ?1 ORDER BY id",
        )?;
        let audit = st
            .query_map([id], |r| {
                let from: Option<String> = r.get(5)?;
                let to: Option<String> = r.get(6)?;
                Ok(AuditRecord {
                    id: r.get(0)?,
                    ticket_id: r.get(1)?,
                    ts_ms: r.get(2)?,
                    actor: r.get(3)?,
                    action: r.get(4)?,
                    from_state: from.as_deref().and_then(TicketState::parse),
                    to_state: to.as_deref().and_then(TicketState::parse),
                    note: r.get(7)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TicketDetail { ticket, audit })
    }

    /// The active ticket of a device and rule, if any.
    pub fn active_for(
        &self,
        device_id: &str,
        rule_id: &str,
    ) -> Result<Option<Ticket>, TicketError> {
        let conn = self.conn.lock();
        let id: Option<i64> = conn
            .prepare_cached(
                "SELECT id FROM tickets WHERE device_id=?1 AND rule_id=?2 AND active=1",
            )?
            .query_row(params![device_id, rule_id], |r| r.get(0))
            .optional()?;
        id.map(|id| load(&conn, id).map(|x| x.0)).transpose()
    }

    /// Tickets matching every given filter, newest first.
    pub fn list(&self, f: &TicketFilter) -> Result<Vec<Ticket>, TicketError> {
        let mut sql = format!("SELECT {COLS} FROM tickets WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        let mut add = |cond: &str, v: rusqlite::types::Value| {
            args.push(v);
            sql.push_str(&format!(" AND {cond} ?{}", args.len()));
        };
        use rusqlite::types::Value as V;
        if let Some(s) = &f.station {
            add("station =", V::Text(s.clone()));
        }
        if let Some(s) = &f.compound {
            add("compound =", V::Text(s.clone()));
        }
        if let Some(s) = &f.device_id {
            add("device_id =", V::Text(s.clone()));
        }
        if let Some(s) = &f.rule_id {
            add("rule_id =", V::Text(s.clone()));
        }
        if let Some(p) = f.priority {
            add("priority =", V::Text(p.as_str().into()));
        }
        if let Some(s) = f.state {
            add("state =", V::Text(s.as_str().into()));
        }
        if f.active_only {
            add("active =", V::Integer(1));
        }
        if let Some(t) = f.from_ms {
            add("opened_ms >=", V::Integer(t));
        }
        if let Some(t) = f.to_ms {
            add("opened_ms <", V::Integer(t));
        }
        if !f.priorities.is_empty() {
            let c = any_of(
                "priority",
                f.priorities.iter().map(|p| p.as_str().to_string()),
                &mut args,
            );
            sql.push_str(&format!(" AND {c}"));
        }
        if !f.states.is_empty() {
            let c = any_of(
                "state",
                f.states.iter().map(|s| s.as_str().to_string()),
                &mut args,
            );
            sql.push_str(&format!(" AND {c}"));
        }
        if let Some(w) = &f.within {
            let a = any_of("station", w.stations.iter().cloned(), &mut args);
            let b = any_of("compound", w.compounds.iter().cloned(), &mut args);
            sql.push_str(&format!(" AND ({a} OR {b})"));
        }
        sql.push_str(&format!(
            " ORDER BY opened_ms DESC, id DESC LIMIT {} OFFSET {}",
            f.limit.unwrap_or(500).min(100_000),
            f.offset.unwrap_or(0)
        ));
        let conn = self.conn.lock();
        let mut st = conn.prepare(&sql)?;
        let rows = st
            .query_map(rusqlite::params_from_iter(args), |r| {
                from_row(r).map(|x| x.0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Reminders and SLA breaches due at `now_ms`. A breach escalates one level and is
    /// written to the audit trail; reminders repeat until the ticket is acknowledged.
    pub fn sla_tick(&self, now_ms: i64, policy: &SlaPolicy) -> Result<Vec<SlaEvent>, TicketError> {
        let mut conn = self.conn.lock();
        let tx = conn.savepoint()?;
        let due: Vec<(Ticket, Clocks)> = {
            let mut st = tx.prepare(&format!(
                "SELECT {COLS} FROM tickets WHERE active = 1 AND next_check_ms <= ?1 ORDER BY id"
            ))?;
            let rows = st
                .query_map([now_ms], from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            rows
        };
        let mut out = Vec::new();
        let max_level = policy.levels.len().max(1) as u32;
        for (mut t, mut c) in due {
            if t.acknowledged_ms.is_none() {
                if let Some(r) = c.next_reminder_ms.filter(|r| *r <= now_ms) {
                    t.reminders += 1;
                    // One reminder however long the clock was stopped, then the cadence.
                    let every = policy.reminder_interval_ms.max(1_000);
                    let behind = (now_ms - r) / every;
                    c.next_reminder_ms = Some(r + (behind + 1) * every);
                    out.push(SlaEvent::Reminder {
                        ticket: t.clone(),
                        ts_ms: now_ms,
                    });
                }
            }
            let mut breaches = Vec::new();
            if t.acknowledged_ms.is_none() && !t.ack_breached && t.ack_due_ms <= now_ms {
                t.ack_breached = true;
                breaches.push(SlaStage::Ack);
            }
            if t.on_site_ms.is_none()
                && !t.on_site_breached
                && t.on_site_due_ms.is_some_and(|d| d <= now_ms)
            {
                t.on_site_breached = true;
                breaches.push(SlaStage::OnSite);
            }
            if t.resolved_ms.is_none()
                && !t.resolve_breached
                && t.resolve_due_ms.is_some_and(|d| d <= now_ms)
            {
                t.resolve_breached = true;
                breaches.push(SlaStage::Resolve);
            }
            for stage in breaches {
                t.escalation_level = (t.escalation_level + 1).min(max_level);
                let audience = policy.level_name(t.escalation_level);
                audit(
                    &tx,
                    t.id,
                    now_ms,
                    SYSTEM_ACTOR,
                    "sla_breach",
                    None,
                    None,
                    &format!(
                        "{} target missed; escalated to level {} ({audience})",
                        stage.as_str(),
                        t.escalation_level
                    ),
                )?;
                out.push(SlaEvent::Breach {
                    ticket: t.clone(),
                    stage,
                    level: t.escalation_level,
                    audience,
                    ts_ms: now_ms,
                });
            }
            tx.prepare_cached(
                "UPDATE tickets SET reminders=?2, next_reminder_ms=?3, ack_breached=?4,
                    on_site_breached=?5, resolve_breached=?6, escalation_level=?7,
                    next_check_ms=?8 WHERE id=?1",
            )?
            .execute(params![
                t.id,
                t.reminders,
                c.next_reminder_ms,
                t.ack_breached,
                t.on_site_breached,
                t.resolve_breached,
                t.escalation_level,
                next_check(&t, &c),
            ])?;
        }
        tx.commit()?;
        Ok(out)
    }

    /// Service rating of a station or a compound (whichever `scope` names) for a month
    /// `YYYY-MM` (UTC), by the formula in docs/rating.md.
    pub fn rating(&self, scope: &str, month: &str) -> Result<Rating, TicketError> {
        let (from, to) = month_range(month)?;
        let conn = self.conn.lock();
        let mut st = conn.prepare(&format!(
            "SELECT {COLS} FROM tickets WHERE (station = ?1 OR compound = ?1)
               AND opened_ms >= ?2 AND opened_ms < ?3"
        ))?;
        let tickets = st
            .query_map(params![scope, from, to], |r| from_row(r).map(|x| x.0))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rate(scope, month, &tickets))
    }

    /// Append a published ticket event (JSON) to the durable event log and hand its id to
    /// `publish` while the log is still locked, so that the order in which events are
    /// published is the order of their ids: a stream resuming after id `n` from the log and
    /// then following live events sees every event once. The log keeps the newest
    /// [`EVENT_LOG_KEEP`] events.
    pub fn append_event(
        &self,
        ts_ms: i64,
        event_json: &str,
        publish: impl FnOnce(i64),
    ) -> Result<i64, TicketError> {
        let conn = self.conn.lock();
        conn.prepare_cached("INSERT INTO ticket_event_log(ts_ms, event) VALUES(?1, ?2)")?
            .execute(params![ts_ms, event_json])?;
        let id = conn.last_insert_rowid();
        if id % 1_000 == 0 {
            conn.prepare_cached("DELETE FROM ticket_event_log WHERE id <= ?1")?
                .execute([id - EVENT_LOG_KEEP])?;
        }
        publish(id);
        Ok(id)
    }

    /// The id of the newest logged event (0 when none).
    pub fn last_event_id(&self) -> Result<i64, TicketError> {
        let conn = self.conn.lock();
        let id = conn
            .prepare_cached("SELECT COALESCE(MAX(id), 0) FROM ticket_event_log")?
            .query_row([], |r| r.get(0))?;
        Ok(id)
    }

    /// Logged events with an id above `after_id`, oldest first, at most `limit`: (id, JSON).
    pub fn events_after(
        &self,
        after_id: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, TicketError> {
        let conn = self.conn.lock();
        let mut st = conn
            .prepare("SELECT id, event FROM ticket_event_log WHERE id > ?1 ORDER BY id LIMIT ?2")?;
        let rows = st
            .query_map(params![after_id, limit], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn save_rule_states(
        &self,
        rows: &[(String, String)],
        now_ms: i64,
    ) -> Result<(), TicketError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock();
        let tx = conn.savepoint()?;
        {
            let mut st = tx.prepare(
                "INSERT INTO rule_state(device_id, state, saved_ms) VALUES(?1, ?2, ?3)
                 ON CONFLICT(device_id) DO UPDATE SET state=excluded.state, saved_ms=excluded.saved_ms",
            )?;
            for (id, json) in rows {
                st.execute(params![id, json, now_ms])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn load_rule_states(&self) -> Result<Vec<(String, String)>, TicketError> {
        let conn = self.conn.lock();
        let mut st = conn.prepare("SELECT device_id, state FROM rule_state ORDER BY device_id")?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

/// `col IN (?n, ...)` with the values bound as parameters.
fn any_of(
    col: &str,
    values: impl Iterator<Item = String>,
    args: &mut Vec<rusqlite::types::Value>,
) -> String {
    let marks: Vec<String> = values
        .map(|v| {
            args.push(rusqlite::types::Value::Text(v));
            format!("?{}", args.len())
        })
        .collect();
    if marks.is_empty() {
        // An empty `IN ()` is not valid SQL in every engine; an empty set matches nothing.
        format!("{col} IN (NULL)")
    } else {
        format!("{col} IN ({})", marks.join(","))
    }
}

fn load(conn: &Connection, id: i64) -> Result<(Ticket, Clocks), TicketError> {
    conn.prepare_cached(&format!("SELECT {COLS} FROM tickets WHERE id = ?1"))?
        .query_row([id], from_row)
        .optional()?
        .ok_or(TicketError::NotFound(id))
}

#[allow(clippy::too_many_arguments)]
fn audit(
    conn: &Connection,
    ticket_id: i64,
    ts_ms: i64,
    actor: &str,
    action: &str,
    from: Option<TicketState>,
    to: Option<TicketState>,
    note: &str,
) -> Result<(), TicketError> {
    conn.prepare_cached(
        "INSERT INTO ticket_audit(ticket_id, ts_ms, actor, action, from_state, to_state, note)
         VALUES(?1,?2,?3,?4,?5,?6,?7)",
    )?
    .execute(params![
        ticket_id,
        ts_ms,
        actor,
        action,
        from.map(|s| s.as_str()),
        to.map(|s| s.as_str()),
        note
    ])?;
    Ok(())
}

/// `[start, end)` of a `YYYY-MM` month in ms, UTC.
pub fn month_range(month: &str) -> Result<(i64, i64), TicketError> {
    let bad = || TicketError::BadMonth(month.to_string());
    let (y, m) = month.split_once('-').ok_or_else(bad)?;
    let (y, m): (i32, u32) = (y.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if y.to_string().len() != 4 || !(1..=12).contains(&m) {
        return Err(bad());
    }
    let start = chrono::NaiveDate::from_ymd_opt(y, m, 1).ok_or_else(bad)?;
    let end = if m == 12 {
        chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)
    } else {
        chrono::NaiveDate::from_ymd_opt(y, m + 1, 1)
    }
    .ok_or_else(bad)?;
    let ms = |d: chrono::NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|dt| dt.and_utc().timestamp_millis())
            .ok_or_else(bad)
    };
    Ok((ms(start)?, ms(end)?))
}

/// The rating arithmetic of docs/rating.md over one month's tickets.
pub fn rate(scope: &str, month: &str, tickets: &[Ticket]) -> Rating {
    let rated: Vec<&Ticket> = tickets
        .iter()
        .filter(|t| t.state != TicketState::Cancelled)
        .collect();
    let share = |verdicts: &mut dyn Iterator<Item = Option<bool>>| -> Option<f64> {
        let (mut met, mut n) = (0u32, 0u32);
        for v in verdicts.flatten() {
            n += 1;
            met += u32::from(v);
        }
        (n > 0).then(|| f64::from(met) / f64::from(n))
    };
    // A verdict is known once the stage happened or its deadline passed unmet.
    let ack = share(&mut rated.iter().map(|t| match t.acknowledged_ms {
        Some(a) => Some(a <= t.ack_due_ms),
        None if t.ack_breached => Some(false),
        None => None,
    }));
    let on_site = share(
        &mut rated
            .iter()
            .map(|t| match (t.on_site_due_ms, t.on_site_ms) {
                (None, _) => None,
                (Some(d), Some(o)) => Some(o <= d),
                (Some(_), None) if t.on_site_breached => Some(false),
                _ => None,
            }),
    );
    let resolved = share(
        &mut rated
            .iter()
            .map(|t| match (t.resolve_due_ms, t.resolved_ms) {
                (None, _) => None,
                (Some(d), Some(r)) => Some(r <= d),
                (Some(_), None) if t.resolve_breached => Some(false),
                _ => None,
            }),
    );
    let mean = |xs: Vec<i64>| -> Option<f64> {
        (!xs.is_empty()).then(|| xs.iter().sum::<i64>() as f64 / xs.len() as f64 / 60_000.0)
    };
    let mean_ack = mean(
        rated
            .iter()
            .filter_map(|t| t.acknowledged_ms.map(|a| a - t.opened_ms))
            .collect(),
    );
    let mean_resolve = mean(
        rated
            .iter()
            .filter_map(|t| t.resolved_ms.map(|r| r - t.opened_ms))
            .collect(),
    );
    let repeats = rated.iter().filter(|t| t.repeat_of.is_some()).count() as u32;
    let repeat_rate = (!rated.is_empty()).then(|| f64::from(repeats) / rated.len() as f64);
    let parts = [
        (0.35, ack),
        (0.25, on_site),
        (0.20, resolved),
        (0.20, repeat_rate.map(|r| 1.0 - r)),
    ];
    let weight: f64 = parts
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(w, _)| w)
        .sum();
    let score = (weight > 0.0 && !rated.is_empty()).then(|| {
        100.0
            * parts
                .iter()
                .filter_map(|(w, v)| v.map(|v| w * v))
                .sum::<f64>()
            / weight
    });
    let stars = score.map(stars_for);
    Rating {
        scope: scope.to_string(),
        month: month.to_string(),
        tickets: tickets.len() as u32,
        cancelled: (tickets.len() - rated.len()) as u32,
        ack_within_sla: ack,
        on_site_within_sla: on_site,
        resolved_within_sla: resolved,
        mean_ack_min: mean_ack,
        mean_resolve_min: mean_resolve,
        repeat_failures: repeats,
        repeat_rate,
        score,
        stars,
    }
}

/// Star bands of docs/rating.md.
pub fn stars_for(score: f64) -> u8 {
    match score {
        s if s >= 90.0 => 5,
        s if s >= 80.0 => 4,
        s if s >= 65.0 => 3,
        s if s >= 50.0 => 2,
        _ => 1,
    }
}
