//! The signed identity assertion for the app (`UPSTREAM_JWT`): a short-lived ES256 JWT in
//! `X-Auth-Request-Jwt` on every allowed check, and the JWKS (`/oauth2/jwks`) the app verifies
//! it with. An app that verifies it no longer has to trust plain headers that anything
//! reaching it directly could forge.
//!
//! Three parts, each testable alone: the keys (PEM files, or derived from `COOKIE_SECRET` so
//! that every replica signs alike; `kid` is the RFC 7638 thumbprint), the claims (pure, `now` a
//! parameter) and the reuse of one signed assertion per session and origin while more than
//! half its lifetime remains, so that the hot path signs about once per 30 seconds per user
//! and site rather than on every request.

use std::hash::{BuildHasher, RandomState};

use actix_web::http::header::HeaderValue;
use actix_web::web::Bytes;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hkdf::Hkdf;
use p256::ecdsa::signature::Signer;
use p256::elliptic_curve::sec1::ToSec1Point;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// How long an assertion is valid: `exp` = `iat` + this. Short, because the app cannot revoke
/// it; a minute covers clock skew between replicas and the app.
pub const LIFETIME_SECS: u64 = 60;

/// An assertion is reused while more than half its lifetime remains: from `iat` + this on, a
/// new one is signed, so an app never receives one with less than 30 seconds left.
pub const REUSE_SECS: u64 = LIFETIME_SECS / 2;

/// Why a key file could not be used. The texts never quote the file: it holds a private key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "holds no PEM private key (expected -----BEGIN PRIVATE KEY----- (PKCS#8) or -----BEGIN \
         EC PRIVATE KEY----- (SEC1); encrypted keys are not supported)"
    )]
    NotPem,
    #[error(
        "is not a P-256 private key (an RSA key, another curve, or a damaged file); make one: \
         openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256"
    )]
    NotP256,
    #[error("no signing key could be derived from COOKIE_SECRET")]
    Derivation,
}

/// Why an assertion could not be made; the auth check then fails closed (500).
#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("the claims could not be encoded: {0}")]
    Encoding(#[from] serde_json::Error),
    #[error("the assertion could not be signed")]
    Signing,
}

/// A P-256 signing key with its public JWK and `kid`, ready to sign. Never prints the key.
#[derive(Clone)]
pub struct SigningKey {
    signing: p256::ecdsa::SigningKey,
    /// base64url of the affine coordinates, as the JWK writes them.
    x: String,
    y: String,
    kid: String,
    /// base64url of `{"alg":"ES256","typ":"JWT","kid":...}`: the same for every assertion.
    encoded_header: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(kid {}, [redacted])", self.kid)
    }
}

impl PartialEq for SigningKey {
    /// Two keys are the same key when their public halves are (the thumbprint says so).
    fn eq(&self, other: &SigningKey) -> bool {
        self.kid == other.kid
    }
}

impl SigningKey {
    /// A PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`) or SEC1 (`BEGIN EC PRIVATE KEY`), P-256.
    pub fn from_pem(text: &str) -> Result<SigningKey, KeyError> {
        let secret = p256::SecretKey::from_pem(text.trim()).map_err(|err| {
            // Which part failed is all that is said: the error values carry no key bytes,
            // but nothing from the file is echoed either way.
            match err {
                p256::elliptic_curve::DecodeError::Pem(_) => KeyError::NotPem,
                _ => KeyError::NotP256,
            }
        })?;
        Ok(SigningKey::from_secret(&secret))
    }

    /// The key every replica with the same `COOKIE_SECRET` derives: HKDF-SHA256 with its own
    /// label (as the other keys in [`crate::crypto`]), the output taken as the scalar. The
    /// one in about 2^32 outputs that is not a valid scalar is skipped by a counter, so the
    /// result stays deterministic.
    pub fn derive(secret: &[u8]) -> Result<SigningKey, KeyError> {
        let hkdf = Hkdf::<Sha256>::new(Some(b"portcullis v1"), secret);
        for attempt in 0u8..=u8::MAX {
            let mut scalar = [0u8; 32];
            hkdf.expand_multi_info(
                &[b"upstream assertion signing key", &[attempt]],
                &mut scalar,
            )
            .map_err(|_| KeyError::Derivation)?;
            if let Ok(secret) = p256::SecretKey::from_slice(&scalar) {
                return Ok(SigningKey::from_secret(&secret));
            }
        }
        Err(KeyError::Derivation)
    }

    fn from_secret(secret: &p256::SecretKey) -> SigningKey {
        let signing = p256::ecdsa::SigningKey::from(secret);
        let point = secret.public_key().to_sec1_point(false);
        let coordinate = |c: Option<&_>| c.map(|c: &_| URL_SAFE_NO_PAD.encode(c));
        // An uncompressed point always has both coordinates.
        let x = coordinate(point.x()).unwrap_or_default();
        let y = coordinate(point.y()).unwrap_or_default();
        let kid = thumbprint(&[("crv", "P-256"), ("kty", "EC"), ("x", &x), ("y", &y)]);
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let encoded_header = URL_SAFE_NO_PAD.encode(header.to_string());
        SigningKey {
            signing,
            x,
            y,
            kid,
            encoded_header,
        }
    }

    /// The RFC 7638 thumbprint of the public key, which is also the assertions' `kid`.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK for the JWKS.
    pub fn public_jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "EC",
            "crv": "P-256",
            "x": self.x,
            "y": self.y,
            "kid": self.kid,
            "alg": "ES256",
            "use": "sig",
        })
    }

    /// The compact JWS of `claims`: header, payload and the 64-byte `r || s` signature
    /// (RFC 7518 §3.4), each base64url. RFC 6979 nonces: no random generator is involved.
    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, AssertionError> {
        let payload = serde_json::to_vec(claims)?;
        let mut token = String::with_capacity(self.encoded_header.len() + payload.len() * 2 + 90);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature: p256::ecdsa::Signature = self
            .signing
            .try_sign(token.as_bytes())
            .map_err(|_| AssertionError::Signing)?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }
}

/// The RFC 7638 JWK thumbprint: SHA-256 over the required members, sorted by name, as JSON
/// without whitespace; base64url. The members' values here never need JSON escaping (base64url
/// and fixed names), but they are escaped anyway.
pub fn thumbprint(members: &[(&str, &str)]) -> String {
    let mut sorted = members.to_vec();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let object: serde_json::Map<String, serde_json::Value> = sorted
        .into_iter()
        .map(|(name, value)| (name.to_string(), value.into()))
        .collect();
    // serde_json's map keeps its keys sorted and writes no whitespace.
    let canonical = serde_json::Value::Object(object).to_string();
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// What an assertion says about the user: the part that must match for one to be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subject<'a> {
    pub username: &'a str,
    /// Only a verified email: the assertion never vouches for an unverified one, whatever
    /// `OIDC_ALLOW_UNVERIFIED_EMAIL` lets through in the plain header.
    pub email: Option<&'a str>,
    /// Exactly the groups `X-Auth-Request-Groups` carries (after the group map), unencoded.
    pub groups: &'a [&'a str],
    /// The provider's name; `None` with the one unnamed provider.
    pub provider: Option<&'a str>,
}

/// The claims of one assertion, in the order they are written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims<'a> {
    pub iss: &'a str,
    pub aud: &'a str,
    pub sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    pub groups: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<&'a str>,
    pub iat: u64,
    pub exp: u64,
    pub jti: &'a str,
}

/// The claims for `subject` visiting `audience` (the origin of the original request), issued
/// by `issuer` (the origin of `OIDC_REDIRECT_URL`) at `now`, with the unique id `jti`.
pub fn claims<'a>(
    issuer: &'a str,
    audience: &'a str,
    subject: &Subject<'a>,
    now: u64,
    jti: &'a str,
) -> Claims<'a> {
    Claims {
        iss: issuer,
        aud: audience,
        sub: subject.username,
        email: subject.email,
        groups: subject.groups,
        provider: subject.provider,
        iat: now,
        exp: now.saturating_add(LIFETIME_SECS),
        jti,
    }
}

/// Whether an assertion issued at `issued_at` for claims that are still `same_claims` may be
/// sent again at `now`: only while more than half its lifetime remains. One from the future
/// (the clock stepped back) is not reused: its `iat` would be wrong.
pub fn reusable(issued_at: u64, same_claims: bool, now: u64) -> bool {
    same_claims && now >= issued_at && now - issued_at < REUSE_SECS
}

/// The origin (`scheme://host[:port]`) of an absolute URL, as `iss` and `aud` write it.
pub fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization()
}

/// One signed assertion kept for reuse.
#[derive(Clone)]
struct Issued {
    issued_at: u64,
    /// A keyed hash of the [`Subject`] it was made for.
    fingerprint: u64,
    header: HeaderValue,
}

/// The signer of a running portcullis: the current key, the previous one (published only),
/// the issuer, the JWKS body and the assertions kept for reuse.
pub struct Assertions {
    current: SigningKey,
    issuer: String,
    jwks: Bytes,
    /// Keyed by session id and audience; at most `capacity` entries, none older than the
    /// reuse window.
    issued: moka::sync::Cache<String, Issued>,
    /// Random per process, so that no one can choose claims whose fingerprints collide.
    fingerprints: RandomState,
}

impl Assertions {
    pub fn new(
        current: SigningKey,
        previous: Option<SigningKey>,
        issuer: String,
        capacity: u64,
    ) -> Assertions {
        let keys: Vec<serde_json::Value> = std::iter::once(&current)
            .chain(previous.as_ref())
            .map(SigningKey::public_jwk)
            .collect();
        let jwks = Bytes::from(serde_json::json!({ "keys": keys }).to_string());
        Assertions {
            current,
            issuer,
            jwks,
            issued: moka::sync::Cache::builder()
                .max_capacity(capacity.max(1))
                .time_to_live(std::time::Duration::from_secs(REUSE_SECS))
                .build(),
            fingerprints: RandomState::new(),
        }
    }

    /// `{"keys": [current, previous?]}`, built once.
    pub fn jwks(&self) -> Bytes {
        self.jwks.clone()
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `X-Auth-Request-Jwt` value for `subject` of session `session_id` visiting
    /// `audience` at `now`: the one kept for them while [`reusable`], otherwise a new one.
    pub fn header(
        &self,
        session_id: &str,
        audience: &str,
        subject: &Subject<'_>,
        now: u64,
    ) -> Result<HeaderValue, AssertionError> {
        self.issued_header(session_id, audience, subject, now)
            .map(|(header, _)| header)
    }

    /// [`Assertions::header`], with when the assertion it answers with was issued (its `iat`),
    /// for a caller that keeps it for reuse too.
    pub fn issued_header(
        &self,
        session_id: &str,
        audience: &str,
        subject: &Subject<'_>,
        now: u64,
    ) -> Result<(HeaderValue, u64), AssertionError> {
        let fingerprint = self.fingerprints.hash_one(subject);
        let mut key = String::with_capacity(session_id.len() + 1 + audience.len());
        key.push_str(session_id);
        // Session ids are base64url: a space cannot occur in them, so the key is unambiguous.
        key.push(' ');
        key.push_str(audience);
        if let Some(kept) = self.issued.get(&key) {
            if reusable(kept.issued_at, kept.fingerprint == fingerprint, now) {
                return Ok((kept.header, kept.issued_at));
            }
        }
        let jti = crate::crypto::random_id();
        let token = self
            .current
            .sign(&claims(&self.issuer, audience, subject, now, &jti))?;
        // base64url and dots only: always a valid header value.
        let header = HeaderValue::from_maybe_shared(Bytes::from(token))
            .map_err(|_| AssertionError::Signing)?;
        self.issued.insert(
            key,
            Issued {
                issued_at: now,
                fingerprint,
                header: header.clone(),
            },
        );
        Ok((header, now))
    }
}

#[cfg(test)]
#[path = "assertion_tests.rs"]
mod tests;
