//! The checks reader: what PgHero checks — invalid, unused and redundant
//! indexes, tables whose dead tuples outrun autovacuum (or whose
//! autovacuum is off), sequences near the end of their range, and transaction-ID
//! wraparound risk.
//!
//! It was the "health" reader; "health" also meant whether a database is
//! up (readiness), so the reader is named for what it does. Its `reader`
//! label stays `health`, as dashboards know it.
//!
//! Sequences: `pg_sequences.last_value` is NULL for a role without SELECT
//! or USAGE on the sequence, and `pg_monitor` gives neither, so under the
//! documented grants the check would see nothing and say nothing. The
//! least privilege that makes it right is `perfscope.sequence_positions()`,
//! a `SECURITY DEFINER` function `sql/install.sql` creates in a schema of
//! its own, owned by the superuser who installs it, callable only by the
//! agent's role: it returns each sequence's name, last value and bounds,
//! and nothing else (SELECT on each sequence would miss sequences created
//! later; `pg_read_all_data` would read every table). Where the function
//! is missing or not granted, the reader falls back to the sequences its
//! role may read and reports how many it may not (`sequence_unreadable`),
//! so an unreadable sequence is never silently skipped.

use std::sync::Arc;

use crate::db::TimedTransaction;
use crate::pg::ReadError;

const INDEXES: &str = include_str!("../../../sql/queries/health_indexes.sql");
const TABLES: &str = include_str!("../../../sql/queries/health_tables.sql");
const SEQUENCE_HELPER: &str = include_str!("../../../sql/queries/health_sequence_helper.sql");
const SEQUENCES: &str = include_str!("../../../sql/queries/health_sequences.sql");
const SEQUENCES_FALLBACK: &str = include_str!("../../../sql/queries/health_sequences_fallback.sql");

/// Unused indexes smaller than this are not worth a finding.
pub const UNUSED_INDEX_FLOOR_BYTES: i64 = 1024 * 1024;

/// One object with a problem.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckFinding {
    /// `invalid`, `unused`, `redundant`, `vacuum_overdue`,
    /// `vacuum_disabled`, `sequence`, `sequence_unreadable`, `wraparound`.
    pub kind: String,
    /// `schema.name` of the object (index, table or sequence; the
    /// database for `wraparound`; empty for `sequence_unreadable`).
    pub object: String,
    /// The table it belongs to, what covers it, or the counts behind the
    /// figure.
    pub detail: String,
    /// The figure behind it: bytes (indexes), the dead-to-live tuple ratio,
    /// the last value (sequences), how many sequences could not be read,
    /// the XID age.
    pub value: f64,
    /// The threshold the figure is held against: the unused-index size
    /// floor, 0.4 dead per live tuple, the bound a sequence runs to (its maximum, or its minimum for a
    /// descending one), 1 billion
    /// XIDs; 0 where any figure counts (invalid and redundant indexes,
    /// unreadable sequences).
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
            let covering: Option<String> = row.try_get(4)?;
            let limit = if kind == "unused" {
                UNUSED_INDEX_FLOOR_BYTES as f64
            } else {
                0.0
            };
            items.push(CheckFinding {
                kind,
                object: format!("{schema}.{index}"),
                detail: match covering {
                    Some(covering) => format!("{schema}.{covering} on {schema}.{table}"),
                    None => format!("{schema}.{table}"),
                },
                value: row.try_get(5)?,
                limit,
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
                detail: row.try_get(5)?,
                value: row.try_get(3)?,
                limit: row.try_get(4)?,
            });
        }
        items.extend(sequences(tx).await?);
        self.latest.set(items);
        Ok(())
    }
}

/// Sequences past 75% of their range, through the install's helper when
/// the agent may call it; otherwise those its role may read, and one
/// `sequence_unreadable` item counting the others.
async fn sequences(tx: &TimedTransaction<'_>) -> Result<Vec<CheckFinding>, ReadError> {
    let helper: bool = tx.query_one(SEQUENCE_HELPER, &[]).await?.try_get(0)?;
    let mut items = Vec::new();
    if helper {
        for row in tx.query(SEQUENCES, &[]).await? {
            let schema: String = row.try_get(0)?;
            let name: String = row.try_get(1)?;
            items.push(CheckFinding {
                kind: "sequence".into(),
                object: format!("{schema}.{name}"),
                detail: String::new(),
                value: row.try_get(2)?,
                limit: row.try_get(3)?,
            });
        }
        return Ok(items);
    }
    for row in tx.query(SEQUENCES_FALLBACK, &[]).await? {
        let readable: bool = row.try_get(0)?;
        let schema: String = row.try_get(1)?;
        let name: String = row.try_get(2)?;
        let value: Option<f64> = row.try_get(3)?;
        items.push(if readable {
            CheckFinding {
                kind: "sequence".into(),
                object: format!("{schema}.{name}"),
                detail: String::new(),
                value: value.unwrap_or(0.0),
                limit: row.try_get(4)?,
            }
        } else {
            CheckFinding {
                kind: "sequence_unreadable".into(),
                object: String::new(),
                detail: String::new(),
                value: value.unwrap_or(0.0),
                limit: 0.0,
            }
        });
    }
    Ok(items)
}

crate::pg::impl_reader!(ChecksReader, "health");
