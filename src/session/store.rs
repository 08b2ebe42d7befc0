//! The session store: one small surface, two backends (memory and Redis).
//!
//! An enum rather than a trait object: there are exactly two backends, dispatch stays static on
//! the hot path, and no async-trait boxing is needed. Encoding lives in the codec, so both
//! backends only move bytes; each names its own keys from a [`Space`] and an id, and each keeps
//! its own index of a user's sessions.
//!
//! In front of Redis, each replica may keep the sessions it checked lately in memory (see
//! `cache`): every ending or change of a session goes through [`Store::end_ids`] or
//! [`Store::replace_session`], which evict it here and announce it to every other replica.

use std::sync::Arc;
use std::time::Duration;

use super::cache::{Cached, SessionCache};
use super::codec::{encode, Session, StoredSession};
use super::error::StoreError;
use super::invalidation;
use super::keys::Space;
use super::memory::MemoryStore;
use super::redis::RedisStore;
use crate::config::{Config, DEFAULT_COOKIE_NAME};

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

/// A session read for a check: its stored bytes (if it exists), its last-seen mark, and the
/// cache entry it came from or went into, for what a check derives from it once.
pub struct Found {
    pub session: Option<StoredSession>,
    pub seen: Option<u64>,
    pub cached: Option<Cached>,
}

impl Found {
    fn cached(hit: Cached) -> Found {
        Found {
            session: Some(StoredSession::new(hit.session().clone())),
            seen: hit.seen(),
            cached: Some(hit),
        }
    }
}

/// Redis, the replica's cache in front of it (if on) and the channel endings are announced on.
#[derive(Clone)]
pub struct RedisSessions {
    redis: RedisStore,
    cache: Option<Arc<SessionCache>>,
    channel: Arc<str>,
}

impl RedisSessions {
    /// Evicts `ids` here and tells every replica (the CLI too: it has no cache, but servers
    /// do). A lost announcement is logged, not an error: the session has ended in Redis, and
    /// other replicas forget it within `SESSION_CACHE_TTL` anyway.
    async fn announce(&self, ids: &[String]) {
        if let Some(cache) = &self.cache {
            cache.evict(ids.iter().map(String::as_str));
        }
        for message in invalidation::messages(ids) {
            if let Err(err) = self.redis.publish(&self.channel, message).await {
                tracing::warn!(
                    error = %err,
                    sessions = ids.len(),
                    "could not announce ended sessions to the other replicas; their caches \
                     forget them within SESSION_CACHE_TTL"
                );
            }
        }
    }
}

#[derive(Clone)]
pub enum Store {
    Memory(MemoryStore),
    Redis(RedisSessions),
}

impl Store {
    pub fn memory() -> Store {
        Store::Memory(MemoryStore::default())
    }

    /// One Redis server at `url`, without a cache (tests, the benchmark's fill).
    pub fn redis(url: &str) -> Result<Store, StoreError> {
        Ok(Store::Redis(RedisSessions {
            redis: RedisStore::new(url)?,
            cache: None,
            channel: invalidation::channel(DEFAULT_COOKIE_NAME).into(),
        }))
    }

    /// The Redis the configuration names (with the cache if `SESSION_CACHE_TTL` is not 0), or
    /// the memory store without one. The cache answers nothing until [`Store::listen`] runs.
    pub fn from_config(config: &Config) -> Result<Store, StoreError> {
        let Some(settings) = &config.store.redis else {
            return Ok(Store::memory());
        };
        let cache = &config.store.cache;
        Ok(Store::Redis(RedisSessions {
            redis: RedisStore::from_settings(settings)?,
            cache: cache.enabled().then(|| Arc::new(SessionCache::new(*cache))),
            channel: invalidation::channel(&config.cookie_name).into(),
        }))
    }

    /// Starts hearing invalidations, which turns the cache on (a server does; a command line
    /// tool need not). Needs a Tokio runtime.
    pub fn listen(&self) {
        if let Store::Redis(RedisSessions {
            redis,
            cache: Some(cache),
            channel,
        }) = self
        {
            tokio::spawn(invalidation::listen(
                redis.connector(),
                cache.clone(),
                channel.to_string(),
                redis.timeout(),
            ));
        }
    }

    /// Whether this replica answers checks from its cache right now (tests wait for it).
    pub fn cache_listening(&self) -> bool {
        matches!(self, Store::Redis(RedisSessions { cache: Some(cache), .. }) if cache.is_listening())
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Store::Memory(_) => "memory",
            Store::Redis(r) => r.redis.topology(),
        }
    }

    async fn get(&self, space: Space, id: &str) -> Result<Option<Arc<[u8]>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.get(space, id)),
            Store::Redis(r) => Ok(r.redis.get(space, id).await?.map(Arc::from)),
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
            Store::Redis(r) => r.redis.set(space, id, value, ttl).await,
        }
    }

    async fn take(&self, space: Space, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.take(space, id).map(|value| value.to_vec())),
            Store::Redis(r) => r.redis.take(space, id).await,
        }
    }

    /// Deletes one entry; true when it existed.
    async fn delete(&self, space: Space, id: &str) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.delete(&[(space, id)]) > 0),
            Store::Redis(r) => r.redis.delete(space, id).await,
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
                r.redis.put_session(id, bytes, tokens, names, ttl).await
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
        let found = self.find_session(id, None).await?;
        Ok((found.session, found.seen))
    }

    /// The replica's cached session (cache on, invalidations heard) whose cookie was verified
    /// as exactly `cookie` by [`Store::find_session`]: its signature need not be checked again.
    /// `id` must be the id `cookie` names; a cookie for another id never matches an entry.
    pub fn cached_for_cookie(&self, id: &str, cookie: &str) -> Option<Found> {
        let Store::Redis(RedisSessions {
            cache: Some(cache), ..
        }) = self
        else {
            return None;
        };
        let hit = cache.get_verified(id, cookie)?;
        Some(Found::cached(hit))
    }

    /// [`Store::get_session_seen`], with the cache entry that answered or was filled (if any).
    /// `cookie`: the value whose signature was just verified for `id`, remembered in the entry
    /// so that the same cookie skips the HMAC next time ([`Store::cached_for_cookie`]).
    pub async fn find_session(&self, id: &str, cookie: Option<&str>) -> Result<Found, StoreError> {
        match self {
            Store::Memory(m) => Ok(Found {
                session: m.get(Space::Session, id).map(StoredSession::new),
                seen: m.get(Space::Seen, id).and_then(|b| decode_seen(&b)),
                cached: None,
            }),
            Store::Redis(r) => {
                let Some(cache) = &r.cache else {
                    let (session, seen) = Self::read_session_seen(&r.redis, id).await?;
                    return Ok(Found {
                        session,
                        seen,
                        cached: None,
                    });
                };
                if let Some(hit) = cache.get(id) {
                    if let Some(cookie) = cookie {
                        hit.verified(cookie);
                    }
                    return Ok(Found::cached(hit));
                }
                // Taken before the read: an ending announced meanwhile voids it.
                let ticket = cache.ticket();
                let (session, seen) = r.redis.get_session_seen(id).await?;
                // Only sessions that exist are kept: an unknown id stays a store read.
                let session: Option<Arc<[u8]>> = session.map(Arc::from);
                let seen = seen.and_then(|b| decode_seen(&b));
                let mut cached = None;
                if let (Some(bytes), Some(ticket)) = (&session, ticket) {
                    let entry = Cached::new(bytes.clone(), seen);
                    if let Some(cookie) = cookie {
                        entry.verified(cookie);
                    }
                    // Kept or not (an ending raced the read), it holds what was just read:
                    // good for this one check.
                    cache.insert(id, entry.clone(), ticket);
                    cached = Some(entry);
                }
                Ok(Found {
                    session: session.map(StoredSession::new),
                    seen,
                    cached,
                })
            }
        }
    }

    /// The session and its last-seen mark as the store has them now, past any cache (before
    /// acting on what a cached copy suggests, such as ending an idle session).
    pub async fn get_session_seen_fresh(
        &self,
        id: &str,
    ) -> Result<(Option<StoredSession>, Option<u64>), StoreError> {
        match self {
            Store::Memory(_) => self.get_session_seen(id).await,
            Store::Redis(r) => Self::read_session_seen(&r.redis, id).await,
        }
    }

    async fn read_session_seen(
        redis: &RedisStore,
        id: &str,
    ) -> Result<(Option<StoredSession>, Option<u64>), StoreError> {
        let (session, seen) = redis.get_session_seen(id).await?;
        Ok((
            session.map(StoredSession::new),
            seen.and_then(|b| decode_seen(&b)),
        ))
    }

    /// Records that a session was used at `now`; kept as long as the session (`ttl`).
    pub async fn touch(&self, id: &str, now: u64, ttl: Duration) -> Result<(), StoreError> {
        if let Store::Redis(RedisSessions {
            cache: Some(cache), ..
        }) = self
        {
            cache.touched(id, now);
        }
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
            (Store::Redis(r), Selection::All) => r.redis.all_session_ids().await,
            (Store::Redis(r), Selection::User(user)) => {
                r.redis.index_members(Space::User, user).await
            }
            (Store::Redis(r), Selection::Subject(subject)) => {
                r.redis.index_members(Space::Subject, subject).await
            }
            (Store::Redis(r), Selection::IdpSession(sid)) => {
                r.redis.index_members(Space::IdpSession, sid).await
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
            // Past the cache: a listing must not fill it with every session, nor show stale marks.
            let (Some(stored), last_seen) = self.get_session_seen_fresh(&id).await? else {
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
        self.delete_index(which).await?;
        Ok(ended)
    }

    /// The index a selection reads goes with its sessions (the memory store keeps none).
    async fn delete_index(&self, which: Selection<'_>) -> Result<(), StoreError> {
        let index = match which {
            Selection::User(user) => Some((Space::User, user)),
            Selection::Subject(subject) => Some((Space::Subject, subject)),
            Selection::IdpSession(sid) => Some((Space::IdpSession, sid)),
            Selection::All => None,
        };
        if let (Store::Redis(_), Some((space, name))) = (self, index) {
            self.delete(space, name).await?;
        }
        Ok(())
    }

    /// [`Store::end_sessions`] limited to the sessions of one provider: a `sub` or `sid` is
    /// only unique within one issuer, so a provider's back-channel logout must never end
    /// another provider's sessions that happen to share it.
    pub async fn end_provider_sessions(
        &self,
        which: Selection<'_>,
        provider: Option<&str>,
    ) -> Result<usize, StoreError> {
        let ids = self.session_ids(which).await?;
        let mut theirs = Vec::with_capacity(ids.len());
        for id in &ids {
            if let Some(stored) = self.get_session(id).await? {
                // An unreadable session is ended too: it signs nobody in anyway.
                if stored.view().map_or(true, |view| view.provider == provider) {
                    theirs.push(id.clone());
                }
            }
        }
        let ended = self.end_ids(&theirs).await?;
        if theirs.len() == ids.len() {
            // Nothing of another provider's left under the index: it goes too.
            self.delete_index(which).await?;
        }
        Ok(ended)
    }

    /// Ends one session (sign-out, a new login over an old one); true when it existed.
    pub async fn end_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.end_ids(&[id.to_owned()]).await? > 0)
    }

    /// Every ending of a session comes here, whatever asked for it: the session, its sealed
    /// tokens, its last-seen mark and its refresh lock go together, and every replica's cache
    /// is told. (Index sets may keep a stale id until they expire; every reader of an index
    /// skips ids without a session.)
    async fn end_ids(&self, ids: &[String]) -> Result<usize, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        match self {
            Store::Memory(m) => {
                let keys: Vec<(Space, &str)> = ids
                    .iter()
                    .flat_map(|id| {
                        [Space::Tokens, Space::Seen, Space::RefreshLock]
                            .map(|space| (space, id.as_str()))
                    })
                    .collect();
                let sessions: Vec<(Space, &str)> =
                    ids.iter().map(|id| (Space::Session, id.as_str())).collect();
                let ended = m.delete(&sessions);
                m.delete(&keys);
                Ok(ended)
            }
            Store::Redis(r) => {
                let ended = r.redis.end_sessions(ids).await;
                // Announced even when Redis failed part-way: some may have ended.
                r.announce(ids).await;
                ended
            }
        }
    }

    /// Marks `key` in `space` as used for `ttl`; true when this call marked it.
    async fn claim_once(&self, space: Space, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        match self {
            Store::Memory(m) => Ok(m.insert_if_absent(space, key, Arc::from(&b"1"[..]), ttl)),
            Store::Redis(r) => r.redis.set_if_absent(space, key, b"1".to_vec(), ttl).await,
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
        self.delete(Space::RefreshLock, id).await.map(|_| ())
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
                let replaced = r.redis.replace_session(id, bytes, tokens, names, ttl).await;
                // The claims changed (or the session ended meanwhile): no replica keeps the
                // old copy.
                r.announce(&[id.to_owned()]).await;
                replaced
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
