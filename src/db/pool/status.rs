//! The reporting half of [`TimedPool`]: its accessors, the pool gauges,
//! the `SELECT 1` ping and the background task that refreshes the gauges
//! and the health every [`STATUS_INTERVAL`].
//!
//! Apart from the opening half (`open`) because none of it opens a
//! connection except through [`TimedPool::get`]; it reads what the pool
//! and its shared state record.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use deadpool_postgres::Pool;
use tokio_util::sync::CancellationToken;

use super::error::DbError;
use super::open::TimedPool;
use crate::failure_log::{FailureLog, Report};
use crate::metrics::db::PoolStateLabels;

/// How often the pool's gauges and health are refreshed.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);

impl TimedPool {
    /// Whether the last connection attempt succeeded (`None` before any).
    pub fn last_connect(&self) -> Option<bool> {
        match self.shared.last_connect.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }

    /// `role@host:port`: pools with the same key see the same cluster-wide
    /// views (see `crate::pg::readers::server`).
    pub fn views_key(&self) -> &str {
        &self.shared.views_key
    }

    /// The database it connects to, as `pg_stat_activity.datname` names
    /// it (the `database` label is the pool's name, not this).
    pub fn dbname(&self) -> &str {
        &self.shared.dbname
    }

    /// `host:port`: the connection budget's key of its server.
    pub fn server(&self) -> &str {
        &self.shared.server
    }

    /// The agent's connection budget, for a budgeted pool.
    pub fn budget(&self) -> Option<&std::sync::Arc<crate::db::budget::ConnectionBudget>> {
        self.shared.budget.as_ref()
    }

    /// Marks the pool as perfscope's own inside a host app (see
    /// `crate::Integration`): its statements are timed but never enter
    /// the app's slow log, slow-query alerts or a request's route.
    pub(crate) fn mark_beside_app(&self) {
        self.shared.beside_app.store(true, Ordering::Relaxed);
    }

    /// Whether the pool is the agent's (budgeted and transient).
    pub fn is_budgeted(&self) -> bool {
        self.shared.budget.is_some()
    }

    /// The underlying deadpool pool (escape hatch; its statements are not
    /// timed).
    pub fn raw(&self) -> &Pool {
        &self.pool
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Distinct statement texts whose analysis the pool holds (at most
    /// [`super::STATEMENT_CACHE_CAPACITY`]): the tests check that
    /// commented statements add none.
    #[doc(hidden)]
    pub fn analysed_statements(&self) -> usize {
        self.shared.statements.read().len()
    }

    /// Updates the pool gauges from deadpool's status.
    pub fn refresh_status(&self) {
        let status = self.pool.status();
        let metrics = &self.shared.insights.metrics;
        let labels = self.shared.pool_labels();
        let in_use = status.size.saturating_sub(status.available);
        for (state, value) in [("idle", status.available), ("in_use", in_use)] {
            metrics
                .pool_connections
                .get_or_create(&PoolStateLabels {
                    pool: self.shared.name.clone(),
                    state,
                })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        metrics
            .pool_max
            .get_or_create(&labels)
            .set(i64::try_from(status.max_size).unwrap_or(i64::MAX));
        metrics
            .pool_waiting
            .get_or_create(&labels)
            .set(i64::try_from(status.waiting).unwrap_or(i64::MAX));
    }

    /// Checks the database answers (`SELECT 1` on a pooled connection).
    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.get().await?;
        client.raw().simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Refreshes the gauges and the health every [`STATUS_INTERVAL`] until
    /// `cancel` fires; `on_health` gets each ping's result. A failing ping
    /// is logged with its cause when it starts failing, then at most every
    /// few minutes, then when it answers again (a [`FailureLog`]), not
    /// once a second.
    pub fn spawn_status(
        &self,
        cancel: CancellationToken,
        on_health: impl Fn(bool) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_status_probing(cancel, Duration::ZERO, on_health)
    }

    /// Like [`TimedPool::spawn_status`], but pings only when no connection
    /// was attempted for `probe_after` (otherwise the health is the last
    /// attempt's): a budgeted pool opens a connection per ping, so its
    /// readers' passes stand for the pings.
    pub fn spawn_status_probing(
        &self,
        cancel: CancellationToken,
        probe_after: Duration,
        on_health: impl Fn(bool) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let pool = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(STATUS_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seen = None;
            let mut since = Instant::now();
            let mut failures = FailureLog::default();
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let attempts = pool.attempts();
                if attempts != seen {
                    seen = attempts;
                    since = Instant::now();
                }
                if since.elapsed() >= probe_after || pool.last_connect().is_none() {
                    let result = tokio::select! {
                        () = cancel.cancelled() => return,
                        result = pool.ping() => result,
                    };
                    // A pass the budget held back says nothing of the
                    // database.
                    if !matches!(result, Err(DbError::Budget(_))) {
                        let name = &*pool.shared.name;
                        match (
                            failures.record(&result, tokio::time::Instant::now()),
                            &result,
                        ) {
                            (Report::Started, Err(error)) => {
                                tracing::warn!(pool = name, %error, "database unreachable");
                            }
                            (Report::Still { failures, for_ }, Err(error)) => tracing::warn!(
                                pool = name,
                                %error,
                                failures,
                                failing_for_s = for_.as_secs(),
                                "database still unreachable ({failures} failed checks since the last line)"
                            ),
                            (Report::Recovered { failures, lasted }, _) => tracing::info!(
                                pool = name,
                                failures,
                                failed_for_s = lasted.as_secs(),
                                "database reachable again"
                            ),
                            _ => {}
                        }
                        on_health(result.is_ok());
                    }
                    seen = pool.attempts();
                    since = Instant::now();
                } else if let Some(up) = pool.last_connect() {
                    on_health(up);
                }
                pool.refresh_status();
            }
        })
    }

    /// Changes whenever a connection is asked for.
    fn attempts(&self) -> Option<u64> {
        Some(self.shared.attempts.load(Ordering::Relaxed))
    }
}
