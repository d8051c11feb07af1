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

use std::collections::BTreeMap;

use super::fixed::FixedSet;
use super::{Element, IndexAdvisor, MIN_SAVING, PassPlanner, PassWork, Table};
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
    /// (kept as planned: the selection weighs generic plans) when it helps
    /// at least one of them. Whether it did.
    pub(super) async fn advise_sampled(&self, work: &mut PassWork, case: Case<'_>) -> bool {
        let Some(planned) = case.planned else {
            return false;
        };
        let verdict = self
            .plan_samples(&mut work.planner, &mut work.advice.skipped, &case, planned)
            .await;
        let Some((before, after)) = verdict.best else {
            return false;
        };
        let statement = case.statement;
        let calls_per_second =
            statement.cumulative.calls as f64 / work.calls_window.unwrap_or(1.0).max(1.0);
        let set = FixedSet {
            table: case.table,
            indexes: case.indexes,
            targets: case.targets,
            costs: Some((before, after)),
            planned_with: "sampled_values",
            sampled: Some((verdict.helped, verdict.planned)),
            read_saving_per_second: calls_per_second * (before - after),
        };
        self.add_fixed(&mut work.fixed, statement, set);
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
