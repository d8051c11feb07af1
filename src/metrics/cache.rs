//! Cache metrics, fed by [`crate::cache`]:
//! `cache_operations_total{cache, prefix, operation, result}`,
//! `cache_entries{cache}`, `cache_evictions_total{cache}` and
//! `cache_load_duration_seconds{cache}`.
//!
//! Keys never become labels. `prefix` is a key's first segment (up to the
//! first `:` or `-`), and a cache keeps at most
//! [`crate::cache::MAX_PREFIXES`] of them; `cache` is the developer's name
//! for a cache. Both families are capped by the series cap as well.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::bounded::{BoundedFamily, OverflowLabels, SeriesAccounting};
use super::histogram::{AtomicHistogram, Buckets};

/// What was done to a cache.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CacheOperation {
    /// A lookup (`hit`, `miss`, or `coalesced`: a miss served by another
    /// caller's load).
    Get,
    /// A value stored.
    Set,
    /// A loader run on a miss (`ok` or `error`).
    Load,
    /// An entry removed for room (the store was full).
    Evict,
    /// An entry removed because its TTL had passed.
    Expire,
    /// An entry removed by invalidation (by key or prefix).
    Invalidate,
}

impl CacheOperation {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::Set => "set",
            Self::Load => "load",
            Self::Evict => "evict",
            Self::Expire => "expire",
            Self::Invalidate => "invalidate",
        }
    }
}

impl EncodeLabelValue for CacheOperation {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// How it went.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CacheResult {
    /// A lookup found a live entry.
    Hit,
    /// A lookup found nothing (or an expired entry).
    Miss,
    /// A miss that waited for another caller's load of the same key.
    Coalesced,
    /// Done.
    Ok,
    /// A load failed.
    Error,
}

impl CacheResult {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
            Self::Coalesced => "coalesced",
            Self::Ok => "ok",
            Self::Error => "error",
        }
    }
}

impl EncodeLabelValue for CacheResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `cache_operations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheOperationLabels {
    pub cache: Arc<str>,
    pub prefix: Arc<str>,
    pub operation: CacheOperation,
    pub result: CacheResult,
}

impl OverflowLabels for CacheOperationLabels {
    fn overflow() -> Self {
        Self {
            cache: Arc::from("__overflow__"),
            prefix: Arc::from("__overflow__"),
            operation: CacheOperation::Get,
            result: CacheResult::Ok,
        }
    }
}

/// The `cache` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    pub cache: Arc<str>,
}

impl OverflowLabels for CacheLabels {
    fn overflow() -> Self {
        Self {
            cache: Arc::from("__overflow__"),
        }
    }
}

/// The cache metric families.
#[derive(Debug)]
pub struct CacheMetrics {
    /// `cache_operations_total{cache, prefix, operation, result}`.
    pub operations: BoundedFamily<CacheOperationLabels, Counter>,
    /// `cache_entries{cache}`.
    pub entries: BoundedFamily<CacheLabels, Gauge>,
    /// `cache_evictions_total{cache}`.
    pub evictions: BoundedFamily<CacheLabels, Counter>,
    /// `cache_load_duration_seconds{cache}`.
    pub load_duration: BoundedFamily<CacheLabels, AtomicHistogram, Buckets>,
}

impl CacheMetrics {
    /// Defines and registers the families.
    pub fn register(
        registry: &mut Registry,
        accounting: &SeriesAccounting,
        buckets: Buckets,
    ) -> Self {
        Self {
            operations: BoundedFamily::register(
                registry,
                accounting,
                "cache_operations",
                "Cache operations by cache, key prefix, operation (get, set, load, evict, expire, invalidate) and result (hit, miss, coalesced, ok, error)",
                None,
                Counter::default,
            ),
            entries: BoundedFamily::register(
                registry,
                accounting,
                "cache_entries",
                "Entries held by each query cache",
                None,
                Gauge::default,
            ),
            evictions: BoundedFamily::register(
                registry,
                accounting,
                "cache_evictions",
                "Entries removed for room because a query cache was full",
                None,
                Counter::default,
            ),
            load_duration: BoundedFamily::register(
                registry,
                accounting,
                "cache_load_duration",
                "Duration of the loaders a query cache ran on misses (once per key however many callers waited)",
                Some(Unit::Seconds),
                buckets,
            ),
        }
    }
}
