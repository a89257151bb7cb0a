use parking_lot::RwLock;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use steward_estate::Directory;
use steward_estate::{Decoded, DecodedSink, Status, Value};

/// Whether a device is heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// Nothing received since the hub started.
    Unknown,
    Online,
    /// Last will or an explicit `offline` status.
    Offline,
    /// No data for more than two reporting periods.
    Silent,
}

/// What the hub last heard from one device.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceState {
    pub device_id: String,
    /// Event time of the newest reading, ms since the epoch.
    pub last_reading_ms: Option<i64>,
    /// Newest event time of anything (reading, event, status).
    pub last_seen_ms: Option<i64>,
    pub status: Option<&'static str>,
    pub last_event: Option<String>,
    /// Latest value of every metric ever reported, with its event time.
    pub values: LatestValues,
}

impl DeviceState {
    fn new(id: &str) -> Self {
        DeviceState {
            device_id: id.to_string(),
            last_reading_ms: None,
            last_seen_ms: None,
            status: None,
            last_event: None,
            values: LatestValues::default(),
        }
    }

    /// Liveness at `now_ms` for a device reporting every `report_interval_s`.
    pub fn liveness(&self, now_ms: i64, report_interval_s: u32) -> Liveness {
        if self.status == Some("offline") {
            return Liveness::Offline;
        }
        match self.last_seen_ms {
            None => Liveness::Unknown,
            Some(t) if now_ms - t > 2 * report_interval_s as i64 * 1000 => Liveness::Silent,
            Some(_) => Liveness::Online,
        }
    }
}

/// Latest value and event time per metric. A short vector keyed by the catalogue's
/// `&'static str` names: a device kind has at most 15 metrics, and the profile showed a
/// BTreeMap of strings costing more than decoding the reading.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LatestValues(Vec<(&'static str, Value, i64)>);

impl LatestValues {
    fn update(&mut self, name: &'static str, v: &Value, ts_ms: i64) {
        match self
            .0
            .iter_mut()
            .find(|(n, _, _)| std::ptr::eq(*n, name) || *n == name)
        {
            Some(slot) if slot.2 <= ts_ms => {
                slot.1 = v.clone();
                slot.2 = ts_ms;
            }
            Some(_) => {}
            None => self.0.push((name, v.clone(), ts_ms)),
        }
    }

    /// Latest value of `name` as JSON, with its event time.
    pub fn get(&self, name: &str) -> Option<(serde_json::Value, i64)> {
        self.0
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, v, t)| (v.to_json(), *t))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for LatestValues {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut sorted: Vec<_> = self.0.iter().collect();
        sorted.sort_by_key(|(n, _, _)| *n);
        let mut m = s.serialize_map(Some(sorted.len()))?;
        for (n, v, t) in sorted {
            m.serialize_entry(n, &(v.to_json(), t))?;
        }
        m.end()
    }
}

/// Latest state of every device, shared between the ingest thread (writer) and readers.
/// Out-of-order messages never move state backwards: a value is replaced only by a newer
/// event time.
#[derive(Clone, Default)]
pub struct DeviceStates {
    // Keyed by the readings' shared id so the hot path clones an Arc instead of allocating.
    inner: Arc<RwLock<HashMap<Arc<str>, DeviceState>>>,
}

impl DeviceStates {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, id: &str) -> Option<DeviceState> {
        self.inner.read().get(id).cloned()
    }

    /// Count of devices per liveness, judged against each device's reporting period.
    pub fn liveness_counts(&self, dir: &Directory, now_ms: i64) -> BTreeMap<&'static str, usize> {
        let states = self.inner.read();
        let mut out = BTreeMap::new();
        for d in dir.devices.values().filter(|d| !d.retired) {
            let l = states
                .get(&*d.id)
                .map(|s| s.liveness(now_ms, d.report_interval_s))
                .unwrap_or(Liveness::Unknown);
            let key = match l {
                Liveness::Unknown => "unknown",
                Liveness::Online => "online",
                Liveness::Offline => "offline",
                Liveness::Silent => "silent",
            };
            *out.entry(key).or_insert(0) += 1;
        }
        out
    }

    pub fn apply(&self, d: &Decoded) {
        let mut states = self.inner.write();
        for r in &d.readings {
            let s = states
                .entry(r.device_id.clone())
                .or_insert_with(|| DeviceState::new(&r.device_id));
            s.last_seen_ms = Some(s.last_seen_ms.map_or(r.ts_ms, |t| t.max(r.ts_ms)));
            s.last_reading_ms = Some(s.last_reading_ms.map_or(r.ts_ms, |t| t.max(r.ts_ms)));
            if s.status == Some("offline") {
                // Data after a last will means the device is back.
                s.status = Some("online");
            }
            for (name, v) in &r.values {
                s.values.update(name, v, r.ts_ms);
            }
        }
        for e in &d.events {
            let s = states
                .entry(e.device_id.clone())
                .or_insert_with(|| DeviceState::new(&e.device_id));
            s.last_seen_ms = Some(s.last_seen_ms.map_or(e.ts_ms, |t| t.max(e.ts_ms)));
            s.last_event = Some(e.event.clone());
        }
        for st in &d.statuses {
            let s = states
                .entry(st.device_id.clone())
                .or_insert_with(|| DeviceState::new(&st.device_id));
            s.status = Some(match st.status {
                Status::Online => "online",
                Status::Offline => "offline",
            });
            if st.status == Status::Online {
                s.last_seen_ms = Some(s.last_seen_ms.map_or(st.ts_ms, |t| t.max(st.ts_ms)));
            }
        }
    }
}

impl DecodedSink for DeviceStates {
    fn accept(&mut self, decoded: &Decoded) {
        self.apply(decoded);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc as A;
    use steward_estate::DeviceKind;
    use steward_estate::{Reading, StatusChange};

    fn reading(ts: i64, floor: i64) -> Reading {
        Reading {
            device_id: A::from("lift-1"),
            compound: A::from("cmp-1"),
            kind: DeviceKind::Lift,
            ts_ms: ts,
            seq: None,
            values: vec![("floor", Value::Int(floor))],
            extras: None,
        }
    }

    #[test]
    fn newer_values_win_and_silence_is_detected() {
        let s = DeviceStates::new();
        s.apply(&Decoded {
            readings: vec![reading(2_000, 5), reading(1_000, 3)],
            ..Default::default()
        });
        let st = s.get("lift-1").unwrap();
        assert_eq!(st.values.get("floor"), Some((serde_json::json!(5), 2_000)));
        assert_eq!(st.liveness(2_000 + 119_000, 60), Liveness::Online);
        assert_eq!(st.liveness(2_000 + 121_000, 60), Liveness::Silent);
        s.apply(&Decoded {
            statuses: vec![StatusChange {
                device_id: A::from("lift-1"),
                compound: A::from("cmp-1"),
                kind: DeviceKind::Lift,
                ts_ms: 3_000,
                status: Status::Offline,
            }],
            ..Default::default()
        });
        assert_eq!(
            s.get("lift-1").unwrap().liveness(3_000, 60),
            Liveness::Offline
        );
        s.apply(&Decoded {
            readings: vec![reading(4_000, 6)],
            ..Default::default()
        });
        assert_eq!(
            s.get("lift-1").unwrap().liveness(4_000, 60),
            Liveness::Online
        );
    }
}
