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
use crate::oidc::OidcError;

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

/// Starts a login: seals it into this browser's login cookie (nothing is stored server-side)
/// and sends the browser to the provider.
pub fn begin(state: &AppState, return_to: &str) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_to(state, Some(return_to));
    let request = state
        .oidc
        .authorization_request()
        .map_err(|err| AppError::ProviderUnavailable(err.to_string()))?;
    let login = LoginState {
        state: request.state,
        pkce_verifier: request.pkce_verifier,
        nonce: request.nonce,
        return_to,
        expires_at: unix_now() + LOGIN_TTL_SECS,
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

/// The `rd` of `/oauth2/start`. nginx cannot URL-encode, so its sign-in redirect sends
/// `rd=http://host/path?a=1&b=2` unencoded as the only parameter: when the value after a
/// leading `rd=` starts with an unencoded `http://` or `https://`, the whole rest of the query
/// is the URL. Otherwise `rd` is an ordinary (encoded) form parameter. Either way the result
/// still has to pass the redirect allow-list.
pub fn requested_return(raw_query: &str) -> Option<String> {
    if let Some(rest) = raw_query.strip_prefix("rd=") {
        if rest.starts_with("http://") || rest.starts_with("https://") {
            return Some(rest.to_string());
        }
    }
    query_param(raw_query, "rd")
}

pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_to(&state, requested_return(req.query_string()).as_deref());
    begin(&state, &return_to)
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
        detail: failure.detail(),
        status: if failure.is_refusal() {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::BAD_REQUEST
        },
    }
}

fn not_completed(message: &'static str, detail: impl Into<String>) -> AppError {
    AppError::LoginFailed {
        message,
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
    let config = &state.config;
    let params = CallbackParams::parse(req.query_string());
    let state_param = params.state.as_deref().unwrap_or_default();
    let login = match state_param {
        "" => None,
        s => LoginState::open(&session_cookie::login_chunks(&req, config, s), &state.keys),
    };
    let now = unix_now();
    let code = match login::verify_callback(&params, login.as_ref(), state.oidc.issuer(), now) {
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
    let verified = state
        .oidc
        .complete_login(code, login.pkce_verifier, login.nonce)
        .await
        .map_err(|err| match err {
            OidcError::NotReady => AppError::ProviderUnavailable(err.to_string()),
            OidcError::Unreachable(_) => AppError::LoginFailed {
                message: "The identity provider could not be reached. Try again in a moment.",
                detail: err.to_string(),
                status: StatusCode::BAD_GATEWAY,
            },
            other => not_completed("The sign-in could not be verified.", other.to_string()),
        })?;
    let claims = &verified.claims;
    if config.log_claims {
        tracing::debug!(claims = %claims, "claims of a new login");
    }
    let client = login::Client::new(
        req.headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        client_address(&req, config),
    );
    let now = unix_now();
    let mut session =
        login::session_from_claims(claims, config, now, client).map_err(|refusal| {
            match refusal {
                SessionRefusal::Username(err) => AppError::LoginFailed {
                    message: err.page_message(),
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
        let json = serde_json::to_vec(&tokens)
            .map_err(|e| not_completed("The sign-in could not be stored.", e.to_string()))?;
        Some(
            state
                .keys
                .encrypt(&json)
                .map_err(|e| not_completed("The sign-in could not be stored.", e.to_string()))?,
        )
    };
    // A fresh id at every login: a session id known before login is worth nothing after it.
    if let Ok(old_id) = signed_in::session_id(&req, config, &state.keys) {
        state.store.end_session(old_id).await?;
    }
    let id = crypto::random_id();
    state
        .store
        .put_session(&id, &session, sealed, config.session_lifetime)
        .await?;
    tracing::info!(user = %session.user, groups = session.groups.len(), "signed in");
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
    use super::requested_return;

    #[test]
    fn rd_from_nginx_keeps_the_whole_original_query() {
        assert_eq!(
            requested_return("rd=https://app.example.com/a?x=1&y=2").as_deref(),
            Some("https://app.example.com/a?x=1&y=2")
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
