//! Service reports: the monthly star rating (docs/rating.md) and SLA figures per station
//! and per compound, restricted to the caller's scope.

use crate::auth::Principal;
use crate::error::{blocking, ApiError};
use crate::params::{id_param, params};
use crate::schema::{sorted, RatingDoc, Sorted};
use crate::state::AppState;
use axum::extract::{Query, State};
use axum::Json;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use steward_estate::Role;
use steward_tickets::{month_range, rate, Priority, Rating, Ticket, TicketFilter, TicketState};
use utoipa::ToSchema;

/// Figures of one SLA stage (acknowledge, on site, resolve) over a month's tickets.
/// Fields in alphabetical order, as the API has always sent them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct StageFigures {
    /// Done late, or not done and past the target.
    pub breached: u32,
    /// Minutes from opening to the stage, over the tickets that reached it.
    #[schema(required = true)]
    pub median_min: Option<f64>,
    /// Done within the target.
    pub met: u32,
    #[schema(required = true)]
    pub p90_min: Option<f64>,
    /// Not done, target not passed yet.
    pub pending: u32,
}

/// SLA figures of a station or compound for a month. Fields in alphabetical order, as
/// the API has always sent them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, ToSchema)]
pub struct SlaFigures {
    pub acknowledge: StageFigures,
    /// Still needing work.
    pub active: u32,
    pub cancelled: u32,
    /// Only tickets whose priority has an on-site target.
    pub on_site: StageFigures,
    pub p1: u32,
    pub p2: u32,
    pub p3: u32,
    /// Only tickets whose priority has a resolve target for met/breached; times over every
    /// resolved ticket.
    pub resolve: StageFigures,
    pub tickets: u32,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn stage(
    tickets: &[&Ticket],
    done: impl Fn(&Ticket) -> Option<i64>,
    due: impl Fn(&Ticket) -> Option<i64>,
    breached_flag: impl Fn(&Ticket) -> bool,
) -> StageFigures {
    let mut f = StageFigures::default();
    let mut times = Vec::new();
    for t in tickets {
        let at = done(t);
        if let Some(at) = at {
            times.push((at - t.opened_ms).max(0) as f64 / 60_000.0);
        }
        let Some(due) = due(t) else { continue };
        match at {
            Some(at) if at <= due => f.met += 1,
            Some(_) => f.breached += 1,
            None if breached_flag(t) => f.breached += 1,
            None => f.pending += 1,
        }
    }
    times.sort_by(f64::total_cmp);
    f.median_min = percentile(&times, 0.5);
    f.p90_min = percentile(&times, 0.9);
    f
}

/// The SLA arithmetic over one month's tickets of a station or compound.
pub fn sla_figures(tickets: &[&Ticket]) -> SlaFigures {
    let rated: Vec<&Ticket> = tickets
        .iter()
        .copied()
        .filter(|t| t.state != TicketState::Cancelled)
        .collect();
    let count = |p: &str| rated.iter().filter(|t| t.priority.as_str() == p).count() as u32;
    SlaFigures {
        tickets: tickets.len() as u32,
        cancelled: (tickets.len() - rated.len()) as u32,
        active: rated.iter().filter(|t| t.state.is_active()).count() as u32,
        p1: count("P1"),
        p2: count("P2"),
        p3: count("P3"),
        acknowledge: stage(
            &rated,
            |t| t.acknowledged_ms,
            |t| Some(t.ack_due_ms),
            |t| t.ack_breached,
        ),
        on_site: stage(
            &rated,
            |t| t.on_site_ms,
            |t| t.on_site_due_ms,
            |t| t.on_site_breached,
        ),
        resolve: stage(
            &rated,
            |t| t.resolved_ms,
            |t| t.resolve_due_ms,
            |t| t.resolve_breached,
        ),
    }
}

fn month_param(q: &HashMap<String, String>) -> Result<(String, i64, i64), ApiError> {
    let month = q
        .get("month")
        .ok_or_else(|| ApiError::BadRequest("month: required (YYYY-MM)".into()))?
        .clone();
    let (from, to) = month_range(&month)
        .map_err(|_| ApiError::BadRequest("month: expected YYYY-MM, e.g. 2026-11".into()))?;
    Ok((month, from, to))
}

/// Whether a ticket still has an SLA verdict to come: a stage with a target that is
/// neither done nor past its deadline. The rating leaves such a stage out until it is.
fn verdict_pending(t: &Ticket) -> bool {
    let open = |done: Option<i64>, due: Option<i64>, breached: bool| {
        due.is_some() && done.is_none() && !breached
    };
    t.state != TicketState::Cancelled
        && (open(t.acknowledged_ms, Some(t.ack_due_ms), t.ack_breached)
            || open(t.on_site_ms, t.on_site_due_ms, t.on_site_breached)
            || open(t.resolved_ms, t.resolve_due_ms, t.resolve_breached))
}

/// Reply of `GET /api/v1/reports/rating`: the rating and what it does not count yet.
#[derive(Debug, Serialize)]
pub struct RatingView {
    #[serde(flatten)]
    pub rating: Rating,
    /// Tickets of the month still needing work (not resolved, closed or cancelled).
    pub active: u32,
    /// Tickets of the month with an SLA verdict still to come (a stage neither done nor
    /// past its deadline): the figures leave those stages out until they are decided.
    pub pending: u32,
    /// P1 tickets among `pending`.
    pub pending_p1: u32,
}

impl RatingView {
    /// `rating` with the counts of `tickets`, the month's tickets it was computed from.
    pub fn new(rating: Rating, tickets: &[&Ticket]) -> Self {
        let pending: Vec<&&Ticket> = tickets.iter().filter(|t| verdict_pending(t)).collect();
        RatingView {
            rating,
            active: tickets.iter().filter(|t| t.state.is_active()).count() as u32,
            pending: pending.len() as u32,
            pending_p1: pending
                .iter()
                .filter(|t| t.priority == Priority::P1)
                .count() as u32,
        }
    }
}

/// Monthly rating of one station or compound (admin; manager and crew within scope).
#[utoipa::path(get, path = "/api/v1/reports/rating", tag = "reports",
    params(
        ("of" = String, Query, description = "a station or compound id (in scope)"),
        ("month" = String, Query, description = "YYYY-MM (UTC)"),
    ),
    responses((status = 200, description = "SLA shares, means, repeat rate, score and stars, \
            and how many tickets are still pending", body = RatingDoc),
        (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn rating(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Sorted<RatingView>>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    params(&q, &["of", "month"])?;
    let of = q
        .get("of")
        .ok_or_else(|| ApiError::BadRequest("of: required (a station or compound id)".into()))?
        .clone();
    id_param("of", &of)?;
    let (month, from, to) = month_param(&q)?;
    who.check(
        who.can_see_station(&of) || who.can_see_compound(&of),
        &format!("`{of}`"),
    )?;
    let desk = s.tickets.clone();
    let view = blocking(move || {
        let rating = desk.store().rating(&of, &month)?;
        let tickets = desk.store().list(&TicketFilter {
            from_ms: Some(from),
            to_ms: Some(to),
            limit: Some(100_000),
            ..Default::default()
        })?;
        let mine: Vec<&Ticket> = tickets
            .iter()
            .filter(|t| t.station == of || t.compound == of)
            .collect();
        Ok(RatingView::new(rating, &mine))
    })
    .await?;
    Ok(Json(Sorted(view)))
}

/// One row of the SLA report: a station or compound.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = SlaRow)]
pub struct Row {
    pub id: String,
    #[serde(serialize_with = "sorted")]
    #[schema(value_type = RatingDoc)]
    pub rating: RatingView,
    pub sla: SlaFigures,
}

/// Reply of `GET /api/v1/reports/sla`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SlaReport {
    /// `station` or `compound`.
    pub by: &'static str,
    /// `YYYY-MM`.
    pub month: String,
    pub rows: Vec<Row>,
}

/// SLA figures and the star rating per station or per compound for a month (admin;
/// manager and crew: the stations and compounds in scope). A station's figures cover all
/// its tickets, as its service is what is graded.
#[utoipa::path(get, path = "/api/v1/reports/sla", tag = "reports",
    params(
        ("month" = String, Query, description = "YYYY-MM (UTC)"),
        ("by" = Option<String>, Query, description = "station (default) or compound"),
        ("id" = Option<String>, Query, description = "only this station or compound (in scope)"),
    ),
    responses((status = 200, description = "a row per station or compound, by id", body = SlaReport),
        (status = 400), (status = 401), (status = 403)),
    security(("bearer" = [])))]
pub(crate) async fn sla(
    who: Principal,
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<SlaReport>, ApiError> {
    who.require(&[Role::Manager, Role::Crew])?;
    params(&q, &["month", "by", "id"])?;
    let (month, from, to) = month_param(&q)?;
    let by_station = match q.get("by").map(String::as_str) {
        None | Some("station") => true,
        Some("compound") => false,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "by: expected station or compound".into(),
            ))
        }
    };
    let dir = s.registry.directory();
    let mut ids: BTreeSet<String> = dir
        .compounds
        .values()
        .map(|c| {
            if by_station {
                c.station.clone()
            } else {
                c.id.clone()
            }
        })
        .filter(|id| {
            if by_station {
                who.can_see_station(id)
            } else {
                who.can_see_compound(id)
            }
        })
        .collect();
    if let Some(id) = q.get("id") {
        id_param("id", id)?;
        let visible = if by_station {
            who.can_see_station(id)
        } else {
            who.can_see_compound(id)
        };
        who.check(visible, &format!("`{id}`"))?;
        ids = BTreeSet::from([id.clone()]);
    }
    let desk = s.tickets.clone();
    let (ids2, month2) = (ids.clone(), month.clone());
    let (tickets, mut ratings) = blocking(move || {
        let tickets = desk.store().list(&TicketFilter {
            from_ms: Some(from),
            to_ms: Some(to),
            limit: Some(100_000),
            ..Default::default()
        })?;
        // The store's rating splits transferred tickets between their stations and counts
        // residents' stars (docs/rating.md), which the month's list alone cannot.
        let ratings = ids2
            .iter()
            .map(|id| Ok((id.clone(), desk.store().rating(id, &month2)?)))
            .collect::<Result<std::collections::HashMap<_, _>, ApiError>>()?;
        Ok((tickets, ratings))
    })
    .await?;
    let rows: Vec<Row> = ids
        .into_iter()
        .map(|id| {
            let mine: Vec<&Ticket> = tickets
                .iter()
                .filter(|t| {
                    if by_station {
                        t.station == id
                    } else {
                        t.compound == id
                    }
                })
                .collect();
            let rating = ratings
                .remove(&id)
                .unwrap_or_else(|| rate(&id, &month, &[]));
            Row {
                rating: RatingView::new(rating, &mine),
                sla: sla_figures(&mine),
                id,
            }
        })
        .collect();
    Ok(Json(SlaReport {
        by: if by_station { "station" } else { "compound" },
        month,
        rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The report as it was built with `json!` before it was typed.
    #[test]
    fn sla_report_keeps_its_bytes() {
        let sla = SlaFigures {
            tickets: 2,
            acknowledge: StageFigures {
                met: 1,
                median_min: Some(3.5),
                ..Default::default()
            },
            ..Default::default()
        };
        let rating = RatingView::new(rate("st-1", "2026-11", &[]), &[]);
        // The fields added since (active, pending, pending_p1) come in key order.
        let old = json!({
            "month": "2026-11",
            "by": "station",
            "rows": [{"id": "st-1", "rating": serde_json::to_value(&rating).unwrap(), "sla": sla}],
        });
        let typed = SlaReport {
            by: "station",
            month: "2026-11".into(),
            rows: vec![Row {
                id: "st-1".into(),
                rating,
                sla,
            }],
        };
        assert_eq!(serde_json::to_string(&typed).unwrap(), old.to_string());
    }

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), Some(5.0));
        assert_eq!(percentile(&v, 0.9), Some(9.0));
        assert_eq!(percentile(&[3.0], 0.9), Some(3.0));
        assert_eq!(percentile(&[], 0.5), None);
    }
}
