//! Borrowing JSON decoding of telemetry entries.
//!
//! Telemetry is the hot path: parsing into `serde_json::Value` built a BTreeMap and owned
//! strings per message (the largest cost in the ingest profile). These types borrow from
//! the payload, keep only scalars and remember the type of anything else, so the
//! validator can still name it in a reject.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Scalar<'a> {
    Null,
    Bool(bool),
    I64(i64),
    U64(u64),
    F64(f64),
    Str(Cow<'a, str>),
    Object,
    Array,
}

impl Scalar<'_> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Scalar::Null => "null",
            Scalar::Bool(_) => "a boolean",
            Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_) => "a number",
            Scalar::Str(_) => "a string",
            Scalar::Object => "an object",
            Scalar::Array => "an array",
        }
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::I64(i) => Some(*i as f64),
            Scalar::U64(u) => Some(*u as f64),
            Scalar::F64(f) => Some(*f),
            _ => None,
        }
    }

    /// JSON text of a scalar, for the `extras` column.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Scalar::Null | Scalar::Object | Scalar::Array => serde_json::Value::Null,
            Scalar::Bool(b) => (*b).into(),
            Scalar::I64(i) => (*i).into(),
            Scalar::U64(u) => (*u).into(),
            Scalar::F64(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Scalar::Str(s) => serde_json::Value::String(s.to_string()),
        }
    }
}

impl fmt::Display for Scalar<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::I64(i) => write!(f, "{i}"),
            Scalar::U64(u) => write!(f, "{u}"),
            Scalar::F64(x) => write!(f, "{x}"),
            other => f.write_str(other.type_name()),
        }
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Scalar::I64(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        Ok(Scalar::F64(v))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Scalar::Str(Cow::Owned(v)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Object)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Array)
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

/// An object key, borrowed from the payload when it has no escapes (serde's own
/// `Cow<str>` always allocates).
struct Key<'a>(Cow<'a, str>);

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(KeyVisitor)
    }
}

/// The `metrics` member: its entries in message order, or the type it had instead.
#[derive(Debug, Default)]
pub(crate) enum MetricsIn<'a> {
    #[default]
    Missing,
    Map(Vec<(Cow<'a, str>, Scalar<'a>)>),
    Not(&'static str),
}

struct MetricsVisitor;

impl<'de> Visitor<'de> for MetricsVisitor {
    type Value = MetricsIn<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of metrics")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::with_capacity(map.size_hint().unwrap_or(12));
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            let val: Scalar<'de> = map.next_value()?;
            v.push((k, val));
        }
        Ok(MetricsIn::Map(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(MetricsIn::Not("an array"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(MetricsIn::Not("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MetricsIn::Not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MetricsIn::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MetricsIn::Not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MetricsIn::Not("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(MetricsIn::Not("a string"))
    }
}

impl<'de> Deserialize<'de> for MetricsIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MetricsVisitor)
    }
}

/// One telemetry entry: the members the contract knows, and the first unexpected one.
#[derive(Debug, Default)]
pub(crate) struct EntryIn<'a> {
    /// Set when the entry was not an object: the type it was instead.
    pub not_object: Option<&'static str>,
    pub unexpected: Option<Cow<'a, str>>,
    pub ts: Option<Scalar<'a>>,
    pub seq: Option<Scalar<'a>>,
    pub device_id: Option<Scalar<'a>>,
    pub metrics: MetricsIn<'a>,
}

struct EntryVisitor;

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = EntryIn<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a telemetry entry")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut e = EntryIn::default();
        while let Some(Key(k)) = map.next_key::<Key<'de>>()? {
            match &*k {
                "ts" => e.ts = Some(map.next_value()?),
                "seq" => e.seq = Some(map.next_value()?),
                "device_id" => e.device_id = Some(map.next_value()?),
                "metrics" => e.metrics = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    if e.unexpected.is_none() {
                        e.unexpected = Some(k);
                    }
                }
            }
        }
        Ok(e)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(not("an array"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(not("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(not("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(not("a string"))
    }
}

fn not(t: &'static str) -> EntryIn<'static> {
    EntryIn {
        not_object: Some(t),
        ..EntryIn::default()
    }
}

impl<'de> Deserialize<'de> for EntryIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor)
    }
}

/// A telemetry message: one entry, an array of entries, or something else.
pub(crate) enum MessageIn<'a> {
    One(EntryIn<'a>),
    Many(Vec<EntryIn<'a>>),
    Not(&'static str),
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = MessageIn<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a telemetry object or array")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        EntryVisitor.visit_map(map).map(MessageIn::One)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(1024));
        while let Some(e) = seq.next_element::<EntryIn<'de>>()? {
            v.push(e);
        }
        Ok(MessageIn::Many(v))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(MessageIn::Not("null"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MessageIn::Not("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MessageIn::Not("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MessageIn::Not("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MessageIn::Not("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(MessageIn::Not("a string"))
    }
}

impl<'de> Deserialize<'de> for MessageIn<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(MessageVisitor)
    }
}

pub(crate) fn parse<'a>(text: &'a str) -> Result<MessageIn<'a>, serde_json::Error> {
    serde_json::from_str(text)
}
