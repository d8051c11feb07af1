//! Caching, measured: [`QueryCache`] (named, typed, bounded, a TTL per
//! entry, single-flight loads, invalidation by key and prefix) and
//! [`Caches::track`] for caches the app keeps itself — the seed's
//! `cached_query` and `trackCacheOperation`. Every cache counts into
//! `cache_*` metrics by key prefix and into the counters behind the
//! `cacheRecommendations` of `/api/performance/stats` (`crate::findings::cache`).
//!
//! ```no_run
//! # async fn demo(perfscope: perfscope::Perfscope) -> Result<(), perfscope::cache::CacheError> {
//! let users = perfscope.caches().query_cache::<String>("users");
//! let name = users
//!     .cached_query("user:42", || async { Ok::<_, std::io::Error>("Ada".to_owned()) }, None)
//!     .await?;
//! users.invalidate_prefix("user:");
//! # Ok(()) }
//! ```

mod query_cache;
mod single_flight;
pub mod stats;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

pub use query_cache::{CacheSettings, QueryCache};
pub use stats::{CacheStats, MAX_PREFIXES, key_prefix};

use crate::metrics::cache::CacheMetrics;

/// Caches tracked per process; more names count under `__overflow__`.
pub const MAX_CACHES: usize = 64;

/// A loader's error, shared by every caller that waited for the load.
#[derive(Clone, Debug)]
pub struct CacheError {
    source: Arc<dyn std::error::Error + Send + Sync>,
}

impl CacheError {
    fn new(source: Box<dyn std::error::Error + Send + Sync>) -> Self {
        Self {
            source: Arc::from(source),
        }
    }

    /// The loader's error, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.source.downcast_ref::<E>()
    }
}

impl std::fmt::Display for CacheError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cache load failed: {}", self.source)
    }
}

impl std::error::Error for CacheError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// The caches of one perfscope instance, by name.
#[derive(Debug)]
pub struct Caches {
    metrics: Arc<CacheMetrics>,
    defaults: CacheSettings,
    by_name: Mutex<BTreeMap<Arc<str>, Arc<CacheStats>>>,
}

/// What [`Caches::track`] records for a cache the app keeps itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrackedOperation {
    /// A lookup: hit or miss.
    Get {
        /// Whether it found a value.
        hit: bool,
    },
    /// A value stored.
    Set,
    /// An entry removed for room.
    Evict,
    /// An entry whose TTL passed.
    Expire,
}

impl Caches {
    pub(crate) fn new(metrics: CacheMetrics, defaults: CacheSettings) -> Self {
        Self {
            metrics: Arc::new(metrics),
            defaults,
            by_name: Mutex::default(),
        }
    }

    /// The stats of `name`, created on first use (bounded by
    /// [`MAX_CACHES`]).
    fn stats(&self, name: &str, capacity: Option<usize>, ttl: Option<Duration>) -> Arc<CacheStats> {
        let mut by_name = self.by_name.lock();
        if let Some(stats) = by_name.get(name) {
            return stats.clone();
        }
        let name: Arc<str> = if by_name.len() >= MAX_CACHES - 1 {
            Arc::from("__overflow__")
        } else {
            Arc::from(name)
        };
        by_name
            .entry(name.clone())
            .or_insert_with(|| Arc::new(CacheStats::new(self.metrics.clone(), name, capacity, ttl)))
            .clone()
    }

    /// A query cache named `name` with the configured bound
    /// (`MAX_CACHE_SIZE`) and default TTL (`QUERY_CACHE_TTL`). One name,
    /// one kind of value: two caches of one name share their counters.
    pub fn query_cache<V: Clone + Send + Sync + 'static>(&self, name: &str) -> QueryCache<V> {
        self.query_cache_with(name, self.defaults)
    }

    /// A query cache with its own bound and default TTL.
    pub fn query_cache_with<V: Clone + Send + Sync + 'static>(
        &self,
        name: &str,
        settings: CacheSettings,
    ) -> QueryCache<V> {
        let stats = self.stats(name, Some(settings.max_entries), Some(settings.default_ttl));
        QueryCache::new(stats, settings)
    }

    /// Records an operation on a cache the app keeps itself (the seed's
    /// `trackCacheOperation`), by the key's prefix: the same metrics and
    /// recommendations as a [`QueryCache`].
    pub fn track(&self, cache: &str, key: &str, operation: TrackedOperation) {
        let stats = self.stats(cache, None, None);
        let prefix = stats.for_key(key);
        match operation {
            TrackedOperation::Get { hit } => prefix.get(hit),
            TrackedOperation::Set => prefix.set(),
            TrackedOperation::Evict => {
                prefix.evicted(false);
                stats.count_eviction();
            }
            TrackedOperation::Expire => prefix.expired(),
        }
    }

    /// Every cache's stats, by name.
    pub fn all(&self) -> Vec<Arc<CacheStats>> {
        self.by_name.lock().values().cloned().collect()
    }

    /// The defaults from the configuration.
    pub fn defaults(&self) -> CacheSettings {
        self.defaults
    }
}
