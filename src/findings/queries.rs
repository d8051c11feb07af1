//! Statements worth a look: the slow and N+1 statements of the timed pool,
//! and pg_stat_statements' worst statements with the reasons they are listed.

use std::time::Duration;

use super::figures::{SourceFigures, Window};
use super::{Kind, Severity};
use crate::db::DbInsights;
#[cfg(feature = "postgres")]
use crate::db::statement::Verb;

/// A statement worth a look: slow, or repeated per request (N+1).
///
/// Without the admin token the statement text and table are left out
/// (they may name objects an outsider should not learn); kinds, routes,
/// counts and timings stay.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct QueryFinding {
    /// `slow_query`, `n_plus_one` or `plan_regression` (at least twice as
    /// slow since its generic plan changed).
    pub kind: String,
    /// Where the top-level figures (`calls`, `totalMs`, `meanMs`,
    /// `maxMs`) come from: `app` (the timed pool of this process) or
    /// `pg_stat_statements`; for a slow statement both know,
    /// pg_stat_statements (it counts every execution), the slow log's
    /// figures being in `app`.
    pub source: String,
    /// Every source that knows it: `app`, `pg_stat_statements`, or both (a
    /// slow statement both know is one finding, joined by fingerprint).
    pub sources: Vec<String>,
    /// How serious it is.
    pub severity: Severity,
    /// What was seen and what to do.
    pub message: String,
    /// The normalized statement (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub statement: Option<String>,
    /// Its main table (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub table: Option<String>,
    /// The route template that issued it, when known.
    #[oai(skip_serializing_if_is_none)]
    pub route: Option<String>,
    /// A stable id of the normalized statement (hex).
    pub fingerprint: String,
    /// Executions counted (slow ones, or requests for N+1).
    pub calls: u64,
    /// Total time of those executions, ms.
    pub total_ms: f64,
    /// Mean time, ms.
    pub mean_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// For N+1: the most executions seen in one request.
    #[oai(skip_serializing_if_is_none)]
    pub per_request: Option<u32>,
    /// For a slow statement: the slow log's figures and the window they
    /// cover (`slow_log`), when this process's pool ran it.
    #[oai(skip_serializing_if_is_none)]
    pub app: Option<SourceFigures>,
    /// For a slow statement: pg_stat_statements' figures and the window
    /// they cover (`since_previous_read` or `since_reset`).
    #[oai(skip_serializing_if_is_none)]
    pub pg_stat_statements: Option<SourceFigures>,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// The worst statements of the in-process slow log and the N+1 suspects,
/// at most `limit` of each; `slow_log` is the span the slow log covers.
pub fn query_findings(
    db: &DbInsights,
    admin: bool,
    limit: usize,
    slow_log: &Window,
) -> Vec<QueryFinding> {
    let mut findings = Vec::new();
    for suspect in db.n_plus_one.suspects().into_iter().take(limit) {
        let route = suspect.route.to_string();
        let message = if admin {
            format!(
                "{route} ran `{}` up to {} times in one request ({} requests): load the rows in one query (a JOIN or `= ANY($1)`) instead of one per item.",
                suspect.statement.normalized, suspect.max_per_request, suspect.requests
            )
        } else {
            format!(
                "{route} ran one statement up to {} times in one request ({} requests): an N+1 pattern; load the rows in one query.",
                suspect.max_per_request, suspect.requests
            )
        };
        findings.push(QueryFinding {
            kind: Kind::NPlusOne.into(),
            source: "app".into(),
            severity: if suspect.max_per_request >= db.n_plus_one.threshold() * 5 {
                Severity::High
            } else {
                Severity::Medium
            },
            message,
            statement: admin.then(|| suspect.statement.normalized.to_string()),
            table: admin.then(|| suspect.statement.model.to_string()),
            route: Some(route),
            fingerprint: format!("{:016x}", suspect.statement.fingerprint),
            calls: suspect.requests,
            total_ms: 0.0,
            mean_ms: 0.0,
            max_ms: 0.0,
            per_request: Some(suspect.max_per_request),
            sources: vec!["app".into()],
            app: None,
            pg_stat_statements: None,
        });
    }
    let threshold = db.slow_threshold();
    for slow in db.slow_log.summary().into_iter().take(limit) {
        let mean = slow.total / u32::try_from(slow.count.max(1)).unwrap_or(u32::MAX);
        let from = slow
            .route
            .as_deref()
            .map_or_else(String::new, |route| format!(" from {route}"));
        let message = format!(
            "A `{}` statement{from} ran slower than {} ms {} times (mean {:.0} ms, max {:.0} ms).",
            slow.statement.verb.as_str(),
            threshold.as_millis(),
            slow.count,
            millis(mean),
            millis(slow.max)
        );
        findings.push(QueryFinding {
            kind: Kind::SlowQuery.into(),
            source: "app".into(),
            severity: if slow.max >= threshold * 5 {
                Severity::High
            } else {
                Severity::Medium
            },
            message,
            statement: admin.then(|| slow.statement.normalized.to_string()),
            table: admin.then(|| slow.statement.model.to_string()),
            route: slow.route.as_deref().map(str::to_owned),
            fingerprint: format!("{:016x}", slow.statement.fingerprint),
            calls: slow.count,
            total_ms: millis(slow.total),
            mean_ms: millis(mean),
            max_ms: millis(slow.max),
            per_request: None,
            sources: vec!["app".into()],
            app: Some(SourceFigures {
                calls: slow.count,
                total_ms: millis(slow.total),
                mean_ms: millis(mean),
                max_ms: millis(slow.max),
                window: slow_log.clone(),
            }),
            pg_stat_statements: None,
        });
    }
    findings
}

#[cfg(feature = "postgres")]
/// Rows per call over which a statement is flagged as returning too much.
pub const MANY_ROWS_PER_CALL: f64 = 1_000.0;
#[cfg(feature = "postgres")]
/// Buffer hit ratio under which a statement is flagged as reading from disk.
pub const LOW_HIT_RATIO: f64 = 0.9;
#[cfg(feature = "postgres")]
/// Blocks a statement must have read before its hit ratio means anything.
pub const MIN_BLOCKS_READ: i64 = 1_000;
#[cfg(feature = "postgres")]
/// Temporary-file blocks written (8 kB each) over the window past which a
/// statement run more than once is said to spill its sorts and hashes:
/// 1 MB.
pub const MIN_TEMP_BLOCKS: i64 = 128;

/// pg_stat_statements' worst statements (by total time, at most `limit`
/// per database) of every watched database that have a reason to be
/// listed: over the slow threshold, a sequential scan of a large table in
/// their plan (from the index advisor), a low buffer hit ratio, or many rows
/// per call.
#[cfg(feature = "postgres")]
pub fn pg_findings(
    watched: &crate::pg::Watched,
    admin: bool,
    slow_threshold: Duration,
    limit: usize,
) -> Vec<QueryFinding> {
    let threshold_ms = millis(slow_threshold);
    let mut findings = Vec::new();
    for database in watched.all() {
        let snapshot = database.statements.latest().unwrap_or_default();
        let Some(read_at) = snapshot.at else {
            continue;
        };
        let advisor = database.advisor.latest().unwrap_or_default();
        let mut listed = 0;
        for statement in &snapshot.statements {
            if listed == limit {
                break;
            }
            let Some(text) = &statement.text else {
                continue;
            };
            let (f, window) = match statement.window {
                Some(window) if window.calls > 0 => (window, true),
                _ => (statement.cumulative, false),
            };
            let info = crate::db::statement::parse(text);
            let dml = matches!(
                info.verb,
                Verb::Select | Verb::Insert | Verb::Update | Verb::Delete | Verb::Merge
            );
            if f.calls == 0 || !dml {
                continue;
            }
            let mut why = Vec::new();
            if f.mean_ms() >= threshold_ms {
                why.push(format!(
                    "mean {:.0} ms is over the {:.0} ms threshold",
                    f.mean_ms(),
                    threshold_ms
                ));
            }
            if let Some(scans) = advisor.seq_scans.get(&statement.queryid) {
                for (table, rows) in scans {
                    let what = if admin {
                        table.as_str()
                    } else {
                        "a large table"
                    };
                    why.push(format!(
                        "its plan reads {what} (~{rows} rows) with a sequential scan"
                    ));
                }
            }
            if let Some((outer, inner)) = advisor.nested_loops.get(&statement.queryid) {
                why.push(format!(
                    "its plan joins ~{outer:.0} × ~{inner:.0} rows in a nested loop with no index on the inner side"
                ));
            }
            let reads_enough = f.shared_read >= MIN_BLOCKS_READ;
            if let Some(ratio) = f.hit_ratio().filter(|r| *r < LOW_HIT_RATIO && reads_enough) {
                why.push(format!(
                    "only {:.0}% of its blocks come from shared buffers: it reads from disk (a missing index, or a cache too small)",
                    ratio * 100.0
                ));
            }
            // Repeated: a one-off load's spill is no workload's.
            if f.temp_written >= MIN_TEMP_BLOCKS && f.calls >= 2 {
                why.push(format!(
                    "its sorts or hashes spill to temporary files ({:.1} MB written, {:.0} blocks per call): raise work_mem for it, or let an index give the order",
                    f.temp_written as f64 * 8.0 / 1024.0,
                    f.temp_written as f64 / f.calls as f64
                ));
            }
            let rows_per_call = f.rows as f64 / f.calls as f64;
            if info.verb == Verb::Select && rows_per_call >= MANY_ROWS_PER_CALL {
                why.push(format!(
                    "{rows_per_call:.0} rows per call: paginate, or aggregate in SQL"
                ));
            }
            if why.is_empty() {
                continue;
            }
            listed += 1;
            findings.push(QueryFinding {
                kind: Kind::SlowQuery.into(),
                source: "pg_stat_statements".into(),
                severity: if f.mean_ms() >= threshold_ms * 5.0 {
                    Severity::High
                } else {
                    Severity::Medium
                },
                message: format!(
                    "A `{}` statement in database {} ({} calls, {:.0} ms in all): {}.",
                    info.verb.as_str(),
                    database.name,
                    f.calls,
                    f.total_ms,
                    why.join("; ")
                ),
                statement: admin.then(|| text.to_string()),
                // A table the message names: the first (by name) its plan
                // scans sequentially when it has one, else the
                // statement's own.
                table: admin.then(|| {
                    advisor
                        .seq_scans
                        .get(&statement.queryid)
                        .and_then(|scans| scans.first())
                        .map_or_else(|| info.model.to_string(), |(table, _)| table.clone())
                }),
                route: None,
                // The reader's, from the server's own text: the slow
                // log's findings of the same statement share it.
                fingerprint: format!("{:016x}", statement.fingerprint.unwrap_or(info.fingerprint)),
                calls: u64::try_from(f.calls).unwrap_or(0),
                total_ms: f.total_ms,
                mean_ms: f.mean_ms(),
                max_ms: statement.max_ms,
                per_request: None,
                sources: vec!["pg_stat_statements".into()],
                app: None,
                pg_stat_statements: Some(SourceFigures {
                    calls: u64::try_from(f.calls).unwrap_or(0),
                    total_ms: f.total_ms,
                    mean_ms: f.mean_ms(),
                    max_ms: statement.max_ms,
                    window: if window {
                        Window::since_previous_read(snapshot.previous_at, read_at)
                    } else {
                        Window::since_reset(statement.since.or(snapshot.stats_reset), read_at)
                    },
                }),
            });
        }
    }
    findings
}
