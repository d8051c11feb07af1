//! A mergeable relative-error quantile sketch (DDSketch-style), for the
//! percentiles the pages, the rating and the store show.
//!
//! A Prometheus-style histogram only knows which bucket a value fell in;
//! interpolating inside a bucket and printing the result as a point is what
//! made a route whose every request takes 1.10 s show a p50 of 1.75 s (the
//! middle of the 1–2.5 s bucket), and every route under 1 ms show 500 µs /
//! 950 µs / 990 µs. A DDSketch instead keeps logarithmic buckets
//! `(γ^(k-1), γ^k]` with `γ = (1+α)/(1-α)`: any quantile it answers is
//! within a relative error `α` ([`RELATIVE_ACCURACY`], 1 %) of a value that
//! was really observed, whatever the distribution, and two sketches merge
//! by adding their buckets, so an hour is the sum of its intervals and the
//! interval between two cumulative reads is their difference.
//!
//! Two forms:
//! - [`AtomicSketch`], recorded on the request path: one `ln` and one
//!   relaxed atomic add per observation, no lock. Its buckets are fixed to
//!   [`MAX_BINS`] keys from 1 µs up (about 6·10¹¹ s at the top); smaller
//!   values fold into the lowest bucket (DDSketch's "collapse the lowest"),
//!   and the buckets are allocated in pages of 64 on first use, so a route
//!   whose latencies span two decades holds a few KiB, not 16.
//! - [`Sketch`], a plain snapshot: [`Sketch::merge`], [`Sketch::minus`],
//!   [`Sketch::count`], [`Sketch::quantile`], and a compact
//!   [`Sketch::encode`]/[`Sketch::decode`] (sparse keys, varints) for the
//!   history and the store. Its bucket count is bounded by [`MAX_BINS`]
//!   (merging collapses the lowest buckets). [`Sketch::coarsen`] halves its
//!   resolution (UDDSketch's uniform collapse: `γ` becomes `γ²`, the error
//!   about doubles), which is how a byte-bounded holder keeps a wide
//!   distribution in a fixed size; [`Sketch::relative_accuracy`] says what
//!   the resolution is now.
//!
//! Written here rather than wrapping the `sketches-ddsketch` crate: that
//! crate has no concurrent recording form (a `&mut self` `add`, so a lock
//! per request), no subtraction of two cumulative snapshots, and no byte
//! encoding (serde only), which are the three things perfscope needs; the
//! sketch itself is a few hundred lines.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Relative error of a quantile at full resolution.
pub const RELATIVE_ACCURACY: f64 = 0.01;
/// Buckets a sketch holds at most (besides the zero bucket).
pub const MAX_BINS: usize = 2048;
/// `1 / ln γ` for `γ = (1 + 0.01) / (1 - 0.01)` (a test checks it).
const INV_LN_GAMMA: f64 = 49.998_333_288_886_78;
/// The key of 1 µs, the lowest bucket of an [`AtomicSketch`].
const ATOMIC_MIN_KEY: i32 = -690;
/// Buckets per lazily allocated page of an [`AtomicSketch`].
const PAGE: usize = 64;
const PAGES: usize = MAX_BINS / PAGE;
/// Coarsest resolution a sketch takes (γ^(2^8): about 99 % error, which no
/// holder reaches; a bound for [`Sketch::decode`]).
const MAX_LEVEL: u8 = 8;
/// Encoding version, the first byte of [`Sketch::encode`].
const FORMAT: u8 = 1;
/// Largest key magnitude [`Sketch::decode`] accepts (far past any `f64`).
const MAX_KEY: i64 = 1 << 20;

/// The bucket key of a positive `value` at full resolution.
fn key_of(value: f64) -> f64 {
    (value.ln() * INV_LN_GAMMA).ceil()
}

/// A sketch recorded concurrently (see the module docs); read it with
/// [`AtomicSketch::snapshot`].
pub struct AtomicSketch {
    /// Observations of zero or less.
    zero: AtomicU64,
    pages: [OnceLock<Box<[AtomicU64; PAGE]>>; PAGES],
}

impl Default for AtomicSketch {
    fn default() -> Self {
        Self {
            zero: AtomicU64::new(0),
            pages: [const { OnceLock::new() }; PAGES],
        }
    }
}

impl std::fmt::Debug for AtomicSketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AtomicSketch").finish_non_exhaustive()
    }
}

impl AtomicSketch {
    /// Records one value (seconds, or any positive unit); `NaN` is ignored.
    #[inline]
    pub fn observe(&self, value: f64) {
        if value.is_nan() {
            return;
        }
        if value <= 0.0 {
            self.zero.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let index = (key_of(value) - f64::from(ATOMIC_MIN_KEY)).clamp(0.0, (MAX_BINS - 1) as f64);
        // In range by the clamp; `as` on a finite, non-negative float.
        let index = index as usize;
        let page = self.pages[index / PAGE]
            .get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        page[index % PAGE].fetch_add(1, Ordering::Relaxed);
    }

    /// The counts so far.
    pub fn snapshot(&self) -> Sketch {
        let mut sketch = Sketch {
            zero: self.zero.load(Ordering::Relaxed),
            ..Sketch::default()
        };
        let mut counts = Vec::new();
        let mut first = None;
        for (p, page) in self.pages.iter().enumerate() {
            let Some(page) = page.get() else { continue };
            for (i, count) in page.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count == 0 {
                    continue;
                }
                let index = p * PAGE + i;
                let start = *first.get_or_insert(index);
                counts.resize(index - start + 1, 0);
                counts[index - start] = count;
            }
        }
        if let Some(start) = first {
            // `start` < MAX_BINS, so it fits.
            sketch.offset = ATOMIC_MIN_KEY + i32::try_from(start).unwrap_or(0);
            sketch.counts = counts;
        }
        sketch
    }

    /// Bytes this sketch holds now (its pages), for memory estimates.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.pages.iter().filter(|p| p.get().is_some()).count()
                * std::mem::size_of::<[AtomicU64; PAGE]>()
    }
}

/// A snapshot of a sketch: counts per logarithmic bucket (see the module
/// docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sketch {
    /// Resolution: buckets are powers of `γ^(2^level)`.
    level: u8,
    /// Observations of zero or less.
    zero: u64,
    /// Key of `counts[0]`.
    offset: i32,
    /// Dense counts from `offset`; empty, or non-zero at both ends.
    counts: Vec<u64>,
}

/// Why bytes are not a sketch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end in the middle of a field.
    #[error("the sketch's bytes end early")]
    Truncated,
    /// A field holds a value no encoder writes.
    #[error("the sketch's bytes hold an invalid {0}")]
    Invalid(&'static str),
    /// Bytes follow the sketch.
    #[error("bytes follow the sketch")]
    Trailing,
}

impl Sketch {
    /// An empty sketch at full resolution.
    pub fn new() -> Self {
        Self::default()
    }

    /// A sketch of `values` (tests and holders that are not concurrent).
    pub fn of(values: impl IntoIterator<Item = f64>) -> Self {
        let atomic = AtomicSketch::default();
        for value in values {
            atomic.observe(value);
        }
        atomic.snapshot()
    }

    /// Observations held.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(self.zero, |total, c| total.saturating_add(*c))
    }

    /// Non-empty buckets and the zero bucket's presence, roughly what
    /// [`Sketch::encode`] spends bytes on.
    pub fn bins(&self) -> usize {
        self.counts.iter().filter(|c| **c > 0).count()
    }

    /// The relative error of a quantile at this sketch's resolution.
    pub fn relative_accuracy(&self) -> f64 {
        let gamma = self.gamma();
        (gamma - 1.0) / (gamma + 1.0)
    }

    fn gamma(&self) -> f64 {
        (f64::from(1u32 << self.level) / INV_LN_GAMMA).exp()
    }

    /// The `q` quantile (0..=1) within [`Sketch::relative_accuracy`] of a
    /// value that was observed; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 || q.is_nan() {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * (count - 1) as f64;
        let mut seen = self.zero as f64;
        if seen > rank {
            return Some(0.0);
        }
        let gamma = self.gamma();
        for (i, c) in self.counts.iter().enumerate() {
            seen += *c as f64;
            if seen > rank {
                let key = f64::from(self.offset) + i as f64;
                return Some(2.0 * gamma.powf(key) / (gamma + 1.0));
            }
        }
        // Rounding at the top: the highest bucket.
        let key = f64::from(self.offset) + (self.counts.len().max(1) - 1) as f64;
        Some(2.0 * gamma.powf(key) / (gamma + 1.0))
    }

    /// Adds `other`'s observations (the sketch of the union). The coarser
    /// resolution of the two wins; past [`MAX_BINS`] the lowest buckets
    /// collapse into one.
    pub fn merge(&mut self, other: &Sketch) {
        let mut other = std::borrow::Cow::Borrowed(other);
        while self.level < other.level {
            self.coarsen();
        }
        while other.level < self.level {
            other.to_mut().coarsen();
        }
        self.zero = self.zero.saturating_add(other.zero);
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            self.offset = other.offset;
            self.counts = other.counts.clone();
            return;
        }
        let low = self.offset.min(other.offset);
        let high = self.high().max(other.high());
        let mut counts = vec![0u64; span(low, high)];
        for (sketch_offset, sketch_counts) in
            [(self.offset, &self.counts), (other.offset, &other.counts)]
        {
            let start = span(low, sketch_offset) - 1;
            for (slot, c) in counts[start..].iter_mut().zip(sketch_counts) {
                *slot = slot.saturating_add(*c);
            }
        }
        self.offset = low;
        self.counts = counts;
        self.collapse_lowest();
    }

    /// The observations made between `earlier` (a snapshot of the same
    /// cumulative sketch) and this one: the interval's own sketch. A
    /// bucket that went down (a reset) counts as empty.
    pub fn minus(&self, earlier: &Sketch) -> Sketch {
        let mut now = self.clone();
        let mut earlier = std::borrow::Cow::Borrowed(earlier);
        while now.level < earlier.level {
            now.coarsen();
        }
        while earlier.level < now.level {
            earlier.to_mut().coarsen();
        }
        now.zero = now.zero.saturating_sub(earlier.zero);
        for (i, c) in earlier.counts.iter().enumerate() {
            let key = i64::from(earlier.offset) + i as i64;
            let Some(at) = now.index_of(key) else {
                continue;
            };
            now.counts[at] = now.counts[at].saturating_sub(*c);
        }
        now.trim();
        now
    }

    /// Halves the resolution: bucket `k` becomes `⌈k/2⌉` of `γ²`.
    pub fn coarsen(&mut self) {
        if self.level >= MAX_LEVEL {
            return;
        }
        self.level += 1;
        if self.counts.is_empty() {
            return;
        }
        let half = |k: i32| (k + 1).div_euclid(2);
        let low = half(self.offset);
        let mut counts = vec![0u64; span(low, half(self.high()))];
        for (i, c) in self.counts.iter().enumerate() {
            let key = self.offset + i32::try_from(i).unwrap_or(0);
            let slot = &mut counts[span(low, half(key)) - 1];
            *slot = slot.saturating_add(*c);
        }
        self.offset = low;
        self.counts = counts;
    }

    /// Coarsens until [`Sketch::encode`] takes at most `max_bytes` (or the
    /// coarsest resolution is reached).
    pub fn fit(&mut self, max_bytes: usize) {
        while self.level < MAX_LEVEL && self.encode().len() > max_bytes {
            self.coarsen();
        }
    }

    /// The compact bytes of this sketch: format, level, zero count, the
    /// number of buckets, then each non-empty bucket as a key (the first
    /// zigzag, then gaps) and a count, all LEB128 varints.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.bins() * 3);
        out.push(FORMAT);
        out.push(self.level);
        put_varint(&mut out, self.zero);
        put_varint(&mut out, self.bins() as u64);
        let mut previous: Option<i64> = None;
        for (i, c) in self.counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            let key = i64::from(self.offset) + i as i64;
            match previous {
                None => put_varint(&mut out, zigzag(key)),
                Some(p) => put_varint(&mut out, (key - p) as u64),
            }
            put_varint(&mut out, *c);
            previous = Some(key);
        }
        out
    }

    /// Reads [`Sketch::encode`]'s bytes; anything else is an error, never
    /// a panic or an unbounded allocation.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut input = bytes;
        let format = take_byte(&mut input)?;
        if format != FORMAT {
            return Err(DecodeError::Invalid("format"));
        }
        let level = take_byte(&mut input)?;
        if level > MAX_LEVEL {
            return Err(DecodeError::Invalid("level"));
        }
        let zero = take_varint(&mut input)?;
        let bins = take_varint(&mut input)?;
        if bins > MAX_BINS as u64 {
            return Err(DecodeError::Invalid("bucket count"));
        }
        let mut sketch = Sketch {
            level,
            zero,
            ..Sketch::default()
        };
        let mut total = zero;
        let mut previous: Option<i64> = None;
        for _ in 0..bins {
            let raw = take_varint(&mut input)?;
            let key = match previous {
                None => unzigzag(raw),
                Some(p) => {
                    if raw == 0 || raw > MAX_BINS as u64 {
                        return Err(DecodeError::Invalid("bucket gap"));
                    }
                    p + raw as i64
                }
            };
            if !(-MAX_KEY..=MAX_KEY).contains(&key) {
                return Err(DecodeError::Invalid("bucket key"));
            }
            let count = take_varint(&mut input)?;
            if count == 0 {
                return Err(DecodeError::Invalid("bucket count"));
            }
            total = total
                .checked_add(count)
                .ok_or(DecodeError::Invalid("total"))?;
            // In range: |key| ≤ 2^20.
            let key32 = key as i32;
            if previous.is_none() {
                sketch.offset = key32;
            }
            let index = span(sketch.offset, key32) - 1;
            if index >= MAX_BINS {
                return Err(DecodeError::Invalid("bucket span"));
            }
            sketch.counts.resize(index + 1, 0);
            sketch.counts[index] = count;
            previous = Some(key);
        }
        if !input.is_empty() {
            return Err(DecodeError::Trailing);
        }
        Ok(sketch)
    }

    /// Key of the last bucket.
    fn high(&self) -> i32 {
        self.offset + i32::try_from(self.counts.len().max(1) - 1).unwrap_or(0)
    }

    fn index_of(&self, key: i64) -> Option<usize> {
        let at = usize::try_from(key - i64::from(self.offset)).ok()?;
        (at < self.counts.len()).then_some(at)
    }

    /// Drops empty buckets at both ends.
    fn trim(&mut self) {
        let Some(first) = self.counts.iter().position(|c| *c > 0) else {
            self.counts.clear();
            self.offset = 0;
            return;
        };
        let last = self.counts.iter().rposition(|c| *c > 0).unwrap_or(first);
        self.counts.truncate(last + 1);
        self.counts.drain(..first);
        self.offset += i32::try_from(first).unwrap_or(0);
    }

    /// Folds the lowest buckets into one so at most [`MAX_BINS`] remain.
    fn collapse_lowest(&mut self) {
        self.trim();
        if self.counts.len() <= MAX_BINS {
            return;
        }
        let excess = self.counts.len() - MAX_BINS;
        let folded = self.counts[..=excess]
            .iter()
            .fold(0u64, |t, c| t.saturating_add(*c));
        self.counts.drain(..excess);
        self.counts[0] = folded;
        self.offset += i32::try_from(excess).unwrap_or(0);
    }
}

/// Buckets from key `low` to key `high`, both included.
fn span(low: i32, high: i32) -> usize {
    usize::try_from(i64::from(high) - i64::from(low) + 1).unwrap_or(0)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_byte(input: &mut &[u8]) -> Result<u8, DecodeError> {
    let (first, rest) = input.split_first().ok_or(DecodeError::Truncated)?;
    *input = rest;
    Ok(*first)
}

fn take_varint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = take_byte(input)?;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return Err(DecodeError::Invalid("varint"));
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(DecodeError::Invalid("varint"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(actual: Option<f64>, expected: f64, tolerance: f64) {
        let actual = actual.expect("a quantile");
        assert!(
            (actual - expected).abs() <= expected * tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn the_constants_agree() {
        let gamma = (1.0 + RELATIVE_ACCURACY) / (1.0 - RELATIVE_ACCURACY);
        assert!((1.0 / gamma.ln() - INV_LN_GAMMA).abs() < 1e-9);
        assert_eq!(key_of(1e-6) as i32, ATOMIC_MIN_KEY);
        assert!((Sketch::new().relative_accuracy() - RELATIVE_ACCURACY).abs() < 1e-12);
    }

    #[test]
    fn a_fixed_duration_is_its_own_median() {
        // Bucket interpolation showed 1.75 s here (the 1–2.5 s bucket).
        let sketch = Sketch::of(std::iter::repeat_n(1.10, 1000));
        assert_eq!(sketch.count(), 1000);
        for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
            close(sketch.quantile(q), 1.10, RELATIVE_ACCURACY);
        }
        // And under a millisecond, where the buckets said 500/950/990 µs.
        let fast = Sketch::of(std::iter::repeat_n(0.000_120, 50));
        close(fast.quantile(0.5), 0.000_120, RELATIVE_ACCURACY);
        close(fast.quantile(0.99), 0.000_120, RELATIVE_ACCURACY);
    }

    #[test]
    fn a_bimodal_mix_keeps_both_modes() {
        // 90 % at 2 ms, 10 % at 800 ms.
        let values = (0..1000).map(|i| if i % 10 == 0 { 0.8 } else { 0.002 });
        let sketch = Sketch::of(values);
        close(sketch.quantile(0.5), 0.002, RELATIVE_ACCURACY);
        close(sketch.quantile(0.85), 0.002, RELATIVE_ACCURACY);
        close(sketch.quantile(0.95), 0.8, RELATIVE_ACCURACY);
        close(sketch.quantile(0.99), 0.8, RELATIVE_ACCURACY);
    }

    #[test]
    fn quantiles_of_a_spread_are_within_the_accuracy() {
        let values: Vec<f64> = (1..=10_000).map(|i| f64::from(i) * 1e-4).collect();
        let sketch = Sketch::of(values.iter().copied());
        for q in [0.01, 0.25, 0.5, 0.9, 0.99] {
            let exact = values[(q * (values.len() - 1) as f64) as usize];
            close(sketch.quantile(q), exact, RELATIVE_ACCURACY + 1e-9);
        }
        assert_eq!(Sketch::new().quantile(0.5), None);
    }

    #[test]
    fn merge_is_the_sketch_of_the_union() {
        let a: Vec<f64> = (1..500).map(|i| f64::from(i) * 1e-3).collect();
        let b: Vec<f64> = (1..300).map(|i| 0.5 + f64::from(i) * 1e-2).collect();
        let mut merged = Sketch::of(a.iter().copied());
        merged.merge(&Sketch::of(b.iter().copied()));
        assert_eq!(merged, Sketch::of(a.iter().chain(&b).copied()));
        let mut empty = Sketch::new();
        empty.merge(&merged);
        assert_eq!(empty, merged);
    }

    #[test]
    fn minus_is_the_interval_between_two_reads() {
        let atomic = AtomicSketch::default();
        for i in 1..100 {
            atomic.observe(f64::from(i) * 1e-3);
        }
        let before = atomic.snapshot();
        for _ in 0..40 {
            atomic.observe(0.25);
        }
        atomic.observe(0.0);
        let interval = atomic.snapshot().minus(&before);
        assert_eq!(interval.count(), 41);
        assert_eq!(interval.bins(), 1, "only the new bucket is left");
        close(interval.quantile(0.9), 0.25, RELATIVE_ACCURACY);
        assert_eq!(interval.quantile(0.0), Some(0.0), "the zero");
        assert_eq!(before.minus(&before).count(), 0);
    }

    #[test]
    fn merging_past_the_cap_collapses_the_lowest_buckets() {
        let mut low = Sketch::of([1e-6]);
        let high = Sketch::of([1e6]);
        low.coarsen();
        low.merge(&high);
        assert!(low.counts.len() <= MAX_BINS);
        // Full resolution over 1e-6..1e6 needs ~1400 keys: still fine.
        let mut wide = Sketch::of([1e-6]);
        wide.merge(&Sketch::of([1e6]));
        assert_eq!(wide.count(), 2);
        let mut huge = Sketch {
            offset: -5000,
            counts: vec![1],
            ..Sketch::default()
        };
        huge.merge(&Sketch::of([1.0]));
        assert_eq!(huge.counts.len(), MAX_BINS, "the lowest folded");
        assert_eq!(huge.count(), 2);
        close(huge.quantile(1.0), 1.0, RELATIVE_ACCURACY);
    }

    #[test]
    fn coarsening_doubles_the_error_and_keeps_the_count() {
        let values: Vec<f64> = (1..2000).map(|i| f64::from(i) * 1e-4).collect();
        let mut sketch = Sketch::of(values.iter().copied());
        let before = sketch.encode().len();
        sketch.fit(before / 3);
        assert!(sketch.encode().len() <= before / 3);
        assert!(sketch.relative_accuracy() > 0.03, "two halvings at least");
        assert_eq!(sketch.count(), values.len() as u64);
        close(
            sketch.quantile(0.5),
            values[999],
            sketch.relative_accuracy(),
        );
        // A fine sketch merged into a coarse one takes its resolution.
        let mut fine = Sketch::of([0.1]);
        fine.merge(&sketch);
        assert_eq!(fine.relative_accuracy(), sketch.relative_accuracy());
    }

    #[test]
    fn encoding_round_trips_and_is_compact() {
        let sketch = Sketch::of((1..200).map(|i| f64::from(i) * 1e-3).chain([0.0]));
        let bytes = sketch.encode();
        assert_eq!(Sketch::decode(&bytes), Ok(sketch));
        assert!(bytes.len() < 4 * 200, "{} bytes", bytes.len());
        let fixed = Sketch::of(std::iter::repeat_n(1.10, 1000));
        assert!(fixed.encode().len() <= 8, "{:?}", fixed.encode());
        assert_eq!(Sketch::decode(&Sketch::new().encode()), Ok(Sketch::new()));
    }

    #[test]
    fn decode_rejects_garbage() {
        let good = Sketch::of([0.5, 0.6]).encode();
        assert_eq!(Sketch::decode(&[]), Err(DecodeError::Truncated));
        assert_eq!(
            Sketch::decode(&good[..good.len() - 1]),
            Err(DecodeError::Truncated)
        );
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(Sketch::decode(&trailing), Err(DecodeError::Trailing));
        assert!(Sketch::decode(&[2, 0, 0, 0]).is_err(), "unknown format");
        assert!(Sketch::decode(&[1, 99, 0, 0]).is_err(), "level");
        assert!(
            Sketch::decode(&[1, 0, 0, 0xff, 0xff, 0x03]).is_err(),
            "too many buckets"
        );
        assert!(
            Sketch::decode(&[1, 0, 0, 1, 0, 0]).is_err(),
            "an empty bucket"
        );
        assert!(
            Sketch::decode(&[
                1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0
            ])
            .is_err()
        );
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Sketch::decode(&bytes);
            // A valid header in front of random bytes gets further in.
            let mut framed = vec![FORMAT, 0];
            framed.extend_from_slice(&bytes);
            if let Ok(sketch) = Sketch::decode(&framed) {
                prop_assert!(sketch.counts.len() <= MAX_BINS);
                let _ = sketch.quantile(0.5);
                prop_assert_eq!(Sketch::decode(&sketch.encode()), Ok(sketch));
            }
        }

        #[test]
        fn round_trip_and_merge_agree(
            a in proptest::collection::vec(1e-7f64..1e4, 0..50),
            b in proptest::collection::vec(1e-7f64..1e4, 0..50),
        ) {
            let mut merged = Sketch::of(a.iter().copied());
            merged.merge(&Sketch::of(b.iter().copied()));
            let union = Sketch::of(a.iter().chain(&b).copied());
            prop_assert_eq!(&merged, &union);
            prop_assert_eq!(union.minus(&Sketch::of(a.iter().copied())), Sketch::of(b.iter().copied()));
            prop_assert_eq!(Sketch::decode(&union.encode()), Ok(union));
        }
    }
}
