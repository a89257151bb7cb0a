use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use steward_estate::model::RejectReason;
use steward_storage::StorageMetrics;

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
    /// Times the router paused our link because we lagged (`Notification::Unschedule`).
    pub link_unscheduled: Counter,
    /// Messages whose decoding panicked (a bug); each is rejected, ingest goes on.
    pub decode_panics: Counter,
    /// Messages rumqttd dropped from its log because ingest lagged (slow consumer).
    pub link_lost: Counter,
    /// The telemetry spool and its writer to QuestDB, registered under the same prefix.
    pub storage: StorageMetrics,
}

impl IngestMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = IngestMetrics {
            storage: StorageMetrics::new(registry, "steward_ingest"),
            ..IngestMetrics::default()
        };
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
