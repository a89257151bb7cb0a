//! The desk's side of dispatching and resident tracking: each change applied in the
//! store and published like every other ticket change, so alerts, the SSE stream and the
//! escalation see tickets opened from calls and transfers between stations.

use super::{new_tracking_code, CallTicket, LinkRelation, ResidentRating, TicketLink};
use crate::events::{TicketEvent, TicketEventKind};
use crate::metrics::{PriorityLabel, StateLabel};
use crate::state::{RaiseOutcome, ResidentReport, Ticket, TicketState};
use crate::{TicketDesk, TicketError};
use tracing::info;

impl TicketDesk {
    /// A ticket from a phone call, timestamped by the desk's clock and published like a
    /// rule's (`raised`); the caller stays out of the event and the log line but for a
    /// masked phone number.
    pub fn call_in(&self, mut c: CallTicket, actor: &str) -> Result<Ticket, TicketError> {
        c.ts_ms = self.now_ms();
        let o = self.store().call_in(&c, self.sla_policy(), actor)?;
        info!(ticket = o.ticket.id, compound = %c.compound, station = %c.station, priority = %c.priority, caller_phone = %c.caller.masked_phone(), actor, "ticket opened from a call");
        self.metrics()
            .tickets_raised
            .get_or_create(&PriorityLabel {
                priority: o.ticket.priority.as_str(),
            })
            .inc();
        let ev = TicketEvent::of(
            TicketEventKind::Raised,
            &o.ticket,
            c.ts_ms,
            self.sla_policy(),
            o.ticket.title.clone(),
        );
        self.publish(ev);
        Ok(o.ticket)
    }

    /// Move a ticket to another station; both stations hear of it (a `transition` event
    /// addressed to each, the state unchanged).
    pub fn transfer(
        &self,
        id: i64,
        station: &str,
        reason: &str,
        actor: &str,
    ) -> Result<Ticket, TicketError> {
        let now = self.now_ms();
        let before = self.store().ticket(id)?;
        let t = self.store().transfer(id, station, reason, actor, now)?;
        info!(ticket = id, from = %before.station, to = %station, actor, "ticket transferred");
        let msg = format!(
            "transferred from {} to {station} by {actor}: {reason}",
            before.station
        );
        let mut old = TicketEvent::of(
            TicketEventKind::Transition,
            &t,
            now,
            self.sla_policy(),
            msg.clone(),
        );
        old.station = before.station.clone();
        old.topic = crate::alerts_topic(&before.station);
        self.publish(old);
        self.publish(TicketEvent::of(
            TicketEventKind::Transition,
            &t,
            now,
            self.sla_policy(),
            msg,
        ));
        Ok(t)
    }

    /// Merge ticket `id` into `into` and publish both changes.
    pub fn merge(
        &self,
        id: i64,
        into: i64,
        note: &str,
        actor: &str,
    ) -> Result<(Ticket, Ticket), TicketError> {
        let now = self.now_ms();
        let (source, target) = self.store().merge(id, into, note, actor, now)?;
        self.metrics()
            .transitions
            .get_or_create(&StateLabel {
                to: TicketState::Cancelled.as_str(),
            })
            .inc();
        let policy = self.sla_policy();
        self.publish(TicketEvent::of(
            TicketEventKind::Transition,
            &source,
            now,
            policy,
            format!("cancelled by {actor}: merged into #{into}"),
        ));
        self.publish(TicketEvent::of(
            TicketEventKind::Repeated,
            &target,
            now,
            policy,
            format!("#{id} merged in by {actor}"),
        ));
        Ok((source, target))
    }

    /// Link two tickets (nothing to alert: both audit trails say it).
    pub fn link(
        &self,
        id: i64,
        other: i64,
        relation: LinkRelation,
        actor: &str,
    ) -> Result<TicketLink, TicketError> {
        self.store().link(id, other, relation, actor, self.now_ms())
    }

    /// A resident's report with a new tracking code for it.
    pub fn report_tracked(&self, r: ResidentReport) -> Result<(RaiseOutcome, String), TicketError> {
        let category = r.category.clone();
        let o = self.report(r)?;
        let code = new_tracking_code();
        self.store()
            .add_tracking_code(&code, o.ticket.id, &category, self.now_ms())?;
        Ok((o, code))
    }

    /// A resident's stars for their resolved report, at the desk clock's now.
    pub fn rate_by_resident(
        &self,
        code: &str,
        stars: u8,
        comment: &str,
    ) -> Result<ResidentRating, TicketError> {
        self.store()
            .rate_by_resident(code, stars, comment, self.now_ms())
    }
}
