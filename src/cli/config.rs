//! `steward generate-config` and `steward check-config`.

use super::load_pack;
use anyhow::{Context, Result};
use std::path::Path;
use steward::{config::sample_config, HubConfig};
use steward_estate::EstateFile;

/// Prints (or writes to `output`) a configuration with every key at its default.
pub fn generate(output: Option<&Path>) -> Result<()> {
    let text = sample_config();
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// Loads the configuration, its rule pack and its estate file without starting anything.
pub fn check(config: &Path) -> Result<()> {
    let cfg = HubConfig::load(config)?;
    let pack = load_pack(cfg.rules.rules.as_deref())?;
    println!(
        "rules {}: ok, {} rules",
        cfg.rules
            .rules
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "(built-in pack)".into()),
        pack.rules().len()
    );
    if let Some(f) = &cfg.estate.file {
        let estate = EstateFile::load(f)?;
        println!(
            "{}: ok; estate {}: {} stations, {} compounds, {} devices, {} gateways",
            config.display(),
            f.display(),
            estate.stations.len(),
            estate.compounds.len(),
            estate.devices.len(),
            estate.gateways.len()
        );
    } else {
        println!("{}: ok", config.display());
    }
    Ok(())
}
