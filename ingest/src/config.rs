use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `[ingest]` section of the hub configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// Largest payload the contract accepts; larger ones are rejected `payload_too_large`.
    pub max_payload_bytes: usize,
    /// Largest array of entries in one message.
    pub max_entries: usize,
    /// How far in the future a `ts` may be (device clocks drift).
    #[serde(with = "humantime_serde")]
    pub max_future_skew: Duration,
    /// How old a `ts` may be (store-and-forward devices replay their backlog).
    #[serde(with = "humantime_serde")]
    pub max_past_age: Duration,
    /// Rows per QuestDB batch: a full batch is flushed at once.
    pub batch_rows: usize,
    /// A batch that is not full is flushed after this long.
    #[serde(with = "humantime_serde")]
    pub flush_interval: Duration,
    /// Directory of the durable spool: every accepted row is written here before it is
    /// sent to QuestDB, and stays until QuestDB has taken it (across restarts).
    pub spool_dir: std::path::PathBuf,
    /// Size bound of the spool. When it is reached (QuestDB down for that long), ingest
    /// waits and holds devices' acknowledgements until QuestDB takes rows again (ack modes
    /// `spooled` and `synced`); with `ack = "received"` new rows are dropped instead
    /// (counted in `steward_ingest_spool_full_dropped_rows`) and decoding goes on.
    pub spool_max_bytes: u64,
    /// Sync each segment to disk when it is sealed (protects against power loss; a
    /// killed process loses nothing written either way).
    pub spool_fsync: bool,
    /// Bytes of a rejected payload kept in the `rejects` table.
    pub reject_payload_bytes: usize,
    /// When a device's QoS 1 publish is acknowledged (PUBACK).
    pub ack: AckMode,
}

/// `ingest.ack`: what a PUBACK promises the device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AckMode {
    /// After the message (or its reject) is written to the spool: survives a kill of the
    /// hub. Acknowledgements are released per spool write (group commit).
    #[default]
    Spooled,
    /// After the spool write is also synced to disk (`fdatasync` per group): survives a
    /// power cut too.
    Synced,
    /// When the broker receives the message, before it is spooled (rumqttd's, Mosquitto's
    /// and EMQX's behaviour): a killed hub loses what it had in memory.
    Received,
}

impl AckMode {
    /// The name as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            AckMode::Spooled => "spooled",
            AckMode::Synced => "synced",
            AckMode::Received => "received",
        }
    }

    /// Whether the broker must hold PUBACKs until ingest releases them.
    pub fn holds_acks(self) -> bool {
        self != AckMode::Received
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_payload_bytes: 64 * 1024,
            max_entries: 1000,
            max_future_skew: Duration::from_secs(300),
            max_past_age: Duration::from_secs(30 * 86_400),
            batch_rows: 50_000,
            flush_interval: Duration::from_millis(200),
            spool_dir: std::path::PathBuf::from("var/spool"),
            spool_max_bytes: 1 << 30,
            spool_fsync: true,
            reject_payload_bytes: 4096,
            ack: AckMode::Spooled,
        }
    }
}

impl IngestConfig {
    pub fn validate(&self) -> Vec<String> {
        let mut e = Vec::new();
        if self.max_payload_bytes < 256 {
            e.push("ingest.max_payload_bytes: must be at least 256".to_string());
        }
        if self.max_entries == 0 {
            e.push("ingest.max_entries: must be positive".to_string());
        }
        if self.batch_rows == 0 || self.batch_rows > 1_000_000 {
            e.push("ingest.batch_rows: must be between 1 and 1000000".to_string());
        }
        if self.flush_interval < Duration::from_millis(1)
            || self.flush_interval > Duration::from_secs(60)
        {
            e.push("ingest.flush_interval: must be between 1ms and 60s".to_string());
        }
        if self.spool_max_bytes < 1 << 20 {
            e.push("ingest.spool_max_bytes: must be at least 1 MiB".to_string());
        }
        if self.spool_dir.as_os_str().is_empty() {
            e.push("ingest.spool_dir: must not be empty".to_string());
        }
        if self.max_past_age < Duration::from_secs(60) {
            e.push("ingest.max_past_age: must be at least 1m".to_string());
        }
        e
    }
}
