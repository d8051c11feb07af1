//! Suggestions the whole-workload selection does not weigh, kept as
//! planned: the set of indexes an `OR` needs (each serves the statement
//! only with the others, as one BitmapOr, so the selection must not split
//! them), and an index that pays only for sampled parameter values (its
//! costs are a custom plan's, not comparable with the generic plans the
//! selection weighs). They join the chosen suggestions at the end of the
//! pass, merged into a chosen one of the same table and elements. Their
//! `writeCostPerSecond` is 0: their writes are not weighed (the README
//! says so).

use std::collections::BTreeMap;

use super::{Element, IndexAdvisor, IndexSuggestion, Table};
use crate::pg::readers::statements::StatementView;

/// The suggestions kept as planned: (table oid, elements) → suggestion.
pub(super) type Fixed = BTreeMap<(i64, Vec<Element>), IndexSuggestion>;

/// One statement's set of indexes, as planned.
pub(super) struct FixedSet<'a> {
    pub table: &'a Table,
    /// The indexes, planned together.
    pub indexes: &'a [Vec<Element>],
    /// Each index's `"schema"."table" (…)`.
    pub targets: &'a [String],
    /// The plan's costs before and after, when hypopg planned them.
    pub costs: Option<(f64, f64)>,
    /// `generic` or `sampled_values`.
    pub planned_with: &'static str,
    /// With sampled values: how many samples it helps, of how many.
    pub sampled: Option<(u32, u32)>,
    /// Calls per second × cost saved per call.
    pub read_saving_per_second: f64,
}

impl IndexAdvisor {
    /// Adds `set`'s indexes, for `statement`, to `fixed`.
    pub(super) fn add_fixed(
        &self,
        fixed: &mut Fixed,
        statement: &StatementView,
        set: FixedSet<'_>,
    ) {
        let creates: Vec<String> = set
            .targets
            .iter()
            .map(|t| format!("CREATE INDEX CONCURRENTLY ON {t};"))
            .collect();
        for (i, columns) in set.indexes.iter().enumerate() {
            let together: Vec<String> = creates
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c.clone())
                .collect();
            let entry = fixed
                .entry((set.table.oid, columns.clone()))
                .or_insert_with(|| IndexSuggestion {
                    database: self.database.to_string(),
                    table: Some(format!("{}.{}", set.table.schema, set.table.name)),
                    columns: Some(columns.iter().map(Element::name).collect()),
                    create_statement: Some(creates[i].clone()),
                    together: (!together.is_empty()).then_some(together),
                    helps: Some(Vec::new()),
                    queryids: Vec::new(),
                    calls: 0,
                    total_ms: 0.0,
                    cost_before: set.costs.map(|(before, _)| before),
                    cost_after: set.costs.map(|(_, after)| after),
                    estimated_saving: set.costs.map(|(before, after)| 1.0 - after / before),
                    confirmed_by: if set.costs.is_some() {
                        "hypopg"
                    } else {
                        "statistics"
                    }
                    .into(),
                    planned_with: set.planned_with.into(),
                    sampled_values_helped: set.sampled.map(|(helped, _)| helped),
                    sampled_values_planned: set.sampled.map(|(_, planned)| planned),
                    serves_statements: 0,
                    read_saving_per_second: 0.0,
                    write_cost_per_second: 0.0,
                    drop_with: None,
                    drops: 0,
                });
            if let (Some(helps), Some(text)) = (entry.helps.as_mut(), statement.text.as_deref()) {
                helps.push(text.to_string());
            }
            entry.queryids.push(statement.queryid.to_string());
            entry.calls += u64::try_from(statement.cumulative.calls).unwrap_or(0);
            entry.total_ms += statement.cumulative.total_ms;
            entry.serves_statements += 1;
            // The set saves it together: each index its share.
            entry.read_saving_per_second += set.read_saving_per_second / set.indexes.len() as f64;
        }
    }
}

/// Joins the kept suggestions to the chosen ones: into a chosen suggestion
/// of the same table and elements (the statements it helps added), else
/// as suggestions of their own.
pub(super) fn join(suggestions: &mut Vec<IndexSuggestion>, fixed: Fixed) {
    for (_, kept) in fixed {
        let Some(chosen) = suggestions
            .iter_mut()
            .find(|s| s.table == kept.table && s.columns == kept.columns)
        else {
            suggestions.push(kept);
            continue;
        };
        // Only the statements it does not serve already add to it (their
        // figures are spread evenly over the kept entry's statements).
        let statements = kept.queryids.len().max(1) as f64;
        for (i, queryid) in kept.queryids.iter().enumerate() {
            if chosen.queryids.contains(queryid) {
                continue;
            }
            chosen.queryids.push(queryid.clone());
            if let (Some(helps), Some(text)) = (
                chosen.helps.as_mut(),
                kept.helps.as_ref().and_then(|h| h.get(i)),
            ) {
                helps.push(text.clone());
            }
            chosen.serves_statements += 1;
            chosen.calls += kept.calls / kept.queryids.len().max(1) as u64;
            chosen.total_ms += kept.total_ms / statements;
            chosen.read_saving_per_second += kept.read_saving_per_second / statements;
        }
        if chosen.together.is_none() {
            chosen.together = kept.together;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suggestion(columns: &[&str], queryids: &[&str]) -> IndexSuggestion {
        IndexSuggestion {
            table: Some("public.t".into()),
            columns: Some(columns.iter().map(|c| c.to_string()).collect()),
            helps: Some(queryids.iter().map(|q| format!("statement {q}")).collect()),
            queryids: queryids.iter().map(|q| q.to_string()).collect(),
            calls: 10,
            serves_statements: u32::try_from(queryids.len()).unwrap_or(0),
            ..IndexSuggestion::default()
        }
    }

    #[test]
    fn a_kept_index_merges_into_the_chosen_one_of_the_same_elements() {
        let mut chosen = vec![suggestion(&["a"], &["1"])];
        let mut fixed = Fixed::new();
        let mut or_branch = suggestion(&["a"], &["2"]);
        or_branch.together = Some(vec!["CREATE INDEX CONCURRENTLY ON t (b);".into()]);
        fixed.insert((1, vec![Element::Column("a".into())]), or_branch);
        fixed.insert(
            (1, vec![Element::Column("b".into())]),
            suggestion(&["b"], &["2"]),
        );
        join(&mut chosen, fixed);
        assert_eq!(chosen.len(), 2);
        assert_eq!(chosen[0].queryids, vec!["1", "2"]);
        assert_eq!(chosen[0].serves_statements, 2);
        assert_eq!(chosen[0].calls, 20);
        // A statement it serves already adds nothing.
        let mut fixed = Fixed::new();
        fixed.insert(
            (1, vec![Element::Column("a".into())]),
            suggestion(&["a"], &["1"]),
        );
        join(&mut chosen, fixed);
        assert_eq!((chosen[0].calls, chosen[0].serves_statements), (20, 2));
        assert!(chosen[0].together.is_some());
        assert_eq!(chosen[1].columns, Some(vec!["b".to_string()]));
    }
}
