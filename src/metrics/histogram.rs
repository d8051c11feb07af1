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
//!
//! The request and query latency families are built with
//! [`TracedBuckets`]: each bucket then keeps the last traced observation
//! (value, trace id, time) as an OpenMetrics exemplar, so Grafana can jump
//! from a latency bucket to the trace. prometheus-client offers no public
//! way to build an `Exemplar` for a custom metric, so [`encode`] writes
//! them: each traced histogram logs its exemplars as it is encoded, and
//! [`encode`] appends them to that series' bucket lines in the same order.
//!
//! The trace id comes from the caller ([`AtomicHistogram::observe_traced`]
//! takes its source), so this module depends on no exporter and no
//! configuration.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use parking_lot::Mutex;

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

/// Buckets of a histogram that keeps exemplars (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct TracedBuckets(pub Buckets);

impl MetricConstructor<AtomicHistogram> for TracedBuckets {
    fn new_metric(&self) -> AtomicHistogram {
        AtomicHistogram::with_exemplars(self.0.clone())
    }
}

/// The last traced observation of a bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StoredExemplar {
    /// W3C trace id.
    pub trace_id: [u8; 16],
    /// The observed value (seconds).
    pub value: f64,
    /// When it was observed.
    pub at: SystemTime,
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
    /// One slot per bucket, for histograms built with [`TracedBuckets`].
    exemplars: Option<Box<[Mutex<Option<StoredExemplar>>]>>,
}

impl AtomicHistogram {
    /// An empty histogram with these buckets.
    pub fn new(buckets: Buckets) -> Self {
        Self::build(buckets, false)
    }

    /// An empty histogram that keeps one exemplar per bucket.
    pub fn with_exemplars(buckets: Buckets) -> Self {
        Self::build(buckets, true)
    }

    fn build(buckets: Buckets, exemplars: bool) -> Self {
        let slots = buckets.bounds().len() + 1;
        let counts = (0..slots).map(|_| AtomicU64::new(0)).collect();
        let exemplars = exemplars.then(|| (0..slots).map(|_| Mutex::new(None)).collect());
        Self {
            inner: Arc::new(Inner {
                buckets,
                counts,
                sum: AtomicU64::new(0f64.to_bits()),
                exemplars,
            }),
        }
    }

    /// Records one observation (seconds). NaN is ignored.
    pub fn observe(&self, value: f64) {
        self.observe_at(value);
    }

    /// Records one observation and, for a histogram with exemplars inside
    /// a sampled trace, keeps the trace id as its bucket's exemplar.
    /// `trace_id` is the caller's source of the current trace id (see
    /// [`crate::telemetry::current_trace_id`]), asked only by a histogram
    /// that keeps exemplars: the histogram knows no exporter.
    pub fn observe_traced(&self, value: f64, trace_id: impl FnOnce() -> Option<[u8; 16]>) {
        let Some(index) = self.observe_at(value) else {
            return;
        };
        let Some(slots) = &self.inner.exemplars else {
            return;
        };
        if let Some(trace_id) = trace_id() {
            self.keep_exemplar(slots, index, trace_id, value);
        }
    }

    /// Records one observation with `trace_id` as its bucket's exemplar.
    pub fn observe_with_exemplar(&self, value: f64, trace_id: [u8; 16]) {
        if let (Some(index), Some(slots)) = (self.observe_at(value), &self.inner.exemplars) {
            self.keep_exemplar(slots, index, trace_id, value);
        }
    }

    fn keep_exemplar(
        &self,
        slots: &[Mutex<Option<StoredExemplar>>],
        index: usize,
        trace_id: [u8; 16],
        value: f64,
    ) {
        // A contended slot keeps the other writer's exemplar: never wait.
        if let Some(mut slot) = slots[index].try_lock() {
            *slot = Some(StoredExemplar {
                trace_id,
                value,
                at: SystemTime::now(),
            });
        }
    }

    /// The exemplar of each bucket (`+Inf` last); empty without exemplars.
    pub fn exemplars(&self) -> Vec<Option<StoredExemplar>> {
        self.inner
            .exemplars
            .as_deref()
            .map(|slots| slots.iter().map(|slot| *slot.lock()).collect())
            .unwrap_or_default()
    }

    /// Counts `value` into its bucket; the bucket's index.
    fn observe_at(&self, value: f64) -> Option<usize> {
        if value.is_nan() {
            return None;
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
        Some(index)
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
        if self.inner.exemplars.is_some() {
            ENCODED_EXEMPLARS.with_borrow_mut(|log| {
                if let Some(log) = log {
                    log.push(self.exemplars());
                }
            });
        }
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

thread_local! {
    /// The exemplars of each traced series, in the order an [`encode`] on
    /// this thread wrote them.
    static ENCODED_EXEMPLARS: RefCell<Option<Vec<Vec<Option<StoredExemplar>>>>> =
        const { RefCell::new(None) };
}

/// Encodes `registry` as OpenMetrics text, with the exemplars of the
/// histograms built with [`TracedBuckets`] (see the module docs).
pub fn encode(
    registry: &prometheus_client::registry::Registry,
    traced_families: &[&str],
) -> Result<String, std::fmt::Error> {
    let mut text = String::with_capacity(16 * 1024);
    ENCODED_EXEMPLARS.with_borrow_mut(|log| *log = Some(Vec::new()));
    let encoded = prometheus_client::encoding::text::encode(&mut text, registry);
    let log = ENCODED_EXEMPLARS
        .with_borrow_mut(Option::take)
        .unwrap_or_default();
    encoded?;
    if log.iter().flatten().all(Option::is_none) {
        return Ok(text);
    }
    annotate(&text, traced_families, &log)
}

/// Appends ` # {trace_id="…"} value timestamp` to the bucket lines of the
/// traced families: the n-th series of those families (each starts with
/// its `_sum` line) takes the n-th logged set of exemplars.
fn annotate(
    text: &str,
    traced_families: &[&str],
    log: &[Vec<Option<StoredExemplar>>],
) -> Result<String, std::fmt::Error> {
    let mut out = String::with_capacity(text.len() + log.len() * 256);
    let mut series: Option<usize> = None;
    let mut bucket = 0usize;
    for line in text.lines() {
        out.push_str(line);
        let family = traced_families
            .iter()
            .find(|name| line.starts_with(*name) && line.as_bytes().get(name.len()) == Some(&b'_'));
        if let Some(name) = family {
            let suffix = &line[name.len() + 1..];
            if suffix.starts_with("sum") {
                series = Some(series.map_or(0, |n| n + 1));
                bucket = 0;
            } else if suffix.starts_with("bucket") {
                let exemplar = series
                    .and_then(|n| log.get(n))
                    .and_then(|slots| slots.get(bucket))
                    .copied()
                    .flatten();
                bucket += 1;
                if let Some(exemplar) = exemplar {
                    write_exemplar(&mut out, &exemplar)?;
                }
            }
        }
        out.push('\n');
    }
    Ok(out)
}

fn write_exemplar(out: &mut String, exemplar: &StoredExemplar) -> std::fmt::Result {
    out.push_str(" # {trace_id=\"");
    for byte in exemplar.trace_id {
        write!(out, "{byte:02x}")?;
    }
    let at = exemplar
        .at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    write!(out, "\"}} {} {at:.3}", exemplar.value)
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
    fn traced_buckets_keep_the_last_exemplar_and_the_scrape_shows_it() {
        use prometheus_client::metrics::family::Family;
        use prometheus_client::registry::Registry;

        #[derive(
            Clone, Debug, Hash, PartialEq, Eq, prometheus_client::encoding::EncodeLabelSet,
        )]
        struct Route {
            route: String,
        }
        let traced = Family::<Route, AtomicHistogram, TracedBuckets>::new_with_constructor(
            TracedBuckets(Buckets::new(&[0.1, 1.0]).expect("valid")),
        );
        let plain = Family::<Route, AtomicHistogram, Buckets>::new_with_constructor(
            Buckets::new(&[0.1]).expect("valid"),
        );
        let mut registry = Registry::default();
        registry.register("plain_seconds", "not traced", plain.clone());
        registry.register("traced_seconds", "traced", traced.clone());
        let a = Route { route: "/a".into() };
        let b = Route { route: "/b".into() };
        plain.get_or_create(&a).observe(0.05);
        traced.get_or_create(&a).observe(0.05);
        traced
            .get_or_create(&b)
            .observe_with_exemplar(0.5, [0xab; 16]);
        traced
            .get_or_create(&b)
            .observe_with_exemplar(0.7, [0xcd; 16]);
        traced.get_or_create(&b).observe(0.8);
        assert_eq!(traced.get_or_create(&a).exemplars(), vec![None, None, None]);

        let text = encode(&registry, &["traced_seconds"]).expect("encodes");
        let lines: Vec<&str> = text.lines().filter(|l| l.contains(" # {")).collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert!(
            lines[0].starts_with(&format!(
                "traced_seconds_bucket{{le=\"1.0\",route=\"/b\"}} 3 # {{trace_id=\"{}\"}} 0.7 ",
                "cd".repeat(16)
            )),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        // Without exemplars the text is the encoder's own.
        let mut plain_text = String::new();
        prometheus_client::encoding::text::encode(&mut plain_text, &registry).expect("encodes");
        assert_eq!(
            plain_text.lines().count(),
            text.lines().count(),
            "annotating adds no line"
        );
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
