//! The OpenAPI document cannot drift from the code: every 2xx reply has a schema, every
//! documented operation is served by the router, and every route of the router is
//! documented. No QuestDB: the document is built in-process and the router runs on a
//! local port with a QuestDB address nothing listens on.

use parking_lot::Mutex;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use steward_api::AppState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn doc() -> Value {
    serde_json::from_str(steward_api::openapi::document()).expect("the document is JSON")
}

/// Every (method, path) the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_string(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn every_success_reply_has_a_schema() {
    let doc = doc();
    let mut missing = Vec::new();
    for (method, path) in documented(&doc) {
        let responses = doc["paths"][&path][&method]["responses"]
            .as_object()
            .expect("responses");
        let ok: Vec<_> = responses
            .iter()
            .filter(|(s, _)| s.starts_with('2'))
            .collect();
        if ok.is_empty() {
            missing.push(format!("{method} {path}: no 2xx response"));
        }
        for (status, r) in ok {
            let content = r["content"].as_object().filter(|c| !c.is_empty());
            let Some(content) = content else {
                missing.push(format!("{method} {path} {status}: no content"));
                continue;
            };
            for (ty, media) in content {
                if media["schema"].as_object().is_none_or(|s| s.is_empty()) {
                    missing.push(format!("{method} {path} {status} {ty}: no schema"));
                }
            }
        }
    }
    assert!(missing.is_empty(), "replies without a schema: {missing:#?}");
}

/// Every `$ref` in `v`.
fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_schema_reference_resolves() {
    let doc = doc();
    let mut all = BTreeSet::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20, "references: {all:?}");
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r}: not a schema reference"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} is not in components"
        );
    }
}

/// A route in router source: `.route("path", get(...).post(...))`, its methods, and
/// whether it is in the block nested under the API prefix.
fn routes_in(src: &str) -> Vec<(Vec<String>, String)> {
    let mut out = Vec::new();
    let mut rest = src;
    while let Some(i) = rest.find(".route(") {
        rest = &rest[i + ".route(".len()..];
        // The call's text, up to its closing parenthesis.
        let mut depth = 1;
        let end = rest
            .char_indices()
            .find(|(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .map(|(i, _)| i)
            .expect("a closed .route(");
        let call = &rest[..end];
        let path = call
            .split('"')
            .nth(1)
            .expect("a path literal first")
            .to_string();
        let methods = METHODS
            .iter()
            .filter(|m| {
                call.match_indices(&format!("{m}(")).any(|(at, _)| {
                    at == 0 || !call[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                })
            })
            .map(|m| m.to_string())
            .collect();
        out.push((methods, path));
    }
    out
}

/// Every (method, full path) of `app`, read from the router's source: the routes of the
/// `api` router get the prefix it is nested under.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/router.rs"))
        .expect("router.rs");
    let body = &src[src.find("pub fn app(").expect("fn app")..];
    let (api, root) = body
        .split_once(';')
        .expect("the `api` router, then the root router");
    let prefix = root
        .split_once(".nest(\"")
        .and_then(|(_, r)| r.split('"').next())
        .expect("the API router is nested under a prefix");
    let root = &root[..root.find("\n}").expect("end of fn app")];
    let mut out = BTreeSet::new();
    for (block, pre) in [(api, prefix), (root, "")] {
        for (methods, path) in routes_in(block) {
            assert!(!methods.is_empty(), "{path}: no method found");
            for m in methods {
                out.insert((m, format!("{pre}{path}")));
            }
        }
    }
    let calls = body.matches(".route(").count();
    assert!(
        calls >= 20 && out.len() >= calls,
        "read every route of router.rs ({calls} calls): {out:?}"
    );
    out
}

#[test]
fn every_route_of_the_router_is_documented() {
    let documented = documented(&doc());
    let missing: Vec<_> = router_routes().difference(&documented).cloned().collect();
    assert!(
        missing.is_empty(),
        "routes not in the document: {missing:?}"
    );
}

#[test]
fn dashboard_routes_are_pages_not_api() {
    let src = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/dashboard.rs"))
        .expect("dashboard.rs");
    let pages = routes_in(&src);
    assert!(!pages.is_empty());
    for (_, path) in pages {
        assert!(
            path == "/" || path.starts_with("/dashboard"),
            "{path}: an API route belongs in router.rs, where the document test sees it"
        );
    }
}

async fn state() -> (AppState, steward_rules::RulesHandle) {
    use steward_rules::{ManualClock, NoCommands, RulesConfig, RulesService};
    use steward_tickets::{SqliteTicketStore, TicketStore};
    let registry = steward_estate::Registry::open_in_memory().expect("registry");
    let cfg = RulesConfig {
        watch: false,
        ..Default::default()
    };
    let (_sink, rules) = RulesService::start(
        cfg,
        registry.clone(),
        Arc::new(SqliteTicketStore::open_in_memory().expect("ticket store"))
            as Arc<dyn TicketStore>,
        Arc::new(ManualClock::new(1_000)),
        Arc::new(NoCommands),
    )
    .expect("rules");
    // Port 9 (discard): nothing answers, so QuestDB is simply unreachable.
    let questdb =
        steward_storage::questdb::QuestDbClient::new(SocketAddr::from(([127, 0, 0, 1], 9)))
            .expect("client");
    let state = AppState {
        registry,
        states: steward_rules::DeviceStates::new(),
        questdb,
        metrics: Arc::new(Mutex::new(Default::default())),
        admin_token: Arc::from("a-test-admin-token-0123456789"),
        probes: vec![],
        tickets: rules.desk(),
        api_metrics: Default::default(),
        resident: Default::default(),
        photos: Default::default(),
        escalation: None,
        rounds: None,
    };
    (state, rules)
}

/// Status line and body of one request without a token or a body.
async fn request(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "{} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        method.to_uppercase()
    );
    s.write_all(req.as_bytes()).await.expect("send");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.expect("read");
    let reply = String::from_utf8_lossy(&reply).to_string();
    let status = reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no status line in {reply:?}"));
    (status, reply)
}

/// Whether the router has a handler for `method path`: not the fallback's 404, not a 405.
async fn served(addr: SocketAddr, method: &str, path: &str) -> bool {
    let (status, reply) = request(addr, method, path).await;
    status != 405 && !(status == 404 && reply.contains("no such endpoint"))
}

#[tokio::test]
async fn every_documented_operation_is_served() {
    let (state, _rules) = state().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(steward_api::serve(listener, state, std::future::pending()));
    // The check itself tells a missing route and a wrong method apart from a handler.
    assert!(!served(addr, "get", "/api/v1/no-such-thing").await);
    assert!(!served(addr, "delete", "/api/v1/compounds").await);
    assert!(served(addr, "get", "/api/v1/compounds").await);
    let mut missing = Vec::new();
    let ops = documented(&doc())
        .into_iter()
        .chain(router_routes())
        .collect::<BTreeSet<_>>();
    for (method, path) in ops {
        // Resident tracking codes, ack-link tokens and checklist items are the other path
        // parameters.
        let concrete = path
            .replace("{id}", "1")
            .replace("{token}", "not-a-token")
            .replace("{item}", "item-1")
            .replace("{code}", "abcdefghij")
            .replace("{sha}", &"0".repeat(64));
        assert!(
            !concrete.contains('{'),
            "{path}: a parameter other than id, token, item, code or sha"
        );
        if !served(addr, &method, &concrete).await {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "documented but not served: {missing:?}");
}
