//! What each cache saw, per key prefix: the counters the recommendations
//! read (hit ratio, misses on expired entries, evictions of entries that
//! had been read) and the pre-resolved metric series the hot path bumps.
//!
//! A key's prefix is its first segment, up to the first `:` or `-`
//! (`user:42` → `user`); a key without one, or with an implausibly long
//! first segment, counts under `_`. A cache keeps at most
//! [`MAX_PREFIXES`] prefixes; later ones count under `__other__`. So
//! neither the metrics nor this memory grow with the keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use rustc_hash::FxBuildHasher;

use crate::metrics::AtomicHistogram;
use crate::metrics::cache::{
    CacheLabels, CacheMetrics, CacheOperation, CacheOperationLabels, CacheResult,
};

/// Prefixes kept per cache.
pub const MAX_PREFIXES: usize = 32;
/// Longest first segment taken as a prefix.
pub const MAX_PREFIX_LEN: usize = 32;
/// The prefix of keys without a usable first segment.
pub const NO_PREFIX: &str = "_";
/// The prefix of keys past [`MAX_PREFIXES`].
pub const OTHER_PREFIX: &str = "__other__";

/// A key's prefix: its first segment up to `:` or `-`.
pub fn key_prefix(key: &str) -> &str {
    match key.find([':', '-']) {
        Some(end) if end > 0 && end <= MAX_PREFIX_LEN => &key[..end],
        _ => NO_PREFIX,
    }
}

/// The counters of one prefix of one cache.
#[derive(Debug)]
pub struct PrefixStats {
    /// The prefix.
    pub prefix: Arc<str>,
    /// Lookups that found a live entry.
    pub hits: AtomicU64,
    /// Lookups that found nothing.
    pub misses: AtomicU64,
    /// Misses that found the entry expired: it was wanted again after its
    /// TTL (a TTL too short shows here).
    pub expired_misses: AtomicU64,
    /// Misses served by another caller's load.
    pub coalesced: AtomicU64,
    /// Values stored.
    pub sets: AtomicU64,
    /// Entries removed for room.
    pub evictions: AtomicU64,
    /// Of those, entries that had been read at least once.
    pub hot_evictions: AtomicU64,
    /// Entries whose TTL passed.
    pub expirations: AtomicU64,
    /// Loads that failed.
    pub load_errors: AtomicU64,
    series: PrefixSeries,
}

/// The metric series of one prefix, resolved once.
#[derive(Debug)]
struct PrefixSeries {
    hit: Counter,
    miss: Counter,
    coalesced: Counter,
    set: Counter,
    load_ok: Counter,
    load_error: Counter,
    evict: Counter,
    expire: Counter,
    invalidate: Counter,
}

impl PrefixStats {
    fn new(metrics: &CacheMetrics, cache: &Arc<str>, prefix: Arc<str>) -> Self {
        let series = |operation, result| {
            metrics
                .operations
                .get(&CacheOperationLabels {
                    cache: cache.clone(),
                    prefix: prefix.clone(),
                    operation,
                    result,
                })
                .clone()
        };
        let series = PrefixSeries {
            hit: series(CacheOperation::Get, CacheResult::Hit),
            miss: series(CacheOperation::Get, CacheResult::Miss),
            coalesced: series(CacheOperation::Get, CacheResult::Coalesced),
            set: series(CacheOperation::Set, CacheResult::Ok),
            load_ok: series(CacheOperation::Load, CacheResult::Ok),
            load_error: series(CacheOperation::Load, CacheResult::Error),
            evict: series(CacheOperation::Evict, CacheResult::Ok),
            expire: series(CacheOperation::Expire, CacheResult::Ok),
            invalidate: series(CacheOperation::Invalidate, CacheResult::Ok),
        };
        Self {
            prefix,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            expired_misses: AtomicU64::new(0),
            coalesced: AtomicU64::new(0),
            sets: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            hot_evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
            load_errors: AtomicU64::new(0),
            series,
        }
    }

    /// A lookup's result.
    pub fn get(&self, hit: bool) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
            self.series.hit.inc();
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            self.series.miss.inc();
        }
    }

    /// A miss that found its entry expired (counted as a miss too).
    pub fn expired_miss(&self) {
        self.expired_misses.fetch_add(1, Ordering::Relaxed);
    }

    /// A miss served by another caller's load.
    pub fn coalesced(&self) {
        self.coalesced.fetch_add(1, Ordering::Relaxed);
        self.series.coalesced.inc();
    }

    /// A value stored.
    pub fn set(&self) {
        self.sets.fetch_add(1, Ordering::Relaxed);
        self.series.set.inc();
    }

    /// A load's outcome.
    pub fn load(&self, ok: bool) {
        if ok {
            self.series.load_ok.inc();
        } else {
            self.load_errors.fetch_add(1, Ordering::Relaxed);
            self.series.load_error.inc();
        }
    }

    /// An entry removed for room; `read` when it had been read.
    pub fn evicted(&self, read: bool) {
        self.evictions.fetch_add(1, Ordering::Relaxed);
        if read {
            self.hot_evictions.fetch_add(1, Ordering::Relaxed);
        }
        self.series.evict.inc();
    }

    /// An entry whose TTL passed.
    pub fn expired(&self) {
        self.expirations.fetch_add(1, Ordering::Relaxed);
        self.series.expire.inc();
    }

    /// An entry invalidated.
    pub fn invalidated(&self) {
        self.series.invalidate.inc();
    }
}

/// Everything one cache saw.
#[derive(Debug)]
pub struct CacheStats {
    /// The cache's name.
    pub name: Arc<str>,
    /// Its bound, when it is a [`super::QueryCache`].
    pub capacity: Option<usize>,
    /// Its default TTL, when it is a [`super::QueryCache`].
    pub default_ttl: Option<Duration>,
    metrics: Arc<CacheMetrics>,
    prefixes: RwLock<HashMap<Box<str>, Arc<PrefixStats>, FxBuildHasher>>,
    entries: Gauge,
    evictions: Counter,
    load_duration: AtomicHistogram,
}

impl CacheStats {
    pub(crate) fn new(
        metrics: Arc<CacheMetrics>,
        name: Arc<str>,
        capacity: Option<usize>,
        default_ttl: Option<Duration>,
    ) -> Self {
        let labels = CacheLabels {
            cache: name.clone(),
        };
        let entries = metrics.entries.get(&labels).clone();
        let evictions = metrics.evictions.get(&labels).clone();
        let load_duration = metrics.load_duration.get(&labels).clone();
        Self {
            entries,
            evictions,
            load_duration,
            name,
            capacity,
            default_ttl,
            metrics,
            prefixes: RwLock::default(),
        }
    }

    /// The stats of `key`'s prefix.
    pub fn for_key(&self, key: &str) -> Arc<PrefixStats> {
        self.for_prefix(key_prefix(key))
    }

    /// The stats of `prefix` (or of `__other__` once the cache has
    /// [`MAX_PREFIXES`]).
    pub fn for_prefix(&self, prefix: &str) -> Arc<PrefixStats> {
        if let Some(stats) = self.prefixes.read().get(prefix) {
            return stats.clone();
        }
        self.create_prefix(prefix)
    }

    #[cold]
    fn create_prefix(&self, prefix: &str) -> Arc<PrefixStats> {
        let mut prefixes = self.prefixes.write();
        if let Some(stats) = prefixes.get(prefix) {
            return stats.clone();
        }
        let prefix = if prefixes.len() >= MAX_PREFIXES - 1 && prefix != OTHER_PREFIX {
            OTHER_PREFIX
        } else {
            prefix
        };
        prefixes
            .entry(prefix.into())
            .or_insert_with(|| Arc::new(PrefixStats::new(&self.metrics, &self.name, prefix.into())))
            .clone()
    }

    /// Every prefix's stats.
    pub fn prefixes(&self) -> Vec<Arc<PrefixStats>> {
        let mut all: Vec<Arc<PrefixStats>> = self.prefixes.read().values().cloned().collect();
        all.sort_by(|a, b| a.prefix.cmp(&b.prefix));
        all
    }

    /// Sets `cache_entries`.
    pub fn set_entries(&self, entries: usize) {
        self.entries.set(i64::try_from(entries).unwrap_or(i64::MAX));
    }

    /// Counts an eviction in `cache_evictions_total` (the prefix's own
    /// count is separate).
    pub fn count_eviction(&self) {
        self.evictions.inc();
    }

    /// Times a load.
    pub fn observe_load(&self, duration: Duration) {
        self.load_duration.observe(duration.as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_first_segments() {
        assert_eq!(key_prefix("user:42"), "user");
        assert_eq!(key_prefix("orders-2026-11"), "orders");
        assert_eq!(key_prefix("report:daily:7"), "report");
        assert_eq!(key_prefix("plainkey"), NO_PREFIX);
        assert_eq!(key_prefix(":leading"), NO_PREFIX);
        assert_eq!(key_prefix(&format!("{}:x", "a".repeat(40))), NO_PREFIX);
    }

    #[test]
    fn prefixes_are_bounded() {
        let mut registry = prometheus_client::registry::Registry::default();
        let accounting = crate::metrics::SeriesAccounting::register(&mut registry, 10_000);
        let metrics = Arc::new(CacheMetrics::register(
            &mut registry,
            &accounting,
            crate::metrics::Buckets::default_db(),
        ));
        let stats = CacheStats::new(metrics, "users".into(), Some(10), None);
        for i in 0..100 {
            stats.for_key(&format!("p{i}:x")).get(true);
        }
        let prefixes = stats.prefixes();
        assert_eq!(prefixes.len(), MAX_PREFIXES);
        let other = prefixes
            .iter()
            .find(|p| &*p.prefix == OTHER_PREFIX)
            .expect("an overflow prefix");
        assert_eq!(
            other.hits.load(Ordering::Relaxed),
            100 - (MAX_PREFIXES as u64 - 1)
        );
    }
}
