//! A lock-free classic histogram whose buckets can be read back.
//!
//! prometheus-client's `Histogram` takes a mutex per observation and keeps
//! its buckets private. perfscope observes on every request and query, and
//! `/api/performance/analyze` rates a duration against an operation's own
//! p50/p95, so this type keeps one atomic counter per bucket (no lock on the
//! hot path) and offers [`HistogramSnapshot::quantile`], the same linear
//! interpolation Prometheus' `histogram_quantile` uses. It encodes through
//! prometheus-client's public encoder, so it sits in a `Family` like any
//! other metric.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::family::MetricConstructor;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// Upper bounds of a histogram's buckets, in base units (seconds).
///
/// Strictly increasing, finite and positive; the `+Inf` bucket is implicit.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets(Arc<[f64]>);

impl Buckets {
    /// Request durations: 1 ms to 10 s.
    pub const HTTP_DEFAULT: &'static [f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
    ];
    /// Query durations: 0.5 ms to 10 s.
    pub const DB_DEFAULT: &'static [f64] = &[
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    ];
    /// Scheduling delay of the runtime: 0.1 ms to 5 s.
    pub const RUNTIME_DEFAULT: &'static [f64] = &[
        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    ];
    /// Custom measurements: 1 ms to 60 s.
    pub const CUSTOM_DEFAULT: &'static [f64] = &[
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ];

    /// The default request buckets.
    pub fn default_http() -> Self {
        Self(Self::HTTP_DEFAULT.into())
    }

    /// The default query buckets.
    pub fn default_db() -> Self {
        Self(Self::DB_DEFAULT.into())
    }

    /// Checked constructor.
    pub fn new(bounds: &[f64]) -> Result<Self, String> {
        if bounds.is_empty() || bounds.len() > 64 {
            return Err("expected between 1 and 64 bucket bounds".into());
        }
        if bounds.iter().any(|b| !b.is_finite() || *b <= 0.0) {
            return Err("expected finite, positive bucket bounds in seconds".into());
        }
        if bounds.windows(2).any(|w| w[0] >= w[1]) {
            return Err("expected strictly increasing bucket bounds".into());
        }
        Ok(Self(bounds.into()))
    }

    /// Parses a comma-separated list of bounds in seconds.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bounds = text
            .split(',')
            .map(|part| part.trim().parse::<f64>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "expected comma-separated bucket bounds in seconds".to_string())?;
        Self::new(&bounds)
    }

    /// The bounds.
    pub fn bounds(&self) -> &[f64] {
        &self.0
    }
}

impl MetricConstructor<AtomicHistogram> for Buckets {
    fn new_metric(&self) -> AtomicHistogram {
        AtomicHistogram::new(self.clone())
    }
}

/// A histogram with one atomic counter per bucket.
#[derive(Clone, Debug)]
pub struct AtomicHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    buckets: Buckets,
    /// One per bound, then `+Inf`; not cumulative.
    counts: Box<[AtomicU64]>,
    /// `f64` bits of the sum of observations.
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// An empty histogram with these buckets.
    pub fn new(buckets: Buckets) -> Self {
        let counts = (0..=buckets.bounds().len())
            .map(|_| AtomicU64::new(0))
            .collect();
        Self {
            inner: Arc::new(Inner {
                buckets,
                counts,
                sum: AtomicU64::new(0f64.to_bits()),
            }),
        }
    }

    /// Records one observation (seconds). NaN is ignored.
    pub fn observe(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        let index = self
            .inner
            .buckets
            .bounds()
            .partition_point(|bound| *bound < value);
        self.inner.counts[index].fetch_add(1, Ordering::Relaxed);
        // A CAS loop on the sum; uncontended it is one load and one CAS.
        let _ = self
            .inner
            .sum
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |bits| {
                Some((f64::from_bits(bits) + value).to_bits())
            });
    }

    /// A consistent-enough copy of the counts (each bucket read once).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let bounds = self.inner.buckets.bounds();
        let buckets: Vec<(f64, u64)> = self
            .inner
            .counts
            .iter()
            .enumerate()
            .map(|(i, count)| {
                (
                    bounds.get(i).copied().unwrap_or(f64::INFINITY),
                    count.load(Ordering::Relaxed),
                )
            })
            .collect();
        HistogramSnapshot {
            sum: f64::from_bits(self.inner.sum.load(Ordering::Relaxed)),
            count: buckets.iter().map(|(_, c)| c).sum(),
            buckets,
        }
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let snapshot = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(
            snapshot.sum,
            snapshot.count,
            &snapshot.buckets,
            None::<&HashMap<usize, Exemplar<NoLabelSet, f64>>>,
        )
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// A read-back copy of a histogram: per-bucket (not cumulative) counts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
    /// `(upper bound, count in this bucket)`, the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

impl HistogramSnapshot {
    /// Adds another snapshot with the same bounds into this one (an empty
    /// snapshot takes the other's bounds).
    pub fn merge(&mut self, other: &HistogramSnapshot) {
        if self.buckets.is_empty() {
            *self = other.clone();
            return;
        }
        self.sum += other.sum;
        self.count += other.count;
        for ((_, mine), (_, theirs)) in self.buckets.iter_mut().zip(&other.buckets) {
            *mine += theirs;
        }
    }

    /// Estimates the `q` quantile (0..=1) by linear interpolation inside the
    /// bucket that holds it, as Prometheus' `histogram_quantile` does. A
    /// quantile in the `+Inf` bucket answers the highest finite bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * self.count as f64;
        let mut below = 0u64;
        let mut lower_bound = 0.0;
        for (upper_bound, count) in &self.buckets {
            let upto = below + count;
            if (upto as f64) >= rank && *count > 0 {
                if upper_bound.is_infinite() {
                    return Some(lower_bound);
                }
                let into = (rank - below as f64) / *count as f64;
                return Some(lower_bound + (upper_bound - lower_bound) * into);
            }
            below = upto;
            if upper_bound.is_finite() {
                lower_bound = *upper_bound;
            }
        }
        Some(lower_bound)
    }

    /// Mean of the observations.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(bounds: &[f64]) -> AtomicHistogram {
        AtomicHistogram::new(Buckets::new(bounds).expect("valid bounds"))
    }

    #[test]
    fn observations_land_in_le_buckets() {
        let h = histogram(&[0.1, 1.0]);
        h.observe(0.1); // le="0.1" is inclusive
        h.observe(0.5);
        h.observe(7.0);
        h.observe(f64::NAN);
        let s = h.snapshot();
        assert_eq!(s.buckets, vec![(0.1, 1), (1.0, 1), (f64::INFINITY, 1)]);
        assert_eq!(s.count, 3);
        assert!((s.sum - 7.6).abs() < 1e-9);
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        let h = histogram(&[0.1, 0.2, 0.4]);
        for _ in 0..50 {
            h.observe(0.05);
        }
        for _ in 0..50 {
            h.observe(0.3);
        }
        let s = h.snapshot();
        // rank 50 is the top of the first bucket.
        assert!((s.quantile(0.5).unwrap() - 0.1).abs() < 1e-9);
        // rank 95 is 45/50 of the way through (0.2, 0.4].
        assert!((s.quantile(0.95).unwrap() - 0.38).abs() < 1e-9);
        assert_eq!(HistogramSnapshot::default().quantile(0.5), None);
    }

    #[test]
    fn quantile_in_inf_bucket_is_highest_bound() {
        let h = histogram(&[0.1]);
        h.observe(5.0);
        assert_eq!(h.snapshot().quantile(0.99), Some(0.1));
    }

    #[test]
    fn merge_adds_counts() {
        let a = histogram(&[1.0]);
        let b = histogram(&[1.0]);
        a.observe(0.5);
        b.observe(2.0);
        let mut merged = HistogramSnapshot::default();
        merged.merge(&a.snapshot());
        merged.merge(&b.snapshot());
        assert_eq!(merged.count, 2);
        assert_eq!(merged.buckets, vec![(1.0, 1), (f64::INFINITY, 1)]);
    }

    #[test]
    fn bucket_validation() {
        assert!(Buckets::parse("0.1, 0.5, 1").is_ok());
        assert!(Buckets::parse("0.5,0.1").is_err());
        assert!(Buckets::parse("0,1").is_err());
        assert!(Buckets::parse("a").is_err());
        assert!(Buckets::parse("").is_err());
    }
}
