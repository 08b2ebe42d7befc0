//! Revalidation at the provider: a session's claims read again, with its refresh token (the
//! refresh grant, through `openidconnect`) or, without one, with its access token at userinfo
//! while that token is valid. The outcome is classified for `lifecycle::apply_refresh`: the
//! provider refused (the user is signed out), could not be asked (try again), or new claims.

use base64::Engine;
use openidconnect::core::CoreErrorResponseType;
use openidconnect::{OAuth2TokenResponse, RefreshToken, RequestTokenError};
use serde_json::{Map, Value};

use super::id_token::{self, NonceRule, VerifyFailure};
use super::userinfo::{self, UserinfoError};
use super::{describe_error_response, describe_token_error, error_chain, Oidc};
use crate::lifecycle::{RefreshOutcome, Tokens};

/// An access token this close to its expiry is not used: it could expire on the way, and a
/// userinfo 401 would then read as a refusal.
const ACCESS_TOKEN_MARGIN_SECS: u64 = 10;

/// What a refresh leaves: the outcome, and the tokens to keep from now on (rotated refresh
/// token, new access and ID tokens), which equal the old ones when nothing new came.
pub struct Refreshed {
    pub outcome: RefreshOutcome,
    pub tokens: Tokens,
}

impl Oidc {
    /// Reads the claims of the session of `subject` (the IdP's `sub`; empty for a first-format
    /// session) again at `now`, with `tokens`. Never fails: every failure is an outcome. For
    /// an Entra provider, the groups of an overage marker are read from Graph again too.
    pub async fn refresh(&self, tokens: &Tokens, subject: &str, now: u64) -> Refreshed {
        let mut refreshed = self.refresh_claims(tokens, subject, now).await;
        if let RefreshOutcome::Claims(Value::Object(claims)) = &mut refreshed.outcome {
            let same_subject =
                subject.is_empty() || claims.get("sub").and_then(Value::as_str) == Some(subject);
            // Another subject ends the session anyway: Graph is not asked about them.
            if same_subject {
                let access_token = refreshed.tokens.access_token.clone().unwrap_or_default();
                if let Err(err) = self.entra_groups(claims, &access_token).await {
                    refreshed.outcome = graph_failure(&err);
                }
            }
        }
        refreshed
    }

    async fn refresh_claims(&self, tokens: &Tokens, subject: &str, now: u64) -> Refreshed {
        let outcome_only = |outcome| Refreshed {
            outcome,
            tokens: tokens.clone(),
        };
        match (&tokens.refresh_token, &tokens.access_token) {
            (Some(refresh_token), _) => {
                self.refresh_grant(tokens, refresh_token, subject, now)
                    .await
            }
            (None, Some(access_token))
                if tokens
                    .access_token_expires_at
                    .is_some_and(|at| at > now.saturating_add(ACCESS_TOKEN_MARGIN_SECS)) =>
            {
                let base = stored_claims(tokens);
                outcome_only(self.read_userinfo(base, access_token, subject).await)
            }
            // Nothing usable: not a refusal, and nothing the IdP could say either; the hot
            // path stops asking once `refreshable_until` is past.
            _ => outcome_only(RefreshOutcome::Unreachable(
                "no refresh token and no valid access token".to_string(),
            )),
        }
    }

    async fn refresh_grant(
        &self,
        tokens: &Tokens,
        refresh_token: &str,
        subject: &str,
        now: u64,
    ) -> Refreshed {
        let unchanged = |outcome| Refreshed {
            outcome,
            tokens: tokens.clone(),
        };
        let Some(provider) = self.current() else {
            return unchanged(RefreshOutcome::Unreachable(
                "the provider's discovery document is not loaded".to_string(),
            ));
        };
        let refresh_token = RefreshToken::new(refresh_token.to_string());
        let mut request = match provider.client.exchange_refresh_token(&refresh_token) {
            Ok(request) => request,
            Err(err) => return unchanged(RefreshOutcome::Unreachable(error_chain(&err))),
        };
        // private_key_jwt: a fresh assertion for this request. One that cannot be made says
        // nothing about the user: try again, never sign out.
        match self.client_assertion(&provider, now) {
            Ok(params) => {
                for (name, value) in params {
                    request = request.add_extra_param(name, value);
                }
            }
            Err(err) => return unchanged(RefreshOutcome::Unreachable(err)),
        }
        let response = match request.request_async(&self.http).await {
            Ok(response) => response,
            Err(err) => return unchanged(classify_token_error(&err)),
        };
        let id_token = response.extra_fields().id_token.clone();
        let new_tokens = Tokens {
            // The newest verified ID token: the logout's hint, and the base of later claims.
            id_token: id_token.clone().or_else(|| tokens.id_token.clone()),
            // RFC 6749 6: a new refresh token replaces the old; without one, the old stays.
            refresh_token: response
                .refresh_token()
                .map(|t| t.secret().clone())
                .or_else(|| tokens.refresh_token.clone()),
            access_token: Some(response.access_token().secret().clone()),
            access_token_expires_at: response
                .expires_in()
                .map(|lifetime| now.saturating_add(lifetime.as_secs())),
            nonce: tokens.nonce.clone(),
        };
        let base = match &id_token {
            Some(token) => match self.verify_refreshed(token, tokens, now).await {
                Ok(claims) => claims,
                // A provider that answers the grant with a token we cannot trust: fail closed.
                Err(reason) => {
                    return unchanged(RefreshOutcome::Refused(format!(
                        "the refreshed ID token was rejected: {reason}"
                    )))
                }
            },
            None => stored_claims(tokens),
        };
        // Another subject ends the session in `apply_refresh`; userinfo is not asked about it.
        let token_subject = base.get("sub").and_then(Value::as_str).unwrap_or_default();
        if id_token.is_some() && !subject.is_empty() && token_subject != subject {
            return Refreshed {
                outcome: RefreshOutcome::Claims(Value::Object(base)),
                tokens: new_tokens,
            };
        }
        let access_token = response.access_token().secret().clone();
        let outcome = self.read_userinfo(base, &access_token, subject).await;
        Refreshed {
            outcome,
            tokens: new_tokens,
        }
    }

    /// A refreshed ID token, verified like the login's (signature, `iss`, `aud`, `exp`, `iat`)
    /// but with OIDC Core 12.2's nonce rule: absent, or the login's.
    async fn verify_refreshed(
        &self,
        token: &str,
        tokens: &Tokens,
        now: u64,
    ) -> Result<Map<String, Value>, String> {
        let provider = self.current().ok_or("the provider is not loaded")?;
        let expected = id_token::Expected {
            issuer: &self.issuer,
            client_id: &self.client_id,
            nonce: NonceRule::AbsentOrEqual(tokens.nonce.as_deref()),
            now,
        };
        let verified = match id_token::verify(token, &provider.keys, &expected) {
            Err(VerifyFailure::UnknownKey) => {
                let provider = self
                    .refetch_jwks(&provider)
                    .await
                    .map_err(|err| err.to_string())?;
                id_token::verify(token, &provider.keys, &expected)
            }
            other => other,
        };
        verified.map_err(|failure| failure.to_string())
    }

    /// Userinfo merged over `base` (the refreshed or the stored ID token's claims), as at
    /// login; without a userinfo endpoint, `base` alone.
    async fn read_userinfo(
        &self,
        mut base: Map<String, Value>,
        access_token: &str,
        subject: &str,
    ) -> RefreshOutcome {
        let Some(provider) = self.current() else {
            return RefreshOutcome::Unreachable(
                "the provider's discovery document is not loaded".to_string(),
            );
        };
        let subject = match base.get("sub").and_then(Value::as_str) {
            Some(sub) if subject.is_empty() => sub.to_string(),
            _ => subject.to_string(),
        };
        let Some(endpoint) = provider.metadata.userinfo_endpoint() else {
            if base.is_empty() {
                return RefreshOutcome::Unreachable(
                    "the provider sent no ID token and has no userinfo endpoint".to_string(),
                );
            }
            return RefreshOutcome::Claims(Value::Object(base));
        };
        match userinfo::fetch(&self.http, endpoint.url(), access_token, &subject).await {
            Ok(userinfo) => {
                // Protocol claims come only from a signed token; with none, `sub` is the one
                // userinfo was just checked to be about.
                base.entry("sub").or_insert(Value::String(subject));
                crate::claims::merge_userinfo(&mut base, &userinfo);
                RefreshOutcome::Claims(Value::Object(base))
            }
            Err(UserinfoError::Refused(why)) => RefreshOutcome::Refused(format!("userinfo: {why}")),
            Err(UserinfoError::Unreachable(why) | UserinfoError::Invalid(why)) => {
                RefreshOutcome::Unreachable(format!("userinfo: {why}"))
            }
        }
    }
}

/// A failed refresh grant: `invalid_grant` is the IdP refusing this user's grant (disabled,
/// revoked, its IdP session ended); anything else (network, timeouts, a 5xx error page that
/// does not parse, or an error about the client rather than the user, such as
/// `invalid_client`) does not say the user is signed out: try again.
fn classify_token_error<RE: std::error::Error>(
    err: &RequestTokenError<RE, openidconnect::StandardErrorResponse<CoreErrorResponseType>>,
) -> RefreshOutcome {
    match err {
        RequestTokenError::ServerResponse(answer)
            if *answer.error() == CoreErrorResponseType::InvalidGrant =>
        {
            RefreshOutcome::Refused(describe_error_response(answer))
        }
        other => RefreshOutcome::Unreachable(describe_token_error(other)),
    }
}

/// A failed read of the groups from Graph at revalidation: tried again, never a sign-out. The
/// IdP has just honoured this session (its refresh grant or its access token at userinfo), so
/// the user is not signed out there; a Graph that refuses the fresh access token (401, 403)
/// says the token lacks Graph's permission (consent withdrawn, permission removed), which is
/// the operator's to fix, not each user's. The session keeps its last groups, and once
/// `SESSION_REFRESH_GRACE` has passed without a refresh it no longer counts as signed in.
fn graph_failure(err: &super::entra::GraphError) -> RefreshOutcome {
    if let super::entra::GraphError::Refused(_) = err {
        tracing::warn!(
            detail = %err,
            "Microsoft Graph refused a revalidation's access token; check the app's Graph \
             permission (GroupMember.Read.All) and its admin consent"
        );
    }
    RefreshOutcome::Unreachable(err.to_string())
}

/// The claims of the stored ID token, the base userinfo is merged over when a refresh brings
/// no new one. It was verified when it was stored, and has been sealed since, so its payload is
/// read without checking its signature or expiry again.
fn stored_claims(tokens: &Tokens) -> Map<String, Value> {
    tokens
        .id_token
        .as_deref()
        .and_then(|token| token.split('.').nth(1))
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice::<Map<String, Value>>(&bytes).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_invalid_grant_is_a_refusal() {
        use openidconnect::StandardErrorResponse;
        type Error =
            RequestTokenError<std::io::Error, StandardErrorResponse<CoreErrorResponseType>>;
        let answer = |code: CoreErrorResponseType, description: Option<&str>| {
            Error::ServerResponse(StandardErrorResponse::new(
                code,
                description.map(str::to_string),
                None,
            ))
        };
        let cases = [
            (
                answer(
                    CoreErrorResponseType::InvalidGrant,
                    Some("grant request is invalid"),
                ),
                RefreshOutcome::Refused("invalid_grant: grant request is invalid".to_string()),
            ),
            (
                answer(CoreErrorResponseType::InvalidClient, None),
                RefreshOutcome::Unreachable("invalid_client".to_string()),
            ),
            (
                answer(
                    CoreErrorResponseType::Extension("temporarily_unavailable".into()),
                    None,
                ),
                RefreshOutcome::Unreachable("temporarily_unavailable".to_string()),
            ),
            (
                Error::Request(std::io::Error::other("connection refused")),
                RefreshOutcome::Unreachable("Request failed: connection refused".to_string()),
            ),
            (
                Error::Other("unexpected response".to_string()),
                RefreshOutcome::Unreachable("Other error: unexpected response".to_string()),
            ),
        ];
        for (err, expected) in cases {
            let outcome = classify_token_error(&err);
            match (&outcome, &expected) {
                (RefreshOutcome::Refused(a), RefreshOutcome::Refused(b))
                | (RefreshOutcome::Unreachable(a), RefreshOutcome::Unreachable(b)) => {
                    assert!(
                        a.starts_with(b.split(':').next().unwrap_or(b)),
                        "{err:?}: {outcome:?}"
                    )
                }
                _ => panic!("{err:?}: expected {expected:?}, got {outcome:?}"),
            }
        }
    }

    #[test]
    fn a_graph_that_fails_at_revalidation_is_tried_again_never_a_sign_out() {
        use crate::oidc::entra::GraphError;
        for err in [
            GraphError::Refused("HTTP 401: InvalidAuthenticationToken".into()),
            GraphError::Refused("HTTP 403: Authorization_RequestDenied".into()),
            GraphError::Unreachable("request failed: connection refused".into()),
            GraphError::Invalid("HTTP 404".into()),
        ] {
            match graph_failure(&err) {
                RefreshOutcome::Unreachable(text) => {
                    assert!(text.contains("Microsoft Graph"), "{text}")
                }
                other => panic!("{err:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_stored_id_tokens_claims_are_the_base_of_a_refresh_without_a_new_one() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(json!({"sub": "alice", "groups": ["ops"]}).to_string());
        let with = |id_token: Option<String>| Tokens {
            id_token,
            ..Tokens::default()
        };
        let claims = stored_claims(&with(Some(format!("e30.{payload}.sig"))));
        assert_eq!(
            Value::Object(claims),
            json!({"sub": "alice", "groups": ["ops"]})
        );
        for broken in [
            None,
            Some("e30".to_string()),
            Some("e30.!!!.sig".to_string()),
        ] {
            assert!(stored_claims(&with(broken)).is_empty());
        }
    }
}
