//! The rounds themselves: generating the due ones as work orders, deciding items by
//! telemetry or by hand, opening corrective tickets for failures and resolving the work
//! order once every item is decided. Time comes from the caller (an injectable clock).

use crate::evidence::{check, Filter, Obs, SharedFilter};
use crate::schedule::{Per, Schedule, ScheduleSet};
use crate::store::{NewRound, Round, RoundDetail, RoundStore};
use crate::RoundsError;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use steward_estate::{Directory, Registry};
use steward_tickets::{
    TicketDesk, TicketState, WorkOrder, TICKET_KIND_INCIDENT, TICKET_KIND_WORK_ORDER,
};
use tracing::{info, warn};

/// Actor of items telemetry decided and of work orders it resolved.
pub const TELEMETRY_ACTOR: &str = "telemetry";

/// The rounds stage's shared core; cheap to clone (the API holds one).
#[derive(Clone)]
pub struct Rounds {
    inner: Arc<Inner>,
}

struct Inner {
    store: RoundStore,
    desk: TicketDesk,
    registry: Registry,
    schedules: RwLock<Arc<ScheduleSet>>,
    filter: Arc<SharedFilter>,
    /// Open proof items by device: (round, item id). Rebuilt when rounds change.
    proofs: Mutex<HashMap<String, Vec<(Round, String)>>>,
    /// Per schedule, the period whose rounds are all made and the estate they were made
    /// for: the next passes skip it until the period or the estate changes, so a large
    /// estate costs no writes per pass.
    /// (Holding the estate's `Arc` keeps its address from being reused.)
    made: Mutex<HashMap<String, (String, Arc<Directory>)>>,
}

/// One asset a schedule covers.
struct Target {
    asset: String,
    kind: String,
    compound: String,
    building: String,
    station: String,
}

/// A hand-made verdict on a checklist item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Done,
    Failed,
}

impl Rounds {
    pub fn new(
        store: RoundStore,
        desk: TicketDesk,
        registry: Registry,
        schedules: ScheduleSet,
    ) -> Result<Rounds, RoundsError> {
        let r = Rounds {
            inner: Arc::new(Inner {
                store,
                desk,
                registry,
                schedules: RwLock::new(Arc::new(ScheduleSet::default())),
                filter: Arc::new(SharedFilter::default()),
                proofs: Mutex::new(HashMap::new()),
                made: Mutex::new(HashMap::new()),
            }),
        };
        r.set_schedules(schedules);
        r.reindex()?;
        Ok(r)
    }

    pub fn store(&self) -> &RoundStore {
        &self.inner.store
    }

    pub fn desk(&self) -> &TicketDesk {
        &self.inner.desk
    }

    pub fn schedules(&self) -> Arc<ScheduleSet> {
        self.inner.schedules.read().clone()
    }

    pub(crate) fn shared_filter(&self) -> Arc<SharedFilter> {
        self.inner.filter.clone()
    }

    /// Replace the schedules (a reload); rounds already made keep their checklist.
    pub fn set_schedules(&self, set: ScheduleSet) {
        self.inner.filter.set(Filter::of(&set));
        *self.inner.schedules.write() = Arc::new(set);
        self.inner.made.lock().clear();
    }

    /// Make the rounds due at `now_ms` (each (schedule, asset, period) once, ever) and
    /// their work orders; the rounds created now. A period whose completion deadline has
    /// already passed is not started late.
    pub fn generate(&self, now_ms: i64) -> Result<Vec<Round>, RoundsError> {
        let set = self.schedules();
        let dir = self.inner.registry.directory();
        let mut created = Vec::new();
        for s in &set.schedules {
            let period = s.cadence().period_at(now_ms);
            let due_ms = period.start_ms + s.complete_within_ms();
            if now_ms >= due_ms {
                continue;
            }
            let done = self
                .inner
                .made
                .lock()
                .get(&s.id)
                .is_some_and(|(p, d)| *p == period.key && Arc::ptr_eq(d, &dir));
            if done {
                continue;
            }
            for t in targets(s, &dir) {
                let round = Round {
                    id: 0,
                    schedule_id: s.id.clone(),
                    schedule_name: s.name.clone(),
                    asset: t.asset,
                    asset_kind: t.kind,
                    compound: t.compound,
                    building: t.building,
                    station: t.station,
                    assignee: s.by.as_str().to_string(),
                    period: period.key.clone(),
                    window_start_ms: period.start_ms,
                    due_ms,
                    opened_ms: now_ms,
                    ticket_id: None,
                    status: "open".into(),
                    completed_ms: None,
                };
                let items = s
                    .items
                    .iter()
                    .map(|i| {
                        let proof = i.proof.as_ref().map(|p| p.describe());
                        (i.id.as_str(), i.text.as_str(), proof)
                    })
                    .collect();
                let (stored, added) = self.inner.store.insert(&NewRound {
                    round: &round,
                    items,
                })?;
                if added {
                    created.push(stored);
                }
            }
            self.inner
                .made
                .lock()
                .insert(s.id.clone(), (period.key.clone(), dir.clone()));
        }
        // Also the rounds a stop left without their work order.
        for r in self.inner.store.without_ticket()? {
            let s = set.get(&r.schedule_id);
            self.open_work_order(&r, s)?;
        }
        if !created.is_empty() {
            info!(rounds = created.len(), "rounds generated");
            self.reindex()?;
        }
        created
            .into_iter()
            .map(|r| self.inner.store.round(r.id))
            .collect()
    }

    fn open_work_order(&self, r: &Round, s: Option<&Schedule>) -> Result<(), RoundsError> {
        let by = match r.assignee.as_str() {
            "captain" => "the building captain",
            _ => "the station",
        };
        let detail = format!(
            "planned round {} ({}), period {}, by {by}; checklist: /api/v1/rounds/{}{}",
            r.id,
            r.schedule_id,
            r.period,
            r.id,
            s.map(|s| format!("; source: {}", s.source))
                .unwrap_or_default()
        );
        let w = WorkOrder {
            device_id: r.asset.clone(),
            rule_id: format!("round:{}:{}", r.schedule_id, r.period),
            kind: r.asset_kind.clone(),
            compound: r.compound.clone(),
            building: r.building.clone(),
            station: r.station.clone(),
            priority: s
                .map(|s| s.priority)
                .unwrap_or(steward_tickets::Priority::P3),
            title: format!("{}: {}", r.schedule_name, r.asset),
            detail,
            ts_ms: r.opened_ms,
            ticket_kind: TICKET_KIND_WORK_ORDER.into(),
            resolve_due_ms: Some(r.due_ms),
        };
        let o = self.inner.desk.open_work_order(&w)?;
        self.inner.store.set_ticket(r.id, o.ticket.id)
    }

    fn reindex(&self) -> Result<(), RoundsError> {
        let mut by_device: HashMap<String, Vec<(Round, String)>> = HashMap::new();
        for (r, item) in self.inner.store.open_proof_items()? {
            by_device
                .entry(r.asset.clone())
                .or_default()
                .push((r, item));
        }
        *self.inner.proofs.lock() = by_device;
        Ok(())
    }

    /// Decide open proof items from telemetry; the (round id, item id, passed) decided.
    pub fn observe(&self, batch: &[Obs]) -> Result<Vec<(i64, String, bool)>, RoundsError> {
        let set = self.schedules();
        let mut decided = Vec::new();
        {
            let proofs = self.inner.proofs.lock();
            for o in batch {
                let Some(open) = proofs.get(&*o.device_id) else {
                    continue;
                };
                for (r, item_id) in open {
                    if o.ts_ms < r.window_start_ms || o.ts_ms > r.due_ms {
                        continue;
                    }
                    let proof = set
                        .get(&r.schedule_id)
                        .and_then(|s| s.items.iter().find(|i| &i.id == item_id))
                        .and_then(|i| i.proof.as_ref());
                    let Some((passed, evidence)) = proof.and_then(|p| check(p, o)) else {
                        continue;
                    };
                    decided.push((r.clone(), item_id.clone(), passed, evidence, o.ts_ms));
                }
            }
        }
        let mut out = Vec::new();
        for (r, item_id, passed, evidence, ts_ms) in decided {
            let state = if passed { "done" } else { "failed" };
            if self
                .inner
                .store
                .decide(r.id, &item_id, state, TELEMETRY_ACTOR, &evidence, ts_ms)?
            {
                self.after_decision(&r, &item_id, passed, &evidence, TELEMETRY_ACTOR)?;
                out.push((r.id, item_id, passed));
            }
        }
        if !out.is_empty() {
            self.reindex()?;
        }
        Ok(out)
    }

    /// A crew member or captain ticks an item by hand.
    pub fn tick_item(
        &self,
        round_id: i64,
        item_id: &str,
        verdict: Verdict,
        actor: &str,
        note: &str,
    ) -> Result<RoundDetail, RoundsError> {
        let r = self.inner.store.round(round_id)?;
        let detail = self.inner.store.detail(round_id)?;
        let Some(item) = detail.items.iter().find(|i| i.item_id == item_id) else {
            return Err(RoundsError::NoItem {
                round: round_id,
                item: item_id.to_string(),
            });
        };
        if item.state != "open" {
            return Err(RoundsError::Decided {
                round: round_id,
                item: item_id.to_string(),
                state: item.state.clone(),
            });
        }
        let passed = verdict == Verdict::Done;
        let state = if passed { "done" } else { "failed" };
        let now = self.inner.desk.now_ms();
        let evidence = format!("{actor}: {note}");
        if self
            .inner
            .store
            .decide(round_id, item_id, state, actor, &evidence, now)?
        {
            self.after_decision(&r, item_id, passed, &evidence, actor)?;
            self.reindex()?;
        }
        self.inner.store.detail(round_id)
    }

    /// A failed item opens its corrective ticket; a round with nothing open is completed
    /// and its work order resolved.
    fn after_decision(
        &self,
        r: &Round,
        item_id: &str,
        passed: bool,
        evidence: &str,
        actor: &str,
    ) -> Result<(), RoundsError> {
        if !passed {
            let set = self.schedules();
            let s = set.get(&r.schedule_id);
            let text = s
                .and_then(|s| s.items.iter().find(|i| i.id == item_id))
                .map(|i| i.text.clone())
                .unwrap_or_else(|| item_id.to_string());
            let w = WorkOrder {
                device_id: r.asset.clone(),
                rule_id: format!("round-failed:{}:{item_id}", r.id),
                kind: r.asset_kind.clone(),
                compound: r.compound.clone(),
                building: r.building.clone(),
                station: r.station.clone(),
                priority: s
                    .map(|s| s.corrective_priority)
                    .unwrap_or(steward_tickets::Priority::P2),
                title: format!("{} failed: {text} ({})", r.schedule_name, r.asset),
                detail: format!("round {} item `{item_id}` failed: {evidence}", r.id),
                ts_ms: self.inner.desk.now_ms(),
                ticket_kind: TICKET_KIND_INCIDENT.into(),
                resolve_due_ms: None,
            };
            let o = self.inner.desk.open_work_order(&w)?;
            self.inner
                .store
                .set_corrective(r.id, item_id, o.ticket.id)?;
            warn!(
                round = r.id,
                item = item_id,
                ticket = o.ticket.id,
                "round item failed, corrective ticket opened"
            );
        }
        let now = self.inner.desk.now_ms();
        let Some(status) = self.inner.store.complete_if_decided(r.id, now)? else {
            return Ok(());
        };
        let Some(ticket) = r.ticket_id.or(self.inner.store.round(r.id)?.ticket_id) else {
            return Ok(());
        };
        let note = format!("round {} {status}: every checklist item decided", r.id);
        let who = if actor == TELEMETRY_ACTOR {
            "rounds"
        } else {
            actor
        };
        match self
            .inner
            .desk
            .transition(ticket, TicketState::Resolved, who, &note)
        {
            Ok(_) => {}
            // Resolved or cancelled by hand already: the round's record stands.
            Err(steward_tickets::TicketError::IllegalTransition { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        info!(round = r.id, status = %status, "round completed");
        Ok(())
    }
}

/// The assets a schedule covers in the estate, in a stable order.
fn targets(s: &Schedule, dir: &Directory) -> Vec<Target> {
    let mut out: BTreeMap<String, Target> = BTreeMap::new();
    for d in dir.devices.values() {
        if d.retired
            || (!s.kinds.is_empty() && !s.kinds.contains(&d.kind))
            || (!s.devices.is_empty() && !s.devices.iter().any(|x| **x == *d.id))
            || (!s.buildings.is_empty() && !s.buildings.contains(&d.building))
            || (!s.compounds.is_empty() && !s.compounds.iter().any(|c| **c == *d.compound))
        {
            continue;
        }
        let station = dir
            .compounds
            .get(&*d.compound)
            .map(|c| c.station.clone())
            .unwrap_or_else(|| d.station.clone());
        let (asset, kind) = match s.per {
            Per::Device => (d.id.to_string(), d.kind.as_str().to_string()),
            Per::Building => (format!("building:{}", d.building), "building".into()),
            Per::Compound => (format!("compound:{}", d.compound), "compound".into()),
        };
        let building = if s.per == Per::Compound {
            String::new()
        } else {
            d.building.clone()
        };
        out.entry(asset.clone()).or_insert(Target {
            asset,
            kind,
            compound: d.compound.to_string(),
            building,
            station,
        });
    }
    out.into_values().collect()
}
