//! Who an audience is for one ticket at one instant: the seam between the ladder and the
//! estate's people. [`EstateRoster`] reads the registry's snapshots (people, rota, devices,
//! compounds); tests plug in their own.

use crate::policy::Audience;
use steward_tickets::Ticket;

/// A person as escalation reaches them: the endpoints they are on, and the addresses the
/// channels need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Names of notify endpoints.
    pub channels: Vec<String>,
}

pub trait Roster: Send + Sync {
    /// The people `audience` names for `ticket` at `at_ms` (the rota is read at that time).
    fn resolve(&self, audience: &Audience, ticket: &Ticket, at_ms: i64) -> Vec<Contact>;

    /// Whether the estate has this person (for `person:<id>` in the policy).
    fn person_exists(&self, id: &str) -> bool;
}
