//! [`QueryCache`]: a named, typed, bounded cache of query results with a
//! TTL per entry, single-flight loads and metrics.
//!
//! The store is the `cached` crate's `ExpiringLruCache`: LRU-bounded, with
//! expiry decided per value (each entry carries its own deadline), where
//! its `LruTtlCache` would impose one TTL on the whole store. Deadlines use
//! Tokio's clock, so tests can pause time. The store's eviction callback
//! tells the three ways an entry leaves apart — expired, evicted for room,
//! invalidated — and counts each by key prefix.
//!
//! Over 600 lines with its unit tests (about half the file), which stay
//! beside the store whose eviction and expiry rules they pin down.

use std::collections::HashSet;
use std::future::Future;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use cached::{Cached, Expires, ExpiringLruCache};
use parking_lot::Mutex;
use rustc_hash::FxBuildHasher;
use tokio::time::Instant;

use super::CacheError;
use super::single_flight::{Role, SingleFlight, follow};
use super::stats::CacheStats;

/// How often a cache sweeps out expired entries (on a write).
const PURGE_INTERVAL: Duration = Duration::from_secs(1);

/// One cached value and its deadline.
struct Entry<V> {
    value: V,
    expires_at: Instant,
    /// Times it was read; an evicted entry that was read is "hot".
    reads: AtomicU32,
}

impl<V> Expires for Entry<V> {
    fn is_expired(&self) -> bool {
        Instant::now() >= self.expires_at
    }
}

/// What the store's eviction callback and the cache tell each other; used
/// under the store's lock.
#[derive(Debug)]
struct Signals {
    /// An invalidation is removing entries.
    invalidating: AtomicBool,
    /// Hashes of keys whose entries expired and were removed (by a lookup
    /// or a sweep) and not asked for since: a miss on one of them means the
    /// TTL was too short for it. Bounded by the cache's size; cleared when
    /// full.
    recently_expired: Mutex<HashSet<u64, FxBuildHasher>>,
    bound: usize,
}

impl Signals {
    fn expired(&self, key: &str) {
        let mut expired = self.recently_expired.lock();
        if expired.len() >= self.bound {
            expired.clear();
        }
        expired.insert(FxBuildHasher.hash_one(key));
    }

    /// Whether `key` expired since it was last asked for (and forgets it).
    fn take_expired(&self, key: &str) -> bool {
        let mut expired = self.recently_expired.lock();
        !expired.is_empty() && expired.remove(&FxBuildHasher.hash_one(key))
    }
}

struct Store<V> {
    entries: ExpiringLruCache<String, Entry<V>>,
    last_purge: Instant,
}

/// A lookup's result: the live value, or whether the entry had expired.
struct Lookup<V> {
    value: Option<V>,
    expired: bool,
}

/// Settings of one cache.
#[derive(Clone, Copy, Debug)]
pub struct CacheSettings {
    /// Entries held at most (least recently used go first).
    pub max_entries: usize,
    /// TTL of entries stored without one.
    pub default_ttl: Duration,
}

/// A named, typed, bounded query cache. Cheap to clone; clones share the
/// store. Values are cloned out, so large ones belong in an `Arc`.
pub struct QueryCache<V> {
    inner: Arc<Inner<V>>,
}

impl<V> Clone for QueryCache<V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<V> std::fmt::Debug for QueryCache<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryCache")
            .field("name", &self.inner.stats.name)
            .field("default_ttl", &self.inner.default_ttl)
            .finish_non_exhaustive()
    }
}

struct Inner<V> {
    store: Mutex<Store<V>>,
    flights: SingleFlight<V>,
    stats: Arc<CacheStats>,
    signals: Arc<Signals>,
    default_ttl: Duration,
}

impl<V: Clone + Send + Sync + 'static> QueryCache<V> {
    /// A cache counting into `stats`. `max_entries` is at least 1.
    pub(crate) fn new(stats: Arc<CacheStats>, settings: CacheSettings) -> Self {
        let signals = Arc::new(Signals {
            invalidating: AtomicBool::new(false),
            recently_expired: Mutex::default(),
            bound: settings.max_entries.max(1),
        });
        let on_evict = {
            let stats = stats.clone();
            let signals = signals.clone();
            move |key: &String, entry: &Entry<V>| {
                let prefix = stats.for_key(key);
                if signals.invalidating.load(Ordering::Relaxed) {
                    prefix.invalidated();
                } else if entry.is_expired() {
                    signals.expired(key);
                    prefix.expired();
                } else {
                    prefix.evicted(entry.reads.load(Ordering::Relaxed) > 0);
                    stats.count_eviction();
                }
            }
        };
        let entries = ExpiringLruCache::builder()
            .max_size(settings.max_entries.max(1))
            .on_evict(on_evict)
            .build()
            .unwrap_or_else(|_| unreachable!("max_size is set and at least 1"));
        stats.set_entries(0);
        Self {
            inner: Arc::new(Inner {
                store: Mutex::new(Store {
                    entries,
                    last_purge: Instant::now(),
                }),
                flights: SingleFlight::default(),
                stats,
                signals,
                default_ttl: settings.default_ttl,
            }),
        }
    }

    /// The cache's name (its `cache` label).
    pub fn name(&self) -> &str {
        &self.inner.stats.name
    }

    /// The cached value for `key`, or the loader's: concurrent misses on
    /// one key run `loader` once and all get its result. An error is
    /// returned to every waiting caller and not cached. `ttl` defaults to
    /// the cache's (`QUERY_CACHE_TTL`).
    pub async fn cached_query<F, Fut, E>(
        &self,
        key: &str,
        loader: F,
        ttl: Option<Duration>,
    ) -> Result<V, CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let prefix = self.inner.stats.for_key(key);
        let first = self.lookup(key);
        if let Some(value) = first.value {
            prefix.get(true);
            return Ok(value);
        }
        let mut loader = Some(loader);
        loop {
            match self.inner.flights.join(key, || self.peek(key)) {
                Role::Ready(value) => {
                    prefix.get(true);
                    return Ok(value);
                }
                Role::Follower(receiver) => {
                    if let Some(outcome) = follow(receiver).await {
                        prefix.coalesced();
                        return outcome;
                    }
                    // The leader was cancelled: try again.
                }
                Role::Leader(flight) => {
                    prefix.get(false);
                    if first.expired {
                        prefix.expired_miss();
                    }
                    let Some(loader) = loader.take() else {
                        unreachable!("a caller leads at most once: it returns after loading");
                    };
                    let started = std::time::Instant::now();
                    let outcome = loader().await.map_err(|e| CacheError::new(e.into()));
                    self.inner.stats.observe_load(started.elapsed());
                    prefix.load(outcome.is_ok());
                    if let Ok(value) = &outcome {
                        self.set(key, value.clone(), ttl);
                    }
                    flight.finish(outcome.clone());
                    return outcome;
                }
            }
        }
    }

    /// The live value for `key`, counted as a get.
    pub fn get(&self, key: &str) -> Option<V> {
        let prefix = self.inner.stats.for_key(key);
        let lookup = self.lookup(key);
        prefix.get(lookup.value.is_some());
        if lookup.expired {
            prefix.expired_miss();
        }
        lookup.value
    }

    /// Looks `key` up (uncounted: the caller knows what the lookup was).
    fn lookup(&self, key: &str) -> Lookup<V> {
        let mut store = self.inner.store.lock();
        let value = store.entries.cache_get(key).map(|entry| {
            entry.reads.fetch_add(1, Ordering::Relaxed);
            entry.value.clone()
        });
        let expired = value.is_none() && self.inner.signals.take_expired(key);
        if expired {
            self.inner.stats.set_entries(store.entries.cache_size());
        }
        Lookup { value, expired }
    }

    /// A lookup that is not counted (the single-flight recheck).
    fn peek(&self, key: &str) -> Option<V> {
        let store = self.inner.store.lock();
        cached::CachedPeek::cache_peek(&store.entries, key)
            .filter(|entry| !entry.is_expired())
            .map(|entry| entry.value.clone())
    }

    /// Stores `value` under `key` for `ttl` (default: the cache's).
    pub fn set(&self, key: &str, value: V, ttl: Option<Duration>) {
        let ttl = ttl.unwrap_or(self.inner.default_ttl);
        let now = Instant::now();
        let entry = Entry {
            value,
            expires_at: now + ttl,
            reads: AtomicU32::new(0),
        };
        let mut store = self.inner.store.lock();
        self.inner.signals.take_expired(key);
        store.entries.cache_set(key.to_owned(), entry);
        if now.duration_since(store.last_purge) >= PURGE_INTERVAL {
            store.last_purge = now;
            store.entries.evict();
        }
        self.inner.stats.set_entries(store.entries.cache_size());
        drop(store);
        self.inner.stats.for_key(key).set();
    }

    /// Removes `key`; whether it was there (live).
    pub fn invalidate(&self, key: &str) -> bool {
        let mut store = self.inner.store.lock();
        self.inner
            .signals
            .invalidating
            .store(true, Ordering::Relaxed);
        let removed = store.entries.cache_remove(key).is_some();
        self.inner
            .signals
            .invalidating
            .store(false, Ordering::Relaxed);
        self.inner.stats.set_entries(store.entries.cache_size());
        removed
    }

    /// Removes every key that starts with `prefix` (e.g. `user:42:`);
    /// how many were removed.
    pub fn invalidate_prefix(&self, prefix: &str) -> usize {
        let mut store = self.inner.store.lock();
        let keys: Vec<String> = store
            .entries
            .store()
            .key_order()
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .collect();
        self.inner
            .signals
            .invalidating
            .store(true, Ordering::Relaxed);
        let removed = keys
            .iter()
            .filter(|k| store.entries.cache_remove_entry(k.as_str()).is_some())
            .count();
        self.inner
            .signals
            .invalidating
            .store(false, Ordering::Relaxed);
        self.inner.stats.set_entries(store.entries.cache_size());
        removed
    }

    /// Entries held (expired ones until they are swept).
    pub fn len(&self) -> usize {
        self.inner.store.lock().entries.cache_size()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Loads in flight (for tests and diagnostics).
    pub fn loads_in_flight(&self) -> usize {
        self.inner.flights.len()
    }

    /// What the cache saw, per prefix.
    pub fn stats(&self) -> &Arc<CacheStats> {
        &self.inner.stats
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;
    use crate::Perfscope;
    use crate::findings::Recommendation;

    fn perfscope() -> Perfscope {
        Perfscope::new(crate::Config::default())
    }

    fn settings(max_entries: usize, ttl_secs: u64) -> CacheSettings {
        CacheSettings {
            max_entries,
            default_ttl: Duration::from_secs(ttl_secs),
        }
    }

    /// The value of one `cache_operations_total` series in the exposition.
    fn operations(perfscope: &Perfscope, cache: &str, prefix: &str, op: &str, result: &str) -> f64 {
        let wanted = format!(
            "cache_operations_total{{cache=\"{cache}\",prefix=\"{prefix}\",operation=\"{op}\",result=\"{result}\"}} "
        );
        let text = perfscope.encode_metrics().expect("encodes");
        text.lines()
            .find_map(|l| l.strip_prefix(wanted.as_str()))
            .map_or(0.0, |v| v.parse().expect("a number"))
    }

    #[derive(Debug)]
    struct Boom;
    impl std::fmt::Display for Boom {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("boom")
        }
    }
    impl std::error::Error for Boom {}

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_run_the_loader_once() {
        let perfscope = perfscope();
        let cache = perfscope.caches().query_cache::<u64>("users");
        let loads = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                let loads = loads.clone();
                tokio::spawn(async move {
                    cache
                        .cached_query(
                            "user:42",
                            || async move {
                                loads.fetch_add(1, Ordering::SeqCst);
                                tokio::time::sleep(Duration::from_millis(100)).await;
                                Ok::<_, Boom>(42)
                            },
                            None,
                        )
                        .await
                })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.expect("joins").expect("loads"), 42);
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for 50 callers");
        assert_eq!(cache.loads_in_flight(), 0);
        let miss = operations(&perfscope, "users", "user", "get", "miss");
        let coalesced = operations(&perfscope, "users", "user", "get", "coalesced");
        let hit = operations(&perfscope, "users", "user", "get", "hit");
        assert_eq!(miss, 1.0);
        assert_eq!(miss + coalesced + hit, 50.0);
        assert_eq!(operations(&perfscope, "users", "user", "load", "ok"), 1.0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_reaches_every_waiter_and_is_not_cached() {
        let perfscope = perfscope();
        let cache = perfscope.caches().query_cache::<u64>("users");
        let loads = Arc::new(AtomicUsize::new(0));
        let failing = |loads: Arc<AtomicUsize>| {
            move || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(100)).await;
                Err::<u64, _>(Boom)
            }
        };
        let (a, b) = tokio::join!(
            cache.cached_query("user:1", failing(loads.clone()), None),
            cache.cached_query("user:1", failing(loads.clone()), None),
        );
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        for result in [a, b] {
            let error = result.expect_err("the loader failed");
            assert!(error.downcast_ref::<Boom>().is_some(), "{error}");
        }
        // Not cached: the next call loads again, and succeeds.
        let value = cache
            .cached_query("user:1", || async { Ok::<_, Boom>(7) }, None)
            .await
            .expect("loads");
        assert_eq!(value, 7);
        assert_eq!(
            operations(&perfscope, "users", "user", "load", "error"),
            1.0
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_leader_hands_the_load_to_a_waiter() {
        let cache = perfscope().caches().query_cache::<u64>("users");
        let leader = cache.cached_query(
            "user:9",
            || async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok::<_, Boom>(0)
            },
            None,
        );
        let waiter = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            cache
                .cached_query("user:9", || async { Ok::<_, Boom>(9) }, None)
                .await
        };
        let (cancelled, value) = tokio::join!(
            tokio::time::timeout(Duration::from_millis(100), leader),
            waiter
        );
        assert!(cancelled.is_err(), "the leader timed out");
        assert_eq!(value.expect("the waiter loaded it"), 9);
        assert_eq!(cache.get("user:9"), Some(9));
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_their_own_ttl() {
        let perfscope = perfscope();
        let cache = perfscope
            .caches()
            .query_cache_with::<&'static str>("sessions", settings(100, 60));
        cache.set("short:1", "a", Some(Duration::from_secs(5)));
        cache.set("long:1", "b", None);
        tokio::time::advance(Duration::from_secs(4)).await;
        assert_eq!(cache.get("short:1"), Some("a"));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get("short:1"), None, "past its 5 s TTL");
        assert_eq!(cache.get("long:1"), Some("b"), "within the default 60 s");
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(cache.get("long:1"), None);
        assert_eq!(
            operations(&perfscope, "sessions", "short", "expire", "ok"),
            1.0
        );
        assert_eq!(
            operations(&perfscope, "sessions", "long", "expire", "ok"),
            1.0
        );
        let short = cache.stats().for_prefix("short");
        assert_eq!(short.expired_misses.load(Ordering::Relaxed), 1);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn the_least_recently_used_entry_goes_at_the_bound() {
        let perfscope = perfscope();
        let cache = perfscope
            .caches()
            .query_cache_with::<u32>("orders", settings(3, 60));
        for (i, key) in ["o:a", "o:b", "o:c"].into_iter().enumerate() {
            cache.set(key, i as u32, None);
        }
        assert_eq!(cache.get("o:a"), Some(0), "a is now the most recent");
        cache.set("o:d", 3, None);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("o:b"), None, "b was the least recently used");
        assert_eq!(cache.get("o:a"), Some(0));
        assert_eq!(cache.get("o:c"), Some(2));
        assert_eq!(operations(&perfscope, "orders", "o", "evict", "ok"), 1.0);
        let text = perfscope.encode_metrics().expect("encodes");
        assert!(
            text.contains("cache_evictions_total{cache=\"orders\"} 1"),
            "{text}"
        );
        assert!(text.contains("cache_entries{cache=\"orders\"} 3"), "{text}");
    }

    #[tokio::test]
    async fn invalidation_by_key_and_by_prefix() {
        let perfscope = perfscope();
        let cache = perfscope.caches().query_cache::<u32>("users");
        for key in ["user:1", "user:2", "user:2:orders", "order:1"] {
            cache.set(key, 1, None);
        }
        assert!(cache.invalidate("order:1"));
        assert!(!cache.invalidate("order:1"), "already gone");
        assert_eq!(cache.invalidate_prefix("user:2"), 2);
        assert_eq!(cache.get("user:1"), Some(1));
        assert_eq!(cache.len(), 1);
        assert_eq!(
            operations(&perfscope, "users", "user", "invalidate", "ok"),
            2.0
        );
        assert_eq!(operations(&perfscope, "users", "user", "evict", "ok"), 0.0);
    }

    fn kinds(advice: &[Recommendation]) -> Vec<&str> {
        advice.iter().map(|r| r.kind.as_str()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn recommendations_name_the_cause_with_numbers() {
        let perfscope = perfscope();
        let caches = perfscope.caches();
        // A TTL too short: every key is wanted again just after it expired.
        let short = caches.query_cache_with::<u32>("prices", settings(1000, 1));
        for round in 0..3 {
            for i in 0..20 {
                let key = format!("price:{i}");
                let _ = short
                    .cached_query(&key, || async { Ok::<_, Boom>(round) }, None)
                    .await;
            }
            tokio::time::advance(Duration::from_secs(2)).await;
        }
        // Too small: ten hot keys cycle through a cache of five.
        let small = caches.query_cache_with::<u32>("carts", settings(5, 600));
        for _ in 0..10 {
            for i in 0..10 {
                let key = format!("cart:{i}");
                let _ = small.get(&key);
                small.set(&key, i, None);
                let _ = small.get(&key);
            }
        }
        // Rarely reused: every lookup is a new key.
        let unique = caches.query_cache_with::<u32>("reports", settings(1000, 600));
        for i in 0..150 {
            let key = format!("report:{i}");
            let _ = unique
                .cached_query(&key, || async { Ok::<_, Boom>(1) }, None)
                .await;
        }
        let advice = crate::findings::cache_advice(caches, true);
        let found = kinds(&advice);
        assert!(found.contains(&"cache_ttl_too_short"), "{advice:#?}");
        assert!(found.contains(&"cache_too_small"), "{advice:#?}");
        assert!(found.contains(&"cache_hit_ratio"), "{advice:#?}");
        let ttl = advice
            .iter()
            .find(|r| r.kind == "cache_ttl_too_short")
            .expect("ttl finding");
        assert!(
            ttl.message.starts_with("Cache prices: 40 of 60 misses"),
            "{}",
            ttl.message
        );
        assert_eq!(
            ttl.objects.as_deref(),
            Some(&["prices/price".to_owned()][..])
        );
        let small = advice
            .iter()
            .find(|r| r.kind == "cache_too_small")
            .expect("size finding");
        assert!(
            small.message.contains("at its bound of 5 entries"),
            "{}",
            small.message
        );
        // The healthy caches are not flagged.
        assert!(
            advice
                .iter()
                .all(|r| !r.message.starts_with("Cache carts") || r.kind == "cache_too_small")
        );
        // Without the admin token, no key prefixes.
        let public = crate::findings::cache_advice(caches, false);
        assert_eq!(kinds(&public), found);
        assert!(public.iter().all(|r| r.objects.is_none()));
    }

    #[tokio::test]
    async fn tracked_caches_count_like_query_caches() {
        let perfscope = perfscope();
        perfscope.track_cache_operation("user_lookup", true);
        perfscope.track_cache_operation("user_lookup", false);
        perfscope.caches().track(
            "sessions",
            "session:abc",
            crate::cache::TrackedOperation::Get { hit: true },
        );
        assert_eq!(
            operations(&perfscope, "user_lookup", "_", "get", "hit"),
            1.0
        );
        assert_eq!(
            operations(&perfscope, "user_lookup", "_", "get", "miss"),
            1.0
        );
        assert_eq!(
            operations(&perfscope, "sessions", "session", "get", "hit"),
            1.0
        );
    }
}
