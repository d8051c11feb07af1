//! The drops that go with a table's suggestions: its indexes the health
//! checks call unused (never scanned, over the size floor) or redundant
//! (their columns lead another index), so that a table the advisor adds
//! an index to ends with fewer indexes where it can.
//!
//! Read with the checks' own query (`sql/queries/health_indexes.sql`, the
//! same floor), in the advisor's pass, so a drop is proposed exactly when
//! the health findings list the index, with the names kept apart (schema,
//! table, index) and quoted, never parsed back out of a message.

use std::collections::{BTreeMap, BTreeSet};

use super::{IndexSuggestion, quote_ident};
use crate::db::TimedTransaction;
use crate::pg::ReadError;
use crate::pg::readers::checks::UNUSED_INDEX_FLOOR_BYTES;

const INDEXES: &str = include_str!("../../../sql/queries/health_indexes.sql");

/// Drops proposed per table, at most.
pub const MAX_DROPS_PER_TABLE: usize = 20;

/// `DROP INDEX CONCURRENTLY "schema"."index";` for each unused or
/// redundant index, by `schema.table`, sorted.
pub(super) async fn droppable(
    tx: &TimedTransaction<'_>,
) -> Result<BTreeMap<String, BTreeSet<String>>, ReadError> {
    // (schema, table, index, the index that covers it when redundant).
    let mut rows: Vec<(String, String, String, Option<String>)> = Vec::new();
    for row in tx.query(INDEXES, &[&UNUSED_INDEX_FLOOR_BYTES]).await? {
        let kind: String = row.try_get(0)?;
        if kind != "unused" && kind != "redundant" {
            continue;
        }
        rows.push((
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        ));
    }
    // In a stable order, whatever the query's.
    rows.sort();
    let dropped: BTreeSet<(String, String)> = rows
        .iter()
        .map(|(schema, _, index, _)| (schema.clone(), index.clone()))
        .collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (schema, table, index, covering) in rows {
        // A redundant index whose cover goes too is what remains.
        if let Some(covering) = covering
            && dropped.contains(&(schema.clone(), covering))
        {
            continue;
        }
        let drops = out.entry(format!("{schema}.{table}")).or_default();
        if drops.len() < MAX_DROPS_PER_TABLE {
            drops.insert(format!(
                "DROP INDEX CONCURRENTLY {}.{};",
                quote_ident(&schema),
                quote_ident(&index)
            ));
        }
    }
    Ok(out)
}

/// Puts each table's drops on its first suggestion in `suggestions`.
pub(super) fn attach(
    suggestions: &mut [IndexSuggestion],
    mut drops: BTreeMap<String, BTreeSet<String>>,
) {
    for suggestion in suggestions {
        let Some(table) = &suggestion.table else {
            continue;
        };
        if let Some(found) = drops.remove(table) {
            suggestion.drops = u32::try_from(found.len()).unwrap_or(u32::MAX);
            suggestion.drop_with = Some(found.into_iter().collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(table: &str) -> IndexSuggestion {
        IndexSuggestion {
            database: "db".into(),
            table: Some(table.into()),
            confirmed_by: "statistics".into(),
            serves_statements: 1,
            read_saving_per_second: 1.0,
            ..IndexSuggestion::default()
        }
    }

    #[test]
    fn drops_go_on_the_tables_first_suggestion_only() {
        let mut suggestions = vec![
            suggestion("public.t"),
            suggestion("public.t"),
            suggestion("public.u"),
        ];
        let drops = BTreeMap::from([(
            "public.t".to_owned(),
            BTreeSet::from(["DROP INDEX CONCURRENTLY \"public\".\"t_old\";".to_owned()]),
        )]);
        attach(&mut suggestions, drops);
        assert_eq!(suggestions[0].drops, 1);
        assert_eq!(
            suggestions[0].drop_with.as_deref(),
            Some(&["DROP INDEX CONCURRENTLY \"public\".\"t_old\";".to_owned()][..])
        );
        assert_eq!(suggestions[1].drop_with, None);
        assert_eq!(suggestions[2].drops, 0);
        // Without the admin token the statements go, the count stays.
        let public = suggestions[0].redacted();
        assert_eq!((public.drop_with, public.drops), (None, 1));
    }
}
