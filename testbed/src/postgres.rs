//! A throwaway PostgreSQL server from Debian's binaries (`initdb`, `pg_ctl`): a cluster
//! in a temporary directory, listening on a free loopback port with trust
//! authentication for the user `steward`, with a database `steward`. Stopped (fast, no
//! checkpoint) when dropped.
//!
//! `initdb` and the postmaster refuse to run as root, so as root the directory is given
//! to the `postgres` user and the server commands run through `runuser -u postgres --`.

use std::ffi::CString;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Why the local server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    #[error(
        "PostgreSQL binaries not found: no initdb and pg_ctl on PATH or under \
         /usr/lib/postgresql/*/bin (install the Debian package `postgresql`)"
    )]
    NotInstalled,
    #[error("user `postgres` not found; running as root needs it to own the data directory")]
    NoPostgresUser,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A command exited unsuccessfully; `output` is its stderr (or stdout) and the end of
    /// the server log when there is one.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        command: String,
        status: String,
        output: String,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> PostgresError {
    let what = what.into();
    move |source| PostgresError::Io { what, source }
}

/// A running PostgreSQL server owned by this value.
pub struct LocalPostgres {
    bin: PathBuf,
    /// The `postgres` user's uid/gid when commands run through `runuser`.
    run_as: Option<(u32, u32)>,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    stopped: bool,
    // Last so the directory is removed after the server is stopped.
    dir: tempfile::TempDir,
}

impl LocalPostgres {
    /// Initialise a cluster in a temporary directory, start it and create the database
    /// `steward`; returns once the server accepts connections.
    pub fn start() -> Result<LocalPostgres, PostgresError> {
        let bin = find_bin_dir().ok_or(PostgresError::NotInstalled)?;
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user()?)
        } else {
            None
        };
        let dir = tempfile::Builder::new()
            .prefix("steward-pg-")
            .tempdir()
            .map_err(io("create a temporary directory"))?;
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        std::fs::create_dir(&sock).map_err(io("create the socket directory"))?;
        if let Some((uid, gid)) = run_as {
            for p in [dir.path(), sock.as_path()] {
                chown(p, uid, gid)?;
            }
        }
        let log = dir.path().join("postgres.log");
        let mut pg = LocalPostgres {
            bin,
            run_as,
            data,
            log,
            port: 0,
            // Nothing to stop until pg_ctl start ran.
            stopped: true,
            dir,
        };
        let data_s = pg.data.display().to_string();
        // --no-sync: a test cluster need not survive a power cut of its creation; the
        // server itself keeps fsync on.
        pg.run(
            "initdb",
            &[
                "-D",
                &data_s,
                "-A",
                "trust",
                "-U",
                "steward",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )?;
        let log_s = pg.log.display().to_string();
        // The port is free when picked but not reserved: another process may bind it
        // before the server does, so a bind failure picks another.
        for attempt in 1..=3 {
            pg.port = free_port()?;
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
                pg.port,
                sock.display()
            );
            pg.stopped = false;
            let started = pg.run(
                "pg_ctl",
                &[
                    "-D", &data_s, "-l", &log_s, "-o", &opts, "-w", "-t", "60", "start",
                ],
            );
            match started {
                Ok(_) => break,
                Err(PostgresError::Command { ref output, .. })
                    if attempt < 3 && output.contains("could not bind") =>
                {
                    tracing::debug!(port = pg.port, "port taken; trying another");
                }
                Err(e) => return Err(e),
            }
        }
        let port = pg.port.to_string();
        pg.run_client(
            "createdb",
            &["-h", "127.0.0.1", "-p", &port, "-U", "steward", "steward"],
        )?;
        tracing::debug!(port = pg.port, dir = %pg.dir.path().display(), "PostgreSQL started");
        Ok(pg)
    }

    /// libpq key=value connection string of the database `steward`.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=steward dbname=steward",
            self.port
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the cluster and its log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stop the server now (immediate shutdown) and remove its directory.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let data_s = self.data.display().to_string();
        let stopped = self
            .run(
                "pg_ctl",
                &["-D", &data_s, "-m", "immediate", "-w", "-t", "20", "stop"],
            )
            .is_ok();
        if stopped {
            return;
        }
        // pg_ctl missing or stuck: kill the postmaster by the pid it recorded.
        if let Some(pid) = self.postmaster_pid() {
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && alive(pid) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok().filter(|p| *p > 0)
    }

    /// Run a server command (as `postgres` when we are root).
    fn run(&self, tool: &str, args: &[&str]) -> Result<Output, PostgresError> {
        let exe = self.bin.join(tool);
        let mut cmd = match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).current_dir(self.dir.path());
        self.output(cmd, tool, args)
    }

    /// Run a client command as ourselves.
    fn run_client(&self, tool: &str, args: &[&str]) -> Result<Output, PostgresError> {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.args(args);
        self.output(cmd, tool, args)
    }

    fn output(&self, mut cmd: Command, tool: &str, args: &[&str]) -> Result<Output, PostgresError> {
        let line = format!("{tool} {}", args.join(" "));
        let out = cmd
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(io(format!("run `{line}`")))?;
        if out.status.success() {
            return Ok(out);
        }
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        if let Ok(log) = std::fs::read_to_string(&self.log) {
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            text.push_str("\n--- server log (end) ---\n");
            text.push_str(&tail.join("\n"));
        }
        Err(PostgresError::Command {
            command: line,
            status: out.status.to_string(),
            output: text,
        })
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for LocalPostgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPostgres")
            .field("port", &self.port)
            .field("dir", &self.dir.path())
            .finish()
    }
}

/// The directory of `initdb` and `pg_ctl`: PATH first (resolved through symlinks, so the
/// client tools next to them are the same version), then the newest
/// /usr/lib/postgresql/N/bin.
fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let initdb = d.join("initdb");
            if !initdb.is_file() {
                continue;
            }
            if let Some(real) = std::fs::canonicalize(&initdb)
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
            {
                if has_both(&real) && real.join("createdb").is_file() {
                    return Some(real);
                }
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            has_both(&bin).then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

fn postgres_user() -> Result<(u32, u32), PostgresError> {
    let name = CString::new("postgres").map_err(|_| PostgresError::NoPostgresUser)?;
    // getpwnam's result points into static storage; read it at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(PostgresError::NoPostgresUser);
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok((uid, gid))
}

fn chown(p: &Path, uid: u32, gid: u32) -> Result<(), PostgresError> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(p.as_os_str().as_bytes()).map_err(|_| PostgresError::Io {
        what: format!("path {}", p.display()),
        source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
    })?;
    if unsafe { libc::chown(c.as_ptr(), uid, gid) } != 0 {
        return Err(PostgresError::Io {
            what: format!("chown {} to postgres", p.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Whether `pid` still runs (a zombie waiting for init to reap it does not).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| !matches!(state, 'Z' | 'X')),
        // No /proc (or no such process): ask the kernel directly.
        Err(_) => {
            let exists = unsafe { libc::kill(pid, 0) } == 0;
            exists && !Path::new("/proc/self").exists()
        }
    }
}

/// A loopback port free right now (bound, read, released; the server binds it next).
fn free_port() -> Result<u16, PostgresError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(io("bind a loopback port"))?;
    let port = l.local_addr().map_err(io("read the bound port"))?.port();
    Ok(port)
}
