//! The slow-query report both front ends show: one row per statement, from
//! the in-process slow log of the timed pool (its executions over
//! `SLOW_QUERY_THRESHOLD`, with the route that issued them) and from
//! pg_stat_statements (each watched database's worst statements by mean
//! and by total time), merged by fingerprint where both know a statement
//! (`pg_sleep(0.5)` as the app sent it is `pg_sleep($1)` as the server
//! stores it: one statement, one row).
//!
//! The two sources count over different spans of time, so each row keeps
//! each source's figures apart, each with the [`Window`] it covers; none
//! is added to the other. The list is capped ([`MAX_ENTRIES`]) and says how
//! many statements it left out. Its types derive poem-openapi's `Object`
//! because they are also the API's documented answer (one shape, not a
//! copy).

mod merge;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use poem_openapi::Object;

use crate::Perfscope;
use crate::findings::figures::epoch;
pub use crate::findings::figures::{Window, WindowKind};

/// Rows returned at most.
pub const MAX_ENTRIES: usize = 100;

/// The timed pool's slow executions of one statement in this process.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct AppFigures {
    /// Executions over the threshold in the window (not every execution:
    /// faster ones are not logged).
    pub calls: u64,
    /// Their mean, ms.
    pub mean_ms: f64,
    /// The slowest, ms.
    pub max_ms: f64,
    /// Their total, ms.
    pub total_ms: f64,
    /// When the newest finished, seconds since the Unix epoch.
    pub last_seen: f64,
    /// The span these figures cover (`slow_log`).
    pub window: Window,
}

/// pg_stat_statements' figures of one statement in one database: every
/// execution by any role, the agent's own left out.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct PgFigures {
    /// Executions in the window.
    pub calls: u64,
    /// Mean time per execution, ms.
    pub mean_ms: f64,
    /// Total time, ms.
    pub total_ms: f64,
    /// Rows returned or affected.
    pub rows: i64,
    /// Shared-buffer hit ratio, when a block was touched.
    #[oai(skip_serializing_if_is_none)]
    pub hit_ratio: Option<f64>,
    /// The span `calls`, `meanMs`, `totalMs`, `rows` and `hitRatio`
    /// cover: `since_previous_read` when every entry of the statement ran
    /// between the last two reads, else `since_reset`.
    pub window: Window,
    /// The slowest execution, ms, since the entry's statistics started
    /// (pg_stat_statements keeps no maximum per window, so this is always
    /// since the reset, whatever `window` is).
    pub max_since_reset_ms: f64,
    /// pg_stat_statements entries summed into this row (one per role,
    /// nesting level and queryid of the same fingerprint).
    pub entries: u64,
}

/// One statement.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct SlowQueryEntry {
    /// Which sources know it: `app` (this process's timed pool),
    /// `pg_stat_statements`, or both.
    pub sources: Vec<String>,
    /// The watched database (when pg_stat_statements knows it).
    #[oai(skip_serializing_if_is_none)]
    pub database: Option<String>,
    /// pg_stat_statements' queryid, as a string: the entry with the most
    /// time when several share the fingerprint.
    #[oai(skip_serializing_if_is_none)]
    pub queryid: Option<String>,
    /// The normalized statement (no literal values): pg_stat_statements'
    /// text when it knows it, else the app's.
    pub statement: String,
    /// A stable id of the statement (hex), the same from both sources.
    pub fingerprint: String,
    /// Its SQL verb.
    pub operation: String,
    /// Its main table.
    pub table: String,
    /// The route template that issued it, when known: the one with the
    /// most slow time, else the last that ran it; for a statement only
    /// pg_stat_statements saw, the route of the sqlcommenter comment in
    /// the text the server kept (another app's tags: the first
    /// execution's, URL-decoded, at most 128 characters).
    #[oai(skip_serializing_if_is_none)]
    pub route: Option<String>,
    /// Median of every execution of this statement by this process's timed
    /// pool (not only the slow ones), ms, within 1 % (a quantile sketch);
    /// absent when the pool has not run it: pg_stat_statements keeps no
    /// distribution, only a mean and a max.
    #[oai(skip_serializing_if_is_none)]
    pub p50_ms: Option<f64>,
    /// 95th percentile of the same executions, ms (see `p50Ms`).
    #[oai(skip_serializing_if_is_none)]
    pub p95_ms: Option<f64>,
    /// The slow log's figures (`app`).
    #[oai(skip_serializing_if_is_none)]
    pub app: Option<AppFigures>,
    /// pg_stat_statements' figures.
    #[oai(skip_serializing_if_is_none)]
    pub pg_stat_statements: Option<PgFigures>,
}

/// The slow-query report.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SlowQueries {
    /// `SLOW_QUERY_THRESHOLD`, ms.
    pub threshold_ms: f64,
    /// One row per statement, the most total time (of either source)
    /// first; at most `cap`.
    pub queries: Vec<SlowQueryEntry>,
    /// The most rows listed.
    pub cap: u64,
    /// Statements known but not listed: past the cap, or not among a
    /// database's worst by mean or by total (0 when the list is whole).
    pub left_out: u64,
}

/// The slow log's window: since the process started, or since the oldest
/// execution the log still holds.
pub(crate) fn slow_log_window(perfscope: &Perfscope, now: SystemTime) -> Window {
    let db = perfscope.db();
    let threshold = db.slow_threshold().as_millis();
    match db.slow_log.dropped_before() {
        Some(oldest) => Window {
            kind: WindowKind::SlowLog,
            from: Some(epoch(oldest)),
            to: epoch(now),
            description: format!(
                "executions over {threshold} ms in this process since the oldest the slow log still holds (it keeps the last {})",
                crate::db::slow_log::DEFAULT_SLOW_LOG_CAPACITY
            ),
        },
        None => Window {
            kind: WindowKind::SlowLog,
            from: Some(epoch(
                now.checked_sub(perfscope.uptime()).unwrap_or(UNIX_EPOCH),
            )),
            to: epoch(now),
            description: format!("executions over {threshold} ms in this process since it started"),
        },
    }
}

/// The report: one row per statement of the slow log and of each watched
/// database's pg_stat_statements (only `database`'s when given).
pub fn report(perfscope: &Perfscope, database: Option<&str>) -> SlowQueries {
    #[cfg(not(feature = "postgres"))]
    let _ = database;
    let db = perfscope.db();
    let now = SystemTime::now();
    let app = merge::app_statements(&db.slow_log.summary());
    #[cfg(feature = "postgres")]
    let pg = pg_statements(perfscope, database);
    #[cfg(not(feature = "postgres"))]
    let pg = Vec::new();
    let merged = merge::merge(
        app,
        pg,
        &slow_log_window(perfscope, now),
        |fingerprint| db.route_of(fingerprint),
        MAX_ENTRIES,
    );
    let mut rows = merged.rows;
    for row in &mut rows {
        if let Ok(fingerprint) = u64::from_str_radix(&row.fingerprint, 16) {
            row.p50_ms = percentile(db, fingerprint, 0.5);
            row.p95_ms = percentile(db, fingerprint, 0.95);
        }
    }
    SlowQueries {
        threshold_ms: db.slow_threshold().as_secs_f64() * 1_000.0,
        queries: rows,
        cap: MAX_ENTRIES as u64,
        left_out: merged.left_out,
    }
}

/// The `q` quantile (ms) of a statement's executions by this process's
/// timed pool, from its sketch.
fn percentile(db: &crate::db::DbInsights, fingerprint: u64, q: f64) -> Option<f64> {
    let sketch = db.statement_sketches.get(&fingerprint)?;
    sketch.quantile(q).map(|seconds| seconds * 1_000.0)
}

/// Every statement with a text of each watched database (only `only`'s),
/// its agent's own left out by the reader, with the windows of its read.
#[cfg(feature = "postgres")]
fn pg_statements(perfscope: &Perfscope, only: Option<&str>) -> Vec<merge::PgDatabase> {
    let mut databases = Vec::new();
    for database in perfscope.watched().all() {
        if only.is_some_and(|name| name != &*database.name) {
            continue;
        }
        let snapshot = database.statements.latest().unwrap_or_default();
        let Some(at) = snapshot.at else { continue };
        let statements = snapshot
            .statements
            .iter()
            .filter_map(|s| {
                Some(merge::PgStatement {
                    queryid: s.queryid,
                    text: s.text.clone()?,
                    fingerprint: s.fingerprint?,
                    cumulative: s.cumulative.into(),
                    window: s.window.map(Into::into),
                    max_ms: s.max_ms,
                    since: s.since.or(snapshot.stats_reset),
                    route_tag: s.route_tag.clone(),
                })
            })
            .collect();
        databases.push(merge::PgDatabase {
            name: database.name.to_string(),
            read_at: at,
            previous_at: snapshot.previous_at,
            statements,
        });
    }
    databases
}

#[cfg(feature = "postgres")]
impl From<crate::pg::readers::statements::Figures> for merge::Numbers {
    fn from(f: crate::pg::readers::statements::Figures) -> Self {
        Self {
            calls: f.calls,
            total_ms: f.total_ms,
            rows: f.rows,
            shared_hit: f.shared_hit,
            shared_read: f.shared_read,
        }
    }
}

/// `d` in ms.
fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}
