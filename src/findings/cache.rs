//! `cacheRecommendations` from what the caches counted, per key prefix,
//! each with the numbers behind it:
//!
//! - `cache_hit_ratio`: few lookups hit (entries are rarely reused);
//! - `cache_ttl_too_short`: many misses found their entry expired — the
//!   key was wanted again after its TTL;
//! - `cache_too_small`: the full cache evicted entries that were being
//!   read.
//!
//! Counts are since start-up; a prefix needs [`MIN_GETS`] lookups before it
//! is judged. Cache names are the developer's and appear in the message;
//! prefixes come from keys and appear only in `objects`, for the admin.

use std::sync::atomic::Ordering;

use super::{Kind, Recommendation, Severity};
use crate::cache::Caches;

/// Lookups a prefix needs before its hit ratio is judged.
pub const MIN_GETS: u64 = 100;
/// Hit ratio under which a cache is not earning its keep.
pub const LOW_HIT_RATIO: f64 = 0.5;
/// Share of misses on expired entries that means the TTL is too short.
pub const EXPIRED_MISS_SHARE: f64 = 0.3;
/// Share of stores that pushed out a hot entry that means the cache is too
/// small.
pub const HOT_EVICTION_SHARE: f64 = 0.1;
/// Fewest events behind an expiry or size finding.
pub const MIN_EVENTS: u64 = 20;

/// The recommendations of every cache.
pub fn cache_advice(caches: &Caches, admin: bool) -> Vec<Recommendation> {
    let mut advice = Vec::new();
    for cache in caches.all() {
        let name = &cache.name;
        for prefix in cache.prefixes() {
            let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            // A coalesced miss was served without a load of its own.
            let hits = load(&prefix.hits) + load(&prefix.coalesced);
            let misses = load(&prefix.misses);
            let gets = hits + misses;
            let objects = || admin.then(|| vec![format!("{name}/{}", prefix.prefix)]);
            if gets >= MIN_GETS {
                let ratio = hits as f64 / gets as f64;
                if ratio < LOW_HIT_RATIO {
                    advice.push(Recommendation {
                        kind: Kind::CacheHitRatio.into(),
                        severity: if ratio < 0.2 {
                            Severity::Medium
                        } else {
                            Severity::Low
                        },
                        message: format!(
                            "Cache {name}: {:.0}% of {gets} lookups of one key prefix hit. Its entries are rarely read twice: check that the key leaves out what varies per request (timestamps, pagination cursors), or stop caching these.",
                            ratio * 100.0
                        ),
                        value: ratio,
                        threshold: LOW_HIT_RATIO,
                        objects: objects(),
                    });
                }
            }
            let expired_misses = load(&prefix.expired_misses);
            if expired_misses >= MIN_EVENTS
                && expired_misses as f64 >= misses.max(1) as f64 * EXPIRED_MISS_SHARE
            {
                let share = expired_misses as f64 / misses.max(1) as f64;
                let ttl = cache
                    .default_ttl
                    .map(|t| format!(" (default TTL {} s)", t.as_secs_f64()))
                    .unwrap_or_default();
                advice.push(Recommendation {
                    kind: Kind::CacheTtlTooShort.into(),
                    severity: Severity::Low,
                    message: format!(
                        "Cache {name}: {expired_misses} of {misses} misses ({:.0}%) found their entry expired: the data is wanted again after its TTL{ttl}. Raise the TTL if the data may be that old, or invalidate on write and cache longer.",
                        share * 100.0
                    ),
                    value: share,
                    threshold: EXPIRED_MISS_SHARE,
                    objects: objects(),
                });
            }
            let sets = load(&prefix.sets);
            let hot = load(&prefix.hot_evictions);
            if hot >= MIN_EVENTS && hot as f64 >= sets.max(1) as f64 * HOT_EVICTION_SHARE {
                let share = hot as f64 / sets.max(1) as f64;
                let size = cache
                    .capacity
                    .map(|c| format!(" at its bound of {c} entries"))
                    .unwrap_or_default();
                advice.push(Recommendation {
                    kind: Kind::CacheTooSmall.into(),
                    severity: Severity::Medium,
                    message: format!(
                        "Cache {name}: {hot} entries that were being read were evicted for room{size} ({:.0}% of {sets} stores). Raise MAX_CACHE_SIZE (or this cache's max_entries) so the hot set fits.",
                        share * 100.0
                    ),
                    value: share,
                    threshold: HOT_EVICTION_SHARE,
                    objects: objects(),
                });
            }
        }
    }
    advice
}
