//! People of the estate (issue 13): who is reached when something happens. Crews of a
//! station and their on-call rota, station heads, building captains, grid managers, street
//! duty officers and the district duty officer, plus who manages each compound.
//!
//! [`People`] is an immutable snapshot rebuilt from the registry database whenever the
//! estate is applied or reloaded ([`crate::Registry::people`]); the estate file's sections
//! are in [`defs`]. Contact details never go to logs in clear: `Person`'s `Debug` masks
//! them, and [`mask_phone`] / [`mask_email`] are for anything else that shows them.

pub mod defs;
mod rota;
pub(crate) mod store;
mod validate;

pub(crate) use validate::validate_file;

pub use defs::{
    CaptainDef, CrewDef, DistrictDef, GridCellDef, Management, OverrideDef, PersonDef, RotaDef,
    ShiftDef,
};

use chrono::NaiveDate;
pub use chrono_tz::Tz;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The estate's time zone when the file names none.
pub const DEFAULT_TIMEZONE: Tz = chrono_tz::Asia::Shanghai;

/// Someone the hub may have to reach.
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// Names of the notification endpoints the person is reached on.
    pub channels: Vec<String>,
}

impl std::fmt::Debug for Person {
    // Contact details are personal data: a `{:?}` in a log line must not carry them.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("phone", &self.phone.as_deref().map(mask_phone))
            .field("email", &self.email.as_deref().map(mask_email))
            .field("channels", &self.channels)
            .finish()
    }
}

/// A crew of a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crew {
    pub id: String,
    pub name: String,
    pub station: String,
    /// Person ids.
    pub members: Vec<String>,
}

/// A grid cell of a street and its manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GridCell {
    pub id: String,
    pub name: String,
    pub street: String,
    pub manager: Option<String>,
    pub compounds: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct District {
    pub id: String,
    pub name: String,
    pub duty_officer: Option<String>,
}

/// Where a compound sits, who answers for it and who manages it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundPeople {
    pub id: String,
    pub street: String,
    /// Responsible station (property company's, or the street's fall-back).
    pub station: String,
    pub management: Management,
    /// Since when the compound is covered (taken over), if it was.
    pub takeover_date: Option<NaiveDate>,
}

/// Immutable snapshot of the people model.
#[derive(Debug, Default)]
pub struct People {
    persons: BTreeMap<String, Person>,
    timezone: Option<Tz>,
    crews: Vec<Crew>,
    heads: HashMap<String, String>,
    /// Building -> captains' person ids, in file order.
    captains: BTreeMap<String, Vec<String>>,
    grid_cells: Vec<GridCell>,
    duty_officers: HashMap<String, String>,
    district: Option<District>,
    rotas: HashMap<String, rota::Rota>,
    compounds: BTreeMap<String, CompoundPeople>,
    /// Building -> compound.
    buildings: HashMap<String, String>,
}

impl People {
    pub fn person(&self, id: &str) -> Option<&Person> {
        self.persons.get(id)
    }

    /// Everyone, by id.
    pub fn all(&self) -> Vec<&Person> {
        self.persons.values().collect()
    }

    /// The estate's time zone (default Asia/Shanghai): rotas are in its local time.
    pub fn timezone(&self) -> Tz {
        self.timezone.unwrap_or(DEFAULT_TIMEZONE)
    }

    /// Who is on call for a station at an instant: a dated override covering it wins over
    /// the weekly pattern; empty when nobody is (or the station has no rota).
    pub fn on_call(&self, station: &str, at_ms: i64) -> Vec<&Person> {
        self.rotas
            .get(station)
            .map(|r| r.on_call(self.timezone(), at_ms))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|id| self.person(id))
            .collect()
    }

    /// Everyone on a station's rota (weekly shifts and overrides), by id.
    pub fn rota_people(&self, station: &str) -> Vec<&Person> {
        let ids: BTreeSet<&str> = self
            .rotas
            .get(station)
            .map(|r| r.people().collect())
            .unwrap_or_default();
        ids.into_iter().filter_map(|id| self.person(id)).collect()
    }

    /// Whether a station uses a person: crew member, head, on its rota, or captain of a
    /// building it answers for. That station's crew may see the person's contact details.
    pub fn station_uses(&self, station: &str, person: &str) -> bool {
        self.crew_of(station, person).is_some()
            || self.heads.get(station).is_some_and(|h| h == person)
            || self.rota_people(station).iter().any(|p| p.id == person)
            || self
                .captain_buildings(person)
                .into_iter()
                .any(|b| self.building_station(b) == Some(station))
    }

    /// Crews of a station, in file order.
    pub fn crews(&self, station: &str) -> Vec<&Crew> {
        self.crews.iter().filter(|c| c.station == station).collect()
    }

    /// Every crew, in file order.
    pub fn all_crews(&self) -> &[Crew] {
        &self.crews
    }

    /// Members of every crew of the station, deduplicated, in crew and member order.
    pub fn crew_members(&self, station: &str) -> Vec<&Person> {
        let mut seen = BTreeSet::new();
        self.crews(station)
            .into_iter()
            .flat_map(|c| c.members.iter())
            .filter(|m| seen.insert(m.as_str()))
            .filter_map(|m| self.person(m))
            .collect()
    }

    /// The first crew of the station the person belongs to.
    pub fn crew_of(&self, station: &str, person: &str) -> Option<&Crew> {
        self.crews(station)
            .into_iter()
            .find(|c| c.members.iter().any(|m| m == person))
    }

    pub fn station_head(&self, station: &str) -> Option<&Person> {
        self.heads.get(station).and_then(|p| self.person(p))
    }

    /// Captains of a building, in file order.
    pub fn captains(&self, building: &str) -> Vec<&Person> {
        self.captains
            .get(building)
            .map(|ids| ids.iter().filter_map(|p| self.person(p)).collect())
            .unwrap_or_default()
    }

    /// Buildings a person is captain of, sorted.
    pub fn captain_buildings(&self, person: &str) -> Vec<&str> {
        self.captains
            .iter()
            .filter(|(_, ids)| ids.iter().any(|p| p == person))
            .map(|(b, _)| b.as_str())
            .collect()
    }

    /// The grid manager of the cell holding a compound.
    pub fn grid_manager(&self, compound: &str) -> Option<&Person> {
        self.grid_cell_of(compound)
            .and_then(|g| g.manager.as_deref())
            .and_then(|p| self.person(p))
    }

    pub fn grid_cell_of(&self, compound: &str) -> Option<&GridCell> {
        self.grid_cells
            .iter()
            .find(|g| g.compounds.iter().any(|c| c == compound))
    }

    pub fn grid_cells(&self) -> &[GridCell] {
        &self.grid_cells
    }

    pub fn street_duty_officer(&self, street: &str) -> Option<&Person> {
        self.duty_officers.get(street).and_then(|p| self.person(p))
    }

    pub fn district(&self) -> Option<&District> {
        self.district.as_ref()
    }

    pub fn district_duty_officer(&self) -> Option<&Person> {
        self.district
            .as_ref()
            .and_then(|d| d.duty_officer.as_deref())
            .and_then(|p| self.person(p))
    }

    /// A compound's street, station and management.
    pub fn compound(&self, id: &str) -> Option<&CompoundPeople> {
        self.compounds.get(id)
    }

    /// Every compound, by id.
    pub fn compounds(&self) -> impl Iterator<Item = &CompoundPeople> {
        self.compounds.values()
    }

    /// The compound a building belongs to.
    pub fn building_compound(&self, building: &str) -> Option<&str> {
        self.buildings.get(building).map(String::as_str)
    }

    /// The station that answers for a building (its compound's).
    pub fn building_station(&self, building: &str) -> Option<&str> {
        self.building_compound(building)
            .and_then(|c| self.compounds.get(c))
            .map(|c| c.station.as_str())
    }

    /// Buildings whose compound a station answers for, sorted.
    pub fn station_buildings(&self, station: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .buildings
            .iter()
            .filter(|(_, c)| self.compounds.get(*c).is_some_and(|c| c.station == station))
            .map(|(b, _)| b.as_str())
            .collect();
        v.sort_unstable();
        v
    }

    /// Problems for channels no configured endpoint has, each naming the key:
    /// `people[p-wang].channels: unknown channel `x``. The estate cannot check channel
    /// names itself (it does not know the notification config); the hub calls this.
    pub fn check_channels(&self, known: &BTreeSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        for p in self.persons.values() {
            for c in &p.channels {
                if !known.contains(c) {
                    out.push(format!("people[{}].channels: unknown channel `{c}`", p.id));
                }
            }
        }
        out
    }
}

/// `13812345678` -> `138****5678`; short numbers keep only their last two digits.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().filter(|c| !c.is_whitespace()).collect();
    let n = chars.len();
    if n >= 7 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[n - 4..].iter().collect();
        format!("{head}****{tail}")
    } else if n > 2 {
        let tail: String = chars[n - 2..].iter().collect();
        format!("****{tail}")
    } else {
        "****".to_string()
    }
}

/// `zhang.san@example.com` -> `z***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_contacts() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("138 0000 0001"), "138****0001");
        assert_eq!(mask_phone("+8613812345678"), "+86****5678");
        assert_eq!(mask_phone("12345"), "****45");
        assert_eq!(mask_phone("1"), "****");
        assert_eq!(mask_email("zhang.san@example.com"), "z***@example.com");
        assert_eq!(mask_email("nobody"), "***");
        let p = Person {
            id: "p-1".into(),
            name: "Zhang San".into(),
            phone: Some("13812345678".into()),
            email: Some("zhang.san@example.com".into()),
            channels: vec![],
        };
        let debug = format!("{p:?}");
        assert!(
            !debug.contains("13812345678") && !debug.contains("zhang.san@"),
            "{debug}"
        );
        assert!(debug.contains("138****5678"), "{debug}");
    }
}

#[cfg(test)]
mod model_tests;
