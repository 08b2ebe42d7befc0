//! Bearer tokens for API clients (`BEARER_TOKENS`), the parts free of I/O: the token in the
//! original request's `Authorization` header, the identity a verified token stands for (read as a
//! login reads its claims, `claims::person`), and the cache of verified tokens. The signature
//! and claim checks are `oidc::access_token`'s; the order of the I/O is `http::bearer`'s.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::claims::{self, Person};
use crate::config::ProviderSettings;
use crate::oidc::{RefusedToken, TokenRefusal};

/// What the `Authorization` headers of a request offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'r> {
    /// No `Authorization` header, or one of another scheme (`Basic`, ...): the app's business,
    /// not a bearer token. The check goes on as without one.
    None,
    /// `Bearer <token>`.
    Token(&'r str),
    /// `Bearer` with no token, or several `Authorization` headers one of which is `Bearer`: which
    /// one the app would read is not ours to guess.
    Malformed,
}

/// The bearer token among `values` (every `Authorization` header of the request, in order).
/// The scheme is case-insensitive (RFC 7235); the token is what follows the spaces after it,
/// without surrounding whitespace, and must be one word.
pub fn credential<'r>(values: impl IntoIterator<Item = &'r [u8]>) -> Credential<'r> {
    let mut values = values.into_iter();
    let Some(first) = values.next() else {
        return Credential::None;
    };
    let rest: Vec<&[u8]> = values.collect();
    let is_bearer = |value: &[u8]| {
        value.len() >= 6
            && value[..6].eq_ignore_ascii_case(b"bearer")
            && (value.len() == 6 || value[6] == b' ' || value[6] == b'\t')
    };
    if !is_bearer(first) {
        return if rest.iter().any(|value| is_bearer(value)) {
            Credential::Malformed
        } else {
            Credential::None
        };
    }
    if !rest.is_empty() {
        return Credential::Malformed;
    }
    let Ok(text) = std::str::from_utf8(&first[6..]) else {
        return Credential::Malformed;
    };
    let token = text.trim_matches([' ', '\t']);
    if token.is_empty() || token.contains([' ', '\t']) {
        return Credential::Malformed;
    }
    Credential::Token(token)
}

/// Who a verified token stands for, and until when the token says so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerIdentity {
    /// The provider that signed it (`None`: the one unnamed provider).
    pub provider: Option<String>,
    pub person: Person,
    /// The token's `exp` (unix seconds).
    pub expires_at: u64,
}

/// The identity of a verified token's `claims`, read with the provider's `OIDC_USERNAME_CLAIM`
/// and `OIDC_GROUPS_CLAIM` exactly as a login reads an ID token's. Pure.
pub fn identity_from_claims(
    claims: &Value,
    provider: &ProviderSettings,
    allow_unverified_email: bool,
) -> Result<BearerIdentity, RefusedToken> {
    let person = claims::person(
        claims,
        &provider.username_claim,
        &provider.groups_claim,
        allow_unverified_email,
    )
    .map_err(|err| RefusedToken::new(TokenRefusal::NoUser, err.to_string()))?;
    // Verified to be a NumericDate; fractions are dropped, as the verification does. Without
    // one the identity is not kept in the cache (0).
    let expires_at = claims
        .get("exp")
        .and_then(|exp| {
            exp.as_u64()
                .or_else(|| exp.as_f64().map(|seconds| seconds as u64))
        })
        .unwrap_or(0);
    Ok(BearerIdentity {
        provider: provider.name.clone(),
        person,
        expires_at,
    })
}

/// How long a verified token is answered from memory at most: a token revoked at the IdP (which
/// portcullis never asks) passes no longer than its `exp` anyway, and this bounds a key removed
/// from the provider's JWKS.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// At most this many verified tokens per replica.
pub const CACHE_SIZE: u64 = 10_000;

/// Verified tokens by the SHA-256 of the token, so that a busy API client costs one signature
/// check a minute rather than one per request. Only accepted tokens are kept, each until the
/// earlier of its `exp` and [`CACHE_TTL`]; the token itself is never kept.
#[derive(Clone)]
pub struct TokenCache {
    entries: moka::sync::Cache<[u8; 32], Arc<Cached>>,
}

#[derive(Debug)]
pub struct Cached {
    pub identity: BearerIdentity,
    /// Unix seconds: from then on the entry is not used.
    until: u64,
    /// What the token's signed identity assertions are reused by (`UPSTREAM_JWT`), as a
    /// session's are by its id: a digest of the token, never the token.
    holder: String,
}

impl Cached {
    /// `bearer.` and the token's SHA-256 in base64url: never a session id (those have no `.`).
    pub fn assertion_holder(&self) -> &str {
        &self.holder
    }
}

impl TokenCache {
    pub fn new() -> TokenCache {
        TokenCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(CACHE_SIZE)
                .time_to_live(CACHE_TTL)
                .build(),
        }
    }

    /// The identity of `token` if it was verified less than [`CACHE_TTL`] ago and has not
    /// expired at `now`.
    pub fn get(&self, token: &str, now: u64) -> Option<Arc<Cached>> {
        self.entries
            .get(&digest(token))
            .filter(|cached| now < cached.until)
    }

    /// Keeps `identity`, just verified at `now`, for `token`; returns it as the cache holds it.
    pub fn insert(&self, token: &str, identity: BearerIdentity, now: u64) -> Arc<Cached> {
        let until = cached_until(identity.expires_at, now);
        let digest = digest(token);
        let holder = format!("bearer.{}", URL_SAFE_NO_PAD.encode(digest));
        let cached = Arc::new(Cached {
            identity,
            until,
            holder,
        });
        if until > now {
            self.entries.insert(digest, cached.clone());
        }
        cached
    }
}

impl Default for TokenCache {
    fn default() -> Self {
        TokenCache::new()
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

/// Until when a token verified at `now` with this `exp` may be answered from the cache: never
/// past its `exp` (the skew the verification allows is not extended), at most [`CACHE_TTL`].
pub fn cached_until(expires_at: u64, now: u64) -> u64 {
    expires_at.min(now.saturating_add(CACHE_TTL.as_secs()))
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
#[path = "bearer_tests.rs"]
mod tests;
