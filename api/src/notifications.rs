//! People's side of escalation: the one-time acknowledgement page a notification links to
//! (opening it changes nothing; its one button acknowledges), a ticket's deliveries and
//! attempts, the dead letters with a retry, and the escalation policy in force.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::state::AppState;
use crate::tickets::ticket_id;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use steward_escalation::{AckError, Escalation, LinkError};
use steward_estate::Role;
use steward_notify::{AttemptRecord, DeliveryRecord};
use utoipa::{IntoParams, ToSchema};

fn escalation(s: &AppState) -> Result<Escalation, ApiError> {
    s.escalation.clone().ok_or_else(|| {
        ApiError::Unavailable("notifications are turned off (escalation.enabled)".into())
    })
}

fn notify_error(e: steward_notify::NotifyError) -> ApiError {
    ApiError::Internal(format!("notification outbox: {e}"))
}

/// HTML-escape text put into the page.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex">
<title>{t}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:0 auto;padding:1.5rem;line-height:1.5}}
h1{{font-size:1.3rem}}.p1{{color:#b00020}}button{{font-size:1.2rem;width:100%;min-height:3.2rem;border:0;border-radius:.5rem;background:#b00020;color:#fff}}
dl{{display:grid;grid-template-columns:auto 1fr;gap:.3rem 1rem}}dt{{color:#555}}</style></head>
<body>{body}</body></html>"#,
        t = esc(title)
    );
    // Nobody caches a one-time page, and no other site frames it.
    (
        status,
        [("cache-control", "no-store"), ("x-frame-options", "DENY")],
        Html(html),
    )
        .into_response()
}

fn refused(e: &AckError) -> Response {
    let (status, zh, en) = match e {
        AckError::Link(LinkError::Used) => (
            StatusCode::CONFLICT,
            "此链接已使用过",
            "This link was already used.",
        ),
        AckError::Link(LinkError::Expired) => (
            StatusCode::GONE,
            "此链接已过期，请在工单应用中确认",
            "This link has expired; acknowledge in the crew app.",
        ),
        AckError::Link(_) => (
            StatusCode::NOT_FOUND,
            "链接无效",
            "This is not a valid acknowledgement link.",
        ),
        AckError::Ticket(steward_tickets::TicketError::NotFound(_)) => (
            StatusCode::NOT_FOUND,
            "工单不存在",
            "The ticket does not exist.",
        ),
        AckError::Ticket(_) | AckError::Store(_) => {
            tracing::error!(error = %e, "acknowledgement link failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "暂时无法确认，请稍后再试",
                "Cannot acknowledge right now; try again shortly.",
            )
        }
    };
    page(
        status,
        en,
        &format!("<h1>{}</h1><p>{}</p>", esc(zh), esc(en)),
    )
}

fn ticket_facts(t: &steward_tickets::Ticket) -> String {
    let mut rows = vec![
        ("工单 Ticket", format!("#{}", t.id)),
        ("优先级 Priority", t.priority.as_str().to_string()),
        ("小区 Compound", t.compound.clone()),
    ];
    if !t.building.is_empty() {
        rows.push(("楼栋 Building", t.building.clone()));
    }
    rows.push(("状态 State", t.state.as_str().to_string()));
    let dl: String = rows
        .iter()
        .map(|(k, v)| format!("<dt>{}</dt><dd>{}</dd>", esc(k), esc(v)))
        .collect();
    format!(
        "<h1 class=\"{}\">[{}] {}</h1><dl>{dl}</dl>",
        t.priority.as_str().to_ascii_lowercase(),
        t.priority.as_str(),
        esc(&t.title)
    )
}

/// `GET /ack/{token}`: the page with one button. Changes nothing, so a chat app that
/// fetches the link for a preview does not acknowledge for the person.
#[utoipa::path(get, path = "/ack/{token}", tag = "notifications",
    params(("token" = String, Path, description = "the token of a one-time acknowledgement link")),
    responses((status = 200, description = "HTML page with one button", body = String, content_type = "text/html"),
        (status = 404, description = "not a valid link (HTML)"),
        (status = 409, description = "the link was already used (HTML)"),
        (status = 410, description = "the link has expired (HTML)")))]
pub(crate) async fn ack_page(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let Ok(e) = escalation(&s) else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "<p>notifications are turned off</p>",
        );
    };
    let t = token.clone();
    match tokio::task::spawn_blocking(move || e.preview(&t)).await {
        Ok(Ok((_, ticket))) => {
            let button = if ticket.acknowledged_ms.is_some() {
                "<p>已有人确认此工单。Someone has already acknowledged this ticket.</p>".to_string()
            } else {
                format!(
                    "<form method=\"post\" action=\"/ack/{}\"><button type=\"submit\">确认收到 Acknowledge</button></form>",
                    esc(&token)
                )
            };
            page(
                StatusCode::OK,
                &ticket.title,
                &format!("{}{button}", ticket_facts(&ticket)),
            )
        }
        Ok(Err(e)) => refused(&e),
        Err(e) => refused(&AckError::Store(steward_escalation::EscalationError::Task(
            e.to_string(),
        ))),
    }
}

/// `POST /ack/{token}`: acknowledge as the person the link was sent to, once.
#[utoipa::path(post, path = "/ack/{token}", tag = "notifications",
    params(("token" = String, Path, description = "the token of a one-time acknowledgement link")),
    responses((status = 200, description = "acknowledged, or someone had already (HTML)", body = String, content_type = "text/html"),
        (status = 404, description = "not a valid link (HTML)"),
        (status = 409, description = "the link was already used (HTML)"),
        (status = 410, description = "the link has expired (HTML)")))]
pub(crate) async fn ack_submit(State(s): State<AppState>, Path(token): Path<String>) -> Response {
    let Ok(e) = escalation(&s) else {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "<p>notifications are turned off</p>",
        );
    };
    match tokio::task::spawn_blocking(move || e.acknowledge(&token)).await {
        Ok(Ok(ack)) => {
            let msg = if ack.already {
                "<p>已有人确认此工单，无需再操作。Someone had already acknowledged this ticket; nothing changed.</p>"
            } else {
                "<p>已确认，升级提醒已停止。Acknowledged: the escalation has stopped.</p>"
            };
            page(
                StatusCode::OK,
                "acknowledged",
                &format!("{}{msg}", ticket_facts(&ack.ticket)),
            )
        }
        Ok(Err(e)) => refused(&e),
        Err(e) => refused(&AckError::Store(steward_escalation::EscalationError::Task(
            e.to_string(),
        ))),
    }
}

/// A ticket's notifications: one delivery per (tier, reminder, person, endpoint), and
/// every attempt. Contact details are masked.
#[derive(Serialize, ToSchema)]
pub struct TicketDeliveries {
    ticket_id: i64,
    #[schema(value_type = Vec<Object>)]
    deliveries: Vec<DeliveryRecord>,
    #[schema(value_type = Vec<Object>)]
    attempts: Vec<AttemptRecord>,
}

/// `GET /api/v1/tickets/{id}/deliveries`: who was told, over what, and every attempt.
#[utoipa::path(get, path = "/api/v1/tickets/{id}/deliveries", tag = "notifications",
    params(("id" = i64, Path, description = "ticket id")),
    responses((status = 200, description = "deliveries and attempts", body = TicketDeliveries),
        (status = 401), (status = 403), (status = 404), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn ticket_deliveries(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TicketDeliveries>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let id = ticket_id(&id)?;
    let desk = s.tickets.clone();
    let t = blocking(move || Ok(desk.store().ticket(id)?)).await?;
    who.check(who.can_see_ticket(&t), &format!("ticket {id}"))?;
    let e = escalation(&s)?;
    let key = id.to_string();
    let deliveries = e
        .dispatcher()
        .deliveries_for_ticket(&key)
        .await
        .map_err(notify_error)?;
    let attempts = e
        .dispatcher()
        .attempts_for_ticket(&key)
        .await
        .map_err(notify_error)?;
    Ok(Json(TicketDeliveries {
        ticket_id: id,
        deliveries,
        attempts,
    }))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DeadQuery {
    /// At most this many (1 to 1000, default 100).
    limit: Option<usize>,
}

/// A delivery given up on, for the dead-letter list (contact details masked).
#[derive(Serialize, ToSchema)]
#[schema(as = DeadLetter)]
pub struct DeadLetterDoc {
    id: i64,
    key: String,
    ticket_id: String,
    tier: u32,
    recipient_id: String,
    recipient: String,
    endpoint: String,
    channel: String,
    state: String,
    attempts: u32,
    created_ms: i64,
    finished_ms: Option<i64>,
    last_error: Option<String>,
}

/// `GET /api/v1/notifications/dead-letters`: deliveries given up on (admin).
#[utoipa::path(get, path = "/api/v1/notifications/dead-letters", tag = "notifications",
    params(DeadQuery),
    responses((status = 200, description = "dead letters, newest first", body = Vec<DeadLetterDoc>),
        (status = 400), (status = 401), (status = 403), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn dead_letters(
    who: Principal,
    State(s): State<AppState>,
    q: Result<Query<DeadQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Vec<DeliveryRecord>>, ApiError> {
    who.require(&[])?;
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::BadRequest("limit: 1 to 1000".into()));
    }
    let e = escalation(&s)?;
    Ok(Json(
        e.dispatcher()
            .dead_letters(limit)
            .await
            .map_err(notify_error)?,
    ))
}

/// `POST /api/v1/notifications/{id}/retry`: send a dead letter again (admin).
#[utoipa::path(post, path = "/api/v1/notifications/{id}/retry", tag = "notifications",
    params(("id" = i64, Path, description = "delivery id")),
    responses((status = 202, description = "queued again", body = String),
        (status = 401), (status = 403), (status = 409, description = "not a dead letter"), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn retry(
    who: Principal,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    who.require(&[])?;
    let id = ticket_id(&id)?;
    let e = escalation(&s)?;
    if e.dispatcher().retry_dead(id).await.map_err(notify_error)? {
        Ok(StatusCode::ACCEPTED)
    } else {
        Err(ApiError::Conflict(format!(
            "delivery {id} is not a dead letter"
        )))
    }
}

#[derive(Serialize, ToSchema)]
pub struct TierView {
    after_s: i64,
    notify: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct LadderView {
    priority: &'static str,
    repeat_s: i64,
    tiers: Vec<TierView>,
}

/// `GET /api/v1/escalation/policy`: the ladder per priority in force now.
#[utoipa::path(get, path = "/api/v1/escalation/policy", tag = "notifications",
    responses((status = 200, description = "per priority: reminder interval and tiers", body = Vec<LadderView>),
        (status = 401), (status = 403), (status = 503)),
    security(("bearer" = [])))]
pub(crate) async fn policy(
    who: Principal,
    State(s): State<AppState>,
) -> Result<Json<Vec<LadderView>>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    let p = escalation(&s)?.policy();
    Ok(Json(
        steward_tickets::Priority::ALL
            .iter()
            .map(|pr| {
                let l = p.ladder(*pr);
                LadderView {
                    priority: pr.as_str(),
                    repeat_s: l.repeat_ms / 1000,
                    tiers: l
                        .tiers
                        .iter()
                        .map(|t| TierView {
                            after_s: t.after_ms / 1000,
                            notify: t.audiences.iter().map(|a| a.as_string()).collect(),
                        })
                        .collect(),
                }
            })
            .collect(),
    ))
}
