//! In-memory store for a single instance and for trying portcullis out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub struct MemoryStore {
    inner: Arc<RwLock<Inner>>,
}

#[derive(Default)]
struct Inner {
    values: HashMap<String, (Vec<u8>, Instant)>,
    sets: HashMap<String, (HashSet<String>, Instant)>,
    writes_since_sweep: usize,
}

/// Expired entries are swept every this many writes, so memory stays bounded without a timer.
const SWEEP_EVERY: usize = 1024;

impl Inner {
    fn sweep_if_due(&mut self, now: Instant) {
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= SWEEP_EVERY {
            self.writes_since_sweep = 0;
            self.values.retain(|_, (_, expires)| *expires > now);
            self.sets.retain(|_, (_, expires)| *expires > now);
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

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.read()
            .values
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value.clone())
    }

    pub fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.write();
        inner.sweep_if_due(now);
        inner.values.insert(key.to_string(), (value, now + ttl));
    }

    pub fn take(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.write()
            .values
            .remove(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(value, _)| value)
    }

    pub fn delete(&self, keys: &[String]) -> usize {
        let now = Instant::now();
        let mut inner = self.write();
        let mut removed = 0;
        for key in keys {
            let value = inner.values.remove(key).is_some_and(|(_, e)| e > now);
            let set = inner.sets.remove(key).is_some_and(|(_, e)| e > now);
            removed += usize::from(value || set);
        }
        removed
    }

    pub fn add_to_set(&self, key: &str, member: &str, ttl: Duration) {
        let now = Instant::now();
        let mut inner = self.write();
        inner.sweep_if_due(now);
        let entry = inner
            .sets
            .entry(key.to_string())
            .or_insert_with(|| (HashSet::new(), now));
        entry.0.insert(member.to_string());
        entry.1 = entry.1.max(now + ttl);
    }

    pub fn set_members(&self, key: &str) -> Vec<String> {
        let now = Instant::now();
        self.read()
            .sets
            .get(key)
            .filter(|(_, expires)| *expires > now)
            .map(|(members, _)| members.iter().cloned().collect())
            .unwrap_or_default()
    }
}
