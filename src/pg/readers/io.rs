//! The I/O reader: `pg_stat_io` (PostgreSQL 16+), the server's reads,
//! writes, extends, buffer hits and evictions by backend type (client
//! backends, the checkpointer, autovacuum, …), object (relation, temp
//! relation, WAL on 18) and context (normal, vacuum, bulk read, bulk
//! write). It answers what pg_stat_statements cannot: whether the disk
//! is read by the application or by vacuum, whether client backends evict
//! and write buffers themselves (shared_buffers too small, the
//! background writer behind), how much bulk reads bypass the cache.
//!
//! The view is server-wide, so it is read once per server and interval
//! and shared by the readers of every database watched there (see
//! [`super::server`]), like replication. Its columns differ by version:
//! 16 and 17 count in units of `op_bytes` (`io_16.sql` multiplies),
//! 18 dropped `op_bytes` and counts bytes itself (`io_18.sql`). Before 16
//! there is no view: the reader reads only the version, keeps a snapshot
//! that says so ([`IoSnapshot::supported`]), and logs it once, never a
//! failure per pass. The `*_time` columns are kept only when
//! `track_io_timing` is on (else the server leaves them at 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::db::TimedTransaction;
use crate::pg::ReadError;

const SETTINGS: &str = include_str!("../../../sql/queries/io_settings.sql");
const IO_16: &str = include_str!("../../../sql/queries/io_16.sql");
const IO_18: &str = include_str!("../../../sql/queries/io_18.sql");

/// The first server version with `pg_stat_io` (`server_version_num`).
pub const MIN_SERVER_VERSION: i32 = 160_000;

/// Rows kept at most (the view has a fixed set: 79 rows on 18, most of
/// them zero and left out).
pub const MAX_ROWS: usize = 128;

/// What the API and the page say where the view does not exist.
pub const NEEDS: &str = "pg_stat_io needs PostgreSQL 16+";

/// The SQL of a server version's band, `None` before 16 (no view).
pub fn io_sql(server_version_num: i32) -> Option<&'static str> {
    match server_version_num {
        v if v < MIN_SERVER_VERSION => None,
        v if v < 180_000 => Some(IO_16),
        _ => Some(IO_18),
    }
}

/// One row of `pg_stat_io`: an operation count is the server's
/// cumulative figure since its statistics were last reset.
#[derive(Clone, Debug, Default, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct IoRow {
    /// `client backend`, `checkpointer`, `autovacuum worker`, ….
    pub backend_type: String,
    /// `relation`, `temp relation` (and `wal` on 18).
    pub object: String,
    /// `normal`, `vacuum`, `bulkread`, `bulkwrite` (and `init` on 18).
    pub context: String,
    /// Read operations.
    pub reads: i64,
    /// Bytes read.
    pub read_bytes: f64,
    /// Milliseconds spent reading (only with `track_io_timing`).
    #[oai(skip_serializing_if_is_none)]
    pub read_time_ms: Option<f64>,
    /// Write operations.
    pub writes: i64,
    /// Bytes written.
    pub write_bytes: f64,
    /// Milliseconds spent writing (only with `track_io_timing`).
    #[oai(skip_serializing_if_is_none)]
    pub write_time_ms: Option<f64>,
    /// Writeback requests to the kernel.
    pub writebacks: i64,
    /// Relation extensions.
    pub extends: i64,
    /// Bytes extended.
    pub extend_bytes: f64,
    /// Blocks found in shared (or local) buffers.
    pub hits: i64,
    /// Buffers evicted to make room.
    pub evictions: i64,
    /// Ring buffers reused (bulk read, bulk write, vacuum).
    pub reuses: i64,
    /// fsync calls.
    pub fsyncs: i64,
}

impl IoRow {
    /// Hits over hits and reads, when there was either.
    pub fn hit_ratio(&self) -> Option<f64> {
        let all = self.hits.saturating_add(self.reads);
        (all > 0).then(|| self.hits as f64 / all as f64)
    }
}

/// One pass over the server's `pg_stat_io`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IoSnapshot {
    /// The server's `server_version_num`.
    pub server_version_num: i32,
    /// Whether `track_io_timing` is on (the rows' times are kept).
    pub timing: bool,
    /// The rows with any operation, by backend type, object and context
    /// (none before PostgreSQL 16).
    pub rows: Vec<IoRow>,
    /// Whether rows were left out past [`MAX_ROWS`].
    pub truncated: bool,
}

impl IoSnapshot {
    /// Whether the server has `pg_stat_io` (PostgreSQL 16+).
    pub fn supported(&self) -> bool {
        self.server_version_num >= MIN_SERVER_VERSION
    }
}

/// Reads `pg_stat_io` now (only the version before 16).
pub async fn read_io(tx: &TimedTransaction<'_>) -> Result<IoSnapshot, ReadError> {
    let settings = tx.query_one(SETTINGS, &[]).await?;
    let server_version_num: i32 = settings.try_get("version")?;
    let timing: bool = settings.try_get("timing")?;
    let Some(sql) = io_sql(server_version_num) else {
        return Ok(IoSnapshot {
            server_version_num,
            timing,
            ..IoSnapshot::default()
        });
    };
    let limit = i64::try_from(MAX_ROWS + 1).unwrap_or(i64::MAX);
    let mut rows = Vec::new();
    for row in tx.query(sql, &[&limit]).await? {
        let time = |column: &str| -> Result<Option<f64>, ReadError> {
            Ok(timing.then_some(row.try_get::<_, f64>(column)?))
        };
        rows.push(IoRow {
            backend_type: row.try_get("backend_type")?,
            object: row.try_get("object")?,
            context: row.try_get("context")?,
            reads: row.try_get("reads")?,
            read_bytes: row.try_get("read_bytes")?,
            read_time_ms: time("read_time")?,
            writes: row.try_get("writes")?,
            write_bytes: row.try_get("write_bytes")?,
            write_time_ms: time("write_time")?,
            writebacks: row.try_get("writebacks")?,
            extends: row.try_get("extends")?,
            extend_bytes: row.try_get("extend_bytes")?,
            hits: row.try_get("hits")?,
            evictions: row.try_get("evictions")?,
            reuses: row.try_get("reuses")?,
            fsyncs: row.try_get("fsyncs")?,
        });
    }
    let truncated = rows.len() > MAX_ROWS;
    rows.truncate(MAX_ROWS);
    Ok(IoSnapshot {
        server_version_num,
        timing,
        rows,
        truncated,
    })
}

/// The I/O reader of one database's server.
#[derive(Debug)]
pub struct IoReader {
    database: Arc<str>,
    latest: crate::pg::Latest<IoSnapshot>,
    /// Its server's shared views: one read for every watched database of
    /// the server.
    views: Option<Arc<super::shared::SharedRead<Arc<IoSnapshot>>>>,
    /// Whether the log has said the server has no `pg_stat_io`: shared by
    /// the readers of one server, so 100 databases log it once.
    said_unsupported: Arc<AtomicBool>,
}

impl IoReader {
    /// The reader of the database `database` (the log's label).
    pub fn new(database: Arc<str>) -> Self {
        Self {
            database,
            latest: crate::pg::Latest::default(),
            views: None,
            said_unsupported: Arc::default(),
        }
    }

    /// The latest pass, once one succeeded (on a server before 16, one
    /// that is not [`IoSnapshot::supported`]).
    pub fn latest(&self) -> Option<Arc<IoSnapshot>> {
        self.latest.get()
    }

    /// Shares its reads with the other watched databases of its server,
    /// and whether the log said the server has no `pg_stat_io` (`said`).
    #[must_use]
    pub fn with_server_views(
        mut self,
        views: Arc<super::shared::SharedRead<Arc<IoSnapshot>>>,
        said: Arc<AtomicBool>,
    ) -> Self {
        self.views = Some(views);
        self.said_unsupported = said;
        self
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let snapshot = match &self.views {
            Some(views) => {
                views
                    .get(async { Ok(Arc::new(read_io(tx).await?)) })
                    .await?
            }
            None => Arc::new(read_io(tx).await?),
        };
        if !snapshot.supported() && !self.said_unsupported.swap(true, Ordering::Relaxed) {
            tracing::info!(
                database = %self.database,
                server_version_num = snapshot.server_version_num,
                "{NEEDS}: the I/O reader reads nothing on this server"
            );
        }
        self.latest.set_shared(snapshot);
        Ok(())
    }
}

crate::pg::impl_reader!(IoReader, "io");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_picks_the_band() {
        assert_eq!(io_sql(150_018), None);
        assert_eq!(io_sql(159_999), None);
        assert_eq!(io_sql(160_000), Some(IO_16));
        assert_eq!(io_sql(170_006), Some(IO_16));
        assert_eq!(io_sql(180_000), Some(IO_18));
        assert_eq!(io_sql(190_000), Some(IO_18));
        assert!(IO_16.contains("op_bytes") && !IO_16.contains("coalesce(read_bytes"));
        assert!(IO_18.contains("coalesce(read_bytes, 0)") && !IO_18.contains("coalesce(op_bytes"));
    }

    #[test]
    fn a_snapshot_before_16_is_unsupported() {
        let old = IoSnapshot {
            server_version_num: 150_018,
            ..IoSnapshot::default()
        };
        assert!(!old.supported());
        let new = IoSnapshot {
            server_version_num: 160_000,
            ..IoSnapshot::default()
        };
        assert!(new.supported());
    }

    #[test]
    fn the_hit_ratio_is_hits_over_hits_and_reads() {
        let row = IoRow {
            hits: 3,
            reads: 1,
            ..IoRow::default()
        };
        assert_eq!(row.hit_ratio(), Some(0.75));
        assert_eq!(IoRow::default().hit_ratio(), None);
    }
}
