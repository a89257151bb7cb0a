//! The estate registry as a [`Roster`]: people, rota and captains from its people
//! snapshot, a ticket's building and street from its directory.

use crate::policy::Audience;
use crate::roster::{Contact, Roster};
use steward_estate::Registry;
use steward_tickets::Ticket;

/// The estate registry as a roster.
#[derive(Clone)]
pub struct EstateRoster {
    registry: Registry,
}

impl EstateRoster {
    pub fn new(registry: Registry) -> Self {
        EstateRoster { registry }
    }
}

fn contact(p: &steward_estate::people::Person) -> Contact {
    Contact {
        id: p.id.clone(),
        name: p.name.clone(),
        phone: p.phone.clone(),
        email: p.email.clone(),
        channels: p.channels.clone(),
    }
}

impl Roster for EstateRoster {
    fn resolve(&self, audience: &Audience, t: &Ticket, at_ms: i64) -> Vec<Contact> {
        let people = self.registry.people();
        let dir = self.registry.directory();
        // A resident's or captain's ticket names its building; a device's comes from the
        // device.
        let building = if t.building.is_empty() {
            dir.device(&t.device_id)
                .map(|d| d.building.clone())
                .unwrap_or_default()
        } else {
            t.building.clone()
        };
        let street = dir.compounds.get(&t.compound).map(|c| c.street.clone());
        let found: Vec<&steward_estate::people::Person> = match audience {
            Audience::OnCall => people.on_call(&t.station, at_ms),
            Audience::Crew => people.crew_members(&t.station),
            Audience::Captains => people.captains(&building),
            Audience::StationHead => people.station_head(&t.station).into_iter().collect(),
            Audience::GridManager => people.grid_manager(&t.compound).into_iter().collect(),
            Audience::StreetDutyOfficer => street
                .and_then(|s| people.street_duty_officer(&s))
                .into_iter()
                .collect(),
            Audience::District => people.district_duty_officer().into_iter().collect(),
            Audience::Person(id) => people.person(id).into_iter().collect(),
        };
        found.into_iter().map(contact).collect()
    }

    fn person_exists(&self, id: &str) -> bool {
        self.registry.people().person(id).is_some()
    }
}
