//! What every handler shares: the registry, the rules' device state and ticket desk, the
//! QuestDB client, metrics and the public report limits.

use crate::error::ApiError;
use crate::intake::ResidentIntake;
use crate::metrics::ApiMetrics;
use crate::params::id_param;
use parking_lot::Mutex;
use std::sync::Arc;
use steward_estate::{DeviceInfo, Registry};
use steward_rules::DeviceStates;
use steward_storage::questdb::QuestDbClient;

/// Checks `/readyz` runs; each returns a reason when not ready.
pub type ReadinessProbe = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

#[derive(Clone)]
pub struct AppState {
    pub registry: Registry,
    pub states: DeviceStates,
    pub questdb: QuestDbClient,
    pub metrics: Arc<Mutex<prometheus_client::registry::Registry>>,
    pub admin_token: Arc<str>,
    pub probes: Vec<(&'static str, ReadinessProbe)>,
    /// Tickets of the rules stage.
    pub tickets: steward_tickets::TicketDesk,
    pub api_metrics: ApiMetrics,
    /// Rate limits and counters of the public resident report endpoint.
    pub resident: ResidentIntake,
    /// Where crews' ticket photos are kept (`api.photo_dir`).
    pub photos: crate::photo_store::PhotoStore,
    /// Escalation to people (acknowledgement links, deliveries); `None` when turned off.
    pub escalation: Option<steward_escalation::Escalation>,
    /// Planned rounds (steward-rounds); `None` when the stage does not run (503).
    pub rounds: Option<steward_rounds::Rounds>,
}

/// A registered device by its (validated) id, or a 400/404 naming it.
pub(crate) fn find_device(s: &AppState, id: &str) -> Result<DeviceInfo, ApiError> {
    id_param("id", id)?;
    s.registry
        .directory()
        .device(id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(format!("device `{id}` not found")))
}
