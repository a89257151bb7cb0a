//! QuestDB tables of the hub, created at start-up so column types come from the catalogue
//! rather than from whatever row ILP sees first.

use steward_estate::catalog;
use steward_estate::DeviceKind;

pub const EVENTS_TABLE: &str = "device_events";
pub const STATUS_TABLE: &str = "device_status";
pub const REJECTS_TABLE: &str = "rejects";
pub const TICKET_EVENTS_TABLE: &str = "ticket_events";

pub fn telemetry_ddl(kind: DeviceKind) -> String {
    let mut cols = vec![
        "ts TIMESTAMP".to_string(),
        "device_id SYMBOL CAPACITY 65536 CACHE".to_string(),
        "compound_id SYMBOL CAPACITY 4096 CACHE".to_string(),
        "seq LONG".to_string(),
        "received_at TIMESTAMP".to_string(),
        "extras VARCHAR".to_string(),
    ];
    for m in catalog::metrics(kind) {
        cols.push(format!("\"{}\" {}", m.name, m.ty.questdb_type()));
    }
    format!(
        "CREATE TABLE IF NOT EXISTS {} ({}) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device_id)",
        kind.table(),
        cols.join(", ")
    )
}

pub fn all_ddl() -> Vec<String> {
    let mut v: Vec<String> = DeviceKind::ALL.iter().map(|k| telemetry_ddl(*k)).collect();
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (ts TIMESTAMP, device_id SYMBOL CAPACITY 65536 CACHE, \
         compound_id SYMBOL CAPACITY 4096 CACHE, kind SYMBOL, event SYMBOL, data VARCHAR, \
         received_at TIMESTAMP) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device_id, event)"
    ));
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {STATUS_TABLE} (ts TIMESTAMP, device_id SYMBOL CAPACITY 65536 CACHE, \
         compound_id SYMBOL CAPACITY 4096 CACHE, kind SYMBOL, status SYMBOL, received_at TIMESTAMP) \
         TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device_id)"
    ));
    // Rejects are keyed by receive time and never deduplicated: two identical bad
    // messages are two events a vendor should see.
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {REJECTS_TABLE} (ts TIMESTAMP, device_id SYMBOL CAPACITY 65536 CACHE, \
         reason SYMBOL, topic VARCHAR, detail VARCHAR, payload VARCHAR, payload_bytes LONG) \
         TIMESTAMP(ts) PARTITION BY DAY WAL"
    ));
    // Ticket events let managers chart response times next to the telemetry.
    v.push(format!(
        "CREATE TABLE IF NOT EXISTS {TICKET_EVENTS_TABLE} (ts TIMESTAMP, ticket_id LONG, kind SYMBOL, \
         device_id SYMBOL CAPACITY 65536 CACHE, rule_id SYMBOL, station SYMBOL, compound_id SYMBOL, \
         priority SYMBOL, state SYMBOL, escalation_level LONG, audience SYMBOL, message VARCHAR) \
         TIMESTAMP(ts) PARTITION BY MONTH WAL"
    ));
    v
}
