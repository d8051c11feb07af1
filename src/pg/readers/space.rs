//! The space reader: the largest tables and indexes of a watched database
//! with row estimates, heap, TOAST and index sizes, statistics-based bloat
//! estimates (see `sql/queries/space_*.sql`) and each table's growth since
//! the agent first saw it. A table's bloat compares its current size with
//! what its live rows (the statistics collector's current count) would
//! fill, never the page count of its last ANALYZE, which a table that grew
//! since would make look tight; a table that changed a lot since its last
//! ANALYZE is flagged (`staleStatistics`), as its row width may be off. It runs on every [`SPACE_EVERY`]-th pass (sizes
//! move slowly, and the estimate reads pg_stats); the endpoint reads
//! afresh. Bloat worth acting on becomes a finding.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crate::db::TimedTransaction;
use crate::pg::ReadError;

const TABLES: &str = include_str!("../../../sql/queries/space_tables.sql");
const INDEXES: &str = include_str!("../../../sql/queries/space_indexes.sql");

/// Tables and indexes listed.
pub const LISTED: i64 = 20;
/// The reader runs on every this-many runner passes.
pub const SPACE_EVERY: u64 = 4;
/// Tables whose first size is remembered for growth.
const MAX_REMEMBERED: usize = 256;
/// Bloat worth a finding: at least this share of the relation…
pub const BLOAT_SHARE: f64 = 0.5;
/// …and at least this many bytes.
pub const BLOAT_BYTES: f64 = 8.0 * 1024.0 * 1024.0;

/// One table.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct TableSpace {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Live rows now (`n_live_tup` of the statistics collector; the
    /// planner's `reltuples` where the collector has none, e.g. after a
    /// statistics reset).
    pub rows_estimate: f64,
    /// The heap, bytes.
    pub heap_bytes: i64,
    /// Its TOAST table with its index, bytes.
    pub toast_bytes: i64,
    /// Its indexes, bytes.
    pub index_bytes: i64,
    /// All of it, bytes.
    pub total_bytes: i64,
    /// Estimated bytes of the heap beyond what the live rows need (needs
    /// SELECT on the table for its statistics).
    #[oai(skip_serializing_if_is_none)]
    pub bloat_bytes: Option<f64>,
    /// `bloatBytes / heapBytes`.
    #[oai(skip_serializing_if_is_none)]
    pub bloat_ratio: Option<f64>,
    /// Rows inserted, updated or deleted since the table's last ANALYZE
    /// (`n_mod_since_analyze`).
    #[oai(skip_serializing_if_is_none)]
    pub modified_since_analyze: Option<i64>,
    /// The table changed by more than half its rows (and 1,000) since its
    /// last ANALYZE: its statistics, the bloat estimate's row width and the
    /// planner's plans may be off. Run ANALYZE.
    pub stale_statistics: bool,
    /// Growth of `totalBytes` since the agent first saw the table.
    #[oai(skip_serializing_if_is_none)]
    pub growth_bytes: Option<i64>,
}

/// One index.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct IndexSpace {
    /// Its schema.
    pub schema: String,
    /// Its name.
    pub name: String,
    /// Its table.
    pub table: String,
    /// Its access method (`btree`, `gin`, …).
    pub method: String,
    /// Its size, bytes.
    pub bytes: i64,
    /// Scans since the stats reset.
    pub scans: i64,
    /// Estimated bytes beyond what its entries need (B-trees on plain
    /// columns the role may read).
    #[oai(skip_serializing_if_is_none)]
    pub bloat_bytes: Option<f64>,
    /// `bloatBytes / bytes`.
    #[oai(skip_serializing_if_is_none)]
    pub bloat_ratio: Option<f64>,
}

/// One pass.
#[derive(Clone, Debug, PartialEq)]
pub struct SpaceSnapshot {
    /// The largest tables, largest first.
    pub tables: Vec<TableSpace>,
    /// The largest indexes, largest first.
    pub indexes: Vec<IndexSpace>,
}

fn ratio(part: Option<f64>, whole: i64) -> Option<f64> {
    part.filter(|_| whole > 0)
        .map(|p| (p / whole as f64).clamp(0.0, 1.0))
}

/// Reads the largest tables and indexes now.
pub async fn read_space(tx: &TimedTransaction<'_>) -> Result<SpaceSnapshot, ReadError> {
    let mut tables = Vec::new();
    for row in tx.query(TABLES, &[&LISTED]).await? {
        let heap_bytes: i64 = row.try_get("heap_bytes")?;
        let bloat_bytes: Option<f64> = row.try_get("bloat_bytes")?;
        tables.push(TableSpace {
            schema: row.try_get("schema")?,
            name: row.try_get("name")?,
            rows_estimate: row.try_get("rows_estimate")?,
            heap_bytes,
            toast_bytes: row.try_get("toast_bytes")?,
            index_bytes: row.try_get("index_bytes")?,
            total_bytes: row.try_get("total_bytes")?,
            bloat_bytes,
            bloat_ratio: ratio(bloat_bytes, heap_bytes),
            modified_since_analyze: row.try_get("modified_since_analyze")?,
            stale_statistics: row.try_get("stale_statistics")?,
            growth_bytes: None,
        });
    }
    let mut indexes = Vec::new();
    for row in tx.query(INDEXES, &[&LISTED]).await? {
        let bytes: i64 = row.try_get("bytes")?;
        let bloat_bytes: Option<f64> = row.try_get("bloat_bytes")?;
        indexes.push(IndexSpace {
            schema: row.try_get("schema")?,
            name: row.try_get("name")?,
            table: row.try_get("table_name")?,
            method: row.try_get("method")?,
            bytes,
            scans: row.try_get("scans")?,
            bloat_bytes,
            bloat_ratio: ratio(bloat_bytes, bytes),
        });
    }
    Ok(SpaceSnapshot { tables, indexes })
}

/// Reads the space now through `pool` (a read-only transaction under
/// `timeout`), with growth from `reader`'s memory.
pub async fn read_now(
    pool: &crate::db::TimedPool,
    reader: &SpaceReader,
    timeout: std::time::Duration,
) -> Result<SpaceSnapshot, ReadError> {
    let mut client = pool.get().await?;
    let tx = crate::pg::read_only(&mut client, timeout).await?;
    let mut snapshot = read_space(&tx).await?;
    tx.commit().await?;
    reader.annotate_growth(&mut snapshot);
    Ok(snapshot)
}

impl SpaceSnapshot {
    /// Tables and indexes whose bloat is worth acting on.
    pub fn bloated(&self) -> (Vec<&TableSpace>, Vec<&IndexSpace>) {
        let worth = |bytes: Option<f64>, share: Option<f64>| {
            bytes.is_some_and(|b| b >= BLOAT_BYTES) && share.is_some_and(|s| s >= BLOAT_SHARE)
        };
        (
            self.tables
                .iter()
                .filter(|t| worth(t.bloat_bytes, t.bloat_ratio))
                .collect(),
            self.indexes
                .iter()
                .filter(|i| worth(i.bloat_bytes, i.bloat_ratio))
                .collect(),
        )
    }
}

/// The space reader of one database.
#[derive(Debug, Default)]
pub struct SpaceReader {
    first_seen: RwLock<HashMap<String, i64>>,
    latest: crate::pg::Latest<SpaceSnapshot>,
}

impl SpaceReader {
    /// The latest pass, once one succeeded.
    pub fn latest(&self) -> Option<Arc<SpaceSnapshot>> {
        self.latest.get()
    }

    /// Sets each table's growth since it was first seen (remembering the
    /// tables seen for the first time, up to a bound).
    pub fn annotate_growth(&self, snapshot: &mut SpaceSnapshot) {
        let mut first = self
            .first_seen
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for table in &mut snapshot.tables {
            let key = format!("{}.{}", table.schema, table.name);
            match first.get(&key) {
                Some(was) => table.growth_bytes = Some(table.total_bytes - was),
                None if first.len() < MAX_REMEMBERED => {
                    first.insert(key, table.total_bytes);
                    table.growth_bytes = Some(0);
                }
                None => {}
            }
        }
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let mut snapshot = read_space(tx).await?;
        self.annotate_growth(&mut snapshot);
        self.latest.set(snapshot);
        Ok(())
    }
}

crate::pg::impl_reader!(SpaceReader, "space", every = SPACE_EVERY);

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, total: i64, bloat: Option<f64>) -> TableSpace {
        TableSpace {
            schema: "public".into(),
            name: name.into(),
            rows_estimate: 1000.0,
            heap_bytes: total,
            toast_bytes: 0,
            index_bytes: 0,
            total_bytes: total,
            bloat_bytes: bloat,
            bloat_ratio: ratio(bloat, total),
            modified_since_analyze: None,
            stale_statistics: false,
            growth_bytes: None,
        }
    }

    #[test]
    fn growth_counts_from_the_first_sight_and_bloat_needs_size_and_share() {
        let reader = SpaceReader::default();
        let mut first = SpaceSnapshot {
            tables: vec![table("a", 100, None)],
            indexes: Vec::new(),
        };
        reader.annotate_growth(&mut first);
        assert_eq!(first.tables[0].growth_bytes, Some(0));
        let mut later = SpaceSnapshot {
            tables: vec![
                table("a", 250, None),
                table("big", 100 << 20, Some(80.0 * 1024.0 * 1024.0)),
                table("small", 4 << 20, Some(3.0 * 1024.0 * 1024.0)),
                table("mild", 100 << 20, Some(20.0 * 1024.0 * 1024.0)),
            ],
            indexes: Vec::new(),
        };
        reader.annotate_growth(&mut later);
        assert_eq!(later.tables[0].growth_bytes, Some(150));
        let (tables, _) = later.bloated();
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, vec!["big"]);
    }
}
