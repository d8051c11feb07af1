//! Custom measurements: `custom_operation_duration_seconds{operation,
//! outcome}`, fed by [`crate::measure`]. Operation names are the caller's,
//! so the family is bounded by the series cap.

use std::borrow::Cow;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::registry::{Registry, Unit};

use super::bounded::{BoundedFamily, OverflowLabels, SeriesAccounting};
use super::histogram::{AtomicHistogram, Buckets, HistogramSnapshot};
use super::sketch::Sketch;
use super::sketches::SketchMap;

/// How a measured operation ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Outcome {
    /// It completed successfully.
    Success,
    /// It returned an error (or was marked failed).
    Error,
    /// Its future was dropped before it completed.
    Cancelled,
    /// It panicked.
    Panic,
}

impl Outcome {
    /// Every outcome, for read-back.
    pub const ALL: [Outcome; 4] = [Self::Success, Self::Error, Self::Cancelled, Self::Panic];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Error => "error",
            Self::Cancelled => "cancelled",
            Self::Panic => "panic",
        }
    }
}

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `custom_operation_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: Cow<'static, str>,
    pub outcome: Outcome,
}

impl OverflowLabels for OperationLabels {
    fn overflow() -> Self {
        Self {
            operation: Cow::Borrowed("__overflow__"),
            outcome: Outcome::Success,
        }
    }
}

/// The custom-measurement family.
#[derive(Debug)]
pub struct CustomMetrics {
    /// `custom_operation_duration_seconds{operation, outcome}`.
    pub operation_duration: BoundedFamily<OperationLabels, AtomicHistogram, Buckets>,
    /// The same durations as quantile sketches (not exported: the rating's
    /// percentiles), at most [`MAX_OPERATION_SKETCHES`] series.
    pub operation_sketches: SketchMap<OperationLabels>,
}

/// Operation series with a duration sketch; later ones share the overflow
/// sketch.
pub const MAX_OPERATION_SKETCHES: usize = 256;

impl CustomMetrics {
    /// Defines and registers the family.
    pub fn register(registry: &mut Registry, accounting: &SeriesAccounting) -> Self {
        Self {
            operation_duration: BoundedFamily::register(
                registry,
                accounting,
                "custom_operation_duration",
                "Duration of operations measured with perfscope's measurement API, by outcome",
                Some(Unit::Seconds),
                Buckets::new(Buckets::CUSTOM_DEFAULT).unwrap_or_else(|_| Buckets::default_http()),
            ),
            operation_sketches: SketchMap::new(
                MAX_OPERATION_SKETCHES.min(accounting.cap()),
                Some(OperationLabels::overflow()),
            ),
        }
    }

    /// The merged duration sketch of an operation over all outcomes.
    pub fn sketch(&self, operation: &str) -> Sketch {
        self.operation_sketches
            .merged(|labels| labels.operation == operation)
    }

    /// The merged history of an operation over all outcomes.
    pub fn history(&self, operation: &str) -> HistogramSnapshot {
        let mut merged = HistogramSnapshot::default();
        self.operation_duration.for_each(|labels, histogram| {
            if labels.operation == operation {
                merged.merge(&histogram.snapshot());
            }
        });
        merged
    }
}
