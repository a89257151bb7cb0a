//! The zero-loss soak (issue #17): SIGKILL the hub under steady QoS 1 load, `--reps` times
//! in a row for each ack mode, with another process keeping every core busy
//! (`stress-ng --cpu N`), and count what it had acknowledged but QuestDB does not have
//! after the restart. The suite runs one cycle per mode; this runs the long version.
//!
//! Prints one line per cycle and a summary per mode; exits non-zero if a `spooled` or
//! `synced` cycle lost or doubled an acknowledged message.

use anyhow::Result;
use clap::Parser;
use steward_tests::crash::{cycle_t0, kill_cycle, parse_modes, CrashEnv, KillReport};

#[derive(Parser)]
#[command(about = "SIGKILL the hub under load, again and again, and count acknowledged loss")]
struct Args {
    /// Consecutive kill cycles per mode.
    #[arg(long, default_value_t = 20)]
    reps: u32,
    /// Ack modes to soak, comma separated (`spooled`, `synced`, `received`).
    #[arg(long, default_value = "spooled,synced,received")]
    modes: String,
    /// Acknowledged publishes before each kill.
    #[arg(long, default_value_t = 3_000)]
    kill_after: u64,
    /// Do not start stress-ng (a quiet machine).
    #[arg(long)]
    no_saturate: bool,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    let modes = parse_modes(&args.modes)?;
    let env = CrashEnv::start().await?;
    let mut cycle = 0;
    let mut failed = false;
    for mode in modes {
        let mut reports: Vec<KillReport> = Vec::new();
        for rep in 1..=args.reps {
            let r = kill_cycle(
                &env,
                mode,
                cycle_t0(cycle),
                args.kill_after,
                !args.no_saturate,
            )
            .await?;
            cycle += 1;
            println!("{rep:>3}/{} {r}", args.reps);
            reports.push(r);
        }
        let lost: u64 = reports.iter().map(|r| r.lost).sum();
        let dups: u64 = reports.iter().map(|r| r.duplicates).sum();
        let acked: u64 = reports.iter().map(|r| r.acked).sum();
        let clean = reports.iter().filter(|r| r.lost == 0).count();
        let saturated = reports.iter().all(|r| r.saturated);
        println!(
            "SUMMARY ack={mode:?}: {} cycles{}, {clean} with 0 lost; acknowledged {acked}, lost {lost}, duplicates {dups}",
            reports.len(),
            if saturated { " on saturated cores" } else { "" },
        );
        if mode.holds_acks() && (lost > 0 || dups > 0) {
            failed = true;
        }
    }
    if failed {
        anyhow::bail!(
            "an acknowledged message was lost or doubled in a mode that promises it is not"
        );
    }
    Ok(())
}
