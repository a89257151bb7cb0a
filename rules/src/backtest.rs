//! Backtest: replay stored history through a fresh engine and report the tickets a pack
//! would have raised, so a rule change can be judged against last month before it ships.

use crate::engine::{Action, Engine};
use crate::pack::RulePack;
use crate::RulesError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use steward_estate::catalog::{self, MetricType};
use steward_estate::clock::{Clock, ManualClock};
use steward_estate::{Decoded, DeviceEvent, Reading, Status, StatusChange, Value};
use steward_estate::{DeviceKind, Directory};
use steward_storage::questdb::schema::{EVENTS_TABLE, STATUS_TABLE};
use steward_storage::questdb::{QueryResult, QuestDbClient};
use steward_tickets::{OnClear, Priority};

/// Timers (durations, silence) are advanced this often between replayed messages.
const TICK_MS: i64 = 10_000;
/// Rows fetched per query.
const PAGE: usize = 50_000;

/// A ticket the pack would have raised.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BacktestTicket {
    pub device_id: String,
    pub rule_id: String,
    pub priority: Priority,
    pub station: String,
    pub compound: String,
    pub title: String,
    pub opened_ms: i64,
    pub last_seen_ms: i64,
    pub occurrences: u32,
    /// Last time the condition cleared, if it did.
    pub cleared_ms: Option<i64>,
    /// Set when the rule's `on_clear` would have resolved the ticket itself.
    pub auto_resolved_ms: Option<i64>,
    pub detail: String,
}

/// Replay decoded messages (in time order) through `pack`.
pub fn backtest_decoded(
    pack: &RulePack,
    dir: &Directory,
    input: impl IntoIterator<Item = Decoded>,
) -> Vec<BacktestTicket> {
    run(pack, dir, input, None)
}

fn first_ts(d: &Decoded) -> Option<i64> {
    d.readings
        .iter()
        .map(|r| r.ts_ms)
        .chain(d.events.iter().map(|e| e.ts_ms))
        .chain(d.statuses.iter().map(|s| s.ts_ms))
        .min()
}

fn run(
    pack: &RulePack,
    dir: &Directory,
    input: impl IntoIterator<Item = Decoded>,
    end_ms: Option<i64>,
) -> Vec<BacktestTicket> {
    let mut engine = Engine::new(Arc::new(pack.clone()));
    let clock = ManualClock::default();
    let mut next_tick: Option<i64> = None;
    // Tickets by (device, rule): the active one, then closed ones in order.
    let mut open: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut out: Vec<BacktestTicket> = Vec::new();
    let mut apply = |actions: Vec<Action>, out: &mut Vec<BacktestTicket>| {
        for a in actions {
            match a {
                Action::Raise(r) => {
                    let key = (r.device_id.clone(), r.rule_id.clone());
                    match open.get(&key) {
                        Some(i) => {
                            let t = &mut out[*i];
                            t.occurrences += 1;
                            t.last_seen_ms = t.last_seen_ms.max(r.ts_ms);
                        }
                        None => {
                            open.insert(key, out.len());
                            out.push(BacktestTicket {
                                device_id: r.device_id,
                                rule_id: r.rule_id,
                                priority: r.priority,
                                station: r.station,
                                compound: r.compound,
                                title: r.title,
                                opened_ms: r.ts_ms,
                                last_seen_ms: r.ts_ms,
                                occurrences: 1,
                                cleared_ms: None,
                                auto_resolved_ms: None,
                                detail: r.detail,
                            });
                        }
                    }
                }
                Action::Clear(c) => {
                    let key = (c.device_id.clone(), c.rule_id.clone());
                    if let Some(i) = open.get(&key).copied() {
                        out[i].cleared_ms = Some(c.ts_ms);
                        if matches!(c.on_clear, OnClear::Resolve | OnClear::Close) {
                            out[i].auto_resolved_ms = Some(c.ts_ms);
                            open.remove(&key);
                        }
                    }
                }
                Action::Notify(_) | Action::Command { .. } => {}
            }
        }
    };
    for d in input {
        let Some(ts) = first_ts(&d) else {
            continue;
        };
        let mut t = next_tick.unwrap_or(ts - ts.rem_euclid(TICK_MS) + TICK_MS);
        while t <= ts {
            clock.set(t);
            let actions = engine.tick(clock.now_ms(), dir);
            apply(actions, &mut out);
            t += TICK_MS;
        }
        next_tick = Some(t);
        let actions = engine.on_decoded(&d, dir);
        apply(actions, &mut out);
    }
    if let (Some(end), Some(mut t)) = (end_ms, next_tick) {
        while t < end {
            clock.set(t);
            let actions = engine.tick(clock.now_ms(), dir);
            apply(actions, &mut out);
            t += TICK_MS;
        }
    }
    out
}

/// Replay QuestDB history of `[from_ms, to_ms)` (telemetry of every kind, device events and
/// status changes) through `pack`.
pub async fn backtest(
    client: &QuestDbClient,
    pack: &RulePack,
    dir: &Directory,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<BacktestTicket>, RulesError> {
    let mut items: Vec<(i64, Decoded)> = Vec::new();
    for kind in DeviceKind::ALL {
        for res in fetch(client, kind.table(), from_ms, to_ms).await? {
            items.extend(telemetry_rows(kind, &res, dir)?);
        }
    }
    for res in fetch(client, EVENTS_TABLE, from_ms, to_ms).await? {
        items.extend(event_rows(&res, dir)?);
    }
    for res in fetch(client, STATUS_TABLE, from_ms, to_ms).await? {
        items.extend(status_rows(&res, dir)?);
    }
    // Stable: rows of one instant keep telemetry before events before status.
    items.sort_by_key(|(ts, _)| *ts);
    Ok(run(
        pack,
        dir,
        items.into_iter().map(|(_, d)| d),
        Some(to_ms),
    ))
}

async fn fetch(
    client: &QuestDbClient,
    table: &str,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<QueryResult>, RulesError> {
    let mut pages = Vec::new();
    let mut lo = 0usize;
    loop {
        // Table names come from the catalogue and bounds are integers: nothing outside
        // is spliced into the SQL.
        let sql = format!(
            "SELECT * FROM {table} WHERE ts >= cast({} as timestamp) AND ts < cast({} as timestamp) \
             ORDER BY ts LIMIT {lo},{}",
            from_ms.saturating_mul(1000),
            to_ms.saturating_mul(1000),
            lo + PAGE
        );
        let res = client
            .exec(&sql)
            .await
            .map_err(|e| RulesError::QuestDb(e.to_string()))?;
        let n = res.dataset.len();
        pages.push(res);
        if n < PAGE {
            break;
        }
        lo += PAGE;
    }
    Ok(pages)
}

fn col(res: &QueryResult, name: &str) -> Result<usize, RulesError> {
    res.column(name)
        .ok_or_else(|| RulesError::QuestDb(format!("query result has no `{name}` column")))
}

fn ts_of(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::String(s) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        serde_json::Value::Number(n) => n.as_i64().map(|us| us / 1000),
        _ => None,
    }
}

/// Identity of a row's device: the estate's, when it still knows the device.
fn ident(
    dir: &Directory,
    id: &str,
    kind: Option<DeviceKind>,
    compound: Option<&str>,
) -> Option<(Arc<str>, DeviceKind, Arc<str>)> {
    if let Some(d) = dir.device(id) {
        return Some((d.id.clone(), d.kind, d.compound.clone()));
    }
    Some((Arc::from(id), kind?, Arc::from(compound?)))
}

/// Rows of a telemetry table as one-reading messages.
pub fn telemetry_rows(
    kind: DeviceKind,
    res: &QueryResult,
    dir: &Directory,
) -> Result<Vec<(i64, Decoded)>, RulesError> {
    let (c_ts, c_dev) = (col(res, "ts")?, col(res, "device_id")?);
    let c_cmp = res.column("compound_id");
    let metrics: Vec<(usize, &'static catalog::MetricSpec)> = catalog::metrics(kind)
        .iter()
        .filter_map(|m| res.column(m.name).map(|i| (i, m)))
        .collect();
    let mut out = Vec::with_capacity(res.dataset.len());
    for row in &res.dataset {
        let (Some(ts), Some(id)) = (
            row.get(c_ts).and_then(ts_of),
            row.get(c_dev).and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let cmp = c_cmp.and_then(|c| row.get(c)).and_then(|v| v.as_str());
        let Some((device_id, kind, compound)) = ident(dir, id, Some(kind), cmp) else {
            continue;
        };
        let mut values = Vec::with_capacity(metrics.len());
        for (i, spec) in &metrics {
            let Some(v) = row.get(*i) else { continue };
            let val = match spec.ty {
                MetricType::Bool => v.as_bool().map(Value::Bool),
                MetricType::Float { .. } => v.as_f64().map(Value::Float),
                MetricType::Int { .. } => v.as_i64().map(Value::Int),
                MetricType::Enum(allowed) => v
                    .as_str()
                    .and_then(|s| allowed.iter().find(|a| **a == s))
                    .map(|s| Value::Sym(s)),
                MetricType::Text { .. } => v.as_str().map(|s| Value::Text(s.to_string())),
            };
            if let Some(val) = val {
                values.push((spec.name, val));
            }
        }
        out.push((
            ts,
            Decoded {
                readings: vec![Reading {
                    device_id,
                    compound,
                    kind,
                    ts_ms: ts,
                    seq: None,
                    values,
                    extras: None,
                }],
                ..Default::default()
            },
        ));
    }
    Ok(out)
}

pub fn event_rows(res: &QueryResult, dir: &Directory) -> Result<Vec<(i64, Decoded)>, RulesError> {
    let (c_ts, c_dev, c_ev) = (col(res, "ts")?, col(res, "device_id")?, col(res, "event")?);
    let (c_cmp, c_kind, c_data) = (
        res.column("compound_id"),
        res.column("kind"),
        res.column("data"),
    );
    let mut out = Vec::new();
    for row in &res.dataset {
        let (Some(ts), Some(id), Some(ev)) = (
            row.get(c_ts).and_then(ts_of),
            row.get(c_dev).and_then(|v| v.as_str()),
            row.get(c_ev).and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let kind = c_kind
            .and_then(|c| row.get(c))
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let cmp = c_cmp.and_then(|c| row.get(c)).and_then(|v| v.as_str());
        let Some((device_id, kind, compound)) = ident(dir, id, kind, cmp) else {
            continue;
        };
        let data = c_data
            .and_then(|c| row.get(c))
            .and_then(|v| v.as_str())
            .unwrap_or("{}")
            .to_string();
        out.push((
            ts,
            Decoded {
                events: vec![DeviceEvent {
                    device_id,
                    compound,
                    kind,
                    ts_ms: ts,
                    event: ev.to_string(),
                    data,
                }],
                ..Default::default()
            },
        ));
    }
    Ok(out)
}

pub fn status_rows(res: &QueryResult, dir: &Directory) -> Result<Vec<(i64, Decoded)>, RulesError> {
    let (c_ts, c_dev, c_st) = (col(res, "ts")?, col(res, "device_id")?, col(res, "status")?);
    let (c_cmp, c_kind) = (res.column("compound_id"), res.column("kind"));
    let mut out = Vec::new();
    for row in &res.dataset {
        let (Some(ts), Some(id), Some(st)) = (
            row.get(c_ts).and_then(ts_of),
            row.get(c_dev).and_then(|v| v.as_str()),
            row.get(c_st).and_then(|v| v.as_str()),
        ) else {
            continue;
        };
        let status = match st {
            "online" => Status::Online,
            "offline" => Status::Offline,
            _ => continue,
        };
        let kind = c_kind
            .and_then(|c| row.get(c))
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse().ok());
        let cmp = c_cmp.and_then(|c| row.get(c)).and_then(|v| v.as_str());
        let Some((device_id, kind, compound)) = ident(dir, id, kind, cmp) else {
            continue;
        };
        out.push((
            ts,
            Decoded {
                statuses: vec![StatusChange {
                    device_id,
                    compound,
                    kind,
                    ts_ms: ts,
                    status,
                }],
                ..Default::default()
            },
        ));
    }
    Ok(out)
}
