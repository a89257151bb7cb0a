//! The hub config's `[escalation]` section.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EscalationConfig {
    /// Notify people at all (tickets and their alerts on MQTT and SSE are unaffected).
    pub enabled: bool,
    /// Escalation policy file (TOML, hot reloaded); absent means the built-in policy.
    pub policy: Option<PathBuf>,
    /// SQLite database of used acknowledgement links and what was copied to the audit trail.
    pub database: PathBuf,
    /// Address people open acknowledgement links at, e.g. `https://steward.example.com`;
    /// absent means the API's own listen address (fine on a LAN, not from a phone outside).
    pub public_url: Option<String>,
    /// How long an acknowledgement link works.
    #[serde(with = "humantime_serde")]
    pub link_ttl: Duration,
    /// Key that signs acknowledgement links; absent means a random key kept in a file next
    /// to `database`, so links survive restarts.
    pub link_secret: Option<String>,
    /// How often the ladder looks for due steps.
    #[serde(with = "humantime_serde")]
    pub tick: Duration,
}

impl Default for EscalationConfig {
    fn default() -> Self {
        EscalationConfig {
            enabled: true,
            policy: None,
            database: PathBuf::from("var/escalation.db"),
            public_url: None,
            link_ttl: Duration::from_secs(24 * 3600),
            link_secret: None,
            tick: Duration::from_secs(1),
        }
    }
}

impl EscalationConfig {
    /// Problems, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if self.database.as_os_str().is_empty() {
            e.push("escalation.database: must not be empty".into());
        }
        if let Some(u) = &self.public_url {
            if !(u.starts_with("http://") || u.starts_with("https://")) || u.len() < 9 {
                e.push(format!(
                    "escalation.public_url: `{u}` must be an http:// or https:// address"
                ));
            }
        }
        if self.link_ttl < Duration::from_secs(60) {
            e.push("escalation.link_ttl: must be at least 1m".into());
        }
        if self.link_secret.as_ref().is_some_and(|s| s.len() < 16) {
            e.push("escalation.link_secret: must be at least 16 characters".into());
        }
        if self.tick < Duration::from_millis(50) || self.tick > Duration::from_secs(60) {
            e.push("escalation.tick: must be between 50ms and 60s".into());
        }
        e
    }
}
