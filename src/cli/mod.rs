//! The subcommands of the `steward` binary, one module each. They belong to the binary,
//! not to the `steward` library: they parse what the user typed, call the library and
//! print; the hub itself lives in `hub.rs` and the crates below it.

pub mod config;
pub mod demo;
mod demo_cluster;
mod inbox;
pub mod payload;
pub mod rules;
pub mod run;
pub mod tokens;

/// `steward demo`: one hub, or with `--cluster` the cluster demo.
pub fn demo(a: demo::DemoArgs) -> anyhow::Result<()> {
    if a.cluster {
        demo_cluster::run(a)
    } else {
        demo::run(a)
    }
}

use anyhow::Result;
use std::path::Path;

/// The runtime of the subcommands that talk to the network. Built only by those, so the
/// offline ones (check-config, token, rules check) start no threads.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A rule file or directory, or the built-in pack when none is given.
pub fn load_pack(rule: Option<&Path>) -> Result<steward_rules::RulePack> {
    Ok(match rule {
        Some(p) => steward_rules::RulePack::load(p)?,
        None => steward_rules::RulePack::default_pack(),
    })
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM (how service managers stop the hub).
pub async fn shutdown_signal() {
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
