//! Advice from real parameter values: where the host app's pool sampled
//! the values a statement runs with ([`crate::db::samples`], in this
//! process only), a candidate the generic plan refused (no saving, or a
//! column too unselective on average) is planned again for each sample,
//! as a custom plan with and without the hypothetical index
//! ([`Mode::Sampled`]). An index that helps some of them (the rare values
//! of a skewed column) is suggested with `plannedWith: sampled_values` and
//! how many samples it helps; in the agent alone there are no samples and
//! the generic plan stays the basis (`plannedWith: generic`).
//!
//! A plain index, never a partial one: `WHERE status = 'urgent'` would
//! write a sampled value into the suggestion's statement, which the API
//! returns and an operator runs; the values never leave the process.
//!
//! Apart from `mod.rs` because it is a second basis for the same decision,
//! with its own inputs; the pass only calls it where the generic plan said
//! no.

use std::collections::{BTreeMap, HashMap};

use super::{Advice, Element, IndexAdvisor, IndexSuggestion, MIN_SAVING, PassPlanner, Table};
use crate::db::samples::{self, Sample};
use crate::pg::planner::{Mode, Statement};
use crate::pg::readers::statements::StatementView;

/// The samples of the statement whose text pg_stat_statements keeps as
/// `raw`, when they can be planned (a planner, the statement's role,
/// hypopg); empty otherwise.
pub(super) fn samples(raw: &str, plannable: bool) -> Vec<Sample> {
    if !plannable {
        return Vec::new();
    }
    samples::store().get(raw)
}

/// One candidate the generic plan refused, for one statement.
pub(super) struct Case<'a> {
    pub(super) statement: &'a StatementView,
    pub(super) planned: Option<Statement<'a>>,
    pub(super) table: &'a Table,
    /// The set of indexes, planned together (an OR's branches).
    pub(super) indexes: &'a [Vec<Element>],
    /// Each index's `"schema"."table" (…)`.
    pub(super) targets: &'a [String],
    /// Each index's `CREATE INDEX ON …`, for hypopg.
    pub(super) hypothetical: &'a [String],
    pub(super) samples: &'a [Sample],
}

/// What planning the samples showed.
#[derive(Debug, Default)]
struct Verdict {
    planned: u32,
    helped: u32,
    /// The costs before and after for the sample helped most.
    best: Option<(f64, f64)>,
}

impl IndexAdvisor {
    /// Plans `case`'s samples with and without its index; suggests it
    /// (into `found`) when it helps at least one of them. Whether it did.
    pub(super) async fn advise_sampled(
        &self,
        planner: &mut PassPlanner,
        advice: &mut Advice,
        found: &mut HashMap<(i64, Vec<Element>), IndexSuggestion>,
        case: Case<'_>,
    ) -> bool {
        let Some(planned) = case.planned else {
            return false;
        };
        let verdict = self
            .plan_samples(planner, &mut advice.skipped, &case, planned)
            .await;
        let Some((before, after)) = verdict.best else {
            return false;
        };
        let creates: Vec<String> = case
            .targets
            .iter()
            .map(|t| format!("CREATE INDEX CONCURRENTLY ON {t};"))
            .collect();
        let statement = case.statement;
        for (i, columns) in case.indexes.iter().enumerate() {
            let together: Vec<String> = creates
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, c)| c.clone())
                .collect();
            let entry = found
                .entry((case.table.oid, columns.clone()))
                .or_insert_with(|| IndexSuggestion {
                    database: self.database.to_string(),
                    table: Some(format!("{}.{}", case.table.schema, case.table.name)),
                    columns: Some(columns.iter().map(Element::name).collect()),
                    create_statement: Some(creates[i].clone()),
                    together: (!together.is_empty()).then_some(together),
                    helps: Some(Vec::new()),
                    queryids: Vec::new(),
                    calls: 0,
                    total_ms: 0.0,
                    cost_before: Some(before),
                    cost_after: Some(after),
                    estimated_saving: Some(1.0 - after / before),
                    confirmed_by: "hypopg".into(),
                    planned_with: "sampled_values".into(),
                    sampled_values_helped: Some(verdict.helped),
                    sampled_values_planned: Some(verdict.planned),
                });
            if let (Some(helps), Some(text)) = (entry.helps.as_mut(), statement.text.as_deref()) {
                helps.push(text.to_string());
            }
            entry.queryids.push(statement.queryid.to_string());
            entry.calls += u64::try_from(statement.cumulative.calls).unwrap_or(0);
            entry.total_ms += statement.cumulative.total_ms;
        }
        true
    }

    /// Each sample's custom plan, without and with the hypothetical index;
    /// a refused or failed plan is counted by its reason and left out.
    async fn plan_samples(
        &self,
        planner: &mut PassPlanner,
        skipped: &mut BTreeMap<&'static str, u64>,
        case: &Case<'_>,
        planned: Statement<'_>,
    ) -> Verdict {
        let queryid = case.statement.queryid;
        let mut verdict = Verdict::default();
        for sample in case.samples {
            let without = Mode::Sampled {
                values: sample,
                indexes: &[],
            };
            let with = Mode::Sampled {
                values: sample,
                indexes: case.hypothetical,
            };
            let before = match self.plan(planner, queryid, planned, without).await {
                Ok(plan) => plan.cost,
                Err(error) => {
                    *skipped.entry(error.reason()).or_default() += 1;
                    continue;
                }
            };
            let after = match self.plan(planner, queryid, planned, with).await {
                Ok(plan) => plan.cost,
                Err(error) => {
                    *skipped.entry(error.reason()).or_default() += 1;
                    continue;
                }
            };
            verdict.planned += 1;
            if before > 0.0 && 1.0 - after / before >= MIN_SAVING {
                verdict.helped += 1;
                let saving = 1.0 - after / before;
                if verdict.best.is_none_or(|(b, a)| saving > 1.0 - a / b) {
                    verdict.best = Some((before, after));
                }
            }
        }
        verdict
    }
}
