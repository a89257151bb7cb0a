//! What every stage exchanges about device data: what ingest decoded from one MQTT
//! message ([`Decoded`]: readings, events, status changes, rejects with reasons) and the
//! [`DecodedSink`] a downstream stage implements to receive it. Plain data: nothing here
//! talks to MQTT or QuestDB.

use crate::DeviceKind;
use std::sync::Arc;

/// A typed metric value, checked against the catalogue.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Float(f64),
    Int(i64),
    /// One of the catalogue's allowed values for an enum metric.
    Sym(&'static str),
    Text(String),
}

impl Value {
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(v) => Some(*v),
            Value::Int(v) => Some(*v as f64),
            _ => None,
        }
    }
    /// The value as JSON, as a device would have sent it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => (*b).into(),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Int(i) => (*i).into(),
            Value::Sym(s) => (*s).into(),
            Value::Text(t) => t.clone().into(),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(v) => Some(*v),
            _ => None,
        }
    }
}

/// One accepted telemetry entry of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub device_id: Arc<str>,
    pub compound: Arc<str>,
    pub kind: DeviceKind,
    /// Event time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    pub seq: Option<u64>,
    /// Catalogue metrics present in the message, in message order.
    pub values: Vec<(&'static str, Value)>,
    /// Vendor `x_` metrics as a JSON object, if any.
    pub extras: Option<String>,
}

impl Reading {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// One accepted device event (gate access, lift alarm button, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceEvent {
    pub device_id: Arc<str>,
    pub compound: Arc<str>,
    pub kind: DeviceKind,
    pub ts_ms: i64,
    pub event: String,
    /// The `data` object as JSON text (`{}` when absent).
    pub data: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Online,
    Offline,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Offline => "offline",
        }
    }
}

/// A device's birth message or last will.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusChange {
    pub device_id: Arc<str>,
    pub compound: Arc<str>,
    pub kind: DeviceKind,
    pub ts_ms: i64,
    pub status: Status,
}

/// Why a message (or one entry of a batch) was refused. The names are the contract's
/// reject reasons (docs/device-contract.md) and the `reason` label of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    BadTopic,
    UnknownDevice,
    RetiredDevice,
    NotBehindGateway,
    PayloadTooLarge,
    NotUtf8,
    MalformedJson,
    BadShape,
    TooManyEntries,
    BadTimestamp,
    UnknownMetric,
    WrongType,
    OutOfRange,
    UnknownEvent,
    BadStatus,
    NotAuthorized,
    RateLimited,
}

impl RejectReason {
    pub const ALL: [RejectReason; 17] = [
        RejectReason::BadTopic,
        RejectReason::UnknownDevice,
        RejectReason::RetiredDevice,
        RejectReason::NotBehindGateway,
        RejectReason::PayloadTooLarge,
        RejectReason::NotUtf8,
        RejectReason::MalformedJson,
        RejectReason::BadShape,
        RejectReason::TooManyEntries,
        RejectReason::BadTimestamp,
        RejectReason::UnknownMetric,
        RejectReason::WrongType,
        RejectReason::OutOfRange,
        RejectReason::UnknownEvent,
        RejectReason::BadStatus,
        RejectReason::NotAuthorized,
        RejectReason::RateLimited,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::BadTopic => "bad_topic",
            RejectReason::UnknownDevice => "unknown_device",
            RejectReason::RetiredDevice => "retired_device",
            RejectReason::NotBehindGateway => "not_behind_gateway",
            RejectReason::PayloadTooLarge => "payload_too_large",
            RejectReason::NotUtf8 => "not_utf8",
            RejectReason::MalformedJson => "malformed_json",
            RejectReason::BadShape => "bad_shape",
            RejectReason::TooManyEntries => "too_many_entries",
            RejectReason::BadTimestamp => "bad_timestamp",
            RejectReason::UnknownMetric => "unknown_metric",
            RejectReason::WrongType => "wrong_type",
            RejectReason::OutOfRange => "out_of_range",
            RejectReason::UnknownEvent => "unknown_event",
            RejectReason::BadStatus => "bad_status",
            RejectReason::NotAuthorized => "not_authorized",
            RejectReason::RateLimited => "rate_limited",
        }
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused message or batch entry, with a human-readable detail naming what is wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct Reject {
    pub reason: RejectReason,
    pub device_id: Option<String>,
    pub detail: String,
}

/// Everything one MQTT message decoded into.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Decoded {
    pub readings: Vec<Reading>,
    pub events: Vec<DeviceEvent>,
    pub statuses: Vec<StatusChange>,
    pub rejects: Vec<Reject>,
}

/// Downstream consumer of decoded messages (the rules engine). Called on the ingest
/// thread, so implementations hand work off instead of doing it inline.
pub trait DecodedSink: Send {
    fn accept(&mut self, decoded: &Decoded);
    /// Like [`DecodedSink::accept`], for the last sink, which may keep the message
    /// without copying it.
    fn accept_owned(&mut self, decoded: Decoded) {
        self.accept(&decoded);
    }
    /// A burst has ended: hand over anything held back, so nothing waits for the next one.
    fn flush(&mut self) {}
}
