//! `/oauth2/start` and `/oauth2/callback`: the authorization code flow with PKCE. The decisions
//! are in [`crate::login`]; these handlers are the order of the I/O around them.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{pages, query_param, session_cookie, signed_in, unix_now, AppState};
use crate::claims::UsernameError;
use crate::crypto;
use crate::http::error::AppError;
use crate::login::{
    self, CallbackFailure, CallbackParams, LoginState, SessionRefusal, LOGIN_TTL_SECS,
};
use crate::metrics::{self, LoginOutcome};
use crate::oidc::{Oidc, OidcError};

/// Where a browser may be sent: the checked `rd`, or our own root.
pub fn safe_return_to(state: &AppState, candidate: Option<&str>) -> String {
    let base = &state.config.redirect_url;
    candidate
        .and_then(|rd| state.config.allowed_redirects.resolve(rd, base))
        .map(|url| url.to_string())
        .unwrap_or_else(|| {
            let mut root = base.clone();
            root.set_path("/");
            root.to_string()
        })
}

/// Starts a login at `oidc`: seals it into this browser's login cookie (nothing is stored
/// server-side) and sends the browser to the provider.
pub fn begin(state: &AppState, oidc: &Oidc, return_to: &str) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_to(state, Some(return_to));
    let request = oidc
        .authorization_request()
        .map_err(|err| AppError::ProviderUnavailable(err.to_string()))?;
    let login = LoginState {
        state: request.state,
        pkce_verifier: request.pkce_verifier,
        nonce: request.nonce,
        return_to,
        expires_at: unix_now() + LOGIN_TTL_SECS,
        provider: oidc.name().map(str::to_string),
    };
    let chunks = login
        .seal(&state.keys)
        .ok_or_else(|| AppError::BadRequest("the return address is too long".to_string()))?;
    let mut response = HttpResponse::Found();
    response
        .insert_header((header::LOCATION, request.url.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"));
    for cookie in session_cookie::login_cookies(&state.config, &login.state, chunks) {
        response.cookie(cookie);
    }
    Ok(response.finish())
}

/// The providers a browser may sign in with: all of them, or those `only` names (a route's
/// `provider=` or `/oauth2/start?provider=`). A name that is not configured is a bad request.
pub fn candidates<'s>(
    state: &'s AppState,
    only: Option<&[String]>,
) -> Result<Vec<&'s Oidc>, AppError> {
    let Some(only) = only else {
        return Ok(state.providers.iter().collect());
    };
    only.iter()
        .map(|name| {
            state
                .providers
                .get(Some(name))
                .ok_or_else(|| AppError::BadRequest(format!("no provider named {name:?}")))
        })
        .collect()
}

/// Signs a browser in with one of `choices`: at once when there is one, otherwise through the
/// sign-in page (`/oauth2/start`, which lists them).
pub fn sign_in(
    state: &AppState,
    return_to: &str,
    only: Option<&[String]>,
) -> Result<HttpResponse, AppError> {
    let choices = candidates(state, only)?;
    if let [oidc] = choices.as_slice() {
        return begin(state, oidc, return_to);
    }
    let return_to = safe_return_to(state, Some(return_to));
    let mut page = state.config.redirect_url.clone();
    page.set_path("/oauth2/start");
    page.set_query(None);
    {
        let mut query = page.query_pairs_mut();
        if let Some(only) = only {
            query.append_pair("provider", &only.join(","));
        }
        query.append_pair("rd", &return_to);
    }
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, page.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// The sign-in page: a button per provider of `choices`, each starting a login there.
fn sign_in_page(state: &AppState, choices: &[&Oidc], return_to: &str) -> HttpResponse {
    let buttons: Vec<pages::ProviderChoice> = choices
        .iter()
        .filter_map(|oidc| {
            let name = oidc.name()?;
            let settings = state.config.provider(Some(name))?;
            let query: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("provider", name)
                .append_pair("rd", return_to)
                .finish();
            Some(pages::ProviderChoice {
                display_name: settings.display_name.clone(),
                start_url: format!("/oauth2/start?{query}"),
            })
        })
        .collect();
    let sign_in = &state.config.sign_in;
    let logo = sign_in.logo_url.as_ref();
    pages::sign_in_response(
        pages::sign_in(&sign_in.title, logo.map(url::Url::as_str), &buttons),
        logo.map(|url| url.origin().ascii_serialization())
            .as_deref(),
    )
}

/// nginx cannot URL-encode, so its sign-in redirect sends `rd=http://host/path?a=1&b=2`
/// unencoded as the last parameter (after a `provider=` of the route, if any): when a parameter
/// `rd=` starts with an unencoded `http://` or `https://`, the whole rest of the query is the
/// URL. The parameters before it, and that URL.
fn split_unencoded_rd(raw_query: &str) -> (&str, Option<&str>) {
    let mut start = 0;
    loop {
        let rest = &raw_query[start..];
        if let Some(url) = rest.strip_prefix("rd=") {
            if url.starts_with("http://") || url.starts_with("https://") {
                return (raw_query[..start].trim_end_matches('&'), Some(url));
            }
        }
        match rest.find('&') {
            Some(at) => start += at + 1,
            None => return (raw_query, None),
        }
    }
}

/// The `rd` of `/oauth2/start`: nginx's unencoded one ([`split_unencoded_rd`]), or else an
/// ordinary (encoded) form parameter. Either way the result still has to pass the redirect
/// allow-list.
pub fn requested_return(raw_query: &str) -> Option<String> {
    match split_unencoded_rd(raw_query) {
        (_, Some(url)) => Some(url.to_string()),
        (params, None) => query_param(params, "rd"),
    }
}

/// `/oauth2/start[?provider=NAME[,NAME...]][&rd=URL]`: straight to the one provider there is
/// (or is named), else the sign-in page listing them.
pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let query = req.query_string();
    let return_to = safe_return_to(&state, requested_return(query).as_deref());
    // Only the parameters before nginx's unencoded `rd=http...` are parameters.
    let (params, _) = split_unencoded_rd(query);
    let only: Option<Vec<String>> = query_param(params, "provider").map(|list| {
        list.split(',')
            .map(|name| name.trim().to_string())
            .filter(|name| !name.is_empty())
            .collect()
    });
    let choices = candidates(&state, only.as_deref())?;
    match choices.as_slice() {
        [] => Err(AppError::BadRequest("no provider named".to_string())),
        [oidc] => begin(&state, oidc, &return_to),
        several => Ok(sign_in_page(&state, several, &return_to)),
    }
}

/// The client's address as the trusted proxy reported it: the last `X-Forwarded-For` entry (the
/// one the proxy added; earlier ones come from the client), else the peer itself.
fn client_address(req: &HttpRequest, config: &crate::config::Config) -> Option<String> {
    let peer = req.peer_addr().map(|peer| peer.ip());
    let trusted = config.trusted_proxies.require_trusted(peer).is_ok();
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|list| list.rsplit(',').next())
        .map(str::trim)
        .and_then(|last| last.parse::<std::net::IpAddr>().ok());
    match (trusted, forwarded) {
        (true, Some(ip)) => Some(ip.to_string()),
        _ => peer.map(|ip| ip.to_string()),
    }
}

fn failed(failure: &CallbackFailure) -> AppError {
    AppError::LoginFailed {
        message: failure.message(),
        reason: metrics::login_failure(failure),
        detail: failure.detail(),
        status: if failure.is_refusal() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        },
    }
}

fn not_completed(
    message: &'static str,
    reason: LoginOutcome,
    detail: impl Into<String>,
) -> AppError {
    AppError::LoginFailed {
        message,
        reason,
        detail: detail.into(),
        status: StatusCode::BAD_REQUEST,
    }
}

/// Revalidation is on, but this IdP gave no refresh token: said once per process, at the first
/// such login, since what the IdP issues is only known then.
fn warn_once_without_refresh_token() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "the IdP issued no refresh token at sign-in: such sessions are revalidated only \
             while their access token is valid (userinfo), then keep their login's claims. To \
             revalidate for the whole session, add `offline_access` to OIDC_SCOPES (some IdPs \
             also need the client allowed to use refresh tokens; see the README, Revalidation)"
        );
    });
}

pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let result = complete(&req, &state).await;
    state.metrics.login(match &result {
        Ok(_) => LoginOutcome::Success,
        Err(err) => login_outcome(err),
    });
    result
}

/// What a callback's error says about the login.
fn login_outcome(err: &AppError) -> LoginOutcome {
    match err {
        AppError::LoginFailed { reason, .. } => *reason,
        AppError::LoginRefused { .. } => LoginOutcome::Denied,
        AppError::ProviderUnavailable(_) => LoginOutcome::Provider,
        AppError::StoreUnavailable(_) => LoginOutcome::Store,
        // Not answered by a callback; counted as what would come closest.
        AppError::NotSignedIn { .. }
        | AppError::InvalidToken { .. }
        | AppError::BadRequest(_)
        | AppError::Internal(_) => LoginOutcome::State,
        AppError::Forbidden { .. } => LoginOutcome::Denied,
    }
}

async fn complete(req: &HttpRequest, state: &AppState) -> Result<HttpResponse, AppError> {
    let config = &state.config;
    let params = CallbackParams::parse(req.query_string());
    let state_param = params.state.as_deref().unwrap_or_default();
    let login = match state_param {
        "" => None,
        s => LoginState::open(&session_cookie::login_chunks(req, config, s), &state.keys),
    };
    let now = unix_now();
    // The provider whose callback this is: `/oauth2/callback/<name>`, or the bare path for the
    // one unnamed provider. Unknown names never reach a code exchange.
    let callback_provider = req.match_info().get("provider");
    let Some(oidc) = state.providers.get(callback_provider) else {
        return Err(not_completed(
            "The sign-in response came from an unexpected identity provider.",
            LoginOutcome::Issuer,
            format!(
                "a callback for provider {:?}, which is not configured",
                callback_provider.unwrap_or("")
            ),
        ));
    };
    let code = match login::verify_callback(
        &params,
        login.as_ref(),
        callback_provider,
        oidc.issuer(),
        now,
    ) {
        Ok(code) => code.to_string(),
        Err(CallbackFailure::NoLoginCookie) if state.store.login_used(state_param).await? => {
            return Err(failed(&CallbackFailure::AlreadyUsed));
        }
        Err(failure) => {
            // An IdP error ends the login for good: its state cannot be resumed.
            if let (CallbackFailure::IdpError { .. }, Some(login)) = (&failure, &login) {
                let ttl = login.expires_at.saturating_sub(now).max(1);
                state
                    .store
                    .claim_login(&login.state, std::time::Duration::from_secs(ttl))
                    .await?;
            }
            return Err(failed(&failure));
        }
    };
    let Some(login) = login else {
        return Err(failed(&CallbackFailure::NoLoginCookie));
    };
    // Single use, before the code is spent: a second callback with this state loses here.
    let ttl = std::time::Duration::from_secs(login.expires_at.saturating_sub(now).max(1));
    if !state.store.claim_login(&login.state, ttl).await? {
        return Err(failed(&CallbackFailure::AlreadyUsed));
    }

    let nonce = login.nonce.clone();
    let verified = oidc
        .complete_login(code, login.pkce_verifier, login.nonce)
        .await
        .map_err(|err| match err {
            OidcError::NotReady => AppError::ProviderUnavailable(err.to_string()),
            OidcError::Unreachable(_) => AppError::LoginFailed {
                message: "The identity provider could not be reached. Try again in a moment.",
                reason: LoginOutcome::IdpUnreachable,
                detail: err.to_string(),
                status: StatusCode::BAD_GATEWAY,
            },
            // Microsoft Graph is the IdP's part here: who is let in depends on the groups.
            OidcError::Groups(_) => AppError::LoginFailed {
                message: "Your group memberships could not be read from the identity provider. \
                          Try again in a moment.",
                reason: LoginOutcome::Groups,
                detail: err.to_string(),
                status: StatusCode::BAD_GATEWAY,
            },
            other => not_completed(
                "The sign-in could not be verified.",
                LoginOutcome::Token,
                other.to_string(),
            ),
        })?;
    let claims = &verified.claims;
    if config.log_claims {
        tracing::debug!(claims = %claims, "claims of a new login");
    }
    let client = login::Client::new(
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        client_address(req, config),
    );
    let now = unix_now();
    let provider = config
        .provider(callback_provider)
        .ok_or_else(|| AppError::BadRequest("the provider is not configured".to_string()))?;
    let mut session =
        login::session_from_claims(claims, config, provider, now, client).map_err(|refusal| {
            match refusal {
                SessionRefusal::Username(err) => AppError::LoginFailed {
                    message: err.page_message(),
                    reason: match err {
                        UsernameError::Missing { .. } => LoginOutcome::Claims,
                        UsernameError::EmailNotVerified => LoginOutcome::Denied,
                    },
                    detail: err.to_string(),
                    status: match err {
                        UsernameError::Missing { .. } => StatusCode::BAD_REQUEST,
                        // An email nobody proved is not an identity: refused, like a rule refuses.
                        UsernameError::EmailNotVerified => StatusCode::FORBIDDEN,
                    },
                },
                SessionRefusal::Rule { user, rule } => AppError::LoginRefused { user, rule },
            }
        })?;

    // Only what a later request uses is kept, sealed (see `login::kept_tokens`).
    let tokens = login::kept_tokens(config, &verified, &nonce, now);
    session.refreshable_until = tokens.refreshable_until();
    if config.session_refresh.interval > 0 && tokens.refresh_token.is_none() {
        warn_once_without_refresh_token();
    }
    let sealed = if tokens.is_empty() {
        None
    } else {
        let unsealed = |e: String| {
            not_completed(
                "The sign-in could not be stored.",
                LoginOutcome::Internal,
                e,
            )
        };
        let json = serde_json::to_vec(&tokens).map_err(|e| unsealed(e.to_string()))?;
        Some(
            state
                .keys
                .encrypt(&json)
                .map_err(|e| unsealed(e.to_string()))?,
        )
    };
    // A fresh id at every login: a session id known before login is worth nothing after it.
    if let Ok(old_id) = signed_in::session_id(req, config, &state.keys) {
        state.store.end_session(old_id).await?;
    }
    let id = crypto::random_id();
    state
        .store
        .put_session(&id, &session, sealed, config.session_lifetime)
        .await?;
    tracing::info!(
        user = %session.user,
        provider = session.provider.as_deref().unwrap_or(""),
        groups = session.groups.len(),
        "signed in"
    );
    let mut response = HttpResponse::Found();
    response
        .insert_header((header::LOCATION, login.return_to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header(pages::REFERRER_POLICY)
        .cookie(session_cookie::session_cookie(config, &state.keys, &id));
    for cookie in session_cookie::clear_login_cookies(config, &login.state) {
        response.cookie(cookie);
    }
    Ok(response.finish())
}

#[cfg(test)]
mod tests {
    use super::{
        login_outcome, requested_return, split_unencoded_rd, AppError, LoginOutcome, StatusCode,
    };
    use crate::policy::DenyReason;

    #[test]
    fn a_failed_callback_is_counted_by_its_reason() {
        let failed = AppError::LoginFailed {
            message: "m",
            reason: LoginOutcome::Replayed,
            detail: "d".into(),
            status: StatusCode::BAD_REQUEST,
        };
        let refused = AppError::LoginRefused {
            user: "alice".into(),
            rule: DenyReason::NotInRequiredGroup,
        };
        let cases = [
            (failed, LoginOutcome::Replayed),
            (refused, LoginOutcome::Denied),
            (
                AppError::ProviderUnavailable("x".into()),
                LoginOutcome::Provider,
            ),
            (AppError::StoreUnavailable("x".into()), LoginOutcome::Store),
        ];
        for (err, expected) in cases {
            assert_eq!(login_outcome(&err), expected, "{err:?}");
        }
    }

    #[test]
    fn rd_from_nginx_keeps_the_whole_original_query() {
        assert_eq!(
            requested_return("rd=https://app.example.com/a?x=1&y=2").as_deref(),
            Some("https://app.example.com/a?x=1&y=2")
        );
    }

    #[test]
    fn a_route_pinned_to_a_provider_puts_it_before_nginx_rd() {
        let query = "provider=corp&rd=https://app.example.com/a?provider=x&rd=y";
        assert_eq!(
            split_unencoded_rd(query),
            (
                "provider=corp",
                Some("https://app.example.com/a?provider=x&rd=y")
            )
        );
        assert_eq!(
            requested_return(query).as_deref(),
            Some("https://app.example.com/a?provider=x&rd=y")
        );
        // Encoded, rd is an ordinary parameter wherever it is.
        assert_eq!(
            split_unencoded_rd("rd=%2Fa&provider=corp"),
            ("rd=%2Fa&provider=corp", None)
        );
        // A value that merely contains "rd=http" is not the parameter.
        assert_eq!(
            split_unencoded_rd("provider=xrd=http://a"),
            ("provider=xrd=http://a", None)
        );
    }

    #[test]
    fn encoded_rd_is_decoded_once_and_other_parameters_ignored() {
        assert_eq!(
            requested_return("foo=1&rd=https%3A%2F%2Fapp.example.com%2Fa%3Fx%3D1%26y%3D2")
                .as_deref(),
            Some("https://app.example.com/a?x=1&y=2")
        );
        assert_eq!(requested_return("rd=%2Fpath").as_deref(), Some("/path"));
        assert_eq!(requested_return("other=1"), None);
        assert_eq!(requested_return(""), None);
    }
}
