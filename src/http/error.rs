//! The one error type of the HTTP boundary and its one mapping to status codes.
//!
//! Every denial is one of these variants, logged once here with its reason, and answered with a
//! plain message or an escaped page: never a token, a stack trace or an internal error text.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::pages::{self, html, plain};
use super::signed_in::NotSignedIn;
use crate::metrics::LoginOutcome;
use crate::oidc::RefusedToken;
use crate::policy::DenyReason;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid session: missing, forged, unknown or expired cookie.
    #[error("not signed in ({reason})")]
    NotSignedIn { reason: NotSignedIn },
    /// A bearer token (`BEARER_TOKENS`) that is not a valid access token for this deployment:
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"`, never a sign-in.
    #[error("bearer token refused ({}): {}", refused.kind.as_str(), refused.detail)]
    InvalidToken { refused: RefusedToken },
    /// Signed in, but a rule denies this route.
    #[error("access denied for {user}: {}", rule.as_str())]
    Forbidden {
        user: String,
        rule: DenyReason,
        route: String,
        /// Redirect mode answers browsers with a page; status mode with plain text.
        page: bool,
    },
    /// The request itself is unusable (headers, query, parameters).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A login could not be completed; `reason` and `detail` are logged, `message` is shown.
    #[error("login failed: {detail}")]
    LoginFailed {
        message: &'static str,
        reason: LoginOutcome,
        detail: String,
        status: StatusCode,
    },
    /// A user the rules refuse at login: no session is created.
    #[error("login refused for {user}: {}", rule.as_str())]
    LoginRefused { user: String, rule: DenyReason },
    #[error("session store unavailable: {0}")]
    StoreUnavailable(String),
    #[error("identity provider not ready: {0}")]
    ProviderUnavailable(String),
    /// Something portcullis itself could not do (signing the identity assertion): 500, never
    /// an answer without it.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::NotSignedIn { .. } | AppError::InvalidToken { .. } => {
                StatusCode::UNAUTHORIZED
            }
            AppError::Forbidden { .. } | AppError::LoginRefused { .. } => StatusCode::FORBIDDEN,
            AppError::BadRequest(_) => StatusCode::BAD_REQUEST,
            AppError::LoginFailed { status, .. } => *status,
            AppError::StoreUnavailable(_) | AppError::ProviderUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        self.log();
        let status = self.status_code();
        match self {
            AppError::NotSignedIn { .. } => plain(status, "not signed in"),
            AppError::InvalidToken { refused } => {
                let mut response = plain(status, "invalid bearer token");
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    bearer_challenge(refused.kind.description()),
                );
                response
            }
            AppError::Forbidden {
                user, page: true, ..
            } => html(status, pages::forbidden(user)),
            AppError::Forbidden { .. } => plain(status, "access denied"),
            AppError::BadRequest(message) => plain(status, message),
            AppError::LoginFailed { message, .. } => html(status, pages::login_error(message)),
            AppError::LoginRefused { user, .. } => html(status, pages::forbidden(user)),
            AppError::StoreUnavailable(_) => {
                plain(status, "session store unavailable, try again shortly")
            }
            AppError::ProviderUnavailable(_) => plain(
                status,
                "identity provider not reachable yet, try again shortly",
            ),
            AppError::Internal(_) => plain(status, "internal error"),
        }
    }
}

impl AppError {
    fn log(&self) {
        match self {
            // Routine: every anonymous request is one. Debug only, to keep the hot path quiet.
            AppError::NotSignedIn { reason } => {
                tracing::debug!(reason = reason.as_str(), "not signed in")
            }
            // Debug, like a missing session: a client retrying a stale token is routine. The
            // detail names claims at most, never the token.
            AppError::InvalidToken { refused } => tracing::debug!(
                reason = refused.kind.as_str(),
                detail = refused.detail,
                "bearer token refused"
            ),
            AppError::Forbidden {
                user, rule, route, ..
            } => tracing::info!(user, rule = rule.as_str(), route, "access denied"),
            AppError::LoginRefused { user, rule } => {
                tracing::info!(user, rule = rule.as_str(), "login refused by policy")
            }
            AppError::BadRequest(message) => tracing::warn!(message, "bad request"),
            AppError::LoginFailed { detail, reason, .. } => {
                tracing::warn!(reason = reason.as_str(), detail, "login failed")
            }
            AppError::StoreUnavailable(detail) => {
                tracing::error!(detail, "session store unavailable")
            }
            AppError::ProviderUnavailable(detail) => {
                tracing::warn!(detail, "identity provider unavailable")
            }
            AppError::Internal(detail) => tracing::error!(detail, "internal error"),
        }
    }
}

/// `Bearer error="invalid_token", error_description="..."` (RFC 6750 section 3). The
/// description is one of fixed words (`TokenRefusal::description`), quoted as they are.
fn bearer_challenge(description: &'static str) -> HeaderValue {
    let value = format!("Bearer error=\"invalid_token\", error_description=\"{description}\"");
    HeaderValue::from_str(&value)
        .unwrap_or(HeaderValue::from_static("Bearer error=\"invalid_token\""))
}

impl From<crate::session::StoreError> for AppError {
    fn from(err: crate::session::StoreError) -> Self {
        AppError::StoreUnavailable(err.to_string())
    }
}
