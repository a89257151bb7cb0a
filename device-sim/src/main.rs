//! `steward-sim`: run a simulated estate against a broker, load-test it, or print a sample
//! payload for a device kind.

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::time::Duration;
use steward_device_sim::{
    devices_from_estate, gateways_from_estate, run_fleet, run_load, telemetry_payload, DeviceModel,
    Fault, FleetConfig, LoadConfig,
};
use steward_estate::{DeviceKind, EstateFile};

#[derive(Parser)]
#[command(name = "steward-sim", version, about = "Steward device simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Connect every device and gateway of an estate and publish realistic telemetry.
    Run {
        /// Broker address, host:port. Several (cluster front ends): comma-separated or
        /// repeated; each device starts on one (spread by device) and, when its connection
        /// fails, moves to the next and sends again what was not acknowledged.
        #[arg(
            long,
            alias = "brokers",
            default_value = "127.0.0.1:1883",
            value_delimiter = ','
        )]
        broker: Vec<String>,
        /// Estate file whose devices and gateways to simulate (plain secrets needed).
        #[arg(long)]
        estate: PathBuf,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Time acceleration: 10 reports ten times as often with models ten times faster.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Fault to inject after the device's first report: NAME or NAME=DEVICE_ID.
        #[arg(long = "fault", value_parser = parse_fault_arg)]
        faults: Vec<(Fault, Option<String>)>,
        /// Stop after this long (e.g. 60s, 5m); default: until Ctrl-C.
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        #[arg(long, default_value_t = 1)]
        qos: u8,
        /// Smoke detectors send a `test` event this often, in simulated time (e.g. 30days);
        /// each at a time fixed by the seed (docs/rounds.md).
        #[arg(long, value_parser = humantime::parse_duration)]
        smoke_self_test: Option<Duration>,
        /// Pumps do a 5-minute test run this often, in simulated time (e.g. 7days).
        #[arg(long, value_parser = humantime::parse_duration)]
        pump_test_run: Option<Duration>,
    },
    /// Push telemetry as fast as asked and report the acknowledged rate.
    Load {
        /// Broker address, host:port; several comma-separated or repeated spread the
        /// connections over them.
        #[arg(
            long,
            alias = "brokers",
            default_value = "127.0.0.1:1883",
            value_delimiter = ','
        )]
        broker: Vec<String>,
        #[arg(long)]
        estate: PathBuf,
        /// Target messages per second in total; 0 = as fast as possible.
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Messages to send in total.
        #[arg(long, conflicts_with = "duration")]
        total: Option<u64>,
        /// How long to send (default 10s when --total is not given).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        #[arg(long, default_value_t = 1)]
        qos: u8,
        /// Devices to connect; messages are spread over them.
        #[arg(long, default_value_t = 50)]
        connections: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long)]
        no_progress: bool,
    },
    /// Print one telemetry payload of a device kind, optionally with a fault.
    Sample {
        #[arg(long)]
        kind: DeviceKind,
        #[arg(long)]
        fault: Option<Fault>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Device id the model is seeded with (default `<kind>-sample`).
        #[arg(long)]
        id: Option<String>,
    },
}

fn parse_fault_arg(s: &str) -> Result<(Fault, Option<String>), String> {
    let (name, target) = match s.split_once('=') {
        Some((n, t)) if !t.is_empty() => (n, Some(t.to_string())),
        Some((_, _)) => return Err(format!("`{s}`: empty device id after `=`")),
        None => (s, None),
    };
    let fault = name.parse::<Fault>().map_err(|e| e.to_string())?;
    Ok((fault, target))
}

fn load_estate(path: &Path) -> Result<EstateFile> {
    EstateFile::load(path).with_context(|| format!("loading estate {}", path.display()))
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: redirected logs stay plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    match Cli::parse().command {
        Command::Run {
            broker,
            estate,
            seed,
            speed,
            faults,
            duration,
            qos,
            smoke_self_test,
            pump_test_run,
        } => {
            let file = load_estate(&estate)?;
            let ms = |d: Option<Duration>| d.map(|d| d.as_millis() as i64);
            let cfg = FleetConfig {
                broker: broker.join(","),
                devices: devices_from_estate(&file),
                gateways: gateways_from_estate(&file),
                seed,
                speed,
                faults,
                duration,
                qos,
                self_tests: steward_device_sim::SelfTests {
                    smoke_test_every_ms: ms(smoke_self_test),
                    pump_run_every_ms: ms(pump_test_run),
                },
            };
            let shutdown = async {
                if tokio::signal::ctrl_c().await.is_err() {
                    // Without a signal handler only --duration ends the run.
                    std::future::pending::<()>().await;
                }
            };
            let r = run_fleet(cfg, shutdown).await?;
            println!(
                "published={} acked={} errors={}",
                r.published, r.acked, r.errors
            );
        }
        Command::Load {
            broker,
            estate,
            rate,
            total,
            duration,
            qos,
            connections,
            seed,
            no_progress,
        } => {
            let file = load_estate(&estate)?;
            let duration = match (total, duration) {
                (None, None) => Some(Duration::from_secs(10)),
                (_, d) => d,
            };
            let cfg = LoadConfig {
                broker: broker.join(","),
                devices: devices_from_estate(&file),
                rate,
                total,
                duration,
                qos,
                seed,
                connections,
                progress: !no_progress,
            };
            let r = run_load(cfg).await?;
            println!(
                "sent={} acked={} errors={} elapsed_s={:.3} rate_msg_s={:.1}",
                r.sent,
                r.acked,
                r.errors,
                r.elapsed.as_secs_f64(),
                r.rate()
            );
            if r.connect_failures > 0 {
                eprintln!("warning: {} connections failed", r.connect_failures);
            }
        }
        Command::Sample {
            kind,
            fault,
            seed,
            id,
        } => {
            let id = id.unwrap_or_else(|| format!("{kind}-sample"));
            let mut model = DeviceModel::new(&id, kind, seed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .context("system clock before 1970")?
                .as_millis() as i64;
            // Let the fault develop (a held-open gate, a heating bearing) before the sample
            // is taken, from a model that has run normally for a while.
            let develop = fault.map_or(0, |f| f.onset_time().as_millis() as i64);
            let from = now - develop;
            let mut t = from - 15 * 60_000;
            while t < from {
                model.metrics_at(t);
                t += 10_000;
            }
            model.metrics_at(from);
            if let Some(f) = fault {
                if f == Fault::Offline {
                    bail!("an offline device publishes nothing; pick another fault");
                }
                model.try_set_fault(Some(f))?;
            }
            let mut t = from;
            while t < now {
                t = (t + 10_000).min(now);
                model.metrics_at(t);
            }
            let metrics = model.metrics_at(now);
            let doc: serde_json::Value =
                serde_json::from_slice(&telemetry_payload(now, model.next_seq(), &metrics))?;
            println!("{}", serde_json::to_string_pretty(&doc)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_args() {
        assert_eq!(
            parse_fault_arg("lift-trapped=lift-7").ok(),
            Some((Fault::LiftTrapped, Some("lift-7".into())))
        );
        assert_eq!(
            parse_fault_arg("offline").ok(),
            Some((Fault::Offline, None))
        );
        let err = parse_fault_arg("melt").expect_err("unknown");
        assert!(err.contains("smoke-co"), "{err}");
        assert!(parse_fault_arg("smoke-co=").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "steward-sim",
            "run",
            "--estate",
            "e.toml",
            "--fault",
            "lift-trapped",
            "--fault",
            "offline=smoke-1",
            "--duration",
            "1m",
        ])
        .expect("parses");
        let Command::Run {
            faults, duration, ..
        } = cli.command
        else {
            panic!("run expected");
        };
        assert_eq!(faults.len(), 2);
        assert_eq!(duration, Some(Duration::from_secs(60)));
        let cli = Cli::try_parse_from([
            "steward-sim",
            "run",
            "--estate",
            "e.toml",
            "--brokers",
            "127.0.0.1:1883,127.0.0.1:1885",
            "--broker",
            "127.0.0.1:1887",
        ])
        .expect("parses");
        let Command::Run { broker, .. } = cli.command else {
            panic!("run expected");
        };
        assert_eq!(
            broker.join(","),
            "127.0.0.1:1883,127.0.0.1:1885,127.0.0.1:1887"
        );
    }
}
