//! The database reader: `pg_stat_database` (commits, rollbacks, buffer
//! cache, deadlocks), the database's size, dead tuples, and client
//! connections by state against `max_connections`.

use std::sync::Arc;

use crate::db::TimedTransaction;
use crate::pg::ReadError;

const DATABASE: &str = include_str!("../../../sql/queries/database.sql");
const CONNECTIONS: &str = include_str!("../../../sql/queries/connections.sql");

/// What one pass read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DatabaseSnapshot {
    /// Committed transactions since the stats reset.
    pub xact_commit: i64,
    /// Rolled-back transactions.
    pub xact_rollback: i64,
    /// Shared buffer hits.
    pub blks_hit: i64,
    /// Blocks read from disk (or the OS cache).
    pub blks_read: i64,
    /// Deadlocks detected.
    pub deadlocks: i64,
    /// The database's size, bytes.
    pub size_bytes: i64,
    /// The server's `max_connections`.
    pub max_connections: i32,
    /// Dead tuples in user tables.
    pub dead_tuples: i64,
    /// Live tuples in user tables.
    pub live_tuples: i64,
    /// Client connections to the server by state: (state, all, to this
    /// database).
    pub connections: Vec<(String, i64, i64)>,
}

impl DatabaseSnapshot {
    /// Shared-buffer hit ratio, when any block was touched.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.blks_hit + self.blks_read;
        (total > 0).then(|| self.blks_hit as f64 / total as f64)
    }

    /// Client connections to the whole server.
    pub fn server_connections(&self) -> i64 {
        self.connections.iter().map(|(_, all, _)| all).sum()
    }
}

/// The reader of one database's figures.
#[derive(Debug, Default)]
pub struct DatabaseReader {
    latest: crate::pg::Latest<DatabaseSnapshot>,
}

impl DatabaseReader {
    /// The latest pass, once one succeeded.
    pub fn latest(&self) -> Option<Arc<DatabaseSnapshot>> {
        self.latest.get()
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let row = tx.query_one(DATABASE, &[]).await?;
        let mut snapshot = DatabaseSnapshot {
            xact_commit: row.try_get(0)?,
            xact_rollback: row.try_get(1)?,
            blks_hit: row.try_get(2)?,
            blks_read: row.try_get(3)?,
            deadlocks: row.try_get(4)?,
            size_bytes: row.try_get(5)?,
            max_connections: row.try_get(6)?,
            dead_tuples: row.try_get(7)?,
            live_tuples: row.try_get(8)?,
            connections: Vec::new(),
        };
        for row in tx.query(CONNECTIONS, &[]).await? {
            snapshot
                .connections
                .push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
        }
        self.latest.set(snapshot);
        Ok(())
    }
}

crate::pg::impl_reader!(DatabaseReader, "database");
