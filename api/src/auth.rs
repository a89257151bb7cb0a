//! Who is calling: bearer tokens resolved to a [`Principal`] (role and scope over the
//! estate), and the extractors that demand one.
//!
//! A token comes in `Authorization: Bearer <token>` or, on the alert stream only (a
//! browser's `EventSource` cannot set headers), in the `access_token` query parameter:
//! tokens in URLs end up in logs and histories, so no other endpoint takes one there. The
//! configured `api.admin_token` is an admin; every other token lives hashed in the registry.

use crate::error::{blocking, ApiError};
use crate::params::{Pairs, ACCESS_TOKEN_PARAM};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use std::collections::BTreeSet;
use steward_estate::{DeviceInfo, Directory, Role, TokenInfo};
use steward_tickets::{Ticket, TicketScope};
use subtle::ConstantTimeEq;
use tracing::debug;

/// The estate a principal covers, resolved against the current directory so a compound
/// added to a manager's street is covered at once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Manager: its compounds and those of its streets. Crew: compounds its station serves.
    pub compounds: BTreeSet<String>,
    /// Manager: stations serving its compounds. Crew: its station.
    pub stations: BTreeSet<String>,
    /// Vendor: its name as devices carry it.
    pub vendor: Option<String>,
    /// Captain: its buildings.
    pub buildings: BTreeSet<String>,
    /// Captain: the person the token is, when the token names one.
    pub person: Option<String>,
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// `None` for the configured admin token.
    pub token_id: Option<i64>,
    pub name: String,
    pub scope: Scope,
}

impl Principal {
    pub fn config_admin() -> Principal {
        Principal {
            role: Role::Admin,
            token_id: None,
            name: "admin".into(),
            scope: Scope::default(),
        }
    }

    /// A stored token's principal, its scope resolved against `dir`.
    pub fn from_token(info: &TokenInfo, dir: &Directory) -> Principal {
        let mut scope = Scope::default();
        match info.role {
            Role::Admin => {}
            Role::Manager => {
                for c in dir.compounds.values() {
                    if info.scope.compounds.contains(&c.id)
                        || info.scope.streets.contains(&c.street)
                    {
                        scope.compounds.insert(c.id.clone());
                        scope.stations.insert(c.station.clone());
                    }
                }
            }
            Role::Crew => {
                if let Some(st) = &info.scope.station {
                    scope.stations.insert(st.clone());
                    for c in dir.compounds.values().filter(|c| c.station == *st) {
                        scope.compounds.insert(c.id.clone());
                    }
                }
            }
            Role::Vendor => scope.vendor = info.scope.vendor.clone(),
            Role::Captain => {
                scope.buildings = info.scope.buildings.iter().cloned().collect();
                scope.person = info.scope.person.clone();
            }
            // A hotline desk answers for the whole estate unless its token names streets.
            Role::Dispatcher => {
                for c in dir.compounds.values() {
                    if info.scope.streets.is_empty() || info.scope.streets.contains(&c.street) {
                        scope.compounds.insert(c.id.clone());
                        scope.stations.insert(c.station.clone());
                    }
                }
            }
        }
        Principal {
            role: info.role,
            token_id: Some(info.id),
            name: info.name.clone(),
            scope,
        }
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 403 `forbidden` unless the principal has one of `roles` (admin always may).
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if self.is_admin() || roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role {} may not call this endpoint",
                self.role
            )))
        }
    }

    /// 403 `out_of_scope` unless `allowed`.
    pub fn check(&self, allowed: bool, what: &str) -> Result<(), ApiError> {
        if allowed {
            Ok(())
        } else {
            Err(ApiError::OutOfScope(format!(
                "{what} is outside the scope of this token"
            )))
        }
    }

    /// Tickets, alerts and figures of a station. A manager sees the stations that serve
    /// its compounds (how fast they answer is what a manager watches).
    pub fn can_see_station(&self, station: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Manager | Role::Crew | Role::Dispatcher => self.scope.stations.contains(station),
            Role::Vendor | Role::Captain => false,
        }
    }

    pub fn can_see_compound(&self, compound: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Manager | Role::Crew | Role::Dispatcher => {
                self.scope.compounds.contains(compound)
            }
            Role::Vendor | Role::Captain => false,
        }
    }

    /// Devices: a manager's compounds, a crew's station, a vendor's own.
    pub fn can_see_device(&self, d: &DeviceInfo) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Manager | Role::Dispatcher => self.scope.compounds.contains(&*d.compound),
            Role::Crew => self.scope.stations.contains(&d.station),
            Role::Vendor => self.scope.vendor.as_deref() == Some(d.vendor.as_str()),
            Role::Captain => false,
        }
    }

    /// Tickets (and their alerts): a manager's compounds, a crew's station, a captain's
    /// buildings.
    pub fn can_see_ticket(&self, t: &Ticket) -> bool {
        if self.role == Role::Captain {
            return self.scope.buildings.contains(&t.building);
        }
        self.can_see_ticket_of(&t.station, &t.compound)
    }

    /// [`Self::can_see_ticket`] from a ticket's (or ticket event's) routing; a captain,
    /// whose scope is buildings, sees none this way.
    pub fn can_see_ticket_of(&self, station: &str, compound: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Manager | Role::Dispatcher => self.scope.compounds.contains(compound),
            Role::Crew => self.scope.stations.contains(station),
            Role::Vendor | Role::Captain => false,
        }
    }

    /// The restriction to put on a ticket query; `None` for an admin.
    pub fn ticket_scope(&self) -> Option<TicketScope> {
        match self.role {
            Role::Admin => None,
            Role::Manager | Role::Dispatcher => Some(TicketScope {
                compounds: self.scope.compounds.iter().cloned().collect(),
                ..Default::default()
            }),
            Role::Crew => Some(TicketScope {
                stations: self.scope.stations.iter().cloned().collect(),
                ..Default::default()
            }),
            Role::Vendor => Some(TicketScope::default()),
            Role::Captain => Some(TicketScope {
                buildings: self.scope.buildings.iter().cloned().collect(),
                ..Default::default()
            }),
        }
    }
}

/// The presented token: the `Authorization` header wins over the query parameter.
fn presented_token(parts: &Parts) -> Result<Option<String>, ApiError> {
    if let Some(h) = parts.headers.get(header::AUTHORIZATION) {
        let token = h
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        return Ok(Some(token.to_string()));
    }
    if !parts.uri.path().ends_with("/alerts/stream") {
        return Ok(None);
    }
    // A malformed query string is the handler's to report, naming the parameter.
    let pairs = axum::extract::Query::<Pairs>::try_from_uri(&parts.uri)
        .map(|q| q.0)
        .unwrap_or_default();
    Ok(pairs
        .into_iter()
        .find(|(k, _)| k == ACCESS_TOKEN_PARAM)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty()))
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(p) = parts.extensions.get::<Principal>() {
            return Ok(p.clone());
        }
        let token = presented_token(parts)?.ok_or(ApiError::Unauthorized)?;
        let principal = if token.as_bytes().ct_eq(state.admin_token.as_bytes()).into() {
            Principal::config_admin()
        } else {
            let reg = state.registry.clone();
            let t = token.clone();
            let info = blocking(move || Ok(reg.verify_token(&t)?)).await?;
            let Some(info) = info else {
                debug!("api request with an unknown or revoked token");
                return Err(ApiError::InvalidToken);
            };
            Principal::from_token(&info, &state.registry.directory())
        };
        parts.extensions.insert(principal.clone());
        Ok(principal)
    }
}

/// A request that presented an admin token.
pub struct Admin(pub Principal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let p = Principal::from_request_parts(parts, state).await?;
        p.require(&[Role::Admin])?;
        Ok(Admin(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use steward_estate::{CompoundInfo, DeviceKind, TokenScope};

    fn dir() -> Directory {
        let mut d = Directory::default();
        for (id, street, station) in [
            ("cmp-1", "street-1", "st-north"),
            ("cmp-2", "street-1", "st-acme"),
            ("cmp-3", "street-2", "st-south"),
        ] {
            d.compounds.insert(
                id.into(),
                CompoundInfo {
                    id: id.into(),
                    street: street.into(),
                    station: station.into(),
                },
            );
        }
        d
    }

    fn info(role: Role, scope: TokenScope) -> TokenInfo {
        TokenInfo {
            id: 1,
            name: "t".into(),
            role,
            scope,
            created_ms: 0,
            revoked_ms: None,
        }
    }

    fn device(compound: &str, station: &str, vendor: &str) -> DeviceInfo {
        DeviceInfo {
            id: Arc::from("d"),
            kind: DeviceKind::Lift,
            vendor: vendor.into(),
            building: "b".into(),
            compound: Arc::from(compound),
            location: String::new(),
            gateway: None,
            report_interval_s: 60,
            retired: false,
            station: station.into(),
            secret_hash: None,
        }
    }

    #[test]
    fn manager_scope_expands_streets_to_compounds_and_stations() {
        let p = Principal::from_token(
            &info(
                Role::Manager,
                TokenScope {
                    streets: vec!["street-1".into()],
                    ..Default::default()
                },
            ),
            &dir(),
        );
        assert!(p.can_see_compound("cmp-1") && p.can_see_compound("cmp-2"));
        assert!(!p.can_see_compound("cmp-3"));
        assert!(p.can_see_station("st-acme") && !p.can_see_station("st-south"));
        assert!(p.can_see_device(&device("cmp-2", "st-acme", "x")));
        assert!(!p.can_see_device(&device("cmp-3", "st-south", "x")));
        assert!(p.require(&[Role::Manager]).is_ok());
        assert!(matches!(
            p.require(&[Role::Crew]),
            Err(ApiError::Forbidden(_))
        ));
    }

    #[test]
    fn crew_and_vendor_scopes() {
        let crew = Principal::from_token(
            &info(
                Role::Crew,
                TokenScope {
                    station: Some("st-north".into()),
                    ..Default::default()
                },
            ),
            &dir(),
        );
        assert!(crew.can_see_ticket_of("st-north", "cmp-9"));
        assert!(!crew.can_see_ticket_of("st-acme", "cmp-1"));
        assert!(crew.can_see_compound("cmp-1") && !crew.can_see_compound("cmp-2"));
        let vendor = Principal::from_token(
            &info(
                Role::Vendor,
                TokenScope {
                    vendor: Some("acme".into()),
                    ..Default::default()
                },
            ),
            &dir(),
        );
        assert!(vendor.can_see_device(&device("cmp-3", "st-south", "acme")));
        assert!(!vendor.can_see_device(&device("cmp-3", "st-south", "other")));
        assert!(!vendor.can_see_station("st-south"));
        assert_eq!(vendor.ticket_scope(), Some(TicketScope::default()));
        // A dispatcher: the whole estate without streets, else the streets' compounds.
        let desk = Principal::from_token(&info(Role::Dispatcher, TokenScope::default()), &dir());
        assert!(["cmp-1", "cmp-2", "cmp-3"]
            .iter()
            .all(|c| desk.can_see_compound(c)));
        assert!(desk.can_see_ticket_of("st-south", "cmp-3"));
        let street = Principal::from_token(
            &info(
                Role::Dispatcher,
                TokenScope {
                    streets: vec!["street-2".into()],
                    ..Default::default()
                },
            ),
            &dir(),
        );
        assert!(street.can_see_ticket_of("st-south", "cmp-3"));
        assert!(!street.can_see_ticket_of("st-north", "cmp-1"));
        assert!(street.require(&[Role::Dispatcher]).is_ok());
        assert!(street.require(&[Role::Crew]).is_err());
        assert_eq!(Principal::config_admin().ticket_scope(), None);
    }
}
