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
//! server-wide too and rides along, and replication (standbys, slots)
//! and `pg_stat_io`, the same for every database of the server, are
//! shared the same way.
//! `pg_stat_activity` and `pg_stat_database` stay per database: they are
//! small in-memory arrays the server filters itself.
//!
//! [`ServerViewsRegistry`] keeps one [`ServerViews`] per server for
//! [`crate::pg::watch()`], which hands each new database's readers the
//! [`SharedRead`] of the view they read. The readers know only that
//! generic slot, not this module: the arrows run from here to them.

use std::sync::Arc;
use std::time::Duration;

use super::io::IoSnapshot;
use super::replication::ReplicationSnapshot;
use super::shared::SharedRead;
use super::statements::StatementsRead;

/// The cluster-wide views of one server (as one login role sees them),
/// shared by the readers of its watched databases.
#[derive(Debug)]
pub struct ServerViews {
    /// pg_stat_statements of every database of the server, with its info.
    pub statements: Arc<SharedRead<StatementsRead>>,
    /// Replication as the server sees it (standbys, slots).
    pub replication: Arc<SharedRead<Arc<ReplicationSnapshot>>>,
    /// `pg_stat_io`, the server's I/O by backend type (PostgreSQL 16+).
    pub io: Arc<SharedRead<Arc<IoSnapshot>>>,
    /// Whether the log said the server has no `pg_stat_io` (once per
    /// server, not once per database).
    pub io_said_unsupported: Arc<std::sync::atomic::AtomicBool>,
}

impl ServerViews {
    /// Views whose reads are reused for `fresh_for` (half the read
    /// interval: every database's pass of one interval shares one or two
    /// reads).
    pub fn new(fresh_for: Duration) -> Self {
        Self {
            statements: Arc::new(SharedRead::new(fresh_for)),
            replication: Arc::new(SharedRead::new(fresh_for)),
            io: Arc::new(SharedRead::new(fresh_for)),
            io_said_unsupported: Arc::default(),
        }
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
