//! Access tokens that API clients send as `Authorization: Bearer <JWT>` (`BEARER_TOKENS`): JWTs
//! the provider signed for a resource (RFC 9068), checked here before their claims stand for a
//! user the way a session's do.
//!
//! The signature is checked exactly as an ID token's (`id_token::verify_signature`: the same
//! asymmetric allow-list, so `alg: none` and HS256 are refused, the same key choice and JWKS
//! refetch on an unknown `kid`); the claims are checked here, in one pure function with the clock
//! as a parameter: `iss` the provider's, `exp` required and `nbf` when present (with
//! [`MAX_CLOCK_SKEW`]), and `aud` containing one of `BEARER_AUDIENCES`.
//!
//! What is not an access token is refused before it could pass for one: an opaque token (not a
//! three-part JWS; only the IdP's introspection could say what it is, and portcullis does not
//! ask), an encrypted one, and an ID token, which a client may hold but which says who signed
//! in to that client, not what the bearer may call. An ID token is told by:
//! - a header `typ` other than `at+jwt` (RFC 9068), `application/at+jwt` or `JWT` (what
//!   providers without RFC 9068 send): `logout+jwt` and any other type are not access tokens;
//! - a `nonce` (OIDC Core 2: bound to a login's authorization request, never in an access
//!   token), `at_hash` or `c_hash` (hashes of the access token and code that came with an ID
//!   token: OIDC Core 3.3.2.11);
//! - a claim `typ` of `ID` (Keycloak marks its ID tokens so, and its access tokens `Bearer`).
//!
//! `auth_time`, `azp`, `sid` and `acr` are not markers: RFC 9068 lets access tokens carry them.

use serde_json::{Map, Value};

use super::id_token::{self, SigningKeys, VerifyFailure, MAX_CLOCK_SKEW};

/// Why a bearer token was refused, as metrics and logs name it. Every kind answers the same 401
/// `invalid_token`: the client learns only the fixed [`TokenRefusal::description`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenRefusal {
    /// Not a three-part JWS: opaque, encrypted (JWE) or garbled.
    NotJwt,
    /// An ID token, a logout token or another JWT that is not an access token.
    NotAccessToken,
    /// The algorithm is not allowed, the key is unknown, or the signature does not verify.
    Signature,
    /// Issued by no configured provider, or `iss` is not the provider's.
    Issuer,
    /// Expired, not yet valid (`nbf`), or without `exp`.
    Expired,
    /// `aud` contains none of `BEARER_AUDIENCES`.
    Audience,
    /// The claims name no user (`OIDC_USERNAME_CLAIM`).
    NoUser,
}

impl TokenRefusal {
    pub const ALL: [TokenRefusal; 7] = [
        TokenRefusal::NotJwt,
        TokenRefusal::NotAccessToken,
        TokenRefusal::Signature,
        TokenRefusal::Issuer,
        TokenRefusal::Expired,
        TokenRefusal::Audience,
        TokenRefusal::NoUser,
    ];

    /// A stable snake_case name for metrics and log lines.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenRefusal::NotJwt => "not_jwt",
            TokenRefusal::NotAccessToken => "not_access_token",
            TokenRefusal::Signature => "signature",
            TokenRefusal::Issuer => "issuer",
            TokenRefusal::Expired => "expired",
            TokenRefusal::Audience => "audience",
            TokenRefusal::NoUser => "no_user",
        }
    }

    /// The `error_description` of the 401: fixed words, never a value from the token.
    pub fn description(self) -> &'static str {
        match self {
            TokenRefusal::NotJwt => "the token is not a signed JWT",
            TokenRefusal::NotAccessToken => "the token is not an access token",
            TokenRefusal::Signature => "the token's signature does not verify",
            TokenRefusal::Issuer => "the token is not from a configured issuer",
            TokenRefusal::Expired => "the token is expired or not yet valid",
            TokenRefusal::Audience => "the token is not for this audience",
            TokenRefusal::NoUser => "the token does not name a user",
        }
    }
}

/// A refused token: the kind, and for the debug log what exactly was wrong (claim values may
/// appear there, the token itself never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedToken {
    pub kind: TokenRefusal,
    pub detail: String,
}

impl RefusedToken {
    pub fn new(kind: TokenRefusal, detail: impl Into<String>) -> RefusedToken {
        RefusedToken {
            kind,
            detail: detail.into(),
        }
    }
}

/// What [`verify`] came to when it did not accept: an unknown key is apart, because the caller
/// may refetch the provider's JWKS once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    UnknownKey,
    Refused(RefusedToken),
}

fn refused(kind: TokenRefusal, detail: impl Into<String>) -> Failure {
    Failure::Refused(RefusedToken::new(kind, detail))
}

/// What a valid access token for this deployment must say.
pub(crate) struct Expected<'a> {
    /// `OIDC_ISSUER_URL` of the provider whose keys verify it.
    pub issuer: &'a str,
    /// `BEARER_AUDIENCES`.
    pub audiences: &'a [String],
    /// Unix seconds.
    pub now: u64,
}

/// The header `typ` values of an access token, lower case (RFC 9068 section 2.1; `JWT` from
/// providers that predate it).
const ACCESS_TOKEN_TYPES: &[&str] = &["at+jwt", "application/at+jwt", "jwt"];

/// Claims only an ID token carries.
const ID_TOKEN_CLAIMS: &[&str] = &["nonce", "at_hash", "c_hash"];

/// Verifies `token` (compact JWS) against the provider's `keys` and returns its claims.
pub(crate) fn verify(
    token: &str,
    keys: &SigningKeys,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, Failure> {
    // Said here in the words of access tokens; `verify_signature` would speak of ID tokens.
    match token.split('.').count() {
        3 => {}
        5 => {
            return Err(refused(
                TokenRefusal::NotJwt,
                "encrypted tokens (JWE) are not supported",
            ))
        }
        _ => {
            return Err(refused(
                TokenRefusal::NotJwt,
                "not a signed JWT (an opaque token?)",
            ))
        }
    }
    let header = id_token::read_header(token)
        .map_err(|failure| refused(TokenRefusal::NotJwt, failure.to_string()))?;
    check_header(&header)?;
    let claims = id_token::verify_signature(token, keys).map_err(|failure| match failure {
        VerifyFailure::UnknownKey => Failure::UnknownKey,
        VerifyFailure::Invalid(reason) => refused(TokenRefusal::Signature, reason),
    })?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// The header's `typ`, when present, must be an access token's. Pure.
pub(crate) fn check_header(header: &Map<String, Value>) -> Result<(), Failure> {
    match header.get("typ") {
        None => Ok(()),
        Some(Value::String(typ))
            if ACCESS_TOKEN_TYPES.contains(&typ.to_ascii_lowercase().as_str()) =>
        {
            Ok(())
        }
        Some(Value::String(typ)) => Err(refused(
            TokenRefusal::NotAccessToken,
            format!("the token's type is {typ:?}, not at+jwt"),
        )),
        Some(_) => Err(refused(
            TokenRefusal::NotAccessToken,
            "the token header's typ is not a string",
        )),
    }
}

/// The claim checks (the signature is checked by the caller). Pure: `expected.now` is the clock.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<(), Failure> {
    // First what would make it an ID token: that is the reason to give, whatever else is wrong.
    if let Some(name) = ID_TOKEN_CLAIMS
        .iter()
        .find(|name| claims.contains_key(**name))
    {
        return Err(refused(
            TokenRefusal::NotAccessToken,
            format!("the token has {name}: an ID token"),
        ));
    }
    if claims
        .get("typ")
        .and_then(Value::as_str)
        .is_some_and(|typ| typ.eq_ignore_ascii_case("ID"))
    {
        return Err(refused(
            TokenRefusal::NotAccessToken,
            "the token's typ claim is ID: an ID token",
        ));
    }
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == expected.issuer => {}
        Some(Value::String(iss)) => {
            return Err(refused(
                TokenRefusal::Issuer,
                format!("issued by {iss:?}, expected {:?}", expected.issuer),
            ))
        }
        _ => return Err(refused(TokenRefusal::Issuer, "the token has no iss")),
    }
    let skew = MAX_CLOCK_SKEW.as_secs();
    let date = |name: &str| {
        id_token::numeric_date(claims, name)
            .map_err(|failure| refused(TokenRefusal::Expired, failure.to_string()))
    };
    let exp = date("exp")?;
    if expected.now >= exp.saturating_add(skew) {
        return Err(refused(
            TokenRefusal::Expired,
            format!("the token expired at {exp} (now is {})", expected.now),
        ));
    }
    if claims.contains_key("nbf") {
        let nbf = date("nbf")?;
        if nbf > expected.now.saturating_add(skew) {
            return Err(refused(
                TokenRefusal::Expired,
                format!(
                    "the token is not valid before {nbf} (now is {})",
                    expected.now
                ),
            ));
        }
    }
    if claims.contains_key("iat") {
        let iat = date("iat")?;
        if iat > expected.now.saturating_add(skew) {
            return Err(refused(
                TokenRefusal::Expired,
                format!(
                    "the token was issued in the future ({iat}, now is {})",
                    expected.now
                ),
            ));
        }
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
        _ => return Err(refused(TokenRefusal::Audience, "the token has no aud")),
    };
    if !audiences
        .iter()
        .any(|aud| expected.audiences.iter().any(|wanted| wanted == aud))
    {
        return Err(refused(
            TokenRefusal::Audience,
            format!("the token is for {audiences:?}, none of BEARER_AUDIENCES"),
        ));
    }
    Ok(())
}

#[cfg(test)]
#[path = "access_token_tests.rs"]
mod tests;
