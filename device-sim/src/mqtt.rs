//! MQTT plumbing shared by the fleet and the load generator.

use crate::SimError;
use rumqttc::{MqttOptions, QoS};
use std::time::Duration;
pub(crate) use steward_estate::clock::now_ms;

/// `host:port`, optionally prefixed with `mqtt://` or `tcp://`.
pub(crate) fn parse_broker(addr: &str) -> Result<(String, u16), SimError> {
    let bad = || SimError::BadBroker(addr.to_string());
    let rest = addr
        .strip_prefix("mqtt://")
        .or_else(|| addr.strip_prefix("tcp://"))
        .unwrap_or(addr);
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    let port = port.parse::<u16>().map_err(|_| bad())?;
    Ok((host.to_string(), port))
}

/// A broker list: one address or several, comma-separated (`host:port,host:port`), as
/// devices given several cluster front ends get it.
pub(crate) fn parse_brokers(list: &str) -> Result<Vec<(String, u16)>, SimError> {
    let brokers = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_broker)
        .collect::<Result<Vec<_>, _>>()?;
    if brokers.is_empty() {
        return Err(SimError::BadBroker(list.to_string()));
    }
    Ok(brokers)
}

pub(crate) fn qos(level: u8) -> Result<QoS, SimError> {
    match level {
        0 => Ok(QoS::AtMostOnce),
        1 => Ok(QoS::AtLeastOnce),
        2 => Ok(QoS::ExactlyOnce),
        other => Err(SimError::Config(format!(
            "qos: {other} is not an MQTT QoS level (0, 1 or 2)"
        ))),
    }
}

/// Options for a client logging in as `id` with `secret`, as the device contract asks.
pub(crate) fn options(
    id: &str,
    secret: &str,
    host: &str,
    port: u16,
    keep_alive: Duration,
) -> MqttOptions {
    let mut opts = MqttOptions::new(id, host, port);
    opts.set_credentials(id, secret);
    opts.set_keep_alive(keep_alive);
    opts.set_clean_session(true);
    opts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_addresses() {
        assert_eq!(
            parse_broker("127.0.0.1:1883").ok(),
            Some(("127.0.0.1".to_string(), 1883))
        );
        assert_eq!(
            parse_broker("mqtt://hub.local:8883").ok(),
            Some(("hub.local".to_string(), 8883))
        );
        assert_eq!(
            parse_broker("[::1]:1883").ok(),
            Some(("::1".to_string(), 1883))
        );
        for bad in ["localhost", ":1883", "host:port", "host:70000"] {
            assert!(parse_broker(bad).is_err(), "{bad}");
        }
        assert!(qos(3).is_err());
        assert_eq!(
            parse_brokers("127.0.0.1:1883, mqtt://hub.local:8883,").ok(),
            Some(vec![
                ("127.0.0.1".to_string(), 1883),
                ("hub.local".to_string(), 8883)
            ])
        );
        assert!(parse_brokers(" , ").is_err());
        assert!(parse_brokers("127.0.0.1:1883,nowhere").is_err());
    }
}
