//! Runs a database's readers on an interval. Each read gets a pooled
//! connection and a read-only transaction with `SET LOCAL
//! statement_timeout`, plus a client-side deadline as a backstop; its
//! duration and success go to `perfscope_reader_duration_seconds` and
//! `perfscope_reader_success{database, reader}` (as postgres_exporter's
//! scrape-collector metrics do), failures to
//! `perfscope_reader_errors_total` and the log, through a
//! [`FailureLogs`]: a reader that keeps failing is logged when it starts,
//! then at most every few minutes with the count in between, then when it
//! recovers, never once per pass. The loop stops with the cancellation
//! token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{ReadError, Reader};
use crate::db::TimedPool;
use crate::failure_log::{FailureLogs, Report};
use crate::metrics::pg::{PgMetrics, ReaderLabels};

/// How often readers run by default.
pub const DEFAULT_READ_INTERVAL: Duration = Duration::from_secs(15);
/// `statement_timeout` of each read by default.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the readers due on pass number `pass` (counting from 0: every
/// reader runs on the first pass); `failures` decides which outcomes are
/// logged.
pub async fn run_once(
    pool: &TimedPool,
    database: &Arc<str>,
    readers: &[Arc<dyn Reader>],
    metrics: &PgMetrics,
    timeout: Duration,
    pass: u64,
    failures: &mut FailureLogs<&'static str>,
) {
    for reader in readers {
        if !pass.is_multiple_of(reader.every().max(1)) {
            continue;
        }
        let labels = ReaderLabels {
            database: database.clone(),
            reader: reader.name(),
        };
        let started = Instant::now();
        let deadline = timeout + Duration::from_secs(1);
        let result =
            match tokio::time::timeout(deadline, read(pool, reader.as_ref(), timeout)).await {
                Ok(result) => result,
                Err(_) => Err(ReadError::Timeout),
            };
        metrics
            .reader_duration
            .get_or_create(&labels)
            .set(started.elapsed().as_secs_f64());
        let ok = result.is_ok();
        metrics
            .reader_success
            .get_or_create(&labels)
            .set(i64::from(ok));
        if result.is_err() {
            metrics.reader_errors.get_or_create(&labels).inc();
        }
        let report = failures.record(reader.name(), &result, tokio::time::Instant::now());
        log_outcome(database, reader.name(), &result, report);
    }
}

/// One line when a reader starts failing, one every few minutes while it
/// keeps failing, one when it recovers.
fn log_outcome(database: &str, reader: &str, result: &Result<(), ReadError>, report: Report) {
    match (report, result) {
        (Report::Started, Err(error)) => {
            tracing::warn!(database, reader, %error, "reader failed");
        }
        (Report::Still { failures, for_ }, Err(error)) => {
            tracing::warn!(
                database,
                reader,
                %error,
                failures,
                failing_for_s = for_.as_secs(),
                "reader still failing ({failures} failures since the last line)"
            );
        }
        (Report::Recovered { failures, lasted }, _) => {
            tracing::info!(
                database,
                reader,
                failures,
                failed_for_s = lasted.as_secs(),
                "reader recovered"
            );
        }
        _ => {}
    }
}

async fn read(pool: &TimedPool, reader: &dyn Reader, timeout: Duration) -> Result<(), ReadError> {
    let mut client = pool.get().await?;
    let tx = super::read_only(&mut client, timeout).await?;
    reader.read(&tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Runs the readers every `interval` until `cancel` fires.
pub fn spawn(
    pool: TimedPool,
    database: Arc<str>,
    readers: Vec<Arc<dyn Reader>>,
    metrics: Arc<PgMetrics>,
    interval: Duration,
    timeout: Duration,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut pass: u64 = 0;
        let mut failures = FailureLogs::default();
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = ticker.tick() => {}
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = run_once(&pool, &database, &readers, &metrics, timeout, pass, &mut failures) => {}
            }
            pass = pass.wrapping_add(1);
        }
    })
}
