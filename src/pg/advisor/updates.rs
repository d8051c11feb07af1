//! Which columns the workload's UPDATEs set, per table: an index on such a
//! column turns the table's HOT updates (which write no index entry) into
//! ordinary ones that write an entry in every index, which is the largest
//! write cost an index can add ([`super::selection`] weighs it).
//!
//! Apart from `predicates/` because it reads a different part of a
//! different set of statements (the SET list of every UPDATE of the
//! snapshot, not the filters of the top ones), with the same parser.

use std::collections::{BTreeMap, BTreeSet};

use sqlparser::ast::{AssignmentTarget, Ident, ObjectName, ObjectNamePart, Statement, TableFactor};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

/// UPDATE statements read per pass, at most (the worst by total time).
pub const MAX_UPDATES: usize = 500;

fn ident(part: &Ident) -> String {
    if part.quote_style.is_some() {
        part.value.clone()
    } else {
        part.value.to_lowercase()
    }
}

fn parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .filter_map(|part| match part {
            ObjectNamePart::Identifier(i) => Some(ident(i)),
            _ => None,
        })
        .collect()
}

/// The table an UPDATE writes (its name's parts, as the server reads
/// them) and the columns its SET list assigns; `None` for anything else
/// or a text the parser rejects.
pub fn updated_columns(sql: &str) -> Option<(Vec<String>, BTreeSet<String>)> {
    let statements = Parser::parse_sql(&PostgreSqlDialect {}, sql).ok()?;
    let Some(Statement::Update(update)) = statements.first() else {
        return None;
    };
    let TableFactor::Table { name, .. } = &update.table.relation else {
        return None;
    };
    let mut columns = BTreeSet::new();
    for assignment in &update.assignments {
        let targets: Vec<&ObjectName> = match &assignment.target {
            AssignmentTarget::ColumnName(name) => vec![name],
            AssignmentTarget::Tuple(names) => names.iter().collect(),
        };
        // `SET col.field = …` assigns a field of the composite `col`.
        columns.extend(
            targets
                .into_iter()
                .filter_map(|t| parts(t).into_iter().next()),
        );
    }
    Some((parts(name), columns))
}

/// The columns set per table, keyed by the table's name (its last part):
/// from each text of `texts` that starts with `update` (cheap to skip
/// the others), at most [`MAX_UPDATES`] of them.
pub fn by_table<'a>(
    texts: impl Iterator<Item = &'a str>,
) -> BTreeMap<Vec<String>, BTreeSet<String>> {
    let mut out: BTreeMap<Vec<String>, BTreeSet<String>> = BTreeMap::new();
    for sql in texts
        .filter(|sql| {
            sql.trim_start()
                .get(..6)
                .is_some_and(|verb| verb.eq_ignore_ascii_case("update"))
        })
        .take(MAX_UPDATES)
    {
        if let Some((table, columns)) = updated_columns(sql) {
            out.entry(table).or_default().extend(columns);
        }
    }
    out
}

/// The columns the workload sets on `schema.name`: those of UPDATEs naming
/// it qualified, and those naming it bare (the search path is not
/// resolved here; a bare name may mean this table).
pub fn for_table(
    updated: &BTreeMap<Vec<String>, BTreeSet<String>>,
    schema: &str,
    name: &str,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for key in [
        vec![schema.to_owned(), name.to_owned()],
        vec![name.to_owned()],
    ] {
        if let Some(columns) = updated.get(&key) {
            out.extend(columns.iter().cloned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_columns_per_table() {
        let (table, columns) =
            updated_columns("UPDATE public.\"Twin\" SET b = b + $1, \"C\" = $2 WHERE id = $3")
                .expect("an update");
        assert_eq!(table, ["public", "Twin"]);
        assert_eq!(columns, ["C".to_owned(), "b".to_owned()].into());
        let (_, tuple) =
            updated_columns("update t set (x, y) = ($1, $2) where id = $3").expect("an update");
        assert_eq!(tuple, ["x".to_owned(), "y".to_owned()].into());
        assert_eq!(updated_columns("select 1"), None);
        assert_eq!(updated_columns("update (("), None);
    }

    #[test]
    fn by_table_reads_only_updates_and_merges() {
        let texts = [
            "SELECT a FROM t WHERE b = $1",
            "UPDATE t SET a = $1 WHERE id = $2",
            "  update public.t set b = $1",
            "update",
        ];
        let found = by_table(texts.into_iter());
        assert_eq!(
            for_table(&found, "public", "t"),
            ["a".to_owned(), "b".to_owned()].into()
        );
        assert!(for_table(&found, "public", "other").is_empty());
    }
}
