//! API tokens over HTTP (admin only): create (the only time a token is shown), list,
//! revoke.

use crate::auth::Admin;
use crate::error::{blocking, ApiError};
use crate::schema::{sorted, RoleDoc, TokenScopeDoc};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use steward_estate::{NewToken, Role, TokenInfo, TokenScope};
use utoipa::ToSchema;

/// A token to create. Which scope fields apply depends on the role: manager `streets`
/// and/or `compounds`; crew `station`; vendor `vendor`; captain `buildings` (and
/// optionally `person`); admin none.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Who holds it, e.g. `north crew tablet`.
    pub name: String,
    /// `admin`, `manager`, `crew`, `vendor` or `captain`.
    pub role: String,
    #[serde(default)]
    pub streets: Vec<String>,
    #[serde(default)]
    pub compounds: Vec<String>,
    pub station: Option<String>,
    pub vendor: Option<String>,
    #[serde(default)]
    pub buildings: Vec<String>,
    /// Captain: the person (estate `people` id) the token is.
    #[serde(default)]
    pub person: Option<String>,
}

/// A stored token, never its secret.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Token)]
pub struct TokenView {
    pub created_ms: i64,
    pub id: i64,
    pub name: String,
    /// Null while the token works.
    #[schema(required = true)]
    pub revoked_ms: Option<i64>,
    #[schema(value_type = RoleDoc)]
    pub role: Role,
    #[serde(serialize_with = "sorted")]
    #[schema(value_type = TokenScopeDoc)]
    pub scope: TokenScope,
}

impl From<TokenInfo> for TokenView {
    fn from(t: TokenInfo) -> Self {
        TokenView {
            created_ms: t.created_ms,
            id: t.id,
            name: t.name,
            revoked_ms: t.revoked_ms,
            role: t.role,
            scope: t.scope,
        }
    }
}

/// A token just created: the stored token and, this once, the token itself.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = IssuedToken)]
pub struct IssuedTokenView {
    #[serde(flatten)]
    pub info: TokenView,
    /// The bearer token (`stw_...`); shown only in this reply.
    pub token: String,
}

/// Reply of `GET /api/v1/tokens`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// Create a token; the reply is the only time the token is shown.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens",
    request_body = CreateToken,
    responses(
        (status = 201, description = "the token (`token` is shown only here) and its id, role and scope",
            body = IssuedTokenView),
        (status = 400, description = "invalid role or scope, naming the field"),
        (status = 401, description = "no or invalid token"),
        (status = 403, description = "not an admin"),
    ),
    security(("bearer" = [])))]
pub async fn create_token(
    Admin(_): Admin,
    State(s): State<AppState>,
    body: Result<Json<CreateToken>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) =
        body.map_err(|e| ApiError::BadRequest(format!("request body: {}", e.body_text())))?;
    let role: Role = b.role.parse().map_err(|e: String| {
        ApiError::BadRequest(format!("role: {}", e.chars().take(120).collect::<String>()))
    })?;
    let new = NewToken {
        name: b.name,
        role,
        scope: TokenScope {
            streets: b.streets,
            compounds: b.compounds,
            station: b.station,
            vendor: b.vendor,
            buildings: b.buildings,
            person: b.person,
        },
    };
    let reg = s.registry.clone();
    let issued = blocking(move || Ok(reg.create_token(&new)?)).await?;
    let out = IssuedTokenView {
        info: issued.info.into(),
        token: issued.token,
    };
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Every token (revoked ones too), never their secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, description = "every token", body = TokenList), (status = 401),
        (status = 403)),
    security(("bearer" = [])))]
pub async fn list_tokens(
    Admin(_): Admin,
    State(s): State<AppState>,
) -> Result<Json<TokenList>, ApiError> {
    let reg = s.registry.clone();
    let tokens = blocking(move || Ok(reg.tokens()?)).await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

/// Revoke a token; it stops working with the next request.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 200, description = "the revoked token", body = TokenView), (status = 400),
        (status = 401),
        (status = 403), (status = 404)),
    security(("bearer" = [])))]
pub async fn revoke_token(
    Admin(_): Admin,
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TokenView>, ApiError> {
    let id = id
        .parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError::BadRequest("id: expected a positive integer".into()))?;
    let reg = s.registry.clone();
    let info = blocking(move || Ok(reg.revoke_token(id)?)).await?;
    Ok(Json(info.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The replies as they were built with `json!` before they were typed.
    #[test]
    fn replies_keep_their_bytes() {
        let t = TokenInfo {
            id: 7,
            name: "north crew".into(),
            role: Role::Crew,
            scope: TokenScope {
                station: Some("st-north".into()),
                ..Default::default()
            },
            created_ms: 1,
            revoked_ms: None,
        };
        let mut old = json!({
            "id": t.id,
            "name": t.name,
            "role": t.role,
            "scope": t.scope,
            "created_ms": t.created_ms,
            "revoked_ms": t.revoked_ms,
        });
        let view = TokenView::from(t);
        assert_eq!(serde_json::to_string(&view).unwrap(), old.to_string());
        old["token"] = json!("stw_x");
        let issued = IssuedTokenView {
            info: view,
            token: "stw_x".into(),
        };
        assert_eq!(serde_json::to_string(&issued).unwrap(), old.to_string());
    }
}
