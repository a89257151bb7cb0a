//! The SLA arithmetic the store persists is the tickets crate's own, so both stores decide
//! reminders and breaches alike.

pub(crate) use steward_tickets::sla_clock::{apply_transition, next_check, tick, SlaClocks};
