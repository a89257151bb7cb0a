use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use steward_estate::AuthOutcome;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: &'static str,
}

/// Counters of the broker stage.
#[derive(Clone, Default)]
pub struct BrokerMetrics {
    /// CONNECT attempts by result: ok, unknown_client, bad_secret, retired.
    pub auth: Family<ResultLabel, Counter>,
    /// PUBLISHes (and last wills) outside the sender's own topics, diverted to ingest.
    pub unauthorized_publish: Counter,
    /// SUBSCRIBE filters outside the client's own topics, neutralised.
    pub denied_subscribe: Counter,
    /// PUBLISHes over the per-device rate, shed.
    pub rate_limited: Counter,
}

impl BrokerMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let m = BrokerMetrics::default();
        registry.register(
            "steward_broker_connect_auth",
            "MQTT CONNECT authentications by result",
            m.auth.clone(),
        );
        registry.register(
            "steward_broker_unauthorized_publish",
            "Publishes refused because the topic is not the sender's own (spoofing attempts)",
            m.unauthorized_publish.clone(),
        );
        registry.register(
            "steward_broker_denied_subscribe",
            "Subscription filters refused because they reach beyond the client's own topics",
            m.denied_subscribe.clone(),
        );
        registry.register(
            "steward_broker_rate_limited",
            "Publishes shed because the device exceeded its publish rate",
            m.rate_limited.clone(),
        );
        m
    }

    pub(crate) fn record_auth(&self, outcome: AuthOutcome) {
        self.auth
            .get_or_create(&ResultLabel {
                result: outcome.reason(),
            })
            .inc();
    }

    pub(crate) fn record_token_auth(&self, ok: bool) {
        self.auth
            .get_or_create(&ResultLabel {
                result: if ok { "ok_token" } else { "bad_token" },
            })
            .inc();
    }

    /// Refused CONNECTs so far (all reasons).
    pub fn auth_refused(&self) -> u64 {
        ["unknown_client", "bad_secret", "retired", "bad_token"]
            .iter()
            .map(|r| self.auth.get_or_create(&ResultLabel { result: r }).get())
            .sum()
    }
}
