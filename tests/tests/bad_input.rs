//! Bad input end to end: malformed MQTT packets over raw TCP, payloads the device contract
//! refuses, and malformed HTTP requests, all while a well-behaved device keeps publishing.
//! The hub must stay up, land every valid message of the good device exactly once, answer
//! each bad payload with its reject reason (counter and `rejects` row), and close only the
//! connection that sent garbage.

use reqwest::StatusCode;
use serde_json::{json, Value};
use std::time::Duration;
use steward_ingest::RejectReason as R;
use steward_tests::{now_ms, step, wait_until, HubSandbox, TestClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(30);

/// MQTT variable byte integer (remaining length).
fn varint(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
}

fn mqtt_str(s: &[u8], out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(header: u8, body: &[u8]) -> Vec<u8> {
    let mut p = vec![header];
    varint(body.len(), &mut p);
    p.extend_from_slice(body);
    p
}

/// MQTT 3.1.1 CONNECT with clean session, username and password.
fn connect_packet(client_id: &str, user: &str, password: &str) -> Vec<u8> {
    let mut body = Vec::new();
    mqtt_str(b"MQTT", &mut body);
    body.push(4);
    body.push(0xC2);
    body.extend_from_slice(&30u16.to_be_bytes());
    mqtt_str(client_id.as_bytes(), &mut body);
    mqtt_str(user.as_bytes(), &mut body);
    mqtt_str(password.as_bytes(), &mut body);
    packet(0x10, &body)
}

/// QoS 1 PUBLISH with packet id 1; the topic is raw bytes so it can be invalid UTF-8.
fn publish_packet(topic: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    mqtt_str(topic, &mut body);
    body.extend_from_slice(&1u16.to_be_bytes());
    body.extend_from_slice(payload);
    packet(0x32, &body)
}

/// Open a raw TCP connection to the MQTT listener.
async fn raw(sb: &HubSandbox) -> anyhow::Result<TcpStream> {
    Ok(TcpStream::connect(sb.mqtt_addr()).await?)
}

/// Open a raw connection and complete CONNECT/CONNACK as `id`.
async fn raw_session(sb: &HubSandbox, id: &str, secret: &str) -> anyhow::Result<TcpStream> {
    let mut s = raw(sb).await?;
    s.write_all(&connect_packet(id, id, secret)).await?;
    let mut ack = [0u8; 4];
    tokio::time::timeout(T, s.read_exact(&mut ack)).await??;
    anyhow::ensure!(
        ack == [0x20, 0x02, 0x00, 0x00],
        "CONNACK accepted expected, got {ack:?}"
    );
    Ok(s)
}

/// Whether the server closed this connection (EOF or reset) within `T`; bytes it sends
/// first (a CONNACK or DISCONNECT with a reason) are read and dropped.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    tokio::time::timeout(T, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

/// `steward_ingest_rejected_total{reason="..."}` from `/metrics`.
async fn rejected_metric(sb: &HubSandbox, reason: R) -> anyhow::Result<u64> {
    let text = sb
        .http()
        .get(sb.api("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    let needle = format!(
        "steward_ingest_rejected_total{{reason=\"{}\"}} ",
        reason.as_str()
    );
    Ok(text
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0))
}

/// The good device: sends message `i` and waits for its PUBACK before the next bad case,
/// so valid traffic is interleaved with every bad input.
struct GoodDevice {
    client: TestClient,
    t0: i64,
    sent: u64,
    /// Next new seq; seqs 0..next are the distinct messages sent so far.
    next: i64,
}

impl GoodDevice {
    fn payload(&self, seq: i64) -> String {
        json!({"ts": self.t0 + seq * 1000, "seq": seq, "metrics": {"alarm": false, "co_ppm": 1.0 + seq as f64}})
            .to_string()
    }

    async fn send_seq(&mut self, seq: i64) -> anyhow::Result<()> {
        self.client
            .publish("devices/smoke-1/telemetry", self.payload(seq))
            .await?;
        self.sent += 1;
        self.client.wait_acks(self.sent).await
    }

    /// One new message, acknowledged.
    async fn step(&mut self) -> anyhow::Result<()> {
        self.next += 1;
        self.send_seq(self.next - 1).await
    }
}

/// Seq of a valid-looking reading sent in a PUBLISH before CONNECT: it must never land.
const MARKER_SEQ: i64 = 777_777;

/// (reason, count) pairs of rejects.
type Counts = Vec<(R, u64)>;

/// Connection-level garbage: each closes only its own connection.
async fn garbage_closes_only_its_own_connection(
    sb: &HubSandbox,
    good: &mut GoodDevice,
) -> anyhow::Result<()> {
    // --- Connection-level garbage: each closes only its own connection. ---
    let marker_seq = MARKER_SEQ;
    let marker = json!({"ts": now_ms(), "seq": marker_seq, "metrics": {"alarm": true}}).to_string();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage bytes",
            b"\xde\xad\xbe\xef not mqtt at all \x00\xff".to_vec(),
        ),
        (
            "http on the mqtt port",
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        ),
        // A fifth length byte with the continuation bit is not a valid remaining length.
        (
            "bad remaining length",
            vec![0x10, 0xff, 0xff, 0xff, 0xff, 0x7f],
        ),
        (
            "publish before connect",
            publish_packet(b"devices/smoke-1/telemetry", marker.as_bytes()),
        ),
    ];
    for (name, bytes) in cases {
        let mut s = raw(sb).await?;
        s.write_all(&bytes).await?;
        assert!(
            closed_by_server(&mut s).await,
            "{name}: connection not closed"
        );
        good.step().await?;
    }
    {
        // Truncated CONNECT: the header promises more than is sent; the connection
        // timeout closes it.
        let full = connect_packet("smoke-2", "smoke-2", "smoke-2-secret");
        let mut s = raw(sb).await?;
        s.write_all(&full[..full.len() / 2]).await?;
        assert!(
            closed_by_server(&mut s).await,
            "truncated CONNECT: connection not closed"
        );
        good.step().await?;
    }
    {
        // A PUBLISH larger than broker.max_payload_bytes closes that session.
        let mut s = raw_session(sb, "smoke-2", "smoke-2-secret").await?;
        let big = vec![b'x'; sb.config.broker.max_payload_bytes + 1024];
        let _ = s
            .write_all(&publish_packet(b"devices/smoke-2/telemetry", &big))
            .await;
        assert!(
            closed_by_server(&mut s).await,
            "oversized packet: connection not closed"
        );
        good.step().await?;
    }
    let bad_topic_before = rejected_metric(sb, R::BadTopic).await?;
    let utf8_topic_closed = {
        // A topic that is not UTF-8 breaks MQTT's string rule: the broker may close the
        // connection, or pass it on and ingest rejects it as `bad_topic`.
        let mut s = raw_session(sb, "smoke-2", "smoke-2-secret").await?;
        s.write_all(&publish_packet(b"devices/smoke-2/\xff\xfe", b"{}"))
            .await?;
        let closed = closed_by_server(&mut s).await;
        good.step().await?;
        closed
    };
    if !utf8_topic_closed {
        assert!(
            wait_until(T, || async {
                rejected_metric(sb, R::BadTopic).await.unwrap_or(0) > bad_topic_before
            })
            .await,
            "invalid UTF-8 topic neither closed the connection nor was rejected as bad_topic"
        );
    }
    Ok(())
}

/// Payloads the contract refuses, from a second, authenticated device; returns the
/// rejects expected by reason and the reject counters before.
async fn send_payloads_the_contract_refuses(
    sb: &HubSandbox,
    good: &mut GoodDevice,
) -> anyhow::Result<(Counts, Counts)> {
    // --- Payloads the contract refuses, from a second, authenticated device. ---
    let bad_dev = sb.device("smoke-2", "smoke-2-secret").await?;
    let now = now_ms();
    let limit = sb.config.ingest.max_payload_bytes;
    let cases: Vec<(&str, Vec<u8>, R)> = vec![
        (
            "100k nested arrays",
            vec![b'['; 100_000],
            R::PayloadTooLarge,
        ),
        // Nesting is skipped without recursion, so it is refused for its shape.
        (
            "nesting below the size limit",
            {
                let mut v = vec![b'['; limit / 2];
                v.extend(std::iter::repeat_n(b']', limit / 2));
                v
            },
            R::BadShape,
        ),
        (
            "nested objects in a metric",
            {
                let depth = 5_000;
                let mut v = format!(r#"{{"ts":{now},"metrics":{{"co_ppm":"#).into_bytes();
                v.extend(std::iter::repeat_n(b"{\"a\":".as_slice(), depth).flatten());
                v.extend(b"1");
                v.extend(std::iter::repeat_n(b'}', depth + 2));
                v
            },
            R::WrongType,
        ),
        (
            "payload above the size limit",
            json!({"ts": now, "metrics": {"x_pad": "a".repeat(limit + 1)}})
                .to_string()
                .into_bytes(),
            R::PayloadTooLarge,
        ),
        (
            "NaN literal",
            format!(r#"{{"ts":{now},"metrics":{{"co_ppm":NaN}}}}"#).into_bytes(),
            R::MalformedJson,
        ),
        (
            "Infinity literal",
            format!(r#"{{"ts":{now},"metrics":{{"co_ppm":Infinity}}}}"#).into_bytes(),
            R::MalformedJson,
        ),
        (
            "number overflowing f64",
            format!(r#"{{"ts":{now},"metrics":{{"co_ppm":1e999}}}}"#).into_bytes(),
            R::MalformedJson,
        ),
        (
            "ts far in the future",
            json!({"ts": now + 10 * 365 * 86_400_000i64, "metrics": {"alarm": false}})
                .to_string()
                .into_bytes(),
            R::BadTimestamp,
        ),
        (
            "ts year 9999",
            json!({"ts": "9999-12-31T23:59:59Z", "metrics": {"alarm": false}})
                .to_string()
                .into_bytes(),
            R::BadTimestamp,
        ),
        (
            "ts at the epoch",
            json!({"ts": 0, "metrics": {"alarm": false}})
                .to_string()
                .into_bytes(),
            R::BadTimestamp,
        ),
        (
            "ts negative",
            json!({"ts": -1, "metrics": {"alarm": false}})
                .to_string()
                .into_bytes(),
            R::BadTimestamp,
        ),
        (
            "ts beyond i64",
            json!({"ts": u64::MAX, "metrics": {"alarm": false}})
                .to_string()
                .into_bytes(),
            R::BadTimestamp,
        ),
        (
            "payload not UTF-8",
            b"{\"ts\":1,\"metrics\":{\"alarm\":\xff}}".to_vec(),
            R::NotUtf8,
        ),
        (
            "seq negative",
            json!({"ts": now, "seq": -5, "metrics": {"alarm": false}})
                .to_string()
                .into_bytes(),
            R::WrongType,
        ),
    ];
    let mut expected: Vec<(R, u64)> = Vec::new();
    let before: Vec<(R, u64)> = {
        let mut v = Vec::new();
        for r in R::ALL {
            v.push((r, rejected_metric(sb, r).await?));
        }
        v
    };
    for (_, payload, reason) in &cases {
        bad_dev
            .publish("devices/smoke-2/telemetry", payload.clone())
            .await?;
        match expected.iter_mut().find(|(r, _)| r == reason) {
            Some((_, n)) => *n += 1,
            None => expected.push((*reason, 1)),
        }
        good.step().await?;
    }
    // A topic id over 64 bytes cut inside a character once panicked the decoder.
    let long_topic = format!("devices/{}ļ{}/telemetry", "a".repeat(31), "b".repeat(40));
    let bad_topic_before = rejected_metric(sb, R::BadTopic).await?;
    bad_dev.publish(&long_topic, b"{}".to_vec()).await?;
    good.step().await?;
    bad_dev.wait_acks(cases.len() as u64 + 1).await?;
    assert!(
        wait_until(T, || async {
            rejected_metric(sb, R::BadTopic).await.unwrap_or(0) > bad_topic_before
        })
        .await,
        "long non-ASCII topic id not rejected as bad_topic"
    );
    Ok((expected, before))
}

/// Duplicate and out-of-order seq from the good device.
async fn send_duplicates_and_out_of_order(good: &mut GoodDevice) -> anyhow::Result<()> {
    // --- Duplicate and out-of-order seq from the good device: stored once each. ---
    let last = good.next - 1;
    good.send_seq(last).await?;
    good.send_seq(last).await?;
    good.send_seq(0).await?;
    // Two new messages, the later one first.
    let n = good.next;
    good.send_seq(n + 1).await?;
    good.send_seq(n).await?;
    good.next += 2;
    Ok(())
}

/// Malformed HTTP: each is a 4xx, never a 5xx or a dropped server.
async fn malformed_http_gets_a_4xx(sb: &HubSandbox, good: &mut GoodDevice) -> anyhow::Result<()> {
    // --- Malformed HTTP: each is a 4xx, never a 5xx or a dropped server. ---
    let http = sb.http();
    let token = sb.hub.admin_token.clone();
    let deep = "[".repeat(100_000);
    let huge = format!("{{\"id\":\"{}\"}}", "a".repeat(3 * 1024 * 1024));
    let requests: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "body not JSON",
            http.post(sb.api("/api/v1/devices"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body("{not json"),
        ),
        (
            "body without content type",
            http.post(sb.api("/api/v1/devices"))
                .bearer_auth(&token)
                .body("{}"),
        ),
        (
            "body of the wrong shape",
            http.post(sb.api("/api/v1/devices"))
                .bearer_auth(&token)
                .json(&json!({"id": 5, "kind": ["lift"]})),
        ),
        (
            "deeply nested body",
            http.post(sb.api("/api/v1/devices"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(deep),
        ),
        (
            "body above the limit",
            http.post(sb.api("/api/v1/devices"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(huge),
        ),
        (
            "NaN in a body",
            http.post(sb.api("/api/v1/tickets/1/transition"))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"to":"acknowledged","actor":NaN}"#),
        ),
        (
            "ticket id not a number",
            http.post(sb.api("/api/v1/tickets/abc/transition"))
                .bearer_auth(&token)
                .json(&json!({"to": "acknowledged", "actor": "x"})),
        ),
        (
            "limit not a number",
            http.get(sb.api("/api/v1/rejects?limit=abc"))
                .bearer_auth(&token),
        ),
        (
            "limit negative",
            http.get(sb.api("/api/v1/rejects?limit=-1"))
                .bearer_auth(&token),
        ),
        (
            "limit huge",
            http.get(sb.api("/api/v1/tickets?limit=99999999999999999999"))
                .bearer_auth(&token),
        ),
        (
            "unknown parameter",
            http.get(sb.api("/api/v1/rejects?drop=table"))
                .bearer_auth(&token),
        ),
        (
            "SQL in an id parameter",
            http.get(sb.api("/api/v1/rejects?device_id=x'%20OR%201=1--"))
                .bearer_auth(&token),
        ),
        (
            "unknown reason",
            http.get(sb.api("/api/v1/rejects?reason=bogus"))
                .bearer_auth(&token),
        ),
        (
            "query not UTF-8",
            http.get(sb.api("/api/v1/rejects?reason=%FF%FE"))
                .bearer_auth(&token),
        ),
        (
            "path id not UTF-8",
            http.get(sb.api("/api/v1/devices/%FF%FE"))
                .bearer_auth(&token),
        ),
        (
            "time not a number",
            http.get(sb.api("/api/v1/tickets?from=yesterday"))
                .bearer_auth(&token),
        ),
    ];
    for (name, req) in requests {
        let r = req.send().await?;
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        assert!(
            status.is_client_error(),
            "{name}: expected a 4xx, got {status}: {}",
            body.chars().take(200).collect::<String>()
        );
        // Our own validation answers in the one error shape.
        if let Ok(v) = serde_json::from_str::<Value>(&body) {
            assert!(v["error"]["code"].is_string(), "{name}: error body {v}");
        }
        good.step().await?;
    }
    Ok(())
}

/// The hub is still up: health, new connections, valid data.
async fn hub_is_still_up(sb: &HubSandbox, good: &mut GoodDevice) -> anyhow::Result<()> {
    let http = sb.http();
    // --- The hub is still up: health, new connections, valid data. ---
    let r = http.get(sb.api("/healthz")).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    let fresh = sb.device("gate-1", "gate-1-secret").await?;
    fresh.disconnect().await;
    good.step().await?;
    Ok(())
}

/// Every valid message of the good device (`distinct` of them) is stored exactly once,
/// and nothing bad was stored as telemetry.
async fn good_messages_are_stored_once(sb: &HubSandbox, distinct: i64) -> anyhow::Result<()> {
    let marker_seq = MARKER_SEQ;
    // Every valid message of the good device is in QuestDB exactly once.
    let sql = "SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-1'";
    sb.wait_count(sql, distinct, T).await?;
    assert_eq!(sb.count(sql).await?, distinct);
    assert_eq!(
        sb.count("SELECT count_distinct(seq) FROM smoke_telemetry WHERE device_id = 'smoke-1'")
            .await?,
        distinct
    );
    assert_eq!(
        sb.count(&format!(
            "SELECT count() FROM smoke_telemetry WHERE seq = {marker_seq}"
        ))
        .await?,
        0,
        "a PUBLISH before CONNECT must not be ingested"
    );
    assert_eq!(
        sb.count("SELECT count() FROM smoke_telemetry WHERE device_id = 'smoke-2'")
            .await?,
        0,
        "no bad payload was stored as telemetry"
    );
    Ok(())
}

/// Each bad payload got its reason: counted in /metrics and kept in `rejects`.
async fn each_bad_payload_has_its_reason(
    sb: &HubSandbox,
    expected: &Counts,
    before: &Counts,
) -> anyhow::Result<()> {
    // Each bad payload got its reason: counted in /metrics and kept in `rejects`.
    for (reason, n) in expected {
        let base = before
            .iter()
            .find(|(r, _)| r == reason)
            .map_or(0, |(_, n)| *n);
        assert!(
            wait_until(T, || async {
                rejected_metric(sb, *reason).await.unwrap_or(0) >= base + n
            })
            .await,
            "{reason}: expected {n} more in /metrics"
        );
        sb.wait_count(
            &format!(
                "SELECT count() FROM rejects WHERE device_id = 'smoke-2' AND reason = '{}'",
                reason.as_str()
            ),
            *n as i64,
            T,
        )
        .await?;
    }
    let total: u64 = expected.iter().map(|(_, n)| n).sum();
    assert_eq!(
        sb.count(
            "SELECT count() FROM rejects WHERE device_id = 'smoke-2' AND reason != 'bad_topic'"
        )
        .await?,
        total as i64,
        "one reject per bad payload"
    );
    // A topic outside its own namespace is charged to the client that sent it.
    assert!(
        sb.count(
            "SELECT count() FROM rejects WHERE device_id = 'smoke-2' AND reason = 'bad_topic'"
        )
        .await?
            >= 1,
        "the long non-ASCII topic is charged to its sender"
    );
    let r = sb
        .sql("SELECT reason, detail FROM rejects WHERE device_id = 'smoke-2'")
        .await?;
    for row in &r.dataset {
        let detail = row[1].as_str().unwrap_or_default();
        assert!(!detail.is_empty(), "reject {} has no detail", row[0]);
    }
    assert_eq!(
        sb.count("SELECT count() FROM rejects WHERE device_id = 'smoke-1'")
            .await?,
        0,
        "the good device was never rejected"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_survives_bad_input_and_keeps_every_good_message_once() -> anyhow::Result<()> {
    let sb = HubSandbox::start_with(steward_tests::TEST_ESTATE, |c| {
        // Truncated CONNECTs are closed after this long.
        c.broker.connection_timeout_ms = 2_000;
    })
    .await?;
    let mut good = GoodDevice {
        client: sb.device("smoke-1", "smoke-1-secret").await?,
        t0: now_ms() - 600_000,
        sent: 0,
        next: 0,
    };

    step(
        "connection-level garbage",
        garbage_closes_only_its_own_connection(&sb, &mut good),
    )
    .await?;
    let (expected, before) = step(
        "payloads the contract refuses",
        send_payloads_the_contract_refuses(&sb, &mut good),
    )
    .await?;
    step(
        "duplicate and out-of-order seq",
        send_duplicates_and_out_of_order(&mut good),
    )
    .await?;
    step("malformed HTTP", malformed_http_gets_a_4xx(&sb, &mut good)).await?;
    step("hub still up", hub_is_still_up(&sb, &mut good)).await?;
    step(
        "good messages stored once",
        good_messages_are_stored_once(&sb, good.next),
    )
    .await?;
    step(
        "each bad payload has its reason",
        each_bad_payload_has_its_reason(&sb, &expected, &before),
    )
    .await?;
    sb.shutdown().await;
    Ok(())
}
