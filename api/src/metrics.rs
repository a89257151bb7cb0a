use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// Why an uploaded photo was refused: too_large, unsupported_type, undecodable, no_file.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhotoRejectLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The matched route (`/api/v1/devices/{id}`), never the raw path, so label values
    /// stay bounded whatever clients send.
    pub route: String,
    pub status: u16,
}

/// Request latencies of the API (`steward_api_request_seconds`).
#[derive(Clone)]
pub struct ApiMetrics {
    pub requests: Family<RequestLabels, Histogram>,
    /// Clients connected to the alert stream (`steward_api_sse_clients`).
    pub sse_clients: Gauge,
    /// Ticket photos refused, by reason (`steward_api_photo_rejects_total`).
    pub photo_rejects: Family<PhotoRejectLabels, Counter>,
}

impl ApiMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let requests = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 0.5 ms .. ~8 s
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        registry.register(
            "steward_api_request_seconds",
            "HTTP request latency by method, route and status",
            requests.clone(),
        );
        let sse_clients = Gauge::default();
        registry.register(
            "steward_api_sse_clients",
            "Clients connected to the SSE alert stream",
            sse_clients.clone(),
        );
        let photo_rejects = Family::<PhotoRejectLabels, Counter>::default();
        registry.register(
            "steward_api_photo_rejects",
            "Ticket photo uploads refused, by reason (too_large, unsupported_type, undecodable, no_file)",
            photo_rejects.clone(),
        );
        ApiMetrics {
            requests,
            sse_clients,
            photo_rejects,
        }
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics::new(&mut Registry::default())
    }
}
