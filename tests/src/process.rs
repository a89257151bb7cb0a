//! The hub as a separate OS process (`steward run`), for tests that kill it (SIGKILL) or
//! stop it (SIGTERM) the way an operator or the kernel would.

use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use steward::config::HubConfig;

/// Path of the `steward` binary next to this test binary, built on demand. `STEWARD_BIN`
/// names another one: several checkouts sharing a target directory overwrite each other's
/// `target/<profile>/steward`.
pub fn steward_bin() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("STEWARD_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let exe = std::env::current_exe()?;
    // target/<profile>/deps/<test> or target/<profile>/<bin> -> target/<profile>/steward
    let mut profile_dir = exe
        .parent()
        .ok_or_else(|| anyhow!("cannot locate the target directory from {}", exe.display()))?;
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir.parent().unwrap_or(profile_dir);
    }
    let bin = profile_dir.join("steward");
    if !bin.exists() {
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let mut args = vec!["build", "--bin", "steward"];
        if release {
            args.push("--release");
        }
        let status = Command::new(env!("CARGO"))
            .args(&args)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .status()
            .context("cargo build --bin steward")?;
        if !status.success() || !bin.exists() {
            bail!("could not build {}", bin.display());
        }
    }
    Ok(bin)
}

/// A running `steward run --config FILE`.
pub struct HubProcess {
    child: Child,
    pub mqtt_addr: String,
    pub api_addr: String,
    pub questdb_http: String,
    pub log: PathBuf,
}

impl HubProcess {
    /// Write `config` to `dir/hub.toml` and start the hub on it; returns once it printed
    /// its addresses (it is then listening).
    pub fn start(config: &HubConfig, dir: &Path) -> Result<HubProcess> {
        let cfg_path = dir.join("hub.toml");
        std::fs::write(&cfg_path, toml::to_string(config)?)?;
        let log = dir.join(format!(
            "hub-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis()
        ));
        let mut child = Command::new(steward_bin()?)
            .args(["run", "--config"])
            .arg(&cfg_path)
            .env("RUST_LOG", "warn,steward=info,steward_ingest=info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning steward run")?;
        let stderr = child.stderr.take().ok_or_else(|| anyhow!("no stderr"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let log_path = log.clone();
        std::thread::spawn(move || {
            let mut out = std::fs::File::create(&log_path).ok();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("steward running: ") {
                    let _ = tx.send(rest.to_string());
                }
                if let Some(f) = out.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let banner = loop {
            if let Ok(b) = rx.recv_timeout(Duration::from_millis(200)) {
                break b;
            }
            if let Some(status) = child.try_wait()? {
                bail!(
                    "hub exited with {status} before it was up; log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("hub not up within 120 s");
            }
        };
        // "mqtt ADDR | api http://ADDR | questdb http://ADDR"
        let parts: Vec<&str> = banner.split(" | ").collect();
        let mqtt_addr = parts
            .first()
            .and_then(|p| p.strip_prefix("mqtt "))
            .ok_or_else(|| anyhow!("unexpected banner {banner}"))?
            .replace("0.0.0.0", "127.0.0.1");
        let api_addr = parts
            .get(1)
            .and_then(|p| p.strip_prefix("api http://"))
            .ok_or_else(|| anyhow!("unexpected banner {banner}"))?
            .to_string();
        let questdb_http = parts
            .get(2)
            .and_then(|p| p.strip_prefix("questdb http://"))
            .ok_or_else(|| anyhow!("unexpected banner {banner}"))?
            .to_string();
        Ok(HubProcess {
            child,
            mqtt_addr,
            api_addr,
            questdb_http,
            log,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no chance to flush anything.
    pub fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }

    /// SIGTERM, then wait up to `limit` for the exit; returns the exit code and how long
    /// the hub took.
    pub fn terminate(mut self, limit: Duration) -> Result<(Option<i32>, Duration)> {
        let start = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        loop {
            if let Some(s) = self.child.try_wait()? {
                return Ok((s.code(), start.elapsed()));
            }
            if start.elapsed() > limit {
                let _ = self.child.kill();
                bail!(
                    "hub did not exit within {limit:?} of SIGTERM; log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Resident memory of a process in KiB, from `/proc/{pid}/status` (0 if it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
