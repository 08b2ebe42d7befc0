//! The session store: one small surface, two backends (memory and Redis).
//!
//! An enum rather than a trait object: there are exactly two backends, dispatch stays static on
//! the hot path, and no async-trait boxing is needed. Serialisation lives here and in
//! `session::encode`, so both backends only move bytes; each backend names its own keys from a
//! [`Space`] and an id, so the memory store keys its maps without building strings.

use std::sync::Arc;
use std::time::Duration;

use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::{Session, StoredSession};

/// The kinds of entries kept, each in its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// session id -> encoded [`Session`]
    Session,
    /// session id -> sealed tokens
    Tokens,
    /// `state` -> a marker that the login was completed (see [`Store::claim_login`])
    Login,
    /// username -> set of that user's session ids (Redis only)
    User,
    /// probes written by [`Store::ping`]
    Ping,
}

impl Space {
    pub const ALL: [Space; 5] = [
        Space::Session,
        Space::Tokens,
        Space::Login,
        Space::User,
        Space::Ping,
    ];

    /// The Redis key prefix (documented in the README for revocation by hand).
    pub fn prefix(self) -> &'static str {
        match self {
            Space::Session => "portcullis:session:",
            Space::Tokens => "portcullis:tokens:",
            Space::Login => "portcullis:login:",
            Space::User => "portcullis:user:",
            Space::Ping => "portcullis:ping:",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    #[error("stored value is unreadable: {0}")]
    Corrupt(String),
}

// One Store exists per process; the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl Store {
    pub fn memory() -> Store {
        Store::Memory(MemoryStore::default())
    }

    pub fn redis(url: &str) -> Result<Store, StoreError> {
        RedisStore::new(url).map(Store::Redis)
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    async fn get(&self, space: Space, id: &str) -> Result<Option<Arc<[u8]>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.get(space, id)),
            Store::Redis(r) => Ok(r.get(space, id).await?.map(Arc::from)),
        }
    }

    async fn set(
        &self,
        space: Space,
        id: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.set(space, id, value.into(), ttl);
                Ok(())
            }
            Store::Redis(r) => r.set(space, id, value, ttl).await,
        }
    }

    async fn take(&self, space: Space, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.take(space, id).map(|value| value.to_vec())),
            Store::Redis(r) => r.take(space, id).await,
        }
    }

    /// Deletes entries; returns how many existed.
    async fn delete(&self, keys: &[(Space, &str)]) -> Result<usize, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.delete(keys)),
            Store::Redis(r) => r.delete(keys).await,
        }
    }

    /// The session behind an id, still encoded: the auth check reads it in place
    /// ([`StoredSession::live_view`]).
    pub async fn get_session(&self, id: &str) -> Result<Option<StoredSession>, StoreError> {
        Ok(self.get(Space::Session, id).await?.map(StoredSession::new))
    }

    /// Stores a session, its sealed tokens (if any), and indexes it under its user so that all
    /// of a user's sessions can be revoked at once.
    pub async fn put_session(
        &self,
        id: &str,
        session: &Session,
        sealed_tokens: Option<String>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.set(Space::Session, id, super::encode(session)?, ttl)
            .await?;
        if let Some(tokens) = sealed_tokens {
            self.set(Space::Tokens, id, tokens.into_bytes(), ttl)
                .await?;
        }
        match self {
            // The memory store finds a user's sessions by scanning them (see memory.rs).
            Store::Memory(_) => Ok(()),
            Store::Redis(r) => r.add_to_set(Space::User, &session.user, id, ttl).await,
        }
    }

    pub async fn get_sealed_tokens(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(Space::Tokens, id)
            .await?
            .and_then(|b| String::from_utf8(b.to_vec()).ok()))
    }

    pub async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.delete(&[(Space::Session, id), (Space::Tokens, id)])
            .await?;
        Ok(())
    }

    /// Revokes every session of a user; returns how many live sessions were removed.
    pub async fn delete_user_sessions(&self, user: &str) -> Result<usize, StoreError> {
        let ids = match self {
            Store::Memory(m) => m.ids_where(Space::Session, |bytes| {
                StoredSession::new(bytes)
                    .view()
                    .is_ok_and(|view| view.user == user)
            }),
            Store::Redis(r) => r.set_members(Space::User, user).await?,
        };
        let sessions: Vec<(Space, &str)> =
            ids.iter().map(|id| (Space::Session, id.as_str())).collect();
        let mut others: Vec<(Space, &str)> =
            ids.iter().map(|id| (Space::Tokens, id.as_str())).collect();
        others.push((Space::User, user));
        let removed = self.delete(&sessions).await?;
        self.delete(&others).await?;
        Ok(removed)
    }

    /// Marks a login's `state` as used, for `ttl` (its remaining lifetime). True when this call
    /// marked it, false when it was already used: a `state` completes one callback only. The
    /// login itself lives in the browser's sealed login cookie, so an anonymous `/oauth2/start`
    /// stores nothing; only a callback that brings a genuine login cookie writes this marker.
    pub async fn claim_login(&self, state: &str, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => {
                Ok(m.insert_if_absent(Space::Login, state, Arc::from(&b"1"[..]), ttl))
            }
            Store::Redis(r) => {
                r.set_if_absent(Space::Login, state, b"1".to_vec(), ttl)
                    .await
            }
        }
    }

    /// Whether a login's `state` has been used (to explain a callback that lost its cookie).
    pub async fn login_used(&self, state: &str) -> Result<bool, StoreError> {
        Ok(self.get(Space::Login, state).await?.is_some())
    }

    /// A write, read and delete round trip: proves the store answers and keeps what it is given.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let id = crate::crypto::random_id();
        self.set(Space::Ping, &id, b"ok".to_vec(), Duration::from_secs(10))
            .await?;
        let read = self.take(Space::Ping, &id).await?;
        if read.as_deref() == Some(&b"ok"[..]) {
            Ok(())
        } else {
            Err(StoreError::Unavailable(
                "wrote a value and did not read it back".to_string(),
            ))
        }
    }
}

#[cfg(test)]
#[path = "store_tests.rs"]
pub(crate) mod tests;
