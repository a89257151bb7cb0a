//! `steward`: the hub's command line.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;
use steward::{config::sample_config, demo, Hub, HubConfig};
use steward_estate::{DeviceKind, EstateFile, Registry};
use steward_ingest::contract;
use steward_ingest::IngestConfig;

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
        /// Inject a fault, e.g. `lift-trapped` or `smoke-alarm=smoke-elm-court-1a`.
        #[arg(long)]
        fault: Vec<String>,
        /// Start the hub without simulated devices.
        #[arg(long)]
        no_sim: bool,
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
        command: RulesCommand,
    },
    /// API tokens in the registry database: create (printed once), list, revoke. Works
    /// without the hub running, so an operator can bootstrap access.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
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
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token and print it; only its hash is stored.
    Create {
        /// admin, manager, crew or vendor.
        #[arg(long)]
        role: steward_estate::Role,
        /// Who holds it.
        #[arg(long, default_value = "cli")]
        name: String,
        /// Manager: a street it covers (repeatable).
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

#[derive(Subcommand)]
enum RulesCommand {
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

fn parse_time(key: &str, v: &str) -> Result<i64> {
    if let Ok(ms) = v.parse::<i64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(v).map_err(|e| {
        anyhow::anyhow!("{key}: `{v}` is neither ms since the epoch nor RFC 3339: {e}")
    })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64)
}

fn load_pack(rule: Option<&std::path::Path>) -> Result<steward_rules::RulePack> {
    Ok(match rule {
        Some(p) => steward_rules::RulePack::load(p)?,
        None => steward_rules::RulePack::default_pack(),
    })
}

fn main() -> std::process::ExitCode {
    // Errors are printed as one clear chain, without a backtrace, whatever RUST_BACKTRACE says.
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn real_main() -> Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=off".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Run { config } => {
            let cfg = HubConfig::load(&config)?;
            runtime()?.block_on(run(cfg))
        }
        Command::Demo {
            dir,
            mqtt_port,
            api_port,
            speed,
            duration,
            fault,
            no_sim,
        } => runtime()?.block_on(run_demo(DemoArgs {
            dir,
            mqtt_port,
            api_port,
            speed,
            duration,
            faults: fault,
            no_sim,
        })),
        Command::GenerateConfig { output } => {
            let text = sample_config();
            match output {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => print!("{text}"),
            }
            Ok(())
        }
        Command::CheckConfig { config } => {
            let cfg = HubConfig::load(&config)?;
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
        Command::CheckPayload {
            topic,
            kind,
            estate,
            file,
        } => check_payload(&topic, kind, estate, file),
        Command::Rules { command } => rules_command(command),
        Command::Token { command } => token_command(command),
    }
}

fn token_command(cmd: TokenCommand) -> Result<()> {
    let registry = |config: &std::path::Path| -> Result<Registry> {
        let cfg = HubConfig::load(config)?;
        Ok(steward::open_registry(&cfg)?)
    };
    match cmd {
        TokenCommand::Create {
            role,
            name,
            street,
            compound,
            station,
            vendor,
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
                },
            })?;
            eprintln!(
                "token {} ({}, role {}) created; it is shown only now:",
                issued.info.id, issued.info.name, issued.info.role
            );
            println!("{}", issued.token);
            Ok(())
        }
        TokenCommand::List { config } => {
            for t in registry(&config)?.tokens()? {
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
        TokenCommand::Revoke { id, config } => {
            let t = registry(&config)?.revoke_token(id)?;
            println!("token {} ({}) revoked", t.id, t.name);
            Ok(())
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn run(cfg: HubConfig) -> Result<()> {
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

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

struct DemoArgs {
    dir: Option<PathBuf>,
    mqtt_port: u16,
    api_port: u16,
    speed: f64,
    duration: Option<Duration>,
    faults: Vec<String>,
    no_sim: bool,
}

async fn run_demo(a: DemoArgs) -> Result<()> {
    let faults = a
        .faults
        .iter()
        .map(|f| {
            let (name, target) = match f.split_once('=') {
                Some((n, t)) => (n, Some(t.to_string())),
                None => (f.as_str(), None),
            };
            name.parse::<steward_device_sim::Fault>()
                .map(|fault| (fault, target))
                .map_err(|e| anyhow::anyhow!("--fault {f}: {e}"))
        })
        .collect::<Result<Vec<_>>>()?;
    if !(a.speed > 0.0 && a.speed <= 10_000.0) {
        bail!("--speed: must be in (0, 10000]");
    }
    let temp = tempfile::tempdir()?;
    let dir = a.dir.unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let cfg = demo::demo_config(&dir, a.mqtt_port, a.api_port)?;
    eprintln!("starting QuestDB and the hub (the first run fetches the QuestDB jar with Maven)...");
    let hub = Hub::start(cfg).await?;
    let estate = EstateFile::parse(demo::DEMO_ESTATE)?;
    println!();
    println!("Steward demo is running.");
    println!("  MQTT (3.1.1)      : {}", hub.mqtt_addr);
    if let Some(v5) = hub.mqtt_v5_addr {
        println!("  MQTT (5)          : {v5}");
    }
    println!("  dashboard         : http://{}/dashboard/", hub.api_addr);
    println!("  API               : http://{}", hub.api_addr);
    println!("  API docs          : http://{}/api/docs", hub.api_addr);
    println!("  admin token       : {}", hub.admin_token);
    println!("  QuestDB console   : http://{}", hub.questdb_http);
    if let Some(pg) = hub.questdb_pg {
        println!("  QuestDB PG wire   : {pg} (user admin, password quest)");
    }
    println!(
        "  estate            : {} compounds, {} devices",
        estate.compounds.len(),
        estate.devices.len()
    );
    println!();
    println!("Try:");
    println!(
        "  curl -H 'Authorization: Bearer {}' http://{}/api/v1/devices",
        hub.admin_token, hub.api_addr
    );
    println!(
        "  curl -H 'Authorization: Bearer {}' 'http://{}/api/v1/tickets?active=true'",
        hub.admin_token, hub.api_addr
    );
    println!(
        "  curl -N 'http://{}/api/v1/alerts/stream?access_token={}'   # live alerts (SSE)",
        hub.api_addr, hub.admin_token
    );
    println!("  curl http://{}/metrics", hub.api_addr);
    println!(
        "  curl -G http://{}/exec --data-urlencode 'query=SELECT * FROM lift_telemetry LIMIT -10'",
        hub.questdb_http
    );
    println!("Ctrl-C stops the demo.");
    println!();

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim = if a.no_sim {
        None
    } else {
        let cfg = steward_device_sim::FleetConfig {
            broker: hub.mqtt_addr.to_string(),
            devices: steward_device_sim::devices_from_estate(&estate),
            gateways: steward_device_sim::gateways_from_estate(&estate),
            seed: 42,
            speed: a.speed,
            faults,
            duration: None,
            qos: 1,
        };
        Some(tokio::spawn(steward_device_sim::run_fleet(cfg, async {
            let _ = stop_rx.await;
        })))
    };
    match a.duration {
        Some(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = shutdown_signal() => {}
            }
        }
        None => shutdown_signal().await,
    }
    let _ = stop_tx.send(());
    if let Some(sim) = sim {
        match tokio::time::timeout(Duration::from_secs(10), sim).await {
            Ok(Ok(Ok(report))) => eprintln!(
                "simulator: published={} acked={} errors={}",
                report.published, report.acked, report.errors
            ),
            Ok(Ok(Err(e))) => eprintln!("simulator error: {e}"),
            _ => eprintln!("simulator did not stop in time"),
        }
    }
    let m = hub.ingest_metrics.clone();
    hub.shutdown().await;
    eprintln!(
        "ingest: received={} readings={} rejected={} rows_written={}",
        m.received.get(),
        m.readings_total(),
        m.rejected_total(),
        m.storage.rows_written.get()
    );
    drop(temp);
    Ok(())
}

fn check_payload(
    topic: &str,
    kind: Option<DeviceKind>,
    estate: Option<PathBuf>,
    file: Option<PathBuf>,
) -> Result<()> {
    let mut payload = Vec::new();
    match file.as_deref() {
        None => std::io::stdin().read_to_end(&mut payload)?,
        Some(p) if p.as_os_str() == "-" => std::io::stdin().read_to_end(&mut payload)?,
        Some(p) => {
            payload = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
            payload.len()
        }
    };
    let registry = Registry::open_in_memory()?;
    match (estate, kind) {
        (Some(path), _) => registry.apply(&EstateFile::load(&path)?)?,
        (None, Some(kind)) => {
            let id = match contract::parse_topic(topic.as_bytes()) {
                Ok(contract::Topic::Device { id, .. }) => id.to_string(),
                Ok(contract::Topic::Gateway { .. }) => {
                    bail!(
                        "gateway topics need --estate to know which devices are behind the gateway"
                    )
                }
                Ok(contract::Topic::StationAlerts { .. }) => {
                    bail!("stations/{{id}}/alerts is the hub's downlink, not a device topic")
                }
                Err(e) => bail!("bad_topic: {e}"),
            };
            registry.apply(&EstateFile::parse(&format!(
                "[[stations]]\nid = \"st\"\nname = \"check\"\n[[streets]]\nid = \"s\"\nname = \"check\"\nfallback_station = \"st\"\n\
                 [[communities]]\nid = \"c\"\nname = \"check\"\nstreet = \"s\"\n[[compounds]]\nid = \"cmp\"\nname = \"check\"\ncommunity = \"c\"\n\
                 [[buildings]]\nid = \"b\"\nname = \"check\"\ncompound = \"cmp\"\n\
                 [[devices]]\nid = \"{id}\"\nkind = \"{kind}\"\nvendor = \"check\"\nbuilding = \"b\"\nsecret = \"check-payload\"\n"
            ))?)?
        }
        (None, None) => bail!("give --kind (the device's kind) or --estate (an estate file)"),
    }
    let decoded = contract::decode(
        topic.as_bytes(),
        &payload,
        &registry.directory(),
        steward_estate::clock::now_ms(),
        &IngestConfig::default(),
    );
    for r in &decoded.readings {
        let values: serde_json::Map<String, serde_json::Value> = r
            .values
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_json()))
            .collect();
        println!(
            "accepted reading: device={} kind={} ts={} seq={:?} metrics={} extras={}",
            r.device_id,
            r.kind,
            r.ts_ms,
            r.seq,
            serde_json::Value::Object(values),
            r.extras.as_deref().unwrap_or("-")
        );
    }
    for e in &decoded.events {
        println!(
            "accepted event: device={} event={} ts={} data={}",
            e.device_id, e.event, e.ts_ms, e.data
        );
    }
    for s in &decoded.statuses {
        println!(
            "accepted status: device={} status={} ts={}",
            s.device_id,
            s.status.as_str(),
            s.ts_ms
        );
    }
    for r in &decoded.rejects {
        println!("rejected: reason={} detail={}", r.reason, r.detail);
    }
    if !decoded.rejects.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}

fn rules_command(cmd: RulesCommand) -> Result<()> {
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
                println!(
                    "{:<24} {:<24} {:<3} {:<16} {:>5}  opened_ms",
                    "device", "rule", "pri", "station", "times"
                );
                for t in &tickets {
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
            Ok(())
        }
    }
}
