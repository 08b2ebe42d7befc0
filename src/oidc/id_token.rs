//! ID token verification: the signature with `jsonwebtoken`, the claims here, and the result as
//! plain JSON.
//!
//! `openidconnect` parses an ID token into typed standard claims, so a single claim of an
//! unexpected type (AWS Cognito's `"email_verified": "true"`, a numeric `name`, a string
//! `updated_at`) failed the whole login. Here only the claims that decide whether the token is
//! valid (`iss`, `sub`, `aud`, `azp`, `exp`, `iat`, `nonce`) must have a given type; every other
//! claim is kept as the IdP sent it, for `crate::claims` to read forgivingly.

use std::time::Duration;

use base64::Engine;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

/// Asymmetric algorithms only: symmetric ones would make the client secret a signing key, and
/// `none` is no signature at all.
pub(crate) const ALLOWED_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Clocks disagree: `exp` is accepted until this long after it, and `iat` up to this far in the
/// future.
pub(crate) const MAX_CLOCK_SKEW: Duration = Duration::from_secs(120);

/// Why a token was not accepted. An unknown key is apart because the caller may refetch the
/// provider's JWKS once (the provider may have rotated its keys since discovery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VerifyFailure {
    UnknownKey,
    Invalid(String),
}

impl std::fmt::Display for VerifyFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VerifyFailure::UnknownKey => {
                f.write_str("signed with a key the provider does not list")
            }
            VerifyFailure::Invalid(reason) => f.write_str(reason),
        }
    }
}

fn invalid(reason: impl Into<String>) -> VerifyFailure {
    VerifyFailure::Invalid(reason.into())
}

/// One public key of the provider's JWKS that can check signatures.
struct SigningKey {
    kid: Option<String>,
    /// The JWK's `alg`, when it names one: the key may then only verify that algorithm.
    alg: Option<String>,
    /// For EC and OKP keys: each curve goes with one algorithm.
    curve: Option<EllipticCurve>,
    key: DecodingKey,
}

impl SigningKey {
    fn from_jwk(value: &Value) -> Option<SigningKey> {
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_owned);
        // A key published for encryption must not verify signatures (RFC 7517 section 4.2).
        if text("use").is_some_and(|use_| use_ != "sig") {
            return None;
        }
        let jwk: Jwk = serde_json::from_value(value.clone()).ok()?;
        let curve = match &jwk.algorithm {
            AlgorithmParameters::RSA(_) => None,
            AlgorithmParameters::EllipticCurve(params) => Some(params.curve.clone()),
            AlgorithmParameters::OctetKeyPair(params) => Some(params.curve.clone()),
            // Symmetric (`oct`) and unknown key types never verify an ID token here.
            _ => return None,
        };
        let key = DecodingKey::from_jwk(&jwk).ok()?;
        Some(SigningKey {
            kid: text("kid"),
            alg: text("alg"),
            curve,
            key,
        })
    }

    /// Whether this key can check a signature made with `alg` (named `alg_name` in the header).
    fn fits(&self, alg: Algorithm, alg_name: &str) -> bool {
        if self
            .alg
            .as_deref()
            .is_some_and(|key_alg| key_alg != alg_name)
        {
            return false;
        }
        if self.key.family() != alg.family() {
            return false;
        }
        match alg {
            Algorithm::ES256 => self.curve == Some(EllipticCurve::P256),
            Algorithm::ES384 => self.curve == Some(EllipticCurve::P384),
            Algorithm::EdDSA => self.curve == Some(EllipticCurve::Ed25519),
            _ => true,
        }
    }
}

/// The provider's signature keys, read once per JWKS fetch.
pub(crate) struct SigningKeys(Vec<SigningKey>);

impl SigningKeys {
    /// From a JWKS document (`{"keys": [...]}`). Keys that cannot verify a signature
    /// (encryption keys, symmetric keys, unknown key types, malformed keys) are left out rather
    /// than failing the set: RFC 7517 says to ignore what is not understood.
    pub(crate) fn from_jwks(jwks: &Value) -> SigningKeys {
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .map(|keys| keys.iter().filter_map(SigningKey::from_jwk).collect())
            .unwrap_or_default();
        SigningKeys(keys)
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The key for a token with header `kid` and `alg`. With a `kid`, only keys of that id are
    /// considered; without one, exactly one key must fit (OIDC Core 10.1: a provider with several
    /// keys must name the key).
    fn select(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
        alg_name: &str,
    ) -> Result<&DecodingKey, VerifyFailure> {
        let mut fitting = self
            .0
            .iter()
            .filter(|key| kid.is_none_or(|kid| key.kid.as_deref() == Some(kid)))
            .filter(|key| key.fits(alg, alg_name));
        match (fitting.next(), fitting.next()) {
            (Some(key), None) => Ok(&key.key),
            (None, _) => Err(VerifyFailure::UnknownKey),
            (Some(_), Some(_)) => Err(invalid(
                "the token names no key (kid) and the provider lists several that fit",
            )),
        }
    }
}

/// What the `nonce` of an ID token must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NonceRule<'a> {
    /// A login's: present, and the one sent with its authorization request.
    Equal(&'a str),
    /// A refresh's (OIDC Core 12.2): the provider may leave it out, and when it sends one it
    /// must be the login's. `None`: the login's nonce is not known, so any nonce is refused.
    AbsentOrEqual(Option<&'a str>),
}

/// What a valid ID token of this login must say.
pub(crate) struct Expected<'a> {
    /// `OIDC_ISSUER_URL`, which discovery already checked is the provider's own name.
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: NonceRule<'a>,
    /// Unix seconds.
    pub now: u64,
}

/// Verifies `token` (compact JWS) against the provider's `keys` and what this login expects, and
/// returns all its claims.
pub(crate) fn verify(
    token: &str,
    keys: &SigningKeys,
    expected: &Expected<'_>,
) -> Result<Map<String, Value>, VerifyFailure> {
    let claims = verify_signature(token, keys)?;
    check_claims(&claims, expected)?;
    Ok(claims)
}

/// The signature half of [`verify`]: the algorithm allow-list, the key choice and the signature,
/// no claim checked. Shared with back-channel logout tokens (`super::logout_token`), which the
/// provider signs with the same keys and algorithms as its ID tokens.
pub(crate) fn verify_signature(
    token: &str,
    keys: &SigningKeys,
) -> Result<Map<String, Value>, VerifyFailure> {
    let header = read_header(token)?;
    let alg_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("the token header has no alg"))?;
    let alg = ALLOWED_ALGS
        .iter()
        .copied()
        .find(|alg| {
            alg_name
                .parse::<Algorithm>()
                .is_ok_and(|parsed| parsed == *alg)
        })
        .ok_or_else(|| {
            invalid(format!(
                "algorithm {alg_name:?} is not allowed (only asymmetric signatures are)"
            ))
        })?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(invalid("the token header's kid is not a string")),
    };
    let key = keys.select(kid, alg, alg_name)?;

    // jsonwebtoken checks the signature only: every claim is checked below, against a clock that
    // is a parameter, with rules written out in one place.
    let mut validation = Validation::new(alg);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                invalid("the signature does not verify")
            }
            _ => invalid(format!("the token could not be read: {err}")),
        })?
        .claims;
    Ok(claims)
}

/// The decoded JOSE header, read before any key is chosen (its `alg` and `kid` pick the key; the
/// signature check then proves the header was not altered).
pub(crate) fn read_header(token: &str) -> Result<Map<String, Value>, VerifyFailure> {
    let parts = token.split('.').count();
    if parts == 5 {
        return Err(invalid("encrypted ID tokens (JWE) are not supported"));
    }
    if parts != 3 {
        return Err(invalid("the ID token is not a signed JWT"));
    }
    let (encoded, _) = token.split_once('.').unwrap_or_default();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| invalid("the token header is not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(header)) => Ok(header),
        _ => Err(invalid("the token header is not a JSON object")),
    }
}

/// `iss` exactly `issuer`, and `aud` (a string or a list of strings) containing `client_id`: the
/// checks every token from the provider passes, ID tokens and logout tokens alike. Returns the
/// audiences.
pub(crate) fn issuer_and_audiences<'c>(
    claims: &'c Map<String, Value>,
    issuer: &str,
    client_id: &str,
) -> Result<Vec<&'c str>, VerifyFailure> {
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == issuer => {}
        Some(Value::String(iss)) => {
            return Err(invalid(format!("issued by {iss:?}, expected {issuer:?}")))
        }
        _ => return Err(invalid("the token has no iss")),
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .ok_or_else(|| invalid("aud has a non-string entry"))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(invalid("the token has no aud")),
    };
    if !audiences.contains(&client_id) {
        return Err(invalid(format!(
            "the token is for {audiences:?}, not for client {client_id:?}"
        )));
    }
    Ok(audiences)
}

/// The claim checks of OIDC Core 3.1.3.7 that apply to the code flow (the signature is checked
/// by the caller). Pure: `expected.now` is the clock.
pub(crate) fn check_claims(
    claims: &Map<String, Value>,
    expected: &Expected<'_>,
) -> Result<(), VerifyFailure> {
    let audiences = issuer_and_audiences(claims, expected.issuer, expected.client_id)?;
    match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => {}
        _ => return Err(invalid("the token has no sub")),
    }
    // With several audiences, the authorized party says which of them the token was issued to.
    if audiences.len() > 1 {
        if let Some(azp) = claims.get("azp") {
            if azp.as_str() != Some(expected.client_id) {
                return Err(invalid(format!(
                    "the token was issued to azp {azp}, not to client {:?}",
                    expected.client_id
                )));
            }
        }
    }
    let skew = MAX_CLOCK_SKEW.as_secs();
    let exp = numeric_date(claims, "exp")?;
    if expected.now >= exp.saturating_add(skew) {
        return Err(invalid(format!(
            "the token expired at {exp} (now is {})",
            expected.now
        )));
    }
    let iat = numeric_date(claims, "iat")?;
    if iat > expected.now.saturating_add(skew) {
        return Err(invalid(format!(
            "the token was issued in the future ({iat}, now is {})",
            expected.now
        )));
    }
    let same = |nonce: &str, login: &str| bool::from(nonce.as_bytes().ct_eq(login.as_bytes()));
    match (claims.get("nonce"), expected.nonce) {
        (Some(Value::String(nonce)), NonceRule::Equal(login)) if same(nonce, login) => {}
        (Some(Value::String(nonce)), NonceRule::AbsentOrEqual(Some(login)))
            if same(nonce, login) => {}
        (None, NonceRule::AbsentOrEqual(_)) => {}
        (Some(Value::String(_)), _) => return Err(invalid("the nonce is not this login's")),
        (None, NonceRule::Equal(_)) => return Err(invalid("the token has no nonce")),
        (Some(_), _) => return Err(invalid("the nonce is not a string")),
    }
    Ok(())
}

/// A JWT NumericDate (seconds since the epoch; fractions are allowed and dropped).
pub(super) fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<u64, VerifyFailure> {
    let value = claims
        .get(name)
        .ok_or_else(|| invalid(format!("the token has no {name}")))?;
    value
        .as_u64()
        .or_else(|| {
            value
                .as_f64()
                .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
                .map(|seconds| seconds as u64)
        })
        .ok_or_else(|| invalid(format!("{name} is not a time")))
}

#[cfg(test)]
#[path = "id_token_tests.rs"]
mod tests;
