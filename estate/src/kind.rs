use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The four device kinds of contract v1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Smoke,
    Pump,
    Lift,
    Gate,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 4] = [
        DeviceKind::Smoke,
        DeviceKind::Pump,
        DeviceKind::Lift,
        DeviceKind::Gate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Smoke => "smoke",
            DeviceKind::Pump => "pump",
            DeviceKind::Lift => "lift",
            DeviceKind::Gate => "gate",
        }
    }

    /// QuestDB table holding this kind's telemetry.
    pub fn table(self) -> &'static str {
        match self {
            DeviceKind::Smoke => "smoke_telemetry",
            DeviceKind::Pump => "pump_telemetry",
            DeviceKind::Lift => "lift_telemetry",
            DeviceKind::Gate => "gate_telemetry",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "smoke" => Ok(DeviceKind::Smoke),
            "pump" => Ok(DeviceKind::Pump),
            "lift" => Ok(DeviceKind::Lift),
            "gate" => Ok(DeviceKind::Gate),
            other => Err(format!(
                "unknown device kind `{other}` (expected smoke, pump, lift or gate)"
            )),
        }
    }
}

/// Identifiers of devices, gateways, compounds, ... share one alphabet so that they can
/// be used as a single MQTT topic level and as a QuestDB symbol without escaping.
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("identifier is empty".into());
    }
    if id.len() > 64 {
        // Cut on a character boundary: ids come from MQTT topics and may be any UTF-8.
        let head: String = id.chars().take(32).collect();
        return Err(format!("identifier `{head}…` is longer than 64 bytes"));
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '.'))
    {
        return Err(format!(
            "identifier `{id}` contains `{c}`; allowed are ASCII letters, digits, `-`, `_` and `.`"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("lift-0001").is_ok());
        assert!(validate_id("a/b").is_err());
        assert!(validate_id("+").is_err());
        assert!(validate_id("").is_err());
        assert!(validate_id(&"x".repeat(65)).is_err());
    }

    #[test]
    fn long_non_ascii_id_is_refused_without_panicking() {
        // Found by fuzz target `topic`: byte 32 fell inside a two-byte character.
        let id = format!("{}ļ{}", "a".repeat(31), "b".repeat(40));
        let e = validate_id(&id).unwrap_err();
        assert!(e.contains("longer than 64 bytes"), "{e}");
        assert!(e.contains(&format!("{}ļ", "a".repeat(31))), "{e}");
    }

    #[test]
    fn kinds_round_trip() {
        for k in DeviceKind::ALL {
            assert_eq!(k.as_str().parse::<DeviceKind>().unwrap(), k);
        }
        assert!("fridge".parse::<DeviceKind>().is_err());
    }
}
