//! Cluster counters, registered under `steward_cluster_*`.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// A front end's producer.
#[derive(Clone, Default)]
pub struct FrontendMetrics {
    /// Records Kafka acknowledged (the device then got its PUBACK).
    pub produced: Counter,
    /// Deliveries Kafka refused or timed out; each is produced again.
    pub delivery_errors: Counter,
    /// Records sent and not yet acknowledged by Kafka.
    pub in_flight: Gauge,
}

impl FrontendMetrics {
    pub fn new(reg: &mut Registry) -> Self {
        let m = Self::default();
        reg.register(
            "steward_cluster_produced",
            "Device messages acknowledged by Kafka",
            m.produced.clone(),
        );
        reg.register(
            "steward_cluster_delivery_errors",
            "Kafka deliveries that failed and were produced again",
            m.delivery_errors.clone(),
        );
        reg.register(
            "steward_cluster_in_flight",
            "Device messages sent to Kafka and not yet acknowledged",
            m.in_flight.clone(),
        );
        m
    }
}

/// A rule worker.
#[derive(Clone, Default)]
pub struct WorkerMetrics {
    /// Records applied in committed transactions.
    pub records: Counter,
    pub batches: Counter,
    /// Records read again and skipped: already committed before a failover.
    pub skipped: Counter,
    /// Transactions refused because another worker had claimed the partition.
    pub fenced: Counter,
    pub rebalances: Counter,
    pub errors: Counter,
    /// Partitions this worker owns.
    pub partitions: Gauge,
}

impl WorkerMetrics {
    pub fn new(reg: &mut Registry) -> Self {
        let m = Self::default();
        let r = reg.sub_registry_with_prefix("steward_cluster_worker");
        r.register(
            "records",
            "Records applied in committed transactions",
            m.records.clone(),
        );
        r.register("batches", "Committed transactions", m.batches.clone());
        r.register(
            "skipped",
            "Records read again after a failover and skipped (already committed)",
            m.skipped.clone(),
        );
        r.register(
            "fenced",
            "Transactions refused because another worker claimed the partition",
            m.fenced.clone(),
        );
        r.register(
            "rebalances",
            "Partition assignment changes",
            m.rebalances.clone(),
        );
        r.register(
            "errors",
            "Failed transactions and consumer errors",
            m.errors.clone(),
        );
        r.register(
            "partitions",
            "Partitions this worker owns",
            m.partitions.clone(),
        );
        m
    }
}
