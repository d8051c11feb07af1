//! The index advisor: from the slowest statements of pg_stat_statements to
//! ready `CREATE INDEX CONCURRENTLY` statements, confirmed by a
//! hypothetical index where the `hypopg` extension is installed.
//!
//! For each of the top statements by total time: parse it
//! ([`predicates`]), take the columns of its equality, range and IN
//! predicates and (with a LIMIT) its ORDER BY per table; resolve the table
//! through the catalog; skip small tables (under [`MIN_ROWS`]) and
//! candidates whose leading column already leads an index; order equality
//! columns most selective first and drop low-selectivity ones using
//! `pg_stats`; then, with hypopg, EXPLAIN the statement's generic plan with
//! and without the hypothetical index and keep the candidate only if the
//! cost drops by at least [`MIN_SAVING`]. Identifiers are quoted from the
//! catalog's names; nothing from a statement is interpolated into SQL but
//! the statement itself under EXPLAIN, in a read-only transaction.

pub mod predicates;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use super::statements::StatementsReader;
use super::{ReadError, Reader};
use crate::db::TimedTransaction;

const TABLE: &str = include_str!("../../../sql/queries/advisor_table.sql");
const INDEXES: &str = include_str!("../../../sql/queries/advisor_indexes.sql");
const STATS: &str = include_str!("../../../sql/queries/advisor_stats.sql");

/// Tables with fewer rows are not worth an index.
pub const MIN_ROWS: i64 = 10_000;
/// Columns with at most this many distinct values are not selective.
pub const LOW_DISTINCT: f64 = 10.0;
/// Least cost reduction (a share) for a hypopg-confirmed suggestion.
pub const MIN_SAVING: f64 = 0.1;
/// Statements considered per pass (the worst by total time).
pub const STATEMENTS_CONSIDERED: usize = 20;

/// One suggested index.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct IndexSuggestion {
    /// The watched database.
    pub database: String,
    /// `schema.table` (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub table: Option<String>,
    /// The index's columns, in order (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub columns: Option<Vec<String>>,
    /// The ready statement (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub create_statement: Option<String>,
    /// The normalized statements it helps (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub helps: Option<Vec<String>>,
    /// Their queryids.
    pub queryids: Vec<String>,
    /// Their calls.
    pub calls: u64,
    /// Their total time, ms.
    pub total_ms: f64,
    /// The planner's cost of the statement without the index (hypopg).
    #[oai(skip_serializing_if_is_none)]
    pub cost_before: Option<f64>,
    /// With the hypothetical index (hypopg).
    #[oai(skip_serializing_if_is_none)]
    pub cost_after: Option<f64>,
    /// `1 - after / before`, when confirmed by hypopg.
    #[oai(skip_serializing_if_is_none)]
    pub estimated_saving: Option<f64>,
    /// `hypopg` (a hypothetical index was planned) or `statistics` (hypopg
    /// is not installed).
    pub confirmed_by: String,
}

impl IndexSuggestion {
    /// A copy without table, column and statement names, for callers
    /// without the admin token.
    pub fn redacted(&self) -> Self {
        Self {
            table: None,
            columns: None,
            create_statement: None,
            helps: None,
            ..self.clone()
        }
    }
}

/// What the advisor saw on its last pass.
#[derive(Clone, Debug, Default)]
pub struct Advice {
    /// The suggestions, largest saving (or total time) first.
    pub suggestions: Vec<IndexSuggestion>,
    /// Statements the parser rejected.
    pub unparsable: u64,
    /// Whether hypopg was available.
    pub hypopg: bool,
    /// For each statement (by queryid) whose generic plan scans a table of
    /// at least [`MIN_ROWS`] rows sequentially: `(schema.table, rows)`.
    pub seq_scans: HashMap<i64, Vec<(String, i64)>>,
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The advisor of one database.
#[derive(Debug)]
pub struct IndexAdvisor {
    database: Arc<str>,
    statements: Arc<StatementsReader>,
    latest: RwLock<Arc<Advice>>,
}

struct Table {
    oid: i64,
    schema: String,
    name: String,
    rows: i64,
}

impl IndexAdvisor {
    /// An advisor over the statements `statements` reads.
    pub fn new(database: Arc<str>, statements: Arc<StatementsReader>) -> Self {
        Self {
            database,
            statements,
            latest: RwLock::default(),
        }
    }

    /// The last pass's advice.
    pub fn latest(&self) -> Arc<Advice> {
        self.latest
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn table(tx: &TimedTransaction<'_>, name: &str) -> Result<Option<Table>, ReadError> {
        let Some(row) = tx.query_opt(TABLE, &[&name]).await? else {
            return Ok(None);
        };
        Ok(Some(Table {
            oid: row.try_get(0)?,
            schema: row.try_get(1)?,
            name: row.try_get(2)?,
            rows: row.try_get(3)?,
        }))
    }

    /// The generic plan of `sql` (cost and sequentially scanned tables), or
    /// `None` when it cannot be planned (e.g. no SELECT privilege). Runs in
    /// a savepoint, untimed: statements that cannot be planned (e.g. a
    /// parameter whose type the server cannot infer) are expected here and
    /// must not count as the application's query errors.
    async fn cost(
        tx: &tokio_postgres::Transaction<'_>,
        sql: &str,
        version: i32,
        hypothetical: Option<&str>,
    ) -> Option<Plan> {
        tx.batch_execute("/* perfscope */ SAVEPOINT perfscope_advice")
            .await
            .ok()?;
        let mut prepared = false;
        let result = Self::cost_inner(tx, sql, version, hypothetical, &mut prepared).await;
        let cleanup = if result.is_some() {
            "/* perfscope */ RELEASE SAVEPOINT perfscope_advice"
        } else {
            "/* perfscope */ ROLLBACK TO SAVEPOINT perfscope_advice"
        };
        let _ = tx.batch_execute(cleanup).await;
        if prepared {
            // A prepared statement outlives a rolled-back savepoint; only
            // one that exists is deallocated, or the error would abort the
            // whole read.
            let _ = tx
                .batch_execute("/* perfscope */ DEALLOCATE perfscope_advice")
                .await;
        }
        result
    }

    async fn cost_inner(
        tx: &tokio_postgres::Transaction<'_>,
        sql: &str,
        version: i32,
        hypothetical: Option<&str>,
        prepared: &mut bool,
    ) -> Option<Plan> {
        if let Some(index) = hypothetical {
            tx.query(
                "/* perfscope */ SELECT * FROM hypopg_create_index($1)",
                &[&index],
            )
            .await
            .ok()?;
        }
        let plan = if version >= 160_000 {
            tx.query_one(
                format!("/* perfscope */ EXPLAIN (GENERIC_PLAN, FORMAT JSON) {sql}").as_str(),
                &[],
            )
            .await
            .ok()?
        } else {
            let params = max_param(sql);
            tx.batch_execute("/* perfscope */ SET LOCAL plan_cache_mode = force_generic_plan")
                .await
                .ok()?;
            tx.batch_execute(&format!(
                "/* perfscope */ PREPARE perfscope_advice AS {sql}"
            ))
            .await
            .ok()?;
            *prepared = true;
            let nulls = vec!["NULL"; params].join(", ");
            let execute = if params == 0 {
                "EXECUTE perfscope_advice".to_owned()
            } else {
                format!("EXECUTE perfscope_advice({nulls})")
            };
            tx.query_one(
                format!("/* perfscope */ EXPLAIN (FORMAT JSON) {execute}").as_str(),
                &[],
            )
            .await
            .ok()?
        };
        if hypothetical.is_some() {
            let _ = tx.query("/* perfscope */ SELECT hypopg_reset()", &[]).await;
        }
        let json: serde_json::Value = plan.try_get(0).ok()?;
        let root = json.pointer("/0/Plan")?;
        let mut seq_scans = Vec::new();
        collect_seq_scans(root, &mut seq_scans);
        Some(Plan {
            cost: root.get("Total Cost")?.as_f64()?,
            seq_scans,
        })
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let version = crate::pg::server_version(tx).await?;
        let hypopg: bool = tx
            .query_one(
                "SELECT /* perfscope */ EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')",
                &[],
            )
            .await?
            .try_get(0)?;
        let snapshot = self.statements.latest();
        let mut advice = Advice {
            hypopg,
            ..Advice::default()
        };
        // (table oid, columns) → suggestion, merging statements it helps.
        let mut found: HashMap<(i64, Vec<String>), IndexSuggestion> = HashMap::new();
        let mut tables: HashMap<String, Option<Table>> = HashMap::new();
        for statement in snapshot.statements.iter().take(STATEMENTS_CONSIDERED) {
            let (Some(raw), Some(text)) = (&statement.raw, &statement.text) else {
                continue;
            };
            let uses = match predicates::table_uses(raw) {
                Ok(uses) => uses,
                Err(_) => {
                    advice.unparsable += 1;
                    continue;
                }
            };
            for table_use in &uses {
                if !tables.contains_key(&table_use.table) {
                    let table = Self::table(tx, &table_use.table).await?;
                    tables.insert(table_use.table.clone(), table);
                }
            }
            // The statement's own plan: its cost, and which large tables it
            // reads sequentially (a reason the stats give for slowness).
            let before = if uses.is_empty() {
                None
            } else {
                Self::cost(tx.raw(), raw, version, None).await
            };
            if let Some(plan) = &before {
                let large: Vec<(String, i64)> = tables
                    .values()
                    .flatten()
                    .filter(|t| t.rows >= MIN_ROWS && plan.seq_scans.contains(&t.name))
                    .map(|t| (format!("{}.{}", t.schema, t.name), t.rows))
                    .collect();
                if !large.is_empty() {
                    advice.seq_scans.insert(statement.queryid, large);
                }
            }
            for table_use in uses {
                let Some(Some(table)) = tables.get(&table_use.table) else {
                    continue;
                };
                if table.rows < MIN_ROWS {
                    continue;
                }
                let Some(columns) = self.candidate(tx, table, &table_use).await? else {
                    continue;
                };
                let target = index_target(table, &columns);
                let index_sql = format!("CREATE INDEX ON {target}");
                let (before, after) = if hypopg {
                    let after = Self::cost(tx.raw(), raw, version, Some(&index_sql)).await;
                    match (before.as_ref().map(|p| p.cost), after.map(|p| p.cost)) {
                        (Some(b), Some(a)) if b > 0.0 && (1.0 - a / b) >= MIN_SAVING => {
                            (Some(b), Some(a))
                        }
                        // Planned, but the planner would not use it enough.
                        (Some(_), Some(_)) => continue,
                        _ => (None, None),
                    }
                } else {
                    (None, None)
                };
                let key = (table.oid, columns.clone());
                let entry = found.entry(key).or_insert_with(|| IndexSuggestion {
                    database: self.database.to_string(),
                    table: Some(format!("{}.{}", table.schema, table.name)),
                    columns: Some(columns.clone()),
                    create_statement: Some(format!("CREATE INDEX CONCURRENTLY ON {target};")),
                    helps: Some(Vec::new()),
                    queryids: Vec::new(),
                    calls: 0,
                    total_ms: 0.0,
                    cost_before: None,
                    cost_after: None,
                    estimated_saving: None,
                    confirmed_by: if before.is_some() {
                        "hypopg"
                    } else {
                        "statistics"
                    }
                    .into(),
                });
                if let Some(helps) = entry.helps.as_mut() {
                    helps.push(text.to_string());
                }
                entry.queryids.push(statement.queryid.to_string());
                entry.calls += u64::try_from(statement.cumulative.calls).unwrap_or(0);
                entry.total_ms += statement.cumulative.total_ms;
                if let (Some(b), Some(a)) = (before, after)
                    && entry.cost_before.is_none()
                {
                    entry.cost_before = Some(b);
                    entry.cost_after = Some(a);
                    entry.estimated_saving = Some(1.0 - a / b);
                }
            }
        }
        let mut suggestions: Vec<IndexSuggestion> = found.into_values().collect();
        suggestions.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
        advice.suggestions = suggestions;
        *self.latest.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(advice);
        Ok(())
    }

    /// The index columns for one table's use, or `None` when no index is
    /// worth suggesting.
    async fn candidate(
        &self,
        tx: &TimedTransaction<'_>,
        table: &Table,
        table_use: &predicates::TableUse,
    ) -> Result<Option<Vec<String>>, ReadError> {
        let mut distinct: HashMap<String, f64> = HashMap::new();
        for row in tx.query(STATS, &[&table.schema, &table.name]).await? {
            let column: String = row.try_get(0)?;
            let n: f64 = row.try_get(1)?;
            let values = if n < 0.0 { -n * table.rows as f64 } else { n };
            distinct.insert(column, values);
        }
        // Most selective equality first; unknown selectivity keeps the
        // statement's order after the known ones.
        let mut equality: Vec<(String, Option<f64>)> = table_use
            .equality
            .iter()
            .map(|c| (c.clone(), distinct.get(c).copied()))
            .filter(|(_, d)| d.is_none_or(|d| d > LOW_DISTINCT))
            .collect();
        equality.sort_by(|a, b| b.1.unwrap_or(0.0).total_cmp(&a.1.unwrap_or(0.0)));
        let mut columns: Vec<String> = equality.into_iter().map(|(c, _)| c).collect();
        let selective = |c: &String| distinct.get(c).is_none_or(|d| *d > LOW_DISTINCT);
        if let Some(range) = table_use.range.iter().find(|c| selective(c)) {
            if !columns.contains(range) {
                columns.push(range.clone());
            }
        } else {
            for column in &table_use.order_by {
                if !columns.contains(column) {
                    columns.push(column.clone());
                }
            }
        }
        let Some(leading) = columns.first() else {
            return Ok(None);
        };
        let mut indexed = Vec::new();
        for row in tx.query(INDEXES, &[&table.oid]).await? {
            indexed.push(row.try_get::<_, String>(0)?);
        }
        if indexed.contains(leading) {
            return Ok(None);
        }
        Ok(Some(columns))
    }
}

/// `"schema"."table" ("c1", "c2")`, quoted from the catalog's names.
fn index_target(table: &Table, columns: &[String]) -> String {
    let columns: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    format!(
        "{}.{} ({})",
        quote_ident(&table.schema),
        quote_ident(&table.name),
        columns.join(", ")
    )
}

/// What perfscope reads off a generic plan.
#[derive(Clone, Debug, PartialEq)]
struct Plan {
    cost: f64,
    /// Relations read by a sequential scan.
    seq_scans: Vec<String>,
}

/// The relations of every `Seq Scan` node under `node`.
fn collect_seq_scans(node: &serde_json::Value, out: &mut Vec<String>) {
    if node.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan")
        && let Some(relation) = node.get("Relation Name").and_then(|r| r.as_str())
        && !out.iter().any(|r| r == relation)
    {
        out.push(relation.to_owned());
    }
    if let Some(children) = node.get("Plans").and_then(|p| p.as_array()) {
        for child in children {
            collect_seq_scans(child, out);
        }
    }
}

/// The highest `$n` in a statement.
pub(crate) fn max_param(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let start = i + 1;
            let mut j = start;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if j > start {
                max = max.max(sql[start..j].parse().unwrap_or(0));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    max
}

/// The advisor runs on every this-many runner passes (each of its passes
/// EXPLAINs up to [`STATEMENTS_CONSIDERED`] statements twice).
pub const ADVISOR_EVERY: u64 = 4;

impl Reader for IndexAdvisor {
    fn name(&self) -> &'static str {
        "index_advisor"
    }

    fn every(&self) -> u64 {
        ADVISOR_EVERY
    }

    fn read<'a>(
        &'a self,
        tx: &'a TimedTransaction<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ReadError>> + Send + 'a>> {
        Box::pin(self.pass(tx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("orders"), "\"orders\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn highest_parameter() {
        assert_eq!(max_param("select $1, $12, $3"), 12);
        assert_eq!(max_param("select 1"), 0);
    }
}
