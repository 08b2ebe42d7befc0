//! The auth check: `/oauth2/auth` (status mode, nginx) and `/oauth2/forward-auth` (redirect
//! mode, Traefik and Caddy). This is the hot path, told in three files: this one (the original
//! request and the answer), [`signed_in`] (who is signed in) and [`policy`] (may they), with
//! [`identity_headers`] for what an allowed request carries to the app.

use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::signed_in::{self, NotSignedIn};
use super::{identity_headers, login, unix_now, AppState};
use crate::forwarded::{self, OriginalRequest};
use crate::negotiation;
use crate::policy::{self, Decision, Identity, RouteRules};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Never redirects: nginx treats anything but 2xx/401/403 as an error.
    Status,
    /// Sends browsers to the IdP itself.
    Redirect,
}

pub async fn status_mode(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    answer(&req, &state, Mode::Status).await
}

pub async fn redirect_mode(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    answer(&req, &state, Mode::Redirect).await
}

// Request headers are looked up by `HeaderName`, not `&str`: a string would be parsed into a
// header name on every lookup of every request.
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");

fn header_str<'r>(req: &'r HttpRequest, name: &HeaderName) -> Option<&'r str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

fn original_request<'r>(
    req: &'r HttpRequest,
    state: &AppState,
    mode: Mode,
) -> Result<OriginalRequest<'r>, AppError> {
    let peer = req.peer_addr().map(|peer| peer.ip());
    state
        .config
        .trusted_proxies
        .require_trusted(peer)
        .map_err(|_| {
            AppError::BadRequest(
                "forwarded headers are only accepted from TRUSTED_PROXIES".to_string(),
            )
        })?;
    let rules = forwarded::PathRules {
        allow_encoded_slashes: state.config.allow_encoded_slashes,
    };
    let parsed = match mode {
        Mode::Redirect => forwarded::from_forwarded_headers(
            header_str(req, &X_FORWARDED_PROTO),
            header_str(req, &X_FORWARDED_HOST),
            header_str(req, &X_FORWARDED_URI),
            header_str(req, &X_FORWARDED_METHOD),
            rules,
        ),
        Mode::Status => forwarded::from_original_url(
            header_str(req, &X_ORIGINAL_URL),
            header_str(req, &X_ORIGINAL_METHOD),
            rules,
        ),
    };
    parsed.map_err(|err| AppError::BadRequest(err.to_string()))
}

async fn answer(req: &HttpRequest, state: &AppState, mode: Mode) -> Result<HttpResponse, AppError> {
    let original = original_request(req, state, mode)?;
    let route = match RouteRules::from_query(req.query_string()) {
        Ok(route) => route,
        Err(err) => {
            hint_if_query_copied(req, state, &original);
            return Err(AppError::BadRequest(format!(
                "invalid rule on the auth URL: {err}"
            )));
        }
    };
    signed_in::with_session(req, state, unix_now(), |session| {
        let session = match session {
            Ok(session) => session,
            Err(reason) => return not_signed_in(req, state, mode, &original, reason),
        };
        let identity = Identity {
            username: session.user,
            email: session.email,
            email_verified: session.email_verified,
            idp_groups: &session.groups,
        };
        match policy::decide(&state.config.rules, &route, &identity) {
            Decision::Allow { upstream_groups } => Ok(identity_headers::allowed(
                &session,
                &upstream_groups,
                state.config.allow_unverified_email,
            )),
            Decision::Deny(rule) => {
                if !route.is_empty() {
                    hint_if_query_copied(req, state, &original);
                }
                Err(AppError::Forbidden {
                    user: session.user.to_owned(),
                    rule,
                    route: original
                        .url()
                        .map(|u| u.to_string())
                        .unwrap_or_else(|e| e.to_string()),
                    page: mode == Mode::Redirect,
                })
            }
        }
    })
    .await?
}

/// No session: a browser navigation in redirect mode starts a login; anything else is 401.
fn not_signed_in(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    original: &OriginalRequest<'_>,
    reason: NotSignedIn,
) -> Result<HttpResponse, AppError> {
    let accept = header_str(req, &header::ACCEPT);
    if mode == Mode::Redirect && negotiation::wants_html(original.method, accept) {
        let return_to = original
            .url()
            .map_err(|err| AppError::BadRequest(err.to_string()))?;
        return login::begin(state, return_to.as_str());
    }
    Err(AppError::NotSignedIn { reason })
}

/// Caddy (and misconfigured proxies) copy the visited page's query onto the auth URL. When the
/// two queries are identical, say so in the log, at most once a minute.
fn hint_if_query_copied(req: &HttpRequest, state: &AppState, original: &OriginalRequest<'_>) {
    let auth_query = req.query_string();
    if auth_query.is_empty() || original.query() != Some(auth_query) {
        return;
    }
    let mut last = state
        .query_hint_logged
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(Instant::now());
    tracing::warn!(
        "the auth URL's query equals the visited page's query: the proxy is probably copying \
         the page's query onto the auth request. Caddy: write `uri /oauth2/forward-auth?` (with \
         the `?`) in forward_auth; route rules on the auth URL must come from the proxy \
         configuration only"
    );
}
