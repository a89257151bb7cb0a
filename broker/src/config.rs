use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[broker]` section of the hub configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// The MQTT listener: 3.1.1 and 5 on one port (the protocol level in each CONNECT
    /// picks the codec). The key keeps its historical name.
    pub v4_listen: SocketAddr,
    /// An extra listener for MQTT 5 only, for devices configured with a second port;
    /// `""` disables it (MQTT 5 also works on `v4_listen`). A missing key keeps the default.
    #[serde(with = "off_or_addr")]
    pub v5_listen: Option<SocketAddr>,
    /// MQTT over TLS listener (3.1.1 and 5 inside TLS); omit to disable. Needs `tls_cert`
    /// and `tls_key`.
    pub tls_listen: Option<SocketAddr>,
    /// PEM certificate chain of the TLS listener (server certificate first).
    pub tls_cert: Option<std::path::PathBuf>,
    /// PEM private key of the TLS listener.
    pub tls_key: Option<std::path::PathBuf>,
    /// Largest MQTT publish payload; bigger packets close the connection. Keep it above
    /// `ingest.max_payload_bytes` so oversize payloads reach ingest and get a reject reason.
    pub max_payload_bytes: usize,
    pub max_connections: usize,
    /// Time a new connection has to send CONNECT.
    pub connection_timeout_ms: u16,
    /// QoS 1 messages in flight per connection.
    pub max_inflight: usize,
    /// Router commit-log segment size and count: how much unread data a slow consumer may
    /// lag behind before rumqttd drops old segments. Segments every reader has passed are
    /// given back at once (vendor/rumqttd), so a caught-up hub holds about two segments;
    /// size x count is only reached while ingest lags.
    pub max_segment_bytes: usize,
    pub max_segment_count: usize,
    /// Sustained publishes per second one device (or gateway) may send, over all its
    /// connections; 0 disables the limit. Excess is shed and counted, so one chatty device
    /// cannot starve the others.
    pub device_rate_per_s: u32,
    /// Publishes a device may send in a burst above `device_rate_per_s`.
    pub device_burst: u32,
    /// Hold each QoS 1 PUBACK until ingest reports the publish persisted (set by the hub
    /// from `ingest.ack`, not a key of its own).
    #[serde(skip)]
    pub hold_acks: bool,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            v4_listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
            v5_listen: Some(SocketAddr::from(([0, 0, 0, 0], 1884))),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            max_payload_bytes: 256 * 1024,
            max_connections: 60_000,
            connection_timeout_ms: 10_000,
            max_inflight: 1000,
            max_segment_bytes: 16 * 1024 * 1024,
            max_segment_count: 64,
            device_rate_per_s: 2_000,
            device_burst: 20_000,
            hold_acks: false,
        }
    }
}

impl BrokerConfig {
    /// Problems with this section, each naming its key.
    pub fn validate(&self) -> Vec<String> {
        let mut errors = Vec::new();
        if self.max_payload_bytes < 1024 {
            errors.push("broker.max_payload_bytes: must be at least 1024".into());
        }
        if self.max_connections == 0 {
            errors.push("broker.max_connections: must be positive".into());
        }
        if self.connection_timeout_ms < 100 {
            errors.push("broker.connection_timeout_ms: must be at least 100".into());
        }
        if self.max_inflight == 0 || self.max_inflight > u16::MAX as usize {
            errors.push("broker.max_inflight: must be between 1 and 65535".into());
        }
        if self.max_segment_bytes < self.max_payload_bytes {
            errors
                .push("broker.max_segment_bytes: must be at least broker.max_payload_bytes".into());
        }
        if self.max_segment_count < 2 {
            errors.push("broker.max_segment_count: must be at least 2".into());
        }
        match (&self.tls_listen, &self.tls_cert, &self.tls_key) {
            (Some(_), Some(_), Some(_)) | (None, None, None) => {}
            (Some(_), None, _) => {
                errors.push("broker.tls_cert: required with broker.tls_listen".into())
            }
            (Some(_), _, None) => {
                errors.push("broker.tls_key: required with broker.tls_listen".into())
            }
            (None, _, _) => errors
                .push("broker.tls_listen: required with broker.tls_cert and broker.tls_key".into()),
        }
        for (key, path) in [("tls_cert", &self.tls_cert), ("tls_key", &self.tls_key)] {
            if let Some(p) = path {
                if !p.is_file() {
                    errors.push(format!("broker.{key}: no such file {}", p.display()));
                }
            }
        }
        if self.device_rate_per_s > 0 && self.device_burst < self.device_rate_per_s {
            errors.push("broker.device_burst: must be at least broker.device_rate_per_s".into());
        }
        if self.v5_listen.is_some()
            && self.v5_listen == Some(self.v4_listen)
            && self.v4_listen.port() != 0
        {
            errors.push("broker.v5_listen: must differ from broker.v4_listen".into());
        }
        errors
    }

    pub(crate) fn router_config(&self) -> rumqttd::RouterConfig {
        rumqttd::RouterConfig {
            max_connections: self.max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: self.max_segment_bytes,
            max_segment_count: self.max_segment_count,
            durable_ack_filter: self.hold_acks.then(|| crate::INGEST_FILTER.to_string()),
            ..Default::default()
        }
    }
}

/// An optional listen address in TOML, which has no null: `""` is "no listener" both ways,
/// so a config written by the hub reads back the same.
mod off_or_addr {
    use serde::{de::Error, Deserialize, Deserializer, Serializer};
    use std::net::SocketAddr;

    pub fn serialize<S: Serializer>(v: &Option<SocketAddr>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(a) => s.collect_str(a),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        text.parse()
            .map(Some)
            .map_err(|e| D::Error::custom(format!("`{text}`: {e} (\"\" disables the listener)")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mqtt_5_only_listener_is_disabled_by_an_empty_string() {
        let off: BrokerConfig = toml::from_str("v5_listen = \"\"").expect("parse");
        assert_eq!(off.v5_listen, None);
        let back: BrokerConfig =
            toml::from_str(&toml::to_string(&off).expect("ser")).expect("parse");
        assert_eq!(back.v5_listen, None, "a written config reads back the same");
        let on: BrokerConfig = toml::from_str("v5_listen = \"127.0.0.1:1999\"").expect("parse");
        assert_eq!(on.v5_listen, Some(SocketAddr::from(([127, 0, 0, 1], 1999))));
        let default: BrokerConfig = toml::from_str("").expect("parse");
        assert_eq!(default.v5_listen, BrokerConfig::default().v5_listen);
        assert!(toml::from_str::<BrokerConfig>("v5_listen = \"nowhere\"").is_err());
    }
}
