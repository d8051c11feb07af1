//! A bounded set of [`AtomicSketch`]es by key: the request durations per
//! route series and the timed pool's durations per statement fingerprint.
//!
//! The sketches are not exported (Prometheus keeps its histograms); they
//! are read back by the history, the rating and the reports. Like
//! [`super::BoundedFamily`], the hot path (a key that has its sketch) is
//! one read lock on an FxHash index and one atomic add; past `cap` keys,
//! new keys record into one overflow sketch (or, with no overflow key, are
//! not recorded), so no input grows it without bound. A sketch holds a few
//! KiB (its pages of buckets, allocated as values arrive), so the caps are
//! smaller than the families' series cap.

use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::RwLock;
use rustc_hash::FxBuildHasher;

use super::sketch::{AtomicSketch, Sketch};

/// Sketches by key, at most `cap` of them plus the overflow one.
#[derive(Debug)]
pub struct SketchMap<K> {
    sketches: RwLock<HashMap<K, AtomicSketch, FxBuildHasher>>,
    cap: usize,
    overflow: Option<K>,
}

impl<K: Clone + Hash + Eq> SketchMap<K> {
    /// A map of at most `cap` keys; later keys record into `overflow`'s
    /// sketch, or nowhere when it is `None`.
    pub fn new(cap: usize, overflow: Option<K>) -> Self {
        Self {
            sketches: RwLock::new(HashMap::default()),
            cap: cap.max(1),
            overflow,
        }
    }

    /// Records `value` under `key`.
    #[inline]
    pub fn observe(&self, key: &K, value: f64) {
        if let Some(sketch) = self.sketches.read().get(key) {
            sketch.observe(value);
            return;
        }
        self.observe_new(key, value);
    }

    #[cold]
    fn observe_new(&self, key: &K, value: f64) {
        let mut sketches = self.sketches.write();
        let key = if sketches.contains_key(key) || sketches.len() < self.cap {
            key
        } else {
            match &self.overflow {
                Some(overflow) => overflow,
                None => return,
            }
        };
        sketches.entry(key.clone()).or_default().observe(value);
    }

    /// The snapshot of `key`'s sketch, if it has one.
    pub fn get(&self, key: &K) -> Option<Sketch> {
        self.sketches.read().get(key).map(AtomicSketch::snapshot)
    }

    /// Calls `f` for every key's sketch (the overflow one included, under
    /// its key).
    pub fn for_each(&self, mut f: impl FnMut(&K, &AtomicSketch)) {
        for (key, sketch) in self.sketches.read().iter() {
            f(key, sketch);
        }
    }

    /// The merged snapshot of every key `select` picks.
    pub fn merged(&self, mut select: impl FnMut(&K) -> bool) -> Sketch {
        let mut merged = Sketch::new();
        for (key, sketch) in self.sketches.read().iter() {
            if select(key) {
                merged.merge(&sketch.snapshot());
            }
        }
        merged
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.sketches.read().len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the sketches hold now, for memory estimates.
    pub fn heap_bytes(&self) -> usize {
        self.sketches
            .read()
            .values()
            .map(|s| s.heap_bytes() + std::mem::size_of::<K>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_past_the_cap() {
        let map: SketchMap<u64> = SketchMap::new(2, Some(u64::MAX));
        for key in 0..5 {
            map.observe(&key, 0.01);
        }
        map.observe(&0, 0.01);
        assert_eq!(map.len(), 3);
        assert_eq!(map.get(&0).map(|s| s.count()), Some(2));
        assert_eq!(map.get(&u64::MAX).map(|s| s.count()), Some(3));
        assert_eq!(map.get(&4), None);
        assert_eq!(map.merged(|_| true).count(), 6);

        let dropping: SketchMap<u64> = SketchMap::new(1, None);
        dropping.observe(&1, 0.5);
        dropping.observe(&2, 0.5);
        assert_eq!(dropping.len(), 1);
        assert!(
            dropping.heap_bytes() < 2 * 1024,
            "{}",
            dropping.heap_bytes()
        );
    }
}
