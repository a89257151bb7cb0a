//! Rows to ILP: one function per kind of row, each appending to a questdb-rs buffer.

use super::schema::{
    EVENTS_TABLE, NOTIFICATION_EVENTS_TABLE, REJECTS_TABLE, STATUS_TABLE, TICKET_EVENTS_TABLE,
};
use questdb::ingress::{Buffer, ColumnName, TableName, TimestampMicros};
use steward_estate::model::{DeviceEvent, Reading, StatusChange, Value};

pub type IlpResult = questdb::Result<()>;

fn micros(ms: i64) -> TimestampMicros {
    TimestampMicros::new(ms.saturating_mul(1000))
}

/// Append one row; on error the buffer is rewound so a bad row cannot corrupt a batch.
fn guarded(buf: &mut Buffer, f: impl FnOnce(&mut Buffer) -> IlpResult) -> IlpResult {
    buf.set_marker()?;
    match f(buf) {
        Ok(()) => {
            buf.clear_marker();
            Ok(())
        }
        Err(e) => {
            buf.rewind_to_marker()?;
            Err(e)
        }
    }
}

/// Names from the catalogue and our own column names are checked once by a test
/// (`catalogue_names_are_valid_ilp`), so the hot path skips questdb-rs's per-call
/// validation, which the profile showed at ~10% of encoding.
fn col(name: &'static str) -> ColumnName<'static> {
    ColumnName::new_unchecked(name)
}

pub fn append_reading(buf: &mut Buffer, r: &Reading, received_us: i64) -> IlpResult {
    guarded(buf, |buf| {
        buf.table(TableName::new_unchecked(r.kind.table()))?
            .symbol(col("device_id"), &*r.device_id)?
            .symbol(col("compound_id"), &*r.compound)?;
        // ILP wants every symbol before the first column.
        for (name, v) in &r.values {
            if let Value::Sym(s) = v {
                buf.symbol(col(name), *s)?;
            }
        }
        if let Some(seq) = r.seq {
            buf.column_i64(col("seq"), i64::try_from(seq).unwrap_or(i64::MAX))?;
        }
        buf.column_ts(col("received_at"), TimestampMicros::new(received_us))?;
        if let Some(x) = &r.extras {
            buf.column_str(col("extras"), x)?;
        }
        for (name, v) in &r.values {
            let name = col(name);
            match v {
                Value::Bool(b) => buf.column_bool(name, *b)?,
                Value::Float(f) => buf.column_f64(name, *f)?,
                Value::Int(i) => buf.column_i64(name, *i)?,
                Value::Text(t) => buf.column_str(name, t)?,
                Value::Sym(_) => buf,
            };
        }
        buf.at(micros(r.ts_ms))
    })
}

pub fn append_event(buf: &mut Buffer, e: &DeviceEvent, received_us: i64) -> IlpResult {
    guarded(buf, |buf| {
        buf.table(EVENTS_TABLE)?
            .symbol("device_id", &*e.device_id)?
            .symbol("compound_id", &*e.compound)?
            .symbol("kind", e.kind.as_str())?
            .symbol("event", &e.event)?
            .column_str("data", &e.data)?
            .column_ts("received_at", TimestampMicros::new(received_us))?
            .at(micros(e.ts_ms))
    })
}

pub fn append_status(buf: &mut Buffer, s: &StatusChange, received_us: i64) -> IlpResult {
    guarded(buf, |buf| {
        buf.table(STATUS_TABLE)?
            .symbol("device_id", &*s.device_id)?
            .symbol("compound_id", &*s.compound)?
            .symbol("kind", s.kind.as_str())?
            .symbol("status", s.status.as_str())?
            .column_ts("received_at", TimestampMicros::new(received_us))?
            .at(micros(s.ts_ms))
    })
}

/// One ticket event (raised, transition, reminder, escalation, ...) for `ticket_events`.
pub struct TicketEventRow<'a> {
    pub ts_ms: i64,
    pub ticket_id: Option<i64>,
    pub kind: &'a str,
    pub device_id: &'a str,
    pub rule_id: &'a str,
    pub station: &'a str,
    pub compound: &'a str,
    pub priority: &'a str,
    pub state: Option<&'a str>,
    pub escalation_level: i64,
    pub audience: &'a str,
    pub message: &'a str,
}

pub fn append_ticket_event(buf: &mut Buffer, e: &TicketEventRow) -> IlpResult {
    guarded(buf, |buf| {
        buf.table(TICKET_EVENTS_TABLE)?
            .symbol("kind", e.kind)?
            .symbol("device_id", e.device_id)?
            .symbol("rule_id", e.rule_id)?
            .symbol("station", e.station)?
            .symbol("compound_id", e.compound)?
            .symbol("priority", e.priority)?;
        if let Some(s) = e.state {
            buf.symbol("state", s)?;
        }
        buf.symbol("audience", e.audience)?;
        if let Some(id) = e.ticket_id {
            buf.column_i64("ticket_id", id)?;
        }
        buf.column_i64("escalation_level", e.escalation_level)?
            .column_str("message", e.message)?
            .at(micros(e.ts_ms))
    })
}

/// One notification delivery attempt for `notification_events`.
pub struct NotificationEventRow<'a> {
    pub ts_ms: i64,
    pub attempt_id: i64,
    pub ticket_id: Option<i64>,
    pub tier: i64,
    pub round: i64,
    pub recipient_id: &'a str,
    /// Masked contact, as the outbox records it.
    pub recipient: &'a str,
    pub endpoint: &'a str,
    pub channel: &'a str,
    pub outcome: &'a str,
    pub attempt: i64,
    pub error: Option<&'a str>,
}

pub fn append_notification_event(buf: &mut Buffer, e: &NotificationEventRow) -> IlpResult {
    guarded(buf, |buf| {
        buf.table(NOTIFICATION_EVENTS_TABLE)?
            .symbol("recipient_id", e.recipient_id)?
            .symbol("endpoint", e.endpoint)?
            .symbol("channel", e.channel)?
            .symbol("outcome", e.outcome)?
            .column_i64("attempt_id", e.attempt_id)?;
        if let Some(id) = e.ticket_id {
            buf.column_i64("ticket_id", id)?;
        }
        buf.column_i64("tier", e.tier)?
            .column_i64("round", e.round)?
            .column_str("recipient", e.recipient)?
            .column_i64("attempt", e.attempt)?;
        if let Some(err) = e.error {
            buf.column_str("error", err)?;
        }
        buf.at(micros(e.ts_ms))
    })
}

pub struct RejectRow<'a> {
    pub received_us: i64,
    pub device_id: Option<&'a str>,
    pub reason: &'a str,
    pub topic: &'a [u8],
    pub detail: &'a str,
    pub payload: &'a [u8],
    pub keep_bytes: usize,
}

pub fn append_reject(buf: &mut Buffer, r: &RejectRow) -> IlpResult {
    let payload = &r.payload[..r.payload.len().min(r.keep_bytes)];
    let payload = String::from_utf8_lossy(payload);
    let topic = String::from_utf8_lossy(&r.topic[..r.topic.len().min(1024)]);
    guarded(buf, |buf| {
        buf.table(REJECTS_TABLE)?;
        if let Some(d) = r.device_id {
            buf.symbol("device_id", d)?;
        }
        buf.symbol("reason", r.reason)?
            .column_str("topic", &*topic)?
            .column_str("detail", r.detail)?
            .column_str("payload", &*payload)?
            .column_i64("payload_bytes", r.payload.len() as i64)?
            .at(TimestampMicros::new(r.received_us))
    })
}

#[cfg(test)]
mod tests {
    use questdb::ingress::{ColumnName, TableName};
    use steward_estate::{catalog, DeviceKind};

    #[test]
    fn catalogue_names_are_valid_ilp() {
        for k in DeviceKind::ALL {
            assert!(TableName::new(k.table()).is_ok());
            for m in catalog::metrics(k) {
                assert!(ColumnName::new(m.name).is_ok(), "{}", m.name);
            }
        }
        for c in ["device_id", "compound_id", "seq", "received_at", "extras"] {
            assert!(ColumnName::new(c).is_ok());
        }
    }
}
