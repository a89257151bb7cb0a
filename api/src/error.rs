//! The one error type of the API, its JSON body, and the helpers that turn the failures of
//! blocking work and of QuestDB into it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tracing::error;
use utoipa::ToSchema;

/// Every error the API returns, with one body shape:
/// `{"error": {"code": "...", "message": "..."}}`. Internal details are logged, not sent.
///
/// Codes: `bad_request` 400, `unauthorized` 401 (no token), `invalid_token` 401 (unknown
/// or revoked), `forbidden` 403 (role may not), `out_of_scope` 403 (outside the token's
/// streets/compounds/station/vendor), `not_found` 404, `conflict` 409, `too_large` 413,
/// `unsupported_type` 415, `rate_limited` 429
/// (with `Retry-After`), `internal` 500, `unavailable` 503.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// No token presented.
    #[error("missing bearer token")]
    Unauthorized,
    /// A token that is unknown or revoked.
    #[error("invalid or revoked token")]
    InvalidToken,
    /// A valid token whose role may not call the endpoint.
    #[error("{0}")]
    Forbidden(String),
    /// A valid token asking for something outside its scope.
    #[error("{0}")]
    OutOfScope(String),
    /// Too many requests; retry after this many seconds.
    #[error("too many requests; retry after {0} s")]
    RateLimited(u64),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// An upload over its size limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// An upload of a type the endpoint does not take (415).
    #[error("{0}")]
    UnsupportedType(String),
    #[error("internal error")]
    Internal(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Startup(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::InvalidToken => (StatusCode::UNAUTHORIZED, "invalid_token"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::OutOfScope(_) => (StatusCode::FORBIDDEN, "out_of_scope"),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            ApiError::UnsupportedType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_type")
            }
            ApiError::Internal(_) | ApiError::Startup(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
}

/// Body of every error reply.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable `code` for programs, a `message` for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// bad_request, unauthorized, invalid_token, forbidden, out_of_scope, not_found,
    /// conflict, too_large, unsupported_type, rate_limited, internal, unavailable.
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        if let ApiError::Internal(detail) = &self {
            error!(detail = %detail, "api internal error");
        }
        let mut resp = (
            status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code,
                    message: self.to_string(),
                },
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let ApiError::RateLimited(secs) = self {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(secs),
            );
        }
        resp
    }
}

impl From<steward_estate::EstateError> for ApiError {
    fn from(e: steward_estate::EstateError) -> Self {
        use steward_estate::EstateError as E;
        match e {
            E::Invalid(errors) => ApiError::BadRequest(errors.join("; ")),
            E::NotFound(what) => ApiError::NotFound(format!("{what} not found")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<steward_tickets::TicketError> for ApiError {
    fn from(e: steward_tickets::TicketError) -> Self {
        use steward_tickets::TicketError as E;
        match e {
            E::NotFound(_) => ApiError::NotFound(e.to_string()),
            E::IllegalTransition { .. } => ApiError::Conflict(e.to_string()),
            E::NoActor { .. } | E::BadMonth(_) => ApiError::BadRequest(e.to_string()),
            E::Refused { .. } => ApiError::Conflict(e.to_string()),
            E::Invalid(_) => ApiError::BadRequest(e.to_string()),
            E::UnknownCode(_) => ApiError::NotFound(e.to_string()),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<steward_rules::RulesError> for ApiError {
    fn from(e: steward_rules::RulesError) -> Self {
        match e {
            steward_rules::RulesError::Ticket(t) => t.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Run registry or ticket-store work off the async runtime; a panicked task is a 500.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
}

/// QuestDB failed: a 503 that says what kind of failure, without the query or its text.
pub(crate) fn history_unavailable(e: impl std::fmt::Display) -> ApiError {
    ApiError::Unavailable(format!(
        "history store unavailable: {}",
        short(&e.to_string())
    ))
}

/// The first clause of an error message (before any `:` detail).
fn short(s: &str) -> &str {
    s.split(':').next().unwrap_or(s)
}
