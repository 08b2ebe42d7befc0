//! The auth check: `/oauth2/auth` (status mode, nginx) and `/oauth2/forward-auth` (redirect
//! mode, Traefik and Caddy). This is the hot path, told in three files: this one (the original
//! request and the answer), [`signed_in`] (who is signed in) and [`policy`] (may they), with
//! [`identity_headers`] for what an allowed request carries to the app.

use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderName};
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::AppError;
use super::identity_headers::{self, Rendered, Shown};
use super::signed_in::{self, Memo, NotSignedIn, SignedIn};
use super::{bearer, login, unix_now, AppState};
use crate::assertion::Subject;
use crate::claims;
use crate::forwarded::{self, OriginalRequest};
use crate::metrics::{AuthOutcome, CheckError, Endpoint};
use crate::negotiation;
use crate::policy::{self, GlobalRules, Identity, RouteRules};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Never redirects: nginx treats anything but 2xx/401/403 as an error.
    Status,
    /// Sends browsers to the IdP itself.
    Redirect,
}

pub async fn status_mode(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    checked(&req, &state, Mode::Status).await
}

pub async fn redirect_mode(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    checked(&req, &state, Mode::Redirect).await
}

impl Mode {
    fn endpoint(self) -> Endpoint {
        match self {
            Mode::Status => Endpoint::Auth,
            Mode::Redirect => Endpoint::ForwardAuth,
        }
    }
}

/// What a check came to, beyond its answer: for the metrics and the access log.
struct Checked<'r> {
    outcome: AuthOutcome,
    original: Option<OriginalRequest<'r>>,
    /// Copied only for the access log.
    user: Option<String>,
    /// Whether a bearer token (not a session) was checked.
    bearer: bool,
}

/// The check, counted and timed, and with `ACCESS_LOG` logged.
pub(super) async fn checked(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
) -> Result<HttpResponse, AppError> {
    let started = Instant::now();
    let mut checked = Checked {
        // Overwritten on every path: by the decision `answer` came to, or by the error it
        // answered with.
        outcome: AuthOutcome::Error(CheckError::Store),
        original: None,
        user: None,
        bearer: false,
    };
    let result = answer(req, state, mode, &mut checked).await;
    if let Err(err) = &result {
        checked.outcome = outcome_of_error(err, checked.outcome);
    }
    let took = started.elapsed();
    state
        .metrics
        .auth_check(mode.endpoint(), checked.outcome, took);
    if state.config.access_log {
        access_log(req, &result, &checked, took);
    }
    result
}

/// The outcome an error answer stands for; `otherwise` when the error does not say.
fn outcome_of_error(err: &AppError, otherwise: AuthOutcome) -> AuthOutcome {
    match err {
        AppError::NotSignedIn { reason } => AuthOutcome::NotSignedIn(*reason),
        AppError::InvalidToken { refused } => AuthOutcome::InvalidToken(refused.kind),
        AppError::Forbidden { rule, .. } => AuthOutcome::Deny(*rule),
        AppError::BadRequest(_) => AuthOutcome::Error(CheckError::BadRequest),
        AppError::StoreUnavailable(_) => AuthOutcome::Error(CheckError::Store),
        AppError::ProviderUnavailable(_) => AuthOutcome::Error(CheckError::Provider),
        AppError::Internal(_) => AuthOutcome::Error(CheckError::Assertion),
        AppError::LoginFailed { .. } | AppError::LoginRefused { .. } => otherwise,
    }
}

/// One line per check: the visited request (its path, never its query, which may carry
/// tokens), what was answered and for whom.
fn access_log(
    req: &HttpRequest,
    result: &Result<HttpResponse, AppError>,
    checked: &Checked<'_>,
    took: Duration,
) {
    let status = match result {
        Ok(response) => response.status(),
        Err(err) => actix_web::ResponseError::status_code(err),
    };
    let original = checked.original.as_ref();
    tracing::info!(
        method = original.map_or(req.method().as_str(), |o| o.method),
        host = original.map(OriginalRequest::authority),
        path = original.map(OriginalRequest::path),
        status = status.as_u16(),
        outcome = checked.outcome.outcome(),
        reason = checked.outcome.reason(),
        user = checked.user.as_deref(),
        bearer = checked.bearer,
        duration_us = took.as_micros() as u64,
        "auth check"
    );
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

async fn answer<'r>(
    req: &'r HttpRequest,
    state: &AppState,
    mode: Mode,
    checked: &mut Checked<'r>,
) -> Result<HttpResponse, AppError> {
    let original = original_request(req, state, mode)?;
    // Borrowed parts only: known to the access log even when the store fails below.
    checked.original = Some(original.clone());
    let route = match RouteRules::from_query(req.query_string())
        .map_err(|err| err.to_string())
        .and_then(|route| route_fits_config(&route, &state.config).map(|()| route))
    {
        Ok(route) => route,
        Err(err) => {
            hint_if_query_copied(req, state, &original);
            return Err(AppError::BadRequest(format!(
                "invalid rule on the auth URL: {err}"
            )));
        }
    };
    let access_log = state.config.access_log;
    let now = unix_now();
    if let Some(token) = bearer::offered(req, &state.config)? {
        checked.bearer = true;
        let visit = Visit {
            req,
            state,
            original: &original,
            route: &route,
            now,
        };
        return bearer_answer(&visit, token, checked).await;
    }
    let (result, outcome, user) = signed_in::with_signed_in(req, state, now, |signed_in| {
        // A session of a provider no longer configured is nobody's (and a `sub` of one
        // provider never stands for a user of another).
        let session = signed_in.and_then(|SignedIn { id, session, memo }| {
            match state.config.provider(session.provider) {
                Some(provider) => Ok((id, session, memo, provider)),
                None => Err(NotSignedIn::UnknownSession),
            }
        });
        let (id, session, memo, provider) = match session {
            Ok(found) => found,
            Err(reason) => {
                state.metrics.not_signed_in(reason);
                let answer = not_signed_in(req, state, mode, &original, &route, reason);
                return (answer, AuthOutcome::NotSignedIn(reason), None);
            }
        };
        let user = access_log.then(|| session.user.to_owned());
        let identity = Identity {
            provider: session.provider,
            username: session.user,
            email: session.email,
            email_verified: session.email_verified,
            idp_groups: &session.groups,
        };
        let page = mode == Mode::Redirect;
        let shown = Shown::from(&session);
        let visit = Visit {
            req,
            state,
            original: &original,
            route: &route,
            now,
        };
        let holder = Holder { id, memo };
        let (answer, outcome) = judged(&visit, &provider.rules, &identity, shown, holder, page);
        (answer, outcome, user)
    })
    .await?;
    checked.outcome = outcome;
    checked.user = user;
    result
}

/// The request being checked, as the decision's answer needs it.
struct Visit<'v, 'r> {
    req: &'r HttpRequest,
    state: &'v AppState,
    original: &'v OriginalRequest<'r>,
    route: &'v RouteRules,
    now: u64,
}

/// An API client's check (`BEARER_TOKENS`): its token is the identity, through the same rules
/// and headers as a session. A refused token is a 401 `invalid_token` in both modes, never a
/// sign-in; a denial is a plain 403 (an API client reads no page).
async fn bearer_answer<'r>(
    visit: &Visit<'_, 'r>,
    token: &str,
    checked: &mut Checked<'r>,
) -> Result<HttpResponse, AppError> {
    let state = visit.state;
    let cached = bearer::identify(state, token, visit.now).await?;
    let who = &cached.identity;
    let provider =
        state
            .config
            .provider(who.provider.as_deref())
            .ok_or(AppError::ProviderUnavailable(
                "the token's provider is no longer configured".to_string(),
            ))?;
    let groups: Vec<&str> = who.person.groups.iter().map(String::as_str).collect();
    let identity = Identity {
        provider: who.provider.as_deref(),
        username: &who.person.user,
        email: who.person.email.as_deref(),
        email_verified: who.person.email_verified,
        idp_groups: &groups,
    };
    let shown = Shown {
        user: &who.person.user,
        email: who.person.email.as_deref(),
        email_verified: who.person.email_verified,
        preferred_username: who.person.preferred_username.as_deref(),
        provider: who.provider.as_deref(),
    };
    let holder = Holder {
        id: cached.assertion_holder(),
        memo: None,
    };
    let (answer, outcome) = judged(visit, &provider.rules, &identity, shown, holder, false);
    checked.outcome = outcome;
    checked.user = state.config.access_log.then(|| who.person.user.clone());
    answer
}

/// Whose identity an answer carries: the assertion is reused per `id` and origin, and the
/// identity headers are rendered once per cached session (`memo`).
#[derive(Clone, Copy)]
struct Holder<'a> {
    id: &'a str,
    memo: Option<&'a Memo>,
}

/// The rules' decision for `identity` and its answer: the identity headers of `shown` (and,
/// with `UPSTREAM_JWT`, the signed assertion, reused per holder and origin), or a 403
/// (`page`: the "Access denied" page, else plain text).
fn judged(
    visit: &Visit<'_, '_>,
    rules: &GlobalRules,
    identity: &Identity<'_>,
    shown: Shown<'_>,
    holder: Holder<'_>,
    page: bool,
) -> (Result<HttpResponse, AppError>, AuthOutcome) {
    let Visit {
        req,
        state,
        original,
        route,
        now,
    } = *visit;
    match policy::verdict(rules, route, identity) {
        Ok(()) => {
            let allow_unverified = state.config.allow_unverified_email;
            let groups = || policy::upstream_groups(rules, identity.idp_groups);
            let render = || Rendered::new(shown, &groups(), allow_unverified);
            // The headers depend on the session and the configuration only, never on the
            // route: rendered once per cache entry, and gone with it.
            let mut answer = match holder.memo {
                Some(memo) => memo.rendered.get_or_init(render).response(),
                None => render().response(),
            };
            if let Some(assertions) = &state.assertions {
                let audience = original.origin();
                // A cached session's own assertion first: no claims to compare, no lookup.
                let kept = holder.memo.and_then(|memo| memo.assertion(&audience, now));
                let value = match kept {
                    Some(value) => value,
                    None => {
                        let upstream_groups = groups();
                        let subject = Subject {
                            username: identity.username,
                            // Verified only, whatever OIDC_ALLOW_UNVERIFIED_EMAIL says: a
                            // signed claim must not vouch for an address nobody checked.
                            email: claims::forwarded_email(
                                identity.email,
                                identity.email_verified,
                                false,
                            ),
                            groups: &upstream_groups,
                            provider: identity.provider,
                        };
                        match assertions.issued_header(holder.id, &audience, &subject, now) {
                            Ok((value, issued_at)) => {
                                if let Some(memo) = holder.memo {
                                    memo.keep_assertion(audience, issued_at, value.clone());
                                }
                                value
                            }
                            // Fail closed: never an allowed answer without the assertion.
                            Err(err) => {
                                let failed =
                                    AppError::Internal(format!("identity assertion: {err}"));
                                return (Err(failed), AuthOutcome::Error(CheckError::Assertion));
                            }
                        }
                    }
                };
                answer.headers_mut().insert(identity_headers::JWT, value);
            }
            (Ok(answer), AuthOutcome::Allow)
        }
        Err(rule) => {
            if !route.is_empty() {
                hint_if_query_copied(req, state, original);
            }
            let denied = AppError::Forbidden {
                user: identity.username.to_owned(),
                rule,
                route: original.page(),
                page,
            };
            (Err(denied), AuthOutcome::Deny(rule))
        }
    }
}

/// No session: a browser navigation in redirect mode starts a login; anything else is 401.
fn not_signed_in(
    req: &HttpRequest,
    state: &AppState,
    mode: Mode,
    original: &OriginalRequest<'_>,
    route: &RouteRules,
    reason: NotSignedIn,
) -> Result<HttpResponse, AppError> {
    let accept = header_str(req, &header::ACCEPT);
    if mode == Mode::Redirect && negotiation::wants_html(original.method, accept) {
        let return_to = original
            .url()
            .map_err(|err| AppError::BadRequest(err.to_string()))?;
        return login::sign_in(state, return_to.as_str(), route.providers.as_deref());
    }
    Err(AppError::NotSignedIn { reason })
}

/// Route rules that name what the configuration does not have: a provider not configured, or
/// (with several providers) a user without the provider that makes it unique. Refused like an
/// unknown rule, since either would leave the route other than intended.
fn route_fits_config(route: &RouteRules, config: &crate::config::Config) -> Result<(), String> {
    if let Some(names) = &route.providers {
        if let Some(unknown) = names.iter().find(|n| config.provider(Some(n)).is_none()) {
            return Err(format!(
                "route rule \"provider\": no provider named {unknown:?} is configured"
            ));
        }
    }
    if config.several_providers() {
        let names: Vec<&str> = config
            .providers
            .iter()
            .filter_map(|p| p.name.as_deref())
            .collect();
        if let Some(bare) = route
            .allowed_users
            .iter()
            .flatten()
            .find(|user| policy::qualified_user(user, &names).is_none())
        {
            return Err(format!(
                "route rule \"allowed_users\": {bare:?} does not name its provider; with \
                 several providers write provider:user"
            ));
        }
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;

    use super::*;
    use crate::metrics::LoginOutcome;
    use crate::policy::DenyReason;

    #[test]
    fn an_error_answer_is_counted_as_what_it_says() {
        let kept = AuthOutcome::Allow;
        let forbidden = AppError::Forbidden {
            user: "alice".into(),
            rule: DenyReason::NoGroups,
            route: "https://app.example.com/".into(),
            page: false,
        };
        let cases = [
            (
                AppError::NotSignedIn {
                    reason: NotSignedIn::Expired,
                },
                AuthOutcome::NotSignedIn(NotSignedIn::Expired),
            ),
            (forbidden, AuthOutcome::Deny(DenyReason::NoGroups)),
            (
                AppError::BadRequest("x".into()),
                AuthOutcome::Error(CheckError::BadRequest),
            ),
            (
                AppError::StoreUnavailable("x".into()),
                AuthOutcome::Error(CheckError::Store),
            ),
            (
                AppError::ProviderUnavailable("x".into()),
                AuthOutcome::Error(CheckError::Provider),
            ),
            // Never answered by a check: the outcome already decided stands.
            (
                AppError::LoginFailed {
                    message: "m",
                    reason: LoginOutcome::State,
                    detail: "d".into(),
                    status: StatusCode::BAD_REQUEST,
                },
                kept,
            ),
        ];
        for (err, expected) in cases {
            assert_eq!(outcome_of_error(&err, kept), expected, "{err:?}");
        }
    }
}
