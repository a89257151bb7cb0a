//! `steward run`: the hub with a configuration file, until Ctrl-C or SIGTERM.

use super::{runtime, shutdown_signal};
use anyhow::Result;
use std::path::Path;
use steward::{Hub, HubConfig};

pub fn run(config: &Path) -> Result<()> {
    let cfg = HubConfig::load(config)?;
    runtime()?.block_on(serve(cfg))
}

async fn serve(cfg: HubConfig) -> Result<()> {
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
