//! Runs a database's readers on an interval. Each read gets a pooled
//! connection and a read-only transaction with `SET LOCAL
//! statement_timeout`, plus a client-side deadline as a backstop; its
//! duration and success go to `perfscope_reader_duration_seconds` and
//! `perfscope_reader_success{database, reader}` (as postgres_exporter's
//! scrape-collector metrics do), failures to
//! `perfscope_reader_errors_total` and the log. The loop stops with the
//! cancellation token.
//!
//! A pass takes one connection for all its readers (each in its own
//! transaction), so databases take turns for the agent's connection
//! budget; a pass the budget holds back is skipped, not failed. A read
//! past its client-side deadline is stopped on the server, because a
//! statement can ignore `statement_timeout` and a cancel (a function that
//! catches `query_canceled`): the query is cancelled, then, if the
//! connection has not answered after [`CANCEL_GRACE`], its backend is
//! terminated from another connection of the same role (a role may signal
//! its own backends), and the connection is discarded, never returned to
//! the pool where the next reader would wait behind it.
//!
//! Failures are logged through a [`FailureLogs`]: a reader that keeps
//! failing is logged when it starts, then at most every few minutes with
//! the count in between, then when it recovers, never once per pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::{ReadError, Reader};
use crate::db::{DbError, TimedClient, TimedPool};
use crate::failure_log::{FailureLogs, Report};
use crate::metrics::pg::{PgMetrics, ReaderLabels};

/// How often readers run by default.
pub const DEFAULT_READ_INTERVAL: Duration =
    Duration::from_millis(crate::config::DEFAULT_READ_INTERVAL_MS);
/// `statement_timeout` of each read by default.
pub const DEFAULT_READ_TIMEOUT: Duration =
    Duration::from_millis(crate::config::DEFAULT_READ_TIMEOUT_MS);
/// How long a cancelled read's connection has to answer before its backend
/// is terminated.
pub const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// How long a pass waits for its turn at the connection budget. The
/// permits are handed out first come, first served, so a pass that waits
/// keeps its place: giving up after one interval would send it to the back
/// of the queue, and on a crowded agent some databases would never be read.
const TURN_WAIT: Duration = Duration::from_secs(3_600);

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
    let mut session = match Session::open(pool, timeout).await {
        Ok(session) => session,
        Err(None) => return,
        Err(Some(error)) => Session::Failed(error),
    };
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
        let result = session
            .read(pool, database, reader.as_ref(), timeout, deadline)
            .await;
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

/// A pass's connection.
enum Session {
    /// Connected; the backend's pid is known.
    Open(Box<TimedClient>, i32),
    /// Its last read timed out; the next read connects again.
    Closed,
    /// No connection could be had: every read of the pass fails with this.
    Failed(String),
}

impl Session {
    /// Connects for a pass: `Err(None)` when the budget held the
    /// connection back (the pass is skipped), `Err(Some(why))` when the
    /// database could not be reached.
    async fn open(pool: &TimedPool, timeout: Duration) -> Result<Self, Option<String>> {
        match pool.get_within(TURN_WAIT).await {
            Ok(mut client) => match tokio::time::timeout(timeout, client.backend_pid()).await {
                Ok(Ok(pid)) => Ok(Self::Open(Box::new(client), pid)),
                Ok(Err(error)) => {
                    client.discard();
                    Err(Some(super::describe(&error)))
                }
                Err(_) => {
                    // Busy with something else: never hand it out again.
                    client.discard();
                    Err(Some("the connection did not answer".into()))
                }
            },
            Err(DbError::Budget(error)) => {
                tracing::debug!(pool = pool.name(), %error, "pass held back by the connection budget");
                Err(None)
            }
            Err(error) => Err(Some(describe_db(&error))),
        }
    }

    /// One reader's read within `deadline`, stopped on the server past it.
    async fn read(
        &mut self,
        pool: &TimedPool,
        database: &str,
        reader: &dyn Reader,
        timeout: Duration,
        deadline: Duration,
    ) -> Result<(), ReadError> {
        if let Self::Failed(error) = self {
            return Err(ReadError::Unavailable(error.clone()));
        }
        if matches!(self, Self::Closed) {
            *self = match Self::open(pool, timeout).await {
                Ok(session) => session,
                Err(None) => {
                    return Err(ReadError::Unavailable(
                        "held back by the connection budget".into(),
                    ));
                }
                Err(Some(error)) => return Err(ReadError::Unavailable(error)),
            };
        }
        let Self::Open(client, _) = self else {
            return Err(ReadError::Unavailable("no connection".into()));
        };
        match tokio::time::timeout(deadline, read(client, reader, timeout)).await {
            Ok(result) => result,
            Err(_) => {
                // In the background, so the reader's answer comes at its
                // deadline and the pass goes on (on a new connection).
                if let Self::Open(client, pid) = std::mem::replace(self, Self::Closed) {
                    let (pool, database) = (pool.clone(), database.to_owned());
                    tokio::spawn(async move {
                        stop_on_server(&pool, &database, *client, pid).await;
                    });
                }
                Err(ReadError::Timeout)
            }
        }
    }
}

/// The pool's error with the server's message and SQLSTATE when it has
/// them.
fn describe_db(error: &DbError) -> String {
    match error {
        DbError::Pool(deadpool_postgres::PoolError::Backend(error)) | DbError::Query(error) => {
            super::describe(error)
        }
        other => other.to_string(),
    }
}

async fn read(
    client: &mut TimedClient,
    reader: &dyn Reader,
    timeout: Duration,
) -> Result<(), ReadError> {
    let tx = super::read_only(client, timeout).await?;
    reader.read(&tx).await?;
    tx.commit().await?;
    Ok(())
}

/// Stops a read that outlived its deadline: cancels it, and when its
/// connection still does not answer after [`CANCEL_GRACE`], terminates its
/// backend from another connection; the connection is discarded either
/// way.
async fn stop_on_server(pool: &TimedPool, database: &str, client: TimedClient, pid: i32) {
    let cancelled = tokio::time::timeout(CANCEL_GRACE, client.cancel_query()).await;
    let answered = matches!(cancelled, Ok(Ok(())))
        && matches!(
            tokio::time::timeout(CANCEL_GRACE, client.raw().simple_query("SELECT 1")).await,
            Ok(Ok(_))
        );
    client.discard();
    if answered {
        return;
    }
    let terminated = async {
        let other = pool.get().await.map_err(|e| describe_db(&e))?;
        other
            .raw()
            // Only a backend of the agent's own role: a pid reused by an
            // application's session in the meantime is never signalled.
            .query_opt(
                "SELECT /* perfscope */ pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND usename = current_user",
                &[&pid],
            )
            .await
            .and_then(|row| row.map_or(Ok(false), |row| row.try_get::<_, bool>(0)))
            .map_err(|e| super::describe(&e))
    }
    .await;
    match terminated {
        Ok(true) => tracing::warn!(
            database,
            pid,
            "a read outlived its deadline and its cancel: its backend was terminated"
        ),
        Ok(false) => {}
        Err(error) => tracing::warn!(
            database,
            pid,
            %error,
            "a read outlived its deadline and its cancel, and its backend could not be terminated (its connection is closed)"
        ),
    }
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
