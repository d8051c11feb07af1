//! The end of an advisor pass: every top statement's candidate, collected
//! per table while the statements were advised on one by one, becomes the
//! table's suggestions through the whole-workload selection
//! ([`super::selection`]). This file is the glue that needs the database:
//! it confirms with hypopg each claim of a longer candidate on a shorter
//! one's statement, reads the table's writes from `pg_stat_user_tables`,
//! and turns what is chosen into [`IndexSuggestion`]s; statements left
//! unserved because an index would cost the writes more than it saves are
//! listed as `write_cost`.
//!
//! Rates: a statement's calls per second are its pg_stat_statements calls
//! over the seconds since pg_stat_statements' reset (or the server's
//! start where that is unknown); a table's writes per second are the
//! change of its `pg_stat_user_tables` counters since the advisor first
//! saw the table (a bounded map of baselines), so a bulk load before the
//! agent started, or years of history, does not count as today's
//! writes. The first pass that sees a table weighs no writes for it; the
//! next ones weigh what was written since.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError};

use super::selection::{self, Choice, Chosen, Saving, StatementFigures, TableWrites};
use super::{
    Element, IndexAdvisor, IndexSuggestion, MIN_SAVING, NotAdvised, PassPlanner, PassWork, Table,
    drops, fixed, index_target, updates,
};
use crate::db::TimedTransaction;
use crate::pg::ReadError;
use crate::pg::planner::{Mode, Statement};
use crate::pg::readers::statements::StatementsSnapshot;

const WRITES: &str = include_str!("../../../sql/queries/advisor_writes.sql");

/// Tables whose write counters are remembered, at most (then forgotten at
/// once, and measured again from the next pass).
const WRITE_BASELINES: usize = 10_000;

/// A table's write counters (inserted, updated, updated HOT, deleted) at
/// a moment of the server's clock (epoch seconds).
#[derive(Clone, Debug)]
pub(super) struct WriteBaseline {
    counters: [i64; 4],
    at: f64,
}

impl WriteBaseline {
    /// Rows per second of each counter since `earlier` (zero over no
    /// time); `None` when a counter went back (a statistics reset).
    fn since(&self, earlier: &WriteBaseline) -> Option<[f64; 4]> {
        let seconds = self.at - earlier.at;
        let mut rates = [0.0; 4];
        for (i, rate) in rates.iter_mut().enumerate() {
            let delta = self.counters[i] - earlier.counters[i];
            if delta < 0 {
                return None;
            }
            if seconds >= 1.0 {
                *rate = delta as f64 / seconds;
            }
        }
        Some(rates)
    }
}

/// One top statement with a candidate on a table.
#[derive(Clone, Debug)]
pub(super) struct Figures {
    pub queryid: i64,
    /// The normalized text (for `helps`).
    pub text: Arc<str>,
    /// pg_stat_statements' text (to plan a claim on it).
    pub raw: Arc<str>,
    /// The role that ran it, when it may be planned.
    pub role: Option<String>,
    pub calls: u64,
    pub total_ms: f64,
    /// Its generic plan's cost, when it was planned.
    pub cost_before: Option<f64>,
}

/// Every top statement's candidate on one table.
pub(super) struct TableCandidates {
    table: Table,
    choices: BTreeMap<Vec<Element>, Choice>,
    statements: BTreeMap<i64, Figures>,
    /// What to list for a statement that no chosen index serves.
    unserved: BTreeMap<i64, NotAdvised>,
}

impl TableCandidates {
    pub fn new(table: Table) -> Self {
        Self {
            table,
            choices: BTreeMap::new(),
            statements: BTreeMap::new(),
            unserved: BTreeMap::new(),
        }
    }

    /// A statement's candidate `elements`, with its hypopg costs
    /// `(before, after)` when planned.
    pub fn add(
        &mut self,
        elements: Vec<Element>,
        figures: Figures,
        costs: Option<(f64, f64)>,
        unserved: NotAdvised,
    ) {
        let saving = match costs {
            Some((before, after)) => Saving {
                per_call: before - after,
                costs,
            },
            None => Saving {
                per_call: selection::statistics_saving(self.table.rows),
                costs: None,
            },
        };
        self.choices
            .entry(elements.clone())
            .or_insert_with(|| Choice {
                elements,
                serves: BTreeMap::new(),
            })
            .serve(figures.queryid, saving);
        self.unserved.insert(figures.queryid, unserved);
        self.statements.insert(figures.queryid, figures);
    }
}

/// Seconds pg_stat_statements' counters cover in `snapshot` (at least 1).
pub(super) fn calls_window(snapshot: &StatementsSnapshot) -> Option<f64> {
    let covered = snapshot.at?.duration_since(snapshot.stats_reset?).ok()?;
    Some(covered.as_secs_f64().max(1.0))
}

impl IndexAdvisor {
    /// Confirms each claim of a longer candidate on a shorter one's
    /// statement (the pass's last planning: the planner session can close
    /// right after, before the weighing's catalog reads).
    pub(super) async fn confirm_claims(&self, work: &mut PassWork) {
        let hypopg = work.advice.hypopg;
        for candidates in work.found.values_mut() {
            for (longer, queryid) in selection::claims(&candidates.choices) {
                let saving = self
                    .confirm(&mut work.planner, candidates, &longer, queryid, hypopg)
                    .await;
                if let (Some(saving), Some(choice)) = (saving, candidates.choices.get_mut(&longer))
                {
                    choice.serve(queryid, saving);
                }
            }
        }
    }

    /// The pass's suggestions from what it collected per table (claims
    /// confirmed), and the statements left unserved.
    pub(super) async fn choose(
        &self,
        tx: &TimedTransaction<'_>,
        work: &mut PassWork,
        updated: &BTreeMap<Vec<String>, BTreeSet<String>>,
    ) -> Result<(), ReadError> {
        let mut served: BTreeSet<i64> = BTreeSet::new();
        let mut unserved: BTreeMap<i64, NotAdvised> = BTreeMap::new();
        let mut suggestions = Vec::new();
        for (_, mut candidates) in std::mem::take(&mut work.found) {
            let (writes, uptime) = self.writes(tx, &candidates.table, updated).await?;
            let window = work.calls_window.or(uptime).unwrap_or(1.0).max(1.0);

            let figures: BTreeMap<i64, StatementFigures> = candidates
                .statements
                .values()
                .map(|f| {
                    (
                        f.queryid,
                        StatementFigures {
                            queryid: f.queryid,
                            calls_per_second: f.calls as f64 / window,
                            total_ms: f.total_ms,
                        },
                    )
                })
                .collect();
            for chosen in selection::select(&candidates.choices, &figures, &writes) {
                served.extend(chosen.serves.iter().copied());
                suggestions.push(self.suggestion(&candidates, chosen));
            }
            unserved.append(&mut candidates.unserved);
        }
        for (queryid, entry) in unserved {
            if !served.contains(&queryid) {
                *work.advice.skipped.entry("write_cost").or_default() += 1;
                work.advice.not_advised.push(entry);
            }
        }
        fixed::join(&mut suggestions, std::mem::take(&mut work.fixed));
        suggestions.sort_by(|a, b| {
            b.total_ms
                .total_cmp(&a.total_ms)
                .then_with(|| a.table.cmp(&b.table))
                .then_with(|| a.columns.cmp(&b.columns))
        });
        if !suggestions.is_empty() {
            drops::attach(&mut suggestions, drops::droppable(tx).await?);
        }
        work.advice.suggestions = suggestions;
        Ok(())
    }

    /// Whether the index on `longer` serves statement `queryid` (whose
    /// own candidate is a prefix of it), and by how much: with hypopg, its
    /// generic plan with that hypothetical index must cost at least
    /// [`MIN_SAVING`] less; a statement that cannot be planned is served
    /// from statistics (a B-tree serves a lookup on its leading columns as
    /// an index on them alone does).
    async fn confirm(
        &self,
        planner: &mut PassPlanner,
        candidates: &TableCandidates,
        longer: &[Element],
        queryid: i64,
        hypopg: bool,
    ) -> Option<Saving> {
        let figures = candidates.statements.get(&queryid)?;
        match (hypopg, &figures.role, figures.cost_before) {
            (true, Some(role), Some(before)) => {
                let index_sql = [format!(
                    "CREATE INDEX ON {}",
                    index_target(&candidates.table, longer)
                )];
                let statement = Statement {
                    sql: &figures.raw,
                    role,
                };
                let after = self
                    .plan(planner, queryid, statement, Mode::Hypothetical(&index_sql))
                    .await
                    .ok()?
                    .cost;
                (before > 0.0 && 1.0 - after / before >= MIN_SAVING).then_some(Saving {
                    per_call: before - after,
                    costs: Some((before, after)),
                })
            }
            _ => Some(Saving {
                per_call: selection::statistics_saving(candidates.table.rows),
                costs: None,
            }),
        }
    }

    /// The table's writes per second since the advisor first saw it, and
    /// the seconds since the server started (`None` when
    /// `pg_stat_user_tables` has no row for it).
    async fn writes(
        &self,
        tx: &TimedTransaction<'_>,
        table: &Table,
        updated: &BTreeMap<Vec<String>, BTreeSet<String>>,
    ) -> Result<(TableWrites, Option<f64>), ReadError> {
        let updated_columns = updates::for_table(updated, &table.schema, &table.name);
        let Some(row) = tx.query_opt(WRITES, &[&table.oid]).await? else {
            return Ok((
                TableWrites {
                    updated_columns,
                    ..TableWrites::default()
                },
                None,
            ));
        };
        let now = WriteBaseline {
            counters: [
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            ],
            at: row.try_get(5)?,
        };
        let indexes: i64 = row.try_get(4)?;
        let uptime: f64 = row.try_get(6)?;
        let rates = {
            let mut baselines = self
                .write_baselines
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if baselines.len() >= WRITE_BASELINES && !baselines.contains_key(&table.oid) {
                baselines.clear();
            }
            let baseline = baselines.entry(table.oid).or_insert_with(|| now.clone());
            match now.since(baseline) {
                Some(rates) => rates,
                // Counters went back: a statistics reset. Start again.
                None => {
                    *baseline = now.clone();
                    [0.0; 4]
                }
            }
        };
        Ok((
            TableWrites {
                inserts: rates[0],
                updates: rates[1],
                hot_updates: rates[2],
                deletes: rates[3],
                indexes: usize::try_from(indexes).unwrap_or(0),
                updated_columns,
            },
            Some(uptime),
        ))
    }

    /// The suggestion for one chosen index.
    fn suggestion(&self, candidates: &TableCandidates, chosen: Chosen) -> IndexSuggestion {
        let table = &candidates.table;
        let target = index_target(table, &chosen.elements);
        let mut served: Vec<&Figures> = chosen
            .serves
            .iter()
            .filter_map(|queryid| candidates.statements.get(queryid))
            .collect();
        served.sort_by(|a, b| {
            b.total_ms
                .total_cmp(&a.total_ms)
                .then(a.queryid.cmp(&b.queryid))
        });
        let (cost_before, cost_after) = chosen.costs.unzip();
        IndexSuggestion {
            database: self.database.to_string(),
            table: Some(format!("{}.{}", table.schema, table.name)),
            columns: Some(chosen.elements.iter().map(Element::name).collect()),
            create_statement: Some(format!("CREATE INDEX CONCURRENTLY ON {target};")),
            helps: Some(served.iter().map(|f| f.text.to_string()).collect()),
            queryids: served.iter().map(|f| f.queryid.to_string()).collect(),
            calls: served.iter().map(|f| f.calls).sum(),
            total_ms: served.iter().map(|f| f.total_ms).sum(),
            cost_before,
            cost_after,
            estimated_saving: chosen.costs.map(|(b, a)| 1.0 - a / b),
            confirmed_by: if chosen.costs.is_some() {
                "hypopg"
            } else {
                "statistics"
            }
            .into(),
            together: None,
            planned_with: "generic".into(),
            sampled_values_helped: None,
            sampled_values_planned: None,
            serves_statements: u32::try_from(served.len()).unwrap_or(u32::MAX),
            read_saving_per_second: chosen.read_saving_per_second,
            write_cost_per_second: chosen.write_cost_per_second,
            drop_with: None,
            drops: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_rates_since_the_first_sight_of_a_table() {
        let first = WriteBaseline {
            counters: [50_000, 0, 0, 0],
            at: 100.0,
        };
        // The load before the first sight is not a write rate.
        assert_eq!(first.since(&first), Some([0.0; 4]));
        let later = WriteBaseline {
            counters: [50_100, 1_000, 900, 10],
            at: 110.0,
        };
        assert_eq!(later.since(&first), Some([10.0, 100.0, 90.0, 1.0]));
        // Under a second: no rate yet.
        let soon = WriteBaseline {
            at: 100.5,
            ..later.clone()
        };
        assert_eq!(soon.since(&first), Some([0.0; 4]));
        // A statistics reset: counters went back.
        let reset = WriteBaseline {
            counters: [0, 0, 0, 0],
            at: 120.0,
        };
        assert_eq!(reset.since(&later), None);
    }
}
