//! In-memory store for a single instance and for trying portcullis out.
//!
//! One map per key space, keyed by the bare id, holding values behind an `Arc` so that a read
//! is a lock, a hash lookup and a reference count, never a copy. There are no per-user, subject
//! or IdP-session indexes: ending sessions by one of them scans the sessions instead (rare, and
//! it keeps each session small).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::codec::StoredSession;
use super::keys::Space;

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<RwLock<Inner>>,
}

struct Entry {
    value: Arc<[u8]>,
    expires: Instant,
}

#[derive(Default)]
struct Inner {
    spaces: [HashMap<Box<str>, Entry>; Space::ALL.len()],
    writes_since_sweep: usize,
}

/// Expired entries are swept every this many writes, so memory stays bounded without a timer.
const SWEEP_EVERY: usize = 1024;

fn index(space: Space) -> usize {
    space as usize
}

impl Inner {
    /// A session and its sealed tokens, with one expiry.
    fn insert_session(
        &mut self,
        id: &str,
        session: Vec<u8>,
        tokens: Option<Vec<u8>>,
        expires: Instant,
    ) {
        self.spaces[index(Space::Session)].insert(
            id.into(),
            Entry {
                value: session.into(),
                expires,
            },
        );
        if let Some(tokens) = tokens {
            self.spaces[index(Space::Tokens)].insert(
                id.into(),
                Entry {
                    value: tokens.into(),
                    expires,
                },
            );
        }
    }

    fn sweep_if_due(&mut self, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            for map in &mut self.spaces {
                map.retain(|_, entry| entry.expires > now);
            }
        }
    }
}

impl MemoryStore {
    // A poisoned lock only means another thread panicked mid-write of plain maps; the data is
    // still consistent enough to serve, so we recover it instead of failing every request.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, space: Space, id: &str) -> Option<Arc<[u8]>> {
        let now = Instant::now();
        self.read().spaces[index(space)]
            .get(id)
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.value.clone())
    }

    pub fn set(&self, space: Space, id: &str, value: Arc<[u8]>, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.write();
        inner.sweep_if_due(now);
        let entry = Entry {
            value,
            expires: now + ttl,
        };
        inner.spaces[index(space)].insert(id.into(), entry);
    }

    /// Sets `id` unless it holds a live value; true when it was set.
    pub fn insert_if_absent(
        &self,
        space: Space,
        id: &str,
        value: Arc<[u8]>,
        ttl: Duration,
    ) -> bool {
        let now = Instant::now();
        let mut inner = self.write();
        inner.sweep_if_due(now);
        let map = &mut inner.spaces[index(space)];
        if map.get(id).is_some_and(|entry| entry.expires > now) {
            return false;
        }
        map.insert(
            id.into(),
            Entry {
                value,
                expires: now + ttl,
            },
        );
        true
    }

    pub fn take(&self, space: Space, id: &str) -> Option<Arc<[u8]>> {
        let now = Instant::now();
        self.write().spaces[index(space)]
            .remove(id)
            .filter(|entry| entry.expires > now)
            .map(|entry| entry.value)
    }

    pub fn delete(&self, keys: &[(Space, &str)]) -> usize {
        let now = Instant::now();
        let mut inner = self.write();
        keys.iter()
            .filter(|(space, id)| {
                inner.spaces[index(*space)]
                    .remove(*id)
                    .is_some_and(|entry| entry.expires > now)
            })
            .count()
    }

    /// A session and its sealed tokens, under one lock.
    pub fn put_session(&self, id: &str, session: Vec<u8>, tokens: Option<Vec<u8>>, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.write();
        inner.sweep_if_due(now);
        inner.insert_session(id, session, tokens, now + ttl);
    }

    /// Replaces a live session and its sealed tokens; nothing when the session is gone (ended
    /// while it was being revalidated). True when it was replaced.
    pub fn replace_session(
        &self,
        id: &str,
        session: Vec<u8>,
        tokens: Option<Vec<u8>>,
        ttl: Duration,
    ) -> bool {
        let now = Instant::now();
        let mut inner = self.write();
        let live = inner.spaces[index(Space::Session)]
            .get(id)
            .is_some_and(|entry| entry.expires > now);
        if !live {
            return false;
        }
        inner.insert_session(id, session, tokens, now + ttl);
        true
    }

    /// The ids of the live sessions that satisfy `wanted`, found by scanning them (see the
    /// module comment).
    pub fn session_ids_where(
        &self,
        wanted: impl Fn(&super::codec::SessionView<'_>) -> bool,
    ) -> Vec<String> {
        let now = Instant::now();
        self.read().spaces[index(Space::Session)]
            .iter()
            .filter(|(_, entry)| entry.expires > now)
            .filter(|(_, entry)| {
                StoredSession::new(entry.value.clone())
                    .view()
                    .is_ok_and(|view| wanted(&view))
            })
            .map(|(id, _)| id.to_string())
            .collect()
    }
}
