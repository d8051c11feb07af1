//! The slow-query report both front ends show: the union of the
//! in-process slow log of the timed pool (statements over
//! `SLOW_QUERY_THRESHOLD`, with the route that issued them) and
//! pg_stat_statements' worst statements of each watched database, by mean
//! and by total time. Its types derive poem-openapi's `Object` because
//! they are also the API's documented answer (one shape, not a copy).

use poem_openapi::Object;

use crate::Perfscope;

/// Entries returned at most.
const MAX_ENTRIES: usize = 100;

/// One slow statement.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SlowQueryEntry {
    /// Where it was seen: `app` (this process's timed pool) or
    /// `pg_stat_statements`.
    pub source: String,
    /// The watched database (`pg_stat_statements` entries).
    #[oai(skip_serializing_if_is_none)]
    pub database: Option<String>,
    /// pg_stat_statements' queryid, as a string (`pg_stat_statements`
    /// entries).
    #[oai(skip_serializing_if_is_none)]
    pub queryid: Option<String>,
    /// The normalized statement (no literal values).
    pub statement: String,
    /// A stable id of the normalized statement (hex).
    pub fingerprint: String,
    /// Its SQL verb.
    pub operation: String,
    /// Its main table.
    pub table: String,
    /// The route template that issued it, when known.
    #[oai(skip_serializing_if_is_none)]
    pub route: Option<String>,
    /// Slow executions.
    pub calls: u64,
    /// Mean duration, ms.
    pub mean_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Median of every execution of this statement by this process's timed
    /// pool (not only the slow ones), ms, within 1 % (a quantile sketch);
    /// absent when the pool has not run it: pg_stat_statements keeps no
    /// distribution, only `meanMs` and `maxMs`.
    #[oai(skip_serializing_if_is_none)]
    pub p50_ms: Option<f64>,
    /// 95th percentile of the same executions, ms (see `p50Ms`).
    #[oai(skip_serializing_if_is_none)]
    pub p95_ms: Option<f64>,
    /// Total, ms.
    pub total_ms: f64,
    /// Rows returned or affected (`pg_stat_statements` entries).
    #[oai(skip_serializing_if_is_none)]
    pub rows: Option<i64>,
    /// Shared-buffer hit ratio (`pg_stat_statements` entries).
    #[oai(skip_serializing_if_is_none)]
    pub hit_ratio: Option<f64>,
    /// Whether the figures cover the window since the previous read
    /// (`true`) or everything since the last stats reset.
    pub windowed: bool,
    /// When the newest finished (app) or was read (pg_stat_statements),
    /// seconds since the Unix epoch.
    pub last_seen: f64,
}

/// The slow-query report.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SlowQueries {
    /// `SLOW_QUERY_THRESHOLD`, ms.
    pub threshold_ms: f64,
    /// Worst total first.
    pub queries: Vec<SlowQueryEntry>,
}

/// The report: the slow
/// log, then each watched database's worst statements (only `database`'s
/// when given).
pub fn report(perfscope: &Perfscope, database: Option<&str>) -> SlowQueries {
    #[cfg(not(feature = "postgres"))]
    let _ = database;
    let db = perfscope.db();
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut queries: Vec<SlowQueryEntry> = db
        .slow_log
        .summary()
        .into_iter()
        .take(MAX_ENTRIES)
        .map(|slow| {
            let millis = |d: std::time::Duration| d.as_secs_f64() * 1_000.0;
            SlowQueryEntry {
                source: "app".into(),
                database: None,
                queryid: None,
                statement: slow.statement.normalized.to_string(),
                fingerprint: format!("{:016x}", slow.statement.fingerprint),
                operation: slow.statement.verb.as_str().into(),
                table: slow.statement.model.to_string(),
                route: slow.route.as_deref().map(str::to_owned),
                calls: slow.count,
                mean_ms: millis(slow.total) / slow.count.max(1) as f64,
                max_ms: millis(slow.max),
                p50_ms: percentile(db, slow.statement.fingerprint, 0.5),
                p95_ms: percentile(db, slow.statement.fingerprint, 0.95),
                total_ms: millis(slow.total),
                rows: None,
                hit_ratio: None,
                windowed: false,
                last_seen: slow
                    .last_at
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0.0, |d| d.as_secs_f64()),
            }
        })
        .collect();
    #[cfg(feature = "postgres")]
    queries.extend(pg_entries(perfscope, db, database));
    SlowQueries {
        threshold_ms: db.slow_threshold().as_secs_f64() * 1_000.0,
        queries,
    }
}

/// The `q` quantile (ms) of a statement's executions by this process's
/// timed pool, from its sketch.
fn percentile(db: &crate::db::DbInsights, fingerprint: u64, q: f64) -> Option<f64> {
    let sketch = db.statement_sketches.get(&fingerprint)?;
    sketch.quantile(q).map(|seconds| seconds * 1_000.0)
}

/// Statements of each watched database listed: the worst by mean and the
/// worst by total.
#[cfg(feature = "postgres")]
const PG_WORST: usize = 20;

#[cfg(feature = "postgres")]
fn pg_entries(
    perfscope: &Perfscope,
    db: &crate::db::DbInsights,
    only: Option<&str>,
) -> Vec<SlowQueryEntry> {
    use crate::pg::readers::statements::StatementView;
    let mut entries = Vec::new();
    for database in perfscope.watched().all() {
        if only.is_some_and(|name| name != &*database.name) {
            continue;
        }
        let snapshot = database.statements.latest().unwrap_or_default();
        let figures = |s: &StatementView| match s.window {
            Some(window) if window.calls > 0 => (window, true),
            _ => (s.cumulative, false),
        };
        let mut by_mean: Vec<&StatementView> = snapshot
            .statements
            .iter()
            .filter(|s| s.text.is_some() && figures(s).0.calls > 0)
            .collect();
        by_mean.sort_by(|a, b| figures(b).0.mean_ms().total_cmp(&figures(a).0.mean_ms()));
        let mut by_total = by_mean.clone();
        by_total.sort_by(|a, b| figures(b).0.total_ms.total_cmp(&figures(a).0.total_ms));
        let mut chosen: Vec<&StatementView> = Vec::new();
        for s in by_total
            .into_iter()
            .take(PG_WORST)
            .chain(by_mean.into_iter().take(PG_WORST))
        {
            if !chosen.iter().any(|c| c.queryid == s.queryid) {
                chosen.push(s);
            }
        }
        let read_at = snapshot
            .at
            .and_then(|at| at.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0.0, |d| d.as_secs_f64());
        for s in chosen {
            let Some(text) = &s.text else { continue };
            let (f, windowed) = figures(s);
            let info = crate::db::statement::parse(text);
            entries.push(SlowQueryEntry {
                source: "pg_stat_statements".into(),
                database: Some(database.name.to_string()),
                queryid: Some(s.queryid.to_string()),
                statement: text.to_string(),
                fingerprint: format!("{:016x}", info.fingerprint),
                operation: info.verb.as_str().into(),
                table: info.model.to_string(),
                route: db.route_of(info.fingerprint).map(|r| r.to_string()),
                calls: u64::try_from(f.calls).unwrap_or(0),
                mean_ms: f.mean_ms(),
                max_ms: s.max_ms,
                p50_ms: percentile(db, info.fingerprint, 0.5),
                p95_ms: percentile(db, info.fingerprint, 0.95),
                total_ms: f.total_ms,
                rows: Some(f.rows),
                hit_ratio: f.hit_ratio(),
                windowed,
                last_seen: read_at,
            });
        }
    }
    entries
}
