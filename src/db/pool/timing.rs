//! The timing core: [`TimedSql`] (a SQL text or a prepared
//! [`TimedStatement`]) and `timed`, the one function every statement of
//! every client goes through — it opens the statement's span, measures it
//! and records it into the insights (duration series, error kind, slow
//! log, request context).
//!
//! One function rather than a hook per method so that `query`,
//! `execute`, `COPY`, `COMMIT`, … cannot record differently; the clients
//! and COPY call it, and it knows nothing of them.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use tokio_postgres::{Statement, ToStatement};

use super::shared::{CachedStatement, Shared};
use crate::db::query_span;
use crate::metrics::db::ErrorKind;
use crate::telemetry::EXPORTERS;
use crate::trace::{SpanEnd, SpanExporter};

/// A SQL text or a prepared [`TimedStatement`].
pub trait TimedSql: Sync {
    /// What the driver executes.
    type Statement: ToStatement + Sync + Send + ?Sized;
    /// The driver's statement.
    fn statement(&self) -> &Self::Statement;
    /// What perfscope records about it.
    #[doc(hidden)]
    fn cached(&self, pool: &SharedRef<'_>) -> Arc<CachedStatement>;
    /// The driver's prepared statement, when it is one (a text is
    /// prepared by the driver on each call).
    #[doc(hidden)]
    fn prepared(&self) -> Option<&Statement> {
        None
    }
}

/// Opaque access to the pool's statement cache, for [`TimedSql`].
#[doc(hidden)]
pub struct SharedRef<'a>(pub(super) &'a Shared);

impl TimedSql for str {
    type Statement = str;

    fn statement(&self) -> &str {
        self
    }

    fn cached(&self, pool: &SharedRef<'_>) -> Arc<CachedStatement> {
        pool.0.statement(self)
    }
}

/// A prepared statement that remembers its text's analysis.
#[derive(Clone, Debug)]
pub struct TimedStatement {
    pub(super) statement: Statement,
    pub(super) cached: Arc<CachedStatement>,
}

impl TimedStatement {
    /// The driver's statement.
    pub fn raw(&self) -> &Statement {
        &self.statement
    }
}

impl TimedSql for TimedStatement {
    type Statement = Statement;

    fn statement(&self) -> &Statement {
        &self.statement
    }

    fn cached(&self, _pool: &SharedRef<'_>) -> Arc<CachedStatement> {
        self.cached.clone()
    }

    fn prepared(&self) -> Option<&Statement> {
        Some(&self.statement)
    }
}

fn error_kind(error: &tokio_postgres::Error) -> ErrorKind {
    ErrorKind::from_sqlstate(error.code().map(|c| c.code()))
}

/// Times `future` and records it under `cached`.
pub(in crate::db) async fn timed<T>(
    shared: &Shared,
    cached: &CachedStatement,
    operation: Option<&Cow<'static, str>>,
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    let start = query_span::start(&cached.info);
    let span = EXPORTERS.start(&start);
    let started = Instant::now();
    let result = future.await;
    let elapsed = started.elapsed();
    let end = SpanEnd {
        elapsed,
        ok: result.is_ok(),
    };
    let error = result.as_ref().err();
    EXPORTERS.finish(span, &start, &end, &|| {
        query_span::details(&cached.info, error)
    });
    let kind = error.map(error_kind);
    let own = shared.beside_app.load(std::sync::atomic::Ordering::Relaxed);
    shared.insights.record(
        &cached.info,
        operation,
        Some(&cached.series),
        elapsed,
        kind,
        own,
    );
    result
}
