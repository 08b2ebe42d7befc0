//! Sessions: what a signed-in browser maps to, and where it is kept.

mod memory;
mod redis;
mod store;

pub use store::{Store, StoreError};

use serde::{Deserialize, Serialize};

/// What the auth check needs about a signed-in user. Kept small: it is read on every request.
/// Tokens are stored apart from it, encrypted (see [`Store::put_session`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Value of `OIDC_USERNAME_CLAIM`.
    pub user: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    /// Groups as the IdP sent them; mapping is applied per request, so configuration changes
    /// take effect without a new login.
    pub groups: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; the session is void from then on, whatever the store still holds.
    pub expires_at: u64,
}

impl Session {
    pub fn is_live(&self, now: u64) -> bool {
        now < self.expires_at
    }
}

/// A login in progress, between `/oauth2/start` and `/oauth2/callback`, keyed by `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// Digest of the random value in the browser's login cookie: the callback must come from
    /// the browser that started the login.
    pub browser_binding: String,
    pub pkce_verifier: String,
    pub nonce: String,
    /// Where the browser goes after login (already checked against the allow-list).
    pub return_to: String,
}
