//! A fleet of simulated devices and gateways, each on its own MQTT connection.

use crate::failover::{Failover, Login};
use crate::model::unit_hash;
use crate::mqtt::{self, now_ms};
use crate::{DeviceModel, Fault, SimDevice, SimError, SimMessage};
use rumqttc::{AsyncClient, Event, EventLoop, LastWill, Outgoing, Packet, QoS};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// Requests a device may queue while its connection is down; beyond that messages are
/// dropped and counted as errors, as a device with a full buffer would.
const REQUEST_QUEUE: usize = 256;
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// How long a connection gets to flush its last messages and say goodbye.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(3);
/// Gateways batch children whose reports fall due within this window.
const GATEWAY_BATCH_WINDOW: Duration = Duration::from_millis(200);

pub struct FleetConfig {
    /// `host:port` of the broker, or several comma-separated (cluster front ends):
    /// connection `i` starts on broker `i % n` and moves to the next one when its
    /// connection fails, sending again what was not acknowledged.
    pub broker: String,
    pub devices: Vec<SimDevice>,
    /// Gateways as `(id, plain secret)`.
    pub gateways: Vec<(String, String)>,
    pub seed: u64,
    /// 1.0 is real time; the models' clocks run `speed` times faster and reports come every
    /// `report_interval_s / speed`. Published timestamps stay wall-clock time.
    pub speed: f64,
    /// Faults and their target device; `None` targets the first device the fault fits.
    /// A fault takes effect after the device's first (normal) report.
    pub faults: Vec<(Fault, Option<String>)>,
    /// Run this long; `None` runs until `shutdown` completes.
    pub duration: Option<Duration>,
    /// QoS of telemetry and events; status messages always use QoS 1.
    pub qos: u8,
    /// Periodic self-tests (smoke `test` events, pump test runs), in simulated time.
    pub self_tests: crate::SelfTests,
}

/// Counts over the whole run: `published` messages handed to the client, `acked` ones the
/// broker acknowledged (QoS 1/2) or that were written to the socket (QoS 0), `errors`
/// connection errors and messages dropped on a full queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetReport {
    pub published: u64,
    pub acked: u64,
    pub errors: u64,
}

#[derive(Default)]
struct Counters {
    published: AtomicU64,
    acked: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One connection's counts, also added to the fleet's.
struct Tally {
    fleet: Arc<Counters>,
    published: AtomicU64,
    acked: AtomicU64,
}

impl Tally {
    fn new(fleet: &Arc<Counters>) -> Arc<Tally> {
        Arc::new(Tally {
            fleet: fleet.clone(),
            published: AtomicU64::new(0),
            acked: AtomicU64::new(0),
        })
    }

    fn published(&self) {
        Counters::add(&self.published);
        Counters::add(&self.fleet.published);
    }

    fn acked(&self) {
        Counters::add(&self.acked);
        Counters::add(&self.fleet.acked);
    }

    fn error(&self) {
        Counters::add(&self.fleet.errors);
    }

    fn settled(&self) -> bool {
        self.acked.load(Ordering::Relaxed) >= self.published.load(Ordering::Relaxed)
    }
}

/// Simulated time runs `speed` times faster than the wall clock from a common origin.
#[derive(Clone, Copy)]
struct SimClock {
    start: Instant,
    wall0: i64,
    speed: f64,
}

impl SimClock {
    fn sim_now(self) -> i64 {
        self.wall0 + (self.start.elapsed().as_secs_f64() * 1000.0 * self.speed) as i64
    }

    fn to_wall(self, sim_ms: i64) -> i64 {
        self.wall0 + ((sim_ms - self.wall0) as f64 / self.speed) as i64
    }
}

struct Shared {
    brokers: Vec<(String, u16)>,
    qos: QoS,
    seed: u64,
    self_tests: crate::SelfTests,
    clock: SimClock,
    stop: CancellationToken,
    counters: Arc<Counters>,
}

/// Run the fleet until `duration` passes or `shutdown` completes. Every device without a
/// gateway gets its own connection (client id, username = device id, password = its
/// secret) with a retained `offline` last will; it publishes a retained `online` after each
/// connect, then telemetry and events. Each gateway connects likewise and publishes its
/// children's telemetry as one array per batch. On the way out devices publish a retained
/// `offline` and disconnect cleanly.
pub async fn run_fleet(
    cfg: FleetConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<FleetReport, SimError> {
    let brokers = mqtt::parse_brokers(&cfg.broker)?;
    let qos = mqtt::qos(cfg.qos)?;
    if !(cfg.speed.is_finite() && cfg.speed > 0.0) {
        return Err(SimError::Config(format!(
            "speed: must be a positive number, got {}",
            cfg.speed
        )));
    }
    let plan = Plan::new(&cfg)?;
    let faults = resolve_faults(&cfg.faults, &plan.simulated())?;

    let shared = Arc::new(Shared {
        brokers,
        qos,
        seed: cfg.seed,
        self_tests: cfg.self_tests,
        clock: SimClock {
            start: Instant::now(),
            wall0: now_ms(),
            speed: cfg.speed,
        },
        stop: CancellationToken::new(),
        counters: Arc::new(Counters::default()),
    });
    tracing::info!(
        devices = plan.direct.len(),
        gateways = plan.gateways.len(),
        speed = cfg.speed,
        "fleet starting"
    );

    let mut tasks = JoinSet::new();
    let mut index = 0..;
    for (dev, secret) in plan.direct {
        let fault = faults.get(&dev.id).copied();
        let i = index.next().unwrap_or_default();
        tasks.spawn(run_device(i, dev, secret, fault, shared.clone()));
    }
    for (gw, secret, children) in plan.gateways {
        let i = index.next().unwrap_or_default();
        let children = children
            .into_iter()
            .map(|d| {
                let fault = faults.get(&d.id).copied();
                (d, fault)
            })
            .collect();
        tasks.spawn(run_gateway(i, gw, secret, children, shared.clone()));
    }

    let run_for = async {
        match cfg.duration {
            Some(d) => sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown => tracing::info!("fleet shutting down"),
        _ = run_for => tracing::info!("fleet duration reached"),
    }
    shared.stop.cancel();
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            tracing::warn!(error = %e, "device task failed");
            Counters::add(&shared.counters.errors);
        }
    }
    let c = &shared.counters;
    Ok(FleetReport {
        published: c.published.load(Ordering::Relaxed),
        acked: c.acked.load(Ordering::Relaxed),
        errors: c.errors.load(Ordering::Relaxed),
    })
}

/// Who connects: direct devices with their secret, gateways with theirs and their children.
struct Plan {
    direct: Vec<(SimDevice, String)>,
    gateways: Vec<(String, String, Vec<SimDevice>)>,
}

impl Plan {
    fn new(cfg: &FleetConfig) -> Result<Plan, SimError> {
        let mut direct = Vec::new();
        let mut gateways: Vec<(String, String, Vec<SimDevice>)> = cfg
            .gateways
            .iter()
            .map(|(id, secret)| (id.clone(), secret.clone(), Vec::new()))
            .collect();
        for d in &cfg.devices {
            if d.report_interval_s == 0 {
                return Err(SimError::Config(format!(
                    "devices: `{}` has report_interval_s 0",
                    d.id
                )));
            }
            match (&d.gateway, &d.secret) {
                (Some(gw), _) => match gateways.iter_mut().find(|(id, _, _)| id == gw) {
                    Some((_, _, children)) => children.push(d.clone()),
                    None => tracing::warn!(
                        device = %d.id, gateway = %gw,
                        "skipping device: its gateway has no plain secret to log in with"
                    ),
                },
                (None, Some(secret)) => direct.push((d.clone(), secret.clone())),
                (None, None) => tracing::warn!(
                    device = %d.id,
                    "skipping device: no plain secret to log in with"
                ),
            }
        }
        // A gateway with nothing behind it would only hold a connection open.
        gateways.retain(|(_, _, children)| !children.is_empty());
        if direct.is_empty() && gateways.is_empty() {
            return Err(SimError::NoDevices(
                "no device has a plain secret or a gateway with one".into(),
            ));
        }
        Ok(Plan { direct, gateways })
    }

    fn simulated(&self) -> Vec<&SimDevice> {
        self.direct
            .iter()
            .map(|(d, _)| d)
            .chain(self.gateways.iter().flat_map(|(_, _, c)| c.iter()))
            .collect()
    }
}

/// Map each fault onto the device it acts on.
fn resolve_faults(
    faults: &[(Fault, Option<String>)],
    devices: &[&SimDevice],
) -> Result<HashMap<String, Fault>, SimError> {
    let mut out = HashMap::new();
    for (fault, target) in faults {
        let dev = match target {
            Some(id) => {
                let dev = devices.iter().find(|d| &d.id == id).ok_or_else(|| {
                    SimError::UnknownTarget {
                        fault: fault.name(),
                        device: id.clone(),
                    }
                })?;
                if let Some(needs) = fault.kind().filter(|k| *k != dev.kind) {
                    return Err(SimError::WrongKind {
                        fault: fault.name(),
                        needs,
                        device: dev.id.clone(),
                        actual: dev.kind,
                    });
                }
                dev
            }
            None => {
                devices
                    .iter()
                    .find(|d| fault.applies_to(d.kind))
                    .ok_or(SimError::NoTarget {
                        fault: fault.name(),
                        needs: fault.kind().map_or("simulated", |k| k.as_str()),
                    })?
            }
        };
        if let Some(previous) = out.insert(dev.id.clone(), *fault) {
            tracing::warn!(device = %dev.id, %previous, replaced_by = %fault, "one fault per device");
        }
    }
    Ok(out)
}

fn period(report_interval_s: u32, speed: f64) -> Duration {
    Duration::from_secs_f64(f64::from(report_interval_s) / speed).max(Duration::from_millis(1))
}

fn publish(client: &AsyncClient, msg: SimMessage, qos: QoS, tally: &Tally) {
    match client.try_publish(msg.topic, qos, msg.retain, msg.payload) {
        Ok(()) => tally.published(),
        Err(_) => {
            tracing::debug!("request queue full, message dropped");
            tally.error();
        }
    }
}

fn status(topic: &str, payload: &str) -> SimMessage {
    SimMessage {
        topic: topic.to_string(),
        payload: payload.as_bytes().to_vec(),
        retain: true,
    }
}

async fn run_device(
    index: usize,
    dev: SimDevice,
    secret: String,
    fault: Option<Fault>,
    sh: Arc<Shared>,
) {
    let status_topic = format!("devices/{}/status", dev.id);
    let login = Login {
        id: dev.id.clone(),
        secret,
        will: Some(LastWill::new(
            &status_topic,
            "offline",
            QoS::AtLeastOnce,
            true,
        )),
        keep_alive: KEEP_ALIVE,
    };
    let failover = Failover::new(sh.brokers.clone(), index, login);
    let (client, eventloop) = AsyncClient::new(failover.options(), REQUEST_QUEUE);
    let (connected_tx, connected_rx) = oneshot::channel();
    let tally = Tally::new(&sh.counters);
    let mut driver = tokio::spawn(drive(
        eventloop,
        client.clone(),
        Some(status_topic.clone()),
        failover,
        tally.clone(),
        connected_tx,
    ));
    // Report only once `online` is out, and queue nothing while the broker is unreachable.
    if !wait_connected(connected_rx, &sh.stop).await {
        driver.abort();
        return;
    }

    let every = period(dev.report_interval_s, sh.clock.speed);
    // Spread first reports over one period so a large fleet does not report in lockstep.
    let first = Instant::now() + every.mul_f64(unit_hash(sh.seed, &dev.id));
    let mut ticker = tokio::time::interval_at(first, every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut model = DeviceModel::new(&dev.id, dev.kind, sh.seed);
    model.set_self_tests(sh.self_tests);
    let mut reports = 0u64;
    loop {
        tokio::select! {
            _ = sh.stop.cancelled() => break,
            _ = ticker.tick() => {}
        }
        if reports == 1 {
            if let Some(f) = fault {
                tracing::info!(device = %dev.id, fault = %f, "fault injected");
                if f == Fault::Offline {
                    // Dropping the event loop closes the socket without DISCONNECT: the
                    // broker sees a lost device and publishes its last will.
                    driver.abort();
                    sh.stop.cancelled().await;
                    return;
                }
                model.set_fault(Some(f));
            }
        }
        let clock = sh.clock;
        for msg in model.tick_mapped(clock.sim_now(), |t| clock.to_wall(t)) {
            publish(&client, msg, sh.qos, &tally);
        }
        reports += 1;
    }
    publish(
        &client,
        status(&status_topic, "offline"),
        QoS::AtLeastOnce,
        &tally,
    );
    goodbye(&client, &mut driver, &tally).await;
}

async fn run_gateway(
    index: usize,
    gw_id: String,
    secret: String,
    children: Vec<(SimDevice, Option<Fault>)>,
    sh: Arc<Shared>,
) {
    let topic = format!("gateways/{gw_id}/telemetry");
    let login = Login {
        id: gw_id.clone(),
        secret,
        will: None,
        keep_alive: KEEP_ALIVE,
    };
    let failover = Failover::new(sh.brokers.clone(), index, login);
    let (client, eventloop) = AsyncClient::new(failover.options(), REQUEST_QUEUE);
    let (connected_tx, connected_rx) = oneshot::channel();
    let tally = Tally::new(&sh.counters);
    let mut driver = tokio::spawn(drive(
        eventloop,
        client.clone(),
        None,
        failover,
        tally.clone(),
        connected_tx,
    ));
    if !wait_connected(connected_rx, &sh.stop).await {
        driver.abort();
        return;
    }

    struct Child {
        model: DeviceModel,
        fault: Option<Fault>,
        every: Duration,
        next: Instant,
        reports: u64,
        events_topic: String,
    }
    let start = Instant::now();
    let mut children: Vec<Child> = children
        .into_iter()
        .map(|(d, fault)| {
            let every = period(d.report_interval_s, sh.clock.speed);
            let mut model = DeviceModel::new(&d.id, d.kind, sh.seed);
            model.set_self_tests(sh.self_tests);
            Child {
                model,
                fault,
                next: start + every.mul_f64(unit_hash(sh.seed, &d.id)),
                every,
                reports: 0,
                events_topic: format!("devices/{}/events", d.id),
            }
        })
        .collect();

    while let Some(next) = children.iter().map(|c| c.next).min() {
        tokio::select! {
            _ = sh.stop.cancelled() => break,
            _ = sleep_until(next) => {}
        }
        let now = Instant::now();
        let clock = sh.clock;
        let sim = clock.sim_now();
        let mut batch = Vec::new();
        for c in children
            .iter_mut()
            .filter(|c| c.next <= now + GATEWAY_BATCH_WINDOW)
        {
            c.next += c.every;
            if c.next < now {
                c.next = now + c.every;
            }
            if c.reports == 1 {
                if let Some(f) = c.fault {
                    tracing::info!(device = %c.model.id(), fault = %f, "fault injected");
                    c.model.set_fault(Some(f));
                }
            }
            c.reports += 1;
            let Some(report) = c.model.report_mapped(sim, |t| clock.to_wall(t)) else {
                continue;
            };
            // Events go on the device's own topic, which the gateway may publish to.
            for ev in &report.events {
                let msg = SimMessage {
                    topic: c.events_topic.clone(),
                    payload: crate::event_payload(ev),
                    retain: false,
                };
                publish(&client, msg, sh.qos, &tally);
            }
            batch.push(json!({
                "device_id": c.model.id(),
                "ts": report.ts,
                "seq": report.seq,
                "metrics": report.metrics,
            }));
        }
        if !batch.is_empty() {
            let msg = SimMessage {
                topic: topic.clone(),
                payload: Value::Array(batch).to_string().into_bytes(),
                retain: false,
            };
            publish(&client, msg, sh.qos, &tally);
        }
    }
    goodbye(&client, &mut driver, &tally).await;
}

/// Whether the first connect succeeded before the fleet was stopped.
async fn wait_connected(connected: oneshot::Receiver<()>, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        r = connected => r.is_ok(),
    }
}

/// Wait for outstanding acknowledgements (a broker may drop them once it has read
/// DISCONNECT), then disconnect cleanly, so no last will fires.
async fn goodbye(client: &AsyncClient, driver: &mut tokio::task::JoinHandle<()>, tally: &Tally) {
    let deadline = Instant::now() + GOODBYE_TIMEOUT;
    while !tally.settled() && !driver.is_finished() && Instant::now() < deadline {
        sleep(Duration::from_millis(10)).await;
    }
    if client.try_disconnect().is_err() {
        tracing::debug!("disconnect not queued");
    }
    if timeout(GOODBYE_TIMEOUT, &mut *driver).await.is_err() {
        driver.abort();
    }
}

/// Poll a connection: count acknowledgements and errors, announce `online` after each
/// connect, reconnect (to the next broker of the list, sending again what was not
/// acknowledged) with a growing pause. Ends after the DISCONNECT went out.
async fn drive(
    mut eventloop: EventLoop,
    client: AsyncClient,
    status_topic: Option<String>,
    mut failover: Failover,
    tally: Arc<Tally>,
    connected: oneshot::Sender<()>,
) {
    let id = client_id(&eventloop);
    let mut connected = Some(connected);
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                let failures = failover.failures();
                if failures > 0 {
                    tracing::info!(
                        client = %id, broker = %failover.current(), resend = failover.backlog(),
                        "connected after {failures} failures"
                    );
                }
                failover.on_connected(&mut eventloop);
                if let Some(topic) = &status_topic {
                    publish(&client, status(topic, "online"), QoS::AtLeastOnce, &tally);
                }
                if let Some(tx) = connected.take() {
                    // Nobody waits any more once the fleet is stopping.
                    let _ = tx.send(());
                }
            }
            Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)))
            | Ok(Event::Outgoing(Outgoing::Publish(0))) => {
                tally.acked();
                failover.refill(&mut eventloop);
            }
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                drain(&mut eventloop, &tally).await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                tally.error();
                let broker = failover.current();
                let pause = failover.on_error(&mut eventloop);
                let failures = failover.failures();
                if failures == 1 {
                    tracing::warn!(
                        client = %id, %broker, next = %failover.current(), error = %e,
                        "connection error; retrying"
                    );
                } else {
                    tracing::debug!(client = %id, %broker, error = %e, failures, "connection error");
                }
                sleep(pause).await;
            }
        }
    }
}

fn client_id(eventloop: &EventLoop) -> String {
    eventloop.mqtt_options.client_id()
}

/// Collect acknowledgements still on the wire after DISCONNECT until the broker closes.
async fn drain(eventloop: &mut EventLoop, tally: &Tally) {
    let deadline = Instant::now() + Duration::from_secs(1);
    while let Ok(Ok(ev)) = tokio::time::timeout_at(deadline, eventloop.poll()).await {
        if matches!(ev, Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) {
            tally.acked();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_estate::DeviceKind;

    fn dev(id: &str, kind: DeviceKind, secret: Option<&str>, gw: Option<&str>) -> SimDevice {
        SimDevice {
            id: id.into(),
            kind,
            secret: secret.map(Into::into),
            gateway: gw.map(Into::into),
            report_interval_s: 30,
        }
    }

    fn cfg(faults: Vec<(Fault, Option<String>)>) -> FleetConfig {
        FleetConfig {
            broker: "127.0.0.1:1883".into(),
            devices: vec![
                dev("smoke-1", DeviceKind::Smoke, Some("smoke-secret"), None),
                dev("lift-1", DeviceKind::Lift, Some("lift-secret"), None),
                dev("pump-1", DeviceKind::Pump, None, Some("gw-1")),
                dev("gate-1", DeviceKind::Gate, None, None),
                dev("pump-2", DeviceKind::Pump, None, Some("gw-unknown")),
            ],
            gateways: vec![("gw-1".into(), "gw-secret".into())],
            seed: 1,
            self_tests: Default::default(),
            speed: 1.0,
            faults,
            duration: None,
            qos: 1,
        }
    }

    #[test]
    fn plan_and_fault_targets() {
        let c = cfg(vec![]);
        let plan = Plan::new(&c).expect("plan");
        let ids: Vec<&str> = plan.simulated().iter().map(|d| d.id.as_str()).collect();
        assert_eq!(
            ids,
            ["smoke-1", "lift-1", "pump-1"],
            "gate-1 and pump-2 cannot log in"
        );
        let sim = plan.simulated();

        let f = resolve_faults(&[(Fault::PumpDryRun, None), (Fault::Offline, None)], &sim)
            .expect("resolves");
        assert_eq!(f.get("pump-1"), Some(&Fault::PumpDryRun));
        assert_eq!(f.get("smoke-1"), Some(&Fault::Offline));

        let err = resolve_faults(&[(Fault::LiftTrapped, Some("smoke-1".into()))], &sim)
            .expect_err("wrong kind");
        assert!(err.to_string().contains("needs a lift device"), "{err}");
        let err = resolve_faults(&[(Fault::GateForced, None)], &sim).expect_err("no gate");
        assert!(err.to_string().contains("no gate device"), "{err}");
        let err =
            resolve_faults(&[(Fault::SmokeCo, Some("smoke-9".into()))], &sim).expect_err("unknown");
        assert!(
            err.to_string().contains("unknown device `smoke-9`"),
            "{err}"
        );
    }

    #[test]
    fn clock_maps_sim_time_back_to_wall_time() {
        let clock = SimClock {
            start: Instant::now(),
            wall0: 1_000_000,
            speed: 10.0,
        };
        assert_eq!(clock.to_wall(1_000_000 + 60_000), 1_000_000 + 6_000);
        assert_eq!(period(60, 10.0), Duration::from_secs(6));
    }
}
