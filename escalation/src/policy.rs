//! The escalation policy: per priority, who is told at raise and who next after each
//! interval without an acknowledgement, and how often each tier is reminded. Kept in its
//! own TOML file (hot reloaded like rules); every problem names file, key and reason.

use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use steward_tickets::Priority;

use crate::EscalationError;

/// Who a tier reaches, resolved against the estate's people when the step is due.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Audience {
    /// Whoever the station's rota has on call at the step's time.
    OnCall,
    /// Every member of the station's crews.
    Crew,
    /// The building captains of the ticket's building.
    Captains,
    StationHead,
    /// The manager of the grid cell the compound belongs to.
    GridManager,
    /// The street platform's duty officer.
    StreetDutyOfficer,
    /// The district's duty officer.
    District,
    /// One named person of the estate.
    Person(String),
}

impl Audience {
    pub fn parse(s: &str) -> Option<Audience> {
        Some(match s {
            "on_call" => Audience::OnCall,
            "crew" => Audience::Crew,
            "captains" => Audience::Captains,
            "station_head" => Audience::StationHead,
            "grid_manager" => Audience::GridManager,
            "street_duty_officer" => Audience::StreetDutyOfficer,
            "district" => Audience::District,
            _ => {
                let id = s.strip_prefix("person:")?;
                if id.is_empty() {
                    return None;
                }
                Audience::Person(id.to_string())
            }
        })
    }

    pub fn as_string(&self) -> String {
        match self {
            Audience::OnCall => "on_call".into(),
            Audience::Crew => "crew".into(),
            Audience::Captains => "captains".into(),
            Audience::StationHead => "station_head".into(),
            Audience::GridManager => "grid_manager".into(),
            Audience::StreetDutyOfficer => "street_duty_officer".into(),
            Audience::District => "district".into(),
            Audience::Person(id) => format!("person:{id}"),
        }
    }
}

pub const AUDIENCE_NAMES: &str = "on_call, crew, captains, station_head, grid_manager, \
     street_duty_officer, district, person:<id>";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierDef {
    /// Time after the ticket opened at which this tier is told.
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    /// Audiences (see [`AUDIENCE_NAMES`]).
    pub notify: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriorityPolicy {
    /// Every tier already told is reminded this often until the ticket is acknowledged;
    /// `0s` sends no reminders.
    #[serde(with = "humantime_serde", default = "default_repeat")]
    pub repeat: Duration,
    #[serde(default)]
    pub tiers: Vec<TierDef>,
}

fn default_repeat() -> Duration {
    Duration::from_secs(5 * 60)
}

/// The whole policy file: `[p1]`, `[p2]`, `[p3]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub p1: PriorityPolicy,
    pub p2: PriorityPolicy,
    pub p3: PriorityPolicy,
}

fn tier(after_min: u64, notify: &[&str]) -> TierDef {
    TierDef {
        after: Duration::from_secs(after_min * 60),
        notify: notify.iter().map(|s| s.to_string()).collect(),
    }
}

impl Default for PolicyFile {
    /// P1 as the street platforms run it: the on-call crew member and the building captain
    /// at once, the station head at +5 min (the P1 acknowledgement target), the street duty
    /// officer at +15 min, the district at +30 min. P2 and P3 climb along their own
    /// acknowledgement targets (30 min, 4 h).
    fn default() -> Self {
        PolicyFile {
            p1: PriorityPolicy {
                repeat: Duration::from_secs(5 * 60),
                tiers: vec![
                    tier(0, &["on_call", "captains"]),
                    tier(5, &["station_head"]),
                    tier(15, &["street_duty_officer"]),
                    tier(30, &["district"]),
                ],
            },
            p2: PriorityPolicy {
                repeat: Duration::from_secs(30 * 60),
                tiers: vec![
                    tier(0, &["on_call"]),
                    tier(30, &["station_head"]),
                    tier(4 * 60, &["street_duty_officer"]),
                ],
            },
            p3: PriorityPolicy {
                repeat: Duration::from_secs(4 * 60 * 60),
                tiers: vec![tier(0, &["on_call"]), tier(4 * 60, &["station_head"])],
            },
        }
    }
}

/// One tier, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier {
    pub after_ms: i64,
    pub audiences: Vec<Audience>,
}

/// A priority's ladder, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Ladder {
    /// 0 = no reminders.
    pub repeat_ms: i64,
    pub tiers: Vec<Tier>,
}

/// The validated policy the escalation service runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    pub p1: Ladder,
    pub p2: Ladder,
    pub p3: Ladder,
}

impl Default for Policy {
    fn default() -> Self {
        // The built-in file is valid by construction (a unit test holds it to that).
        Policy::from_file(&PolicyFile::default(), "default policy", &|_| true).unwrap_or(Policy {
            p1: Ladder::empty(),
            p2: Ladder::empty(),
            p3: Ladder::empty(),
        })
    }
}

impl Ladder {
    fn empty() -> Ladder {
        Ladder {
            repeat_ms: 0,
            tiers: Vec::new(),
        }
    }
}

/// Reminders closer than this would page people faster than they can answer.
const MIN_REPEAT: Duration = Duration::from_secs(30);

impl Policy {
    pub fn ladder(&self, p: Priority) -> &Ladder {
        match p {
            Priority::P1 => &self.p1,
            Priority::P2 => &self.p2,
            Priority::P3 => &self.p3,
        }
    }

    /// Every person the policy names, for checks against the estate.
    pub fn named_people(&self) -> BTreeSet<String> {
        [&self.p1, &self.p2, &self.p3]
            .into_iter()
            .flat_map(|l| l.tiers.iter())
            .flat_map(|t| t.audiences.iter())
            .filter_map(|a| match a {
                Audience::Person(id) => Some(id.clone()),
                _ => None,
            })
            .collect()
    }

    /// Validate a parsed file; `source` names it in messages and `person_exists` checks
    /// `person:<id>` audiences against the estate.
    pub fn from_file(
        f: &PolicyFile,
        source: &str,
        person_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Policy, EscalationError> {
        let mut errors = Vec::new();
        let mut ladder = |key: &str, p: &PriorityPolicy| {
            let mut tiers = Vec::new();
            if p.repeat != Duration::ZERO && p.repeat < MIN_REPEAT {
                errors.push(format!(
                    "{source}: {key}.repeat: must be 0s (no reminders) or at least 30s"
                ));
            }
            let mut last = Duration::ZERO;
            for (i, t) in p.tiers.iter().enumerate() {
                let at = format!("{source}: {key}.tiers[{i}]");
                if i > 0 && t.after <= last {
                    errors.push(format!(
                        "{at}.after: must be later than the tier before ({})",
                        humantime::format_duration(last)
                    ));
                }
                last = t.after;
                if t.notify.is_empty() {
                    errors.push(format!("{at}.notify: must name at least one audience"));
                }
                let mut audiences = Vec::new();
                for (j, n) in t.notify.iter().enumerate() {
                    match Audience::parse(n.trim()) {
                        Some(Audience::Person(id)) if !person_exists(&id) => errors.push(format!(
                            "{at}.notify[{j}]: unknown person `{id}` (not in the estate)"
                        )),
                        Some(a) if audiences.contains(&a) => {
                            errors.push(format!("{at}.notify[{j}]: `{n}` is named twice"))
                        }
                        Some(a) => audiences.push(a),
                        None => errors.push(format!(
                            "{at}.notify[{j}]: unknown audience `{n}` (one of {AUDIENCE_NAMES})"
                        )),
                    }
                }
                tiers.push(Tier {
                    after_ms: t.after.as_millis().min(i64::MAX as u128) as i64,
                    audiences,
                });
            }
            Ladder {
                repeat_ms: p.repeat.as_millis().min(i64::MAX as u128) as i64,
                tiers,
            }
        };
        let policy = Policy {
            p1: ladder("p1", &f.p1),
            p2: ladder("p2", &f.p2),
            p3: ladder("p3", &f.p3),
        };
        if errors.is_empty() {
            Ok(policy)
        } else {
            Err(EscalationError::Policy(errors))
        }
    }

    /// Parse and validate a policy document.
    pub fn parse(
        text: &str,
        source: &str,
        person_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Policy, EscalationError> {
        let de = toml::Deserializer::parse(text)
            .map_err(|e| EscalationError::Policy(vec![format!("{source}: {e}")]))?;
        let file: PolicyFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = inner.lines().last().unwrap_or("").trim().to_string();
            EscalationError::Policy(vec![format!("{source}: {path}: {inner}")])
        })?;
        Policy::from_file(&file, source, person_exists)
    }

    pub fn load(
        path: &Path,
        person_exists: &dyn Fn(&str) -> bool,
    ) -> Result<Policy, EscalationError> {
        let text = std::fs::read_to_string(path).map_err(|source| EscalationError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Policy::parse(&text, &path.display().to_string(), person_exists)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anyone(_: &str) -> bool {
        true
    }

    #[test]
    fn the_default_policy_is_valid_and_climbs_as_documented() {
        let p = Policy::from_file(&PolicyFile::default(), "default", &anyone).unwrap();
        let after: Vec<i64> = p.p1.tiers.iter().map(|t| t.after_ms / 60_000).collect();
        assert_eq!(after, vec![0, 5, 15, 30]);
        assert_eq!(
            p.p1.tiers[0].audiences,
            vec![Audience::OnCall, Audience::Captains]
        );
        assert_eq!(p, Policy::default());
    }

    #[test]
    fn every_problem_names_file_key_and_reason() {
        let text = r#"
[p1]
repeat = "10s"
tiers = [
  { after = "0s", notify = ["on_call", "janitor"] },
  { after = "0s", notify = [] },
  { after = "5m", notify = ["person:p-nobody", "crew", "crew"] },
]
[p2]
tiers = []
[p3]
tiers = []
"#;
        let known = |id: &str| id == "p-wang";
        let e = Policy::parse(text, "esc.toml", &known)
            .unwrap_err()
            .to_string();
        for want in [
            "esc.toml: p1.repeat: must be 0s",
            "esc.toml: p1.tiers[0].notify[1]: unknown audience `janitor`",
            "esc.toml: p1.tiers[1].after: must be later",
            "esc.toml: p1.tiers[1].notify: must name at least one",
            "esc.toml: p1.tiers[2].notify[0]: unknown person `p-nobody`",
            "esc.toml: p1.tiers[2].notify[2]: `crew` is named twice",
        ] {
            assert!(e.contains(want), "missing `{want}` in {e}");
        }
        let e = Policy::parse("[p1]\nrepeet = \"5m\"\n", "esc.toml", &known)
            .unwrap_err()
            .to_string();
        assert!(e.contains("esc.toml: p1") && e.contains("repeet"), "{e}");
        let e = Policy::parse("[p1]\n[p2]\n", "esc.toml", &known)
            .unwrap_err()
            .to_string();
        assert!(e.contains("p3"), "{e}");
    }
}
