//! Batch metrics, fed by [`crate::batch`]:
//! `batch_duration_seconds{operation, outcome}` (one observation per batch)
//! and `batch_items_total{operation, outcome}`. `operation` is the
//! caller's name for the work, so both families are capped.

use std::borrow::Cow;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::{Registry, Unit};

use super::bounded::{BoundedFamily, OverflowLabels, SeriesAccounting};
use super::custom::Outcome;
use super::histogram::{AtomicHistogram, Buckets};

/// Labels of the batch families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BatchLabels {
    pub operation: Cow<'static, str>,
    pub outcome: Outcome,
}

impl OverflowLabels for BatchLabels {
    fn overflow() -> Self {
        Self {
            operation: Cow::Borrowed("__overflow__"),
            outcome: Outcome::Success,
        }
    }
}

/// The batch families.
#[derive(Debug)]
pub struct BatchMetrics {
    /// `batch_duration_seconds{operation, outcome}`.
    pub duration: BoundedFamily<BatchLabels, AtomicHistogram, Buckets>,
    /// `batch_items_total{operation, outcome}`.
    pub items: BoundedFamily<BatchLabels, Counter>,
}

impl BatchMetrics {
    /// Defines and registers the families.
    pub fn register(registry: &mut Registry, accounting: &SeriesAccounting) -> Self {
        Self {
            duration: BoundedFamily::register(
                registry,
                accounting,
                "batch_duration",
                "Duration of each batch of a batch operation, by outcome",
                Some(Unit::Seconds),
                Buckets::new(Buckets::CUSTOM_DEFAULT).unwrap_or_else(|_| Buckets::default_http()),
            ),
            items: BoundedFamily::register(
                registry,
                accounting,
                "batch_items",
                "Items handled by batch operations, by the outcome of their batch",
                None,
                Counter::default,
            ),
        }
    }
}
