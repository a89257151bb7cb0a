//! Everything QuestDB: the managed server, the `/exec` client, the table schema and ILP rows.

pub mod client;
pub mod ilp;
pub mod retention;
pub mod schema;
pub mod server;

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

pub use client::{QueryResult, QuestDbClient};
pub use retention::RetentionConfig;
pub use server::{ManagedConfig, ManagedQuestDb, QUESTDB_VERSION};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuestDbMode {
    /// The hub starts QuestDB as a child process and stops it on exit.
    Managed,
    /// QuestDB runs elsewhere; the hub connects to `http_addr`.
    External,
}

/// `[questdb]` section of the hub configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QuestDbConfig {
    pub mode: QuestDbMode,
    /// HTTP address (ILP and `/exec`) in external mode.
    pub http_addr: Option<SocketAddr>,
    pub managed: ManagedConfig,
    /// How long each table keeps its rows (QuestDB TTLs).
    pub retention: RetentionConfig,
}

impl Default for QuestDbConfig {
    fn default() -> Self {
        QuestDbConfig {
            mode: QuestDbMode::Managed,
            http_addr: None,
            managed: ManagedConfig::default(),
            retention: RetentionConfig::default(),
        }
    }
}

impl QuestDbConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        match self.mode {
            QuestDbMode::External if self.http_addr.is_none() => {
                e.push("questdb.http_addr: required when questdb.mode = \"external\"".into())
            }
            QuestDbMode::Managed if self.http_addr.is_some() => e.push(
                "questdb.http_addr: only for external mode; managed mode picks its own ports"
                    .into(),
            ),
            _ => {}
        }
        if !self.managed.version.starts_with("9.") && !self.managed.version.starts_with("10.") {
            e.push(format!(
                "questdb.managed.version: `{}` is not a supported QuestDB version (9.x)",
                self.managed.version
            ));
        }
        let heap = self.managed.max_heap.trim_end_matches(['m', 'g', 'M', 'G']);
        if heap.is_empty() || heap.parse::<u32>().is_err() {
            e.push("questdb.managed.max_heap: expected a size like `512m` or `1g`".into());
        }
        e.extend(server::settings_errors(&self.managed.settings));
        e.extend(self.managed.pg_errors());
        e.extend(self.retention.validate());
        e
    }
}

/// Whether an address is reachable as QuestDB; used by readiness checks.
pub fn reachable(addr: SocketAddr) -> bool {
    server::ping(addr)
}
