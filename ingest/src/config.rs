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
    /// Rows ingest keeps in memory while the QuestDB writer is busy or QuestDB is down;
    /// at this bound ingest waits for the writer (backpressure to the broker). Decoding
    /// and rules go on until then.
    pub max_buffered_rows: usize,
    /// Bytes of a rejected payload kept in the `rejects` table.
    pub reject_payload_bytes: usize,
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
            max_buffered_rows: 1_000_000,
            reject_payload_bytes: 4096,
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
        if self.max_buffered_rows < self.batch_rows {
            e.push("ingest.max_buffered_rows: must be at least ingest.batch_rows".to_string());
        }
        if self.max_past_age < Duration::from_secs(60) {
            e.push("ingest.max_past_age: must be at least 1m".to_string());
        }
        e
    }
}
