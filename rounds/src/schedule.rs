//! The schedule file (TOML): what is inspected or maintained, how often, by whom, within
//! what time, with which checklist. Loaded whole and validated; every problem names the
//! file, the schedule's key and the reason (docs/rounds.md).

use crate::period::Cadence;
use crate::RoundsError;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;
use steward_estate::{catalog, DeviceKind};
use steward_tickets::Priority;

/// Who carries a round out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    /// The repair station responsible for the compound.
    Station,
    /// The building's fire safety captain (GB 25201 patrols).
    Captain,
}

impl Assignee {
    pub fn as_str(self) -> &'static str {
        match self {
            Assignee::Station => "station",
            Assignee::Captain => "captain",
        }
    }
}

/// What one round is for: a device, a building or a compound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Per {
    Device,
    Building,
    Compound,
}

/// How telemetry proves a checklist item (exactly one of `event` or `metric`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proof {
    /// A device event of this name in the round's window proves the item (`test`).
    pub event: Option<String>,
    /// A reading of this metric in the window: within `[min, max]` proves it, outside
    /// fails it.
    pub metric: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Only readings where this boolean metric is true count (`running` for a pump's
    /// test run).
    pub when: Option<String>,
}

impl Proof {
    /// One line for people: what the telemetry must show.
    pub fn describe(&self) -> String {
        if let Some(e) = &self.event {
            return format!("a `{e}` event in the window");
        }
        let m = self.metric.as_deref().unwrap_or("?");
        let range = match (self.min, self.max) {
            (Some(lo), Some(hi)) => format!("{m} in [{lo}, {hi}]"),
            (Some(lo), None) => format!("{m} >= {lo}"),
            (None, Some(hi)) => format!("{m} <= {hi}"),
            (None, None) => m.to_string(),
        };
        match &self.when {
            Some(w) => format!("{range} while {w}"),
            None => range,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub proof: Option<Proof>,
}

/// One schedule as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    pub id: String,
    pub name: String,
    /// The regulation or manual the schedule follows, for people.
    #[serde(default)]
    pub source: String,
    /// Device kinds covered (empty: any).
    #[serde(default)]
    pub kinds: Vec<DeviceKind>,
    /// Device ids covered (empty: any).
    #[serde(default)]
    pub devices: Vec<String>,
    #[serde(default)]
    pub buildings: Vec<String>,
    #[serde(default)]
    pub compounds: Vec<String>,
    /// One round per device (default), per building or per compound.
    #[serde(default = "default_per")]
    pub per: Per,
    /// `daily`, `every N days`, `weekly on <weekday>`, `monthly`, `quarterly`,
    /// `half-yearly`, `yearly`.
    pub cadence: String,
    /// Anchor of `every N days` periods (`YYYY-MM-DD`, UTC); default 1970-01-01.
    #[serde(default)]
    pub start: Option<String>,
    pub by: Assignee,
    /// Time to complete the round from the start of its period.
    #[serde(with = "humantime_serde")]
    pub complete_within: Duration,
    #[serde(default = "default_priority")]
    pub priority: Priority,
    /// Priority of the corrective ticket a failed item opens.
    #[serde(default = "default_corrective")]
    pub corrective_priority: Priority,
    #[serde(rename = "item")]
    pub items: Vec<Item>,
    /// Parsed `cadence`.
    #[serde(skip)]
    pub parsed: Option<Cadence>,
}

fn default_per() -> Per {
    Per::Device
}
fn default_priority() -> Priority {
    Priority::P3
}
fn default_corrective() -> Priority {
    Priority::P2
}

impl Schedule {
    pub fn cadence(&self) -> Cadence {
        self.parsed
            .clone()
            .unwrap_or(Cadence::Days { n: 1, anchor_ms: 0 })
    }

    pub fn complete_within_ms(&self) -> i64 {
        self.complete_within.as_millis() as i64
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default, rename = "schedule")]
    schedules: Vec<Schedule>,
}

/// Every schedule of one file, validated.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScheduleSet {
    pub schedules: Vec<Schedule>,
}

impl ScheduleSet {
    pub fn load(path: &Path) -> Result<ScheduleSet, RoundsError> {
        let text = std::fs::read_to_string(path).map_err(|e| RoundsError::Schedule {
            file: path.display().to_string(),
            problems: vec![format!("cannot read: {e}")],
        })?;
        Self::parse(&text).map_err(|problems| RoundsError::Schedule {
            file: path.display().to_string(),
            problems,
        })
    }

    /// Parse and validate; every problem names its key (`schedule[2].item[0].proof.metric`).
    pub fn parse(text: &str) -> Result<ScheduleSet, Vec<String>> {
        let doc: FileDoc = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
        let mut problems = Vec::new();
        let mut ids = HashSet::new();
        let mut schedules = doc.schedules;
        for (i, s) in schedules.iter_mut().enumerate() {
            let key = format!("schedule[{i}] (id `{}`)", s.id);
            if !ids.insert(s.id.clone()) {
                problems.push(format!("{key}.id: duplicate schedule id"));
            }
            validate_schedule(s, &key, &mut problems);
        }
        if problems.is_empty() {
            Ok(ScheduleSet { schedules })
        } else {
            Err(problems)
        }
    }

    pub fn get(&self, id: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.id == id)
    }
}

fn validate_schedule(s: &mut Schedule, key: &str, problems: &mut Vec<String>) {
    if let Err(e) = steward_estate::validate_id(&s.id) {
        problems.push(format!("{key}.id: {e}"));
    }
    if s.name.trim().is_empty() {
        problems.push(format!("{key}.name: must not be empty"));
    }
    match Cadence::parse(&s.cadence, s.start.as_deref()) {
        Ok(c) => s.parsed = Some(c),
        Err(e) => problems.push(format!("{key}.cadence: {e}")),
    }
    let within = s.complete_within;
    if within < Duration::from_secs(3600) || within > Duration::from_secs(366 * 86_400) {
        problems.push(format!(
            "{key}.complete_within: must be between 1h and 366d, got {}",
            humantime::format_duration(within)
        ));
    }
    if s.per == Per::Device && s.kinds.is_empty() && s.devices.is_empty() {
        problems.push(format!(
            "{key}.kinds: a schedule per device names device kinds or device ids"
        ));
    }
    if s.items.is_empty() {
        problems.push(format!(
            "{key}.item: a schedule needs at least one checklist item"
        ));
    }
    let mut item_ids = HashSet::new();
    for (j, item) in s.items.iter().enumerate() {
        let ikey = format!("{key}.item[{j}] (id `{}`)", item.id);
        if let Err(e) = steward_estate::validate_id(&item.id) {
            problems.push(format!("{ikey}.id: {e}"));
        }
        if !item_ids.insert(item.id.clone()) {
            problems.push(format!("{ikey}.id: duplicate item id in this schedule"));
        }
        if item.text.trim().is_empty() {
            problems.push(format!("{ikey}.text: must not be empty"));
        }
        if let Some(p) = &item.proof {
            validate_proof(s, p, &format!("{ikey}.proof"), problems);
        }
    }
}

fn validate_proof(s: &Schedule, p: &Proof, key: &str, problems: &mut Vec<String>) {
    if s.per != Per::Device {
        problems.push(format!(
            "{key}: telemetry proves items of rounds per device only (per = \"device\")"
        ));
        return;
    }
    if s.kinds.len() != 1 {
        problems.push(format!(
            "{key}: a schedule with proof names exactly one device kind in `kinds`"
        ));
        return;
    }
    let kind = s.kinds[0];
    match (&p.event, &p.metric) {
        (Some(e), None) => {
            if !catalog::events(kind).contains(&e.as_str()) {
                problems.push(format!(
                    "{key}.event: `{e}` is not an event of {kind} devices (known: {})",
                    catalog::events(kind).join(", ")
                ));
            }
            if p.min.is_some() || p.max.is_some() || p.when.is_some() {
                problems.push(format!(
                    "{key}: min, max and when go with `metric`, not `event`"
                ));
            }
        }
        (None, Some(m)) => {
            if catalog::metric(kind, m).is_none() {
                problems.push(format!(
                    "{key}.metric: `{m}` is not a metric of {kind} devices"
                ));
            }
            if p.min.is_none() && p.max.is_none() {
                problems.push(format!("{key}: a metric proof needs `min` or `max`"));
            }
            if let (Some(lo), Some(hi)) = (p.min, p.max) {
                if lo > hi {
                    problems.push(format!("{key}.min: {lo} is above max {hi}"));
                }
            }
            if let Some(w) = &p.when {
                if catalog::metric(kind, w).is_none() {
                    problems.push(format!(
                        "{key}.when: `{w}` is not a metric of {kind} devices"
                    ));
                }
            }
        }
        _ => problems.push(format!("{key}: give exactly one of `event` or `metric`")),
    }
}
