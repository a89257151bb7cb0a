//! The hub's configuration file (`steward.toml`): typed, with every section's defaults,
//! and validated at start-up so an error names the key at fault.

use crate::HubError;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use steward_api::ApiConfig;
use steward_broker::BrokerConfig;
use steward_cluster::ClusterConfig;
use steward_escalation::EscalationConfig;
use steward_ingest::IngestConfig;
use steward_notify::NotifyConfig;
use steward_rounds::RoundsConfig;
use steward_rules::RulesConfig;
use steward_storage::questdb::QuestDbConfig;

mod sample;
pub use sample::sample_config;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EstateConfig {
    /// Estate file loaded into the registry at start-up (optional once the database exists).
    pub file: Option<PathBuf>,
    /// SQLite database of the estate registry.
    pub database: PathBuf,
}

impl Default for EstateConfig {
    fn default() -> Self {
        EstateConfig {
            file: Some(PathBuf::from("estate.toml")),
            database: PathBuf::from("var/steward.db"),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubConfig {
    pub estate: EstateConfig,
    pub broker: BrokerConfig,
    pub ingest: IngestConfig,
    pub questdb: QuestDbConfig,
    pub api: ApiConfig,
    pub rules: RulesConfig,
    /// Notification endpoints (webhooks, WeCom, DingTalk, SMTP, SMS gateway) and the outbox.
    pub notify: NotifyConfig,
    /// Escalation to people: policy file, acknowledgement links.
    pub escalation: EscalationConfig,
    pub rounds: RoundsConfig,
    /// Cluster mode (Kafka, PostgreSQL): this node's role; `single` is one machine.
    pub cluster: ClusterConfig,
}

impl HubConfig {
    /// Parse a TOML document; a type or unknown-key error names the key's full path.
    pub fn parse(text: &str) -> Result<HubConfig, HubError> {
        let de =
            toml::Deserializer::parse(text).map_err(|e| HubError::Config(vec![e.to_string()]))?;
        let cfg: HubConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner().to_string();
            let inner = inner.lines().last().unwrap_or("").trim().to_string();
            HubError::Config(vec![format!("{path}: {inner}")])
        })?;
        Ok(cfg)
    }

    /// Read, parse and validate; relative paths are taken from the file's directory.
    pub fn load(path: &Path) -> Result<HubConfig, HubError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| HubError::Config(vec![format!("cannot read {}: {e}", path.display())]))?;
        let mut cfg = Self::parse(&text).map_err(|e| match e {
            HubError::Config(v) => HubError::Config(
                v.into_iter()
                    .map(|m| format!("{}: {m}", path.display()))
                    .collect(),
            ),
            other => other,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(f) = &cfg.estate.file {
            if f.is_relative() {
                cfg.estate.file = Some(base.join(f));
            }
        }
        if let Some(r) = &cfg.questdb.managed.root {
            if r.is_relative() {
                cfg.questdb.managed.root = Some(base.join(r));
            }
        }
        if cfg.rules.database.is_relative() {
            cfg.rules.database = base.join(&cfg.rules.database);
        }
        if let Some(r) = &cfg.rules.rules {
            if r.is_relative() {
                cfg.rules.rules = Some(base.join(r));
            }
        }
        if let Some(r) = &cfg.rounds.schedules {
            if r.is_relative() {
                cfg.rounds.schedules = Some(base.join(r));
            }
        }
        if let Some(r) = &cfg.rounds.database {
            if r.is_relative() {
                cfg.rounds.database = Some(base.join(r));
            }
        }
        if cfg.estate.database.is_relative() {
            cfg.estate.database = base.join(&cfg.estate.database);
        }
        for p in [&mut cfg.broker.tls_cert, &mut cfg.broker.tls_key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if cfg.api.photo_dir.is_relative() {
            cfg.api.photo_dir = base.join(&cfg.api.photo_dir);
        }
        if cfg.ingest.spool_dir.is_relative() {
            cfg.ingest.spool_dir = base.join(&cfg.ingest.spool_dir);
        }
        for p in [
            &mut cfg.notify.outbox.database,
            &mut cfg.escalation.database,
        ] {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        if let Some(p) = &cfg.escalation.policy {
            if p.is_relative() {
                cfg.escalation.policy = Some(base.join(p));
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Every problem at once, each naming its key.
    pub fn validate(&self) -> Result<(), HubError> {
        let mut errors = Vec::new();
        errors.extend(self.broker.validate());
        errors.extend(self.ingest.validate());
        errors.extend(self.questdb.validate());
        errors.extend(self.api.validate());
        errors.extend(self.rules.validate());
        errors.extend(self.notify.validate());
        errors.extend(self.escalation.validate());
        errors.extend(self.rounds.validate());
        errors.extend(self.cluster.validate());
        if self.cluster.role != steward_cluster::Role::Single
            && self.questdb.mode != steward_storage::questdb::QuestDbMode::External
        {
            errors.push(
                "questdb.mode: cluster nodes share one QuestDB: set `external` and \
                 questdb.http_addr"
                    .into(),
            );
        }
        if self.ingest.max_payload_bytes >= self.broker.max_payload_bytes {
            errors.push(format!(
                "ingest.max_payload_bytes: must be below broker.max_payload_bytes ({}) so an \
                 oversize payload reaches ingest and gets a reject reason",
                self.broker.max_payload_bytes
            ));
        }
        if self.estate.database.as_os_str().is_empty() {
            errors.push("estate.database: must not be empty".into());
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(HubError::Config(errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_key() {
        let e = HubConfig::parse("[broker]\nmax_inflight = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("broker.max_inflight"), "{e}");
        let e = HubConfig::parse("[ingest]\nbatch_rowz = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("batch_rowz"), "{e}");
        let mut cfg = HubConfig::default();
        cfg.ingest.batch_rows = 0;
        cfg.questdb.mode = steward_storage::questdb::QuestDbMode::External;
        let e = cfg.validate().unwrap_err().to_string();
        assert!(e.contains("ingest.batch_rows"), "{e}");
        assert!(e.contains("questdb.http_addr"), "{e}");
    }
}
