//! `steward rules check|backtest`: validate a rule pack, or replay QuestDB history through
//! it and report the tickets it would have raised.

use super::{load_pack, runtime};
use anyhow::{bail, Result};
use clap::Subcommand;
use std::path::PathBuf;
use steward_estate::{EstateFile, Registry};

#[derive(Subcommand)]
pub enum RulesCommand {
    /// Validate a rule file or directory (default: the built-in pack) and list its rules.
    Check {
        #[arg(long)]
        rule: Option<PathBuf>,
    },
    /// Replay QuestDB history through rules and report the tickets they would have raised.
    Backtest {
        /// Rule file or directory (default: the built-in pack).
        #[arg(long)]
        rule: Option<PathBuf>,
        /// Start of the window: RFC 3339 (`2026-11-01T00:00:00Z`) or ms since the epoch.
        #[arg(long)]
        from: String,
        /// End of the window (default: now).
        #[arg(long)]
        to: Option<String>,
        /// QuestDB HTTP address of the hub (`host:port`).
        #[arg(long, default_value = "127.0.0.1:9000")]
        questdb: std::net::SocketAddr,
        /// Estate file for routing devices to stations.
        #[arg(long)]
        estate: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: RulesCommand) -> Result<()> {
    match cmd {
        RulesCommand::Check { rule } => {
            let pack = load_pack(rule.as_deref())?;
            for r in pack.rules() {
                println!("{:<28} {:<3} {}", r.id, r.priority.as_str(), r.title);
            }
            println!("{} rules ok", pack.rules().len());
            Ok(())
        }
        RulesCommand::Backtest {
            rule,
            from,
            to,
            questdb,
            estate,
            json,
        } => {
            let pack = load_pack(rule.as_deref())?;
            let from_ms = parse_time("--from", &from)?;
            let to_ms = match to {
                Some(t) => parse_time("--to", &t)?,
                None => steward_estate::clock::now_ms(),
            };
            if to_ms <= from_ms {
                bail!("--to must be after --from");
            }
            let registry = Registry::open_in_memory()?;
            registry.apply(&EstateFile::load(&estate)?)?;
            let client = steward_storage::questdb::QuestDbClient::new(questdb)?;
            let tickets = runtime()?.block_on(steward_rules::backtest(
                &client,
                &pack,
                &registry.directory(),
                from_ms,
                to_ms,
            ))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tickets)?);
            } else {
                print_tickets(&tickets);
            }
            Ok(())
        }
    }
}

/// ms since the epoch, or an RFC 3339 time; `key` names the flag in the error.
fn parse_time(key: &str, v: &str) -> Result<i64> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(v).map_err(|e| {
        anyhow::anyhow!("{key}: `{v}` is neither ms since the epoch nor RFC 3339: {e}")
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64)
}

fn print_tickets(tickets: &[steward_rules::BacktestTicket]) {
    println!(
        "{:<24} {:<24} {:<3} {:<16} {:>5}  opened_ms",
        "device", "rule", "pri", "station", "times"
    );
    for t in tickets {
        println!(
            "{:<24} {:<24} {:<3} {:<16} {:>5}  {}",
            t.device_id,
            t.rule_id,
            t.priority.as_str(),
            t.station,
            t.occurrences,
            t.opened_ms
        );
    }
    println!("{} tickets would have been raised", tickets.len());
}
