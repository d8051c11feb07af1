//! What to index for one table's use by one statement: the candidate's
//! elements (equality columns most selective first, then expressions, a
//! range or the ORDER BY under a LIMIT), refused when its leading element
//! already leads an index or its columns are too unselective; one index
//! per branch of an `OR`; and, for a table compared only with `LIKE`, the
//! unconfirmed pattern index. Apart from the pass (`mod.rs`), which plans
//! and weighs what this proposes.

use std::collections::HashMap;

use super::reasons::{Reason, Why};
use super::{
    INDEX_EXPRESSIONS, INDEXES, IndexAdvisor, LOW_DISTINCT, PATTERN, PassPlanner, STATS, Table,
    predicates, quote_ident,
};
use crate::db::TimedTransaction;
use crate::pg::ReadError;

/// The most elements an index may have (PostgreSQL's `INDEX_MAX_KEYS`).
const INDEX_MAX_KEYS: usize = 32;

impl IndexAdvisor {
    /// For a table compared only with `LIKE`: the pattern index that would
    /// serve a prefix (a `*_pattern_ops` class, or a plain B-tree under the
    /// C collation), unconfirmed since a generic plan of `LIKE $1` never
    /// uses an index; or why there is none.
    pub(super) async fn pattern(
        tx: &TimedTransaction<'_>,
        table: &Table,
        table_use: &predicates::TableUse,
        why: &mut Why,
    ) -> Result<(), ReadError> {
        let Some(like) = table_use
            .patterns
            .iter()
            .find(|p| p.pattern != predicates::Pattern::Infix)
        else {
            why.table(Reason::PatternTrigramOnly);
            return Ok(());
        };
        let Some(row) = tx.query_opt(PATTERN, &[&table.oid, &like.column]).await? else {
            return Ok(());
        };
        let (type_name, c_collation, indexed): (String, bool, bool) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        if indexed {
            why.table(Reason::AlreadyIndexed);
            return Ok(());
        }
        let class = match (c_collation, type_name.as_str()) {
            (true, "text" | "varchar" | "bpchar") => "",
            (false, "text") => " text_pattern_ops",
            (false, "varchar") => " varchar_pattern_ops",
            (false, "bpchar") => " bpchar_pattern_ops",
            // No B-tree serves LIKE on another type.
            _ => return Ok(()),
        };
        why.table(Reason::PatternUnconfirmed);
        why.pattern = Some(format!(
            "CREATE INDEX CONCURRENTLY ON {}.{} ({}{class});",
            quote_ident(&table.schema),
            quote_ident(&table.name),
            quote_ident(&like.column)
        ));
        Ok(())
    }

    /// The indexes one table's use needs: one for its conjuncts; else, for
    /// its first disjunction every branch of which an index serves (an
    /// existing one, or a candidate), one per branch without one. Or why
    /// none is worth suggesting.
    pub(super) async fn indexes(
        &self,
        tx: &TimedTransaction<'_>,
        planner: &mut PassPlanner,
        table: &Table,
        table_use: &predicates::TableUse,
        keep_unselective: bool,
    ) -> Result<Result<Vec<Vec<Element>>, Reason>, ReadError> {
        if table_use.has_conjuncts() || table_use.disjunctions.is_empty() {
            let candidate = self
                .candidate(tx, planner, table, table_use, keep_unselective)
                .await?;
            return Ok(candidate.map(|columns| vec![columns]));
        }
        let mut refused = Reason::AlreadyIndexed;
        'disjunctions: for branches in &table_use.disjunctions {
            let mut indexes: Vec<Vec<Element>> = Vec::new();
            for branch in branches {
                match self
                    .candidate(tx, planner, table, branch, keep_unselective)
                    .await?
                {
                    Ok(columns) => {
                        if !indexes.contains(&columns) {
                            indexes.push(columns);
                        }
                    }
                    // An index the branch can use exists.
                    Err(Reason::AlreadyIndexed) => {}
                    Err(reason) => {
                        refused = refused.min(reason);
                        continue 'disjunctions;
                    }
                }
            }
            if !indexes.is_empty() {
                return Ok(Ok(indexes));
            }
        }
        Ok(Err(refused))
    }

    /// The index columns for one table's use, or why no index is worth
    /// suggesting; with `keep_unselective`, columns with few distinct
    /// values are kept too (sampled values may show they pay).
    pub(super) async fn candidate(
        &self,
        tx: &TimedTransaction<'_>,
        planner: &mut PassPlanner,
        table: &Table,
        table_use: &predicates::TableUse,
        keep_unselective: bool,
    ) -> Result<Result<Vec<Element>, Reason>, ReadError> {
        // pg_stats shows only columns the reader may SELECT: the planner
        // role's session when there is one (the agent's role needs no
        // access to the data), else the agent's own.
        let stats: Vec<(String, f64)> = match planner.session.as_mut() {
            Some(session) => session
                .column_stats(STATS, &table.schema, &table.name)
                .await
                .unwrap_or_default(),
            None => {
                let mut out = Vec::new();
                for row in tx.query(STATS, &[&table.schema, &table.name]).await? {
                    out.push((row.try_get(0)?, row.try_get(1)?));
                }
                out
            }
        };
        let mut distinct: HashMap<String, f64> = HashMap::new();
        for (column, n) in stats {
            let values = if n < 0.0 { -n * table.rows as f64 } else { n };
            distinct.insert(column, values);
        }
        // Most selective equality first; unknown selectivity keeps the
        // statement's order after the known ones. A column joined to one
        // compared with a value is looked up by that value: an equality.
        let mut equality: Vec<(String, Option<f64>)> = table_use
            .equality
            .iter()
            .chain(
                table_use
                    .joined
                    .iter()
                    .filter(|c| !table_use.equality.contains(c)),
            )
            .map(|c| (c.clone(), distinct.get(c).copied()))
            .filter(|(_, d)| keep_unselective || d.is_none_or(|d| d > LOW_DISTINCT))
            .collect();
        equality.sort_by(|a, b| b.1.unwrap_or(0.0).total_cmp(&a.1.unwrap_or(0.0)));
        // Equality columns, then equality expressions (their selectivity is
        // unknown: pg_stats has none for an expression no index holds).
        let mut columns: Vec<Element> = equality
            .into_iter()
            .map(|(c, _)| Element::Column(c))
            .chain(
                table_use
                    .equality_expressions
                    .iter()
                    .map(|e| Element::Expression(e.sql.clone())),
            )
            .collect();
        let selective =
            |c: &String| keep_unselective || distinct.get(c).is_none_or(|d| *d > LOW_DISTINCT);
        let range = table_use
            .range
            .iter()
            .find(|c| selective(c))
            .map(|c| Element::Column(c.clone()))
            .or_else(|| {
                table_use
                    .range_expressions
                    .first()
                    .map(|e| Element::Expression(e.sql.clone()))
            });
        if let Some(range) = range {
            if !columns.contains(&range) {
                columns.push(range);
            }
        } else {
            for column in &table_use.order_by {
                let column = Element::Column(column.clone());
                if !columns.contains(&column) {
                    columns.push(column);
                }
            }
        }
        let Some(leading) = columns.first() else {
            return Ok(Err(Reason::LowSelectivity));
        };
        let indexed = match leading {
            Element::Column(leading) => {
                let mut indexed = false;
                for row in tx.query(INDEXES, &[&table.oid]).await? {
                    indexed |= row.try_get::<_, String>(0)? == *leading;
                }
                indexed
            }
            // The server's own text of each index's leading expression.
            Element::Expression(leading) => {
                let mut indexed = false;
                for row in tx.query(INDEX_EXPRESSIONS, &[&table.oid]).await? {
                    let theirs: String = row.try_get(0)?;
                    indexed |= predicates::same_expression(leading, &theirs);
                }
                indexed
            }
        };
        if indexed {
            return Ok(Err(Reason::AlreadyIndexed));
        }
        // PostgreSQL's INDEX_MAX_KEYS.
        columns.truncate(INDEX_MAX_KEYS);
        Ok(Ok(columns))
    }
}

/// Whether a table is compared only with `LIKE` (nothing else to index).
pub(super) fn only_patterns(table_use: &predicates::TableUse) -> bool {
    !table_use.patterns.is_empty()
        && !table_use.has_conjuncts()
        && table_use.disjunctions.is_empty()
}

/// One element of a suggested index.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Element {
    /// A column, by its name.
    Column(String),
    /// An expression over one column, as [`predicates::IndexExpression`]
    /// rebuilt it (`lower("email")`).
    Expression(String),
}

impl Element {
    /// As it stands in `CREATE INDEX … (…)`: a quoted column, or the
    /// expression in parentheses.
    pub(super) fn sql(&self) -> String {
        match self {
            Self::Column(column) => quote_ident(column),
            Self::Expression(expression) => format!("({expression})"),
        }
    }

    /// As [`IndexSuggestion::columns`] lists it.
    pub(super) fn name(&self) -> String {
        match self {
            Self::Column(text) | Self::Expression(text) => text.clone(),
        }
    }
}

/// `"schema"."table" ("c1", ("expression"))`, columns quoted from the
/// statement's names as the parser read them, expressions as rebuilt.
pub(super) fn index_target(table: &Table, columns: &[Element]) -> String {
    let columns: Vec<String> = columns.iter().map(Element::sql).collect();
    format!(
        "{}.{} ({})",
        quote_ident(&table.schema),
        quote_ident(&table.name),
        columns.join(", ")
    )
}
