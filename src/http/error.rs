//! The one error type of the HTTP boundary and its one mapping to status codes.
//!
//! Every denial is one of these variants, logged once here with its reason, and answered with a
//! plain message or an escaped page: never a token, a stack trace or an internal error text.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use super::pages::{self, html, plain};
use super::signed_in::NotSignedIn;
use crate::metrics::LoginOutcome;
use crate::policy::DenyReason;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No valid session: missing, forged, unknown or expired cookie.
    #[error("not signed in ({reason})")]
    NotSignedIn { reason: NotSignedIn },
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
            AppError::NotSignedIn { .. } => StatusCode::UNAUTHORIZED,
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

impl From<crate::session::StoreError> for AppError {
    fn from(err: crate::session::StoreError) -> Self {
        AppError::StoreUnavailable(err.to_string())
    }
}
