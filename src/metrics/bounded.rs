//! Metric families with a cap on their series.
//!
//! Any label that can take a value from outside (a route template of a host
//! app, an operation name, a table) could grow a family without bound and
//! take Prometheus down with it. A [`BoundedFamily`] holds at most `cap`
//! series; past that, new label sets fold into one overflow series given by
//! [`OverflowLabels::overflow`], every folded observation is counted in
//! `perfscope_metric_overflow_total{family}`, and the family's current size
//! is `perfscope_metric_series{family}`.
//!
//! The hot path (a label set that already has a series) is one read lock on
//! an index hashed with FxHash (prometheus-client's `Family` hashes with
//! SipHash, which is most of a lookup's cost for a label set holding a route
//! template); the index holds clones of the family's metrics, which share
//! their state. Only the creation of a new series takes a mutex.

use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use std::collections::HashMap;

use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rustc_hash::FxBuildHasher;

/// A label set that knows which label set its family folds into once full.
pub trait OverflowLabels {
    /// The one label set that stands for every series past the cap.
    fn overflow() -> Self;
}

/// Label set of the series-accounting families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FamilyLabel {
    /// The metric family's name.
    pub family: &'static str,
}

/// The two families that account for every bounded family's size.
#[derive(Clone, Debug, Default)]
pub struct SeriesAccounting {
    series: Family<FamilyLabel, Gauge>,
    overflow: Family<FamilyLabel, Counter>,
    cap: usize,
}

impl SeriesAccounting {
    /// Registers `perfscope_metric_series` and `perfscope_metric_overflow`.
    pub fn register(registry: &mut Registry, cap: usize) -> Self {
        let accounting = Self {
            cap: cap.max(1),
            ..Self::default()
        };
        registry.register(
            "perfscope_metric_series",
            "Series held by each bounded metric family",
            accounting.series.clone(),
        );
        registry.register(
            "perfscope_metric_overflow",
            "Observations folded into a family's overflow series because it reached its series cap",
            accounting.overflow.clone(),
        );
        accounting
    }

    /// The series cap of every family.
    pub fn cap(&self) -> usize {
        self.cap
    }
}

#[derive(Debug)]
struct Known {
    series: usize,
    overflowed: bool,
}

/// A series handed out by [`BoundedFamily::get`]: borrowed from the index
/// (the hot path) or a clone made when it was created (clones share state).
#[derive(Debug)]
pub enum Series<'a, M> {
    /// Found in the index.
    Indexed(MappedRwLockReadGuard<'a, M>),
    /// Just created.
    Created(M),
}

impl<M> std::ops::Deref for Series<'_, M> {
    type Target = M;

    fn deref(&self) -> &M {
        match self {
            Self::Indexed(metric) => metric,
            Self::Created(metric) => metric,
        }
    }
}

/// A `Family` that holds at most `cap` series plus one overflow series.
#[derive(Debug)]
pub struct BoundedFamily<S, M, C = fn() -> M> {
    name: &'static str,
    family: Family<S, M, C>,
    /// The series by label set, for fast lookups and read-back.
    index: RwLock<HashMap<S, M, FxBuildHasher>>,
    /// Series accounting; held while a series is created.
    known: Mutex<Known>,
    accounting: SeriesAccounting,
}

impl<S, M, C> BoundedFamily<S, M, C>
where
    S: Clone
        + Hash
        + Eq
        + OverflowLabels
        + EncodeLabelSet
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    M: EncodeMetric
        + prometheus_client::metrics::TypedMetric
        + Clone
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
    C: MetricConstructor<M> + Clone + std::fmt::Debug + Send + Sync + 'static,
{
    /// Creates the family and registers it under `name` (which is also its
    /// `family` label in the accounting series).
    pub fn register(
        registry: &mut Registry,
        accounting: &SeriesAccounting,
        name: &'static str,
        help: &str,
        unit: Option<prometheus_client::registry::Unit>,
        constructor: C,
    ) -> Self {
        let family = Family::new_with_constructor(constructor);
        match unit {
            Some(unit) => registry.register_with_unit(name, help, unit, family.clone()),
            None => registry.register(name, help, family.clone()),
        }
        accounting
            .series
            .get_or_create(&FamilyLabel { family: name })
            .set(0);
        Self {
            name,
            family,
            index: RwLock::new(HashMap::default()),
            known: Mutex::new(Known {
                series: 0,
                overflowed: false,
            }),
            accounting: accounting.clone(),
        }
    }

    /// The series for `labels`, or the overflow series once the family is
    /// full.
    pub fn get(&self, labels: &S) -> Series<'_, M> {
        match RwLockReadGuard::try_map(self.index.read(), |index| index.get(labels)) {
            Ok(metric) => Series::Indexed(metric),
            Err(guard) => {
                drop(guard);
                Series::Created(self.create(labels))
            }
        }
    }

    #[cold]
    fn create(&self, labels: &S) -> M {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        // Another caller may have created it while this one waited.
        let exists = self.index.read().contains_key(labels);
        let target = if exists {
            labels.clone()
        } else if known.series < self.accounting.cap {
            known.series += 1;
            labels.clone()
        } else {
            known.overflowed = true;
            self.accounting
                .overflow
                .get_or_create(&FamilyLabel { family: self.name })
                .inc();
            S::overflow()
        };
        let metric = self.family.get_or_create(&target).clone();
        self.index
            .write()
            .entry(target)
            .or_insert_with(|| metric.clone());
        let series = known.series + usize::from(known.overflowed);
        self.accounting
            .series
            .get_or_create(&FamilyLabel { family: self.name })
            .set(i64::try_from(series).unwrap_or(i64::MAX));
        metric
    }

    /// Calls `f` for every series (not the overflow one).
    pub fn for_each(&self, mut f: impl FnMut(&S, &M)) {
        let overflow = S::overflow();
        for (labels, metric) in self.index.read().iter() {
            if *labels != overflow {
                f(labels, metric);
            }
        }
    }

    /// The family's name.
    pub fn name(&self) -> &'static str {
        self.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct PathLabel {
        path: String,
    }

    impl OverflowLabels for PathLabel {
        fn overflow() -> Self {
            Self {
                path: "__overflow__".into(),
            }
        }
    }

    #[test]
    fn folds_past_the_cap_and_accounts_for_it() {
        let mut registry = Registry::default();
        let accounting = SeriesAccounting::register(&mut registry, 3);
        let family: BoundedFamily<PathLabel, Counter> = BoundedFamily::register(
            &mut registry,
            &accounting,
            "test_hits",
            "Hits",
            None,
            Counter::default,
        );
        for i in 0..10 {
            family
                .get(&PathLabel {
                    path: format!("/p/{i}"),
                })
                .inc();
        }
        // An existing series still counts as itself after the cap.
        family
            .get(&PathLabel {
                path: "/p/0".into(),
            })
            .inc();

        let mut text = String::new();
        encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("test_hits_total{path=\"/p/0\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("test_hits_total{path=\"/p/2\"} 1\n"),
            "{text}"
        );
        assert!(!text.contains("/p/3"), "{text}");
        assert!(
            text.contains("test_hits_total{path=\"__overflow__\"} 7\n"),
            "{text}"
        );
        assert!(
            text.contains("perfscope_metric_series{family=\"test_hits\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("perfscope_metric_overflow_total{family=\"test_hits\"} 7\n"),
            "{text}"
        );
        let mut seen = Vec::new();
        family.for_each(|labels, _| seen.push(labels.path.clone()));
        seen.sort();
        assert_eq!(seen, vec!["/p/0", "/p/1", "/p/2"]);
    }
}
