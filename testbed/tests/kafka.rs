//! A real 3-node KRaft cluster from the fetched jars: it becomes ready, every broker
//! answers the Kafka protocol and reports all three brokers registered, and a node killed
//! with SIGKILL leaves the others serving and rejoins when restarted.
//!
//! Needs the jars of `scripts/fetch-kafka.sh` (which `scripts/test.sh` and CI run first).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use steward_testbed::KafkaCluster;

/// KRaft elections and JVM start-up on 2 busy cores take tens of seconds.
const READY: Duration = Duration::from_secs(180);

#[test]
fn three_nodes_start_serve_and_survive_a_kill() -> Result<()> {
    let started = Instant::now();
    let cluster = KafkaCluster::start(3)?;
    cluster.wait_ready(READY)?;
    eprintln!("3 nodes ready after {:?}", started.elapsed());
    let bootstrap = cluster.bootstrap();
    assert_eq!(bootstrap.split(',').count(), 3, "{bootstrap}");
    for i in 0..3 {
        assert!(cluster.is_running(i));
        let port = cluster.broker_port(i);
        assert!(
            bootstrap.contains(&format!("127.0.0.1:{port}")),
            "{bootstrap}"
        );
        let log = std::fs::read_to_string(cluster.node_dir(i).join("kafka.log"))?;
        ensure!(
            log.contains("The broker has been unfenced"),
            "node {i} never joined: {}",
            cluster.log_tail(i)
        );
        wait_for_brokers(port, 3)?;
    }

    let killed = Instant::now();
    cluster.kill(0);
    assert!(!cluster.is_running(0));
    assert!(cluster.pid(0).is_none());
    // The survivors keep serving, and the controller fences the dead broker once its
    // session times out.
    cluster.wait_ready(READY)?;
    wait_for_brokers(cluster.broker_port(1), 2)?;
    eprintln!("node 1 fenced after {:?}", killed.elapsed());

    let restarted = Instant::now();
    cluster.restart(0)?;
    cluster.wait_ready(READY)?;
    eprintln!("node 1 ready again after {:?}", restarted.elapsed());
    assert!(cluster.is_running(0));
    for i in 0..3 {
        wait_for_brokers(cluster.broker_port(i), 3)?;
    }
    Ok(())
}

#[test]
fn a_single_node_cluster_serves() -> Result<()> {
    let cluster = KafkaCluster::start(1)?;
    cluster.wait_ready(READY)?;
    wait_for_brokers(cluster.broker_port(0), 1)?;
    Ok(())
}

/// Polls the broker on `port` until its metadata lists exactly `count` live brokers.
fn wait_for_brokers(port: u16, count: usize) -> Result<()> {
    let deadline = Instant::now() + READY;
    let mut last = String::new();
    while Instant::now() < deadline {
        match broker_ports(port) {
            Ok(ports) if ports.len() == count => return Ok(()),
            Ok(ports) => last = format!("brokers {ports:?}"),
            Err(e) => last = format!("{e:#}"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("broker on port {port} never listed {count} brokers; last: {last}")
}

/// The ports of the brokers a Metadata (v4) request to `port` returns, after an
/// ApiVersions request checks the broker supports that version.
fn broker_ports(port: u16) -> Result<Vec<u16>> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;

    let versions = call(&mut stream, 18, 0, 1, &[])?;
    let mut r = Reader(&versions);
    ensure!(r.i32()? == 1, "ApiVersions: wrong correlation id");
    ensure!(r.i16()? == 0, "ApiVersions: error code");
    let mut metadata_v4 = false;
    for _ in 0..r.i32()? {
        let (key, min, max) = (r.i16()?, r.i16()?, r.i16()?);
        if key == 3 && (min..=max).contains(&4) {
            metadata_v4 = true;
        }
    }
    ensure!(metadata_v4, "broker does not support Metadata v4");

    // No topics (an empty array, not null) and no auto-creation.
    let body = [0, 0, 0, 0, 0];
    let meta = call(&mut stream, 3, 4, 2, &body)?;
    let mut r = Reader(&meta);
    ensure!(r.i32()? == 2, "Metadata: wrong correlation id");
    let _throttle = r.i32()?;
    let mut ports = Vec::new();
    for _ in 0..r.i32()? {
        let _node_id = r.i32()?;
        let host = r.string()?;
        ensure!(host == "127.0.0.1", "advertised host {host}");
        ports.push(u16::try_from(r.i32()?)?);
        let _rack = r.string()?;
    }
    ports.sort_unstable();
    Ok(ports)
}

/// Sends one request (header v1, client id "testbed") and returns the response after its
/// length prefix.
fn call(stream: &mut TcpStream, key: i16, version: i16, corr: i32, body: &[u8]) -> Result<Vec<u8>> {
    let client = b"testbed";
    let mut req = Vec::new();
    req.extend_from_slice(&key.to_be_bytes());
    req.extend_from_slice(&version.to_be_bytes());
    req.extend_from_slice(&corr.to_be_bytes());
    req.extend_from_slice(&(client.len() as i16).to_be_bytes());
    req.extend_from_slice(client);
    req.extend_from_slice(body);
    stream.write_all(&(req.len() as i32).to_be_bytes())?;
    stream.write_all(&req)?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .context("reading a response length")?;
    let len = usize::try_from(i32::from_be_bytes(len))?;
    ensure!(len < 1 << 20, "response of {len} bytes");
    let mut resp = vec![0u8; len];
    stream.read_exact(&mut resp)?;
    Ok(resp)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        ensure!(self.0.len() >= n, "response truncated");
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn i16(&mut self) -> Result<i16> {
        Ok(i16::from_be_bytes(self.take(2)?.try_into()?))
    }
    fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.take(4)?.try_into()?))
    }
    /// A nullable string (length -1 is null, read as "").
    fn string(&mut self) -> Result<String> {
        let len = self.i16()?;
        if len < 0 {
            return Ok(String::new());
        }
        Ok(String::from_utf8(self.take(len as usize)?.to_vec())?)
    }
}
