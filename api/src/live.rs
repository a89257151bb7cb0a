//! The live alert stream: ticket events as Server-Sent Events, resumable.
//!
//! Every event carries its id in the ticket store's durable event log as the SSE `id:`.
//! A client that reconnects with `Last-Event-ID` (header, or `last_event_id` in the query
//! for clients that cannot set headers) first gets what it missed from the log, then live
//! events. The hand-over has no gap and no duplicate because the stream subscribes to the
//! live channel before reading the log, the rules stage publishes events in log-id order,
//! and live events at or below the last id already sent are skipped. A stream that falls
//! behind the live channel (`Lagged`) catches up from the log the same way.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::params::{params, ACCESS_TOKEN_PARAM};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;
use steward_estate::validate_id;
use steward_estate::Role;
use steward_tickets::{Priority, TicketDesk, TicketEvent};
use tokio::sync::{broadcast, mpsc, watch};
use tracing::{debug, warn};

/// Events read from the log per query while replaying.
const REPLAY_PAGE: u32 = 500;
/// Keep-alive comment interval: below common proxy idle timeouts (30-60 s).
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a stream subscriber asked for. The station scope is separate from the `station`
/// filter: the filter is what the client wants, the scope what its role may see.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StreamFilter {
    pub station: Option<String>,
    pub compound: Option<String>,
    pub priority: Option<Priority>,
}

impl StreamFilter {
    pub fn matches(&self, ev: &TicketEvent) -> bool {
        self.station.as_deref().is_none_or(|s| ev.station == s)
            && self.compound.as_deref().is_none_or(|c| ev.compound == c)
            && self.priority.is_none_or(|p| ev.priority == p)
    }
}

/// Whether an event of `station` may be shown to a caller allowed to see `allowed`
/// stations (`None` = every station, as for the admin).
pub fn in_scope(allowed: Option<&[String]>, station: &str) -> bool {
    allowed.is_none_or(|a| a.iter().any(|s| s == station))
}

/// Parse the stream's query and `Last-Event-ID`; errors name the parameter.
fn parse_request(
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<(StreamFilter, Option<i64>), ApiError> {
    params(
        q,
        &[
            "station",
            "compound",
            "priority",
            "last_event_id",
            ACCESS_TOKEN_PARAM,
        ],
    )?;
    let mut f = StreamFilter::default();
    for (name, slot) in [("station", &mut f.station), ("compound", &mut f.compound)] {
        if let Some(v) = q.get(name) {
            validate_id(v).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))?;
            *slot = Some(v.clone());
        }
    }
    if let Some(p) = q.get("priority") {
        f.priority = Some(
            Priority::parse(p)
                .ok_or_else(|| ApiError::BadRequest("priority: expected P1, P2 or P3".into()))?,
        );
    }
    let header_id = headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest("Last-Event-ID: not ASCII".into()))
        })
        .transpose()?;
    let last = match (header_id, q.get("last_event_id")) {
        // The header is what a browser sends on its own reconnect, so it wins.
        (Some(h), _) => Some(("Last-Event-ID", h)),
        (None, Some(v)) => Some(("last_event_id", v.as_str())),
        (None, None) => None,
    }
    .map(|(name, v)| {
        v.trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "{name}: expected the non-negative integer id of an event"
                ))
            })
    })
    .transpose()?;
    Ok((f, last))
}

/// `GET /api/v1/alerts/stream`: a token as a bearer header or, because browsers'
/// EventSource cannot set headers, as `access_token` in the query. A crew sees its
/// station's events, a manager those of its compounds, an admin all.
#[utoipa::path(get, path = "/api/v1/alerts/stream", tag = "live",
    params(
        ("station" = Option<String>, Query, description = "only this station's events"),
        ("compound" = Option<String>, Query, description = "only this compound's events"),
        ("priority" = Option<String>, Query, description = "only this priority (P1..P4)"),
        ("last_event_id" = Option<i64>, Query, description = "resume after this event id (or the Last-Event-ID header)"),
    ),
    responses((status = 200, description = "text/event-stream of `event: ticket` with JSON data and a durable `id:`",
            body = String, content_type = "text/event-stream"),
        (status = 400), (status = 401), (status = 403)),
    security(("bearer" = []), ("access_token" = [])))]
pub(crate) async fn alert_stream(
    principal: Principal,
    State(s): State<AppState>,
    stop: Option<Extension<StreamStop>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    principal.require(&[Role::Admin, Role::Manager, Role::Crew, Role::Dispatcher])?;
    let (filter, last) = parse_request(&q, &headers)?;
    let scope = (!principal.is_admin()).then_some(principal);
    let last = match last {
        // An id beyond the log's newest comes from another log (a hub whose ticket
        // database was replaced): resume after the newest, or live events would be
        // skipped. Read before subscribing, so what is logged in between is replayed.
        Some(l) => {
            let desk = s.tickets.clone();
            let newest = blocking(move || Ok(desk.last_event_id()?)).await?;
            Some(l.min(newest))
        }
        None => None,
    };
    // Subscribe before reading the log, so nothing published in between is lost.
    let live = s.tickets.events();
    let (tx, rx) = mpsc::channel::<TicketEvent>(256);
    let guard = ClientGuard::new(&s.api_metrics.sse_clients);
    tokio::spawn(pump(
        s.tickets.clone(),
        live,
        tx,
        Selection { filter, scope },
        last,
        guard,
        stop.map(|Extension(s)| s.0),
    ));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|e| (Ok::<_, Infallible>(sse_event(&e)), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
        .into_response())
}

/// Set to true when the server is stopping; streams end then.
#[derive(Clone)]
pub(crate) struct StreamStop(pub(crate) watch::Receiver<bool>);

struct Selection {
    filter: StreamFilter,
    /// `None`: every station (admin).
    scope: Option<Principal>,
}

impl Selection {
    fn wants(&self, ev: &TicketEvent) -> bool {
        self.scope
            .as_ref()
            .is_none_or(|p| p.can_see_ticket_of(&ev.station, &ev.compound))
            && self.filter.matches(ev)
    }
}

/// Counts a connected stream client for as long as its pump runs.
struct ClientGuard(prometheus_client::metrics::gauge::Gauge);

impl ClientGuard {
    fn new(g: &prometheus_client::metrics::gauge::Gauge) -> Self {
        g.inc();
        ClientGuard(g.clone())
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn sse_event(ev: &TicketEvent) -> Event {
    let data = serde_json::to_string(ev).unwrap_or_else(|_| "{}".into());
    let e = Event::default().event("ticket").data(data);
    match ev.event_id {
        Some(id) => e.id(id.to_string()),
        None => e,
    }
}

/// Send logged events after `*cursor` that the selection wants, moving `*cursor` to the
/// last id read. Returns false when the client is gone or the log cannot be read.
async fn replay(
    desk: &TicketDesk,
    cursor: &mut i64,
    sel: &Selection,
    tx: &mpsc::Sender<TicketEvent>,
) -> bool {
    loop {
        let d = desk.clone();
        let after = *cursor;
        let page =
            match tokio::task::spawn_blocking(move || d.events_after(after, REPLAY_PAGE)).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    warn!(error = %e, "alert stream: cannot read the event log");
                    return false;
                }
                Err(e) => {
                    warn!(error = %e, "alert stream: replay task failed");
                    return false;
                }
            };
        let n = page.len();
        for ev in page {
            if let Some(id) = ev.event_id {
                *cursor = id;
            }
            if sel.wants(&ev) && tx.send(ev).await.is_err() {
                return false;
            }
        }
        if n < REPLAY_PAGE as usize {
            return true;
        }
    }
}

async fn pump(
    desk: TicketDesk,
    mut live: broadcast::Receiver<TicketEvent>,
    tx: mpsc::Sender<TicketEvent>,
    sel: Selection,
    last: Option<i64>,
    _guard: ClientGuard,
    stop: Option<watch::Receiver<bool>>,
) {
    let stopping = async move {
        match stop {
            Some(mut s) => {
                let _ = s.wait_for(|v| *v).await;
            }
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stopping);
    let mut cursor = last.unwrap_or(0);
    if last.is_some() && !replay(&desk, &mut cursor, &sel, &tx).await {
        return;
    }
    loop {
        let got = tokio::select! {
            _ = tx.closed() => return,
            _ = &mut stopping => return,
            got = live.recv() => got,
        };
        match got {
            Ok(ev) => {
                if let Some(id) = ev.event_id {
                    if id <= cursor {
                        continue;
                    }
                    cursor = id;
                }
                if sel.wants(&ev) && tx.send(ev).await.is_err() {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Lagged(n)) => {
                debug!(
                    missed = n,
                    "alert stream fell behind; catching up from the log"
                );
                if !replay(&desk, &mut cursor, &sel, &tx).await {
                    return;
                }
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(station: &str, compound: &str, priority: Priority) -> TicketEvent {
        TicketEvent {
            event_id: Some(1),
            kind: steward_tickets::TicketEventKind::Raised,
            ts_ms: 0,
            ticket_id: Some(1),
            device_id: "lift-1".into(),
            rule_id: "lift-trapped".into(),
            station: station.into(),
            compound: compound.into(),
            priority,
            state: None,
            topic: String::new(),
            escalation_level: 1,
            audience: "station".into(),
            message: String::new(),
        }
    }

    #[test]
    fn scope_none_is_everything_and_a_list_is_exact() {
        assert!(in_scope(None, "st-1"));
        let allowed = vec!["st-1".to_string()];
        assert!(in_scope(Some(&allowed), "st-1"));
        assert!(!in_scope(Some(&allowed), "st-2"));
        assert!(!in_scope(Some(&[]), "st-1"));
    }

    #[test]
    fn filter_needs_every_given_field_to_match() {
        let e = ev("st-1", "cmp-1", Priority::P1);
        assert!(StreamFilter::default().matches(&e));
        let f = StreamFilter {
            station: Some("st-1".into()),
            compound: Some("cmp-1".into()),
            priority: Some(Priority::P1),
        };
        assert!(f.matches(&e));
        let f2 = StreamFilter {
            priority: Some(Priority::P2),
            ..f.clone()
        };
        assert!(!f2.matches(&e));
        let f3 = StreamFilter {
            compound: Some("cmp-2".into()),
            ..f
        };
        assert!(!f3.matches(&e));
    }

    #[test]
    fn bad_parameters_are_named() {
        let h = HeaderMap::new();
        let q = |k: &str, v: &str| HashMap::from([(k.to_string(), v.to_string())]);
        let msg = |r: Result<_, ApiError>| r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg(parse_request(&q("priority", "P9"), &h)).starts_with("priority:"));
        assert!(msg(parse_request(&q("station", "a' OR 1=1"), &h)).starts_with("station:"));
        assert!(msg(parse_request(&q("last_event_id", "-1"), &h)).starts_with("last_event_id:"));
        assert!(msg(parse_request(&q("since", "1"), &h)).contains("since"));
        let mut h2 = HeaderMap::new();
        h2.insert("last-event-id", "abc".parse().unwrap());
        assert!(msg(parse_request(&HashMap::new(), &h2)).starts_with("Last-Event-ID:"));
        h2.insert("last-event-id", "42".parse().unwrap());
        let (_, last) = parse_request(&q("last_event_id", "7"), &h2).unwrap();
        assert_eq!(last, Some(42));
    }

    /// A running rules stage on an in-memory store with one open P1 ticket.
    fn desk_with_ticket() -> (steward_rules::RulesHandle, TicketDesk, i64) {
        use std::sync::Arc;
        use steward_rules::*;
        use steward_tickets::{Raise, SqliteTicketStore, TicketStore};
        let store: Arc<dyn TicketStore> = Arc::new(SqliteTicketStore::open_in_memory().unwrap());
        let cfg = RulesConfig {
            watch: false,
            ..Default::default()
        };
        let (_sink, handle) = RulesService::start(
            cfg,
            steward_estate::Registry::open_in_memory().unwrap(),
            store.clone(),
            Arc::new(ManualClock::new(1_000)),
            Arc::new(NoCommands),
        )
        .unwrap();
        let desk = handle.desk();
        let raise = Raise {
            device_id: "lift-1".into(),
            rule_id: "lift-trapped".into(),
            kind: steward_estate::DeviceKind::Lift,
            compound: "cmp-1".into(),
            building: "b-1".into(),
            station: "st-1".into(),
            priority: Priority::P1,
            title: "trapped".into(),
            detail: String::new(),
            ts_ms: 1_000,
        };
        let id = store.raise(&raise, desk.sla_policy()).unwrap().ticket.id;
        (handle, desk, id)
    }

    fn all() -> Selection {
        Selection {
            filter: StreamFilter::default(),
            scope: None,
        }
    }

    #[tokio::test]
    async fn resuming_from_the_newest_id_gets_the_next_live_event() {
        use steward_tickets::TicketState;
        let (_handle, desk, id) = desk_with_ticket();
        desk.transition(id, TicketState::Acknowledged, "crew", "")
            .unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let gauge = prometheus_client::metrics::gauge::Gauge::default();
        let live = desk.events();
        tokio::spawn(pump(
            desk.clone(),
            live,
            tx,
            all(),
            Some(1),
            ClientGuard::new(&gauge),
            None,
        ));
        desk.transition(id, TicketState::Dispatched, "crew", "")
            .unwrap();
        let ev = rx.recv().await.unwrap();
        assert_eq!(ev.state, Some(TicketState::Dispatched));
        assert_eq!(ev.event_id, Some(2));
    }

    #[tokio::test]
    async fn a_lagging_stream_catches_up_from_the_log_without_gap_or_duplicate() {
        use steward_tickets::TicketState;
        let (_handle, desk, id) = desk_with_ticket();
        // Subscribed, then more events than the live channel holds before reading any.
        let live = desk.events();
        desk.transition(id, TicketState::Acknowledged, "crew", "")
            .unwrap();
        desk.transition(id, TicketState::Dispatched, "crew", "")
            .unwrap();
        for _ in 0..2_100 {
            desk.transition(id, TicketState::OnHold, "crew", "")
                .unwrap();
            desk.transition(id, TicketState::Dispatched, "crew", "")
                .unwrap();
        }
        let (tx, mut rx) = mpsc::channel(16);
        let gauge = prometheus_client::metrics::gauge::Gauge::default();
        tokio::spawn(pump(
            desk.clone(),
            live,
            tx,
            all(),
            None,
            ClientGuard::new(&gauge),
            None,
        ));
        let logged: Vec<i64> = desk
            .events_after(0, 10_000)
            .unwrap()
            .into_iter()
            .filter_map(|e| e.event_id)
            .collect();
        assert!(logged.len() > 4_096, "the live channel overflowed");
        let mut got = Vec::new();
        while got.len() < logged.len() {
            got.push(rx.recv().await.unwrap().event_id.unwrap());
        }
        assert_eq!(got, logged, "caught up from the log, in order, once");
        // Then live again: the next event follows with the next id.
        desk.transition(id, TicketState::OnSite, "crew", "")
            .unwrap();
        let next = rx.recv().await.unwrap();
        assert_eq!(next.state, Some(TicketState::OnSite));
        assert_eq!(next.event_id, logged.last().map(|l| l + 1));
        assert_eq!(gauge.get(), 1);
        drop(rx);
    }
}
