//! The index advisor: from the slowest statements of pg_stat_statements to
//! ready `CREATE INDEX CONCURRENTLY` statements, confirmed by a
//! hypothetical index where the `hypopg` extension is installed.
//!
//! For each of the top statements by total time: parse it ([`predicates`]),
//! take the columns of its equality, range and IN predicates, the columns
//! joined to an outer column compared with a value (`c.ticket_id` of `… ON
//! c.ticket_id = t.id WHERE t.id = $1`, taken as equalities), the
//! expressions over one column compared with a value (`lower(email) =
//! lower($1)`, for an expression index) and (with a LIMIT) its ORDER BY per
//! table, or, for a table compared only in an `OR` of such predicates, one
//! index per branch, planned together (a BitmapOr); resolve the table through the catalog; skip small tables (under
//! [`MIN_ROWS`]) and candidates whose leading column (or expression, by the
//! server's `pg_get_indexdef` text) already leads an index; a table
//! compared only with `LIKE` gets no suggestion but, in [`NotAdvised`], the
//! unconfirmed pattern index that would serve prefix values (a generic plan
//! of `LIKE $1` never uses one); order equality columns most selective
//! first and drop low-selectivity ones using `pg_stats`; then, with hypopg,
//! EXPLAIN the statement's generic plan with and without the hypothetical
//! index and keep the candidate only if the cost drops by at least
//! [`MIN_SAVING`] (an expression index is kept only so confirmed: the
//! server then checked it can hold the expression). Identifiers are quoted;
//! expressions are rebuilt from the parsed statement and checked to stand
//! as one element of one `CREATE INDEX`; nothing from a statement is
//! interpolated into SQL but the statement itself under EXPLAIN (and the
//! hypothetical index, as a parameter of hypopg's function), and that only
//! through [`super::planner`] (the planner role, never the agent's). Each
//! statement is advised on in a savepoint of its own, and skips are counted
//! by reason; a statement without a suggestion is listed with its reason
//! ([`NotAdvised`]). The candidates are not suggested one per statement:
//! at the end of the pass each table's are chosen from its whole workload
//! (`selection.rs`, fed by `workload.rs`: a composite serves the
//! statements of its prefixes, read savings are weighed against write
//! cost), with the drops that go with them (`drops.rs`).
//!
//! This file is the pass, in order: pick the statements, open the planner
//! session, plan each in its savepoint, confirm with hypopg, count the
//! skips, choose per table. Beside it: `advice.rs` (what is published),
//! `predicates/` (what a statement filters), `candidates.rs` (what to
//! index for one table's use), `plan.rs` (what a plan says), `reasons.rs`
//! (why not), `sampled.rs` (custom plans for sampled parameter values),
//! `fixed.rs` (suggestions kept as planned), `workload.rs` and
//! `selection.rs` (the whole-workload choice), `updates.rs`, `drops.rs`,
//! `cadence.rs` and `impact/` (whether a new index helped).

mod advice;
mod cadence;
mod candidates;
pub mod drops;
mod fixed;
pub mod impact;
mod plan;
pub mod predicates;
mod reasons;
mod sampled;
mod selection;
mod updates;
mod workload;

pub use advice::{Advice, IndexSuggestion, NotAdvised};
use candidates::{Element, index_target, only_patterns};
pub use plan::NESTED_LOOP_ROWS;
use plan::{Plan, collect_seq_scans, largest_nested_loop};
use reasons::{Reason, Why};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::ReadError;
use super::planner::{Mode, PlanError, Planner, Session, Statement};
use super::plans::{PlanChanges, Planned};
use super::readers::statements::{StatementView, StatementsReader};
use crate::db::TimedTransaction;

const TABLE: &str = include_str!("../../../sql/queries/advisor_table.sql");
const INDEXES: &str = include_str!("../../../sql/queries/advisor_indexes.sql");
const PATTERN: &str = include_str!("../../../sql/queries/advisor_pattern.sql");
const INDEX_EXPRESSIONS: &str = include_str!("../../../sql/queries/advisor_index_expressions.sql");
const STATS: &str = include_str!("../../../sql/queries/advisor_stats.sql");
const ROLES: &str = include_str!("../../../sql/queries/advisor_roles.sql");

/// Tables with fewer rows are not worth an index.
pub const MIN_ROWS: i64 = 10_000;
/// Columns with at most this many distinct values are not selective.
pub const LOW_DISTINCT: f64 = 10.0;
/// Least cost reduction (a share) for a hypopg-confirmed suggestion.
pub const MIN_SAVING: f64 = 0.1;
/// Statements considered per pass (the worst by total time).
pub const STATEMENTS_CONSIDERED: usize = 20;

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The advisor of one database.
#[derive(Debug)]
pub struct IndexAdvisor {
    database: Arc<str>,
    statements: Arc<StatementsReader>,
    planner: Option<Planner>,
    plan_timeout: Duration,
    /// How long a pass may plan, so it ends (and publishes its advice)
    /// inside the runner's deadline.
    planning_time: Duration,
    /// Statements whose planning ran past its deadline: not planned again
    /// (a statement built to hang costs one deadline, not one per pass).
    timed_out: Mutex<HashSet<i64>>,
    /// Statements considered per pass.
    considered: usize,
    /// Whether a pass had statements to consider (until then it runs on
    /// every runner pass, see `cadence.rs`).
    warm: std::sync::atomic::AtomicBool,
    /// Each table's write counters when first seen (see `workload.rs`).
    write_baselines: Mutex<HashMap<i64, workload::WriteBaseline>>,
    latest: crate::pg::Latest<Advice>,
    /// The generic plans' shapes, pass after pass (see `crate::pg::plans`).
    plans: Arc<PlanChanges>,
}

#[derive(Clone, Debug)]
struct Table {
    oid: i64,
    schema: String,
    name: String,
    rows: i64,
}

/// Tables of one statement advised on, at most.
const TABLES_PER_STATEMENT: usize = 16;

/// Sequentially scanned relations of one plan looked up for the stats,
/// at most.
const SCANNED_RELATIONS: usize = 16;

/// Statements remembered as timed out, at most (then forgotten at once).
const TIMED_OUT_CAPACITY: usize = 10_000;

/// Each planned statement's `statement_timeout`, at most.
pub const PLAN_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);

/// The planner connection of one pass, opened on first use; after a
/// failure to open it or a deadline, nothing more is planned this pass.
struct PassPlanner {
    session: Option<Session>,
    spent: bool,
    /// Past it, nothing more is planned this pass.
    until: std::time::Instant,
}

impl IndexAdvisor {
    /// An advisor over the statements `statements` reads, planning through
    /// `planner` (without one, suggestions come from statistics alone).
    /// Each plan runs under `read_timeout`'s half, at most
    /// [`PLAN_STATEMENT_TIMEOUT`], so a pass stays inside the runner's
    /// deadline.
    pub fn new(
        database: Arc<str>,
        statements: Arc<StatementsReader>,
        planner: Option<Planner>,
        read_timeout: Duration,
    ) -> Self {
        Self {
            statements,
            planner,
            plan_timeout: (read_timeout / 2)
                .clamp(Duration::from_millis(50), PLAN_STATEMENT_TIMEOUT),
            planning_time: read_timeout / 2,
            timed_out: Mutex::default(),
            considered: STATEMENTS_CONSIDERED,
            warm: std::sync::atomic::AtomicBool::new(false),
            write_baselines: Mutex::default(),
            latest: crate::pg::Latest::default(),
            plans: Arc::new(PlanChanges::new(database.clone())),
            database,
        }
    }

    /// The same advisor considering the worst `n` statements per pass
    /// instead of [`STATEMENTS_CONSIDERED`] (benches measure 200).
    #[doc(hidden)]
    pub fn considering(mut self, n: usize) -> Self {
        self.considered = n.max(1);
        self
    }

    /// The last pass's advice (`None` until one succeeded).
    pub fn latest(&self) -> Option<Arc<Advice>> {
        self.latest.get()
    }

    /// The plan changes of the statements it plans.
    pub fn plan_changes(&self) -> &Arc<PlanChanges> {
        &self.plans
    }

    /// The planner, when one is configured.
    pub fn planner(&self) -> Option<&Planner> {
        self.planner.as_ref()
    }

    async fn table(
        tx: &TimedTransaction<'_>,
        parts: &[String],
        role: Option<&str>,
    ) -> Result<Option<Table>, ReadError> {
        let (schema, name) = match parts {
            [schema, name] => (Some(schema.as_str()), name.as_str()),
            [name] => (None, name.as_str()),
            _ => return Ok(None),
        };
        let Some(row) = tx.query_opt(TABLE, &[&schema, &name, &role]).await? else {
            return Ok(None);
        };
        Ok(Some(Table {
            oid: row.try_get(0)?,
            schema: row.try_get(1)?,
            name: row.try_get(2)?,
            rows: row.try_get(3)?,
        }))
    }

    /// The plan of `statement` through this pass's planner session.
    async fn plan(
        &self,
        pass: &mut PassPlanner,
        queryid: i64,
        statement: Statement<'_>,
        mode: Mode<'_>,
    ) -> Result<Plan, PlanError> {
        if self.planner.is_none() {
            return Err(PlanError::NotConfigured);
        }
        if self
            .timed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&queryid)
        {
            return Err(PlanError::Timeout);
        }
        if pass.spent {
            return Err(PlanError::Unavailable(
                "an earlier failure in this pass".into(),
            ));
        }
        if std::time::Instant::now() >= pass.until {
            return Err(PlanError::PassDeadline);
        }
        self.open_session(pass).await?;
        let session = pass.session.as_mut().ok_or(PlanError::NotConfigured)?;
        let result = session.plan(statement, mode).await;
        if matches!(result, Err(PlanError::Unavailable(_))) {
            // The session broke: nothing more this pass.
            pass.session = None;
            pass.spent = true;
        }
        if matches!(result, Err(PlanError::Timeout)) {
            pass.session = None;
            pass.spent = true;
            let mut timed_out = self
                .timed_out
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if timed_out.len() >= TIMED_OUT_CAPACITY {
                timed_out.clear();
            }
            timed_out.insert(queryid);
        }
        let json = result?;
        let root = json
            .pointer("/0/Plan")
            .ok_or_else(|| PlanError::Failed("no plan in EXPLAIN's output".into()))?;
        let mut seq_scans = Vec::new();
        collect_seq_scans(root, &mut seq_scans);
        Ok(Plan {
            nested_loop: largest_nested_loop(root, 0),
            cost: root
                .get("Total Cost")
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| PlanError::Failed("no cost in EXPLAIN's output".into()))?,
            seq_scans,
            shape: matches!(mode, Mode::Generic).then(|| crate::pg::plans::Shape::of(root)),
        })
    }

    /// Opens this pass's planner session unless it is open or spent.
    /// Opened before the first statement, not on the first plan: the
    /// column statistics are read through it, so whether a statement's
    /// come from the planner's view or the agent's must not depend on
    /// which statements came before it.
    async fn open_session(&self, pass: &mut PassPlanner) -> Result<(), PlanError> {
        let planner = self.planner.as_ref().ok_or(PlanError::NotConfigured)?;
        if pass.session.is_some() {
            return Ok(());
        }
        if pass.spent {
            return Err(PlanError::Unavailable(
                "an earlier failure in this pass".into(),
            ));
        }
        match planner.session(self.plan_timeout).await {
            Ok(session) => {
                pass.session = Some(session);
                Ok(())
            }
            Err(error) => {
                pass.spent = true;
                tracing::warn!(database = %self.database, %error, "the index advisor cannot plan");
                Err(error)
            }
        }
    }

    /// The roles (listed in `PERFSCOPE_PLAN_ROLES`) that ran each queryid.
    async fn roles(
        &self,
        tx: &TimedTransaction<'_>,
        queryids: &[i64],
    ) -> Result<HashMap<i64, String>, ReadError> {
        let Some(planner) = &self.planner else {
            return Ok(HashMap::new());
        };
        if planner.roles().is_empty() || queryids.is_empty() {
            return Ok(HashMap::new());
        }
        let roles: Vec<&str> = planner.roles().iter().map(String::as_str).collect();
        let mut out = HashMap::new();
        for row in tx.query(ROLES, &[&queryids, &roles]).await? {
            out.insert(row.try_get(0)?, row.try_get(1)?);
        }
        Ok(out)
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let hypopg: bool = tx
            .query_one(
                "SELECT /* perfscope */ EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')",
                &[],
            )
            .await?
            .try_get(0)?;
        let snapshot = self.statements.latest().unwrap_or_default();
        // The worst statements by total time, those the planner may plan
        // (a listed role's) first, so other roles' statements never crowd
        // them out; the rest fill what is left (advice from statistics).
        let candidates: Vec<&StatementView> = snapshot
            .statements
            .iter()
            .filter(|s| s.raw.is_some() && s.text.is_some())
            .take(self.considered * 5)
            .collect();
        let ids: Vec<i64> = candidates.iter().map(|s| s.queryid).collect();
        let roles = self.roles(tx, &ids).await?;
        let (plannable, others): (Vec<&StatementView>, Vec<&StatementView>) = candidates
            .into_iter()
            .partition(|s| roles.contains_key(&s.queryid));
        let considered: Vec<&StatementView> = plannable
            .into_iter()
            .chain(others)
            .take(self.considered)
            .collect();
        let mut work = PassWork {
            advice: Advice {
                hypopg,
                ..Advice::default()
            },
            found: BTreeMap::new(),
            fixed: fixed::Fixed::new(),
            tables: HashMap::new(),
            planner: PassPlanner {
                session: None,
                spent: false,
                until: std::time::Instant::now() + self.planning_time,
            },
            calls_window: workload::calls_window(&snapshot),
            planned: Vec::new(),
        };
        if !considered.is_empty() {
            self.warm.store(true, std::sync::atomic::Ordering::Relaxed);
            if let Err(error) = self.open_session(&mut work.planner).await
                && !matches!(error, PlanError::NotConfigured)
            {
                *work.advice.skipped.entry(error.reason()).or_default() += 1;
            }
        }
        for statement in considered {
            // Each statement in its own error boundary: one that makes a
            // catalog read fail is skipped and counted, never the pass.
            tx.batch_execute("/* perfscope */ SAVEPOINT perfscope_advice")
                .await?;
            let role = roles.get(&statement.queryid).map(String::as_str);
            match self.advise(tx, &mut work, statement, role).await {
                Ok(()) => {
                    tx.batch_execute("/* perfscope */ RELEASE SAVEPOINT perfscope_advice")
                        .await?;
                }
                Err(error) => {
                    tx.batch_execute("/* perfscope */ ROLLBACK TO SAVEPOINT perfscope_advice")
                        .await?;
                    *work.advice.skipped.entry("catalog_error").or_default() += 1;
                    work.advice.not_advised.push(self.not_advised(
                        statement,
                        "catalog_error",
                        Vec::new(),
                    ));
                    tracing::debug!(database = %self.database, queryid = statement.queryid, %error, "statement skipped by the advisor");
                }
            }
        }
        let updated =
            updates::by_table(snapshot.statements.iter().filter_map(|s| s.raw.as_deref()));
        self.plans.record(
            std::mem::take(&mut work.planned),
            snapshot.resets_detected,
            std::time::SystemTime::now(),
        );
        self.confirm_claims(&mut work).await;
        if let Some(session) = work.planner.session.take() {
            session.close().await;
        }
        self.choose(tx, &mut work, &updated).await?;
        self.latest.set(work.advice);
        Ok(())
    }

    /// The entry saying `statement` got no suggestion, and why.
    fn not_advised(
        &self,
        statement: &StatementView,
        reason: &'static str,
        tables: Vec<String>,
    ) -> NotAdvised {
        NotAdvised {
            database: self.database.to_string(),
            queryid: statement.queryid.to_string(),
            reason: reason.into(),
            statement: statement.text.as_deref().map(str::to_owned),
            tables: Some(tables),
            calls: u64::try_from(statement.cumulative.calls).unwrap_or(0),
            total_ms: statement.cumulative.total_ms,
            create_statement: None,
        }
    }

    /// Advice for one statement; one without a suggestion is listed in
    /// [`Advice::not_advised`] with its reason.
    async fn advise(
        &self,
        tx: &TimedTransaction<'_>,
        work: &mut PassWork,
        statement: &StatementView,
        role: Option<&str>,
    ) -> Result<(), ReadError> {
        let mut why = Why::default();
        let tables = self
            .advise_tables(tx, work, statement, role, &mut why)
            .await?;
        if let Some(reason) = why.reason() {
            *work.advice.skipped.entry(reason).or_default() += 1;
            let mut entry = self.not_advised(statement, reason, tables);
            if why.table == Some(Reason::PatternUnconfirmed) {
                entry.create_statement = why.pattern.take();
            }
            work.advice.not_advised.push(entry);
        }
        Ok(())
    }

    /// Advice for each table `statement` filters; what the tables were
    /// written as (for [`NotAdvised::tables`]).
    async fn advise_tables(
        &self,
        tx: &TimedTransaction<'_>,
        work: &mut PassWork,
        statement: &StatementView,
        role: Option<&str>,
        why: &mut Why,
    ) -> Result<Vec<String>, ReadError> {
        let (Some(raw), Some(text)) = (&statement.raw, &statement.text) else {
            return Ok(Vec::new());
        };
        let reading = predicates::read(raw);
        let planned = role.map(|role| Statement { sql: raw, role });
        // Every top SELECT, UPDATE or DELETE is planned, read by the parser
        // or not: its plan tells the stats why it is slow (a sequential
        // scan of a large table, a large nested loop) even where no index
        // is a candidate.
        let plannable = matches!(
            crate::db::statement::parse(text).verb,
            crate::db::statement::Verb::Select
                | crate::db::statement::Verb::Update
                | crate::db::statement::Verb::Delete
        );
        let before = if plannable {
            self.plan_statement(work, statement, planned).await
        } else {
            None
        };
        let uses = match reading {
            Ok(analysis) if !analysis.supported => {
                why.statement("unsupported");
                Vec::new()
            }
            Ok(analysis) if analysis.uses.is_empty() => {
                why.statement("no_candidate");
                Vec::new()
            }
            Ok(analysis) => analysis.uses,
            Err(_) => {
                work.advice.unparsable += 1;
                why.statement("unparsable");
                Vec::new()
            }
        };
        // A few tables: each costs catalog reads, and a statement can name
        // hundreds.
        let mut uses = uses;
        uses.truncate(TABLES_PER_STATEMENT);
        let written: Vec<String> = uses.iter().map(|u| u.table.clone()).collect();
        for table_use in &uses {
            let key = (table_use.parts.clone(), role.map(str::to_owned));
            if let std::collections::hash_map::Entry::Vacant(slot) = work.tables.entry(key) {
                slot.insert(Self::table(tx, &table_use.parts, role).await?);
            }
        }
        if let Some(plan) = &before {
            self.note_plan(tx, work, statement.queryid, plan, &uses, role)
                .await?;
        }
        if uses.is_empty() {
            return Ok(written);
        }
        let samples = sampled::samples(
            raw,
            planned.is_some() && before.is_some() && work.advice.hypopg,
        );
        for table_use in uses {
            let key = (table_use.parts.clone(), role.map(str::to_owned));
            // A copy: the pass's work is borrowed mutably below.
            let Some(Some(table)) = work.tables.get(&key).cloned() else {
                why.table(Reason::TableNotFound);
                continue;
            };
            let table = &table;
            if table.rows < MIN_ROWS {
                why.table(Reason::SmallTable);
                continue;
            }
            if only_patterns(&table_use) {
                Self::pattern(tx, table, &table_use, why).await?;
                continue;
            }
            let (indexes, low_only) = match self
                .indexes(tx, &mut work.planner, table, &table_use, false)
                .await?
            {
                Ok(indexes) => (indexes, false),
                // Real values may make an unselective column pay.
                Err(Reason::LowSelectivity) if !samples.is_empty() => match self
                    .indexes(tx, &mut work.planner, table, &table_use, true)
                    .await?
                {
                    Ok(indexes) => (indexes, true),
                    Err(reason) => {
                        why.table(reason);
                        continue;
                    }
                },
                // Beside predicates no index serves (few distinct values),
                // a LIKE may still be served by a pattern index.
                Err(Reason::LowSelectivity) if !table_use.patterns.is_empty() => {
                    why.table(Reason::LowSelectivity);
                    Self::pattern(tx, table, &table_use, why).await?;
                    continue;
                }
                Err(reason) => {
                    why.table(reason);
                    continue;
                }
            };
            let targets: Vec<String> = indexes.iter().map(|c| index_target(table, c)).collect();
            let hypothetical: Vec<String> = targets
                .iter()
                .map(|t| format!("CREATE INDEX ON {t}"))
                .collect();
            // The set is planned together: an OR's branches are served only
            // by an index each (a BitmapOr).
            let case = sampled::Case {
                statement,
                planned,
                table,
                indexes: &indexes,
                targets: &targets,
                hypothetical: &hypothetical,
                samples: &samples,
            };
            if low_only {
                // Only real values can show such an index pays.
                if self.advise_sampled(work, case).await {
                    why.advised = true;
                } else {
                    why.table(Reason::LowSelectivity);
                    if !table_use.patterns.is_empty() {
                        Self::pattern(tx, table, &table_use, why).await?;
                    }
                }
                continue;
            }
            let (cost_before, cost_after) = match (&before, planned) {
                (Some(before), Some(planned)) if work.advice.hypopg => {
                    let after = self
                        .plan(
                            &mut work.planner,
                            statement.queryid,
                            planned,
                            Mode::Hypothetical(&hypothetical),
                        )
                        .await;
                    match after {
                        Ok(after)
                            if before.cost > 0.0
                                && (1.0 - after.cost / before.cost) >= MIN_SAVING =>
                        {
                            (Some(before.cost), Some(after.cost))
                        }
                        // Planned, but the planner would not use it enough
                        // for unknown values; perhaps for real ones.
                        Ok(_) => {
                            if self.advise_sampled(work, case).await {
                                why.advised = true;
                            } else {
                                why.table(Reason::NoSaving);
                            }
                            continue;
                        }
                        Err(error) => {
                            *work.advice.skipped.entry(error.reason()).or_default() += 1;
                            (None, None)
                        }
                    }
                }
                _ => (None, None),
            };
            // An expression index only once hypopg planned it: the server
            // then checked it can hold the expression (immutable, of the
            // column's type), which statistics alone cannot tell.
            if cost_after.is_none()
                && indexes
                    .iter()
                    .flatten()
                    .any(|c| matches!(c, Element::Expression(_)))
            {
                why.table(Reason::ExpressionUnconfirmed);
                continue;
            }
            why.advised = true;
            if let [columns] = indexes.as_slice() {
                // One index: a candidate of the table's whole-workload
                // selection.
                let figures = workload::Figures {
                    queryid: statement.queryid,
                    text: text.clone(),
                    raw: raw.clone(),
                    role: role.map(str::to_owned),
                    calls: u64::try_from(statement.cumulative.calls).unwrap_or(0),
                    total_ms: statement.cumulative.total_ms,
                    cost_before: before.as_ref().map(|b| b.cost),
                };
                let unserved = self.not_advised(statement, "write_cost", written.clone());
                work.found
                    .entry(table.oid)
                    .or_insert_with(|| workload::TableCandidates::new(table.clone()))
                    .add(
                        columns.clone(),
                        figures,
                        cost_before.zip(cost_after),
                        unserved,
                    );
            } else {
                // An OR's indexes serve it only all together: a set the
                // selection does not split, suggested as planned.
                let costs = cost_before.zip(cost_after);
                let saving = costs.map_or_else(
                    || selection::statistics_saving(table.rows),
                    |(before, after)| before - after,
                );
                let set = fixed::FixedSet {
                    table,
                    indexes: &indexes,
                    targets: &targets,
                    costs,
                    planned_with: "generic",
                    sampled: None,
                    read_saving_per_second: statement.cumulative.calls as f64
                        / work.calls_window.unwrap_or(1.0).max(1.0)
                        * saving,
                };
                self.add_fixed(&mut work.fixed, statement, set);
            }
        }
        Ok(written)
    }

    /// The statement's generic plan through the pass's planner, or `None`
    /// (the reason counted) when it cannot be planned.
    async fn plan_statement(
        &self,
        work: &mut PassWork,
        statement: &StatementView,
        planned: Option<Statement<'_>>,
    ) -> Option<Plan> {
        let plan = match planned {
            None if self.planner.is_some() => Err(PlanError::RoleNotListed),
            None => Err(PlanError::NotConfigured),
            Some(planned) => {
                self.plan(&mut work.planner, statement.queryid, planned, Mode::Generic)
                    .await
            }
        };
        match plan {
            Ok(mut plan) => {
                if let Some(shape) = plan.shape.take() {
                    work.planned.push(Planned {
                        queryid: statement.queryid,
                        text: statement.text.clone(),
                        shape,
                        cumulative: statement.cumulative,
                    });
                }
                Some(plan)
            }
            Err(error) => {
                *work.advice.skipped.entry(error.reason()).or_default() += 1;
                None
            }
        }
    }

    /// What the stats say of a statement from its plan: the large tables
    /// it reads sequentially (its own tables first, by the parser's
    /// names; the others by the plan's relation names along the role's
    /// search path) and its largest nested loop without an index on the
    /// inner side.
    async fn note_plan(
        &self,
        tx: &TimedTransaction<'_>,
        work: &mut PassWork,
        queryid: i64,
        plan: &Plan,
        uses: &[predicates::TableUse],
        role: Option<&str>,
    ) -> Result<(), ReadError> {
        let mut large: Vec<(String, i64)> = Vec::new();
        // A few: each may cost a catalog lookup, and a statement can name
        // hundreds of tables.
        for relation in plan.seq_scans.iter().take(SCANNED_RELATIONS) {
            // This statement's own tables only (the cache holds earlier
            // statements' too: they must not change this one's finding).
            let own = uses
                .iter()
                .filter_map(|u| work.tables.get(&(u.parts.clone(), role.map(str::to_owned))))
                .flatten()
                .find(|t| t.name == *relation)
                .cloned();
            let table = match own {
                Some(table) => Some(table),
                None => {
                    let key = (vec![relation.clone()], role.map(str::to_owned));
                    if let std::collections::hash_map::Entry::Vacant(slot) =
                        work.tables.entry(key.clone())
                    {
                        slot.insert(Self::table(tx, std::slice::from_ref(relation), role).await?);
                    }
                    work.tables.get(&key).cloned().flatten()
                }
            };
            if let Some(table) = table.filter(|t| t.rows >= MIN_ROWS) {
                large.push((format!("{}.{}", table.schema, table.name), table.rows));
            }
        }
        // In a stable order.
        large.sort();
        large.dedup();
        if !large.is_empty() {
            work.advice.seq_scans.insert(queryid, large);
        }
        if let Some(loop_rows) = plan.nested_loop {
            work.advice.nested_loops.insert(queryid, loop_rows);
        }
        Ok(())
    }
}

/// What one pass builds up.
struct PassWork {
    advice: Advice,
    /// Table oid → every top statement's candidate on it, for the
    /// whole-workload selection at the end of the pass.
    found: BTreeMap<i64, workload::TableCandidates>,
    /// Suggestions kept as planned (an OR's set, sampled values): not
    /// weighed by the selection.
    fixed: fixed::Fixed,
    /// Seconds pg_stat_statements' counters cover (`None`: unknown).
    calls_window: Option<f64>,
    /// (name parts, role) → the table.
    tables: HashMap<(Vec<String>, Option<String>), Option<Table>>,
    planner: PassPlanner,
    /// The statements' generic plans, for the plan changes.
    planned: Vec<Planned>,
}

/// Once warm (see `cadence.rs`), the advisor runs on every this-many
/// runner passes (each of its passes EXPLAINs up to
/// [`STATEMENTS_CONSIDERED`] statements a few times: generic, with the
/// hypothetical indexes, a composite's claims, sampled values).
pub const ADVISOR_EVERY: u64 = 4;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("orders"), "\"orders\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }
}
