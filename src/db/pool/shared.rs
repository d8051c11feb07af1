//! [`Shared`]: what a [`TimedPool`](super::TimedPool) and every client it
//! hands out hold in common — the pool's name and labels, the statement
//! cache, the connector that cancels statements and the budget.
//!
//! Kept apart from the pool itself so that the clients, the timing core
//! and COPY (which need the statement cache and the insights, never the
//! deadpool pool) depend on this small piece only, and the pool on them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64};

use deadpool_postgres::PoolError;
use parking_lot::RwLock;
use rustc_hash::FxBuildHasher;

use crate::db::budget::ConnectionBudget;
use crate::db::connect::Connector;
use crate::db::insights::DbInsights;
use crate::db::statement::{self, StatementInfo};
use crate::metrics::AtomicHistogram;
use crate::metrics::db::{PoolLabels, PoolTimeoutLabels};

/// Distinct statement texts whose analysis is cached; past it the cache
/// starts over (applications have a bounded set of statements; a
/// pathological one that builds texts with values inside stays bounded).
pub const STATEMENT_CACHE_CAPACITY: usize = 4_096;

/// A statement's analysis and its duration series, cached per text.
#[doc(hidden)]
pub struct CachedStatement {
    pub(super) info: Arc<StatementInfo>,
    pub(super) series: AtomicHistogram,
    /// The text as the app sent it (the key of its parameter samples).
    pub(super) text: Box<str>,
    /// Calls so far, for [`crate::db::samples::due`].
    pub(super) calls: AtomicU64,
}

/// Without the text: it is the app's as sent, literals and all (what is
/// shown of a statement is its normalized text).
impl std::fmt::Debug for CachedStatement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStatement")
            .field("info", &self.info)
            .field("calls", &self.calls)
            .finish_non_exhaustive()
    }
}

/// What the pool and its clients share.
#[derive(Debug)]
pub(in crate::db) struct Shared {
    pub(super) name: Arc<str>,
    pub(super) insights: Arc<DbInsights>,
    /// By text; FxHash, as the texts are the application's own.
    pub(super) statements: RwLock<HashMap<Box<str>, Arc<CachedStatement>, FxBuildHasher>>,
    pub(super) wait_series: AtomicHistogram,
    /// Cancels a connection's running statement.
    pub(super) connector: Connector,
    /// `host:port`, the budget's key.
    pub(super) server: String,
    /// `role@host:port`: the databases whose cluster-wide views read alike.
    pub(super) views_key: String,
    /// The database it connects to (its `datname`).
    pub(super) dbname: Arc<str>,
    /// The agent's budget; `None` for a host app's pool.
    pub(super) budget: Option<Arc<ConnectionBudget>>,
    /// [`super::PoolSettings::statement_cache`].
    pub(super) statement_cache: bool,
    /// [`super::PoolSettings::sql_comments`] (`Off` on a budgeted pool).
    pub(super) sql_comments: crate::config::SqlComments,
    /// The connections' `application_name`, the comments' `application`.
    pub(super) application: Option<Box<str>>,
    /// The last connection attempt: 0 none yet, 1 opened, 2 failed.
    pub(super) last_connect: AtomicU8,
    /// Connection requests so far (the health probe skips a ping when
    /// some were made since the last).
    pub(super) attempts: AtomicU64,
    /// perfscope's own statements inside a host app (the readers an
    /// `Integration` runs): timed, but never the app's slow log or a
    /// request's work. The agent's own pools stay in its slow log (the
    /// agent is the app there).
    pub(super) beside_app: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub(in crate::db) fn statement(&self, sql: &str) -> Arc<CachedStatement> {
        if let Some(info) = self.statements.read().get(sql) {
            return info.clone();
        }
        let info = Arc::new(statement::parse(sql));
        let info = Arc::new(CachedStatement {
            series: self.insights.duration_series(&info),
            info,
            text: sql.into(),
            calls: AtomicU64::new(0),
        });
        let mut cache = self.statements.write();
        if cache.len() >= STATEMENT_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(sql.into(), info.clone());
        info
    }

    pub(super) fn wait_timeouts(&self) -> u64 {
        self.insights
            .metrics
            .pool_timeouts
            .get_or_create(&PoolTimeoutLabels {
                pool: self.name.clone(),
                kind: "wait",
            })
            .get()
    }

    pub(super) fn pool_labels(&self) -> PoolLabels {
        PoolLabels {
            pool: self.name.clone(),
        }
    }

    pub(super) fn count_timeout(&self, error: &PoolError) {
        let kind = match error {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => "wait",
            PoolError::Timeout(deadpool_postgres::TimeoutType::Create) => "create",
            PoolError::Timeout(deadpool_postgres::TimeoutType::Recycle) => "recycle",
            _ => return,
        };
        self.insights
            .metrics
            .pool_timeouts
            .get_or_create(&PoolTimeoutLabels {
                pool: self.name.clone(),
                kind,
            })
            .inc();
    }
}
