//! The session store: one small surface, two backends (memory and Redis).
//!
//! An enum rather than a trait object: there are exactly two backends, dispatch stays static on
//! the hot path, and no async-trait boxing is needed. Encoding lives in the codec, so both
//! backends only move bytes; each names its own keys from a [`Space`] and an id, and each keeps
//! its own index of a user's sessions.

use std::sync::Arc;
use std::time::Duration;

use super::codec::{encode, Session, StoredSession};
use super::error::StoreError;
use super::keys::Space;
use super::memory::MemoryStore;
use super::redis::RedisStore;
use crate::config::Config;

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

    /// The store `REDIS_URL` names, or the memory store without it.
    pub fn from_config(config: &Config) -> Result<Store, StoreError> {
        match &config.redis_url {
            Some(url) => Store::redis(url.expose()),
            None => Ok(Store::memory()),
        }
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

    /// Stores a session and its sealed tokens (if any), indexed under its user so that all of
    /// a user's sessions can be revoked at once.
    pub async fn put_session(
        &self,
        id: &str,
        session: &Session,
        sealed_tokens: Option<String>,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let bytes = encode(session)?;
        let tokens = sealed_tokens.map(String::into_bytes);
        match self {
            Store::Memory(m) => {
                m.put_session(id, bytes, tokens, ttl);
                Ok(())
            }
            Store::Redis(r) => r.put_session(id, bytes, tokens, &session.user, ttl).await,
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
            Store::Memory(m) => m.user_session_ids(user),
            Store::Redis(r) => r.user_session_ids(user).await?,
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
