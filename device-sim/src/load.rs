//! Load mode: as many telemetry messages per second as asked, spread over many device
//! connections, to measure what the hub ingests.

use crate::mqtt::{self, now_ms};
use crate::publisher::{ConnError, Publisher};
use crate::{DeviceModel, SimDevice, SimError};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rumqttc::QoS;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Unacknowledged QoS 1 messages per connection.
const MAX_INFLIGHT: u16 = 1_000;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Connect attempts before a connection is given up as a connect failure.
const CONNECT_ATTEMPTS: u32 = 3;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a connection waits for outstanding acknowledgements once it has sent its share.
const ACK_GRACE: Duration = Duration::from_secs(10);
/// The metrics template of a connection is re-serialised from its model this often, so
/// payloads stay realistic without a model step and a JSON encode per message.
const TEMPLATE_REFRESH: u64 = 1_000;

pub struct LoadConfig {
    /// `host:port` of the broker, or several comma-separated: connection `i` goes to
    /// broker `i % n` (no failover: a load run measures, it does not ride out failures).
    pub broker: String,
    /// Candidate devices; only those with a plain secret can connect.
    pub devices: Vec<SimDevice>,
    /// Target total messages per second across all connections; 0 = as fast as possible.
    pub rate: u64,
    /// Stop after this many messages in total.
    pub total: Option<u64>,
    /// Stop after this long. At least one of `total` and `duration` is required.
    pub duration: Option<Duration>,
    pub qos: u8,
    pub seed: u64,
    /// How many devices connect; messages are spread evenly over those that come up.
    pub connections: usize,
    /// Draw an indicatif progress bar on stderr.
    pub progress: bool,
}

/// `sent` messages handed to the clients, `acked` acknowledged by the broker (QoS 1/2) or
/// written to the socket (QoS 0), `errors` connection errors after connect and messages
/// that could not be queued, `connect_failures` connections that never came up.
/// `elapsed` runs from the first message to the last acknowledgement waited for.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadReport {
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub connect_failures: u64,
}

impl LoadReport {
    /// Acknowledged messages per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.acked as f64 / secs
        } else {
            0.0
        }
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
    connect_failures: AtomicU64,
}

struct Conn {
    device: SimDevice,
    publisher: Publisher,
}

/// Run the load until `total` messages are sent or `duration` passes, then wait for the
/// outstanding acknowledgements. Logs only at debug level so the progress bar is all that
/// shows.
pub async fn run_load(cfg: LoadConfig) -> Result<LoadReport, SimError> {
    let brokers = mqtt::parse_brokers(&cfg.broker)?;
    let qos = mqtt::qos(cfg.qos)?;
    if cfg.total.is_none() && cfg.duration.is_none() {
        return Err(SimError::Config(
            "load needs `total` or `duration` to know when to stop".into(),
        ));
    }
    if cfg.connections == 0 {
        return Err(SimError::Config("connections: must be at least 1".into()));
    }
    let devices: Vec<(SimDevice, String)> = cfg
        .devices
        .iter()
        .filter_map(|d| d.secret.clone().map(|s| (d.clone(), s)))
        .take(cfg.connections)
        .collect();
    if devices.is_empty() {
        return Err(SimError::NoDevices(
            "load mode needs devices with a plain secret".into(),
        ));
    }

    let counters = Arc::new(Counters::default());
    let conns = connect_all(devices, &brokers, &counters).await;
    if conns.is_empty() {
        return Err(SimError::Connect(format!(
            "none of {} connections to {} came up",
            counters.connect_failures.load(Ordering::Relaxed),
            cfg.broker
        )));
    }

    let bar = progress_bar(cfg.progress, cfg.total, cfg.duration);
    let start = Instant::now();
    let deadline = cfg.duration.map(|d| start + d);
    let k = conns.len() as u64;
    let rate_each = (cfg.rate > 0).then(|| cfg.rate as f64 / k as f64);
    let done = CancellationToken::new();
    let updater = tokio::spawn(update_progress(
        bar.clone(),
        counters.clone(),
        start,
        cfg.total,
        done.clone(),
    ));

    let mut publishers = JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let share = cfg.total.map(|t| t / k + u64::from((i as u64) < t % k));
        publishers.spawn(publish_share(
            conn,
            Pace {
                share,
                rate: rate_each,
                deadline,
            },
            qos,
            cfg.seed,
            counters.clone(),
        ));
    }
    let mut finished = start;
    while let Some(res) = publishers.join_next().await {
        match res {
            Ok(t) => finished = finished.max(t),
            Err(e) => {
                tracing::debug!(error = %e, "publisher task failed");
                counters.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    done.cancel();
    if updater.await.is_err() {
        tracing::debug!("progress task failed");
    }
    bar.finish_and_clear();

    Ok(LoadReport {
        sent: counters.sent.load(Ordering::Relaxed),
        acked: counters.acked.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        elapsed: finished - start,
        connect_failures: counters.connect_failures.load(Ordering::Relaxed),
    })
}

/// Open every connection at once and keep those that came up, in the order given.
async fn connect_all(
    devices: Vec<(SimDevice, String)>,
    brokers: &[(String, u16)],
    counters: &Arc<Counters>,
) -> Vec<Conn> {
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut attempts = JoinSet::new();
    for (i, (device, secret)) in devices.into_iter().enumerate() {
        let (host, port) = brokers[i % brokers.len()].clone();
        attempts.spawn(async move {
            let mut failures = 0u32;
            loop {
                match Publisher::connect(&host, port, &device.id, &secret, KEEP_ALIVE, deadline)
                    .await
                {
                    Ok(publisher) => return Some((i, Conn { device, publisher })),
                    Err(e) => {
                        failures += 1;
                        tracing::debug!(device = %device.id, error = %e, failures, "connect failed");
                        let hopeless = matches!(e, ConnError::Refused(_) | ConnError::Timeout);
                        if hopeless || failures >= CONNECT_ATTEMPTS || Instant::now() >= deadline {
                            return None;
                        }
                        sleep(Duration::from_millis(200) * failures).await;
                    }
                }
            }
        });
    }
    let mut conns = Vec::new();
    while let Some(res) = attempts.join_next().await {
        match res {
            Ok(Some(c)) => conns.push(c),
            Ok(None) | Err(_) => {
                counters.connect_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    conns.sort_by_key(|(i, _)| *i);
    conns.into_iter().map(|(_, c)| c).collect()
}

struct Pace {
    share: Option<u64>,
    rate: Option<f64>,
    deadline: Option<Instant>,
}

/// Publish one connection's share, paced, then wait for its acknowledgements and
/// disconnect. Returns when its last acknowledgement came in (or the grace ran out).
async fn publish_share(
    conn: Conn,
    pace: Pace,
    qos: QoS,
    seed: u64,
    counters: Arc<Counters>,
) -> Instant {
    let Conn {
        device,
        mut publisher,
    } = conn;
    publisher.configure(
        format!("devices/{}/telemetry", device.id),
        qos,
        MAX_INFLIGHT,
    );
    let mut model = DeviceModel::new(&device.id, device.kind, seed);
    let mut template = String::new();
    let mut until_refresh = 0u64;
    let mut last_ts = i64::MIN;
    let mut sent = 0u64;
    let mut acked = 0u64;
    let mut last_ack = Instant::now();
    let mut payload = Vec::with_capacity(512);
    // Token bucket: `paced` messages are allowed per `rate` second since `origin`; a backlog
    // of more than a second is forgotten rather than sent as a burst.
    let mut origin = Instant::now();
    let mut paced = 0u64;
    let mut sending = true;
    let mut grace: Option<Instant> = None;

    loop {
        let mut wake = pace.deadline.filter(|_| sending);
        while sending && publisher.has_room() {
            let now = Instant::now();
            if pace.share.is_some_and(|s| sent >= s) || pace.deadline.is_some_and(|d| now >= d) {
                sending = false;
                break;
            }
            if let Some(rate) = pace.rate {
                let allowed = ((now - origin).as_secs_f64() * rate) as u64 + 1;
                if paced >= allowed {
                    let due = origin + Duration::from_secs_f64(paced as f64 / rate);
                    let due = due.max(now + Duration::from_millis(1));
                    wake = Some(wake.map_or(due, |w| w.min(due)));
                    break;
                }
                if (allowed - paced) as f64 > rate.max(1.0) {
                    origin = now;
                    paced = 0;
                }
                paced += 1;
            }

            let ts = now_ms().max(last_ts.saturating_add(1));
            // Strictly increasing per device: the store keys rows by (ts, device).
            last_ts = ts;
            if until_refresh == 0 {
                template = serde_json::Value::Object(model.metrics_at(ts)).to_string();
                until_refresh = TEMPLATE_REFRESH;
            }
            until_refresh -= 1;
            let seq = model.next_seq();
            // Writing into a Vec cannot fail.
            let _ = write!(payload, r#"{{"ts":{ts},"seq":{seq},"metrics":{template}}}"#);
            match publisher.queue(std::mem::take(&mut payload)) {
                Ok(buf) => payload = buf,
                Err(e) => {
                    tracing::debug!(device = %device.id, error = %e, "cannot encode a publish");
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                    sending = false;
                    break;
                }
            }
            sent += 1;
            counters.sent.fetch_add(1, Ordering::Relaxed);
        }
        if !sending {
            if acked >= sent && !publisher.has_unwritten() {
                break;
            }
            let g = *grace.get_or_insert_with(|| Instant::now() + ACK_GRACE);
            if Instant::now() >= g {
                break;
            }
            wake = Some(wake.map_or(g, |w| w.min(g)));
        }
        match publisher.step(wake).await {
            Ok(p) if p.acked > 0 => {
                acked += p.acked;
                counters.acked.fetch_add(p.acked, Ordering::Relaxed);
                last_ack = Instant::now();
            }
            Ok(_) => {}
            Err(e) => {
                if pace.deadline.is_none_or(|d| Instant::now() < d) {
                    tracing::debug!(device = %device.id, error = %e, in_flight = publisher.in_flight(), "connection gone, publisher stops");
                    counters.errors.fetch_add(1, Ordering::Relaxed);
                }
                return Instant::now();
            }
        }
    }
    let finished = if acked >= sent {
        last_ack
    } else {
        Instant::now()
    };
    if timeout(Duration::from_secs(2), publisher.disconnect())
        .await
        .is_err()
    {
        tracing::debug!(device = %device.id, "disconnect timed out");
    }
    finished
}

fn progress_bar(enabled: bool, total: Option<u64>, duration: Option<Duration>) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let (len, template) = match (total, duration) {
        (Some(t), _) => (
            t,
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} acked {msg}",
        ),
        (None, d) => (
            d.map_or(0, |d| d.as_secs().max(1)),
            "{spinner} [{elapsed_precise}] {wide_bar} {msg}",
        ),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar
}

async fn update_progress(
    bar: ProgressBar,
    counters: Arc<Counters>,
    start: Instant,
    total: Option<u64>,
    done: CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = done.cancelled() => break,
            _ = tick.tick() => {}
        }
        let sent = counters.sent.load(Ordering::Relaxed);
        let acked = counters.acked.load(Ordering::Relaxed);
        let secs = start.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { acked as f64 / secs } else { 0.0 };
        if total.is_some() {
            bar.set_position(acked);
            bar.set_message(format!("{rate:.0} msg/s"));
        } else {
            bar.set_position(secs as u64);
            bar.set_message(format!("sent {sent} acked {acked} {rate:.0} msg/s"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_estate::DeviceKind;

    fn cfg() -> LoadConfig {
        LoadConfig {
            broker: "127.0.0.1:1".into(),
            devices: vec![SimDevice {
                id: "smoke-1".into(),
                kind: DeviceKind::Smoke,
                secret: None,
                gateway: None,
                report_interval_s: 60,
            }],
            rate: 0,
            total: Some(10),
            duration: None,
            qos: 1,
            seed: 1,
            connections: 1,
            progress: false,
        }
    }

    #[tokio::test]
    async fn load_config_is_checked() {
        let err = run_load(LoadConfig {
            total: None,
            ..cfg()
        })
        .await
        .expect_err("needs an end");
        assert!(err.to_string().contains("`total` or `duration`"), "{err}");
        let err = run_load(cfg()).await.expect_err("no secret");
        assert!(err.to_string().contains("plain secret"), "{err}");
        let err = run_load(LoadConfig {
            broker: "nowhere".into(),
            ..cfg()
        })
        .await
        .expect_err("bad broker");
        assert!(matches!(err, SimError::BadBroker(_)), "{err}");
    }

    #[test]
    fn rate_is_acked_per_second() {
        let r = LoadReport {
            acked: 500,
            elapsed: Duration::from_secs(2),
            ..LoadReport::default()
        };
        assert_eq!(r.rate(), 250.0);
        assert_eq!(LoadReport::default().rate(), 0.0);
    }
}
