//! The `[api]` section of the hub configuration.

use crate::intake::PublicReportsConfig;
use serde::{Deserialize, Serialize};

/// `[api]` section of the hub configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: std::net::SocketAddr,
    /// Bearer token of the admin; empty means one is generated at start-up and printed.
    pub admin_token: String,
    /// Limits of the public resident report endpoint.
    pub public_reports: PublicReportsConfig,
    /// Directory of the photos crews attach to tickets (relative: to the config file).
    pub photo_dir: std::path::PathBuf,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_token: String::new(),
            public_reports: PublicReportsConfig::default(),
            photo_dir: std::path::PathBuf::from("var/photos"),
        }
    }
}

impl ApiConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if !self.admin_token.is_empty() && self.admin_token.len() < 16 {
            e.push(
                "api.admin_token: must be at least 16 characters (or empty to generate one)".into(),
            );
        }
        e.extend(self.public_reports.validate("api.public_reports"));
        if self.photo_dir.as_os_str().is_empty() {
            e.push("api.photo_dir: must not be empty".into());
        }
        e
    }
}
