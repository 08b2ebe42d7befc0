//! Each replica's memory of the sessions it checked lately, in front of Redis.
//!
//! An entry may be answered for `SESSION_CACHE_TTL` after it was read, unless an invalidation
//! evicts it first: every ending or change of a session is broadcast (see `invalidation`),
//! and while the broadcast cannot be heard the cache is emptied and bypassed. So an ended
//! session outlives its ending here only by the broadcast's delivery, or by at most the TTL
//! when a broadcast is lost without the subscription noticing.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::config::CacheSettings;

/// A session as read from the store, and when it was last seen (0: not yet).
#[derive(Clone)]
pub struct Cached {
    pub session: Arc<[u8]>,
    /// Shared by every copy, so that a touch updates the entry in place (re-inserting it would
    /// restart its time to live).
    seen: Arc<AtomicU64>,
}

impl Cached {
    pub fn new(session: Arc<[u8]>, seen: Option<u64>) -> Cached {
        Cached {
            session,
            seen: Arc::new(AtomicU64::new(seen.unwrap_or(0))),
        }
    }

    pub fn seen(&self) -> Option<u64> {
        match self.seen.load(Ordering::Relaxed) {
            0 => None,
            seen => Some(seen),
        }
    }
}

/// A read's permission to fill the cache: valid only if nothing was invalidated since it was
/// taken, so that a read racing an ending cannot put the ended session back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

pub struct SessionCache {
    entries: moka::sync::Cache<String, Cached>,
    /// Bumped before every eviction and clear.
    generation: AtomicU64,
    /// Whether invalidations can be heard; while not, nothing is answered or kept.
    listening: AtomicBool,
}

impl SessionCache {
    pub fn new(settings: CacheSettings) -> SessionCache {
        SessionCache {
            entries: moka::sync::Cache::builder()
                .max_capacity(settings.size)
                .time_to_live(settings.ttl)
                .build(),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
        }
    }

    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    /// The cached session, while invalidations are heard.
    pub fn get(&self, id: &str) -> Option<Cached> {
        if !self.is_listening() {
            return None;
        }
        self.entries.get(id)
    }

    /// Taken before reading the store; `None` while the cache is bypassed.
    pub fn ticket(&self) -> Option<Ticket> {
        let ticket = Ticket(self.generation.load(Ordering::SeqCst));
        self.is_listening().then_some(ticket)
    }

    /// Keeps what a read found, if nothing was invalidated since its ticket was taken.
    pub fn insert(&self, id: &str, cached: Cached, ticket: Ticket) {
        if self.generation.load(Ordering::SeqCst) != ticket.0 || !self.is_listening() {
            return;
        }
        self.entries.insert(id.to_owned(), cached);
        // An eviction bumps the generation before it evicts: if one came in between the check
        // above and the insert, it either evicts this entry or is seen here.
        if self.generation.load(Ordering::SeqCst) != ticket.0 {
            self.entries.invalidate(id);
        }
    }

    /// Records a touch in the cached entry (if any), so the next check does not write again.
    pub fn touched(&self, id: &str, now: u64) {
        if let Some(cached) = self.entries.get(id) {
            cached.seen.store(now, Ordering::Relaxed);
        }
    }

    /// Forgets these sessions (they ended or changed, here or on another replica).
    pub fn evict<'a>(&self, ids: impl IntoIterator<Item = &'a str>) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let mut evicted = 0;
        for id in ids {
            if self.entries.remove(id).is_some() {
                evicted += 1;
            }
        }
        evicted
    }

    /// Invalidations can no longer be heard: forget everything and answer nothing from memory.
    pub fn stop_listening(&self) -> u64 {
        self.listening.store(false, Ordering::SeqCst);
        self.clear()
    }

    /// Subscribed (again): whatever was missed meanwhile is unknown, so start empty.
    pub fn start_listening(&self) -> u64 {
        let cleared = self.clear();
        self.listening.store(true, Ordering::SeqCst);
        cleared
    }

    fn clear(&self) -> u64 {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let count = self.entries.entry_count();
        self.entries.invalidate_all();
        count
    }

    pub fn entry_count(&self) -> u64 {
        self.entries.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn cache() -> SessionCache {
        let cache = SessionCache::new(CacheSettings {
            ttl: Duration::from_secs(60),
            size: 100,
        });
        cache.start_listening();
        cache
    }

    fn session(bytes: &[u8]) -> Cached {
        Cached::new(Arc::from(bytes), Some(5))
    }

    #[test]
    fn a_read_is_kept_and_answered() {
        let cache = cache();
        let ticket = cache.ticket().unwrap();
        cache.insert("a", session(b"one"), ticket);
        let got = cache.get("a").unwrap();
        assert_eq!(&*got.session, b"one");
        assert_eq!(got.seen(), Some(5));
    }

    #[test]
    fn a_read_that_raced_an_eviction_is_not_kept() {
        let cache = cache();
        let ticket = cache.ticket().unwrap();
        // The session ends (on any replica) while the read is on its way.
        cache.evict(["a"]);
        cache.insert("a", session(b"old"), ticket);
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn eviction_forgets_only_the_named_sessions() {
        let cache = cache();
        for id in ["a", "b"] {
            let ticket = cache.ticket().unwrap();
            cache.insert(id, session(b"x"), ticket);
        }
        assert_eq!(cache.evict(["a", "zzz"]), 1);
        assert!(cache.get("a").is_none());
        assert!(cache.get("b").is_some());
    }

    #[test]
    fn not_listening_means_empty_and_bypassed() {
        let cache = cache();
        let ticket = cache.ticket().unwrap();
        cache.insert("a", session(b"x"), ticket);
        cache.stop_listening();
        assert!(cache.get("a").is_none());
        assert!(cache.ticket().is_none());
        // A read that began while listening cannot fill it now, nor after listening again.
        cache.insert("a", session(b"x"), ticket);
        cache.start_listening();
        assert!(cache.get("a").is_none());
        cache.insert("a", session(b"x"), ticket);
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn a_touch_updates_the_entry_in_place() {
        let cache = cache();
        let ticket = cache.ticket().unwrap();
        cache.insert("a", Cached::new(Arc::from(&b"x"[..]), None), ticket);
        assert_eq!(cache.get("a").unwrap().seen(), None);
        cache.touched("a", 1_700_000_000);
        assert_eq!(cache.get("a").unwrap().seen(), Some(1_700_000_000));
    }

    #[test]
    fn off_when_the_ttl_is_zero() {
        assert!(!CacheSettings {
            ttl: Duration::ZERO,
            size: 10
        }
        .enabled());
    }
}
