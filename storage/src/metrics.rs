use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Counters of one spool + writer pair. Each outbox registers its own set under the prefix
/// of the stage that owns it (`steward_ingest_*` for telemetry, `steward_ticket_events_*`
/// for ticket events), so every drop is counted where someone looks.
#[derive(Clone, Debug, Default)]
pub struct StorageMetrics {
    /// Rows QuestDB acknowledged (all tables, rejects included).
    pub rows_written: Counter,
    pub flushes: Counter,
    pub flush_errors: Counter,
    /// Rows dropped after QuestDB refused their batch as invalid, repeatedly.
    pub rows_dropped: Counter,
    /// Rows encoded but not yet acknowledged by QuestDB.
    pub pending_rows: Gauge,
    /// Bytes of spool segments on disk, waiting for QuestDB.
    pub spool_bytes: Gauge,
    /// Sealed spool segments waiting for QuestDB.
    pub spool_segments: Gauge,
    /// Rows not spooled because the spool was full.
    pub spool_full_dropped_rows: Counter,
    /// Segments found on disk at start and sent again.
    pub spool_replayed_segments: Counter,
    /// Writes (and syncs) the spool's disk refused.
    pub spool_write_errors: Counter,
    /// 1 while ingest waits for the spool to take rows again (full or failing disk),
    /// holding devices' acknowledgements instead of dropping their data.
    pub spool_blocked: Gauge,
}

impl StorageMetrics {
    /// New counters, registered under `prefix` (e.g. `steward_ingest`).
    pub fn new(registry: &mut Registry, prefix: &str) -> Self {
        let m = StorageMetrics::default();
        let r = registry.sub_registry_with_prefix(prefix);
        r.register(
            "spool_bytes",
            "Bytes of spool segments on disk waiting for QuestDB",
            m.spool_bytes.clone(),
        );
        r.register(
            "spool_segments",
            "Sealed spool segments waiting for QuestDB",
            m.spool_segments.clone(),
        );
        r.register(
            "spool_full_dropped_rows",
            "Rows not kept because the spool was full",
            m.spool_full_dropped_rows.clone(),
        );
        r.register(
            "spool_replayed_segments",
            "Spool segments left by a previous run and sent again",
            m.spool_replayed_segments.clone(),
        );
        r.register(
            "spool_write_errors",
            "Writes or syncs the spool's disk refused",
            m.spool_write_errors.clone(),
        );
        r.register(
            "spool_blocked",
            "1 while ingest waits for the spool to take rows again, holding acknowledgements",
            m.spool_blocked.clone(),
        );
        r.register(
            "rows_written",
            "Rows acknowledged by QuestDB",
            m.rows_written.clone(),
        );
        r.register("flushes", "Batches flushed to QuestDB", m.flushes.clone());
        r.register(
            "flush_errors",
            "Failed flush attempts (retried)",
            m.flush_errors.clone(),
        );
        r.register(
            "rows_dropped",
            "Rows dropped after QuestDB refused their batch",
            m.rows_dropped.clone(),
        );
        r.register(
            "pending_rows",
            "Rows not yet acknowledged by QuestDB",
            m.pending_rows.clone(),
        );
        m
    }
}
