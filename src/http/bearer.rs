//! The bearer half of the auth check (`BEARER_TOKENS`): whether the request is an API client's,
//! and who its token stands for. The order of the I/O only: the token is read by
//! `bearer::credential`, verified by `Oidc::verify_access_token`, and its claims become an
//! identity in `bearer::identity_from_claims`. The store is never asked, and nothing is written.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::HttpRequest;
use serde_json::Value;

use super::error::AppError;
use super::session_cookie::{cookie_value, CookieValue};
use super::AppState;
use crate::bearer::{self, Cached, Credential};
use crate::config::Config;
use crate::oidc::{AccessTokenError, RefusedToken, TokenRefusal};

/// The bearer token the check is to use: with `BEARER_TOKENS`, when the request carries no
/// session cookie (the cookie wins: a browser's session is checked as always) and its
/// `Authorization` is `Bearer <token>`. `None`: check the session as without bearer tokens.
pub fn offered<'r>(req: &'r HttpRequest, config: &Config) -> Result<Option<&'r str>, AppError> {
    if config.bearer.is_none() {
        return Ok(None);
    }
    if !matches!(cookie_value(req, &config.cookie_name), CookieValue::Missing) {
        return Ok(None);
    }
    let values = req
        .headers()
        .get_all(header::AUTHORIZATION)
        .map(|value| value.as_bytes());
    match bearer::credential(values) {
        Credential::None => Ok(None),
        Credential::Token(token) => Ok(Some(token)),
        Credential::Malformed => Err(refused(RefusedToken::new(
            TokenRefusal::NotJwt,
            "the Authorization header is not one Bearer token",
        ))),
    }
}

fn refused(refused: RefusedToken) -> AppError {
    AppError::InvalidToken { refused }
}

/// Who `token` stands for at `now`: from the cache of tokens verified in the last minute, or
/// verified now against the keys of the provider that issued it (by its unverified `iss`, checked
/// again by the verification).
pub async fn identify(state: &AppState, token: &str, now: u64) -> Result<Arc<Cached>, AppError> {
    if let Some(cached) = state.bearer_tokens.get(token, now) {
        return Ok(cached);
    }
    let Some(settings) = &state.config.bearer else {
        // `offered` gives no token without them.
        return Err(refused(RefusedToken::new(
            TokenRefusal::NotJwt,
            "bearer tokens are off",
        )));
    };
    // Before a provider is chosen by the token's issuer: an opaque token has none to read.
    if token.split('.').count() != 3 {
        return Err(refused(RefusedToken::new(
            TokenRefusal::NotJwt,
            "not a signed JWT (an opaque or encrypted token?)",
        )));
    }
    let oidc = state.providers.for_token(token).ok_or_else(|| {
        refused(RefusedToken::new(
            TokenRefusal::Issuer,
            "no configured provider has the token's issuer",
        ))
    })?;
    let claims = oidc
        .verify_access_token(token, &settings.audiences, now)
        .await
        .map_err(|err| match err {
            AccessTokenError::NotReady => AppError::ProviderUnavailable(
                "the provider's keys are not loaded yet: bearer tokens cannot be checked"
                    .to_string(),
            ),
            AccessTokenError::Refused(why) => refused(why),
        })?;
    let provider = state.config.provider(oidc.name()).ok_or_else(|| {
        refused(RefusedToken::new(
            TokenRefusal::Issuer,
            "the token's provider is not configured",
        ))
    })?;
    let identity = bearer::identity_from_claims(
        &Value::Object(claims),
        provider,
        state.config.allow_unverified_email,
    )
    .map_err(refused)?;
    Ok(state.bearer_tokens.insert(token, identity, now))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;
    use crate::config;

    fn offered_by(
        env: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<Option<String>, String> {
        let config = config::for_tests(env);
        let mut req = TestRequest::default();
        for (name, value) in headers {
            req = req.append_header((*name, *value));
        }
        let req = req.to_http_request();
        match offered(&req, &config) {
            Ok(token) => Ok(token.map(str::to_owned)),
            Err(AppError::InvalidToken { refused }) => Err(refused.kind.as_str().to_string()),
            Err(other) => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_token_is_used_only_with_bearer_tokens_on_and_without_the_session_cookie() {
        let on: &[(&str, &str)] = &[
            ("BEARER_TOKENS", "true"),
            ("BEARER_AUDIENCES", "https://api.example.com"),
        ];
        let bearer = ("authorization", "Bearer a.b.c");
        type Pairs<'a> = &'a [(&'a str, &'a str)];
        type Offered<'a> = Result<Option<&'a str>, &'a str>;
        let cases: &[(Pairs<'_>, Pairs<'_>, Offered<'_>)] = &[
            // Off: the header changes nothing, even a malformed one.
            (&[], &[bearer], Ok(None)),
            (&[], &[("authorization", "Bearer")], Ok(None)),
            (on, &[bearer], Ok(Some("a.b.c"))),
            (on, &[], Ok(None)),
            (on, &[("authorization", "Basic YTpi")], Ok(None)),
            (on, &[("authorization", "Bearer")], Err("not_jwt")),
            // The session cookie wins, whatever it is worth.
            (on, &[bearer, ("cookie", "_portcullis=x")], Ok(None)),
            (on, &[bearer, ("cookie", "a=1; _portcullis=")], Ok(None)),
            // Another cookie is no session cookie.
            (
                on,
                &[bearer, ("cookie", "_portcullis_login_abc=1; app=2")],
                Ok(Some("a.b.c")),
            ),
        ];
        for (env, headers, expected) in cases {
            let expected = expected
                .map(|token| token.map(str::to_owned))
                .map_err(str::to_owned);
            assert_eq!(offered_by(env, headers), expected, "{env:?} {headers:?}");
        }
    }
}
