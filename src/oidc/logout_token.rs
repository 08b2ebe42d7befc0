//! Back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0, sections 2.4 and 2.6):
//! the signed JWT an identity provider POSTs to `/oauth2/backchannel-logout` when a user's
//! session at the provider ends.
//!
//! The signature is checked exactly as an ID token's (`id_token::verify_signature`: the same
//! asymmetric allow-list, never `none`, the same key choice and JWKS refetch on an unknown
//! `kid`); the claims are checked here, in one pure function with the clock as a parameter.
//!
//! `typ` is not checked: the spec only recommends `logout+jwt` to providers, and older ones send
//! `JWT` or nothing. What tells a logout token from an ID token of this client is what the spec
//! makes normative: the `events` member, and no `nonce` (every login of portcullis sends one, so
//! every ID token it accepts carries one).

use std::time::Duration;

use serde_json::{Map, Value};

use super::id_token::{self, SigningKeys, VerifyFailure, MAX_CLOCK_SKEW};

/// The member of `events` that makes a JWT a logout token.
pub(crate) const BACKCHANNEL_LOGOUT_EVENT: &str =
    "http://schemas.openid.net/event/backchannel-logout";

/// A logout token is accepted at most this long after its `iat` (plus [`MAX_CLOCK_SKEW`]),
/// whatever its `exp` says. Providers send them at once and make them short-lived (oidc-provider:
/// 120 seconds); the bound is what makes the replay check complete: each accepted `jti` is
/// remembered until the token could no longer be accepted anyway, so even a token without `exp`
/// can never be replayed after its marker expired.
pub(crate) const MAX_TOKEN_AGE: Duration = Duration::from_secs(600);

/// What a provider may send: bounded well above any real logout token (about 1 KB), so that the
/// unauthenticated endpoint never buffers much.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A verified logout token: which sessions to end, and its replay marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutToken {
    /// The provider's session id: when present, it alone says which sessions end.
    pub sid: Option<String>,
    /// The provider's subject: without `sid`, every session of this subject ends.
    pub sub: Option<String>,
    /// The token's id, claimed once in the store against replays.
    pub jti: String,
    /// How long to remember `jti`: until the token would be refused as too old or expired.
    pub replay_window: Duration,
}

/// Why a logout token was not acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LogoutTokenError {
    /// The provider's discovery document (and so its keys) is not loaded: not the token's fault.
    #[error("the provider's discovery document is not loaded yet")]
    NotReady,
    /// The token is not a valid logout token for this client; the reason is safe to show the
    /// provider (it never contains the token).
    #[error("{0}")]
    Invalid(String),
}

/// Whether the provider's discovery document advertises back-channel logout (section 2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackchannelSupport {
    /// `backchannel_logout_supported`
    pub supported: bool,
    /// `backchannel_logout_session_supported`: its logout tokens carry `sid`.
    pub session_supported: bool,
}

impl BackchannelSupport {
    /// Read from the discovery document; only a JSON `true` counts (the spec's default for an
    /// omitted member is `false`).
    pub fn from_discovery(document: &Value) -> BackchannelSupport {
        let flag = |name: &str| document.get(name).and_then(Value::as_bool) == Some(true);
        BackchannelSupport {
            supported: flag("backchannel_logout_supported"),
            session_supported: flag("backchannel_logout_session_supported"),
        }
    }
}

/// What a valid logout token for this client must say.
pub(crate) struct Expected<'a> {
    /// `OIDC_ISSUER_URL`, which discovery already checked is the provider's own name.
    pub issuer: &'a str,
    pub client_id: &'a str,
    /// Unix seconds.
    pub now: u64,
}

fn invalid(reason: impl Into<String>) -> VerifyFailure {
    VerifyFailure::Invalid(reason.into())
}

/// Verifies `token` (compact JWS) against the provider's `keys` and the rules of section 2.6.
pub(crate) fn verify(
    token: &str,
    keys: &SigningKeys,
    expected: &Expected<'_>,
) -> Result<LogoutToken, VerifyFailure> {
    // Said here in the words of logout tokens; `verify_signature` would speak of ID tokens.
    match token.split('.').count() {
        3 => {}
        5 => return Err(invalid("encrypted logout tokens (JWE) are not supported")),
        _ => return Err(invalid("the logout token is not a signed JWT")),
    }
    let claims = id_token::verify_signature(token, keys)?;
    check_claims(&claims, expected)
}

/// The claim checks of Back-Channel Logout 1.0 section 2.6 (the signature is checked by the
/// caller), and the bound that keeps the replay check sound. Pure: `expected.now` is the clock.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<LogoutToken, VerifyFailure> {
    // iss, aud, iat and exp "in the same way as ID tokens" (2.6 step 4).
    id_token::issuer_and_audiences(claims, expected.issuer, expected.client_id)?;
    let skew = MAX_CLOCK_SKEW.as_secs();
    let iat = id_token::numeric_date(claims, "iat")?;
    if iat > expected.now.saturating_add(skew) {
        return Err(invalid(format!(
            "the token was issued in the future ({iat}, now is {})",
            expected.now
        )));
    }
    // Accepted until the earlier of `exp` (with the skew, as for ID tokens) and the age bound.
    let too_old_at = iat.saturating_add(MAX_TOKEN_AGE.as_secs() + skew);
    let accept_until = match claims.get("exp") {
        None => too_old_at,
        Some(_) => {
            let exp = id_token::numeric_date(claims, "exp")?;
            let expires_at = exp.saturating_add(skew);
            if expected.now >= expires_at {
                return Err(invalid(format!(
                    "the token expired at {exp} (now is {})",
                    expected.now
                )));
            }
            expires_at.min(too_old_at)
        }
    };
    if expected.now >= accept_until {
        return Err(invalid(format!(
            "the token was issued at {iat}, more than {} seconds ago (now is {})",
            MAX_TOKEN_AGE.as_secs() + skew,
            expected.now
        )));
    }

    // 2.6 step 6: `events` is an object with the back-channel logout member, itself an object.
    match claims.get("events") {
        Some(Value::Object(events)) => match events.get(BACKCHANNEL_LOGOUT_EVENT) {
            Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(invalid(format!(
                    "events[{BACKCHANNEL_LOGOUT_EVENT:?}] is not a JSON object"
                )))
            }
            None => {
                return Err(invalid(format!(
                    "events has no {BACKCHANNEL_LOGOUT_EVENT:?} member"
                )))
            }
        },
        Some(_) => return Err(invalid("events is not a JSON object")),
        None => return Err(invalid("the token has no events claim")),
    }
    // 2.6 step 7: a nonce, of any value, would make it an ID token (section 2.4).
    if claims.contains_key("nonce") {
        return Err(invalid("a logout token must not contain a nonce"));
    }
    // 2.4: jti is required; it is what the replay check remembers.
    let jti = match claims.get("jti") {
        Some(Value::String(jti)) if !jti.is_empty() => jti.clone(),
        Some(Value::String(_)) => return Err(invalid("jti is empty")),
        Some(_) => return Err(invalid("jti is not a string")),
        None => return Err(invalid("the token has no jti")),
    };
    // 2.6 step 5: a sid, a sub, or both; each a non-empty string when present.
    let sid = optional_text(claims, "sid")?;
    let sub = optional_text(claims, "sub")?;
    if sid.is_none() && sub.is_none() {
        return Err(invalid("the token has neither sid nor sub"));
    }
    Ok(LogoutToken {
        sid,
        sub,
        jti,
        replay_window: Duration::from_secs(accept_until - expected.now),
    })
}

fn optional_text(claims: &Map<String, Value>, name: &str) -> Result<Option<String>, VerifyFailure> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::String(text)) if !text.is_empty() => Ok(Some(text.clone())),
        Some(Value::String(_)) => Err(invalid(format!("{name} is empty"))),
        Some(_) => Err(invalid(format!("{name} is not a string"))),
    }
}

#[cfg(test)]
#[path = "logout_token_tests.rs"]
mod tests;
