//! `steward run`: the hub with a configuration file, until Ctrl-C or SIGTERM.

use super::{runtime, shutdown_signal};
use anyhow::Result;
use std::path::Path;
use steward::{ClusterNode, Hub, HubConfig};

pub fn run(config: &Path) -> Result<()> {
    let cfg = HubConfig::load(config)?;
    runtime()?.block_on(serve(cfg))
}

async fn serve(cfg: HubConfig) -> Result<()> {
    if cfg.cluster.role != steward_cluster::Role::Single {
        return serve_node(cfg).await;
    }
    let hub = Hub::start(cfg).await?;
    eprintln!(
        "steward running: mqtt {} | api http://{} | questdb http://{}{}",
        hub.mqtt_addr,
        hub.api_addr,
        hub.questdb_http,
        hub.mqtt_tls_addr
            .map(|a| format!(" | mqtts {a}"))
            .unwrap_or_default()
    );
    shutdown_signal().await;
    hub.shutdown().await;
    Ok(())
}

/// A cluster node (`cluster.role = "frontend"` or `"worker"`).
async fn serve_node(cfg: HubConfig) -> Result<()> {
    let node = ClusterNode::start(cfg).await?;
    // The one-machine hub's banner, so scripts read both alike; a worker has no MQTT.
    eprintln!(
        "steward running: mqtt {} | api http://{} | questdb http://{} | role {:?}",
        node.mqtt_addr
            .map(|a| a.to_string())
            .unwrap_or_else(|| "-".into()),
        node.api_addr,
        node.questdb_http,
        node.role,
    );
    shutdown_signal().await;
    node.shutdown().await;
    Ok(())
}
