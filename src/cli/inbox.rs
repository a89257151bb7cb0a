//! The demo's notification inbox: a webhook receiver on loopback that prints every
//! notification escalation sends, with its acknowledgement link, so `steward demo` shows
//! who would be told and when without a WeCom group or a phone.

use axum::body::Bytes;
use axum::http::StatusCode;
use std::net::SocketAddr;

/// Start the inbox; its URL goes into the demo's `demo-inbox` endpoint.
pub async fn start() -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().fallback(receive);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((addr, task))
}

async fn receive(body: Bytes) -> StatusCode {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
    let round = v["round"].as_u64().unwrap_or(0);
    let again = if round > 0 {
        format!(", reminder {round}")
    } else {
        String::new()
    };
    println!(
        "notify  [{}] {} -> {} (tier {}{again}); acknowledge: {}",
        s("priority"),
        s("title"),
        v["recipient"]["name"].as_str().unwrap_or("?"),
        v["tier"].as_u64().unwrap_or(0),
        s("link"),
    );
    StatusCode::OK
}
