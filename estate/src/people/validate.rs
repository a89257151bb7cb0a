//! Checking the people sections against the rest of the estate and building the
//! [`People`] snapshot from them: one pass does both, so what loads is what was checked.

use super::defs::*;
use super::{rota, CompoundPeople, Crew, District, GridCell, People, Person};
use crate::file::EstateFile;
use crate::validate_id;
use chrono::NaiveDate;
use chrono_tz::Tz;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The people sections as the file (or the database) holds them. References from the
/// place sections carry the key they were written under, e.g. `stations[2].head`.
#[derive(Debug, Default)]
pub(crate) struct Section {
    pub timezone: Option<String>,
    pub district: Option<DistrictDef>,
    pub people: Vec<PersonDef>,
    pub crews: Vec<CrewDef>,
    pub grid_cells: Vec<GridCellDef>,
    pub captains: Vec<CaptainDef>,
    pub rotas: Vec<RotaDef>,
    /// (key, station, person)
    pub heads: Vec<(String, String, String)>,
    /// (key, street, person)
    pub duty_officers: Vec<(String, String, String)>,
    /// (key, compound, management, takeover date as written)
    pub management: Vec<(String, String, Management, Option<String>)>,
}

/// The places the people sections refer to.
#[derive(Debug, Default)]
pub(crate) struct Places {
    pub stations: HashSet<String>,
    pub streets: HashSet<String>,
    /// compound -> (street, responsible station)
    pub compounds: HashMap<String, (String, String)>,
    /// building -> compound
    pub buildings: HashMap<String, String>,
}

impl Section {
    pub(crate) fn from_file(f: &EstateFile) -> Section {
        Section {
            timezone: f.timezone.clone(),
            district: f.district.clone(),
            people: f.people.clone(),
            crews: f.crews.clone(),
            grid_cells: f.grid_cells.clone(),
            captains: f.captains.clone(),
            rotas: f.rotas.clone(),
            heads: f
                .stations
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let p = s.head.clone()?;
                    Some((format!("stations[{i}].head"), s.id.clone(), p))
                })
                .collect(),
            duty_officers: f
                .streets
                .iter()
                .enumerate()
                .filter_map(|(i, s)| {
                    let p = s.duty_officer.clone()?;
                    Some((format!("streets[{i}].duty_officer"), s.id.clone(), p))
                })
                .collect(),
            management: f
                .compounds
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let m = c.management.unwrap_or(if c.property_company.is_some() {
                        Management::PropertyCompany
                    } else {
                        Management::None
                    });
                    (
                        format!("compounds[{i}]"),
                        c.id.clone(),
                        m,
                        c.takeover_date.clone(),
                    )
                })
                .collect(),
        }
    }
}

impl Places {
    pub(crate) fn from_file(f: &EstateFile) -> Places {
        let fallback: HashMap<&str, &str> = f
            .streets
            .iter()
            .map(|s| (s.id.as_str(), s.fallback_station.as_str()))
            .collect();
        let street_of: HashMap<&str, &str> = f
            .communities
            .iter()
            .map(|c| (c.id.as_str(), c.street.as_str()))
            .collect();
        Places {
            stations: f.stations.iter().map(|s| s.id.clone()).collect(),
            streets: f.streets.iter().map(|s| s.id.clone()).collect(),
            compounds: f
                .compounds
                .iter()
                .map(|c| {
                    let street = street_of.get(c.community.as_str()).copied().unwrap_or("");
                    let station = c
                        .station
                        .clone()
                        .unwrap_or_else(|| fallback.get(street).copied().unwrap_or("").into());
                    (c.id.clone(), (street.to_string(), station))
                })
                .collect(),
            buildings: f
                .buildings
                .iter()
                .map(|b| (b.id.clone(), b.compound.clone()))
                .collect(),
        }
    }
}

/// Check the people sections of an estate file; every problem names its key.
pub(crate) fn validate_file(f: &EstateFile, errors: &mut Vec<String>) {
    let (_, e) = build(&Section::from_file(f), &Places::from_file(f));
    errors.extend(e);
}

/// Build the snapshot, collecting every problem. What is wrong is left out of the
/// snapshot, so a registry can still serve what is right.
pub(crate) fn build(s: &Section, places: &Places) -> (People, Vec<String>) {
    let mut e = Vec::new();
    let timezone = match &s.timezone {
        None => None,
        Some(name) => match name.parse::<Tz>() {
            Ok(tz) => Some(tz),
            Err(_) => {
                e.push(format!(
                    "timezone: unknown time zone `{}`; expected an IANA name such as Asia/Shanghai",
                    short(name)
                ));
                None
            }
        },
    };
    let tz = timezone.unwrap_or(super::DEFAULT_TIMEZONE);
    let persons = persons(&s.people, &mut e);
    let district = s.district.as_ref().map(|d| {
        if let Err(err) = validate_id(&d.id) {
            e.push(format!("district.id: {err}"));
        }
        if let Some(p) = &d.duty_officer {
            known(&persons, &mut e, "district.duty_officer", p);
        }
        District {
            id: d.id.clone(),
            name: d.name.clone(),
            duty_officer: d.duty_officer.clone(),
        }
    });
    let mut heads = HashMap::new();
    for (k, station, p) in &s.heads {
        if known(&persons, &mut e, k, p) {
            heads.insert(station.clone(), p.clone());
        }
    }
    let mut duty_officers = HashMap::new();
    for (k, street, p) in &s.duty_officers {
        if known(&persons, &mut e, k, p) {
            duty_officers.insert(street.clone(), p.clone());
        }
    }
    let crews = crews(s, places, &persons, &mut e);
    let captains = captains(s, places, &persons, &mut e);
    let grid_cells = grid_cells(s, places, &persons, &mut e);
    let rotas = rotas(s, places, &persons, tz, &mut e);
    let compounds = compounds(s, places, &mut e);
    let people = People {
        persons,
        timezone,
        crews,
        heads,
        captains,
        grid_cells,
        duty_officers,
        district,
        rotas,
        compounds,
        buildings: places.buildings.clone(),
    };
    (people, e)
}

type Persons = BTreeMap<String, Person>;

/// Whether `id` is a known person; pushes the problem under `key` when not.
fn known(persons: &Persons, e: &mut Vec<String>, key: &str, id: &str) -> bool {
    let ok = persons.contains_key(id);
    if !ok {
        e.push(format!("{key}: unknown person `{}`", short(id)));
    }
    ok
}

fn persons(people: &[PersonDef], e: &mut Vec<String>) -> Persons {
    let mut persons = BTreeMap::new();
    for (i, p) in people.iter().enumerate() {
        let k = format!("people[{i}]");
        if let Err(err) = validate_id(&p.id) {
            e.push(format!("{k}.id: {err}"));
        }
        if persons.contains_key(&p.id) {
            e.push(format!("{k}.id: duplicate id `{}`", short(&p.id)));
            continue;
        }
        if !printable(&p.name, 100) {
            e.push(format!("{k}.name: 1 to 100 printable characters"));
        }
        if let Some(ph) = &p.phone {
            let ok = ph.chars().filter(char::is_ascii_digit).count() >= 3
                && ph.len() <= 32
                && ph
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-()".contains(c));
            if !ok {
                e.push(format!(
                    "{k}.phone: digits with optional + - ( ) and spaces, at most 32 characters"
                ));
            }
        }
        if let Some(m) = &p.email {
            let ok = printable(m, 254)
                && !m.contains(char::is_whitespace)
                && m.split_once('@')
                    .is_some_and(|(a, b)| !a.is_empty() && b.contains('.'));
            if !ok {
                e.push(format!("{k}.email: not an email address"));
            }
        }
        let mut seen = HashSet::new();
        for c in &p.channels {
            if !printable(c, 64) || c.contains(char::is_whitespace) {
                e.push(format!(
                    "{k}.channels: `{}` is not a channel name",
                    short(c)
                ));
            } else if !seen.insert(c) {
                e.push(format!("{k}.channels: `{c}` given twice"));
            }
        }
        persons.insert(
            p.id.clone(),
            Person {
                id: p.id.clone(),
                name: p.name.clone(),
                phone: p.phone.clone(),
                email: p.email.clone(),
                channels: p.channels.clone(),
            },
        );
    }
    persons
}

fn crews(s: &Section, places: &Places, persons: &Persons, e: &mut Vec<String>) -> Vec<Crew> {
    let mut crews = Vec::new();
    let mut crew_ids = HashSet::new();
    for (i, c) in s.crews.iter().enumerate() {
        let k = format!("crews[{i}]");
        if let Err(err) = validate_id(&c.id) {
            e.push(format!("{k}.id: {err}"));
        }
        if !crew_ids.insert(c.id.clone()) {
            e.push(format!("{k}.id: duplicate id `{}`", short(&c.id)));
        }
        if !places.stations.contains(&c.station) {
            e.push(format!(
                "{k}.station: unknown station `{}`",
                short(&c.station)
            ));
        }
        let mut members = Vec::new();
        for m in &c.members {
            if known(persons, e, &format!("{k}.members"), m) && !members.contains(m) {
                members.push(m.clone());
            }
        }
        crews.push(Crew {
            id: c.id.clone(),
            name: c.name.clone(),
            station: c.station.clone(),
            members,
        });
    }
    crews
}

fn captains(
    s: &Section,
    places: &Places,
    persons: &Persons,
    e: &mut Vec<String>,
) -> BTreeMap<String, Vec<String>> {
    let mut captains: BTreeMap<String, Vec<String>> = Default::default();
    for (i, c) in s.captains.iter().enumerate() {
        let k = format!("captains[{i}]");
        let ok = known(persons, e, &format!("{k}.person"), &c.person);
        if c.buildings.is_empty() {
            e.push(format!("{k}.buildings: name at least one building"));
        }
        for b in &c.buildings {
            if !places.buildings.contains_key(b) {
                e.push(format!("{k}.buildings: unknown building `{}`", short(b)));
            } else if ok {
                let v = captains.entry(b.clone()).or_default();
                if !v.contains(&c.person) {
                    v.push(c.person.clone());
                }
            }
        }
    }
    captains
}

fn grid_cells(
    s: &Section,
    places: &Places,
    persons: &Persons,
    e: &mut Vec<String>,
) -> Vec<GridCell> {
    let mut grid_cells = Vec::new();
    let mut cell_ids = HashSet::new();
    let mut cell_of: HashMap<String, String> = HashMap::new();
    for (i, g) in s.grid_cells.iter().enumerate() {
        let k = format!("grid_cells[{i}]");
        if let Err(err) = validate_id(&g.id) {
            e.push(format!("{k}.id: {err}"));
        }
        if !cell_ids.insert(g.id.clone()) {
            e.push(format!("{k}.id: duplicate id `{}`", short(&g.id)));
        }
        if !places.streets.contains(&g.street) {
            e.push(format!("{k}.street: unknown street `{}`", short(&g.street)));
        }
        if let Some(m) = &g.manager {
            known(persons, e, &format!("{k}.manager"), m);
        }
        for c in &g.compounds {
            match places.compounds.get(c) {
                None => e.push(format!("{k}.compounds: unknown compound `{}`", short(c))),
                Some((street, _)) if *street != g.street => e.push(format!(
                    "{k}.compounds: compound `{c}` is on street `{street}`, not `{}`",
                    g.street
                )),
                Some(_) => {}
            }
            if let Some(other) = cell_of.insert(c.clone(), g.id.clone()) {
                e.push(format!(
                    "{k}.compounds: compound `{c}` is already in grid cell `{other}`; a compound belongs to one grid cell"
                ));
            }
        }
        grid_cells.push(GridCell {
            id: g.id.clone(),
            name: g.name.clone(),
            street: g.street.clone(),
            manager: g.manager.clone(),
            compounds: g.compounds.clone(),
        });
    }
    grid_cells
}

fn rotas(
    s: &Section,
    places: &Places,
    persons: &Persons,
    tz: Tz,
    e: &mut Vec<String>,
) -> HashMap<String, rota::Rota> {
    let mut rotas = HashMap::new();
    let mut rota_index: HashMap<&str, usize> = HashMap::new();
    for (i, r) in s.rotas.iter().enumerate() {
        let k = format!("rotas[{i}]");
        if !places.stations.contains(&r.station) {
            e.push(format!(
                "{k}.station: unknown station `{}`",
                short(&r.station)
            ));
        }
        if let Some(j) = rota_index.insert(&r.station, i) {
            e.push(format!(
                "{k}.station: station `{}` already has rotas[{j}]; one rota per station",
                r.station
            ));
        }
        // A shift's person need not be in one of the station's crews (stand-ins), but
        // must be someone the estate knows.
        for (j, sh) in r.shifts.iter().enumerate() {
            known(persons, e, &format!("{k}.shifts[{j}].person"), &sh.person);
        }
        for (j, o) in r.overrides.iter().enumerate() {
            known(persons, e, &format!("{k}.overrides[{j}].person"), &o.person);
        }
        rotas.insert(r.station.clone(), rota::compile(r, &k, tz, e));
    }
    rotas
}

fn compounds(
    s: &Section,
    places: &Places,
    e: &mut Vec<String>,
) -> BTreeMap<String, CompoundPeople> {
    let mut compounds = BTreeMap::new();
    for (id, (street, station)) in &places.compounds {
        compounds.insert(
            id.clone(),
            CompoundPeople {
                id: id.clone(),
                street: street.clone(),
                station: station.clone(),
                management: Management::None,
                takeover_date: None,
            },
        );
    }
    for (k, id, m, date) in &s.management {
        let date = date.as_ref().and_then(|d| {
            let parsed = NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
            if parsed.is_none() {
                e.push(format!(
                    "{k}.takeover_date: `{}` is not a date YYYY-MM-DD",
                    short(d)
                ));
            }
            parsed
        });
        if let Some(c) = compounds.get_mut(id) {
            c.management = *m;
            c.takeover_date = date;
        }
    }
    compounds
}

fn printable(v: &str, max: usize) -> bool {
    !v.trim().is_empty() && v.chars().count() <= max && !v.chars().any(char::is_control)
}

fn short(s: &str) -> String {
    s.chars().take(64).collect()
}
