//! Token roles and scopes: what a token may do and over which part of the estate (the
//! types only; issuing and checking tokens is `tokens`).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a token may do; the scope says over which part of the estate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including tokens.
    Admin,
    /// A facility manager: reads devices, tickets, rejects and reports of some streets
    /// and/or compounds.
    Manager,
    /// A repair station's crew: reads and moves the station's tickets.
    Crew,
    /// A device vendor: manages its own devices and sees their state and rejects.
    Vendor,
    /// A building captain: reads the tickets of some buildings and files hazard reports
    /// for them.
    Captain,
    /// A dispatcher at the hotline desk: reads every ticket in scope (all compounds, or
    /// those of its `streets` when given), opens tickets from calls, transfers, merges,
    /// links and cancels them (docs/dispatch.md).
    Dispatcher,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Admin,
        Role::Manager,
        Role::Crew,
        Role::Vendor,
        Role::Captain,
        Role::Dispatcher,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Crew => "crew",
            Role::Vendor => "vendor",
            Role::Captain => "captain",
            Role::Dispatcher => "dispatcher",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!("unknown role `{s}`; expected admin, manager, crew, vendor, captain or dispatcher")
            })
    }
}

/// The part of the estate a token covers. Which fields apply depends on the role:
/// manager: `streets` and/or `compounds`; crew: `station`; vendor: `vendor`; captain:
/// `buildings` (and optionally the `person` it is); dispatcher: `streets`, optional (none:
/// the whole estate); admin: none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenScope {
    pub streets: Vec<String>,
    pub compounds: Vec<String>,
    pub station: Option<String>,
    pub vendor: Option<String>,
    /// Captain: the buildings it reports for and reads tickets of.
    pub buildings: Vec<String>,
    /// Captain: the person (estate `people`) the token is, named in the audit trail.
    pub person: Option<String>,
}
