//! A local Apache Kafka cluster in KRaft combined mode (every node is broker and
//! controller), run from the jars `scripts/fetch-kafka.sh` puts in the cache.
//!
//! Each node lives in its own directory under one temporary directory, listens on loopback
//! ports picked free at start, and logs to `kafka.log` in its directory (not to our
//! stdout). The quorum is static (`controller.quorum.voters`): it needs no formatting step
//! beyond `StorageTool format -t <cluster id>`, and a node killed and restarted on the same
//! directory rejoins as the same voter.

use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Seek, SeekFrom};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// The Kafka version `scripts/fetch-kafka.sh` fetches and this module runs.
pub const KAFKA_VERSION: &str = "4.1.1";

/// Environment variable naming the directory of Kafka jars to use instead of the cache
/// (`~/.cache/steward/kafka-4.1.1/libs`); it must hold `kafka_2.13-4.1.1.jar`.
pub const LIBS_ENV: &str = "STEWARD_KAFKA_LIBS";

/// Environment variable replacing the brokers' JVM options ([`DEFAULT_JVM_OPTS`]),
/// whitespace-separated, e.g. for a benchmark that wants bigger heaps.
pub const JVM_OPTS_ENV: &str = "STEWARD_KAFKA_JVM_OPTS";

/// Small heaps and the serial collector: the 2-core machine the suite runs on shares its
/// cores between 3 brokers, QuestDB, PostgreSQL and Steward's own processes, and the
/// serial collector adds no GC threads.
pub const DEFAULT_JVM_OPTS: &str = "-Xms128m -Xmx384m -XX:+UseSerialGC -XX:CICompilerCount=2";

/// The log line a node writes once its broker is unfenced by the quorum and serving.
const READY_MARKER: &str = "Kafka Server started";
const LOG_FILE: &str = "kafka.log";
const STDOUT_FILE: &str = "stdout.log";
const TAIL_LINES: usize = 40;

/// Brokers log through SLF4J to log4j2 (the binding is among the fetched jars); this sends
/// everything to `kafka.log` in `-Dkafka.logs.dir`, the node's directory.
const LOG4J2_YAML: &str = r#"Configuration:
  Appenders:
    File:
      name: FILE
      fileName: "${sys:kafka.logs.dir:-.}/kafka.log"
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: FILE
    Logger:
      - name: kafka.request.logger
        level: WARN
      - name: state.change.logger
        level: WARN
"#;

/// Why the local Kafka cluster could not be started, restarted or made ready.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error(
        "Kafka {version} jars not found: {jar} does not exist; run scripts/fetch-kafka.sh \
         (or set {LIBS_ENV} to a directory holding kafka_2.13-{version}.jar and its dependencies)"
    )]
    JarsMissing { jar: PathBuf, version: &'static str },
    #[error(
        "java ({java}) cannot run Kafka: {reason}; install a JDK 17 or newer \
         (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"
    )]
    Java { java: PathBuf, reason: String },
    #[error("a Kafka cluster needs at least one node")]
    NoNodes,
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("formatting the storage of Kafka node {node} failed ({command}): {output}")]
    Format {
        node: u32,
        command: String,
        output: String,
    },
    #[error("cannot start Kafka node {node} ({command}): {source}")]
    Spawn {
        node: u32,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Kafka node {node} exited ({status}) before it was ready; its log ends:\n{log}")]
    Exited {
        node: u32,
        status: String,
        log: String,
    },
    #[error("Kafka cluster not ready after {timeout:?}: {detail}")]
    NotReady { timeout: Duration, detail: String },
}

fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> KafkaError {
    let what = what.into();
    move |source| KafkaError::Io { what, source }
}

/// The directory of Kafka jars: `$STEWARD_KAFKA_LIBS`, else
/// `~/.cache/steward/kafka-4.1.1/libs` where `scripts/fetch-kafka.sh` puts them.
pub fn libs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os(LIBS_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").map_or_else(|| PathBuf::from("."), PathBuf::from);
    home.join(".cache")
        .join("steward")
        .join(format!("kafka-{KAFKA_VERSION}"))
        .join("libs")
}

/// The jar directory, checked to hold this version's broker jar.
fn resolve_libs() -> Result<PathBuf, KafkaError> {
    check_libs(libs_dir())
}

fn check_libs(libs: PathBuf) -> Result<PathBuf, KafkaError> {
    let jar = libs.join(format!("kafka_2.13-{KAFKA_VERSION}.jar"));
    if jar.is_file() {
        Ok(libs)
    } else {
        Err(KafkaError::JarsMissing {
            jar,
            version: KAFKA_VERSION,
        })
    }
}

/// `$JAVA_HOME/bin/java`, else `java` on PATH; Kafka 4 brokers need Java 17.
fn resolve_java() -> Result<PathBuf, KafkaError> {
    let java = std::env::var_os("JAVA_HOME")
        .map(|h| PathBuf::from(h).join("bin").join("java"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("java"));
    let out = Command::new(&java)
        .arg("-version")
        .output()
        .map_err(|e| KafkaError::Java {
            java: java.clone(),
            reason: format!("it could not be run ({e})"),
        })?;
    let text = String::from_utf8_lossy(&out.stderr);
    let major = text
        .split('"')
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse::<u32>().ok())
        .unwrap_or(0);
    if major < 17 {
        return Err(KafkaError::Java {
            java,
            reason: format!("it is Java {major}, Kafka {KAFKA_VERSION} needs 17 or newer"),
        });
    }
    Ok(java)
}

/// A random cluster id in Kafka's form: 16 bytes, URL-safe base64 without padding.
fn random_cluster_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut bytes = [0u8; 16];
    for (i, half) in bytes.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_usize(i);
        half.copy_from_slice(&h.finish().to_le_bytes());
    }
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bits: u32 = 0;
    let mut nbits = 0;
    let mut out = String::with_capacity(22);
    for b in bytes {
        bits = (bits << 8) | u32::from(b);
        nbits += 8;
        while nbits >= 6 {
            nbits -= 6;
            out.push(ALPHABET[((bits >> nbits) & 63) as usize] as char);
        }
    }
    if nbits > 0 {
        out.push(ALPHABET[((bits << (6 - nbits)) & 63) as usize] as char);
    }
    out
}

/// `count` distinct free loopback ports. Nodes get their ports only when their JVMs bind
/// them, seconds after this probe, so the ports come from below the kernel's ephemeral
/// range where possible: there no outgoing connection (of this suite's many clients) can
/// take one meanwhile, and other tests binding port 0 never land. Ports are picked at
/// random there and all held at once so none repeats.
fn free_ports(count: usize) -> Result<Vec<u16>, KafkaError> {
    let (lo, hi) = quiet_port_range();
    let mut held: Vec<TcpListener> = Vec::with_capacity(count);
    let mut seed = RandomState::new().build_hasher();
    let mut attempts = 0;
    while held.len() < count && hi > lo && attempts < 1000 {
        attempts += 1;
        seed.write_usize(attempts);
        let port = lo + (seed.finish() % u64::from(hi - lo)) as u16;
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    while held.len() < count {
        let l =
            TcpListener::bind("127.0.0.1:0").map_err(io_err("cannot bind a free loopback port"))?;
        held.push(l);
    }
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err("cannot read a bound port"))
}

/// Ports 20000 up to the start of the ephemeral range (Linux: 32768), or an empty range
/// when the ephemeral range starts too low to leave room.
fn quiet_port_range() -> (u16, u16) {
    const LO: u16 = 20000;
    let ephemeral_start = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| {
            t.split_whitespace()
                .next()
                .and_then(|p| p.parse::<u16>().ok())
        })
        .unwrap_or(32768);
    if ephemeral_start > LO + 1000 {
        (LO, ephemeral_start)
    } else {
        (0, 0)
    }
}

/// The server.properties of every node, before the per-node keys; `nodes` sizes the
/// replication settings (3 and 2 from three nodes up, fewer on a smaller cluster).
fn cluster_properties(nodes: usize) -> Vec<(String, String)> {
    let rf = nodes.min(3);
    let min_isr = rf.min(2);
    let pairs: [(&str, String); 20] = [
        ("process.roles", "broker,controller".into()),
        ("controller.listener.names", "CONTROLLER".into()),
        ("inter.broker.listener.name", "PLAINTEXT".into()),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into(),
        ),
        ("default.replication.factor", rf.to_string()),
        ("min.insync.replicas", min_isr.to_string()),
        ("offsets.topic.replication.factor", rf.to_string()),
        ("transaction.state.log.replication.factor", rf.to_string()),
        ("transaction.state.log.min.isr", min_isr.to_string()),
        (
            "share.coordinator.state.topic.replication.factor",
            rf.to_string(),
        ),
        ("share.coordinator.state.topic.min.isr", min_isr.to_string()),
        // Fewer internal partitions than the default 50: the first consumer group or
        // transaction then creates 12 replicated partitions, not 50, on 2 busy cores.
        ("offsets.topic.num.partitions", "12".into()),
        ("transaction.state.log.num.partitions", "12".into()),
        ("num.partitions", "12".into()),
        ("group.initial.rebalance.delay.ms", "0".into()),
        ("auto.create.topics.enable", "false".into()),
        ("unclean.leader.election.enable", "false".into()),
        // Thread pools sized for 2 cores shared by the whole cluster (defaults 3, 8, 10).
        ("num.network.threads", "2".into()),
        ("num.io.threads", "4".into()),
        ("background.threads", "4".into()),
    ];
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// One node's fixed facts; its process lives in `proc`.
struct Node {
    id: u32,
    dir: PathBuf,
    broker_port: u16,
    proc: Mutex<NodeProc>,
}

#[derive(Default)]
struct NodeProc {
    child: Option<Child>,
    /// Length of `kafka.log` when the process was spawned: readiness is judged on what
    /// this run wrote, not on an earlier run's "started" line.
    log_offset: u64,
    ready: bool,
}

/// A running local Kafka cluster; dropping it kills every node (SIGKILL).
///
/// Node indexes are 0-based (`node.id` is index + 1). Methods take `&self`, so a test can
/// share the cluster (`Arc`) with the thread that kills a broker.
pub struct KafkaCluster {
    nodes: Vec<Node>,
    java: PathBuf,
    libs: PathBuf,
    log4j: PathBuf,
    jvm_opts: Vec<String>,
    cluster_id: String,
    // Last field: dropped after `Drop::drop` has killed the nodes that write into it.
    root: tempfile::TempDir,
}

impl KafkaCluster {
    /// Formats and starts `nodes` nodes with the cluster defaults (see
    /// [`cluster_properties`]); it does not wait for them: call [`KafkaCluster::wait_ready`].
    pub fn start(nodes: usize) -> Result<KafkaCluster, KafkaError> {
        Self::start_with_properties(nodes, &[])
    }

    /// As [`KafkaCluster::start`], with `extra` server.properties keys added to (or
    /// replacing) the defaults on every node.
    pub fn start_with_properties(
        nodes: usize,
        extra: &[(&str, &str)],
    ) -> Result<KafkaCluster, KafkaError> {
        if nodes == 0 {
            return Err(KafkaError::NoNodes);
        }
        let libs = resolve_libs()?;
        let java = resolve_java()?;
        let root = tempfile::Builder::new()
            .prefix("steward-kafka-")
            .tempdir()
            .map_err(io_err("cannot create the cluster's temporary directory"))?;
        let log4j = root.path().join("log4j2.yaml");
        fs::write(&log4j, LOG4J2_YAML)
            .map_err(io_err(format!("cannot write {}", log4j.display())))?;
        let jvm_opts = std::env::var(JVM_OPTS_ENV)
            .ok()
            .filter(|o| !o.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_JVM_OPTS.to_string())
            .split_whitespace()
            .map(str::to_string)
            .collect();
        let ports = free_ports(2 * nodes)?;
        let voters = (0..nodes)
            .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[2 * i + 1]))
            .collect::<Vec<_>>()
            .join(",");
        let mut common = cluster_properties(nodes);
        common.push(("controller.quorum.voters".into(), voters));
        for (k, v) in extra {
            common.retain(|(key, _)| key != k);
            common.push((k.to_string(), v.to_string()));
        }
        let mut cluster = KafkaCluster {
            nodes: Vec::with_capacity(nodes),
            java,
            libs,
            log4j,
            jvm_opts,
            cluster_id: random_cluster_id(),
            root,
        };
        for i in 0..nodes {
            let id = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let dir = cluster.root.path().join(format!("node-{id}"));
            let (broker_port, controller_port) = (ports[2 * i], ports[2 * i + 1]);
            write_node_properties(&dir, id, broker_port, controller_port, &common)?;
            cluster.nodes.push(Node {
                id,
                dir,
                broker_port,
                proc: Mutex::new(NodeProc::default()),
            });
        }
        cluster.format_all()?;
        for i in 0..nodes {
            cluster.spawn(i)?;
        }
        tracing::info!(
            nodes,
            bootstrap = %cluster.bootstrap(),
            root = %cluster.root.path().display(),
            "local Kafka cluster started"
        );
        Ok(cluster)
    }

    /// `StorageTool format` on every node at once (one short JVM each).
    fn format_all(&self) -> Result<(), KafkaError> {
        let mut running = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let out_path = node.dir.join("format.out");
            let out = fs::File::create(&out_path)
                .map_err(io_err(format!("cannot create {}", out_path.display())))?;
            let err = out
                .try_clone()
                .map_err(io_err(format!("cannot reopen {}", out_path.display())))?;
            let args = self.java_args(
                node,
                &[
                    "kafka.tools.StorageTool",
                    "format",
                    "-t",
                    &self.cluster_id,
                    "-c",
                    "server.properties",
                ],
            );
            let command = self.command_line(&args);
            let child = Command::new(&self.java)
                .args(&args)
                .current_dir(&node.dir)
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .map_err(|source| KafkaError::Spawn {
                    node: node.id,
                    command: command.clone(),
                    source,
                })?;
            running.push((node, child, command, out_path));
        }
        let mut first_error = None;
        for (node, mut child, command, out_path) in running {
            let status = child.wait();
            let ok = matches!(&status, Ok(s) if s.success());
            if !ok && first_error.is_none() {
                let output = fs::read_to_string(&out_path).unwrap_or_default();
                let output = match status {
                    Ok(s) => format!("{s}; {}", output.trim()),
                    Err(e) => format!("wait failed: {e}"),
                };
                first_error = Some(KafkaError::Format {
                    node: node.id,
                    command,
                    output,
                });
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    fn java_args(&self, node: &Node, main: &[&str]) -> Vec<String> {
        let mut args = self.jvm_opts.clone();
        args.push("-Djava.awt.headless=true".into());
        args.push(format!(
            "-Dlog4j2.configurationFile={}",
            self.log4j.display()
        ));
        args.push(format!("-Dkafka.logs.dir={}", node.dir.display()));
        args.push("-cp".into());
        args.push(format!("{}/*", self.libs.display()));
        args.extend(main.iter().map(|s| s.to_string()));
        args
    }

    fn command_line(&self, args: &[String]) -> String {
        format!("{} {}", self.java.display(), args.join(" "))
    }

    fn node(&self, i: usize) -> &Node {
        match self.nodes.get(i) {
            Some(n) => n,
            None => panic!(
                "Kafka node index {i} out of range: the cluster has {} nodes (0-based)",
                self.nodes.len()
            ),
        }
    }

    fn lock(node: &Node) -> MutexGuard<'_, NodeProc> {
        // A panic while holding the lock leaves a valid NodeProc; keep using it.
        node.proc.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, i: usize) -> Result<(), KafkaError> {
        let node = self.node(i);
        let mut proc = Self::lock(node);
        let log_offset = fs::metadata(node.dir.join(LOG_FILE)).map_or(0, |m| m.len());
        let out_path = node.dir.join(STDOUT_FILE);
        // JVM-level failures (bad option, out of memory) land here, not in kafka.log.
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(io_err(format!("cannot open {}", out_path.display())))?;
        let err = out
            .try_clone()
            .map_err(io_err(format!("cannot reopen {}", out_path.display())))?;
        let args = self.java_args(node, &["kafka.Kafka", "server.properties"]);
        let command = self.command_line(&args);
        let child = Command::new(&self.java)
            .args(&args)
            .current_dir(&node.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| KafkaError::Spawn {
                node: node.id,
                command,
                source,
            })?;
        tracing::debug!(
            node = node.id,
            pid = child.id(),
            port = node.broker_port,
            "Kafka node spawned"
        );
        *proc = NodeProc {
            child: Some(child),
            log_offset,
            ready: false,
        };
        Ok(())
    }

    /// The bootstrap list of every node, killed or not: `127.0.0.1:p1,127.0.0.1:p2,...`.
    pub fn bootstrap(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.broker_port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// How many nodes the cluster has (running or killed).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s client (PLAINTEXT) port on 127.0.0.1. Panics if `i` is out of range.
    pub fn broker_port(&self, i: usize) -> u16 {
        self.node(i).broker_port
    }

    /// Node `i`'s directory (its `server.properties`, `kafka.log` and `data/`).
    pub fn node_dir(&self, i: usize) -> &Path {
        &self.node(i).dir
    }

    /// The JVM's process id of node `i`, if it runs (for CPU accounting).
    pub fn pid(&self, i: usize) -> Option<u32> {
        Self::lock(self.node(i)).child.as_ref().map(Child::id)
    }

    /// Kills node `i` with SIGKILL (no controlled shutdown) and reaps it; a node not
    /// running is left as it is.
    pub fn kill(&self, i: usize) {
        let node = self.node(i);
        let mut proc = Self::lock(node);
        if let Some(mut child) = proc.child.take() {
            // Fails only if it already exited; the wait reaps it either way.
            let _ = child.kill();
            let _ = child.wait();
            tracing::info!(node = node.id, "Kafka node killed");
        }
        proc.ready = false;
    }

    /// Starts node `i` again on its directory and ports (a node still running is killed
    /// first). It does not wait: call [`KafkaCluster::wait_ready`].
    pub fn restart(&self, i: usize) -> Result<(), KafkaError> {
        self.kill(i);
        self.spawn(i)
    }

    /// Whether node `i`'s process is alive (it may not be ready yet).
    pub fn is_running(&self, i: usize) -> bool {
        let mut proc = Self::lock(self.node(i));
        match proc.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_))) | Some(Err(_)) | None => false,
        }
    }

    /// Waits until every running node is ready: its log says the server started (the
    /// broker is registered and unfenced by the quorum) and its client port accepts TCP.
    /// Killed nodes are skipped; a node that exits meanwhile is an error with its log.
    pub fn wait_ready(&self, timeout: Duration) -> Result<(), KafkaError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut pending = Vec::new();
            let mut running = 0;
            for (i, node) in self.nodes.iter().enumerate() {
                if let Some(state) = self.check_ready(i, node)? {
                    running += 1;
                    if let Some(why) = state {
                        pending.push((i, why));
                    }
                }
            }
            if running == 0 {
                return Err(KafkaError::NotReady {
                    timeout,
                    detail: "no node is running".into(),
                });
            }
            if pending.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let detail = pending
                    .iter()
                    .map(|(i, why)| {
                        format!(
                            "node {} (port {}) {why}; its log ends:\n{}",
                            self.nodes[*i].id,
                            self.nodes[*i].broker_port,
                            self.log_tail(*i)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(KafkaError::NotReady { timeout, detail });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `None`: not running. `Some(None)`: ready. `Some(Some(why))`: not ready yet.
    fn check_ready(&self, i: usize, node: &Node) -> Result<Option<Option<String>>, KafkaError> {
        let mut proc = Self::lock(node);
        let Some(child) = proc.child.as_mut() else {
            return Ok(None);
        };
        match child.try_wait() {
            Ok(None) => {}
            Ok(Some(status)) => {
                proc.child = None;
                drop(proc);
                return Err(KafkaError::Exited {
                    node: node.id,
                    status: status.to_string(),
                    log: self.log_tail(i),
                });
            }
            Err(e) => {
                return Err(KafkaError::Io {
                    what: format!("cannot check Kafka node {}'s process", node.id),
                    source: e,
                })
            }
        }
        if !proc.ready {
            if !log_since_contains(&node.dir.join(LOG_FILE), proc.log_offset, READY_MARKER) {
                return Ok(Some(Some(format!("has not logged \"{READY_MARKER}\""))));
            }
            proc.ready = true;
        }
        let addr = SocketAddr::from(([127, 0, 0, 1], node.broker_port));
        if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
            return Ok(Some(Some("does not accept connections".into())));
        }
        Ok(Some(None))
    }

    /// The last lines node `i` logged, and anything the JVM printed itself, for error
    /// messages.
    pub fn log_tail(&self, i: usize) -> String {
        let node = self.node(i);
        let mut text = tail(&node.dir.join(LOG_FILE), TAIL_LINES);
        let jvm = tail(&node.dir.join(STDOUT_FILE), TAIL_LINES);
        if !jvm.trim().is_empty() {
            text.push_str("\n--- JVM output ---\n");
            text.push_str(&jvm);
        }
        if text.trim().is_empty() {
            text = format!("(nothing logged in {})", node.dir.display());
        }
        text
    }

    /// The cluster's temporary directory (one `node-N` directory per node).
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

fn write_node_properties(
    dir: &Path,
    id: u32,
    broker_port: u16,
    controller_port: u16,
    common: &[(String, String)],
) -> Result<(), KafkaError> {
    fs::create_dir_all(dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
    let mut text = format!(
        "# Kafka node {id} of a steward-testbed cluster\n\
         node.id={id}\n\
         listeners=PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}\n\
         advertised.listeners=PLAINTEXT://127.0.0.1:{broker_port}\n\
         log.dirs={}\n",
        dir.join("data").display()
    );
    for (k, v) in common {
        text.push_str(&format!("{k}={v}\n"));
    }
    let path = dir.join("server.properties");
    fs::write(&path, text).map_err(io_err(format!("cannot write {}", path.display())))
}

/// Whether the file, from byte `offset` on, contains `needle`.
fn log_since_contains(path: &Path, offset: u64, needle: &str) -> bool {
    let Ok(mut file) = fs::File::open(path) else {
        return false;
    };
    if file.seek(SeekFrom::Start(offset)).is_err() {
        return false;
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return false;
    }
    String::from_utf8_lossy(&bytes).contains(needle)
}

/// The last `lines` lines of a file (at most its last 64 KiB), or "" if unreadable.
fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let start = len.saturating_sub(64 * 1024);
    if file.seek(SeekFrom::Start(start)).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
#[path = "kafka_tests.rs"]
mod tests;
