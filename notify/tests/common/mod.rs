//! Real receivers for the channel tests: an HTTP server on loopback that checks each
//! request and records it, an SMTP server (Debian's aiosmtpd), and waiting helpers.
#![allow(dead_code)]

use axum::body::{to_bytes, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const DEADLINE: Duration = Duration::from_secs(60);

/// Poll `f` every 20 ms until it is true; panic with `what` after `DEADLINE`.
pub async fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// Query parameters, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        let q = self.query.as_deref()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| percent_decode(v))
        })
    }
}

fn percent_decode(v: &str) -> String {
    let bytes = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Checks a request; an `Err` is answered 400 with the reason and recorded as rejected.
pub type Check = Arc<dyn Fn(&Received) -> Result<(), String> + Send + Sync>;

struct Shared {
    check: Check,
    accepted: Mutex<Vec<Received>>,
    rejected: Mutex<Vec<String>>,
    reply: Mutex<(u16, String)>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start(check: Check) -> Receiver {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), check)
            .await
            .expect("bind loopback")
    }

    pub async fn start_on(addr: SocketAddr, check: Check) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            check,
            accepted: Mutex::new(Vec::new()),
            rejected: Mutex::new(Vec::new()),
            reply: Mutex::new((200, r#"{"errcode":0,"errmsg":"ok"}"#.to_string())),
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Receiver { addr, shared, task })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What the receiver answers to a request that passes its check.
    pub fn set_reply(&self, status: u16, body: &str) {
        *self.shared.reply.lock() = (status, body.to_string());
    }

    pub fn accepted(&self) -> Vec<Received> {
        self.shared.accepted.lock().clone()
    }

    pub fn rejected(&self) -> Vec<String> {
        self.shared.rejected.lock().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 1 << 20).await.unwrap_or_default();
    let received = Received {
        path: parts.uri.path().to_string(),
        query: parts.uri.query().map(str::to_string),
        headers: parts.headers,
        body,
    };
    match (shared.check)(&received) {
        Ok(()) => {
            shared.accepted.lock().push(received);
            let (status, body) = shared.reply.lock().clone();
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            (status, body).into_response()
        }
        Err(reason) => {
            shared.rejected.lock().push(reason.clone());
            (StatusCode::BAD_REQUEST, reason).into_response()
        }
    }
}

/// A free loopback port (bound, then released).
pub fn free_addr() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

const AUTH_SERVER: &str = r#"
import sys, threading
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword
host, port, maildir, user, password = sys.argv[1:6]
def check(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login == user.encode() \
        and data.password == password.encode()
    return AuthResult(success=ok, handled=False)
c = Controller(Mailbox(maildir), hostname=host, port=int(port), authenticator=check,
               auth_required=True, auth_require_tls=False)
c.start()
threading.Event().wait()
"#;

/// A real SMTP server: aiosmtpd (Debian's `python3-aiosmtpd`) writing to a Maildir.
pub struct SmtpServer {
    pub addr: SocketAddr,
    pub maildir: PathBuf,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// None (with a message) when no Python has aiosmtpd, unless STEWARD_REQUIRE_SMTP is set.
    pub async fn start() -> Option<SmtpServer> {
        Self::start_with(None).await
    }

    /// The same server, requiring AUTH (PLAIN or LOGIN, over plain SMTP) as `user`/`password`.
    pub async fn start_with_auth(user: &str, password: &str) -> Option<SmtpServer> {
        Self::start_with(Some((user, password))).await
    }

    async fn start_with(auth: Option<(&str, &str)>) -> Option<SmtpServer> {
        let python = ["/usr/bin/python3", "python3"].into_iter().find(|p| {
            std::process::Command::new(p)
                .args(["-c", "import aiosmtpd"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        });
        let Some(python) = python else {
            if std::env::var_os("STEWARD_REQUIRE_SMTP").is_some() {
                panic!("aiosmtpd not found: apt-get install python3-aiosmtpd");
            }
            eprintln!("skipping: aiosmtpd not found (apt-get install python3-aiosmtpd)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        // Mailbox creates the Maildir itself and refuses a plain existing folder.
        let maildir = dir.path().join("mail");
        let addr = free_addr();
        let mut cmd = std::process::Command::new(python);
        match auth {
            None => cmd
                .args(["-m", "aiosmtpd", "-n", "-l", &addr.to_string()])
                .args(["-c", "aiosmtpd.handlers.Mailbox"])
                .arg(&maildir),
            // The command line has no AUTH options; the library's Controller does.
            Some((user, password)) => cmd
                .args([
                    "-c",
                    AUTH_SERVER,
                    &addr.ip().to_string(),
                    &addr.port().to_string(),
                ])
                .arg(&maildir)
                .args([user, password]),
        };
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn aiosmtpd");
        let server = SmtpServer {
            addr,
            maildir,
            child,
            _dir: dir,
        };
        wait_until("the smtp server to listen", || {
            std::net::TcpStream::connect(addr).is_ok()
        })
        .await;
        Some(server)
    }

    /// The messages received so far, raw.
    pub fn messages(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
