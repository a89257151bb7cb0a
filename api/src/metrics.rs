use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

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
        ApiMetrics { requests }
    }
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics::new(&mut Registry::default())
    }
}
