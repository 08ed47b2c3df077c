//! Small in-process caches for lookups on the inbound hot path.
//!
//! Every web chat message and webhook needs its channel (and the channel's tenant), and every
//! web chat message needs its visitor token resolved. Those change rarely or never, so
//! reading them from the database on each request wasted most of the request's time.
//! Channels are kept for a few seconds (so a settings change shows up quickly, also on other
//! nodes); a visitor token maps to the same visitor forever, so it is kept until the cache is
//! full. A plain `Mutex<HashMap>` is enough here: entries are tiny, the lock is never held
//! across an `.await`, and a dependency such as `moka` would add far more code than this.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bounded map whose entries expire after `ttl` (or never, with `None`).
pub struct TtlCache<K, V> {
    map: Mutex<HashMap<K, (Instant, V)>>,
    ttl: Option<Duration>,
    capacity: usize,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    /// A cache of at most `capacity` entries (cleared when full).
    pub fn new(ttl: Option<Duration>, capacity: usize) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            ttl,
            capacity: capacity.max(1),
        }
    }

    /// The cached value, when present and fresh.
    pub fn get(&self, key: &K) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let (at, v) = map.get(key)?;
        match self.ttl {
            Some(ttl) if at.elapsed() > ttl => None,
            _ => Some(v.clone()),
        }
    }

    /// Stores a value.
    pub fn put(&self, key: K, value: V) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.capacity {
            // Simple and bounded: start over rather than track recency.
            map.clear();
        }
        map.insert(key, (Instant::now(), value));
    }

    /// Forgets a key (after a change made by this node).
    pub fn remove(&self, key: &K) {
        self.map
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_the_cache_stays_bounded() {
        let c = TtlCache::new(Some(Duration::from_millis(0)), 2);
        c.put(1, "a");
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(c.get(&1), None, "expired");
        let c = TtlCache::new(None, 2);
        c.put(1, "a");
        c.put(2, "b");
        assert_eq!(c.get(&1), Some("a"));
        c.put(3, "c");
        assert_eq!(c.get(&1), None, "cleared when full");
        assert_eq!(c.get(&3), Some("c"));
        c.remove(&3);
        assert_eq!(c.get(&3), None);
    }
}
