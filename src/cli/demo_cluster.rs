//! `steward demo --cluster`: cluster mode on one machine. A 3-broker Kafka cluster
//! (KRaft) and PostgreSQL (steward-testbed), a managed QuestDB, then 2 front ends and 2
//! workers as `steward run --config FILE` child processes of this executable, each with
//! its own configuration and folder, and the demo fleet spread over both front ends (it
//! fails over between them). Until Ctrl-C or `--duration`; on the way out every process
//! it started is stopped, whatever happened.

use super::demo::{parse_faults, stop_simulator, DemoArgs};
use super::shutdown_signal;
use anyhow::{anyhow, bail, Context, Result};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use steward::{demo, HubConfig};
use steward_cluster::Role;
use steward_estate::EstateFile;
use steward_storage::questdb::{ManagedConfig, ManagedQuestDb, QuestDbMode};
use steward_testbed::{KafkaCluster, LocalPostgres};

const FRONTENDS: usize = 2;
const WORKERS: usize = 2;
/// How long a node gets to print its banner (it waits for Kafka itself).
const NODE_START: Duration = Duration::from_secs(180);
/// How long a node gets to stop after SIGTERM before it is killed.
const NODE_STOP: Duration = Duration::from_secs(15);
/// Fewer partitions than a production default: the demo shares 2 cores with 3 Kafka
/// brokers, PostgreSQL and QuestDB, and every partition costs the workers some polling.
const DEMO_PARTITIONS: i32 = 6;

/// Smaller thread pools than the test bed's: the demo idles most of the time, and its
/// whole cluster shares 2 cores.
const KAFKA_LIGHT: &[(&str, &str)] = &[
    ("num.io.threads", "2"),
    ("background.threads", "2"),
    ("log.cleaner.threads", "1"),
    ("num.recovery.threads.per.data.dir", "1"),
];

/// A `steward run` child process.
struct Node {
    name: String,
    role: Role,
    child: Child,
    log: PathBuf,
    banner: std::sync::mpsc::Receiver<String>,
    mqtt: Option<String>,
    api: String,
    /// Its exit was reported (the demo keeps running on the other nodes).
    exited: bool,
}

/// Everything the demo started. Fields drop in order: nodes first (killed if still
/// running), then QuestDB, PostgreSQL and Kafka, so an early return or a panic leaves no
/// process behind.
#[derive(Default)]
struct Bed {
    nodes: Vec<Node>,
    questdb: Option<ManagedQuestDb>,
    postgres: Option<LocalPostgres>,
    kafka: Option<KafkaCluster>,
}

impl Drop for Bed {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.child.kill();
            let _ = n.child.wait();
        }
    }
}

pub fn run(a: DemoArgs) -> Result<()> {
    // The folder outlives the runtime: a start step that a Ctrl-C abandoned still runs on
    // a blocking thread (dropping the runtime waits for it, and its product, dropped,
    // stops), and it must still find its folder.
    let temp = match a.dir {
        Some(_) => None,
        None => Some(tempfile::tempdir()?),
    };
    let dir = match (&a.dir, &temp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => bail!("no folder for the demo"),
    };
    std::fs::create_dir_all(&dir)?;
    let rt = super::runtime()?;
    let result = rt.block_on(run_async(a, dir));
    drop(rt);
    drop(temp);
    result
}

async fn run_async(a: DemoArgs, dir: PathBuf) -> Result<()> {
    let faults = parse_faults(&a.faults)?;
    if !(a.speed > 0.0 && a.speed <= 10_000.0) {
        bail!("--speed: must be in (0, 10000]");
    }
    // Listen for Ctrl-C and SIGTERM from the start: startup takes a while, and a signal
    // then must still stop what was started.
    let mut stop = Box::pin(shutdown_signal());
    let mut bed = Bed::default();
    let started = tokio::select! {
        r = start(&mut bed, &a, &dir) => Some(r),
        _ = &mut stop => None,
    };
    let admin = match started {
        Some(Ok(admin)) => admin,
        Some(Err(e)) => {
            eprintln!("stopping what was started...");
            stop_all(bed).await;
            return Err(e);
        }
        None => {
            eprintln!("interrupted; stopping what was started (an engine still starting is stopped once up)...");
            stop_all(bed).await;
            return Ok(());
        }
    };
    let estate = EstateFile::parse(demo::DEMO_ESTATE)?;
    print_banner(&bed, &admin, &estate);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sim = if a.no_sim {
        None
    } else {
        let brokers: Vec<String> = bed.nodes.iter().filter_map(|n| n.mqtt.clone()).collect();
        let cfg = steward_device_sim::FleetConfig {
            broker: brokers.join(","),
            devices: steward_device_sim::devices_from_estate(&estate),
            gateways: steward_device_sim::gateways_from_estate(&estate),
            seed: 42,
            speed: a.speed,
            faults,
            duration: None,
            qos: 1,
            self_tests: Default::default(),
        };
        Some(tokio::spawn(steward_device_sim::run_fleet(cfg, async {
            let _ = stop_rx.await;
        })))
    };
    let until = a.duration.map(|d| tokio::time::Instant::now() + d);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        if until.is_some_and(|u| tokio::time::Instant::now() >= u) {
            break;
        }
        report_exits(&mut bed.nodes);
    }
    eprintln!("stopping the cluster demo...");
    let _ = stop_tx.send(());
    if let Some(sim) = sim {
        stop_simulator(sim).await;
    }
    stop_all(bed).await;
    Ok(())
}

/// Start the engines and the nodes; returns the admin token.
async fn start(bed: &mut Bed, a: &DemoArgs, dir: &Path) -> Result<String> {
    let estate = dir.join("estate.toml");
    std::fs::write(&estate, demo::DEMO_ESTATE)?;

    eprintln!("starting Kafka (3 brokers), PostgreSQL and QuestDB...");
    // Kafka takes longest: it starts (and is waited for) while the others start. Should
    // this future be dropped (Ctrl-C) or fail meanwhile, the task still ends and drops,
    // that is kills, the brokers (the runtime waits for blocking tasks).
    let kafka = tokio::task::spawn_blocking(|| -> Result<KafkaCluster> {
        let k = KafkaCluster::start_with_properties(3, KAFKA_LIGHT)
            .context("starting Kafka (scripts/fetch-kafka.sh fetches its jars)")?;
        k.wait_ready(Duration::from_secs(180))
            .context("Kafka not ready")?;
        Ok(k)
    });
    bed.postgres = Some(
        tokio::task::spawn_blocking(LocalPostgres::start)
            .await?
            .context("starting PostgreSQL")?,
    );
    let qcfg = ManagedConfig {
        root: Some(dir.join("questdb")),
        max_heap: "384m".into(),
        // One thread per pool: the demo writes a few rows a second.
        settings: [
            "QDB_SHARED_WORKER_COUNT",
            "QDB_HTTP_WORKER_COUNT",
            "QDB_PG_WORKER_COUNT",
            "QDB_WAL_APPLY_WORKER_COUNT",
        ]
        .into_iter()
        .map(|k| (k.to_string(), "1".to_string()))
        .collect(),
        ..ManagedConfig::default()
    };
    bed.questdb = Some(
        tokio::task::spawn_blocking(move || ManagedQuestDb::start(&qcfg))
            .await?
            .context("starting QuestDB")?,
    );
    let kafka = kafka.await??;
    let bootstrap = kafka.bootstrap();
    bed.kafka = Some(kafka);

    let admin = steward_estate::secret::generate_secret();
    let env = Env {
        dir: dir.to_path_buf(),
        estate,
        kafka: bootstrap,
        postgres: bed
            .postgres
            .as_ref()
            .map(LocalPostgres::url)
            .unwrap_or_default(),
        questdb: bed
            .questdb
            .as_ref()
            .map(|q| q.http_addr)
            .ok_or_else(|| anyhow!("no QuestDB"))?,
        admin: admin.clone(),
        mqtt_port: a.mqtt_port,
        api_port: a.api_port,
    };
    eprintln!("starting {WORKERS} workers and {FRONTENDS} front ends...");
    // One worker alone first: it creates the Kafka topics and the QuestDB tables, which
    // the others then find.
    let plan: Vec<(Role, usize)> = (0..WORKERS)
        .map(|i| (Role::Worker, i))
        .chain((0..FRONTENDS).map(|i| (Role::Frontend, i)))
        .collect();
    for (k, (role, i)) in plan.iter().enumerate() {
        let cfg = env.node_config(*role, *i)?;
        bed.nodes.push(spawn_node(&cfg, &env.dir)?);
        if k == 0 {
            wait_banners(&mut bed.nodes).await?;
        }
    }
    wait_banners(&mut bed.nodes).await?;
    Ok(admin)
}

/// What every node's configuration shares.
struct Env {
    dir: PathBuf,
    estate: PathBuf,
    kafka: String,
    postgres: String,
    questdb: std::net::SocketAddr,
    admin: String,
    mqtt_port: u16,
    api_port: u16,
}

impl Env {
    /// The configuration of node `i` of `role`, in its own folder (as the cluster tests
    /// build theirs): the demo estate, per-node databases and spool, QuestDB external.
    /// Ports follow `--mqtt-port` and `--api-port` (front end `i` on MQTT base+2i, v5
    /// base+2i+1; APIs on consecutive ports, front ends first); 0 picks free ports.
    fn node_config(&self, role: Role, i: usize) -> Result<HubConfig> {
        let name = match role {
            Role::Frontend => format!("frontend-{}", i + 1),
            _ => format!("worker-{}", i + 1),
        };
        let dir = self.dir.join(&name);
        std::fs::create_dir_all(&dir)?;
        let port = |base: u16, off: usize| -> Result<u16> {
            if base == 0 {
                return Ok(0);
            }
            u16::try_from(usize::from(base) + off).context("port out of range")
        };
        let api_slot = match role {
            Role::Frontend => i,
            _ => FRONTENDS + i,
        };
        let mut c = HubConfig::default();
        c.estate.file = Some(self.estate.clone());
        c.estate.database = dir.join("steward.db");
        c.rules.database = dir.join("tickets.db");
        c.notify.outbox.database = dir.join("notify.db");
        c.escalation.database = dir.join("escalation.db");
        c.ingest.spool_dir = dir.join("spool");
        c.api.photo_dir = dir.join("photos");
        let (mqtt, v5) = match role {
            Role::Frontend => (
                port(self.mqtt_port, 2 * i)?,
                port(self.mqtt_port, 2 * i + 1)?,
            ),
            _ => (0, 0),
        };
        c.broker.v4_listen = std::net::SocketAddr::from(([127, 0, 0, 1], mqtt));
        c.broker.v5_listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], v5)));
        c.api.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port(self.api_port, api_slot)?));
        c.api.admin_token = self.admin.clone();
        c.questdb.mode = QuestDbMode::External;
        c.questdb.http_addr = Some(self.questdb);
        c.cluster.role = role;
        c.cluster.kafka = self.kafka.clone();
        c.cluster.postgres = self.postgres.clone();
        c.cluster.partitions = DEMO_PARTITIONS;
        c.cluster.node_id = name;
        Ok(c)
    }
}

/// Write the node's configuration to its folder and start `steward run` on it, its log
/// (standard error) going to `node.log` there.
fn spawn_node(cfg: &HubConfig, root: &Path) -> Result<Node> {
    let name = cfg.cluster.node_id.clone();
    let dir = root.join(&name);
    let cfg_path = dir.join("steward.toml");
    std::fs::write(&cfg_path, toml::to_string(cfg)?)?;
    let log = dir.join("node.log");
    let exe = std::env::current_exe().context("locating the steward executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["run", "--config"])
        .arg(&cfg_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C in the terminal reaches only the demo, which
        // then stops the nodes before the engines under them.
        .process_group(0);
    if std::env::var_os("RUST_LOG").is_none() {
        cmd.env("RUST_LOG", "warn,steward=info,steward_cluster=info");
    }
    let mut child = cmd.spawn().with_context(|| format!("starting {name}"))?;
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
    Ok(Node {
        name,
        role: cfg.cluster.role,
        child,
        log,
        banner: rx,
        mqtt: None,
        api: String::new(),
        exited: false,
    })
}

/// Wait until every node printed its banner (`mqtt ADDR|- | api http://ADDR | ...`).
async fn wait_banners(nodes: &mut [Node]) -> Result<()> {
    let deadline = Instant::now() + NODE_START;
    for n in nodes.iter_mut().filter(|n| n.api.is_empty()) {
        let banner = loop {
            if let Ok(b) = n.banner.try_recv() {
                break b;
            }
            if let Some(status) = n.child.try_wait()? {
                bail!(
                    "{} exited with {status} before it was up; its log ({}):\n{}",
                    n.name,
                    n.log.display(),
                    tail(&n.log, 30)
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "{} not up within {NODE_START:?}; see {}",
                    n.name,
                    n.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let parts: Vec<&str> = banner.split(" | ").collect();
        let field = |prefix: &str| {
            parts
                .iter()
                .find_map(|p| p.strip_prefix(prefix))
                .map(str::to_string)
        };
        n.mqtt = field("mqtt ").filter(|m| m != "-");
        n.api = field("api http://").ok_or_else(|| anyhow!("unexpected banner `{banner}`"))?;
        eprintln!("  {} up (api http://{})", n.name, n.api);
    }
    Ok(())
}

/// Say so once when a node exits while the demo runs (killed to watch a failover, or
/// failed): the devices of a front end move to the other one.
fn report_exits(nodes: &mut [Node]) {
    for n in nodes.iter_mut().filter(|n| !n.exited) {
        if let Ok(Some(status)) = n.child.try_wait() {
            n.exited = true;
            eprintln!("{} exited ({status}); its log: {}", n.name, n.log.display());
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Stop in the order of the data flow: front ends (no new device messages), workers,
/// then QuestDB, PostgreSQL and Kafka. Each node gets SIGTERM, then SIGKILL after
/// [`NODE_STOP`].
async fn stop_all(mut bed: Bed) {
    let mut nodes = std::mem::take(&mut bed.nodes);
    nodes.sort_by_key(|n| n.role != Role::Frontend);
    let (front, back): (Vec<Node>, Vec<Node>) =
        nodes.into_iter().partition(|n| n.role == Role::Frontend);
    for group in [front, back] {
        let _ = tokio::task::spawn_blocking(move || stop_nodes(group)).await;
    }
    let _ = tokio::task::spawn_blocking(move || {
        if let Some(mut q) = bed.questdb.take() {
            q.stop();
        }
        if let Some(pg) = bed.postgres.take() {
            pg.stop();
        }
        drop(bed.kafka.take());
        drop(bed);
    })
    .await;
    eprintln!("cluster demo stopped");
}

fn stop_nodes(mut nodes: Vec<Node>) {
    for n in &nodes {
        let _ = Command::new("kill")
            .args(["-TERM", &n.child.id().to_string()])
            .status();
    }
    let deadline = Instant::now() + NODE_STOP;
    for n in &mut nodes {
        loop {
            match n.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    eprintln!("{} did not stop in {NODE_STOP:?}; killing it", n.name);
                    let _ = n.child.kill();
                    let _ = n.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
}

/// Where everything listens, on standard output.
fn print_banner(bed: &Bed, admin: &str, estate: &EstateFile) {
    let front: Vec<&Node> = bed
        .nodes
        .iter()
        .filter(|n| n.role == Role::Frontend)
        .collect();
    let api = front.first().map(|n| n.api.as_str()).unwrap_or("-");
    let questdb = bed
        .questdb
        .as_ref()
        .map(|q| q.http_addr.to_string())
        .unwrap_or_default();
    println!();
    println!("Steward cluster demo is running.");
    if let Some(k) = &bed.kafka {
        println!("  Kafka bootstrap   : {} (3 brokers, KRaft)", k.bootstrap());
    }
    if let Some(pg) = &bed.postgres {
        println!("  PostgreSQL        : {}", pg.url());
    }
    println!("  QuestDB console   : http://{questdb}");
    if let Some(q) = &bed.questdb {
        println!(
            "  QuestDB PG wire   : {} (user admin, password quest)",
            q.pg_addr
        );
    }
    for n in &bed.nodes {
        match &n.mqtt {
            Some(m) => println!("  {:<18}: mqtt {m} | api http://{}", n.name, n.api),
            None => println!("  {:<18}: api http://{}", n.name, n.api),
        }
    }
    println!("  admin token       : {admin}");
    println!("  dashboard         : http://{api}/dashboard/");
    println!(
        "  estate            : {} compounds, {} devices, spread over the {} front ends",
        estate.compounds.len(),
        estate.devices.len(),
        front.len()
    );
    if let Some(n) = bed.nodes.first() {
        if let Some(dir) = n.log.parent().and_then(Path::parent) {
            println!("  node logs         : {}/<node>/node.log", dir.display());
        }
    }
    println!();
    println!("Try:");
    println!("  curl -H 'Authorization: Bearer {admin}' 'http://{api}/api/v1/tickets?active=true'");
    println!("  curl http://{api}/metrics");
    println!(
        "  curl -G http://{questdb}/exec --data-urlencode 'query=SELECT count() FROM lift_telemetry'"
    );
    println!("Ctrl-C stops the demo (nodes, QuestDB, PostgreSQL and Kafka).");
    println!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path, mqtt_port: u16, api_port: u16) -> Env {
        Env {
            dir: dir.to_path_buf(),
            estate: dir.join("estate.toml"),
            kafka: "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094".into(),
            postgres: "host=127.0.0.1 port=5432 user=steward dbname=steward".into(),
            questdb: ([127, 0, 0, 1], 9000).into(),
            admin: "demo-admin-token-0001".into(),
            mqtt_port,
            api_port,
        }
    }

    #[test]
    fn node_configs_get_their_own_folder_and_ports() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let e = env(tmp.path(), 1883, 8080);
        let f2 = e.node_config(Role::Frontend, 1).expect("config");
        assert_eq!(f2.cluster.node_id, "frontend-2");
        assert_eq!(f2.broker.v4_listen.port(), 1885);
        assert_eq!(f2.broker.v5_listen.map(|a| a.port()), Some(1886));
        assert_eq!(f2.api.listen.port(), 8081);
        assert_eq!(f2.estate.database, tmp.path().join("frontend-2/steward.db"));
        assert_eq!(f2.questdb.mode, QuestDbMode::External);
        assert_eq!(f2.cluster.kafka, e.kafka);
        let w2 = e.node_config(Role::Worker, 1).expect("config");
        assert_eq!(w2.api.listen.port(), 8083);
        assert_eq!(w2.broker.v4_listen.port(), 0);
        assert_eq!(w2.ingest.spool_dir, tmp.path().join("worker-2/spool"));
        // Every node's configuration is one `steward run` accepts.
        for c in [&f2, &w2] {
            let text = toml::to_string(c).expect("serialises");
            let back = HubConfig::parse(&text).expect("parses");
            assert_eq!(back.cluster.role, c.cluster.role);
        }
        let free = env(tmp.path(), 0, 0);
        let f1 = free.node_config(Role::Frontend, 0).expect("config");
        assert_eq!((f1.broker.v4_listen.port(), f1.api.listen.port()), (0, 0));
    }
}
