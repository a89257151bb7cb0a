//! OpenAPI schemas of the types other crates own and the API sends as they are (tickets,
//! ratings, device state, compounds, token scopes). Those crates do not depend on utoipa,
//! so each is described here under the same name; the tests below serialize the real
//! type and fail when its fields or variants differ from the description.
//!
//! [`sorted`] keeps such values byte-for-byte as the API always sent them: through a JSON
//! value, whose object keys are in alphabetical order.

// The descriptions are never built: they exist for their derived schemas.
#![allow(dead_code)]

use serde::{Serialize, Serializer};
use utoipa::ToSchema;

/// Serialize `v` through a `serde_json::Value`, so its object keys come out sorted as the
/// API sent them before it had typed responses.
pub(crate) fn sorted<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    serde_json::to_value(v)
        .map_err(serde::ser::Error::custom)?
        .serialize(s)
}

/// A reply that is one of the described types as is, serialized as [`sorted`] does.
#[derive(Debug)]
pub struct Sorted<T>(pub T);

impl<T: Serialize> Serialize for Sorted<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        sorted(&self.0, s)
    }
}

/// Who a token is for (steward_estate::Role).
#[derive(ToSchema)]
#[schema(as = Role)]
#[serde(rename_all = "snake_case")]
pub enum RoleDoc {
    Admin,
    Manager,
    Crew,
    Vendor,
    Captain,
    Dispatcher,
}

/// Device kind (steward_estate::DeviceKind).
#[derive(ToSchema)]
#[schema(as = DeviceKind)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKindDoc {
    Smoke,
    Pump,
    Lift,
    Gate,
}

/// Whether a device is heard from (steward_rules::Liveness): `unknown` (nothing since the
/// hub started), `online`, `offline` (last will or explicit status), `silent` (no data for
/// more than two reporting periods).
#[derive(ToSchema)]
#[schema(as = Liveness)]
#[serde(rename_all = "snake_case")]
pub enum LivenessDoc {
    Unknown,
    Online,
    Offline,
    Silent,
}

/// Ticket priority.
#[derive(ToSchema)]
#[schema(as = Priority)]
pub enum PriorityDoc {
    P1,
    P2,
    P3,
}

/// Ticket lifecycle state.
#[derive(ToSchema)]
#[schema(as = TicketState)]
#[serde(rename_all = "snake_case")]
pub enum TicketStateDoc {
    Open,
    Acknowledged,
    Dispatched,
    OnSite,
    Resolved,
    Closed,
    OnHold,
    Cancelled,
}

/// The part of the estate a token covers: manager `streets` and/or `compounds`; crew
/// `station`; vendor `vendor`; captain `buildings` (and optionally `person`); admin none.
#[derive(ToSchema)]
#[schema(as = TokenScope)]
pub struct TokenScopeDoc {
    streets: Vec<String>,
    compounds: Vec<String>,
    #[schema(required = true)]
    station: Option<String>,
    #[schema(required = true)]
    vendor: Option<String>,
    buildings: Vec<String>,
    #[schema(required = true)]
    person: Option<String>,
}

/// A compound with its place in the estate and its responsible station.
#[derive(ToSchema)]
#[schema(as = Compound)]
pub struct CompoundDoc {
    id: String,
    name: String,
    community: String,
    street: String,
    /// Responsible station (property company's, or the street's fall-back).
    station: String,
    buildings: u64,
    /// Devices not retired.
    devices: u64,
    /// Names of the community, station and street (the id when the estate has none).
    community_name: String,
    station_name: String,
    street_name: String,
    /// Who manages it: property_company, self_managed, state_fallback or none.
    management: String,
    /// Since when it is covered (`YYYY-MM-DD`), if it was taken over.
    #[schema(required = true)]
    takeover_date: Option<String>,
}

/// What the hub last heard from one device.
#[derive(ToSchema)]
#[schema(as = DeviceState)]
pub struct DeviceStateDoc {
    device_id: String,
    /// Event time of the newest reading, ms since the epoch.
    #[schema(required = true)]
    last_reading_ms: Option<i64>,
    /// Newest event time of anything (reading, event, status).
    #[schema(required = true)]
    last_seen_ms: Option<i64>,
    /// `online` or `offline` as the device last said, if it did.
    #[schema(required = true)]
    status: Option<String>,
    #[schema(required = true)]
    last_event: Option<String>,
    /// Latest value of every metric ever reported: `{metric: [value, event time ms]}`.
    #[schema(value_type = Object)]
    values: serde_json::Value,
}

/// A maintenance ticket with the names of its places. Times are ms since the epoch.
#[derive(ToSchema)]
#[schema(as = Ticket)]
pub struct TicketDoc {
    id: i64,
    device_id: String,
    rule_id: String,
    /// Device kind, or `resident` for a resident's report.
    kind: String,
    compound: String,
    building: String,
    /// Responsible station the ticket is routed to.
    station: String,
    priority: PriorityDoc,
    title: String,
    detail: String,
    state: TicketStateDoc,
    opened_ms: i64,
    last_seen_ms: i64,
    occurrences: i64,
    /// Whether the rule's condition still holds.
    condition_active: bool,
    #[schema(required = true)]
    cleared_ms: Option<i64>,
    #[schema(required = true)]
    acknowledged_ms: Option<i64>,
    #[schema(required = true)]
    dispatched_ms: Option<i64>,
    #[schema(required = true)]
    on_site_ms: Option<i64>,
    #[schema(required = true)]
    resolved_ms: Option<i64>,
    #[schema(required = true)]
    closed_ms: Option<i64>,
    #[schema(required = true)]
    cancelled_ms: Option<i64>,
    ack_due_ms: i64,
    #[schema(required = true)]
    on_site_due_ms: Option<i64>,
    #[schema(required = true)]
    resolve_due_ms: Option<i64>,
    ack_breached: bool,
    on_site_breached: bool,
    resolve_breached: bool,
    /// 1 = the responsible station; each SLA breach moves one level up.
    escalation_level: u32,
    reminders: i64,
    /// Previous ticket of the same device and rule resolved within 7 days before this one.
    #[schema(required = true)]
    repeat_of: Option<i64>,
    /// `incident` or `work_order` (a planned round, docs/rounds.md).
    ticket_kind: String,
    /// Names of the building, compound, station and street (the id when the estate has
    /// none).
    building_name: String,
    compound_name: String,
    station_name: String,
    street_name: String,
    /// The device's location in its building; empty when none is recorded.
    location: String,
}

/// One line of a ticket's audit trail.
#[derive(ToSchema)]
#[schema(as = AuditRecord)]
pub struct AuditRecordDoc {
    id: i64,
    ticket_id: i64,
    ts_ms: i64,
    actor: String,
    /// raised, transition, condition_cleared, sla_breach.
    action: String,
    #[schema(required = true)]
    from_state: Option<TicketStateDoc>,
    #[schema(required = true)]
    to_state: Option<TicketStateDoc>,
    note: String,
}

/// A ticket with its audit trail.
#[derive(ToSchema)]
#[schema(as = TicketDetail)]
pub struct TicketDetailDoc {
    ticket: TicketDoc,
    audit: Vec<AuditRecordDoc>,
    links: Vec<TicketLinkDoc>,
    /// Who called, for a ticket opened from a call: admins, dispatchers and the
    /// station's crew only, else null.
    #[schema(required = true)]
    caller: Option<CallerDoc>,
    /// Who the ticket was last dispatched to; null when never.
    #[schema(required = true)]
    assignee: Option<String>,
    /// The cause named when it was resolved; null before.
    #[schema(required = true)]
    failure_code: Option<String>,
    /// The failure codes a crew may choose from when resolving it.
    failure_codes: Vec<String>,
    /// States the ticket may move to now.
    next_states: Vec<TicketStateDoc>,
}

/// Monthly service figures of a station or compound (docs/rating.md).
#[derive(ToSchema)]
#[schema(as = Rating)]
pub struct RatingDoc {
    scope: String,
    month: String,
    tickets: u32,
    cancelled: u32,
    /// Share acknowledged within SLA among tickets whose ack verdict is known.
    #[schema(required = true)]
    ack_within_sla: Option<f64>,
    #[schema(required = true)]
    on_site_within_sla: Option<f64>,
    #[schema(required = true)]
    resolved_within_sla: Option<f64>,
    #[schema(required = true)]
    mean_ack_min: Option<f64>,
    #[schema(required = true)]
    mean_resolve_min: Option<f64>,
    /// Tickets that repeat a failure resolved within the 7 days before.
    repeat_failures: u32,
    #[schema(required = true)]
    repeat_rate: Option<f64>,
    /// 0-100, see docs/rating.md; null when there is nothing to rate.
    #[schema(required = true)]
    score: Option<f64>,
    #[schema(required = true)]
    stars: Option<u8>,
    /// Tickets of the month still needing work.
    active: u32,
    /// Tickets with an SLA verdict still to come (a stage neither done nor past its
    /// deadline); the figures above leave those stages out until they are decided.
    pending: u32,
    /// P1 tickets among `pending`.
    pending_p1: u32,
    /// Residents' 1-5 star ratings of the month's tickets counted for this scope.
    resident_ratings: u32,
    /// Their mean; null without any (the score then leaves satisfaction out).
    #[schema(required = true)]
    resident_stars: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use steward_estate::{DeviceKind, Role, TokenScope};
    use steward_rules::{DeviceState, Liveness};
    use steward_tickets::{AuditRecord, Priority, Ticket, TicketState};

    /// The schema of `T` as JSON.
    fn schema_of<T: utoipa::PartialSchema>() -> serde_json::Value {
        serde_json::to_value(T::schema()).expect("schema as JSON")
    }

    /// The properties of `T`'s schema, checked to be all required: the real types send
    /// every field, null when empty.
    fn properties<T: utoipa::PartialSchema>() -> BTreeSet<String> {
        let s = schema_of::<T>();
        let props: BTreeSet<String> = s["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("an object schema: {s}"))
            .keys()
            .cloned()
            .collect();
        let required: BTreeSet<String> = s["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        assert_eq!(props, required, "every field is sent, so required: {s}");
        props
    }

    fn keys(v: &impl Serialize) -> BTreeSet<String> {
        serde_json::to_value(v)
            .expect("serializes")
            .as_object()
            .expect("an object")
            .keys()
            .cloned()
            .collect()
    }

    fn variants<T: utoipa::PartialSchema>() -> BTreeSet<String> {
        let s = schema_of::<T>();
        s["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("an enum schema: {s}"))
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn names<T: Serialize>(all: impl IntoIterator<Item = T>) -> BTreeSet<String> {
        all.into_iter()
            .map(|v| {
                serde_json::to_value(v)
                    .expect("serializes")
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    fn ticket() -> Ticket {
        Ticket {
            id: 1,
            device_id: "lift-1".into(),
            rule_id: "lift-trapped".into(),
            kind: "lift".into(),
            compound: "cmp-1".into(),
            building: "b-1".into(),
            station: "st-1".into(),
            priority: Priority::P1,
            title: "trapped".into(),
            detail: String::new(),
            state: TicketState::Open,
            opened_ms: 0,
            last_seen_ms: 0,
            occurrences: 1,
            condition_active: true,
            cleared_ms: None,
            acknowledged_ms: None,
            dispatched_ms: None,
            on_site_ms: None,
            resolved_ms: None,
            closed_ms: None,
            cancelled_ms: None,
            ack_due_ms: 0,
            on_site_due_ms: None,
            resolve_due_ms: None,
            ack_breached: false,
            on_site_breached: false,
            resolve_breached: false,
            escalation_level: 1,
            reminders: 0,
            repeat_of: None,
            ticket_kind: "incident".into(),
        }
    }

    #[test]
    fn object_schemas_name_the_fields_the_real_types_send() {
        let audit = AuditRecord {
            id: 1,
            ticket_id: 1,
            ts_ms: 0,
            actor: "rules".into(),
            action: "raised".into(),
            from_state: None,
            to_state: Some(TicketState::Open),
            note: String::new(),
        };
        assert_eq!(properties::<AuditRecordDoc>(), keys(&audit));
        let view = || crate::tickets::TicketView {
            ticket: ticket(),
            building_name: "Block 1".into(),
            compound_name: "Elm Court".into(),
            location: "core A".into(),
            station_name: "North".into(),
            street_name: "Riverside".into(),
        };
        assert_eq!(properties::<TicketDoc>(), keys(&view()));
        let detail = crate::tickets::TicketDetailView::new(view(), vec![audit], vec![], None);
        assert_eq!(properties::<TicketDetailDoc>(), keys(&detail));
        let t = ticket();
        let rating = crate::reports::RatingView::new(
            steward_tickets::rate("st-1", "2026-11", std::slice::from_ref(&t)),
            &[&t],
        );
        assert_eq!(properties::<RatingDoc>(), keys(&rating));
        assert_eq!(properties::<TokenScopeDoc>(), keys(&TokenScope::default()));
        let compound = crate::estate::CompoundView {
            summary: steward_estate::registry::CompoundSummary {
                id: "cmp-1".into(),
                name: "c".into(),
                community: "m".into(),
                street: "s".into(),
                station: "st-1".into(),
                buildings: 1,
                devices: 2,
            },
            community_name: "Elm".into(),
            station_name: "North".into(),
            street_name: "Riverside".into(),
            management: "none",
            takeover_date: None,
        };
        assert_eq!(properties::<CompoundDoc>(), keys(&compound));
        let state = DeviceState {
            device_id: "lift-1".into(),
            last_reading_ms: None,
            last_seen_ms: None,
            status: None,
            last_event: None,
            values: Default::default(),
        };
        assert_eq!(properties::<DeviceStateDoc>(), keys(&state));
    }

    #[test]
    fn enum_schemas_list_the_real_variants() {
        assert_eq!(variants::<RoleDoc>(), names(Role::ALL));
        assert_eq!(variants::<DeviceKindDoc>(), names(DeviceKind::ALL));
        assert_eq!(variants::<PriorityDoc>(), names(Priority::ALL));
        assert_eq!(variants::<TicketStateDoc>(), names(TicketState::ALL));
        // Liveness has no list of its variants to compare with.
        let all = [
            Liveness::Unknown,
            Liveness::Online,
            Liveness::Offline,
            Liveness::Silent,
        ];
        assert_eq!(variants::<LivenessDoc>(), names(all));
    }
}

/// A link between two tickets (steward_tickets::TicketLink).
// Describes the JSON for the OpenAPI document only; never built.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = TicketLink)]
pub struct TicketLinkDoc {
    from: i64,
    to: i64,
    /// related, duplicate or merged (`from` went into `to`).
    relation: String,
    ts_ms: i64,
    actor: String,
    note: String,
}

/// The caller of a ticket opened from a call (steward_tickets::Caller).
// Describes the JSON for the OpenAPI document only; never built.
#[allow(dead_code)]
#[derive(ToSchema)]
#[schema(as = Caller)]
pub struct CallerDoc {
    name: String,
    phone: String,
    /// How the ticket came in: `phone`.
    source: String,
}
