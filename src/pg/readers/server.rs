//! Cluster-wide views read once per server, not once per watched database.
//!
//! pg_stat_statements keeps every database's statements in one shared hash,
//! and `pg_stat_statements()` scans all of it whatever the `WHERE` clause
//! (under its shared lock, beside the application's own statements being
//! counted). Watching 100 databases of one server used to scan it 100
//! times a round. Now the readers of the databases of one server (and one
//! login role, which decides what the views show) share a
//! [`ServerViews`]: the first of them to read in an interval reads every
//! database's rows, on its own connection, and the others take their
//! database's rows from that read while it is fresh (half the read
//! interval). `pg_stat_statements_info` (evictions, last reset) is
//! server-wide too and rides along, and replication (standbys, slots),
//! the same for every database of the server, is shared the same way.
//! `pg_stat_activity` and `pg_stat_database` stay per database: they are
//! small in-memory arrays the server filters itself.
//!
//! [`ServerViewsRegistry`] keeps one [`ServerViews`] per server for
//! [`crate::pg::watch()`], which hands it to each new database's readers.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::replication::ReplicationSnapshot;
use super::statements::{Figures, statements_sql};
use crate::db::TimedTransaction;
use crate::pg::ReadError;

const STATEMENTS_INFO: &str = include_str!("../../../sql/queries/statements_info.sql");

/// One pg_stat_statements entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatementRow {
    /// Its database's oid.
    pub dbid: i64,
    /// pg_stat_statements' queryid.
    pub queryid: i64,
    /// Run by the agent's login role.
    pub agent_role: bool,
    /// Run by a role all of whose statements are the agent's.
    pub own_role: bool,
    /// Cumulative figures.
    pub figures: Figures,
    /// Slowest execution, ms.
    pub max_ms: f64,
}

/// What one read of pg_stat_statements saw, for every database.
#[derive(Clone, Debug)]
pub struct StatementsRead {
    /// Every entry, worst total time first.
    pub rows: Arc<[StatementRow]>,
    /// `pg_stat_statements_info.dealloc`.
    pub evicted: i64,
    /// `pg_stat_statements_info.stats_reset`.
    pub stats_reset: Option<SystemTime>,
}

/// Reads pg_stat_statements (every database) and its info on `tx`.
pub async fn read_statements(
    tx: &TimedTransaction<'_>,
    limit: i64,
    own_roles: &[String],
) -> Result<StatementsRead, ReadError> {
    let version = crate::pg::server_version(tx).await?;
    let sql = statements_sql(version)?;
    let rows = tx.query(sql, &[&limit, &own_roles]).await?;
    let info = tx.query_one(STATEMENTS_INFO, &[]).await?;
    let mut read = Vec::with_capacity(rows.len());
    for row in &rows {
        read.push(StatementRow {
            queryid: row.try_get(0)?,
            agent_role: row.try_get(1)?,
            own_role: row.try_get(2)?,
            figures: Figures {
                calls: row.try_get(3)?,
                total_ms: row.try_get(4)?,
                rows: row.try_get(6)?,
                shared_hit: row.try_get(7)?,
                shared_read: row.try_get(8)?,
                io_ms: row.try_get(9)?,
            },
            max_ms: row.try_get(5)?,
            dbid: row.try_get(10)?,
        });
    }
    Ok(StatementsRead {
        rows: read.into(),
        evicted: info.try_get(0)?,
        stats_reset: info.try_get(1)?,
    })
}

/// The cluster-wide views of one server (as one login role sees them),
/// shared by the readers of its watched databases.
#[derive(Debug)]
pub struct ServerViews {
    fresh_for: Duration,
    statements: tokio::sync::Mutex<Option<(Instant, StatementsRead)>>,
    replication: tokio::sync::Mutex<Option<(Instant, Arc<ReplicationSnapshot>)>>,
}

impl ServerViews {
    /// Views whose reads are reused for `fresh_for` (half the read
    /// interval: every database's pass of one interval shares one or two
    /// reads).
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            fresh_for,
            statements: tokio::sync::Mutex::default(),
            replication: tokio::sync::Mutex::default(),
        }
    }

    /// The last read in `slot` while it is fresh, else `read`'s (readers
    /// of the same server wait for it rather than read it again).
    async fn fresh<T: Clone>(
        &self,
        slot: &tokio::sync::Mutex<Option<(Instant, T)>>,
        read: impl std::future::Future<Output = Result<T, ReadError>>,
    ) -> Result<T, ReadError> {
        let mut cached = slot.lock().await;
        if let Some((at, value)) = cached.as_ref()
            && at.elapsed() < self.fresh_for
        {
            return Ok(value.clone());
        }
        let value = read.await?;
        *cached = Some((Instant::now(), value.clone()));
        Ok(value)
    }

    /// Replication as the server sees it (see [`Self::statements`]).
    pub async fn replication(
        &self,
        tx: &TimedTransaction<'_>,
    ) -> Result<Arc<ReplicationSnapshot>, ReadError> {
        self.fresh(&self.replication, async {
            Ok(Arc::new(super::replication::read_replication(tx).await?))
        })
        .await
    }

    /// pg_stat_statements of every database of the server: the last read
    /// while it is fresh, else a new one on `tx` (readers of the same
    /// server wait for it rather than read it again).
    pub async fn statements(
        &self,
        tx: &TimedTransaction<'_>,
        limit: i64,
        own_roles: &[String],
    ) -> Result<StatementsRead, ReadError> {
        self.fresh(&self.statements, read_statements(tx, limit, own_roles))
            .await
    }
}

/// The [`ServerViews`] of every server (and login role) watched, by the
/// pools' [`crate::db::TimedPool::views_key`]: the databases of one server
/// share one.
#[derive(Debug, Default)]
pub struct ServerViewsRegistry {
    by_server: std::sync::Mutex<std::collections::HashMap<String, Arc<ServerViews>>>,
}

impl ServerViewsRegistry {
    /// The views of the server `key` names, made (reused for `fresh_for`)
    /// the first time one of its databases is watched.
    pub fn for_server(&self, key: &str, fresh_for: Duration) -> Arc<ServerViews> {
        self.by_server
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(key.to_owned())
            .or_insert_with(|| Arc::new(ServerViews::new(fresh_for)))
            .clone()
    }
}
