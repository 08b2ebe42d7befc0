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

/// Which sessions an operation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection<'a> {
    /// By username (`OIDC_USERNAME_CLAIM`).
    User(&'a str),
    /// By the IdP's `sub`.
    Subject(&'a str),
    /// By the IdP's session id (`sid`).
    IdpSession(&'a str),
    All,
}

/// One live session as the lists show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEntry {
    pub id: String,
    pub session: Session,
    /// Unix seconds, when an auth check last used it (written at most once a minute).
    pub last_seen: Option<u64>,
}

fn decode_seen(bytes: &[u8]) -> Option<u64> {
    <[u8; 8]>::try_from(bytes).ok().map(u64::from_le_bytes)
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
            Store::Redis(r) => {
                let names = (
                    session.user.as_str(),
                    session.subject.as_str(),
                    session.idp_session.as_deref(),
                );
                r.put_session(id, bytes, tokens, names, ttl).await
            }
        }
    }

    pub async fn get_sealed_tokens(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(Space::Tokens, id)
            .await?
            .and_then(|b| String::from_utf8(b.to_vec()).ok()))
    }

    /// The session behind an id and when it was last seen, in one round trip.
    pub async fn get_session_seen(
        &self,
        id: &str,
    ) -> Result<(Option<StoredSession>, Option<u64>), StoreError> {
        match self {
            Store::Memory(m) => Ok((
                m.get(Space::Session, id).map(StoredSession::new),
                m.get(Space::Seen, id).and_then(|b| decode_seen(&b)),
            )),
            Store::Redis(r) => {
                let mut values = r
                    .get_many(&[(Space::Session, id), (Space::Seen, id)])
                    .await?
                    .into_iter();
                let session = values.next().flatten().map(StoredSession::new);
                let seen = values.next().flatten().and_then(|b| decode_seen(&b));
                Ok((session, seen))
            }
        }
    }

    /// Records that a session was used at `now`; kept as long as the session (`ttl`).
    pub async fn touch(&self, id: &str, now: u64, ttl: Duration) -> Result<(), StoreError> {
        self.set(Space::Seen, id, now.to_le_bytes().to_vec(), ttl)
            .await
    }

    /// The ids of the sessions `which` selects (some may have ended since: readers skip them).
    async fn session_ids(&self, which: Selection<'_>) -> Result<Vec<String>, StoreError> {
        match (self, which) {
            (Store::Memory(m), Selection::All) => Ok(m.session_ids_where(|_| true)),
            (Store::Memory(m), Selection::User(user)) => {
                Ok(m.session_ids_where(|view| view.user == user))
            }
            (Store::Memory(m), Selection::Subject(subject)) => {
                Ok(m.session_ids_where(|view| !subject.is_empty() && view.subject == subject))
            }
            (Store::Memory(m), Selection::IdpSession(sid)) => {
                Ok(m.session_ids_where(|view| view.idp_session == Some(sid)))
            }
            (Store::Redis(r), Selection::All) => r.all_session_ids().await,
            (Store::Redis(r), Selection::User(user)) => r.index_members(Space::User, user).await,
            (Store::Redis(r), Selection::Subject(subject)) => {
                r.index_members(Space::Subject, subject).await
            }
            (Store::Redis(r), Selection::IdpSession(sid)) => {
                r.index_members(Space::IdpSession, sid).await
            }
        }
    }

    /// The live sessions `which` selects, with when each was last seen, oldest first.
    pub async fn list_sessions(
        &self,
        which: Selection<'_>,
        now: u64,
    ) -> Result<Vec<SessionEntry>, StoreError> {
        let mut entries = Vec::new();
        for id in self.session_ids(which).await? {
            let (Some(stored), last_seen) = self.get_session_seen(&id).await? else {
                continue;
            };
            // Index entries can outlive their session; the view decides what is live.
            let Ok(view) = stored.live_view(now) else {
                continue;
            };
            entries.push(SessionEntry {
                session: view.to_session(),
                id,
                last_seen,
            });
        }
        entries.sort_by(|a, b| (a.session.created_at, &a.id).cmp(&(b.session.created_at, &b.id)));
        Ok(entries)
    }

    /// Ends the sessions `which` selects; returns how many existed.
    pub async fn end_sessions(&self, which: Selection<'_>) -> Result<usize, StoreError> {
        let ids = self.session_ids(which).await?;
        let ended = self.end_ids(&ids).await?;
        // The index itself goes too (the memory store keeps none).
        let index = match which {
            Selection::User(user) => Some((Space::User, user)),
            Selection::Subject(subject) => Some((Space::Subject, subject)),
            Selection::IdpSession(sid) => Some((Space::IdpSession, sid)),
            Selection::All => None,
        };
        if let (Store::Redis(_), Some(index)) = (self, index) {
            self.delete(&[index]).await?;
        }
        Ok(ended)
    }

    /// Ends one session (sign-out, a new login over an old one); true when it existed.
    pub async fn end_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.end_ids(&[id.to_owned()]).await? > 0)
    }

    /// Every ending of a session comes here, whatever asked for it: the session, its sealed
    /// tokens and its last-seen mark go together. (Index sets may keep a stale id until they
    /// expire; every reader of an index skips ids without a session.)
    async fn end_ids(&self, ids: &[String]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let sessions: Vec<(Space, &str)> =
            ids.iter().map(|id| (Space::Session, id.as_str())).collect();
        let others: Vec<(Space, &str)> = ids
            .iter()
            .flat_map(|id| [(Space::Tokens, id.as_str()), (Space::Seen, id.as_str())])
            .collect();
        let ended = self.delete(&sessions).await?;
        self.delete(&others).await?;
        Ok(ended)
    }

    /// Marks `key` in `space` as used for `ttl`; true when this call marked it.
    async fn claim_once(&self, space: Space, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.insert_if_absent(space, key, Arc::from(&b"1"[..]), ttl)),
            Store::Redis(r) => r.set_if_absent(space, key, b"1".to_vec(), ttl).await,
        }
    }

    /// Takes the revalidation lock of a session for `ttl`: true when this call took it, so that
    /// of many concurrent checks, on any replica, one refreshes.
    pub async fn claim_refresh(&self, id: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.claim_once(Space::RefreshLock, id, ttl).await
    }

    /// Sets the revalidation lock's remaining time to `ttl` (the pause after a failed try).
    pub async fn hold_refresh(&self, id: &str, ttl: Duration) -> Result<(), StoreError> {
        self.set(Space::RefreshLock, id, b"1".to_vec(), ttl).await
    }

    /// Releases the revalidation lock (the refresh is done).
    pub async fn release_refresh(&self, id: &str) -> Result<(), StoreError> {
        self.delete(&[(Space::RefreshLock, id)]).await.map(|_| ())
    }

    /// Replaces a session after a revalidation, with its new sealed tokens (if any) and for
    /// `ttl` (what is left of its lifetime), only while it exists. True when replaced.
    pub async fn replace_session(
        &self,
        id: &str,
        session: &Session,
        sealed_tokens: Option<String>,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let bytes = encode(session)?;
        let tokens = sealed_tokens.map(String::into_bytes);
        match self {
            Store::Memory(m) => Ok(m.replace_session(id, bytes, tokens, ttl)),
            Store::Redis(r) => {
                let names = (
                    session.user.as_str(),
                    session.subject.as_str(),
                    session.idp_session.as_deref(),
                );
                r.replace_session(id, bytes, tokens, names, ttl).await
            }
        }
    }

    /// Marks a back-channel logout token's `jti` as used for `ttl` (the token's lifetime): true
    /// when it had not been seen, on any replica.
    pub async fn claim_logout_token(&self, jti: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.claim_once(Space::LogoutToken, jti, ttl).await
    }

    /// Marks a login's `state` as used, for `ttl` (its remaining lifetime). True when this call
    /// marked it, false when it was already used: a `state` completes one callback only. The
    /// login itself lives in the browser's sealed login cookie, so an anonymous `/oauth2/start`
    /// stores nothing; only a callback that brings a genuine login cookie writes this marker.
    pub async fn claim_login(&self, state: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.claim_once(Space::Login, state, ttl).await
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
