//! Failover: kill -9 a worker under a steady load, time until every partition commits
//! again, start a replacement; and the telemetry topic read back for duplicates.

use super::*;

pub(crate) async fn failover(
    args: &Args,
    bed: &mut ClusterBed,
    devices: &[SimDevice],
) -> Result<()> {
    let addrs = bed.mqtt_addrs();
    let steady = {
        let (addrs, devices, rate) = (addrs.clone(), devices.to_vec(), args.failover_rate);
        tokio::spawn(async move {
            load_split(
                &addrs,
                &devices,
                0,
                rate,
                Some(Duration::from_secs(24 * 3600)),
                11,
            )
            .await
        })
    };
    let r = failover_cycles(args, bed).await;
    steady.abort();
    let (took, owned, rebalanced, active) = r?;
    let stats = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(|a, b| a.total_cmp(b));
        if v.is_empty() {
            return "-".to_string();
        }
        format!(
            "{:.2} | {:.2} | {:.2} | {:.2}",
            v[0],
            pct(&v, 50.0),
            pct(&v, 99.0),
            v[v.len() - 1]
        )
    };
    println!(
        "\n## Failover: kill -9 a worker under {} msg/s\n",
        args.failover_rate
    );
    println!(
        "{} cycles; {active} of 12 partitions carried traffic; seconds from the kill:\n",
        took.len()
    );
    println!("| measure | min | median | p99 | max |\n|---|---|---|---|---|");
    println!("| survivors own all 12 partitions | {} |", stats(&owned));
    println!(
        "| **every partition with traffic committed new records** (processing again) | {} |",
        stats(&took)
    );
    println!(
        "| replacement worker started -> it owns partitions and all 12 are owned | {} |",
        stats(&rebalanced)
    );
    println!(
        "\neach cycle (s, processing again): {}",
        took.iter()
            .map(|t| format!("{t:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

pub(crate) type Cycles = (Vec<f64>, Vec<f64>, Vec<f64>, usize);

pub(crate) async fn failover_cycles(args: &Args, bed: &mut ClusterBed) -> Result<Cycles> {
    // Which partitions carry traffic at this rate (compounds hash to 12 partitions; a
    // partition may get none): those whose committed offset moves within a few seconds.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let a = pg_offsets(bed)?;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = pg_offsets(bed)?;
    let active: Vec<i32> = b
        .iter()
        .filter(|(p, o)| a.get(p).is_none_or(|x| *o > x))
        .map(|(p, _)| *p)
        .collect();
    eprintln!("partitions with traffic: {active:?}");
    if active.is_empty() {
        bail!("no partition committed anything under the steady load");
    }
    let (mut took, mut owned_v, mut rebalanced) = (Vec::new(), Vec::new(), Vec::new());
    for cycle in 0..args.failovers {
        let victim = bed
            .workers
            .iter()
            .position(|w| w.is_some())
            .context("no live worker")?;
        let t0 = Instant::now();
        bed.kill_worker(victim)?;
        // After the kill (the process is reaped): nothing of the victim can commit now.
        let before = pg_offsets(bed)?;
        let mut owned_at = None;
        let mut done_at = None;
        // When each partition first committed after the kill: the survivor's own resume at
        // once, the victim's only once they moved.
        let mut advanced: BTreeMap<i32, f64> = BTreeMap::new();
        while t0.elapsed() < Duration::from_secs(180) {
            let owned = bed.owned_partitions().await;
            let el = t0.elapsed().as_secs_f64();
            let now = pg_offsets(bed)?;
            for p in &active {
                if now.get(p).copied().unwrap_or(-1) > before.get(p).copied().unwrap_or(-1) {
                    advanced.entry(*p).or_insert(el);
                }
            }
            if owned == PARTITIONS {
                owned_at.get_or_insert(el);
                if advanced.len() == active.len() {
                    done_at = Some(el);
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut order: Vec<(f64, i32)> = advanced.iter().map(|(p, t)| (*t, *p)).collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0));
        eprintln!(
            "cycle {cycle}: first commit after the kill per partition (s): {}",
            order
                .iter()
                .map(|(t, p)| format!("p{p} {t:.1}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let (Some(o), Some(d)) = (owned_at, done_at) else {
            bail!("cycle {cycle}: partitions not processing again within 180 s (owned at {owned_at:?})");
        };
        owned_v.push(o);
        took.push(d);
        let t1 = Instant::now();
        let new = bed.add_worker().await?;
        let ok = steward_tests::wait_until(Duration::from_secs(180), || async {
            bed.owned_partitions().await == PARTITIONS
                && bed
                    .worker_metric(new, "steward_cluster_worker_partitions")
                    .await
                    .unwrap_or(0.0)
                    >= 1.0
        })
        .await;
        if !ok {
            bail!("cycle {cycle}: the replacement worker got no partitions within 180 s");
        }
        let r = t1.elapsed().as_secs_f64();
        rebalanced.push(r);
        eprintln!(
            "cycle {cycle}: killed worker {victim}; all owned after {o:.2}s, processing again after {d:.2}s; replacement {new} rebalanced in {r:.2}s"
        );
        // Let the new assignment settle (both workers committing) before the next kill.
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    Ok((took, owned_v, rebalanced, active.len()))
}

/// Every record of the telemetry topic, grouped by (MQTT topic, payload): how many
/// payloads occur more than once, and whether the copies have the same front-end receive
/// time (the same message produced again) or different ones (the front end received it
/// twice).
pub(crate) fn check_duplicates(bootstrap: &str) -> Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Headers;
    use rdkafka::Message;
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "bench-duplicates")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut high = HashMap::new();
    for p in 0..PARTITIONS as i32 {
        let (_, h) = c.fetch_watermarks(TOPIC, p, Duration::from_secs(10))?;
        high.insert(p, h);
        tpl.add_partition_offset(TOPIC, p, rdkafka::Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    // (MQTT topic, payload) -> (partition, offset, receive time) of each copy.
    type Copies = Vec<(i32, i64, Vec<u8>)>;
    let mut seen: HashMap<(Vec<u8>, Vec<u8>), Copies> = HashMap::new();
    let mut done: HashMap<i32, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    while done.iter().filter(|(p, o)| **o + 1 >= high[*p]).count()
        < high.values().filter(|h| **h > 0).count()
        && Instant::now() < deadline
    {
        let Some(m) = c.poll(Duration::from_secs(1)) else {
            continue;
        };
        let m = m?;
        let (mut topic, mut rec) = (Vec::new(), Vec::new());
        if let Some(h) = m.headers() {
            for i in 0..h.count() {
                let x = h.get(i);
                match x.key {
                    "mqtt_topic" => topic = x.value.unwrap_or(&[]).to_vec(),
                    "received_us" => rec = x.value.unwrap_or(&[]).to_vec(),
                    _ => {}
                }
            }
        }
        let payload = m.payload().unwrap_or(&[]).to_vec();
        seen.entry((topic, payload))
            .or_default()
            .push((m.partition(), m.offset(), rec));
        done.insert(m.partition(), m.offset());
    }
    let total: usize = seen.values().map(Vec::len).sum();
    let (mut same, mut differ) = (0usize, 0usize);
    let mut examples = Vec::new();
    for (k, v) in &seen {
        if v.len() > 1 {
            if v.iter().all(|x| x.2 == v[0].2) {
                same += v.len() - 1;
            } else {
                differ += v.len() - 1;
            }
            if examples.len() < 5 {
                examples.push(format!(
                    "{} at {:?}",
                    String::from_utf8_lossy(&k.0),
                    v.iter()
                        .map(|x| format!("p{}@{} rx {}", x.0, x.1, String::from_utf8_lossy(&x.2)))
                        .collect::<Vec<_>>()
                ));
            }
        }
    }
    println!(
        "\nduplicates in the telemetry topic: {total} records, {} distinct (topic, payload); extra copies with the same receive time {same}, with another receive time {differ}",
        seen.len()
    );
    for e in examples {
        println!("  e.g. {e}");
    }
    Ok(())
}

/// Next offset of each partition of the rules group, as committed in PostgreSQL.
pub(crate) fn pg_offsets(bed: &ClusterBed) -> Result<BTreeMap<i32, i64>> {
    let out = std::process::Command::new("psql")
        .arg(bed.postgres.url())
        .args(["-Atc"])
        .arg(format!(
            "SELECT partition_id, next_offset FROM partition_offsets WHERE consumer_group = '{RULES_GROUP}' AND topic = '{TOPIC}'"
        ))
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((p, o)) = line.split_once('|') {
            m.insert(p.trim().parse()?, o.trim().parse()?);
        }
    }
    Ok(m)
}

pub(crate) async fn wait_partitions(bed: &ClusterBed, limit: Duration) -> Result<()> {
    if !steward_tests::wait_until(limit, || async {
        bed.owned_partitions().await == PARTITIONS
    })
    .await
    {
        bail!(
            "the workers own {} of 12 partitions",
            bed.owned_partitions().await
        );
    }
    Ok(())
}
