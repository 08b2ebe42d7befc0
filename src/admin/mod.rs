//! Revocation by an operator: `portcullis sessions list|revoke` on the command line
//! ([`cli`]) and, when `ADMIN_ADDR` is set, the same through an HTTP API on a listener of its
//! own ([`api`]). Both list sessions with [`Store::list_sessions`](crate::session::Store) and
//! end them with [`Store::end_sessions`](crate::session::Store), the one function that ends
//! sessions, so a revoked session is refused at its next auth check on every replica that
//! shares the store.
//!
//! What an operator sees of a session ([`Listed`]) leaves out everything that would let its
//! reader use it: no session id, no token, no cookie.

pub mod api;
pub mod cli;

use serde::Serialize;

use crate::config::Config;
use crate::policy;
use crate::session::{Selection, SessionEntry, Store, StoreError};

/// Whose sessions a command is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// By username (`OIDC_USERNAME_CLAIM`), as the identity headers name the user.
    User(String),
    All,
}

impl Target {
    /// What the store is asked, and the provider it is limited to: a user written
    /// `provider:user` with one of `providers` is that provider's user only (with several
    /// providers the same name may be two people); any other name is every provider's.
    pub fn scope<'t>(&'t self, providers: &[&str]) -> (Selection<'t>, Option<&'t str>) {
        match self {
            Target::User(entry) => match policy::qualified_user(entry, providers) {
                Some((provider, user)) => (Selection::User(user), Some(provider)),
                None => (Selection::User(entry), None),
            },
            Target::All => (Selection::All, None),
        }
    }

    pub fn selection(&self) -> Selection<'_> {
        match self {
            Target::User(user) => Selection::User(user),
            Target::All => Selection::All,
        }
    }
}

/// One live session as an operator sees it: who, from where, since and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    pub user: String,
    /// The provider the user signed in with (`OIDC_PROVIDERS`); `null` for the one unnamed.
    pub provider: Option<String>,
    /// The IdP's session id (`sid`), to match a session with the IdP's own records.
    pub idp_session: Option<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds, when an auth check last used it (written at most once a minute).
    pub last_seen: Option<u64>,
    /// Unix seconds.
    pub expires_at: u64,
    pub user_agent: Option<String>,
    /// The client address at sign-in, as the proxy reported it.
    pub address: Option<String>,
}

impl From<SessionEntry> for Listed {
    fn from(entry: SessionEntry) -> Listed {
        let session = entry.session;
        Listed {
            user: session.user,
            provider: session.provider,
            idp_session: session.idp_session,
            created_at: session.created_at,
            last_seen: entry.last_seen,
            expires_at: session.expires_at,
            user_agent: session.user_agent,
            address: session.address,
        }
    }
}

/// The configured providers' names, for [`Target::scope`].
pub fn provider_names(config: &Config) -> Vec<&str> {
    config
        .providers
        .iter()
        .filter_map(|p| p.name.as_deref())
        .collect()
}

/// The live sessions of `target`, as an operator sees them.
pub async fn list(
    store: &Store,
    target: &Target,
    providers: &[&str],
    now: u64,
) -> Result<Vec<Listed>, StoreError> {
    let (selection, provider) = target.scope(providers);
    let entries = store.list_sessions(selection, now).await?;
    Ok(entries
        .into_iter()
        .filter(|entry| provider.is_none() || entry.session.provider.as_deref() == provider)
        .map(Listed::from)
        .collect())
}

/// Ends the sessions of `target`; how many there were.
pub async fn revoke(
    store: &Store,
    target: &Target,
    providers: &[&str],
) -> Result<usize, StoreError> {
    match target.scope(providers) {
        (selection, None) => store.end_sessions(selection).await,
        (selection, provider) => store.end_provider_sessions(selection, provider).await,
    }
}

/// "ended 1 session", "ended 3 sessions": what both the CLI and the logs say.
pub fn ended(count: usize) -> String {
    format!("ended {count} session{}", if count == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests;
