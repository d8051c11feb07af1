//! Reading Postgres itself: one reader per statistics view, each in its own
//! file behind [`Reader`], run by [`runner`], which owns the per-read
//! `statement_timeout`, the timing and the success metric, so a failing
//! reader logs and counts but never takes the agent down.
//!
//! Laid out by role: [`readers`] (scheduled reads of the statistics
//! views), [`actions`] (what an operator asks for now), [`advisor`] and
//! [`planner`] (index advice and planning as the planner role), [`plans`]
//! (plan changes, from the advisor's plans), [`own`]
//! (the statements the agent sends), [`runner`] (the read loop),
//! [`mod@watch`] (what watching one database starts) and [`election`]
//! (which replica of a host app runs a database's readers).

pub mod actions;
pub mod advisor;
pub mod ash;
pub mod election;
pub mod own;
pub mod planner;
pub mod plans;
pub mod readers;
pub mod runner;
pub mod watch;

pub use watch::{Watched, WatchedDatabase, watch};

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use crate::db::TimedTransaction;

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// A statement failed (including `statement_timeout`).
    #[error("{}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
    /// The server cannot be read (e.g. a version past end of life).
    #[error("{0}")]
    Unsupported(String),
    /// The read took longer than its deadline.
    #[error("the read timed out")]
    Timeout,
    /// No connection could be had.
    #[error(transparent)]
    Pool(#[from] crate::db::DbError),
    /// The pass's connection could not be had (the first reader's attempt
    /// stands for the pass).
    #[error("no connection: {0}")]
    Unavailable(String),
}

/// The server's message and SQLSTATE, not just "db error".
pub(crate) fn describe(error: &tokio_postgres::Error) -> String {
    crate::db::error_text::postgres(error)
}

/// The server's `server_version_num` (e.g. 150004), which picks the SQL
/// of a version band.
pub(crate) async fn server_version(tx: &TimedTransaction<'_>) -> Result<i32, ReadError> {
    Ok(tx
        .query_one(
            "SELECT /* perfscope */ current_setting('server_version_num')::int",
            &[],
        )
        .await?
        .try_get(0)?)
}

/// Begins the transaction every read runs in: READ ONLY, with
/// `statement_timeout` = `timeout` (the readers, and the endpoints that read
/// afresh).
pub(crate) async fn read_only(
    client: &mut crate::db::TimedClient,
    timeout: std::time::Duration,
) -> Result<TimedTransaction<'_>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.batch_execute(&format!(
        "/* perfscope */ SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}",
        timeout.as_millis().max(1)
    ))
    .await?;
    Ok(tx)
}

/// A reader's last successful pass, shared with the API, the metrics and
/// the findings (`None` until one succeeded).
#[derive(Debug)]
pub struct Latest<T>(RwLock<Option<Arc<T>>>);

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self(RwLock::new(None))
    }
}

impl<T> Latest<T> {
    /// The last pass.
    pub fn get(&self) -> Option<Arc<T>> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Keeps `value` as the last pass.
    pub fn set(&self, value: T) {
        self.set_shared(Arc::new(value));
    }

    /// Keeps `value`, shared with other readers, as the last pass.
    pub fn set_shared(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }
}

/// One statistics view's reader.
pub trait Reader: Send + Sync + 'static {
    /// Its name, the `reader` label.
    fn name(&self) -> &'static str;
    /// Runs on every n-th pass of the runner (1: every pass). Expensive
    /// readers (the advisor plans statements) run less often.
    fn every(&self) -> u64 {
        1
    }
    /// One pass, inside a read-only transaction whose `statement_timeout`
    /// the runner has set.
    fn read<'a>(
        &'a self,
        tx: &'a TimedTransaction<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ReadError>> + Send + 'a>>;
}

/// Implements [`Reader`] for a reader whose inherent `async fn pass(&self,
/// tx)` does one pass: its name (the `reader` label) and, for the
/// expensive ones, on which n-th pass of the runner it runs.
macro_rules! impl_reader {
    ($reader:ty, $name:literal $(, every = $every:expr)?) => {
        impl $crate::pg::Reader for $reader {
            fn name(&self) -> &'static str {
                $name
            }
            $(
                fn every(&self) -> u64 {
                    $every
                }
            )?
            fn read<'a>(
                &'a self,
                tx: &'a $crate::db::TimedTransaction<'a>,
            ) -> std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<(), $crate::pg::ReadError>> + Send + 'a>,
            > {
                Box::pin(self.pass(tx))
            }
        }
    };
}
pub(crate) use impl_reader;
