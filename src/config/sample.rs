//! The commented configuration `steward generate-config` prints: every key of
//! [`HubConfig`], each with what it does. Keys that are set by default show their
//! default; keys unset by default (TLS, external QuestDB, a rule directory, ...) are shown
//! commented out with an example value, so the file still means "all defaults".
//!
//! The values come from `HubConfig::default()`; the words are in [`KEYS`] and
//! [`SECTIONS`]. A test walks the typed configuration and fails when a key has no words
//! here, or words remain for a key that is gone.

use super::HubConfig;

/// A key: its dotted path, what it does, and for a key unset by default an example value.
struct Key {
    path: &'static str,
    doc: &'static str,
    example: Option<&'static str>,
}

const fn key(path: &'static str, doc: &'static str) -> Key {
    Key {
        path,
        doc,
        example: None,
    }
}

const fn unset(path: &'static str, example: &'static str, doc: &'static str) -> Key {
    Key {
        path,
        doc,
        example: Some(example),
    }
}

/// The tables in the order they are printed, with what each is for.
const SECTIONS: &[(&str, &str)] = &[
    (
        "estate",
        "The estate: stations, compounds, buildings, gateways and devices.",
    ),
    (
        "broker",
        "The embedded MQTT broker devices connect to (docs/device-contract.md).",
    ),
    (
        "ingest",
        "Decoding and validation of device messages, and the durable spool in front of QuestDB.",
    ),
    (
        "questdb",
        "QuestDB, where readings, events, statuses and rejects are stored.",
    ),
    (
        "questdb.managed",
        "The QuestDB the hub starts itself (mode = \"managed\").",
    ),
    (
        "questdb.retention",
        "How long each table keeps its rows (QuestDB TTLs, set at every start); 0 keeps \
         them for good (docs/device-contract.md section 13).",
    ),
    ("api", "The HTTP API, dashboard and metrics."),
    (
        "api.public_reports",
        "Limits of the public resident report endpoint (no token needed).",
    ),
    ("rules", "The rules engine and the tickets it raises."),
    (
        "rules.sla",
        "SLA targets per priority: time to acknowledge, to be on site, to resolve. An \
         unset target means none for that stage.",
    ),
    (
        "notify",
        "Where notifications go: named endpoints on a channel (signed webhook, WeCom or \
         DingTalk group robot, SMTP email, SMS gateway), and the delivery outbox \
         (docs/notifications.md). People name the endpoints they are reached on in the \
         estate file.",
    ),
    (
        "notify.outbox",
        "The durable delivery outbox: retries with exponential backoff and jitter, then a \
         dead letter.",
    ),
    (
        "escalation",
        "Escalation to people: who is told at raise and who next while nobody \
         acknowledges (docs/escalation.md), and the one-time acknowledgement links.",
    ),
    (
        "rounds",
        "Planned maintenance and inspection rounds: checklist work orders from schedules, \
         items proved by telemetry (docs/rounds.md).",
    ),
    (
        "cluster",
        "Cluster mode on Kafka and PostgreSQL (docs/cluster.md). `single` is one machine and \
         ignores the other keys; a cluster node needs questdb.mode = \"external\".",
    ),
];

/// Every key, in the order printed within its table.
const KEYS: &[Key] = &[
    unset(
        "notify.endpoints",
        "{ crew-hook = { channel = \"webhook\", url = \"https://crew.example/steward\", secret = \"change-me\" } }",
        "Named endpoints, usually written as one table each: `[notify.endpoints.crew-hook]` \
         with `channel` = webhook, wecom, dingtalk, email or sms and that channel's keys \
         (docs/notifications.md lists them).",
    ),
    key(
        "notify.outbox.database",
        "SQLite file of pending deliveries, attempts and dead letters.",
    ),
    key(
        "notify.outbox.max_attempts",
        "Attempts before a delivery becomes a dead letter (listed by the API).",
    ),
    key(
        "notify.outbox.initial_backoff",
        "Delay before the second attempt; it doubles per attempt, with jitter.",
    ),
    key("notify.outbox.max_backoff", "Longest delay between attempts."),
    key(
        "notify.outbox.poll_interval",
        "How often the worker looks for due deliveries when nothing wakes it.",
    ),
    key(
        "notify.outbox.batch",
        "Deliveries sent at once, so one slow endpoint does not hold up the others.",
    ),
    key(
        "notify.outbox.request_timeout",
        "Timeout of one HTTP request or SMTP session.",
    ),
    key(
        "escalation.enabled",
        "Notify people at all; tickets, their MQTT alerts and the SSE stream do not depend \
         on it.",
    ),
    unset(
        "escalation.policy",
        "\"escalation.toml\"",
        "Escalation policy file (TOML, reloaded when it changes); unset means the built-in \
         policy (P1: on-call crew member and building captain at once, station head at \
         +5 min, street duty officer at +15 min, district at +30 min).",
    ),
    key(
        "escalation.database",
        "SQLite file of used acknowledgement links; the link key is kept next to it.",
    ),
    unset(
        "escalation.public_url",
        "\"https://steward.example.com\"",
        "Address people open acknowledgement links at; unset means the API's own address, \
         which phones outside the LAN cannot reach.",
    ),
    key("escalation.link_ttl", "How long an acknowledgement link works."),
    unset(
        "escalation.link_secret",
        "\"a-long-random-string\"",
        "Key that signs acknowledgement links (at least 16 characters); unset means a \
         random key kept next to escalation.database.",
    ),
    key(
        "escalation.tick",
        "How often the ladder looks for due steps and copies delivery attempts to the \
         audit trail.",
    ),
    key(
        "estate.file",
        "Estate file (TOML) loaded into the registry at start-up; relative paths are taken \
         from this file's directory. Its `devices_csv` key may name a CSV file with more \
         devices (see README). Optional once the database exists.",
    ),
    key(
        "estate.database",
        "SQLite database of the estate registry (devices, secrets, API tokens).",
    ),
    key(
        "broker.v4_listen",
        "The MQTT listener: MQTT 3.1.1 and MQTT 5 on one port (the protocol level in each \
         CONNECT picks the version).",
    ),
    key(
        "broker.v5_listen",
        "An extra MQTT 5 only listener, for devices configured with a second port; \"\" \
         disables it.",
    ),
    unset(
        "broker.tls_listen",
        "\"0.0.0.0:8883\"",
        "MQTT over TLS (3.1.1 and 5); needs tls_cert and tls_key. Unset: no TLS listener.",
    ),
    unset(
        "broker.tls_cert",
        "\"certs/server.pem\"",
        "PEM certificate chain of the TLS listener, server certificate first.",
    ),
    unset(
        "broker.tls_key",
        "\"certs/server.key\"",
        "PEM private key of the TLS listener.",
    ),
    key(
        "broker.max_payload_bytes",
        "Largest MQTT publish payload; a bigger packet closes the connection. Keep it above \
         ingest.max_payload_bytes so oversize payloads get a reject reason.",
    ),
    key(
        "broker.max_connections",
        "Most concurrent MQTT connections.",
    ),
    key(
        "broker.connection_timeout_ms",
        "Time a new connection has to send CONNECT, in milliseconds.",
    ),
    key(
        "broker.max_inflight",
        "QoS 1 messages in flight per connection.",
    ),
    key(
        "broker.max_segment_bytes",
        "Size of one segment of the router's in-memory log.",
    ),
    key(
        "broker.max_segment_count",
        "Segments a slow reader may lag behind before the oldest are dropped.",
    ),
    key(
        "broker.device_rate_per_s",
        "Sustained publishes per second one device or gateway may send over all its \
         connections; excess is shed and counted. 0 disables the limit.",
    ),
    key(
        "broker.device_burst",
        "Publishes a device may send in a burst above device_rate_per_s.",
    ),
    key(
        "ingest.max_payload_bytes",
        "Largest payload the contract accepts; larger ones are rejected `payload_too_large`.",
    ),
    key(
        "ingest.max_entries",
        "Largest array of entries in one message (`too_many_entries` above).",
    ),
    key(
        "ingest.max_future_skew",
        "How far ahead of the hub's clock a `ts` may be.",
    ),
    key(
        "ingest.max_past_age",
        "How old a `ts` may be (devices replaying a backlog).",
    ),
    key(
        "ingest.batch_rows",
        "Rows per QuestDB batch; a full batch is sent at once.",
    ),
    key(
        "ingest.flush_interval",
        "A batch that is not full is sent after this long.",
    ),
    key(
        "ingest.spool_dir",
        "Directory of the durable spool: every accepted row is kept here until QuestDB has it.",
    ),
    key(
        "ingest.spool_max_bytes",
        "Size bound of the spool. Reached (QuestDB down that long): ingest holds devices' \
         PUBACKs until QuestDB takes rows again; with ack = \"received\" new rows are \
         dropped and counted instead.",
    ),
    key(
        "ingest.spool_fsync",
        "Sync each spool segment to disk when sealed (power loss).",
    ),
    key(
        "ingest.reject_payload_bytes",
        "Bytes of a rejected payload kept in the `rejects` table.",
    ),
    key(
        "ingest.ack",
        "When a QoS 1 publish gets its PUBACK: \"spooled\" once it is written to the spool \
         (survives a kill of the hub), \"synced\" once that write is also fsynced \
         (survives a power cut), \"received\" on receipt (from memory, like Mosquitto).",
    ),
    key(
        "questdb.mode",
        "\"managed\": the hub starts QuestDB as a child process (needs Java 17+; the jar is \
         fetched with Maven once). \"external\": use the QuestDB at http_addr.",
    ),
    unset(
        "questdb.http_addr",
        "\"127.0.0.1:9000\"",
        "HTTP address (ILP and /exec) of an external QuestDB; only with mode = \"external\".",
    ),
    key("questdb.managed.version", "QuestDB version to run (9.x)."),
    unset(
        "questdb.managed.jar",
        "\"/opt/questdb/questdb.jar\"",
        "Path of the QuestDB jar. Unset: $STEWARD_QUESTDB_JAR, or \
         ~/.cache/steward/questdb-<version>.jar fetched with Maven when missing.",
    ),
    unset(
        "questdb.managed.java",
        "\"/usr/bin/java\"",
        "Java executable. Unset: $JAVA_HOME/bin/java, then java on PATH.",
    ),
    key(
        "questdb.managed.root",
        "QuestDB's data directory, kept across restarts.",
    ),
    key(
        "questdb.managed.temporary",
        "Use a fresh temporary data directory removed on exit instead of root.",
    ),
    key(
        "questdb.managed.http_port",
        "QuestDB's HTTP port (ILP, /exec, web console) on 127.0.0.1; 0 picks a free one.",
    ),
    key(
        "questdb.managed.pg_port",
        "QuestDB's PostgreSQL wire port on 127.0.0.1; 0 picks a free one.",
    ),
    key(
        "questdb.managed.pg_bind",
        "Address the PostgreSQL wire port listens on (Grafana, psql); any address other \
         than loopback needs pg_password (docs/grafana.md).",
    ),
    unset(
        "questdb.managed.pg_user",
        "\"admin\"",
        "Admin user of the PG wire port. Unset: QuestDB's default, admin.",
    ),
    unset(
        "questdb.managed.pg_password",
        "\"change-me-please\"",
        "Its password (8 characters or more, not QuestDB's default). Unset: quest.",
    ),
    unset(
        "questdb.managed.pg_readonly_user",
        "\"grafana\"",
        "A read-only PG user for dashboards; enabled when set, with pg_readonly_password.",
    ),
    unset(
        "questdb.managed.pg_readonly_password",
        "\"read-only-secret\"",
        "Password of the read-only PG user.",
    ),
    key("questdb.managed.max_heap", "JVM heap limit."),
    key(
        "questdb.managed.start_timeout",
        "How long QuestDB may take to start.",
    ),
    key(
        "questdb.managed.settings",
        "Further QuestDB server settings as its QDB_* environment variables, e.g. \
         { QDB_SHARED_WORKER_COUNT = \"1\" }; the listen addresses are the hub's to set.",
    ),
    key(
        "questdb.retention.telemetry_days",
        "Raw readings (<kind>_telemetry): days kept; 0 or at least 7.",
    ),
    key(
        "questdb.retention.device_events_days",
        "device_events: days kept.",
    ),
    key(
        "questdb.retention.device_status_days",
        "device_status: days kept.",
    ),
    key("questdb.retention.rejects_days", "rejects: days kept."),
    key(
        "questdb.retention.ticket_events_months",
        "ticket_events: months kept.",
    ),
    key(
        "questdb.retention.hourly_months",
        "Hourly rollups (<kind>_telemetry_1h): months kept.",
    ),
    key(
        "questdb.retention.daily_years",
        "Daily rollups (<kind>_telemetry_1d): years kept.",
    ),
    key(
        "api.listen",
        "Address of the HTTP API and the dashboard (/dashboard/).",
    ),
    key(
        "api.photo_dir",
        "Directory of the photos crews attach to tickets from the crew app (JPEG/PNG, \
         named by SHA-256, with thumbnails); relative to this file.",
    ),
    key(
        "api.admin_token",
        "Bearer token of the admin (16 characters or more); empty: one is generated at \
         start-up and printed.",
    ),
    key(
        "api.public_reports.enabled",
        "Serve the public resident report endpoint.",
    ),
    key(
        "api.public_reports.per_client_per_hour",
        "Sustained reports per client address (IPv6: per /64) and hour.",
    ),
    key(
        "api.public_reports.per_client_burst",
        "Reports a client may send at once before the hourly rate applies.",
    ),
    key(
        "api.public_reports.global_per_minute",
        "Sustained reports per minute from everyone together.",
    ),
    key(
        "api.public_reports.global_burst",
        "Reports everyone together may send at once.",
    ),
    unset(
        "rules.rules",
        "\"rules/\"",
        "Rule file or directory of *.toml files, reloaded when they change. Unset: the \
         built-in default pack.",
    ),
    key(
        "rules.database",
        "SQLite database of tickets, their audit trail and rule state.",
    ),
    key("rules.watch", "Reload the rules when their files change."),
    key(
        "rules.watch_interval",
        "How often the rule files are checked for changes.",
    ),
    key(
        "rules.reminder_interval",
        "Reminders repeat this often until a ticket is acknowledged.",
    ),
    key(
        "rules.escalation_levels",
        "Escalation levels, first = the responsible station; each SLA breach moves a ticket \
         one up.",
    ),
    key(
        "rules.queue_capacity",
        "Decoded messages waiting for the rules thread; beyond it they are dropped and counted.",
    ),
    key(
        "rules.tick_interval",
        "How often time-based conditions (silences, SLA clocks) are evaluated.",
    ),
    key(
        "rules.snapshot_interval",
        "Rule state of changed devices is saved this often (and at shutdown).",
    ),
    key("rules.sla.p1_ack", "P1: time to acknowledge."),
    key("rules.sla.p1_on_site", "P1: time to be on site."),
    unset("rules.sla.p1_resolve", "\"8h\"", "P1: time to resolve."),
    key("rules.sla.p2_ack", "P2: time to acknowledge."),
    unset("rules.sla.p2_on_site", "\"2h\"", "P2: time to be on site."),
    key("rules.sla.p2_resolve", "P2: time to resolve."),
    key("rules.sla.p3_ack", "P3: time to acknowledge."),
    unset(
        "rules.sla.p3_on_site",
        "\"1day\"",
        "P3: time to be on site.",
    ),
    key("rules.sla.p3_resolve", "P3: time to resolve."),
    unset(
        "rounds.schedules",
        "\"rounds.toml\"",
        "Schedule file (TOML, docs/rounds.md), validated at start and reloaded when it \
         changes. Unset: no planned rounds.",
    ),
    unset(
        "rounds.database",
        "\"var/rounds.db\"",
        "SQLite database of rounds and their checklist items. Unset: rounds.db next to \
         rules.database.",
    ),
    key("rounds.watch", "Reload the schedule file when it changes."),
    key(
        "rounds.watch_interval",
        "How often the schedule file is checked for changes.",
    ),
    key(
        "rounds.generate_interval",
        "How often due rounds are looked for and opened as work orders.",
    ),
    key(
        "rounds.queue_capacity",
        "Batches of telemetry evidence waiting for the rounds thread; beyond it they are \
         dropped and counted.",
    ),
    key(
        "cluster.role",
        "`single` (one machine), `frontend` (broker producing to Kafka, PUBACK after \
         Kafka's ack) or `worker` (rule worker and storage writer).",
    ),
    key(
        "cluster.kafka",
        "Kafka bootstrap servers, host:port,host:port.",
    ),
    key(
        "cluster.postgres",
        "PostgreSQL connection string (key=value or URL): tickets, rule state, offsets.",
    ),
    key(
        "cluster.topic_prefix",
        "Topic names are {prefix}telemetry and {prefix}downlink.",
    ),
    key(
        "cluster.partitions",
        "Partitions of the telemetry topic when it is created; more workers than \
         partitions stay idle.",
    ),
    key("cluster.replication_factor", "Replicas of each topic when it is created."),
    key(
        "cluster.min_insync_replicas",
        "Replicas that must have a record before Kafka acknowledges it (and the device \
         gets its PUBACK).",
    ),
    key(
        "cluster.session_timeout",
        "A worker silent this long loses its partitions to the others.",
    ),
    key(
        "cluster.storage_session_timeout",
        "The same for a storage writer; longer, because a late row costs nothing and a \
         rebalance stops the writers.",
    ),
    key(
        "cluster.batch_records",
        "Most records a rule worker applies in one PostgreSQL transaction.",
    ),
    key(
        "cluster.idle_in_transaction_timeout",
        "PostgreSQL ends a worker's transaction left idle this long (a frozen worker), \
         releasing its locks.",
    ),
    key(
        "cluster.storage_writer",
        "Workers also write rows to QuestDB (consumer group steward-storage).",
    ),
    key(
        "cluster.node_id",
        "Name of this node in logs and Kafka client ids; empty: host name and process id.",
    ),
];

/// `text` as `# ` comment lines of at most about 90 columns.
fn comment(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 90 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The default value at a dotted path of the serialised default configuration.
fn default_at<'a>(defaults: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut value = defaults.get(parts.next()?)?;
    for p in parts {
        value = value.as_table()?.get(p)?;
    }
    Some(value)
}

/// The commented configuration `steward generate-config` prints.
pub fn sample_config() -> String {
    let defaults = toml::Table::try_from(HubConfig::default()).unwrap_or_default();
    let mut out = format!(
        "# Steward hub configuration: every key with what it does. Every key is optional;\n\
         # the values below are the defaults, and keys shown commented out are unset by\n\
         # default (remove the `# ` to set one). Durations are humantime strings (\"200ms\",\n\
         # \"5m\", \"30days\"); relative paths are taken from this file's directory.\n\
         # Managed QuestDB version: {}.\n",
        steward_storage::questdb::QUESTDB_VERSION
    );
    for (section, doc) in SECTIONS {
        out.push('\n');
        comment(&mut out, doc);
        out.push_str(&format!("[{section}]\n"));
        for k in KEYS {
            let Some((parent, name)) = k.path.rsplit_once('.') else {
                continue;
            };
            if parent != *section {
                continue;
            }
            comment(&mut out, k.doc);
            match (default_at(&defaults, k.path), k.example) {
                (Some(v), _) => out.push_str(&format!("{name} = {v}\n")),
                (None, Some(example)) => out.push_str(&format!("# {name} = {example}\n")),
                (None, None) => out.push_str(&format!("# {name} =\n")),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
