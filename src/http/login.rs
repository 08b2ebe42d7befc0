//! `/oauth2/start` and `/oauth2/callback`: the authorization code flow with PKCE.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use subtle::ConstantTimeEq;

use super::{session_cookie, unix_now, AppState};
use crate::crypto;
use crate::error::AppError;
use crate::oidc::OidcError;
use crate::policy::{self, Decision, Identity, RouteRules};
use crate::session::{LoginState, Session};

/// How long a started login may take before its `state` expires.
pub const LOGIN_TTL: Duration = Duration::from_secs(600);

/// Where a browser may be sent: the checked `rd`, or our own root.
pub fn safe_return_to(state: &AppState, candidate: Option<&str>) -> String {
    let base = &state.config.redirect_url;
    candidate
        .and_then(|rd| state.config.allowed_redirects.check(rd, base))
        .map(|url| url.to_string())
        .unwrap_or_else(|| {
            let mut root = base.clone();
            root.set_path("/");
            root.to_string()
        })
}

/// Starts a login: remembers `state` server-side, binds it to this browser with a cookie, and
/// sends the browser to the provider.
pub async fn begin(state: &AppState, return_to: &str) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_to(state, Some(return_to));
    let request = state
        .oidc
        .authorization_request()
        .map_err(|err| match err {
            OidcError::NotReady => AppError::ProviderUnavailable(err.to_string()),
            other => AppError::ProviderUnavailable(other.to_string()),
        })?;
    let binding = crypto::random_id();
    let login = LoginState {
        browser_binding: crypto::digest(&binding),
        pkce_verifier: request.pkce_verifier,
        nonce: request.nonce,
        return_to,
    };
    state
        .store
        .put_login(&request.state, &login, LOGIN_TTL)
        .await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, request.url.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session_cookie::login_cookie(
            &state.config,
            &request.state,
            binding,
        ))
        .finish())
}

fn query_params(req: &HttpRequest) -> HashMap<String, String> {
    // First value wins; a repeated parameter cannot override an earlier one.
    let mut params = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(req.query_string().as_bytes()) {
        params
            .entry(key.into_owned())
            .or_insert_with(|| value.into_owned());
    }
    params
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
    url::form_urlencoded::parse(raw_query.as_bytes())
        .find(|(key, _)| key == "rd")
        .map(|(_, value)| value.into_owned())
}

pub async fn start(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let return_to = safe_return_to(&state, requested_return(req.query_string()).as_deref());
    begin(&state, &return_to).await
}

fn failed(message: &'static str, detail: impl Into<String>) -> AppError {
    AppError::LoginFailed {
        message,
        detail: detail.into(),
        status: StatusCode::BAD_REQUEST,
    }
}

pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AppError> {
    let params = query_params(&req);
    let state_param = params.get("state").cloned().unwrap_or_default();

    if let Some(error) = params.get("error") {
        // Consume the state so the login cannot be resumed; the outcome does not matter here.
        if !state_param.is_empty() {
            let _ = state.store.take_login(&state_param).await;
        }
        let description = params.get("error_description").cloned().unwrap_or_default();
        let detail = format!("the identity provider answered {error:?}: {description:?}");
        return Err(if error == "access_denied" {
            AppError::LoginFailed {
                message: "The identity provider did not allow this sign-in.",
                detail,
                status: StatusCode::FORBIDDEN,
            }
        } else {
            failed("The identity provider reported an error.", detail)
        });
    }
    if state_param.is_empty() {
        return Err(failed(
            "This sign-in link is incomplete.",
            "callback without state",
        ));
    }
    let login = state.store.take_login(&state_param).await?.ok_or_else(|| {
        failed(
            "This sign-in has expired or was already used.",
            "unknown, expired or replayed state",
        )
    })?;
    let cookie_name = session_cookie::login_cookie_name(&state.config, &state_param);
    let binding_matches = req
        .cookie(&cookie_name)
        .map(|c| crypto::digest(c.value()))
        .is_some_and(|digest| {
            bool::from(digest.as_bytes().ct_eq(login.browser_binding.as_bytes()))
        });
    if !binding_matches {
        return Err(failed(
            "This sign-in was started in another browser or its cookie was lost.",
            "login cookie missing or does not match the state",
        ));
    }
    // RFC 9207: when the provider names itself in the response, it must be ours.
    if let Some(iss) = params.get("iss") {
        if iss != state.oidc.issuer() {
            return Err(failed(
                "The sign-in response came from an unexpected identity provider.",
                format!("authorization response iss {iss:?} is not the configured issuer"),
            ));
        }
    }
    let code = params
        .get("code")
        .cloned()
        .ok_or_else(|| failed("This sign-in link is incomplete.", "callback without code"))?;

    let verified = state
        .oidc
        .complete_login(code, login.pkce_verifier, login.nonce)
        .await
        .map_err(|err| match err {
            OidcError::NotReady => AppError::ProviderUnavailable(err.to_string()),
            other => failed("The sign-in could not be verified.", other.to_string()),
        })?;
    let claims = &verified.claims;
    if state.config.log_claims {
        tracing::debug!(claims = %claims, "claims of a new login");
    }
    let config = &state.config;
    let user = crate::claims::string_claim(claims, &config.username_claim).ok_or_else(|| {
        failed(
            "The identity provider did not say who you are.",
            format!("the claim {:?} is missing", config.username_claim),
        )
    })?;
    let session_now = unix_now();
    let session = Session {
        email: crate::claims::string_claim(claims, "email"),
        email_verified: crate::claims::bool_claim(claims, "email_verified"),
        preferred_username: crate::claims::string_claim(claims, "preferred_username"),
        groups: crate::claims::groups(claims, &config.groups_claim),
        created_at: session_now,
        expires_at: session_now + config.session_lifetime.as_secs(),
        user,
    };
    let idp_groups: Vec<&str> = session.groups.iter().map(String::as_str).collect();
    let identity = Identity {
        username: &session.user,
        email: session.email.as_deref(),
        email_verified: session.email_verified,
        idp_groups: &idp_groups,
    };
    if let Decision::Deny(reason) = policy::decide(&config.rules, &RouteRules::default(), &identity)
    {
        return Err(AppError::LoginRefused {
            user: session.user.clone(),
            rule: reason.as_str(),
        });
    }

    // Only what a later request uses is kept: the ID token, as the `id_token_hint` of an
    // IdP logout, and only when IdP logout is configured. Refresh and access tokens are never
    // used, so they are never stored (less to leak, ~1.3 KB less per session).
    let sealed = match &config.post_logout_redirect_url {
        Some(_) => {
            let tokens = serde_json::json!({ "id_token": verified.id_token });
            Some(
                state
                    .keys
                    .encrypt(tokens.to_string().as_bytes())
                    .map_err(|e| failed("The sign-in could not be stored.", e.to_string()))?,
            )
        }
        None => None,
    };
    // A fresh id at every login: a session id known before login is worth nothing after it.
    if let Ok(old_id) = session_cookie::session_id(&req, config, &state.keys) {
        state.store.delete_session(old_id).await?;
    }
    let id = crypto::random_id();
    state
        .store
        .put_session(&id, &session, sealed, config.session_lifetime)
        .await?;
    tracing::info!(user = %session.user, groups = session.groups.len(), "signed in");
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, login.return_to))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(session_cookie::session_cookie(config, &state.keys, &id))
        .cookie(session_cookie::clear_login_cookie(config, &state_param))
        .finish())
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
