//! Who the caller is: the dashboard asks once after login and shows only what the token's
//! role may use (no Acknowledge button for a manager, a vendor view for a vendor).

use crate::auth::Principal;
use crate::schema::RoleDoc;
use axum::Json;
use serde::Serialize;
use steward_estate::Role;
use utoipa::ToSchema;

/// Reply of `GET /api/v1/me`. Fields in alphabetical order.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// Compounds the token covers (manager: its own and its streets'; crew: those its
    /// station serves); empty for an admin (who sees everything) and a vendor.
    pub compounds: Vec<String>,
    /// Whether the role may move tickets (admin, crew).
    pub may_move_tickets: bool,
    /// The token's name; `admin` for the configured admin token.
    pub name: String,
    #[schema(value_type = RoleDoc)]
    pub role: Role,
    /// Stations whose tickets the token sees; empty for an admin and a vendor.
    pub stations: Vec<String>,
    /// Vendor name of a vendor token.
    #[schema(required = true)]
    pub vendor: Option<String>,
}

/// The caller's role, name and scope (every role).
#[utoipa::path(get, path = "/api/v1/me", tag = "estate",
    responses((status = 200, description = "role, name and scope of the token", body = Me),
        (status = 401)),
    security(("bearer" = [])))]
pub(crate) async fn me(who: Principal) -> Json<Me> {
    Json(Me {
        compounds: who.scope.compounds.iter().cloned().collect(),
        may_move_tickets: who.require(&[Role::Crew]).is_ok(),
        name: who.name,
        role: who.role,
        stations: who.scope.stations.iter().cloned().collect(),
        vendor: who.scope.vendor,
    })
}
