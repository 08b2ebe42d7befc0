//! The auth check: `/oauth2/auth` (status mode, nginx) and `/oauth2/forward-auth` (redirect
//! mode, Traefik and Caddy). This is the hot path: one cookie check, one store read, one pure
//! policy decision, a handful of headers.

use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::web::BytesMut;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{login, session_cookie, unix_now, AppState};
use crate::claims;
use crate::error::AppError;
use crate::forwarded::{self, OriginalRequest};
use crate::policy::{self, Decision, Identity, RouteRules};
use crate::session::{SessionView, StoredSession};

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
    check(&req, &state, Mode::Status).await
}

pub async fn redirect_mode(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    check(&req, &state, Mode::Redirect).await
}

/// Identity headers, in the order: user, email, preferred username, groups. Every 2xx sets all
/// of them (empty when unknown), so a value sent by the client can never reach the app.
const IDENTITY_HEADERS: [[HeaderName; 2]; 4] = [
    [
        HeaderName::from_static("x-auth-request-user"),
        HeaderName::from_static("remote-user"),
    ],
    [
        HeaderName::from_static("x-auth-request-email"),
        HeaderName::from_static("remote-email"),
    ],
    [
        HeaderName::from_static("x-auth-request-preferred-username"),
        HeaderName::from_static("remote-name"),
    ],
    [
        HeaderName::from_static("x-auth-request-groups"),
        HeaderName::from_static("remote-groups"),
    ],
];

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
    let peer_trusted = req
        .peer_addr()
        .is_some_and(|peer| state.config.trusted_proxies.contains(peer.ip()));
    if !peer_trusted {
        return Err(AppError::BadRequest(
            "forwarded headers are only accepted from TRUSTED_PROXIES".to_string(),
        ));
    }
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

async fn check(req: &HttpRequest, state: &AppState, mode: Mode) -> Result<HttpResponse, AppError> {
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
    let stored = match stored_session(req, state).await? {
        Ok(stored) => stored,
        Err(reason) => return not_signed_in(req, state, mode, &original, reason).await,
    };
    let session = match stored.live_view(unix_now()) {
        Ok(session) => session,
        Err(reason) => return not_signed_in(req, state, mode, &original, reason).await,
    };
    let identity = Identity {
        username: session.user,
        email: session.email,
        email_verified: session.email_verified,
        idp_groups: &session.groups,
    };
    match policy::decide(&state.config.rules, &route, &identity) {
        Decision::Allow { upstream_groups } => Ok(allowed(
            &session,
            &upstream_groups,
            state.config.allow_unverified_email,
        )),
        Decision::Deny(reason) => {
            if !route.is_empty() {
                hint_if_query_copied(req, state, &original);
            }
            Err(AppError::Forbidden {
                user: session.user.to_owned(),
                rule: reason.as_str(),
                route: original
                    .url()
                    .map(|u| u.to_string())
                    .unwrap_or_else(|e| e.to_string()),
                page: mode == Mode::Redirect,
            })
        }
    }
}

/// The stored session behind the request's cookie, still encoded: read it with
/// [`StoredSession::live_view`]. The outer error is the store failing (deny with 503); the
/// inner one is "not signed in" with its reason.
pub async fn stored_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<Result<StoredSession, &'static str>, AppError> {
    let id = match session_cookie::session_id(req, &state.config, &state.keys) {
        Ok(id) => id,
        Err(reason) => return Ok(Err(reason)),
    };
    Ok(state
        .store
        .get_session(id)
        .await?
        .ok_or("session unknown or revoked"))
}

async fn not_signed_in(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    original: &OriginalRequest<'_>,
    reason: &'static str,
) -> Result<HttpResponse, AppError> {
    let accept = header_str(req, &header::ACCEPT);
    if mode == Mode::Redirect && forwarded::is_browser_navigation(original.method, accept) {
        let return_to = original
            .url()
            .map_err(|err| AppError::BadRequest(err.to_string()))?;
        return login::begin(state, return_to.as_str()).await;
    }
    Err(AppError::NotSignedIn { reason })
}

fn allowed(
    session: &SessionView,
    upstream_groups: &[&str],
    allow_unverified_email: bool,
) -> HttpResponse {
    let groups = policy::encode_groups_header(upstream_groups);
    let email = claims::forwarded_email(
        session.email,
        session.email_verified,
        allow_unverified_email,
    );
    let values = [
        session.user,
        email.unwrap_or(""),
        session.preferred_username.unwrap_or(""),
        groups.as_str(),
    ];
    // The four values in one buffer that all eight headers share: two allocations where one
    // per header would be eight (this runs on every allowed request).
    let mut buffer = BytesMut::with_capacity(values.iter().map(|v| v.len()).sum());
    for value in values {
        buffer.extend_from_slice(value.as_bytes());
    }
    let buffer = buffer.freeze();
    let mut response = HttpResponse::new(StatusCode::OK);
    let headers = response.headers_mut();
    headers.reserve(1 + 2 * IDENTITY_HEADERS.len());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let mut start = 0;
    for (names, value) in IDENTITY_HEADERS.iter().zip(values) {
        let end = start + value.len();
        // A value that cannot be a header (control characters from a hostile IdP claim) is
        // sent empty rather than failing the whole check.
        let value = HeaderValue::from_maybe_shared(buffer.slice(start..end))
            .unwrap_or(HeaderValue::from_static(""));
        start = end;
        for name in names {
            headers.insert(name.clone(), value.clone());
        }
    }
    response
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
