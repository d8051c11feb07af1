//! `batch_operation`: run a function over the chunks of a slice, at most
//! `concurrency` chunks at a time, timing every batch into
//! `batch_duration_seconds` and counting its items — and say which batches
//! failed and why. Nothing is dropped silently: the report has one outcome
//! per batch, with the range of items it covered, so the caller can retry
//! exactly the failed ones.
//!
//! The function borrows its chunk, so the caller keeps the items; with
//! concurrency the batches run inside the caller's task (no spawning, no
//! `'static` bounds). For the Postgres "createMany" case, see
//! [`crate::db::TimedClient::copy_in`].

use std::borrow::Cow;
use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::metrics::batch::{BatchLabels, BatchMetrics};
use crate::metrics::custom::Outcome;

/// How to cut and run the work.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchOptions {
    /// Items per batch (at least 1).
    pub batch_size: usize,
    /// Batches running at once (at least 1).
    pub concurrency: usize,
}

impl Default for BatchOptions {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            concurrency: 1,
        }
    }
}

/// One batch's outcome.
#[derive(Debug)]
pub struct BatchOutcome<T, E> {
    /// Its position, from 0.
    pub index: usize,
    /// The items it covered (indices into the input slice).
    pub items: Range<usize>,
    /// How long it took.
    pub duration: Duration,
    /// What the function returned.
    pub result: Result<T, E>,
}

/// What a batch operation did, one outcome per batch in input order.
#[derive(Debug)]
pub struct BatchReport<T, E> {
    /// Every batch, in order.
    pub batches: Vec<BatchOutcome<T, E>>,
}

impl<T, E> BatchReport<T, E> {
    /// Whether every batch succeeded.
    pub fn is_complete(&self) -> bool {
        self.batches.iter().all(|b| b.result.is_ok())
    }

    /// The batches that failed.
    pub fn failures(&self) -> impl Iterator<Item = &BatchOutcome<T, E>> {
        self.batches.iter().filter(|b| b.result.is_err())
    }

    /// Items in batches that succeeded.
    pub fn succeeded_items(&self) -> usize {
        self.batches
            .iter()
            .filter(|b| b.result.is_ok())
            .map(|b| b.items.len())
            .sum()
    }

    /// Items in batches that failed.
    pub fn failed_items(&self) -> usize {
        self.batches
            .iter()
            .filter(|b| b.result.is_err())
            .map(|b| b.items.len())
            .sum()
    }
}

/// Runs one batch and times it.
async fn run_batch<'a, I, T, E, F, Fut>(
    f: &F,
    index: usize,
    start: usize,
    chunk: &'a [I],
) -> BatchOutcome<T, E>
where
    F: Fn(usize, &'a [I]) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let started = Instant::now();
    let result = f(index, chunk).await;
    BatchOutcome {
        index,
        items: start..start + chunk.len(),
        duration: started.elapsed(),
        result,
    }
}

/// Runs batch operations into the batch metrics.
#[derive(Clone, Debug)]
pub struct Batches {
    metrics: Arc<BatchMetrics>,
}

impl Batches {
    pub(crate) fn new(metrics: BatchMetrics) -> Self {
        Self {
            metrics: Arc::new(metrics),
        }
    }

    /// Runs `f(batch_index, chunk)` over `items` cut into
    /// `options.batch_size` chunks, `options.concurrency` at a time;
    /// `operation` names the work in the metrics.
    pub async fn batch_operation<'a, I, T, E, F, Fut>(
        &self,
        operation: impl Into<Cow<'static, str>>,
        items: &'a [I],
        options: BatchOptions,
        f: F,
    ) -> BatchReport<T, E>
    where
        F: Fn(usize, &'a [I]) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let operation = operation.into();
        let size = options.batch_size.max(1);
        let concurrency = options.concurrency.max(1);
        let series = |outcome| BatchLabels {
            operation: operation.clone(),
            outcome,
        };
        let (ok, failed) = (series(Outcome::Success), series(Outcome::Error));
        // A plain loop over FuturesUnordered rather than stream
        // combinators with closures: their higher-ranked lifetimes make a
        // caller's future fail the `Send` check poem's handlers need.
        let mut chunks = items.chunks(size).enumerate();
        let mut running = FuturesUnordered::new();
        let mut batches = Vec::with_capacity(items.len().div_ceil(size));
        loop {
            while running.len() < concurrency {
                let Some((index, chunk)) = chunks.next() else {
                    break;
                };
                running.push(run_batch(&f, index, index * size, chunk));
            }
            let Some(outcome) = running.next().await else {
                break;
            };
            let labels = if outcome.result.is_ok() { &ok } else { &failed };
            self.metrics
                .duration
                .get(labels)
                .observe(outcome.duration.as_secs_f64());
            self.metrics
                .items
                .get(labels)
                .inc_by(outcome.items.len() as u64);
            batches.push(outcome);
        }
        batches.sort_by_key(|b| b.index);
        BatchReport { batches }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::Perfscope;

    #[tokio::test]
    async fn every_batch_is_reported_and_failures_say_why() {
        let perfscope = Perfscope::new(crate::Config::default());
        let items: Vec<u32> = (0..95).collect();
        let report = perfscope
            .batches()
            .batch_operation(
                "import",
                &items,
                BatchOptions {
                    batch_size: 10,
                    concurrency: 3,
                },
                |index, chunk: &[u32]| async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(10 - chunk[0] / 10))).await;
                    if index == 4 || chunk.contains(&93) {
                        Err(format!("batch {index} refused"))
                    } else {
                        Ok(chunk.iter().sum::<u32>())
                    }
                },
            )
            .await;
        assert_eq!(report.batches.len(), 10);
        assert!(report.batches.iter().enumerate().all(|(i, b)| b.index == i));
        assert_eq!(report.batches[9].items, 90..95);
        let failed: Vec<(usize, Range<usize>, String)> = report
            .failures()
            .map(|b| {
                (
                    b.index,
                    b.items.clone(),
                    b.result.as_ref().err().cloned().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            failed,
            vec![
                (4, 40..50, "batch 4 refused".to_owned()),
                (9, 90..95, "batch 9 refused".to_owned())
            ]
        );
        assert_eq!(report.succeeded_items(), 80);
        assert_eq!(report.failed_items(), 15);
        assert!(!report.is_complete());
        assert_eq!(report.batches[0].result, Ok(45));
        let text = perfscope.encode_metrics().expect("encodes");
        assert!(
            text.contains("batch_items_total{operation=\"import\",outcome=\"success\"} 80"),
            "{text}"
        );
        assert!(
            text.contains("batch_items_total{operation=\"import\",outcome=\"error\"} 15"),
            "{text}"
        );
        assert!(
            text.contains("batch_duration_seconds_count{operation=\"import\",outcome=\"error\"} 2"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn concurrency_is_bounded() {
        let perfscope = Perfscope::new(crate::Config::default());
        let items: Vec<u32> = (0..40).collect();
        let running = AtomicUsize::new(0);
        let peak = AtomicUsize::new(0);
        let report = perfscope
            .batches()
            .batch_operation(
                "bounded",
                &items,
                BatchOptions {
                    batch_size: 2,
                    concurrency: 4,
                },
                |_, _chunk: &[u32]| {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    let running = &running;
                    async move {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, String>(())
                    }
                },
            )
            .await;
        assert!(report.is_complete());
        assert_eq!(report.batches.len(), 20);
        assert_eq!(peak.load(Ordering::SeqCst), 4);
    }
}
