//! `steward`: the hub's command line. This file only parses the arguments and hands each
//! subcommand to its module under `cli/`.

mod cli;

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;
use steward_estate::DeviceKind;

#[derive(Parser)]
#[command(
    name = "steward",
    version,
    about = "Telemetry hub for building and facility sensors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub with a configuration file.
    Run {
        #[arg(long, short, default_value = "steward.toml")]
        config: PathBuf,
    },
    /// Run the hub with the demo estate, a managed QuestDB and simulated devices.
    #[command(after_help = cli::demo::faults_help())]
    Demo {
        /// Where the demo keeps its estate file and database (default: a temporary directory).
        #[arg(long)]
        dir: Option<PathBuf>,
        #[arg(long, default_value_t = 1883)]
        mqtt_port: u16,
        #[arg(long, default_value_t = 8080)]
        api_port: u16,
        /// Simulated time runs this many times faster than real time.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Stop after this long (e.g. `2m`); default: until Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Inject a fault into one device of its kind (`NAME`) or into the device named
        /// (`NAME=DEVICE_ID`), e.g. `lift-trapped` or `smoke-alarm=smoke-elm-court-1a`;
        /// repeat for several. The faults are listed below.
        #[arg(long, value_name = "NAME[=DEVICE_ID]")]
        fault: Vec<String>,
        /// Start the hub without simulated devices.
        #[arg(long)]
        no_sim: bool,
        /// Cluster mode on this machine: 3 Kafka brokers, PostgreSQL, QuestDB, 2 front
        /// ends and 2 workers (child processes); the fleet spreads over the front ends.
        /// Ports start at --mqtt-port and --api-port (0: free ports).
        #[arg(long)]
        cluster: bool,
    },
    /// Print a configuration file with every key at its default.
    GenerateConfig {
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Validate a configuration file and the estate file it names, offline.
    CheckConfig {
        #[arg(long, short, default_value = "steward.toml")]
        config: PathBuf,
    },
    /// Rule files: validate them, or replay history through them.
    Rules {
        #[command(subcommand)]
        command: cli::rules::RulesCommand,
    },
    /// API tokens in the registry database: create (printed once), list, revoke. Works
    /// without the hub running, so an operator can bootstrap access.
    Token {
        #[command(subcommand)]
        command: cli::tokens::TokenCommand,
    },
    /// Check a payload against device contract v1 with the hub's own decoder.
    CheckPayload {
        /// Topic the payload would be published on, e.g. `devices/lift-1/telemetry`.
        #[arg(long)]
        topic: String,
        /// Device kind, when no estate file is given (the topic's device gets this kind).
        #[arg(long)]
        kind: Option<DeviceKind>,
        /// Estate file to resolve devices and gateways from.
        #[arg(long)]
        estate: Option<PathBuf>,
        /// Payload file; `-` or absent reads standard input.
        file: Option<PathBuf>,
        /// Judge `ts` as if the hub received the payload at this time (RFC 3339 in UTC, e.g.
        /// `2026-03-02T08:20:00Z`, or ms since the epoch) instead of now: for saved
        /// samples such as the contract's worked examples.
        #[arg(long, value_parser = cli::payload::parse_now)]
        now: Option<i64>,
    },
}

fn main() -> std::process::ExitCode {
    // Errors are printed as one clear chain, without a backtrace, whatever RUST_BACKTRACE says.
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The error and its causes, `: `-separated like `{e:#}`, but a cause whose text the
/// message already holds is left out: an error that names its io error in its own message
/// and also as its `source` says it once.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
    }
    out
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        // Colour codes only for a terminal: redirected logs stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Run { config } => cli::run::run(&config),
        Command::Demo {
            dir,
            mqtt_port,
            api_port,
            speed,
            duration,
            fault,
            no_sim,
            cluster,
        } => cli::demo(cli::demo::DemoArgs {
            dir,
            mqtt_port,
            api_port,
            speed,
            duration,
            faults: fault,
            no_sim,
            cluster,
        }),
        Command::GenerateConfig { output } => cli::config::generate(output.as_deref()),
        Command::CheckConfig { config } => cli::config::check(&config),
        Command::CheckPayload {
            topic,
            kind,
            estate,
            file,
            now,
        } => cli::payload::check(&topic, kind, estate.as_deref(), file.as_deref(), now),
        Command::Rules { command } => cli::rules::run(command),
        Command::Token { command } => cli::tokens::run(command),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `steward ...` command line in the README's and the device contract's shell
    /// blocks, joined over `\` continuations, without comments and redirections.
    fn documented_commands() -> Vec<(String, Vec<String>)> {
        let mut out = Vec::new();
        for doc in ["README.md", "docs/device-contract.md"] {
            let path = concat!(env!("CARGO_MANIFEST_DIR"), "/").to_string() + doc;
            let text = std::fs::read_to_string(&path).expect("doc");
            let mut in_sh = false;
            let mut pending = String::new();
            for line in text.lines() {
                let trimmed = line.trim();
                if trimmed.starts_with("```") {
                    in_sh = trimmed == "```sh";
                    continue;
                }
                if !in_sh {
                    continue;
                }
                let code = trimmed.split(" #").next().unwrap_or("").trim();
                pending.push_str(code.trim_end_matches('\\'));
                pending.push(' ');
                if code.ends_with('\\') {
                    continue;
                }
                let line = std::mem::take(&mut pending);
                let words = shell_words(&line);
                let first = words.first().map(String::as_str).unwrap_or("");
                if first != "steward" && first != "target/release/steward" {
                    continue;
                }
                let mut args = Vec::new();
                let mut words = words.into_iter();
                while let Some(w) = words.next() {
                    if w == ">" || w == "<" {
                        words.next();
                    } else {
                        args.push(w);
                    }
                }
                out.push((format!("{doc}: {}", line.trim()), args));
            }
        }
        out
    }

    /// Words of a shell line, with '...' and "..." quoting (enough for the docs).
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let (mut word, mut quote, mut any) = (String::new(), None, false);
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    any = true;
                }
                (None, c) if c.is_whitespace() => {
                    if any || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    any = false;
                }
                (None, c) => word.push(c),
            }
        }
        if any || !word.is_empty() {
            words.push(word);
        }
        words
    }

    #[test]
    fn documented_commands_parse() {
        let commands = documented_commands();
        assert!(commands.len() >= 8, "{commands:?}");
        for (what, args) in commands {
            if let Err(e) = Cli::try_parse_from(&args) {
                panic!("{what}\n{e}");
            }
        }
    }
}
