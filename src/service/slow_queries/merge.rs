//! One row per statement: the slow log's groups (one per statement and
//! route) folded by fingerprint, pg_stat_statements' entries (one per
//! queryid, role and nesting level) grouped by database and fingerprint,
//! and the two joined where both know a statement. Pure, so its rules
//! are tested without a server; `super::report` gathers the inputs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{AppFigures, PgFigures, SlowQueryEntry, Window, epoch, millis};
use crate::db::slow_log::SlowStatement;
use crate::db::statement::{self, StatementInfo};

/// Statements of each database chosen by mean and by total time (those
/// the slow log also knows are chosen whatever their rank).
pub(super) const PG_WORST: usize = 20;

/// One statement of the slow log, its routes folded.
#[derive(Debug)]
pub(super) struct AppStatement {
    info: Arc<StatementInfo>,
    /// The route with the most slow time (a known route before none).
    route: Option<(Arc<str>, Duration)>,
    calls: u64,
    total: Duration,
    max: Duration,
    last_at: SystemTime,
}

/// The slow log's groups, one per fingerprint, in their order.
pub(super) fn app_statements(groups: &[SlowStatement]) -> Vec<AppStatement> {
    let mut folded: Vec<AppStatement> = Vec::new();
    let mut index: HashMap<u64, usize> = HashMap::new();
    for group in groups {
        let route = group.route.clone().map(|r| (r, group.total));
        match index.get(&group.statement.fingerprint) {
            Some(&i) => {
                let row = &mut folded[i];
                row.calls += group.count;
                row.total += group.total;
                row.max = row.max.max(group.max);
                row.last_at = row.last_at.max(group.last_at);
                if let Some((r, t)) = route
                    && row.route.as_ref().is_none_or(|(_, known)| t > *known)
                {
                    row.route = Some((r, t));
                }
            }
            None => {
                index.insert(group.statement.fingerprint, folded.len());
                folded.push(AppStatement {
                    info: group.statement.clone(),
                    route,
                    calls: group.count,
                    total: group.total,
                    max: group.max,
                    last_at: group.last_at,
                });
            }
        }
    }
    folded
}

/// pg_stat_statements' counters of one entry (or a sum of them).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct Numbers {
    pub calls: i64,
    pub total_ms: f64,
    pub rows: i64,
    pub shared_hit: i64,
    pub shared_read: i64,
}

impl Numbers {
    fn add(&mut self, other: &Numbers) {
        self.calls += other.calls;
        self.total_ms += other.total_ms;
        self.rows += other.rows;
        self.shared_hit += other.shared_hit;
        self.shared_read += other.shared_read;
    }

    fn mean_ms(&self) -> f64 {
        if self.calls > 0 {
            self.total_ms / self.calls as f64
        } else {
            0.0
        }
    }

    fn hit_ratio(&self) -> Option<f64> {
        let touched = self.shared_hit + self.shared_read;
        (touched > 0).then(|| self.shared_hit as f64 / touched as f64)
    }
}

/// One pg_stat_statements entry with a text.
#[derive(Clone, Debug)]
pub(super) struct PgStatement {
    pub queryid: i64,
    /// Normalized by perfscope.
    pub text: Arc<str>,
    pub fingerprint: u64,
    /// Since its statistics started (`since`).
    pub cumulative: Numbers,
    /// Since the previous read, when there was one.
    pub window: Option<Numbers>,
    /// The slowest execution since `since`.
    pub max_ms: f64,
    /// When its statistics started: its own `stats_since` (17+), else the
    /// last reset.
    pub since: Option<SystemTime>,
    /// The route a sqlcommenter comment in the server's text names.
    pub route_tag: Option<Arc<str>>,
}

/// One watched database's last read.
#[derive(Clone, Debug)]
pub(super) struct PgDatabase {
    pub name: String,
    pub read_at: SystemTime,
    /// The read before, where windows start.
    pub previous_at: Option<SystemTime>,
    pub statements: Vec<PgStatement>,
}

/// One statement's entries in one database, summed.
#[derive(Debug)]
struct PgGroup<'a> {
    database: &'a PgDatabase,
    fingerprint: u64,
    /// The entry with the most time: its text and queryid are shown.
    lead: &'a PgStatement,
    entries: usize,
    numbers: Numbers,
    windowed: bool,
    max_ms: f64,
    since: Option<SystemTime>,
}

impl<'a> PgGroup<'a> {
    fn of(database: &'a PgDatabase, entries: &[&'a PgStatement]) -> Option<Self> {
        let lead = *entries
            .iter()
            .max_by(|a, b| a.cumulative.total_ms.total_cmp(&b.cumulative.total_ms))?;
        let mut window = Numbers::default();
        let mut cumulative = Numbers::default();
        let mut every_windowed = true;
        for entry in entries {
            cumulative.add(&entry.cumulative);
            match &entry.window {
                Some(w) => window.add(w),
                None => every_windowed = false,
            }
        }
        // The window only when it holds the whole statement and it ran in
        // it; else everything since the reset, as a first read shows it.
        let windowed = every_windowed && window.calls > 0 && database.previous_at.is_some();
        let numbers = if windowed { window } else { cumulative };
        (numbers.calls > 0).then(|| Self {
            database,
            fingerprint: lead.fingerprint,
            lead,
            entries: entries.len(),
            numbers,
            windowed,
            max_ms: entries.iter().map(|e| e.max_ms).fold(0.0, f64::max),
            since: entries.iter().filter_map(|e| e.since).min(),
        })
    }

    fn window(&self) -> Window {
        if self.windowed {
            Window::since_previous_read(self.database.previous_at, self.database.read_at)
        } else {
            Window::since_reset(self.since, self.database.read_at)
        }
    }

    fn figures(&self) -> PgFigures {
        PgFigures {
            calls: u64::try_from(self.numbers.calls).unwrap_or(0),
            mean_ms: self.numbers.mean_ms(),
            total_ms: self.numbers.total_ms,
            rows: self.numbers.rows,
            hit_ratio: self.numbers.hit_ratio(),
            window: self.window(),
            max_since_reset_ms: self.max_ms,
            entries: self.entries as u64,
        }
    }
}

/// Each database's statements grouped by fingerprint (in first-seen
/// order), and how many groups had executions.
fn groups(database: &PgDatabase) -> Vec<PgGroup<'_>> {
    let mut order: Vec<u64> = Vec::new();
    let mut by_fingerprint: HashMap<u64, Vec<&PgStatement>> = HashMap::new();
    for statement in &database.statements {
        by_fingerprint
            .entry(statement.fingerprint)
            .or_insert_with(|| {
                order.push(statement.fingerprint);
                Vec::new()
            })
            .push(statement);
    }
    order
        .iter()
        .filter_map(|f| PgGroup::of(database, by_fingerprint.get(f)?))
        .collect()
}

/// A database's groups worth listing: the worst [`PG_WORST`] by total and
/// by mean, and those the slow log knows; and how many were not chosen.
fn chosen<'a>(all: Vec<PgGroup<'a>>, app: &HashSet<u64>) -> (Vec<PgGroup<'a>>, u64) {
    let mut by_total: Vec<usize> = (0..all.len()).collect();
    by_total.sort_by(|&a, &b| all[b].numbers.total_ms.total_cmp(&all[a].numbers.total_ms));
    let mut by_mean = by_total.clone();
    by_mean.sort_by(|&a, &b| {
        all[b]
            .numbers
            .mean_ms()
            .total_cmp(&all[a].numbers.mean_ms())
    });
    let mut keep = vec![false; all.len()];
    for &i in by_total
        .iter()
        .take(PG_WORST)
        .chain(by_mean.iter().take(PG_WORST))
    {
        keep[i] = true;
    }
    for (i, group) in all.iter().enumerate() {
        keep[i] |= app.contains(&group.fingerprint);
    }
    let left_out = keep.iter().filter(|k| !**k).count() as u64;
    let chosen = all
        .into_iter()
        .zip(keep)
        .filter_map(|(group, keep)| keep.then_some(group))
        .collect();
    (chosen, left_out)
}

/// The merged list.
#[derive(Debug)]
pub(super) struct Merged {
    pub rows: Vec<SlowQueryEntry>,
    pub left_out: u64,
}

fn app_figures(app: &AppStatement, window: &Window) -> AppFigures {
    AppFigures {
        calls: app.calls,
        mean_ms: millis(app.total) / app.calls.max(1) as f64,
        max_ms: millis(app.max),
        total_ms: millis(app.total),
        last_seen: epoch(app.last_at),
        window: window.clone(),
    }
}

/// One row per statement: each database's chosen pg_stat_statements
/// groups, the slow log's statements joined to the group of the same
/// fingerprint with the most time (a statement two databases run is a row
/// each; the slow log's figures go to one), the slow log's others alone.
/// The most total time (of either source) first, at most `cap` rows.
pub(super) fn merge(
    app: Vec<AppStatement>,
    pg: Vec<PgDatabase>,
    app_window: &Window,
    route_of: impl Fn(u64) -> Option<Arc<str>>,
    cap: usize,
) -> Merged {
    let app_fingerprints: HashSet<u64> = app.iter().map(|a| a.info.fingerprint).collect();
    let mut left_out = 0;
    let mut pg_groups: Vec<PgGroup<'_>> = Vec::new();
    for database in &pg {
        let (chosen, skipped) = chosen(groups(database), &app_fingerprints);
        left_out += skipped;
        pg_groups.extend(chosen);
    }
    // Where each app statement goes: the group of its fingerprint with
    // the most time.
    let mut joined: HashMap<u64, usize> = HashMap::new();
    for (i, group) in pg_groups.iter().enumerate() {
        if !app_fingerprints.contains(&group.fingerprint) {
            continue;
        }
        let best = joined.entry(group.fingerprint).or_insert(i);
        if pg_groups[*best].numbers.total_ms < group.numbers.total_ms {
            *best = i;
        }
    }
    let mut app_by_fingerprint: HashMap<u64, AppStatement> =
        app.into_iter().map(|a| (a.info.fingerprint, a)).collect();
    let route = |app: Option<&AppStatement>, fingerprint: u64| {
        app.and_then(|a| a.route.as_ref().map(|(r, _)| r.clone()))
            .or_else(|| route_of(fingerprint))
            .map(|r| r.to_string())
    };
    let mut rows: Vec<SlowQueryEntry> =
        Vec::with_capacity(pg_groups.len() + app_by_fingerprint.len());
    for (i, group) in pg_groups.iter().enumerate() {
        let app = (joined.get(&group.fingerprint) == Some(&i))
            .then(|| app_by_fingerprint.remove(&group.fingerprint))
            .flatten();
        let info = statement::parse(&group.lead.text);
        let mut sources = Vec::with_capacity(2);
        if app.is_some() {
            sources.push("app".to_owned());
        }
        sources.push("pg_stat_statements".to_owned());
        rows.push(SlowQueryEntry {
            p50_ms: None,
            p95_ms: None,
            sources,
            database: Some(group.database.name.clone()),
            queryid: Some(group.lead.queryid.to_string()),
            statement: group.lead.text.to_string(),
            fingerprint: format!("{:016x}", group.fingerprint),
            operation: info.verb.as_str().into(),
            table: info.model.to_string(),
            route: route(app.as_ref(), group.fingerprint)
                .or_else(|| group.lead.route_tag.as_ref().map(|r| r.to_string())),
            app: app.as_ref().map(|a| app_figures(a, app_window)),
            pg_stat_statements: Some(group.figures()),
        });
    }
    for app in app_by_fingerprint.into_values() {
        rows.push(SlowQueryEntry {
            p50_ms: None,
            p95_ms: None,
            sources: vec!["app".to_owned()],
            database: None,
            queryid: None,
            statement: app.info.normalized.to_string(),
            fingerprint: format!("{:016x}", app.info.fingerprint),
            operation: app.info.verb.as_str().into(),
            table: app.info.model.to_string(),
            route: route(Some(&app), app.info.fingerprint),
            app: Some(app_figures(&app, app_window)),
            pg_stat_statements: None,
        });
    }
    let most = |row: &SlowQueryEntry| {
        let app = row.app.as_ref().map_or(0.0, |a| a.total_ms);
        let pg = row.pg_stat_statements.as_ref().map_or(0.0, |p| p.total_ms);
        app.max(pg)
    };
    rows.sort_by(|a, b| {
        most(b)
            .total_cmp(&most(a))
            .then_with(|| a.fingerprint.cmp(&b.fingerprint))
    });
    if rows.len() > cap {
        left_out += (rows.len() - cap) as u64;
        rows.truncate(cap);
    }
    Merged { rows, left_out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::figures::WindowKind;
    use std::sync::OnceLock;
    use std::time::UNIX_EPOCH;

    use crate::db::slow_log::{SlowLog, SlowQuery};

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    fn slow(log: &SlowLog, sql: &str, ms: u64, route: Option<&str>) {
        let entry = Arc::new(SlowQuery {
            statement: Arc::new(statement::parse(sql)),
            operation: "select".into(),
            duration: Duration::from_millis(ms),
            at: at(1_000),
            failed: false,
            route: OnceLock::new(),
        });
        if let Some(route) = route {
            let _ = entry.route.set(route.into());
        }
        log.push(entry);
    }

    fn numbers(calls: i64, total_ms: f64) -> Numbers {
        Numbers {
            calls,
            total_ms,
            ..Numbers::default()
        }
    }

    fn pg(queryid: i64, text: &str, cumulative: Numbers, window: Option<Numbers>) -> PgStatement {
        PgStatement {
            route_tag: None,
            queryid,
            text: statement::normalize(text).into(),
            fingerprint: statement::parse(text).fingerprint,
            cumulative,
            window,
            max_ms: cumulative.total_ms,
            since: Some(at(10)),
        }
    }

    fn database(statements: Vec<PgStatement>) -> PgDatabase {
        PgDatabase {
            name: "default".into(),
            read_at: at(2_000),
            previous_at: Some(at(1_990)),
            statements,
        }
    }

    fn window() -> Window {
        Window {
            kind: WindowKind::SlowLog,
            from: Some(5.0),
            to: 2_000.0,
            description: "since start".into(),
        }
    }

    #[test]
    fn both_sources_of_one_statement_make_one_row_with_both_windows() {
        let log = SlowLog::default();
        // The same statement from two routes, and once before its route
        // was known: one statement.
        for _ in 0..3 {
            slow(&log, "SELECT pg_sleep(0.12)", 120, Some("/slow"));
        }
        slow(&log, "select  pg_sleep(0.5)", 500, None);
        slow(&log, "SELECT pg_sleep(0.2)", 200, Some("/other"));
        slow(
            &log,
            "SELECT 'only here', pg_sleep(0.2)",
            200,
            Some("/alone"),
        );
        let merged = merge(
            app_statements(&log.summary()),
            vec![database(vec![
                // Two roles' entries of the same statement.
                pg(1, "SELECT pg_sleep($1)", numbers(6, 1_500.0), None),
                pg(
                    2,
                    "SELECT pg_sleep($1)",
                    numbers(1, 120.0),
                    Some(numbers(1, 120.0)),
                ),
                pg(
                    3,
                    "SELECT id FROM users WHERE id = $1",
                    numbers(40, 4.0),
                    Some(numbers(2, 0.2)),
                ),
            ])],
            &window(),
            |_| None,
            100,
        );
        assert_eq!(merged.left_out, 0);
        assert_eq!(merged.rows.len(), 3, "{:#?}", merged.rows);
        let sleep = &merged.rows[0];
        assert_eq!(sleep.statement, "select pg_sleep($1)");
        assert_eq!(sleep.sources, ["app", "pg_stat_statements"]);
        assert_eq!(sleep.queryid.as_deref(), Some("1"));
        assert_eq!(sleep.route.as_deref(), Some("/slow"));
        let app = sleep.app.as_ref().expect("the slow log's figures");
        assert_eq!(app.calls, 5);
        assert_eq!(app.max_ms, 500.0);
        assert_eq!(app.window.kind, WindowKind::SlowLog);
        let pg = sleep.pg_stat_statements.as_ref().expect("pg's figures");
        // One entry has no window: the whole statement since the reset.
        assert_eq!((pg.calls, pg.entries), (7, 2));
        assert_eq!(pg.window.kind, WindowKind::SinceReset);
        assert_eq!(pg.window.from, Some(10.0));
        assert_eq!(pg.max_since_reset_ms, 1_500.0);
        // Only the slow log knows this one; only pg this one.
        let alone = merged
            .rows
            .iter()
            .find(|r| r.route.as_deref() == Some("/alone"))
            .expect("the app-only statement");
        assert_eq!(alone.sources, ["app"]);
        assert!(alone.pg_stat_statements.is_none() && alone.database.is_none());
        let users = &merged.rows[2];
        assert_eq!(users.sources, ["pg_stat_statements"]);
        let figures = users.pg_stat_statements.as_ref().expect("figures");
        assert_eq!(figures.calls, 2);
        assert_eq!(figures.window.kind, WindowKind::SincePreviousRead);
        assert_eq!(figures.window.from, Some(1_990.0));
        assert!(users.app.is_none());
    }

    #[test]
    fn the_list_is_capped_and_says_what_it_left_out() {
        let log = SlowLog::default();
        for i in 0..5 {
            slow(
                &log,
                &format!("SELECT pg_sleep(1) AS app_{i}"),
                100 + i,
                None,
            );
        }
        // 50 statements: 20 by total and 20 by mean chosen (the same 20
        // here), plus the one the slow log knows.
        let mut statements: Vec<PgStatement> = (0..50)
            .map(|i| {
                pg(
                    i,
                    &format!("SELECT c{i} FROM t"),
                    numbers(1, i as f64),
                    None,
                )
            })
            .collect();
        statements.push(pg(99, "SELECT pg_sleep(1) AS app_0", numbers(1, 0.5), None));
        let merged = merge(
            app_statements(&log.summary()),
            vec![database(statements)],
            &window(),
            |_| None,
            10,
        );
        assert_eq!(merged.rows.len(), 10);
        // 30 not among the worst, and 21 + 4 - 10 past the cap.
        assert_eq!(merged.left_out, 30 + 15);
        let fingerprints: HashSet<&str> =
            merged.rows.iter().map(|r| r.fingerprint.as_str()).collect();
        assert_eq!(fingerprints.len(), 10, "one row per statement");
    }
}
