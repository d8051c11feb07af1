//! Custom measurements, the seed's `startMeasure` and
//! `trackAsyncOperation`: time any piece of work into
//! `custom_operation_duration_seconds{operation, outcome}`.
//!
//! ```
//! # tokio_test_block_on(async {
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! let measurements = perfscope.measurements();
//!
//! // A guard records when it is dropped.
//! {
//!     let _guard = measurements.start("rebuild_index");
//!     // ... work ...
//! }
//!
//! // An async wrapper records success or error from the `Result`.
//! let value: Result<u32, std::io::Error> =
//!     measurements.track("load_user", async { Ok(7) }).await;
//! assert_eq!(value.unwrap(), 7);
//! assert_eq!(measurements.history("load_user").count, 1);
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
//! # }
//! ```

use std::borrow::Cow;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crate::metrics::HistogramSnapshot;
use crate::metrics::custom::{CustomMetrics, OperationLabels, Outcome};
use crate::telemetry::{EXPORTERS, OpenSpan};
use crate::trace::{Attribute, SpanDetails, SpanEnd, SpanExporter, SpanKind, SpanStart};

/// The span of a measurement: its operation, nesting what runs inside.
fn span_start(operation: &str) -> SpanStart<'_> {
    SpanStart {
        kind: SpanKind::Measurement,
        description: operation,
        db_system: None,
    }
}

/// Entry point of the measurement API; cheap to clone.
#[derive(Clone, Debug)]
pub struct Measurements {
    metrics: Arc<CustomMetrics>,
}

impl Measurements {
    pub(crate) fn new(metrics: Arc<CustomMetrics>) -> Self {
        Self { metrics }
    }

    /// Starts timing `operation`; the returned guard records when dropped,
    /// as a success unless [`MeasureGuard::fail`] was called (or as a panic
    /// when dropped while unwinding).
    pub fn start(&self, operation: impl Into<Cow<'static, str>>) -> MeasureGuard {
        let operation = operation.into();
        MeasureGuard {
            metrics: self.metrics.clone(),
            span: EXPORTERS.start(&span_start(&operation)),
            operation: Some(operation),
            outcome: Outcome::Success,
            started: Instant::now(),
        }
    }

    /// Runs `future`, recording its duration as a success or an error from
    /// its `Result`, or as cancelled if it is dropped before completing.
    pub async fn track<T, E, F>(
        &self,
        operation: impl Into<Cow<'static, str>>,
        future: F,
    ) -> Result<T, E>
    where
        F: Future<Output = Result<T, E>>,
    {
        let mut guard = self.start(operation);
        guard.outcome = Outcome::Cancelled;
        let result = future.await;
        guard.outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Error
        };
        result
    }

    /// The recorded history of `operation` over all outcomes.
    pub fn history(&self, operation: &str) -> HistogramSnapshot {
        self.metrics.history(operation)
    }

    /// The durations of `operation` over all outcomes as a quantile sketch
    /// (percentiles within 1 %, where the histogram only knows buckets).
    pub fn sketch(&self, operation: &str) -> crate::metrics::Sketch {
        self.metrics.sketch(operation)
    }
}

/// Records the time since its creation when dropped.
#[derive(Debug)]
#[must_use = "the measurement is recorded when the guard is dropped"]
pub struct MeasureGuard {
    metrics: Arc<CustomMetrics>,
    /// The exporters' open span, inside a traced request.
    span: OpenSpan,
    operation: Option<Cow<'static, str>>,
    outcome: Outcome,
    started: Instant,
}

impl MeasureGuard {
    /// Marks the operation as failed.
    pub fn fail(&mut self) {
        self.outcome = Outcome::Error;
    }

    /// Records now (the same as dropping the guard).
    pub fn finish(self) {}
}

impl Drop for MeasureGuard {
    fn drop(&mut self) {
        let Some(operation) = self.operation.take() else {
            return;
        };
        let outcome = if std::thread::panicking() {
            Outcome::Panic
        } else {
            self.outcome
        };
        let elapsed = self.started.elapsed();
        let end = SpanEnd {
            elapsed,
            ok: outcome == Outcome::Success,
        };
        EXPORTERS.finish(self.span.take(), &span_start(&operation), &end, &|| {
            SpanDetails {
                name: operation.to_string(),
                attributes: vec![Attribute::new("perfscope.outcome", outcome.as_str())],
            }
        });
        let labels = OperationLabels { operation, outcome };
        self.metrics
            .operation_duration
            .get(&labels)
            .observe(elapsed.as_secs_f64());
        self.metrics
            .operation_sketches
            .observe(&labels, elapsed.as_secs_f64());
    }
}
