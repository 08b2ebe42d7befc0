//! The session store: one small surface, two backends (memory and Redis).
//!
//! An enum rather than a trait object: there are exactly two backends, dispatch stays static on
//! the hot path, and no async-trait boxing is needed. Serialisation and key naming live here,
//! so both backends only move bytes.

use std::time::Duration;

use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::{LoginState, Session};

const SESSION_PREFIX: &str = "portcullis:session:";
const TOKENS_PREFIX: &str = "portcullis:tokens:";
const LOGIN_PREFIX: &str = "portcullis:login:";
const USER_PREFIX: &str = "portcullis:user:";

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

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.get(key)),
            Store::Redis(r) => r.get(key).await,
        }
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), StoreError> {
        match self {
            Store::Memory(m) => {
                m.set(key, value, ttl);
                Ok(())
            }
            Store::Redis(r) => r.set(key, value, ttl).await,
        }
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.take(key)),
            Store::Redis(r) => r.take(key).await,
        }
    }

    /// Deletes keys; returns how many existed.
    async fn delete(&self, keys: &[String]) -> Result<usize, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.delete(keys)),
            Store::Redis(r) => r.delete(keys).await,
        }
    }

    pub async fn get_session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let Some(bytes) = self.get(&format!("{SESSION_PREFIX}{id}")).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
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
        let bytes = serde_json::to_vec(session).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.set(&format!("{SESSION_PREFIX}{id}"), bytes, ttl)
            .await?;
        if let Some(tokens) = sealed_tokens {
            self.set(&format!("{TOKENS_PREFIX}{id}"), tokens.into_bytes(), ttl)
                .await?;
        }
        let index = format!("{USER_PREFIX}{}", session.user);
        match self {
            Store::Memory(m) => {
                m.add_to_set(&index, id, ttl);
                Ok(())
            }
            Store::Redis(r) => r.add_to_set(&index, id, ttl).await,
        }
    }

    pub async fn get_sealed_tokens(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(&format!("{TOKENS_PREFIX}{id}"))
            .await?
            .and_then(|b| String::from_utf8(b).ok()))
    }

    pub async fn delete_session(&self, id: &str) -> Result<(), StoreError> {
        self.delete(&[
            format!("{SESSION_PREFIX}{id}"),
            format!("{TOKENS_PREFIX}{id}"),
        ])
        .await?;
        Ok(())
    }

    /// Revokes every session of a user; returns how many live sessions were removed.
    pub async fn delete_user_sessions(&self, user: &str) -> Result<usize, StoreError> {
        let index = format!("{USER_PREFIX}{user}");
        let ids = match self {
            Store::Memory(m) => m.set_members(&index),
            Store::Redis(r) => r.set_members(&index).await?,
        };
        let sessions: Vec<String> = ids
            .iter()
            .map(|id| format!("{SESSION_PREFIX}{id}"))
            .collect();
        let mut others: Vec<String> = ids
            .iter()
            .map(|id| format!("{TOKENS_PREFIX}{id}"))
            .collect();
        others.push(index);
        let removed = self.delete(&sessions).await?;
        self.delete(&others).await?;
        Ok(removed)
    }

    pub async fn put_login(
        &self,
        state: &str,
        login: &LoginState,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(login).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.set(&format!("{LOGIN_PREFIX}{state}"), bytes, ttl)
            .await
    }

    /// Reads and deletes in one step, so a `state` can be used once only.
    pub async fn take_login(&self, state: &str) -> Result<Option<LoginState>, StoreError> {
        let Some(bytes) = self.take(&format!("{LOGIN_PREFIX}{state}")).await? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// A write, read and delete round trip: proves the store answers and keeps what it is given.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let key = format!("portcullis:ping:{}", crate::crypto::random_id());
        self.set(&key, b"ok".to_vec(), Duration::from_secs(10))
            .await?;
        let read = self.take(&key).await?;
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
