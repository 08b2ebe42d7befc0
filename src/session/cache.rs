//! Each replica's memory of the sessions it checked lately, in front of Redis.
//!
//! An entry may be answered for `SESSION_CACHE_TTL` after it was read, unless an invalidation
//! evicts it first: every ending or change of a session is broadcast (see `invalidation`),
//! and while the broadcast cannot be heard the cache is emptied and bypassed. So an ended
//! session outlives its ending here only by the broadcast's delivery, or by at most the TTL
//! when a broadcast is lost without the subscription noticing.

use std::any::Any;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use subtle::ConstantTimeEq;

use crate::config::CacheSettings;

/// A session as read from the store, when it was last seen (0: not yet), and what checks of it
/// worked out once: the cookie whose signature held for it, and what the handlers derive from
/// the session. Everything lives and dies with the entry, so an eviction (every ending and
/// change of the session, and the TTL) forgets all of it at once.
#[derive(Clone)]
pub struct Cached(Arc<Entry>);

struct Entry {
    session: Arc<[u8]>,
    /// Shared by every copy, so that a touch updates the entry in place (re-inserting it would
    /// restart its time to live).
    seen: AtomicU64,
    /// The exact cookie value verified for this session: the same value again needs no HMAC.
    cookie: OnceLock<Box<str>>,
    /// Derived from `session` and the immutable configuration only (the decoded session and
    /// its identity headers), by the first check that needs it.
    derived: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for Cached {
    // Never the cookie: it is a credential.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cached")
            .field("bytes", &self.0.session.len())
            .field("seen", &self.seen())
            .finish_non_exhaustive()
    }
}

impl Cached {
    pub fn new(session: Arc<[u8]>, seen: Option<u64>) -> Cached {
        Cached(Arc::new(Entry {
            session,
            seen: AtomicU64::new(seen.unwrap_or(0)),
            cookie: OnceLock::new(),
            derived: OnceLock::new(),
        }))
    }

    pub fn session(&self) -> &Arc<[u8]> {
        &self.0.session
    }

    pub fn seen(&self) -> Option<u64> {
        match self.0.seen.load(Ordering::Relaxed) {
            0 => None,
            seen => Some(seen),
        }
    }

    /// Remembers `cookie` as verified for this session: call only after its signature held
    /// and it named this entry's id. The first one stays (one key signs an id one way only).
    pub fn verified(&self, cookie: &str) {
        let _ = self.0.cookie.set(cookie.into());
    }

    /// Whether `cookie` is byte for byte the value once verified for this session; in constant
    /// time, like the signature check it stands in for.
    pub fn vouches_for(&self, cookie: &str) -> bool {
        self.0
            .cookie
            .get()
            .is_some_and(|known| same_bytes(known.as_bytes(), cookie.as_bytes()))
    }

    /// The value derived from this session by `make`, made by the first caller and kept with
    /// the entry. `None` only if another type was kept first (one type per cache, in practice).
    pub fn derived<T: Any + Send + Sync>(&self, make: impl FnOnce() -> T) -> Option<&T> {
        self.0
            .derived
            .get_or_init(|| Box::new(make()))
            .downcast_ref()
    }
}

/// Whether `a` and `b` are the same bytes, in a time that depends on their lengths only. Eight
/// bytes at a time: `subtle` compares one byte at a time, each behind an optimisation barrier,
/// which cost more than the cache lookup it guards.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (a_words, a_rest) = a.as_chunks::<8>();
    let (b_words, b_rest) = b.as_chunks::<8>();
    let mut diff = 0u64;
    for (x, y) in a_words.iter().zip(b_words) {
        diff |= u64::from_ne_bytes(*x) ^ u64::from_ne_bytes(*y);
    }
    for (x, y) in a_rest.iter().zip(b_rest) {
        diff |= u64::from(x ^ y);
    }
    std::hint::black_box(diff).ct_eq(&0).into()
}

/// A read's permission to fill the cache: valid only if nothing was invalidated since it was
/// taken, so that a read racing an ending cannot put the ended session back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket(u64);

/// The cache's request counters, looked up once (the hit path is the hot path).
struct Counters {
    hit: metrics::Counter,
    miss: metrics::Counter,
    bypass: metrics::Counter,
}

pub struct SessionCache {
    entries: moka::sync::Cache<String, Cached, foldhash::fast::RandomState>,
    counters: Counters,
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
                // Not SipHash: only sessions read from the store are kept, under ids portcullis
                // made, so no client chooses the keys (a forged id is only looked up); foldhash,
                // seeded per process, took a fifth off the cost of a lookup.
                .build_with_hasher(foldhash::fast::RandomState::default()),
            counters: Counters {
                hit: metrics::counter!("portcullis_session_cache_requests_total", "result" => "hit"),
                miss: metrics::counter!("portcullis_session_cache_requests_total", "result" => "miss"),
                bypass: metrics::counter!(
                    "portcullis_session_cache_requests_total",
                    "result" => "bypass"
                ),
            },
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
        let hit = self.entries.get(id);
        if hit.is_some() {
            self.counters.hit.increment(1);
        }
        hit
    }

    /// The cached session whose cookie was verified as exactly `cookie`, while invalidations
    /// are heard; `id` is the id that `cookie` names. Counted as a hit only when it vouches.
    pub fn get_verified(&self, id: &str, cookie: &str) -> Option<Cached> {
        if !self.is_listening() {
            return None;
        }
        let hit = self.entries.get(id).filter(|hit| hit.vouches_for(cookie));
        if hit.is_some() {
            self.counters.hit.increment(1);
        }
        hit
    }

    /// Taken before reading the store after [`SessionCache::get`] found nothing; `None` while
    /// the cache is bypassed.
    pub fn ticket(&self) -> Option<Ticket> {
        let ticket = Ticket(self.generation.load(Ordering::SeqCst));
        if self.is_listening() {
            self.counters.miss.increment(1);
            Some(ticket)
        } else {
            self.counters.bypass.increment(1);
            None
        }
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
            cached.0.seen.store(now, Ordering::Relaxed);
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
        assert_eq!(&**got.session(), b"one");
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

    const COOKIE: &str = "id-a.tag-of-a";

    #[test]
    fn only_the_very_cookie_verified_for_an_entry_vouches_for_it() {
        let cache = cache();
        let ticket = cache.ticket().unwrap();
        let entry = session(b"x");
        entry.verified(COOKIE);
        cache.insert("a", entry, ticket);
        let cases = [
            // (id looked up, cookie presented, answered from memory)
            ("a", COOKIE, true),
            ("a", "id-a.tag-of-b", false),
            ("a", "id-a.tag-of-", false),
            ("a", "id-a.tag-of-aa", false),
            ("a", "", false),
            // Another id is another entry, whatever the cookie.
            ("b", COOKIE, false),
        ];
        for (id, cookie, answered) in cases {
            assert_eq!(
                cache.get_verified(id, cookie).is_some(),
                answered,
                "{id} {cookie:?}"
            );
        }
        // The first verified value stays: a second cannot replace it.
        cache.get("a").unwrap().verified("id-a.other");
        assert!(cache.get_verified("a", COOKIE).is_some());
        assert!(cache.get_verified("a", "id-a.other").is_none());
    }

    #[test]
    fn an_entry_read_without_a_verified_cookie_vouches_for_none() {
        let cache = cache();
        let ticket = cache.ticket().unwrap();
        cache.insert("a", session(b"x"), ticket);
        assert!(cache.get("a").is_some());
        assert!(cache.get_verified("a", COOKIE).is_none());
        assert!(cache.get_verified("a", "").is_none());
    }

    #[test]
    fn what_an_entry_remembers_goes_with_it() {
        let cache = cache();
        let ticket = cache.ticket().unwrap();
        let entry = session(b"x");
        entry.verified(COOKIE);
        assert_eq!(entry.derived(|| 7_u32), Some(&7));
        cache.insert("a", entry, ticket);
        // Made once: a later maker is not asked.
        assert_eq!(cache.get("a").unwrap().derived(|| 8_u32), Some(&7));
        // Ended or changed: neither the cookie nor what was derived survives.
        cache.evict(["a"]);
        assert!(cache.get_verified("a", COOKIE).is_none());
        let ticket = cache.ticket().unwrap();
        cache.insert("a", session(b"y"), ticket);
        assert!(cache.get_verified("a", COOKIE).is_none());
        assert_eq!(cache.get("a").unwrap().derived(|| 8_u32), Some(&8));
        // Not heard: nothing vouches, even for an entry that was kept.
        let ticket = cache.ticket().unwrap();
        let entry = session(b"z");
        entry.verified(COOKIE);
        cache.insert("b", entry, ticket);
        cache.stop_listening();
        assert!(cache.get_verified("b", COOKIE).is_none());
    }

    #[test]
    fn a_derived_value_of_another_type_is_not_mistaken_for_one() {
        let entry = session(b"x");
        assert_eq!(entry.derived(|| 1_u8), Some(&1));
        assert_eq!(entry.derived(|| String::from("no")), None);
    }

    #[test]
    fn same_bytes_is_equality() {
        let cookie = format!("{}.{}", "i".repeat(43), "t".repeat(43));
        assert!(same_bytes(cookie.as_bytes(), cookie.as_bytes()));
        assert!(same_bytes(b"", b""));
        assert!(!same_bytes(cookie.as_bytes(), &cookie.as_bytes()[..86]));
        assert!(!same_bytes(b"", b"x"));
        // A difference anywhere, in a whole word or in the bytes after the last one.
        for at in 0..cookie.len() {
            let mut other = cookie.clone().into_bytes();
            other[at] ^= 0x01;
            assert!(!same_bytes(cookie.as_bytes(), &other), "byte {at}");
            other[at] ^= 0x81;
            assert!(!same_bytes(cookie.as_bytes(), &other), "byte {at}");
        }
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
