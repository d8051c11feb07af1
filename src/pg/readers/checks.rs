//! The checks reader: what PgHero checks — invalid, unused and redundant
//! indexes, tables whose dead tuples outrun autovacuum, sequences near
//! their maximum, and transaction-ID wraparound risk.
//!
//! It was the "health" reader; "health" also meant whether a database is
//! up (readiness), so the reader is named for what it does. Its `reader`
//! label stays `health`, as dashboards know it.

use std::sync::Arc;

use crate::db::TimedTransaction;
use crate::pg::ReadError;

const INDEXES: &str = include_str!("../../../sql/queries/health_indexes.sql");
const TABLES: &str = include_str!("../../../sql/queries/health_tables.sql");

/// Unused indexes smaller than this are not worth a finding.
pub const UNUSED_INDEX_FLOOR_BYTES: i64 = 1024 * 1024;

/// One object with a problem.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckFinding {
    /// `invalid`, `unused`, `redundant`, `vacuum_overdue`, `sequence`,
    /// `wraparound`.
    pub kind: String,
    /// `schema.name` of the object (index, table or sequence).
    pub object: String,
    /// The table it belongs to, or what covers it.
    pub detail: String,
    /// The figure behind it (bytes, dead tuples, last value, XID age).
    pub value: f64,
    /// What the figure is measured against.
    pub limit: f64,
}

/// The reader of one database's checks.
#[derive(Debug, Default)]
pub struct ChecksReader {
    latest: crate::pg::Latest<Vec<CheckFinding>>,
}

impl ChecksReader {
    /// The last pass's findings (`None` until one succeeded).
    pub fn latest(&self) -> Option<Arc<Vec<CheckFinding>>> {
        self.latest.get()
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let mut items = Vec::new();
        for row in tx.query(INDEXES, &[&UNUSED_INDEX_FLOOR_BYTES]).await? {
            let kind: String = row.try_get(0)?;
            let schema: String = row.try_get(1)?;
            let table: String = row.try_get(2)?;
            let index: String = row.try_get(3)?;
            let detail: String = row.try_get(4)?;
            let (value, detail) = match kind.as_str() {
                "redundant" => (0.0, format!("{schema}.{detail} on {schema}.{table}")),
                _ => (detail.parse().unwrap_or(0.0), format!("{schema}.{table}")),
            };
            items.push(CheckFinding {
                kind,
                object: format!("{schema}.{index}"),
                detail,
                value,
                limit: 0.0,
            });
        }
        for row in tx.query(TABLES, &[]).await? {
            let kind: String = row.try_get(0)?;
            let schema: String = row.try_get(1)?;
            let name: String = row.try_get(2)?;
            items.push(CheckFinding {
                object: if schema.is_empty() {
                    name
                } else {
                    format!("{schema}.{name}")
                },
                kind,
                detail: String::new(),
                value: row.try_get(3)?,
                limit: row.try_get(4)?,
            });
        }
        self.latest.set(items);
        Ok(())
    }
}

crate::pg::impl_reader!(ChecksReader, "health");
