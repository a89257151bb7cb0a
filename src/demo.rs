//! The demo estate and the configuration `steward demo` runs with.

use crate::config::{EstateConfig, HubConfig};
use std::net::SocketAddr;
use std::path::Path;

/// Three compounds on one street, one with a property company's station, each with all
/// four device kinds (one pump behind a gateway).
pub const DEMO_ESTATE: &str = include_str!("../demo/estate.toml");

/// A configuration for the demo: managed QuestDB in a temporary root, the estate and its
/// database under `dir`.
pub fn demo_config(dir: &Path, mqtt_port: u16, api_port: u16) -> std::io::Result<HubConfig> {
    let estate = dir.join("estate.toml");
    std::fs::write(&estate, DEMO_ESTATE)?;
    let mut cfg = HubConfig {
        estate: EstateConfig {
            file: Some(estate),
            database: dir.join("steward.db"),
        },
        ..HubConfig::default()
    };
    cfg.broker.v4_listen = SocketAddr::from(([127, 0, 0, 1], mqtt_port));
    cfg.broker.v5_listen = Some(SocketAddr::from((
        [127, 0, 0, 1],
        if mqtt_port == 0 { 0 } else { mqtt_port + 1 },
    )));
    cfg.api.listen = SocketAddr::from(([127, 0, 0, 1], api_port));
    cfg.questdb.managed.root = Some(dir.join("questdb"));
    cfg.rules.database = dir.join("tickets.db");
    cfg.notify.outbox.database = dir.join("notify.db");
    cfg.escalation.database = dir.join("escalation.db");
    cfg.ingest.spool_dir = dir.join("spool");
    Ok(cfg)
}

/// The endpoint every person of the demo estate is reached on: a webhook to the demo's
/// own inbox, which prints each notification on the console.
pub const DEMO_INBOX: &str = "demo-inbox";

/// Reach every person of the demo estate who has no channel through a webhook at `url`
/// (the demo's inbox), so the demo shows escalation end to end without outside services.
pub fn with_demo_inbox(cfg: &mut HubConfig, url: &str) -> Result<(), crate::HubError> {
    use steward_notify::config::{EndpointConfig, WebhookConfig};
    let Some(path) = cfg.estate.file.clone() else {
        return Ok(());
    };
    let mut estate = steward_estate::EstateFile::load(&path)?;
    for p in estate.people.iter_mut().filter(|p| p.channels.is_empty()) {
        p.channels.push(DEMO_INBOX.to_string());
    }
    let text = toml::to_string(&estate)
        .map_err(|e| crate::HubError::Start(format!("demo estate: {e}")))?;
    std::fs::write(&path, text)
        .map_err(|e| crate::HubError::Start(format!("{}: {e}", path.display())))?;
    cfg.notify.endpoints.insert(
        DEMO_INBOX.to_string(),
        EndpointConfig::Webhook(WebhookConfig {
            url: url.to_string(),
            secret: steward_notify::Secret::new(steward_estate::secret::generate_secret()),
        }),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_estate::{DeviceKind, EstateFile};

    #[test]
    fn demo_estate_has_every_kind_in_every_compound() {
        let f = EstateFile::parse(DEMO_ESTATE).unwrap();
        for c in &f.compounds {
            for k in DeviceKind::ALL {
                let n = f
                    .devices
                    .iter()
                    .filter(|d| d.kind == k)
                    .filter(|d| {
                        f.buildings
                            .iter()
                            .any(|b| b.id == d.building && b.compound == c.id)
                    })
                    .count();
                assert!(n > 0, "{} has no {k}", c.id);
            }
        }
    }
}
