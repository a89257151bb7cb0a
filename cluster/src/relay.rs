//! Live ticket events on every node. A ticket is raised on the worker that owns its
//! compound and acknowledged on whichever node a crew's app talks to, but every node's
//! API streams events (SSE) to dashboards. Each node follows the shared event log in
//! PostgreSQL and relays to its own subscribers what other nodes logged.
//!
//! Ids come from one sequence but become visible at commit, so a later id can show up
//! before an earlier one; a gap is waited for a moment (`GAP_WAIT`) before it is passed
//! (a rolled-back batch leaves a gap that never fills).

use crate::task::Task;
use crate::ClusterError;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use steward_tickets::TicketDesk;
use tokio::sync::broadcast::error::TryRecvError;
use tracing::{debug, warn};

/// How long a missing id is waited for before the events after it are relayed.
const GAP_WAIT: Duration = Duration::from_secs(2);
const READ_LIMIT: u32 = 1000;

pub struct EventRelay {
    task: Task,
}

impl EventRelay {
    /// Follow the log from its current end, polling every `every`.
    pub fn start(desk: TicketDesk, every: Duration) -> Result<EventRelay, ClusterError> {
        let task = Task::spawn("event-relay", move |stop| follow(desk, every, stop))?;
        Ok(EventRelay { task })
    }

    pub fn shutdown(self) {
        self.task.shutdown();
    }
}

fn follow(desk: TicketDesk, every: Duration, stop: &AtomicBool) {
    // Events this node published itself are not relayed again.
    let mut own = desk.events();
    let mut seen: BTreeSet<i64> = BTreeSet::new();
    let mut last = loop {
        match desk.last_event_id() {
            Ok(id) => break id,
            Err(e) => {
                warn!(error = %e, "event relay cannot read the log; retrying");
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(every);
            }
        }
    };
    let mut gap_since: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        loop {
            match own.try_recv() {
                Ok(ev) => {
                    if let Some(id) = ev.event_id {
                        seen.insert(id);
                    }
                }
                Err(TryRecvError::Lagged(_)) => {}
                Err(_) => break,
            }
        }
        match desk.events_after(last, READ_LIMIT) {
            Ok(events) => {
                for ev in events {
                    let Some(id) = ev.event_id else { continue };
                    if id > last + 1 {
                        let since = *gap_since.get_or_insert_with(Instant::now);
                        if since.elapsed() < GAP_WAIT {
                            break;
                        }
                        debug!(
                            from = last + 1,
                            to = id - 1,
                            "event ids never committed; passed"
                        );
                    }
                    gap_since = None;
                    if !seen.remove(&id) {
                        desk.relay(ev);
                    }
                    last = id;
                }
            }
            Err(e) => warn!(error = %e, "event relay cannot read the log"),
        }
        // Ids at or below `last` can no longer come from the log.
        seen = seen.split_off(&(last + 1));
        std::thread::sleep(every);
    }
}
