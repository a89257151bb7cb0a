//! `steward token create|list|revoke`: API tokens straight in the registry database, so an
//! operator can bootstrap access before (or without) the hub running.

use anyhow::Result;
use clap::Subcommand;
use std::path::{Path, PathBuf};
use steward::HubConfig;
use steward_estate::Registry;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it; only its hash is stored.
    Create {
        /// admin, manager, crew, vendor, captain or dispatcher.
        #[arg(long)]
        role: steward_estate::Role,
        /// Who holds it.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Manager or dispatcher: a street it covers (repeatable; a dispatcher without one
        /// covers the whole estate).
        #[arg(long)]
        street: Vec<String>,
        /// Manager: a compound it covers (repeatable).
        #[arg(long)]
        compound: Vec<String>,
        /// Crew: its repair station.
        #[arg(long)]
        station: Option<String>,
        /// Vendor: its vendor name as devices carry it.
        #[arg(long)]
        vendor: Option<String>,
        /// Captain: a building it reports for (repeatable).
        #[arg(long)]
        building: Vec<String>,
        /// Captain: the person (estate `people` id) it is.
        #[arg(long)]
        person: Option<String>,
        #[arg(long, short, default_value = "steward.toml")]
        config: PathBuf,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long, short, default_value = "steward.toml")]
        config: PathBuf,
    },
    /// Revoke a token by id.
    Revoke {
        id: i64,
        #[arg(long, short, default_value = "steward.toml")]
        config: PathBuf,
    },
}

pub fn run(cmd: TokenCommand) -> Result<()> {
    match cmd {
        TokenCommand::Create {
            role,
            name,
            street,
            compound,
            station,
            vendor,
            building,
            person,
            config,
        } => {
            let issued = registry(&config)?.create_token(&steward_estate::NewToken {
                name,
                role,
                scope: steward_estate::TokenScope {
                    streets: street,
                    compounds: compound,
                    station,
                    vendor,
                    buildings: building,
                    person,
                },
            })?;
            eprintln!(
                "token {} ({}, role {}) created; it is shown only now:",
                issued.info.id, issued.info.name, issued.info.role
            );
            println!("{}", issued.token);
            Ok(())
        }
        TokenCommand::List { config } => list(&config),
        TokenCommand::Revoke { id, config } => {
            let t = registry(&config)?.revoke_token(id)?;
            println!("token {} ({}) revoked", t.id, t.name);
            Ok(())
        }
    }
}

/// The registry database the configuration names.
fn registry(config: &Path) -> Result<Registry> {
    let cfg = HubConfig::load(config)?;
    Ok(steward::open_registry(&cfg)?)
}

fn list(config: &Path) -> Result<()> {
    for t in registry(config)?.tokens()? {
        println!(
            "{:>4}  {:<8} {:<24} {:<10} {}",
            t.id,
            t.role.as_str(),
            t.name,
            if t.revoked_ms.is_some() {
                "revoked"
            } else {
                "active"
            },
            serde_json::to_string(&t.scope)?
        );
    }
    Ok(())
}
