//! Managed QuestDB: the `org.questdb:questdb` jar from Maven Central run as a child
//! process on chosen (or ephemeral) ports in a temporary or configured root.

use crate::StorageError;
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tracing::{info, warn};

/// 9.3.x is the last line that runs on Java 17; 9.4+ needs Java 25.
fn start_err(reason: impl Into<String>) -> StorageError {
    StorageError::QuestDbStart {
        reason: reason.into(),
    }
}

pub const QUESTDB_VERSION: &str = "9.3.4";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ManagedConfig {
    pub version: String,
    /// Path of the jar; default `$STEWARD_QUESTDB_JAR` or `~/.cache/steward/questdb-<version>.jar`,
    /// fetched with Maven when missing.
    pub jar: Option<PathBuf>,
    /// Java executable; default `$JAVA_HOME/bin/java`, then `java` on PATH.
    pub java: Option<PathBuf>,
    /// Data root, kept across restarts (relative paths are taken from the config file's
    /// directory).
    pub root: Option<PathBuf>,
    /// Use a fresh temporary root removed on exit instead of `root` (demo, tests).
    pub temporary: bool,
    /// 0 picks a free port.
    pub http_port: u16,
    pub pg_port: u16,
    /// Address the PostgreSQL wire port listens on (Grafana, psql); loopback by default.
    /// Any other address needs `pg_password`.
    pub pg_bind: IpAddr,
    /// Admin user of the PG wire port (QuestDB's default: `admin`).
    pub pg_user: Option<String>,
    /// Its password (QuestDB's default: `quest`).
    pub pg_password: Option<String>,
    /// A read-only PG user (dashboards): enabled when set, with `pg_readonly_password`.
    pub pg_readonly_user: Option<String>,
    pub pg_readonly_password: Option<String>,
    /// JVM heap limit, e.g. `1g`.
    pub max_heap: String,
    #[serde(with = "humantime_serde")]
    pub start_timeout: Duration,
    /// Further QuestDB server settings, as its `QDB_*` environment variables, e.g.
    /// `{ QDB_SHARED_WORKER_COUNT = "1" }`. The listen addresses are the hub's to set.
    pub settings: std::collections::BTreeMap<String, String>,
}

/// Settings the hub sets itself (listen addresses, telemetry) and a config may not.
const RESERVED_SETTINGS: &[&str] = &[
    "QDB_HTTP_NET_BIND_TO",
    "QDB_PG_NET_BIND_TO",
    "QDB_LINE_TCP_NET_BIND_TO",
    "QDB_HTTP_MIN_NET_BIND_TO",
];

/// Problems with `questdb.managed.settings`, each naming the key.
pub fn settings_errors(settings: &std::collections::BTreeMap<String, String>) -> Vec<String> {
    let mut e = Vec::new();
    for k in settings.keys() {
        let well_formed = k.starts_with("QDB_")
            && k.len() > 4
            && k.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !well_formed {
            e.push(format!(
                "questdb.managed.settings.{k}: not a QuestDB setting (expected QDB_ and upper-case letters, digits, `_`)"
            ));
        } else if RESERVED_SETTINGS.contains(&k.as_str()) {
            e.push(format!(
                "questdb.managed.settings.{k}: set by the hub (listen addresses follow http_port and pg_port)"
            ));
        }
    }
    e
}

/// QuestDB's PG login when none is configured.
const DEFAULT_PG_PASSWORD: &str = "quest";
/// QuestDB settings that the typed `pg_*` keys set.
const PG_SETTINGS: &[&str] = &[
    "QDB_PG_USER",
    "QDB_PG_PASSWORD",
    "QDB_PG_READONLY_USER_ENABLED",
    "QDB_PG_READONLY_USER",
    "QDB_PG_READONLY_PASSWORD",
];

impl ManagedConfig {
    /// Problems with the `pg_*` keys, each naming its key.
    pub fn pg_errors(&self) -> Vec<String> {
        let key = |k: &str| format!("questdb.managed.{k}");
        let mut e = Vec::new();
        let weak = |p: &Option<String>| match p {
            None => true,
            Some(p) => p == DEFAULT_PG_PASSWORD || p.len() < 8,
        };
        if self.pg_bind.is_ipv6() {
            e.push(format!(
                "{}: QuestDB listens on IPv4 addresses only (e.g. 0.0.0.0 or 192.0.2.10)",
                key("pg_bind")
            ));
        }
        if !self.pg_bind.is_loopback() && weak(&self.pg_password) {
            e.push(format!(
                "{}: required, 8 characters or more and not QuestDB's default, when pg_bind ({}) \
                 is not a loopback address",
                key("pg_password"),
                self.pg_bind
            ));
        }
        match (&self.pg_readonly_user, &self.pg_readonly_password) {
            (Some(_), None) => e.push(format!(
                "{}: required when pg_readonly_user is set",
                key("pg_readonly_password")
            )),
            (None, Some(_)) => e.push(format!(
                "{}: required when pg_readonly_password is set",
                key("pg_readonly_user")
            )),
            (Some(u), Some(_)) => {
                if weak(&self.pg_readonly_password) {
                    e.push(format!(
                        "{}: 8 characters or more and not QuestDB's default",
                        key("pg_readonly_password")
                    ));
                }
                if *u == self.pg_user.as_deref().unwrap_or("admin") {
                    e.push(format!(
                        "{}: `{u}` is the admin user; choose another name",
                        key("pg_readonly_user")
                    ));
                }
            }
            (None, None) => {}
        }
        for (k, v) in [
            ("pg_user", &self.pg_user),
            ("pg_readonly_user", &self.pg_readonly_user),
        ] {
            let ok = v.as_deref().is_none_or(|u| {
                !u.is_empty()
                    && u.len() <= 64
                    && u.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
            if !ok {
                e.push(format!(
                    "{}: expected 1 to 64 letters, digits, `_` or `-`",
                    key(k)
                ));
            }
        }
        let typed = self.pg_user.is_some()
            || self.pg_password.is_some()
            || self.pg_readonly_user.is_some()
            || self.pg_readonly_password.is_some();
        for s in PG_SETTINGS {
            if typed && self.settings.contains_key(*s) {
                e.push(format!(
                    "questdb.managed.settings.{s}: set by the pg_* keys; use those alone"
                ));
            }
        }
        e
    }

    /// The QuestDB settings the `pg_*` keys stand for.
    fn pg_settings(&self) -> Vec<(String, String)> {
        let mut v = Vec::new();
        let mut set = |k: &str, val: &str| v.push((k.to_string(), val.to_string()));
        if let Some(u) = &self.pg_user {
            set("QDB_PG_USER", u);
        }
        if let Some(p) = &self.pg_password {
            set("QDB_PG_PASSWORD", p);
        }
        if let (Some(u), Some(p)) = (&self.pg_readonly_user, &self.pg_readonly_password) {
            set("QDB_PG_READONLY_USER_ENABLED", "true");
            set("QDB_PG_READONLY_USER", u);
            set("QDB_PG_READONLY_PASSWORD", p);
        }
        v
    }
}

impl Default for ManagedConfig {
    fn default() -> Self {
        ManagedConfig {
            version: QUESTDB_VERSION.to_string(),
            jar: None,
            java: None,
            root: Some(PathBuf::from("var/questdb")),
            temporary: false,
            http_port: 0,
            pg_port: 0,
            pg_bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            pg_user: None,
            pg_password: None,
            pg_readonly_user: None,
            pg_readonly_password: None,
            max_heap: "1g".into(),
            start_timeout: Duration::from_secs(90),
            settings: Default::default(),
        }
    }
}

/// A running QuestDB child process; stopped when dropped.
pub struct ManagedQuestDb {
    child: Option<Child>,
    pub http_addr: SocketAddr,
    pub pg_addr: SocketAddr,
    root: PathBuf,
    _temp: Option<TempRoot>,
    java: PathBuf,
    jar: PathBuf,
    ports: [u16; 4],
    settings: Vec<(String, String)>,
}

struct TempRoot(PathBuf);
impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn free_port() -> Result<u16, StorageError> {
    let l = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| start_err(format!("cannot find a free port: {e}")))?;
    Ok(l.local_addr().map_err(|e| start_err(e.to_string()))?.port())
}

fn cache_dir() -> PathBuf {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("steward")
}

/// Locate (or fetch with Maven) the QuestDB jar of `version`.
pub fn resolve_jar(cfg: &ManagedConfig) -> Result<PathBuf, StorageError> {
    if let Some(j) = &cfg.jar {
        return if j.is_file() {
            Ok(j.clone())
        } else {
            Err(start_err(format!(
                "questdb.managed.jar: {} does not exist",
                j.display()
            )))
        };
    }
    if let Some(j) = std::env::var_os("STEWARD_QUESTDB_JAR").map(PathBuf::from) {
        if j.is_file() {
            return Ok(j);
        }
        return Err(start_err(format!(
            "STEWARD_QUESTDB_JAR={} does not exist",
            j.display()
        )));
    }
    let dir = cache_dir();
    let jar = dir.join(format!("questdb-{}.jar", cfg.version));
    if jar.is_file() {
        return Ok(jar);
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| start_err(format!("cannot create {}: {e}", dir.display())))?;
    info!(version = %cfg.version, dir = %dir.display(), "fetching questdb jar with maven");
    // Fetch into a private folder and rename into place, so concurrent first runs (tests
    // in parallel) never see a half-written jar.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let staging = dir.join(format!("fetch-{}-{nanos}", std::process::id()));
    let status = Command::new("mvn")
        .args([
            "-q",
            "-B",
            "dependency:copy",
            &format!("-Dartifact=org.questdb:questdb:{}", cfg.version),
            &format!("-DoutputDirectory={}", staging.display()),
        ])
        .current_dir(&dir)
        .status()
        .map_err(|e| {
            start_err(format!(
                "maven (mvn) is needed to fetch org.questdb:questdb:{} and could not be run ({e}); \
                 install Maven (e.g. `apt-get install maven`) or set STEWARD_QUESTDB_JAR",
                cfg.version
            ))
        })?;
    let fetched = staging.join(format!("questdb-{}.jar", cfg.version));
    let renamed = status.success() && fetched.is_file() && std::fs::rename(&fetched, &jar).is_ok();
    let _ = std::fs::remove_dir_all(&staging);
    if !renamed && !jar.is_file() {
        return Err(start_err(format!(
            "mvn could not fetch org.questdb:questdb:{} into {}",
            cfg.version,
            dir.display()
        )));
    }
    Ok(jar)
}

/// Locate a Java that can run this QuestDB version.
pub fn resolve_java(cfg: &ManagedConfig) -> Result<PathBuf, StorageError> {
    let candidate = cfg.java.clone().unwrap_or_else(|| {
        std::env::var_os("JAVA_HOME")
            .map(|h| PathBuf::from(h).join("bin").join("java"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from("java"))
    });
    let out = Command::new(&candidate)
        .arg("-version")
        .output()
        .map_err(|e| {
            start_err(format!(
                "java ({}) could not be run ({e}); install a JDK 17 or newer \
             (e.g. `apt-get install openjdk-17-jre-headless`) or set questdb.managed.java",
                candidate.display()
            ))
        })?;
    let text = String::from_utf8_lossy(&out.stderr);
    let major = text
        .split('"')
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    if major < 17 {
        return Err(start_err(format!(
            "{} is Java {major}; QuestDB {} needs Java 17 or newer",
            candidate.display(),
            cfg.version
        )));
    }
    Ok(candidate)
}

const PID_FILE: &str = "steward-questdb.pid";

/// Stop a QuestDB a killed hub left running on `root`: only a process whose command line
/// is a QuestDB server on exactly this root, so a reused pid is never hit.
fn reclaim_orphan(root: &Path) {
    let Some(pid) = std::fs::read_to_string(root.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return;
    };
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let root_arg = root.as_os_str().as_encoded_bytes();
    let is_ours = args.iter().any(|a| a.ends_with(b"io.questdb.ServerMain"))
        && args.windows(2).any(|w| w[0] == b"-d" && w[1] == root_arg);
    if !is_ours {
        return;
    }
    warn!(pid, root = %root.display(), "stopping a QuestDB left running by a previous hub");
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    if alive(pid) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
}

/// Running (a zombie waiting for its new parent to reap it counts as gone).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

impl ManagedQuestDb {
    pub fn start(cfg: &ManagedConfig) -> Result<ManagedQuestDb, StorageError> {
        let jar = resolve_jar(cfg)?;
        let java = resolve_java(cfg)?;
        let (root, temp) = match &cfg.root {
            Some(r) if !cfg.temporary => (r.clone(), None),
            _ => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or_default();
                let dir = std::env::temp_dir()
                    .join(format!("steward-questdb-{}-{nanos}", std::process::id()));
                (dir.clone(), Some(TempRoot(dir)))
            }
        };
        std::fs::create_dir_all(&root)
            .map_err(|e| start_err(format!("cannot create {}: {e}", root.display())))?;
        reclaim_orphan(&root);
        let pick = |p: u16| if p == 0 { free_port() } else { Ok(p) };
        let ports = [
            pick(cfg.http_port)?,
            pick(cfg.pg_port)?,
            free_port()?,
            free_port()?,
        ];
        let mut db = ManagedQuestDb {
            child: None,
            http_addr: SocketAddr::from(([127, 0, 0, 1], ports[0])),
            pg_addr: SocketAddr::new(cfg.pg_bind, ports[1]),
            root,
            _temp: temp,
            java,
            jar,
            ports,
            settings: cfg
                .pg_settings()
                .into_iter()
                .chain(cfg.settings.iter().map(|(k, v)| (k.clone(), v.clone())))
                .collect(),
        };
        db.spawn(&cfg.max_heap)?;
        let mut attempt = 1;
        while let Err(e) = db.wait_ready(cfg.start_timeout) {
            // An ephemeral port picked here can be taken by another process before the
            // JVM binds it; pick new ones and try again.
            if attempt >= 3 || cfg.http_port != 0 || cfg.pg_port != 0 {
                return Err(e);
            }
            warn!(error = %e, attempt, "questdb did not start; retrying on other ports");
            db.stop();
            db.ports = [free_port()?, free_port()?, free_port()?, free_port()?];
            db.http_addr = SocketAddr::from(([127, 0, 0, 1], db.ports[0]));
            db.pg_addr = SocketAddr::new(cfg.pg_bind, db.ports[1]);
            db.spawn(&cfg.max_heap)?;
            attempt += 1;
        }
        info!(http = %db.http_addr, pg = %db.pg_addr, root = %db.root.display(), "questdb ready");
        Ok(db)
    }

    fn spawn(&mut self, max_heap: &str) -> Result<(), StorageError> {
        let log = std::fs::File::create(self.root.join("questdb.log"))
            .map_err(|e| start_err(format!("cannot create log in {}: {e}", self.root.display())))?;
        let log2 = log.try_clone().map_err(|e| start_err(e.to_string()))?;
        let [http, pg, ilp, min] = self.ports;
        let child = Command::new(&self.java)
            .arg(format!("-Xmx{max_heap}"))
            .args(["-XX:+UseParallelGC", "-p"])
            .arg(&self.jar)
            .args(["-m", "io.questdb/io.questdb.ServerMain", "-d"])
            .arg(&self.root)
            .env("QDB_HTTP_NET_BIND_TO", format!("127.0.0.1:{http}"))
            .env(
                "QDB_PG_NET_BIND_TO",
                SocketAddr::new(self.pg_addr.ip(), pg).to_string(),
            )
            .env("QDB_LINE_TCP_NET_BIND_TO", format!("127.0.0.1:{ilp}"))
            .env("QDB_HTTP_MIN_NET_BIND_TO", format!("127.0.0.1:{min}"))
            .env("QDB_LINE_UDP_ENABLED", "false")
            .env("QDB_TELEMETRY_ENABLED", "false")
            .env("QDB_SHARED_WORKER_COUNT", "2")
            .envs(self.settings.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .spawn()
            .map_err(|e| start_err(format!("cannot start java: {e}")))?;
        // Remembered so a hub killed with SIGKILL can stop this JVM when it starts again
        // on the same root, instead of meeting a server that holds the data directory.
        let _ = std::fs::write(self.root.join(PID_FILE), child.id().to_string());
        self.child = Some(child);
        Ok(())
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), StorageError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(start_err(format!(
                        "questdb exited with {status} during start-up; log: {}",
                        self.log_tail()
                    )));
                }
            }
            if ping(self.http_addr) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(start_err(format!(
                    "questdb did not answer on {} within {timeout:?}; log: {}",
                    self.http_addr,
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.root.join("questdb.log")).unwrap_or_default();
        let start = text.len().saturating_sub(2000);
        let mut i = start;
        while i > 0 && !text.is_char_boundary(i) {
            i -= 1;
        }
        text[i..].to_string()
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stop the server (SIGKILL: QuestDB's WAL makes committed data durable).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same ports and root, e.g. after [`stop`](Self::stop) in an
    /// outage test.
    pub fn restart(&mut self, max_heap: &str, timeout: Duration) -> Result<(), StorageError> {
        self.stop();
        self.spawn(max_heap)?;
        self.wait_ready(timeout)
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for ManagedQuestDb {
    fn drop(&mut self) {
        if self.child.is_some() {
            warn!(root = %self.root.display(), "stopping managed questdb");
        }
        self.stop();
    }
}

/// QuestDB answers `/ping` with 204 once its HTTP server is up.
pub fn ping(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET /ping HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(n) => {
            let head = String::from_utf8_lossy(&buf[..n]);
            head.starts_with("HTTP/1.1 204") || head.starts_with("HTTP/1.1 200")
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_must_be_questdb_variables_the_hub_does_not_own() {
        let mut s = std::collections::BTreeMap::new();
        s.insert("QDB_SHARED_WORKER_COUNT".to_string(), "1".to_string());
        assert!(settings_errors(&s).is_empty());
        s.insert("shared.worker.count".to_string(), "1".to_string());
        s.insert(
            "QDB_HTTP_NET_BIND_TO".to_string(),
            "0.0.0.0:9000".to_string(),
        );
        s.insert("QDB_".to_string(), "x".to_string());
        let e = settings_errors(&s);
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e
            .iter()
            .any(|m| m.contains("settings.shared.worker.count: not a QuestDB setting")));
        assert!(e
            .iter()
            .any(|m| m.contains("settings.QDB_HTTP_NET_BIND_TO: set by the hub")));
    }

    #[test]
    fn pg_keys_are_checked_and_name_the_key() {
        let mut cfg = ManagedConfig::default();
        assert!(cfg.pg_errors().is_empty());
        cfg.pg_bind = "0.0.0.0".parse().unwrap();
        let e = cfg.pg_errors();
        assert!(
            e[0].starts_with("questdb.managed.pg_password: required"),
            "{e:?}"
        );
        cfg.pg_password = Some("a-long-secret".into());
        cfg.pg_readonly_user = Some("grafana".into());
        let e = cfg.pg_errors();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("questdb.managed.pg_readonly_password:"),
            "{e:?}"
        );
        cfg.pg_readonly_password = Some("another-secret".into());
        cfg.settings
            .insert("QDB_PG_PASSWORD".to_string(), "x".to_string());
        let e = cfg.pg_errors();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("settings.QDB_PG_PASSWORD"), "{e:?}");
        cfg.settings.clear();
        assert!(cfg.pg_errors().is_empty());
        let env = cfg.pg_settings();
        assert!(env.contains(&("QDB_PG_READONLY_USER_ENABLED".into(), "true".into())));
        assert!(env.contains(&("QDB_PG_READONLY_USER".into(), "grafana".into())));
        cfg.pg_readonly_user = Some("admin".into());
        assert!(cfg.pg_errors()[0].contains("is the admin user"));
        cfg.pg_bind = "::".parse().unwrap();
        assert!(cfg.pg_errors()[0].starts_with("questdb.managed.pg_bind:"));
    }

    #[test]
    fn missing_java_names_what_to_install() {
        let cfg = ManagedConfig {
            java: Some(PathBuf::from("/nonexistent/bin/java")),
            ..ManagedConfig::default()
        };
        let e = resolve_java(&cfg).unwrap_err().to_string();
        assert!(e.contains("install a JDK 17"), "{e}");
    }

    #[test]
    fn missing_jar_names_the_key() {
        let cfg = ManagedConfig {
            jar: Some(PathBuf::from("/nonexistent/questdb.jar")),
            ..ManagedConfig::default()
        };
        let e = resolve_jar(&cfg).unwrap_err().to_string();
        assert!(e.contains("questdb.managed.jar"), "{e}");
    }

    #[test]
    fn missing_maven_names_what_to_install() {
        // A version never cached, fetched with a PATH that has no mvn.
        let cfg = ManagedConfig {
            version: "9.0.0-never-cached".into(),
            ..ManagedConfig::default()
        };
        let old = std::env::var_os("PATH");
        // Safe here: this test is the only one in this binary that reads PATH.
        unsafe { std::env::set_var("PATH", "/nonexistent") };
        let r = resolve_jar(&cfg);
        if let Some(p) = old {
            unsafe { std::env::set_var("PATH", p) };
        }
        let e = r.unwrap_err().to_string();
        assert!(e.contains("install Maven"), "{e}");
    }
}
