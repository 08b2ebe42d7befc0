//! `POST /oauth2/backchannel-logout`: the identity provider ends sessions directly (OpenID
//! Connect Back-Channel Logout 1.0).
//!
//! The provider calls this itself, not through the browser: there is no cookie, so nothing to
//! forge across sites, and no forwarded header is read, so `TRUSTED_PROXIES` does not apply.
//! What authenticates the request is the logout token alone: signed by the provider, for this
//! client, fresh, and used once (its `jti` is claimed in the store, shared by every replica).
//!
//! Answers (section 2.8): 200 with an empty body when the token is valid, however many sessions
//! it ended; 400 `{"error": "invalid_request", ...}` for anything else, ending nothing; 503 when
//! the store or the provider's keys are not available. Every answer is `no-store`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{unix_now, AppState};
use crate::metrics::{BackchannelOutcome, EndedBy};
use crate::oidc::{LogoutToken, LogoutTokenError, MAX_TOKEN_BYTES};
use crate::session::Selection;

/// The body holds `logout_token=<JWT>` and maybe a few other parameters; a JWT is base64url and
/// dots, which form encoding leaves as they are.
const MAX_BODY_BYTES: usize = MAX_TOKEN_BYTES + 1024;

const FORM_TYPE: &str = "application/x-www-form-urlencoded";

/// The `logout_token` of a request body (section 2.5: a form POST). Pure. The parameter must be
/// there exactly once: with two, which one counts would be a guess.
pub fn logout_token_from_form(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<String, &'static str> {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|media| media.eq_ignore_ascii_case(FORM_TYPE)) {
        return Err("the body must be application/x-www-form-urlencoded");
    }
    let mut tokens = url::form_urlencoded::parse(body)
        .filter(|(name, _)| name == "logout_token")
        .map(|(_, value)| value);
    let token = match (tokens.next(), tokens.next()) {
        (None, _) => return Err("the request has no logout_token"),
        (Some(_), Some(_)) => return Err("logout_token is given more than once"),
        (Some(token), None) => token,
    };
    if token.is_empty() {
        return Err("logout_token is empty");
    }
    if token.len() > MAX_TOKEN_BYTES {
        return Err("logout_token is too long");
    }
    Ok(token.into_owned())
}

/// Which sessions a verified token ends. With a `sid`, only the sessions of that IdP session,
/// even when `sub` is there too (section 2.4: the sid names the session), and even when no
/// session has that sid: ending all of the subject's sessions instead would sign the user out
/// of every browser when they left one. Without a `sid`, every session of the subject.
pub fn selection(token: &LogoutToken) -> Option<Selection<'_>> {
    match (&token.sid, &token.sub) {
        (Some(sid), _) => Some(Selection::IdpSession(sid)),
        (None, Some(sub)) => Some(Selection::Subject(sub)),
        (None, None) => None,
    }
}

pub async fn logout(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let (response, outcome) = answer(&state, &req, payload).await;
    state.metrics.backchannel_logout(outcome);
    response
}

async fn answer(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> (HttpResponse, BackchannelOutcome) {
    let invalid = |reason: &str| (invalid_request(reason), BackchannelOutcome::Invalid);
    let body = match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(body)) => body,
        Ok(Err(_)) => return invalid("the request body could not be read"),
        Err(_) => return invalid("the request body is too large"),
    };
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok());
    let token = match logout_token_from_form(content_type, &body) {
        Ok(token) => token,
        Err(reason) => return invalid(reason),
    };
    // The provider whose issuer the token names; verifying with its keys checks `iss` again.
    let Some(oidc) = state.providers.for_token(&token) else {
        return invalid("the token's issuer is not a configured provider");
    };
    let verified = match oidc.verify_logout_token(&token, unix_now()).await {
        Ok(verified) => verified,
        Err(LogoutTokenError::Invalid(reason)) => return invalid(&reason),
        Err(LogoutTokenError::NotReady) => {
            tracing::warn!("back-channel logout before the provider's keys are loaded");
            let answer = unavailable("the identity provider's keys are not loaded yet");
            return (answer, BackchannelOutcome::NotReady);
        }
    };
    let Some(which) = selection(&verified) else {
        // check_claims refuses such a token already; said again rather than assumed.
        return invalid("the token has neither sid nor sub");
    };
    // Claimed before anything ends, so that a replay can never end sessions signed in since.
    // The price: if ending then fails (503), this token cannot be retried; the provider has to
    // send a new one (oidc-provider never retries; others send a fresh token per attempt).
    match state
        .store
        .claim_logout_token(&verified.jti, verified.replay_window)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            let answer = invalid_request("this logout token was already used (jti replayed)");
            return (answer, BackchannelOutcome::Replayed);
        }
        Err(err) => return (store_unavailable(&err), BackchannelOutcome::Store),
    }
    match state.store.end_provider_sessions(which, oidc.name()).await {
        Ok(ended) => {
            tracing::info!(
                provider = oidc.name().unwrap_or(""),
                sid = verified.sid.as_deref(),
                sub = verified.sub.as_deref(),
                by = if verified.sid.is_some() { "sid" } else { "sub" },
                ended,
                "back-channel logout"
            );
            state.metrics.sessions_ended(EndedBy::Backchannel, ended);
            (
                no_store(HttpResponse::Ok().finish()),
                BackchannelOutcome::Success,
            )
        }
        Err(err) => (store_unavailable(&err), BackchannelOutcome::Store),
    }
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn error_json(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    no_store(HttpResponse::build(status).json(serde_json::json!({
        "error": error,
        "error_description": description,
    })))
}

/// Section 2.8: 400, with the reason (never the token, which is not logged either).
fn invalid_request(reason: &str) -> HttpResponse {
    tracing::warn!(reason, "back-channel logout refused");
    error_json(StatusCode::BAD_REQUEST, "invalid_request", reason)
}

fn unavailable(description: &str) -> HttpResponse {
    error_json(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        description,
    )
}

fn store_unavailable(err: &crate::session::StoreError) -> HttpResponse {
    tracing::error!(detail = %err, "back-channel logout: session store unavailable");
    unavailable("session store unavailable, try again shortly")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_token_comes_from_a_form_body_exactly_once() {
        let form = Some(FORM_TYPE);
        let long = format!("logout_token={}", "a".repeat(MAX_TOKEN_BYTES + 1));
        let cases: &[(Option<&str>, &str, Result<&str, &str>)] = &[
            (form, "logout_token=a.b.c", Ok("a.b.c")),
            (
                Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
                "logout_token=a.b.c",
                Ok("a.b.c"),
            ),
            (form, "state=x&logout_token=a.b.c&z=1", Ok("a.b.c")),
            (form, "logout_token=a%2Eb.c", Ok("a.b.c")),
            (
                None,
                "logout_token=a.b.c",
                Err("must be application/x-www-form"),
            ),
            (
                Some("application/json"),
                r#"{"logout_token":"a.b.c"}"#,
                Err("must be application/x-www-form"),
            ),
            (
                Some("multipart/form-data; boundary=x"),
                "logout_token=a.b.c",
                Err("must be application/x-www-form"),
            ),
            (form, "", Err("no logout_token")),
            (form, "token=a.b.c", Err("no logout_token")),
            (form, "logout_token", Err("logout_token is empty")),
            (form, "logout_token=", Err("logout_token is empty")),
            (
                form,
                "logout_token=a.b.c&logout_token=d.e.f",
                Err("more than once"),
            ),
            (form, &long, Err("too long")),
        ];
        for (content_type, body, expected) in cases {
            let got = logout_token_from_form(*content_type, body.as_bytes());
            match expected {
                Ok(token) => assert_eq!(got.as_deref(), Ok(*token), "{body}"),
                Err(part) => {
                    let reason = got.expect_err(body);
                    assert!(reason.contains(part), "{body}: {reason}");
                }
            }
        }
    }

    #[test]
    fn the_sid_names_the_sessions_and_only_without_it_the_subject_does() {
        let token = |sid: Option<&str>, sub: Option<&str>| LogoutToken {
            sid: sid.map(str::to_owned),
            sub: sub.map(str::to_owned),
            jti: "j".into(),
            replay_window: Duration::from_secs(1),
        };
        let both = token(Some("s-1"), Some("alice"));
        assert_eq!(selection(&both), Some(Selection::IdpSession("s-1")));
        let sid_only = token(Some("s-1"), None);
        assert_eq!(selection(&sid_only), Some(Selection::IdpSession("s-1")));
        let sub_only = token(None, Some("alice"));
        assert_eq!(selection(&sub_only), Some(Selection::Subject("alice")));
        assert_eq!(selection(&token(None, None)), None);
    }
}
