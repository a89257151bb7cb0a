//! Cluster mode (issue 16) as real processes on loopback: 3 Kafka brokers (KRaft),
//! PostgreSQL, QuestDB, `steward run` front ends and workers, devices over MQTT.
//!
//! Each test loads the cluster, breaks it under load (kill -9 a worker, add a worker,
//! freeze a worker past its session, kill -9 a Kafka broker, kill -9 a front end) and
//! then checks the outcome exactly: every message a front end acknowledged is one row in
//! QuestDB, and the tickets are the ones a single hub raises from the same input (one
//! fire-alarm ticket per alarm, one occurrence each: nothing lost, nothing doubled).

use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use steward_tests::cluster::{smoke_estate, smoke_payload, ClusterBed, FailoverDevice};
use steward_tests::{step, wait_until};

const COMPOUNDS: usize = 16;
const MESSAGES: u64 = 100;
const PARTITIONS: f64 = 12.0;

/// One cluster at a time: each is 3 Kafka JVMs, PostgreSQL, QuestDB and 4 hubs.
static ONE_CLUSTER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Devices publishing `MESSAGES` each in the background; `acked` counts PUBACKs.
struct Feed {
    acked: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Result<u32>>>,
    total: u64,
    t0: i64,
}

fn alarm_at(c: usize, i: usize) -> u64 {
    ((c * 8 + i) as u64 * 7) % MESSAGES
}

impl Feed {
    fn start(bed: &ClusterBed) -> Feed {
        let addrs = bed.mqtt_addrs();
        let acked = Arc::new(AtomicU64::new(0));
        let t0 = chrono::Utc::now().timestamp_millis() - 120_000;
        let mut tasks = Vec::new();
        for c in 0..COMPOUNDS {
            for i in 0..8 {
                let id = format!("sd-{c}-{i}");
                let mut dev = FailoverDevice::new(&id, addrs.clone(), c * 8 + i);
                let acked = acked.clone();
                let t0 = t0 + (c * 8 + i) as i64;
                tasks.push(tokio::spawn(async move {
                    let topic = format!("devices/{id}/telemetry");
                    for seq in 0..MESSAGES {
                        let body = smoke_payload(t0, seq, alarm_at(c, i));
                        dev.publish_acked(&topic, body, Duration::from_secs(240))
                            .await?;
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    let r = dev.reconnects;
                    dev.disconnect().await;
                    Ok(r)
                }));
            }
        }
        Feed {
            acked,
            tasks,
            total: (COMPOUNDS * 8) as u64 * MESSAGES,
            t0,
        }
    }

    async fn reached(&self, fraction: f64) -> Result<()> {
        let want = (self.total as f64 * fraction) as u64;
        if !wait_until(Duration::from_secs(300), || async {
            self.acked.load(Ordering::Relaxed) >= want
        })
        .await
        {
            bail!(
                "only {} of {want} messages acknowledged",
                self.acked.load(Ordering::Relaxed)
            );
        }
        Ok(())
    }

    /// Wait for every device to finish; returns the reconnects they needed.
    async fn finish(self) -> Result<u32> {
        let mut reconnects = 0;
        for t in self.tasks {
            reconnects += t.await??;
        }
        let _ = self.t0;
        Ok(reconnects)
    }
}

async fn wait_partitions(bed: &ClusterBed, what: &str) -> Result<Duration> {
    let start = Instant::now();
    if !wait_until(Duration::from_secs(180), || async {
        bed.owned_partitions().await == PARTITIONS
    })
    .await
    {
        bail!(
            "{what}: the live workers own {} of {PARTITIONS} partitions",
            bed.owned_partitions().await
        );
    }
    Ok(start.elapsed())
}

/// Every acknowledged message is one row, and the tickets are one fire alarm per device
/// with one occurrence.
async fn check_exactly_once(bed: &ClusterBed, total: u64) -> Result<()> {
    let rows_sql = "SELECT count() FROM smoke_telemetry";
    if !wait_until(Duration::from_secs(180), || async {
        bed.count(rows_sql).await.unwrap_or(-1) >= total as i64
    })
    .await
    {
        bail!("QuestDB has {} rows of {total}", bed.count(rows_sql).await?);
    }
    let expected: BTreeMap<String, String> = (0..COMPOUNDS)
        .flat_map(|c| (0..8).map(move |i| (format!("sd-{c}-{i}"), "smoke-fire-alarm".to_string())))
        .collect();
    if !wait_until(Duration::from_secs(180), || async {
        bed.tickets().await.map(|t| t.len()).unwrap_or(0) >= expected.len()
    })
    .await
    {
        bail!(
            "{} tickets of {}",
            bed.tickets().await?.len(),
            expected.len()
        );
    }
    // Anything late (a doubled ticket, a second occurrence) would show within this.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rows = bed.count(rows_sql).await?;
    assert_eq!(
        rows, total as i64,
        "rows in QuestDB: each acknowledged message once"
    );
    let tickets = bed.tickets().await?;
    let mut got: BTreeMap<String, String> = BTreeMap::new();
    for t in &tickets {
        let device = t["device_id"].as_str().unwrap_or("").to_string();
        let rule = t["rule_id"].as_str().unwrap_or("").to_string();
        assert_eq!(t["occurrences"].as_i64(), Some(1), "one occurrence: {t}");
        assert!(
            got.insert(device.clone(), rule).is_none(),
            "a second ticket for {device}: {tickets:?}"
        );
    }
    assert_eq!(
        got, expected,
        "the tickets a single hub raises from this input"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_kill_rebalance_and_freeze_change_nothing() -> Result<()> {
    let _one = ONE_CLUSTER.lock().await;
    let mut bed = step(
        "start the cluster",
        ClusterBed::start(&smoke_estate(COMPOUNDS), 2, 2),
    )
    .await?;
    step(
        "workers own every partition",
        wait_partitions(&bed, "start"),
    )
    .await?;
    let feed = Feed::start(&bed);

    feed.reached(0.15).await?;
    bed.kill_worker(0)?;
    let took = step(
        "worker 0 killed: its partitions move",
        wait_partitions(&bed, "after kill"),
    )
    .await?;
    eprintln!("failover after kill -9: partitions processing again after {took:?}");

    feed.reached(0.3).await?;
    step("add a third worker", bed.add_worker()).await?;
    step("rebalanced", wait_partitions(&bed, "after add")).await?;

    feed.reached(0.45).await?;
    // Freeze worker 1 past its session timeout: the others take its partitions; when it
    // thaws, whatever it was writing is fenced.
    bed.signal_worker(1, "STOP")?;
    step(
        "frozen worker's partitions move",
        wait_partitions(&bed, "after freeze"),
    )
    .await?;
    bed.signal_worker(1, "CONT")?;

    step("every device done", feed.finish()).await?;
    step(
        "exactly once",
        check_exactly_once(&bed, (COMPOUNDS * 8) as u64 * MESSAGES),
    )
    .await?;
    let fenced = bed
        .worker_metric(1, "steward_cluster_worker_fenced_total")
        .await;
    eprintln!("thawed worker: fenced transactions {fenced:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_and_front_end_kills_lose_no_acknowledged_message() -> Result<()> {
    let _one = ONE_CLUSTER.lock().await;
    let mut bed = step(
        "start the cluster",
        ClusterBed::start(&smoke_estate(COMPOUNDS), 2, 2),
    )
    .await?;
    step(
        "workers own every partition",
        wait_partitions(&bed, "start"),
    )
    .await?;
    let feed = Feed::start(&bed);

    feed.reached(0.3).await?;
    bed.kafka.kill(2);
    eprintln!("kafka broker 3 killed");

    feed.reached(0.6).await?;
    bed.kill_frontend(0)?;
    eprintln!("front end 0 killed; its devices move to front end 1");

    let reconnects = step("every device done", feed.finish()).await?;
    assert!(
        reconnects > 0,
        "the killed front end's devices reconnected elsewhere"
    );
    step(
        "exactly once",
        check_exactly_once(&bed, (COMPOUNDS * 8) as u64 * MESSAGES),
    )
    .await?;
    Ok(())
}
