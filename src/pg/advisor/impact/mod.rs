//! Proof that an index helped: when a new index appears on a watched
//! database (one perfscope suggested, or any other), the statements it was
//! meant to serve are compared before and after it, from pg_stat_statements'
//! cumulative counters, and judged `helped`, `no_effect`, `worse` or
//! `pending` (too few calls since).
//!
//! Why it is shaped so:
//! - **Which indexes are new**: each pass reads the valid indexes' oids;
//!   the first pass only records them (an index that was there when the
//!   agent started has no "before"), later passes track the oids not seen
//!   on the pass before. A new oid under the schema and name of an index
//!   gone since (REINDEX CONCURRENTLY, a column's type changed, the table
//!   created again) is that index rebuilt: its tracking carries over, it is
//!   not judged anew.
//! - **Which statements to judge**: those of perfscope's own suggestions
//!   for the table whose leading column (or expression) is the index's
//!   (remembered from the advisor's passes, since the advisor drops a
//!   suggestion once its index exists), else the top statements whose
//!   predicates ([`super::predicates::read`]) compare the index's leading
//!   column (or expression) of that table. An index that no statement
//!   uses is not reported: there is nothing to compare.
//! - **Before and after**: the index was absent when the previous pass
//!   read the catalog, so the statements snapshot that pass held was read
//!   before it: its cumulative counters are "before". It is present now,
//!   so the first statements read made after this sighting is the
//!   baseline of "after", and "after" is the counters' growth since
//!   (statements run between the two reads are left out: some ran with the
//!   index, some without). A counter going backwards (a reset of
//!   pg_stat_statements, or the entry evicted and back) restarts the
//!   baseline, so no delta is ever negative.
//! - **The verdict** needs [`MIN_CALLS_AFTER`] calls after. Mean time is
//!   the measure, the shared blocks touched per call (hit or read) the
//!   witness: time alone is noisy on a busy server, blocks are what an
//!   index saves. `helped`: mean time fell by [`SPEEDUP`]× or more and
//!   blocks per call fell; `worse`: mean time rose by [`SPEEDUP`]× or more
//!   and blocks per call rose; `no_effect` otherwise (the index may be
//!   dropped if nothing else needs it). Blocks read from disk alone would
//!   say nothing once the table is cached, so hits count too.
//! - **Bounded**: at most [`TRACKED_INDEXES`] indexes per database (the
//!   oldest dropped), [`STATEMENTS_PER_INDEX`] statements each, the newest
//!   [`REPORTED_INDEXES`] reported; the known set is read with a limit.
//!
//! Names (index, table, definition, statement) are admin-only in the
//! report ([`IndexImpact::redacted`]); nothing here writes SQL from a
//! name: the catalog is read with parameters only.
//!
//! This file is the tracker (which indexes are new, which statements they
//! serve, the counters around them); the rule is in `verdict.rs`, what is
//! shown in `report.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

mod report;
mod verdict;

pub use report::IndexImpact;
pub use verdict::{MIN_CALLS_AFTER, SPEEDUP, Verdict, judge};

use super::{IndexAdvisor, IndexSuggestion, predicates};
use crate::db::TimedTransaction;
use crate::pg::ReadError;
use crate::pg::readers::statements::{Figures, StatementsReader, StatementsSnapshot};
use verdict::{blocks_per_call, growth, rows_per_call, speedup};

const INDEXES: &str = include_str!("../../../../sql/queries/impact_indexes.sql");
const DETAILS: &str = include_str!("../../../../sql/queries/impact_index_details.sql");

/// Indexes tracked per database at most (the oldest dropped).
pub const TRACKED_INDEXES: usize = 50;
/// The newest tracked indexes reported.
pub const REPORTED_INDEXES: usize = 20;
/// Statements judged per index at most.
pub const STATEMENTS_PER_INDEX: usize = 5;
/// Index oids read per pass at most (the newest).
const KNOWN_INDEXES: i64 = 20_000;
/// Suggestions of the advisor remembered (the oldest forgotten).
const REMEMBERED_SUGGESTIONS: usize = 200;
/// Top statements searched for a new index perfscope did not suggest.
const STATEMENTS_SEARCHED: usize = 20;

/// One statement judged.
#[derive(Clone, Debug)]
struct Judged {
    queryid: i64,
    text: Option<Arc<str>>,
    /// Cumulative, read before the index existed.
    before: Figures,
    /// Cumulative, at the first read after the index was seen (or after a
    /// reset since).
    baseline: Option<Figures>,
    /// Growth since the baseline.
    after: Figures,
}

impl Judged {
    /// Takes the statement's cumulative figures from a read made after the
    /// index was seen; `reset`: pg_stat_statements was reset since the last
    /// one. A counter going backwards restarts the baseline.
    fn observe(&mut self, now: Figures, reset: bool) {
        let grown = match (&self.baseline, reset) {
            (Some(baseline), false) => growth(&now, baseline),
            _ => None,
        };
        match grown {
            Some(grown) => self.after = grown,
            None => {
                self.baseline = Some(now);
                self.after = Figures::default();
            }
        }
    }
}

/// A new index being watched.
#[derive(Clone, Debug)]
struct Tracked {
    oid: i64,
    /// `schema.index`.
    index: String,
    /// `schema.table`.
    table: String,
    definition: String,
    /// When this agent first saw it in the catalog.
    seen_at: SystemTime,
    /// pg_stat_statements resets detected, as of the last read observed.
    resets: u64,
    /// The statements came from perfscope's own suggestion.
    suggested: bool,
    /// It enforces uniqueness or a constraint.
    enforces: bool,
    statements: Vec<Judged>,
}

impl Tracked {
    /// Takes a statements read: only one made after the sighting counts.
    fn observe(&mut self, snapshot: &StatementsSnapshot) {
        if snapshot.at.is_none_or(|at| at <= self.seen_at) {
            return;
        }
        let reset = snapshot.resets_detected != self.resets;
        self.resets = snapshot.resets_detected;
        for judged in &mut self.statements {
            match snapshot
                .statements
                .iter()
                .find(|s| s.queryid == judged.queryid)
            {
                Some(view) => judged.observe(view.cumulative, reset),
                // Reset and not run since: whatever it counts from now on
                // ran after the index.
                None if reset => judged.observe(Figures::default(), true),
                // Evicted: it waits for its return (then with lower
                // counters: a new baseline).
                None => {}
            }
        }
    }
}

/// A new index as the catalog describes it.
#[derive(Clone, Debug)]
struct NewIndex {
    oid: i64,
    schema: String,
    name: String,
    table: String,
    definition: String,
    /// The leading column, `None` when the index leads with an expression.
    leading_column: Option<String>,
    /// The leading element as the server deparses it.
    leading: String,
    /// It enforces uniqueness or a constraint.
    enforces: bool,
}

impl NewIndex {
    /// Whether an index element of perfscope's (a column name, or an
    /// expression as the advisor rebuilt it) is this index's leading one.
    fn leads_with(&self, element: &str) -> bool {
        match &self.leading_column {
            Some(column) => column == element,
            None => predicates::same_expression(element, &self.leading),
        }
    }

    /// Whether a statement's use of a table compares this index's leading
    /// column (or expression) on its table.
    fn serves(&self, table_use: &predicates::TableUse) -> bool {
        let same_table = match table_use.parts.as_slice() {
            [schema, table] => *schema == self.schema && *table == self.table,
            [table] => *table == self.table,
            _ => false,
        };
        if !same_table {
            return false;
        }
        match &self.leading_column {
            Some(column) => {
                table_use.equality.contains(column)
                    || table_use.range.contains(column)
                    || table_use.order_by.contains(column)
                    || table_use.joined.contains(column)
                    || table_use.patterns.iter().any(|p| p.column == *column)
            }
            None => table_use
                .equality_expressions
                .iter()
                .chain(&table_use.range_expressions)
                .any(|e| predicates::same_expression(&e.sql, &self.leading)),
        }
    }
}

/// A suggestion of the advisor, remembered past its pass.
#[derive(Clone, Debug)]
struct Remembered {
    /// `schema.table`.
    table: String,
    /// Its leading element (a column, or an expression's SQL).
    leading: String,
    queryids: Vec<i64>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether the indexes already there were recorded.
    started: bool,
    /// Index oid → (schema oid, index name).
    known: HashMap<i64, (i64, String)>,
    /// The statements read the previous pass held (read before any index
    /// new on this pass existed).
    previous: Option<Arc<StatementsSnapshot>>,
    suggestions: VecDeque<Remembered>,
    /// Oldest first.
    tracked: VecDeque<Tracked>,
}

impl State {
    fn remember(&mut self, suggestions: &[IndexSuggestion]) {
        for suggestion in suggestions {
            let (Some(table), Some(leading)) = (
                &suggestion.table,
                suggestion.columns.as_ref().and_then(|c| c.first()),
            ) else {
                continue;
            };
            let queryids = suggestion.queryids.iter().filter_map(|q| q.parse().ok());
            let entry = match self
                .suggestions
                .iter_mut()
                .find(|r| r.table == *table && r.leading == *leading)
            {
                Some(entry) => entry,
                None => {
                    if self.suggestions.len() >= REMEMBERED_SUGGESTIONS {
                        self.suggestions.pop_front();
                    }
                    self.suggestions.push_back(Remembered {
                        table: table.clone(),
                        leading: leading.clone(),
                        queryids: Vec::new(),
                    });
                    let Some(entry) = self.suggestions.back_mut() else {
                        continue;
                    };
                    entry
                }
            };
            for queryid in queryids {
                if entry.queryids.len() < STATEMENTS_PER_INDEX && !entry.queryids.contains(&queryid)
                {
                    entry.queryids.push(queryid);
                }
            }
        }
    }

    /// The top statements of the previous read, parsed once per pass in
    /// which an index is new: `(queryid, its uses of tables)`.
    fn searched(&self) -> Vec<(i64, Vec<predicates::TableUse>)> {
        let Some(previous) = &self.previous else {
            return Vec::new();
        };
        previous
            .statements
            .iter()
            .filter_map(|s| Some((s.queryid, s.raw.as_deref()?)))
            .take(STATEMENTS_SEARCHED)
            .filter_map(|(queryid, raw)| Some((queryid, predicates::read(raw).ok()?.uses)))
            .collect()
    }

    /// The statements `index` is meant to serve, with their figures
    /// before it, and whether they come from perfscope's suggestion;
    /// `searched`: the top statements parsed ([`Self::searched`]).
    fn statements_for(
        &self,
        index: &NewIndex,
        searched: &[(i64, Vec<predicates::TableUse>)],
    ) -> (Vec<Judged>, bool) {
        let Some(previous) = &self.previous else {
            return (Vec::new(), false);
        };
        let judged = |queryid: i64| -> Option<Judged> {
            let view = previous.statements.iter().find(|s| s.queryid == queryid)?;
            (view.cumulative.calls > 0).then(|| Judged {
                queryid,
                text: view.text.clone(),
                before: view.cumulative,
                baseline: None,
                after: Figures::default(),
            })
        };
        let table = format!("{}.{}", index.schema, index.table);
        // Two suggestions may lead with the same column (and share a
        // statement): each statement once.
        let mut queryids: Vec<i64> = Vec::new();
        for remembered in self
            .suggestions
            .iter()
            .filter(|r| r.table == table && index.leads_with(&r.leading))
        {
            for queryid in &remembered.queryids {
                if !queryids.contains(queryid) {
                    queryids.push(*queryid);
                }
            }
        }
        let suggested: Vec<Judged> = queryids
            .into_iter()
            .filter_map(judged)
            .take(STATEMENTS_PER_INDEX)
            .collect();
        if !suggested.is_empty() {
            return (suggested, true);
        }
        let served = searched
            .iter()
            .filter(|(_, uses)| uses.iter().any(|u| index.serves(u)))
            .filter_map(|(queryid, _)| judged(*queryid))
            .take(STATEMENTS_PER_INDEX)
            .collect();
        (served, false)
    }

    /// Tracks the new indexes that serve a statement.
    fn track(&mut self, indexes: Vec<NewIndex>, seen_at: SystemTime) {
        if indexes.is_empty() {
            return;
        }
        let searched = self.searched();
        for index in indexes {
            let (statements, suggested) = self.statements_for(&index, &searched);
            if statements.is_empty() {
                continue;
            }
            if self.tracked.len() >= TRACKED_INDEXES {
                self.tracked.pop_front();
            }
            self.tracked.push_back(Tracked {
                oid: index.oid,
                index: format!("{}.{}", index.schema, index.name),
                table: format!("{}.{}", index.schema, index.table),
                definition: index.definition,
                enforces: index.enforces,
                seen_at,
                resets: self.previous.as_ref().map_or(0, |p| p.resets_detected),
                suggested,
                statements,
            });
        }
    }

    /// The newest tracked indexes' statements, newest index first.
    fn reports(&self, database: &str, now: SystemTime) -> Vec<IndexImpact> {
        self.tracked
            .iter()
            .rev()
            .take(REPORTED_INDEXES)
            .flat_map(|tracked| {
                tracked
                    .statements
                    .iter()
                    .map(move |judged| report(database, tracked, judged, now))
            })
            .collect()
    }
}

fn report(database: &str, tracked: &Tracked, judged: &Judged, now: SystemTime) -> IndexImpact {
    let (before, after) = (&judged.before, &judged.after);
    let measured = after.calls > 0;
    let mut impact = IndexImpact {
        database: database.to_owned(),
        index: Some(tracked.index.clone()),
        table: Some(tracked.table.clone()),
        definition: Some(tracked.definition.clone()),
        statement: judged.text.as_deref().map(str::to_owned),
        queryid: judged.queryid.to_string(),
        suggested: tracked.suggested,
        enforces: tracked.enforces,
        age_seconds: now
            .duration_since(tracked.seen_at)
            .unwrap_or_default()
            .as_secs_f64(),
        before_calls: u64::try_from(before.calls).unwrap_or(0),
        before_mean_ms: before.mean_ms(),
        before_blocks_per_call: blocks_per_call(before),
        before_rows_per_call: rows_per_call(before),
        after_calls: u64::try_from(after.calls).unwrap_or(0),
        after_mean_ms: measured.then(|| after.mean_ms()),
        after_blocks_per_call: measured.then(|| blocks_per_call(after)),
        after_rows_per_call: measured.then(|| rows_per_call(after)),
        speedup: measured.then(|| speedup(before, after)),
        verdict: judge(before, after).as_str().to_owned(),
        message: String::new(),
    };
    impact.message = impact.describe();
    impact
}
/// What changed between two reads of the indexes.
#[derive(Debug, Default, PartialEq, Eq)]
struct Changes {
    /// New indexes' oids, at most [`TRACKED_INDEXES`].
    new: Vec<i64>,
    /// `(old oid, new oid)` of indexes rebuilt under their name.
    rebuilt: Vec<(i64, i64)>,
}

/// What is new in `current` (oid → schema oid and name) since `known`: an
/// oid under the schema and name of a known index gone since is the same
/// index rebuilt (REINDEX CONCURRENTLY, a column's type changed, its table
/// created again), not a new one; and at
/// the read's limit, an old index can enter the window when a newer one
/// is dropped, so only oids above the window's floor count.
fn changes(known: &HashMap<i64, (i64, String)>, current: &HashMap<i64, (i64, String)>) -> Changes {
    let floor = (current.len() as i64 >= KNOWN_INDEXES)
        .then(|| current.keys().min().copied())
        .flatten();
    let mut unknown: Vec<i64> = current
        .keys()
        .filter(|oid| !known.contains_key(oid) && floor.is_none_or(|f| **oid > f))
        .copied()
        .collect();
    let mut out = Changes::default();
    if unknown.is_empty() {
        return out;
    }
    unknown.sort_unstable();
    let names: HashMap<&(i64, String), i64> = known
        .iter()
        .filter(|(oid, _)| !current.contains_key(oid))
        .map(|(oid, named)| (named, *oid))
        .collect();
    for oid in unknown {
        match current.get(&oid).and_then(|named| names.get(named)) {
            Some(old) => out.rebuilt.push((*old, oid)),
            None => out.new.push(oid),
        }
    }
    // The newest of a burst, as tracking drops the oldest first.
    let excess = out.new.len().saturating_sub(TRACKED_INDEXES);
    out.new.drain(..excess);
    out
}

/// The tracker of one database: a reader that runs after the advisor.
#[derive(Debug)]
pub struct IndexImpactTracker {
    database: Arc<str>,
    statements: Arc<StatementsReader>,
    advisor: Arc<IndexAdvisor>,
    state: Mutex<State>,
    latest: crate::pg::Latest<Vec<IndexImpact>>,
}

impl IndexImpactTracker {
    /// A tracker judging new indexes by the statements `statements` reads,
    /// remembering what `advisor` suggested.
    pub fn new(
        database: Arc<str>,
        statements: Arc<StatementsReader>,
        advisor: Arc<IndexAdvisor>,
    ) -> Self {
        Self {
            database,
            statements,
            advisor,
            state: Mutex::default(),
            latest: crate::pg::Latest::default(),
        }
    }

    /// The last pass's reports, newest index first (`None` until one
    /// succeeded).
    pub fn latest(&self) -> Option<Arc<Vec<IndexImpact>>> {
        self.latest.get()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        let mut current: HashMap<i64, (i64, String)> = HashMap::new();
        for row in tx.query(INDEXES, &[&KNOWN_INDEXES]).await? {
            current.insert(row.try_get(0)?, (row.try_get(1)?, row.try_get(2)?));
        }
        let snapshot = self.statements.latest();
        let Changes { new, rebuilt } = {
            let mut state = self.state();
            if let Some(advice) = self.advisor.latest() {
                state.remember(&advice.suggestions);
            }
            if !state.started {
                state.started = true;
                state.known = current;
                state.previous = snapshot;
                drop(state);
                self.latest.set(Vec::new());
                return Ok(());
            }
            changes(&state.known, &current)
        };
        let mut found = Vec::new();
        if !new.is_empty() {
            for row in tx.query(DETAILS, &[&new]).await? {
                found.push(NewIndex {
                    oid: row.try_get(0)?,
                    schema: row.try_get(1)?,
                    name: row.try_get(2)?,
                    table: row.try_get(3)?,
                    definition: row.try_get(4)?,
                    leading_column: row.try_get(5)?,
                    leading: row.try_get(6)?,
                    enforces: row.try_get(7)?,
                });
            }
        }
        let now = SystemTime::now();
        let mut state = self.state();
        state.track(found, now);
        for (old, new) in rebuilt {
            for tracked in state.tracked.iter_mut().filter(|t| t.oid == old) {
                tracked.oid = new;
            }
        }
        state.tracked.retain(|t| current.contains_key(&t.oid));
        if let Some(snapshot) = &snapshot {
            for tracked in &mut state.tracked {
                tracked.observe(snapshot);
            }
        }
        state.known = current;
        state.previous = snapshot;
        let reports = state.reports(&self.database, now);
        drop(state);
        self.latest.set(reports);
        Ok(())
    }
}

crate::pg::impl_reader!(IndexImpactTracker, "index_impact");

#[cfg(test)]
mod tests {
    use super::verdict::tests::figures;
    use super::*;

    #[test]
    fn a_counter_going_backwards_restarts_the_baseline() {
        let mut judged = Judged {
            queryid: 1,
            text: None,
            before: figures(100, 5_000.0, 40_000),
            baseline: None,
            after: Figures::default(),
        };
        judged.observe(figures(110, 5_100.0, 41_000), false);
        assert_eq!(judged.after, Figures::default());
        judged.observe(figures(140, 5_130.0, 41_100), false);
        assert_eq!(judged.after.calls, 30);
        // Evicted and back: lower counters, a new baseline, never negative.
        judged.observe(figures(5, 1.0, 20), false);
        assert_eq!(judged.after, Figures::default());
        judged.observe(figures(30, 3.0, 100), false);
        assert_eq!(judged.after.calls, 25);
        assert!(judged.after.total_ms >= 0.0);
        // A reset the statements reader saw: a new baseline even though
        // the counters grew past the old one since.
        judged.observe(figures(300, 30.0, 1_000), true);
        assert_eq!(judged.after, Figures::default());
    }

    #[test]
    fn only_reads_after_the_sighting_count() {
        let seen_at = SystemTime::now();
        let mut tracked = Tracked {
            oid: 1,
            index: "public.i".into(),
            table: "public.t".into(),
            definition: String::new(),
            seen_at,
            resets: 0,
            suggested: true,
            enforces: false,
            statements: vec![Judged {
                queryid: 7,
                text: None,
                before: figures(10, 100.0, 1_000),
                baseline: None,
                after: Figures::default(),
            }],
        };
        let view = |calls| crate::pg::readers::statements::StatementView {
            queryid: 7,
            text: None,
            raw: None,
            cumulative: figures(calls, calls as f64, calls),
            max_ms: 0.0,
            window: None,
            fingerprint: None,
            since: None,
            route_tag: None,
        };
        let read = |at, calls| StatementsSnapshot {
            at: Some(at),
            statements: vec![view(calls)],
            ..StatementsSnapshot::default()
        };
        tracked.observe(&read(seen_at - std::time::Duration::from_secs(1), 12));
        assert_eq!(tracked.statements[0].baseline, None);
        let later = seen_at + std::time::Duration::from_secs(1);
        tracked.observe(&read(later, 15));
        assert_eq!(tracked.statements[0].baseline.map(|b| b.calls), Some(15));
        tracked.observe(&read(later, 40));
        assert_eq!(tracked.statements[0].after.calls, 25);
        // A reset while the statement is out of pg_stat_statements: it
        // counts from zero when it is back, all of it after the index.
        tracked.observe(&StatementsSnapshot {
            at: Some(later),
            resets_detected: 1,
            ..StatementsSnapshot::default()
        });
        tracked.observe(&StatementsSnapshot {
            resets_detected: 1,
            ..read(later, 30)
        });
        assert_eq!(tracked.statements[0].after.calls, 30);
    }

    #[test]
    fn the_tracker_is_bounded_and_remembers_suggestions() {
        let mut state = State::default();
        let suggestion = |table: &str, queryid: i64| IndexSuggestion {
            database: "default".into(),
            table: Some(table.into()),
            columns: Some(vec!["c".into()]),
            create_statement: None,
            together: None,
            helps: None,
            queryids: vec![queryid.to_string()],
            calls: 1,
            total_ms: 1.0,
            cost_before: None,
            cost_after: None,
            estimated_saving: None,
            confirmed_by: "statistics".into(),
            planned_with: "generic".into(),
            ..IndexSuggestion::default()
        };
        let many: Vec<IndexSuggestion> = (0..REMEMBERED_SUGGESTIONS as i64 + 10)
            .map(|i| suggestion(&format!("public.t{i}"), i))
            .collect();
        state.remember(&many);
        state.remember(&many[many.len() - 1..]);
        assert_eq!(state.suggestions.len(), REMEMBERED_SUGGESTIONS);
        // A second suggestion leading with the same column, sharing a
        // statement: one entry, the statement once.
        let mut composite = many[many.len() - 1].clone();
        composite.columns = Some(vec!["c".into(), "d".into()]);
        state.remember(&[composite]);
        assert_eq!(state.suggestions.len(), REMEMBERED_SUGGESTIONS);
        assert_eq!(state.suggestions.back().map(|r| r.queryids.len()), Some(1));
        assert_eq!(state.suggestions[0].table, "public.t10");
        state.previous = Some(Arc::new(StatementsSnapshot {
            at: Some(SystemTime::now()),
            statements: (0..many.len() as i64)
                .map(|q| crate::pg::readers::statements::StatementView {
                    queryid: q,
                    text: None,
                    raw: None,
                    cumulative: figures(5, 5.0, 5),
                    max_ms: 0.0,
                    window: None,
                    fingerprint: None,
                    since: None,
                    route_tag: None,
                })
                .collect(),
            ..StatementsSnapshot::default()
        }));
        let indexes = (0..TRACKED_INDEXES as i64 + 5)
            .map(|i| NewIndex {
                oid: i,
                schema: "public".into(),
                name: format!("i{i}"),
                table: format!("t{}", i + 10),
                definition: String::new(),
                leading_column: Some("c".into()),
                leading: "c".into(),
                enforces: false,
            })
            .collect();
        state.track(indexes, SystemTime::now());
        assert_eq!(state.tracked.len(), TRACKED_INDEXES);
        assert!(state.tracked.iter().all(|t| t.suggested));
        assert_eq!(state.tracked[0].oid, 5);
        let reports = state.reports("default", SystemTime::now());
        assert_eq!(reports.len(), REPORTED_INDEXES);
        assert_eq!(reports[0].index.as_deref(), Some("public.i54"));
    }

    #[test]
    fn a_burst_of_new_indexes_keeps_the_newest() {
        let known: HashMap<i64, (i64, String)> = HashMap::from([(1, (1, "old".to_string()))]);
        let current: HashMap<i64, (i64, String)> = (1..=TRACKED_INDEXES as i64 + 11)
            .map(|oid| (oid, (1, format!("i{oid}"))))
            .collect();
        let found = changes(&known, &current);
        assert_eq!(found.new.len(), TRACKED_INDEXES);
        assert_eq!(found.new.first(), Some(&12));
        assert_eq!(found.new.last(), Some(&(TRACKED_INDEXES as i64 + 11)));
    }

    #[test]
    fn an_index_serves_statements_comparing_its_leading_column_on_its_table() {
        let index = |leading_column: Option<&str>, leading: &str| NewIndex {
            oid: 1,
            schema: "public".into(),
            name: "i".into(),
            table: "users".into(),
            definition: String::new(),
            leading_column: leading_column.map(str::to_owned),
            leading: leading.into(),
            enforces: false,
        };
        let serves = |index: &NewIndex, sql: &str| {
            predicates::read(sql)
                .expect("parses")
                .uses
                .iter()
                .any(|u| index.serves(u))
        };
        let by_id = index(Some("account_id"), "account_id");
        assert!(serves(&by_id, "SELECT * FROM users WHERE account_id = $1"));
        assert!(serves(
            &by_id,
            "SELECT * FROM public.users u WHERE u.account_id > $1"
        ));
        assert!(!serves(
            &by_id,
            "SELECT * FROM other.users WHERE account_id = $1"
        ));
        assert!(!serves(
            &by_id,
            "SELECT * FROM users WHERE name = $1 AND id = $2"
        ));
        assert!(!serves(
            &by_id,
            "SELECT * FROM accounts WHERE account_id = $1"
        ));
        let lower = index(None, "lower(email)");
        assert!(serves(
            &lower,
            "SELECT id FROM users WHERE lower(email) = lower($1)"
        ));
        assert!(!serves(&lower, "SELECT id FROM users WHERE email = $1"));
        assert!(lower.leads_with("lower(\"email\")"));
        assert!(!by_id.leads_with("name"));
    }

    #[test]
    fn a_rebuilt_index_is_not_new() {
        let named = |entries: &[(i64, i64, &str)]| -> HashMap<i64, (i64, String)> {
            entries
                .iter()
                .map(|(oid, schema, name)| (*oid, (*schema, (*name).to_owned())))
                .collect()
        };
        let known = named(&[(10, 1, "t_pkey"), (11, 1, "t_email")]);
        // t_email rebuilt (new oid, same schema and name), t_code created.
        let current = named(&[(10, 1, "t_pkey"), (20, 1, "t_email"), (21, 1, "t_code")]);
        assert_eq!(
            changes(&known, &current),
            Changes {
                new: vec![21],
                rebuilt: vec![(11, 20)],
            }
        );
        // The same name in another schema is another index.
        let current = named(&[(10, 1, "t_pkey"), (11, 1, "t_email"), (22, 2, "t_email")]);
        assert_eq!(changes(&known, &current).new, vec![22]);
        assert_eq!(changes(&known, &known), Changes::default());
    }

    #[test]
    fn an_index_that_did_not_help_may_be_dropped_unless_it_enforces_something() {
        let mut tracked = Tracked {
            oid: 1,
            index: "public.t_flag".into(),
            table: "public.t".into(),
            definition: String::new(),
            seen_at: SystemTime::now(),
            resets: 0,
            suggested: false,
            enforces: false,
            statements: Vec::new(),
        };
        let judged = Judged {
            queryid: 9,
            text: None,
            before: figures(100, 500.0, 31_900),
            baseline: Some(Figures::default()),
            after: figures(50, 110.0, 15_950),
        };
        let plain = report("default", &tracked, &judged, SystemTime::now());
        assert_eq!(plain.verdict, "no_effect");
        assert_eq!(
            plain.message,
            "index public.t_flag on public.t did not change statement 9: 319 to 319 blocks \
             per call, 5.0 ms to 2.2 ms; if no other statement needs it, it may be dropped"
        );
        tracked.enforces = true;
        let unique = report("default", &tracked, &judged, SystemTime::now());
        assert!(unique.enforces);
        assert!(
            unique
                .message
                .ends_with("it enforces uniqueness or a constraint, so it stays for that"),
            "{}",
            unique.message
        );
    }

    #[test]
    fn the_redacted_report_names_nothing() {
        let tracked = Tracked {
            oid: 1,
            index: "public.orders_customer".into(),
            table: "public.orders".into(),
            definition: "CREATE INDEX orders_customer ON public.orders USING btree (customer_id)"
                .into(),
            seen_at: SystemTime::now(),
            resets: 0,
            suggested: true,
            enforces: false,
            statements: Vec::new(),
        };
        let judged = Judged {
            queryid: 42,
            text: Some(Arc::from("select * from orders where customer_id = $1")),
            before: figures(100, 5_200.0, 40_000),
            baseline: Some(Figures::default()),
            after: figures(30, 27.0, 120),
        };
        let full = report("default", &tracked, &judged, SystemTime::now());
        assert_eq!(full.verdict, "helped");
        assert_eq!(
            full.message,
            "index public.orders_customer on public.orders cut \
             `select * from orders where customer_id = $1` from 52.0 ms to 0.90 ms (57.8×)"
        );
        let public = full.redacted();
        let text = format!("{public:?}");
        assert!(!text.contains("orders"), "{text}");
        assert!(!text.contains("customer"), "{text}");
        assert_eq!(
            public.message,
            "a new index cut statement 42 from 52.0 ms to 0.90 ms (57.8×)"
        );
    }
}
