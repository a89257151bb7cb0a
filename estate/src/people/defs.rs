//! The estate file's people sections (issue 13): people, crews, rotas, building captains,
//! grid cells, the district, and the fields stations, streets and compounds gain.

use serde::{Deserialize, Serialize};

/// Someone the hub may have to reach: a crew member, a station head, a captain, a duty
/// officer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonDef {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Names of the notification endpoints the person is reached on (hub config).
    #[serde(default)]
    pub channels: Vec<String>,
}

/// The district above the streets; its duty officer is the last escalation tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DistrictDef {
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duty_officer: Option<String>,
}

/// A crew of a station: the people dispatched to its tickets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrewDef {
    pub id: String,
    pub name: String,
    pub station: String,
    #[serde(default)]
    pub members: Vec<String>,
}

/// A grid cell: compounds of one street looked after by a grid manager.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridCellDef {
    pub id: String,
    pub name: String,
    pub street: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    #[serde(default)]
    pub compounds: Vec<String>,
}

/// A building captain: a volunteer first on the scene in the named buildings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptainDef {
    pub person: String,
    pub buildings: Vec<String>,
}

/// The on-call rota of one station: a weekly pattern and dated overrides, in the estate's
/// time zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotaDef {
    pub station: String,
    #[serde(default)]
    pub shifts: Vec<ShiftDef>,
    #[serde(default)]
    pub overrides: Vec<OverrideDef>,
}

/// One weekly shift: on the named days from `start` to `end` (local `HH:MM`); an end at
/// or before the start runs past midnight into the next day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftDef {
    /// `mon` .. `sun`.
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
    pub person: String,
}

/// A dated override, local `YYYY-MM-DDTHH:MM` from (inclusive) to (exclusive): it wins
/// over the weekly pattern.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverrideDef {
    pub from: String,
    pub to: String,
    pub person: String,
}

/// Who manages a compound; the street's coverage report counts compounds by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Management {
    PropertyCompany,
    SelfManaged,
    StateFallback,
    None,
}

impl Management {
    pub const ALL: [Management; 4] = [
        Management::PropertyCompany,
        Management::SelfManaged,
        Management::StateFallback,
        Management::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Management::PropertyCompany => "property_company",
            Management::SelfManaged => "self_managed",
            Management::StateFallback => "state_fallback",
            Management::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Management> {
        Management::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

impl std::fmt::Display for Management {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
