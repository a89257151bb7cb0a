//! What the rules (or anyone else) ask of the ticket domain: open a ticket for a condition
//! ([`Raise`]) and record that it cleared ([`Clear`]), with the priority and clear policy
//! rule files name.

use serde::{Deserialize, Serialize};
use steward_estate::DeviceKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::P1, Priority::P2, Priority::P3];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        match s {
            "P1" | "p1" => Some(Priority::P1),
            "P2" | "p2" => Some(Priority::P2),
            "P3" | "p3" => Some(Priority::P3),
            _ => None,
        }
    }
}

impl std::fmt::Display for Priority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a cleared condition does to the rule's open ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnClear {
    /// Note it on the ticket; a crew still resolves it.
    Record,
    /// Resolve the ticket (e.g. offline -> online).
    Resolve,
    /// Resolve and close it.
    Close,
    /// Say nothing (rules made of events only have no "cleared" state).
    Ignore,
}

impl OnClear {
    pub fn as_str(self) -> &'static str {
        match self {
            OnClear::Record => "record",
            OnClear::Resolve => "resolve",
            OnClear::Close => "close",
            OnClear::Ignore => "ignore",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Raise {
    pub device_id: String,
    pub rule_id: String,
    pub kind: DeviceKind,
    pub compound: String,
    pub building: String,
    /// Responsible station (property company or street fall-back), from the estate.
    pub station: String,
    pub priority: Priority,
    pub title: String,
    /// Values of the metrics the rule looks at, and the triggering event, if any.
    pub detail: String,
    pub ts_ms: i64,
}

/// The condition of `(device_id, rule_id)` no longer holds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clear {
    pub device_id: String,
    pub rule_id: String,
    pub on_clear: OnClear,
    pub ts_ms: i64,
}
