//! The people model in the registry database. The estate file is its only writer, so each
//! apply replaces these tables as a whole (someone removed from the file is gone), unlike
//! devices, whose API changes survive a re-apply. Lists are JSON text: they are read
//! whole, never queried by element.

use super::defs::*;
use super::validate::{build, Places, Section};
use super::People;
use crate::file::EstateFile;
use crate::EstateError;
use rusqlite::{params, Connection, Transaction};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub(crate) const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS estate_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id TEXT PRIMARY KEY, pos INTEGER NOT NULL, name TEXT NOT NULL, phone TEXT, email TEXT,
    channels TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS crews (
    id TEXT PRIMARY KEY, pos INTEGER NOT NULL, name TEXT NOT NULL, station TEXT NOT NULL,
    members TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS grid_cells (
    id TEXT PRIMARY KEY, pos INTEGER NOT NULL, name TEXT NOT NULL, street TEXT NOT NULL,
    manager TEXT, compounds TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS captains (
    pos INTEGER PRIMARY KEY, person TEXT NOT NULL, buildings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS rotas (
    station TEXT PRIMARY KEY, pos INTEGER NOT NULL, shifts TEXT NOT NULL,
    overrides TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS station_heads (station TEXT PRIMARY KEY, person TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS street_duty_officers (
    street TEXT PRIMARY KEY, person TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS compound_management (
    compound TEXT PRIMARY KEY, management TEXT NOT NULL, takeover_date TEXT
);
"#;

const TABLES: [&str; 9] = [
    "estate_settings",
    "people",
    "crews",
    "grid_cells",
    "captains",
    "rotas",
    "station_heads",
    "street_duty_officers",
    "compound_management",
];

fn json<T: Serialize>(v: &T) -> Result<String, EstateError> {
    serde_json::to_string(v).map_err(|e| EstateError::Corrupt(format!("people: {e}")))
}

fn from_json<T: DeserializeOwned>(what: &str, s: &str) -> rusqlite::Result<T> {
    serde_json::from_str(s).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            0,
            rusqlite::types::Type::Text,
            Box::new(EstateError::Corrupt(format!("{what}: {e}"))),
        )
    })
}

/// Replace the people tables with what `file` says (already validated).
pub(crate) fn write(tx: &Transaction, file: &EstateFile) -> Result<(), EstateError> {
    for t in TABLES {
        // `t` is one of the fixed names above, never input.
        tx.execute(&format!("DELETE FROM {t}"), [])?;
    }
    let s = Section::from_file(file);
    if let Some(tz) = &s.timezone {
        tx.execute(
            "INSERT INTO estate_settings(key,value) VALUES('timezone',?1)",
            [tz],
        )?;
    }
    if let Some(d) = &s.district {
        tx.execute(
            "INSERT INTO estate_settings(key,value) VALUES('district',?1)",
            [json(d)?],
        )?;
    }
    for (i, p) in s.people.iter().enumerate() {
        tx.execute(
            "INSERT INTO people(id,pos,name,phone,email,channels) VALUES(?1,?2,?3,?4,?5,?6)",
            params![p.id, i as i64, p.name, p.phone, p.email, json(&p.channels)?],
        )?;
    }
    for (i, c) in s.crews.iter().enumerate() {
        tx.execute(
            "INSERT INTO crews(id,pos,name,station,members) VALUES(?1,?2,?3,?4,?5)",
            params![c.id, i as i64, c.name, c.station, json(&c.members)?],
        )?;
    }
    for (i, g) in s.grid_cells.iter().enumerate() {
        tx.execute(
            "INSERT INTO grid_cells(id,pos,name,street,manager,compounds)
             VALUES(?1,?2,?3,?4,?5,?6)",
            params![
                g.id,
                i as i64,
                g.name,
                g.street,
                g.manager,
                json(&g.compounds)?
            ],
        )?;
    }
    for (i, c) in s.captains.iter().enumerate() {
        tx.execute(
            "INSERT INTO captains(pos,person,buildings) VALUES(?1,?2,?3)",
            params![i as i64, c.person, json(&c.buildings)?],
        )?;
    }
    for (i, r) in s.rotas.iter().enumerate() {
        tx.execute(
            "INSERT INTO rotas(station,pos,shifts,overrides) VALUES(?1,?2,?3,?4)",
            params![r.station, i as i64, json(&r.shifts)?, json(&r.overrides)?],
        )?;
    }
    for (_, station, p) in &s.heads {
        tx.execute(
            "INSERT INTO station_heads(station,person) VALUES(?1,?2)",
            params![station, p],
        )?;
    }
    for (_, street, p) in &s.duty_officers {
        tx.execute(
            "INSERT INTO street_duty_officers(street,person) VALUES(?1,?2)",
            params![street, p],
        )?;
    }
    for (_, compound, m, date) in &s.management {
        tx.execute(
            "INSERT INTO compound_management(compound,management,takeover_date)
             VALUES(?1,?2,?3)",
            params![compound, m.as_str(), date],
        )?;
    }
    Ok(())
}

fn rows<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Result<Vec<T>, EstateError> {
    let mut st = conn.prepare(sql)?;
    let v = st.query_map([], f)?.collect::<Result<Vec<_>, _>>()?;
    Ok(v)
}

/// Rebuild the snapshot from the database.
pub(crate) fn load(conn: &Connection) -> Result<People, EstateError> {
    let setting = |key: &str| -> Result<Option<String>, EstateError> {
        use rusqlite::OptionalExtension;
        Ok(conn
            .query_row(
                "SELECT value FROM estate_settings WHERE key=?1",
                [key],
                |r| r.get(0),
            )
            .optional()?)
    };
    let district = match setting("district")? {
        Some(d) => Some(
            serde_json::from_str::<DistrictDef>(&d)
                .map_err(|e| EstateError::Corrupt(format!("district: {e}")))?,
        ),
        None => None,
    };
    let s = Section {
        timezone: setting("timezone")?,
        district,
        people: rows(
            conn,
            "SELECT id,name,phone,email,channels FROM people ORDER BY pos",
            |r| {
                Ok(PersonDef {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    phone: r.get(2)?,
                    email: r.get(3)?,
                    channels: from_json("people.channels", &r.get::<_, String>(4)?)?,
                })
            },
        )?,
        crews: rows(
            conn,
            "SELECT id,name,station,members FROM crews ORDER BY pos",
            |r| {
                Ok(CrewDef {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    station: r.get(2)?,
                    members: from_json("crews.members", &r.get::<_, String>(3)?)?,
                })
            },
        )?,
        grid_cells: rows(
            conn,
            "SELECT id,name,street,manager,compounds FROM grid_cells ORDER BY pos",
            |r| {
                Ok(GridCellDef {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    street: r.get(2)?,
                    manager: r.get(3)?,
                    compounds: from_json("grid_cells.compounds", &r.get::<_, String>(4)?)?,
                })
            },
        )?,
        captains: rows(
            conn,
            "SELECT person,buildings FROM captains ORDER BY pos",
            |r| {
                Ok(CaptainDef {
                    person: r.get(0)?,
                    buildings: from_json("captains.buildings", &r.get::<_, String>(1)?)?,
                })
            },
        )?,
        rotas: rows(
            conn,
            "SELECT station,shifts,overrides FROM rotas ORDER BY pos",
            |r| {
                Ok(RotaDef {
                    station: r.get(0)?,
                    shifts: from_json("rotas.shifts", &r.get::<_, String>(1)?)?,
                    overrides: from_json("rotas.overrides", &r.get::<_, String>(2)?)?,
                })
            },
        )?,
        heads: rows(conn, "SELECT station,person FROM station_heads", |r| {
            Ok(("station_heads".into(), r.get(0)?, r.get(1)?))
        })?,
        duty_officers: rows(
            conn,
            "SELECT street,person FROM street_duty_officers",
            |r| Ok(("street_duty_officers".into(), r.get(0)?, r.get(1)?)),
        )?,
        management: rows(
            conn,
            "SELECT compound,management,takeover_date FROM compound_management",
            |r| {
                let m: String = r.get(1)?;
                Ok((
                    "compound_management".into(),
                    r.get(0)?,
                    Management::parse(&m).unwrap_or(Management::None),
                    r.get(2)?,
                ))
            },
        )?,
    };
    let places = Places {
        stations: rows(conn, "SELECT id FROM stations", |r| r.get(0))?
            .into_iter()
            .collect(),
        streets: rows(conn, "SELECT id FROM streets", |r| r.get(0))?
            .into_iter()
            .collect(),
        compounds: rows(
            conn,
            "SELECT c.id, s.id, COALESCE(c.station, s.fallback_station)
             FROM compounds c JOIN communities m ON c.community=m.id
               JOIN streets s ON m.street=s.id",
            |r| Ok((r.get(0)?, (r.get(1)?, r.get(2)?))),
        )?
        .into_iter()
        .collect(),
        buildings: rows(conn, "SELECT id, compound FROM buildings", |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .into_iter()
        .collect(),
    };
    let (people, errors) = build(&s, &places);
    if !errors.is_empty() {
        // The file was checked before it was stored; what fails now was changed behind
        // the hub's back. Serve what is right and say what is not.
        tracing::warn!(problems = %errors.join("; "), "estate database: people model has problems");
    }
    Ok(people)
}
