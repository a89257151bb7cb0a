use crate::reading::RejectReason;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

/// Counters of the ingest stage (`steward_ingest_*`).
#[derive(Clone, Default)]
pub struct IngestMetrics {
    /// MQTT messages seen by ingest.
    pub received: Counter,
    /// Accepted telemetry entries by device kind.
    pub readings: Family<KindLabel, Counter>,
    pub events: Counter,
    pub statuses: Counter,
    /// Rejected messages or entries by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Rows QuestDB acknowledged (all tables, rejects included).
    pub rows_written: Counter,
    pub flushes: Counter,
    pub flush_errors: Counter,
    /// Rows dropped after QuestDB refused their batch as invalid, repeatedly.
    pub rows_dropped: Counter,
    /// Rows encoded but not yet acknowledged by QuestDB.
    pub pending_rows: Gauge,
    /// Times the router paused our link because we lagged (`Notification::Unschedule`).
    pub link_unscheduled: Counter,
    /// Messages whose decoding panicked (a bug); each is rejected, ingest goes on.
    pub decode_panics: Counter,
    /// Messages rumqttd dropped from its log because ingest lagged (slow consumer).
    pub link_lost: Counter,
    /// Bytes of spool segments on disk, waiting for QuestDB.
    pub spool_bytes: Gauge,
    /// Sealed spool segments waiting for QuestDB.
    pub spool_segments: Gauge,
    /// Rows not spooled because the spool was full (`ingest.spool_max_bytes`).
    pub spool_full_dropped_rows: Counter,
    /// Segments found on disk at start and sent again.
    pub spool_replayed_segments: Counter,
}

impl IngestMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = IngestMetrics::default();
        for r in RejectReason::ALL {
            let _ = m
                .rejected
                .get_or_create(&ReasonLabel { reason: r.as_str() });
        }
        let r = registry.sub_registry_with_prefix("steward_ingest");
        r.register(
            "decode_panics",
            "Messages whose decoding failed with an internal error (rejected, counted)",
            m.decode_panics.clone(),
        );
        r.register(
            "link_lost",
            "Messages the broker dropped because ingest lagged behind its log (slow consumer)",
            m.link_lost.clone(),
        );
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
            "received",
            "MQTT messages seen by ingest",
            m.received.clone(),
        );
        r.register(
            "readings",
            "Accepted telemetry entries by device kind",
            m.readings.clone(),
        );
        r.register("events", "Accepted device events", m.events.clone());
        r.register("statuses", "Accepted status messages", m.statuses.clone());
        r.register(
            "rejected",
            "Rejected messages or entries by reason",
            m.rejected.clone(),
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
        r.register(
            "link_unscheduled",
            "Router pauses of the ingest link",
            m.link_unscheduled.clone(),
        );
        m
    }

    pub fn rejected_count(&self, reason: RejectReason) -> u64 {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .get()
    }

    pub fn rejected_total(&self) -> u64 {
        RejectReason::ALL
            .iter()
            .map(|r| self.rejected_count(*r))
            .sum()
    }

    pub fn readings_total(&self) -> u64 {
        steward_estate::DeviceKind::ALL
            .iter()
            .map(|k| {
                self.readings
                    .get_or_create(&KindLabel { kind: k.as_str() })
                    .get()
            })
            .sum()
    }
}
