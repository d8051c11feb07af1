//! Runtime advice for `/api/performance/stats`: sustained event-loop lag,
//! saturated workers, memory near the container limit. Each finding carries
//! the numbers behind it.

use std::time::Duration;

use crate::db::DbInsights;
#[cfg(feature = "postgres")]
use crate::db::statement::Verb;
use crate::runtime::RuntimeSnapshot;
use crate::runtime::process::ProcessSnapshot;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

/// One piece of advice.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
pub struct Recommendation {
    /// A stable kind, e.g. `event_loop_lag`.
    pub kind: String,
    /// How serious it is.
    pub severity: Severity,
    /// What was seen and what to do.
    pub message: String,
    /// The measured value behind it.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// The objects concerned (admin only: they name tables and indexes).
    #[oai(skip_serializing_if_is_none)]
    pub objects: Option<Vec<String>>,
}

/// Share of recent intervals over the lag threshold that makes lag
/// "sustained".
pub const SUSTAINED_LAG_SHARE: f64 = 0.5;
/// Fewest intervals needed before lag can be called sustained.
pub const SUSTAINED_LAG_MIN_SAMPLES: usize = 5;
/// Utilization that means the workers are saturated.
pub const SATURATED_UTILIZATION: f64 = 0.9;

/// Advice from the latest runtime and process readings.
pub fn runtime_advice(
    runtime: &RuntimeSnapshot,
    process: &ProcessSnapshot,
    lag_threshold: Duration,
    memory_threshold: f64,
) -> Vec<Recommendation> {
    let mut advice = Vec::new();
    let samples = runtime.recent_lag.len();
    let over = runtime.intervals_over(lag_threshold);
    if samples >= SUSTAINED_LAG_MIN_SAMPLES && over as f64 >= samples as f64 * SUSTAINED_LAG_SHARE {
        let worst = runtime.recent_lag.iter().max().copied().unwrap_or_default();
        advice.push(Recommendation {
            kind: "event_loop_lag".into(),
            severity: if worst > lag_threshold * 5 {
                Severity::High
            } else {
                Severity::Medium
            },
            message: format!(
                "Event-loop lag exceeded {} ms in {over} of the last {samples} intervals (worst {} ms): some task blocks a worker. Move CPU-heavy or blocking work (sync I/O, large serialization, hashing) to tokio::task::spawn_blocking.",
                lag_threshold.as_millis(),
                worst.as_millis()
            ),
            value: worst.as_secs_f64(),
            threshold: lag_threshold.as_secs_f64(),
            objects: None,
        });
    }
    if runtime.utilization >= SATURATED_UTILIZATION {
        advice.push(Recommendation {
            kind: "runtime_saturated".into(),
            severity: Severity::Medium,
            message: format!(
                "The runtime's workers were busy {:.0}% of the last interval: requests queue behind each other. Add CPU or replicas, or find the hot handlers in http_request_duration_seconds.",
                runtime.utilization * 100.0
            ),
            value: runtime.utilization,
            threshold: SATURATED_UTILIZATION,
            objects: None,
        });
    }
    if let (Some(utilization), Some(limit)) =
        (process.memory_utilization(), process.memory_limit_bytes)
        && utilization >= memory_threshold
    {
        advice.push(Recommendation {
                kind: "high_memory".into(),
                severity: Severity::High,
                message: format!(
                    "Resident memory is {:.0}% of the container limit ({} of {} bytes): the process risks being OOM-killed. Raise the limit or bound the caches and buffers that grow.",
                    utilization * 100.0,
                    process.resident_bytes,
                    limit
                ),
                value: utilization,
                threshold: memory_threshold,
                objects: None,
            });
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime_with_lags(lags_ms: &[u64]) -> RuntimeSnapshot {
        RuntimeSnapshot {
            recent_lag: lags_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn sustained_lag_is_reported_with_numbers() {
        let runtime = runtime_with_lags(&[5, 150, 200, 120, 900, 130]);
        let advice = runtime_advice(
            &runtime,
            &ProcessSnapshot::default(),
            Duration::from_millis(100),
            0.9,
        );
        assert_eq!(advice.len(), 1, "{advice:?}");
        assert_eq!(advice[0].kind, "event_loop_lag");
        assert_eq!(advice[0].severity, Severity::High);
        assert!((advice[0].value - 0.9).abs() < 1e-9);
        assert!(
            advice[0].message.contains("5 of the last 6"),
            "{}",
            advice[0].message
        );
    }

    #[test]
    fn brief_lag_is_not_sustained() {
        let runtime = runtime_with_lags(&[5, 150, 5, 5, 5, 5]);
        assert!(
            runtime_advice(
                &runtime,
                &ProcessSnapshot::default(),
                Duration::from_millis(100),
                0.9
            )
            .is_empty()
        );
    }

    #[test]
    fn memory_near_the_limit() {
        let process = ProcessSnapshot {
            resident_bytes: 950,
            memory_limit_bytes: Some(1_000),
            ..Default::default()
        };
        let advice = runtime_advice(
            &RuntimeSnapshot::default(),
            &process,
            Duration::from_millis(100),
            0.9,
        );
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].kind, "high_memory");
    }
}

/// A statement worth a look: slow, or repeated per request (N+1).
///
/// Without the admin token the statement text and table are left out
/// (they may name objects an outsider should not learn); kinds, routes,
/// counts and timings stay.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct QueryFinding {
    /// `slow_query` or `n_plus_one`.
    pub kind: String,
    /// Where it was seen: `app` (the timed pool of this process) or
    /// `pg_stat_statements`.
    pub source: String,
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
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

/// The worst statements of the in-process slow log and the N+1 suspects,
/// at most `limit` of each.
pub fn query_findings(db: &DbInsights, admin: bool, limit: usize) -> Vec<QueryFinding> {
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
            kind: "n_plus_one".into(),
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
            kind: "slow_query".into(),
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
        });
    }
    findings
}

/// Rows per call over which a statement is flagged as returning too much.
pub const MANY_ROWS_PER_CALL: f64 = 1_000.0;
/// Buffer hit ratio under which a statement is flagged as reading from disk.
pub const LOW_HIT_RATIO: f64 = 0.9;
/// Blocks a statement must have read before its hit ratio means anything.
pub const MIN_BLOCKS_READ: i64 = 1_000;

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
        let snapshot = database.statements.latest();
        let advisor = database.advisor.latest();
        let mut listed = 0;
        for statement in &snapshot.statements {
            if listed == limit {
                break;
            }
            let Some(text) = &statement.text else {
                continue;
            };
            let f = match statement.window {
                Some(window) if window.calls > 0 => window,
                _ => statement.cumulative,
            };
            let info = crate::db::statement::analyze(text);
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
            let reads_enough = f.shared_read >= MIN_BLOCKS_READ;
            if let Some(ratio) = f.hit_ratio().filter(|r| *r < LOW_HIT_RATIO && reads_enough) {
                why.push(format!(
                    "only {:.0}% of its blocks come from shared buffers: it reads from disk (a missing index, or a cache too small)",
                    ratio * 100.0
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
                kind: "slow_query".into(),
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
                table: admin.then(|| info.model.to_string()),
                route: None,
                fingerprint: format!("{:016x}", info.fingerprint),
                calls: u64::try_from(f.calls).unwrap_or(0),
                total_ms: f.total_ms,
                mean_ms: f.mean_ms(),
                max_ms: statement.max_ms,
                per_request: None,
            });
        }
    }
    findings
}

/// Buffer hit ratio under which the database's cache is too small (PgHero's
/// threshold).
pub const LOW_DATABASE_HIT_RATIO: f64 = 0.99;
/// Blocks touched before the database hit ratio means anything.
pub const MIN_DATABASE_BLOCKS: i64 = 10_000;
/// Share of `max_connections` in use that is a finding.
pub const HIGH_CONNECTION_SHARE: f64 = 0.8;
/// Share of dead tuples among all tuples that is a vacuum backlog.
pub const HIGH_DEAD_TUPLE_SHARE: f64 = 0.2;

/// Each health kind's finding name, severity, and what it means and what
/// to do.
#[cfg(feature = "postgres")]
fn health_text(kind: &str) -> Option<(&'static str, Severity, &'static str)> {
    Some(match kind {
        "invalid" => (
            "invalid_index",
            Severity::High,
            "invalid index(es), left by a failed CREATE INDEX CONCURRENTLY: they slow writes and serve no read. Drop and recreate them.",
        ),
        "unused" => (
            "unused_index",
            Severity::Low,
            "index(es) over 1 MB never scanned since the statistics reset: they cost writes and space. Drop them after checking replicas and rare jobs.",
        ),
        "redundant" => (
            "redundant_index",
            Severity::Low,
            "index(es) whose columns lead another index of the same table: the other serves their reads. Drop them.",
        ),
        "vacuum_overdue" => (
            "vacuum_overdue",
            Severity::Medium,
            "table(s) with more dead than 40% of live tuples: autovacuum is behind. Tune it for them or run VACUUM.",
        ),
        "sequence" => (
            "sequence_exhaustion",
            Severity::High,
            "sequence(s) past 75% of their maximum: inserts will fail when one runs out. Move the column to bigint.",
        ),
        "wraparound" => (
            "wraparound",
            Severity::High,
            "database(s) with a transaction-ID age over 1 billion of ~2.1 billion: aggressive vacuum is needed before wraparound forces a shutdown.",
        ),
        _ => return None,
    })
}

/// Cache and health advice from the database and health readers of each
/// watched database: `(cache, health)`. Object names only for the admin.
#[cfg(feature = "postgres")]
pub fn database_advice(
    watched: &crate::pg::Watched,
    admin: bool,
) -> (Vec<Recommendation>, Vec<Recommendation>) {
    let (mut cache, mut health) = (Vec::new(), Vec::new());
    for database in watched.all() {
        let items = database.health.latest();
        for kind in [
            "invalid",
            "unused",
            "redundant",
            "vacuum_overdue",
            "sequence",
            "wraparound",
        ] {
            let of_kind: Vec<&crate::pg::health::HealthItem> =
                items.iter().filter(|i| i.kind == kind).collect();
            let Some((name, severity, text)) = health_text(kind) else {
                continue;
            };
            if of_kind.is_empty() {
                continue;
            }
            let worst = of_kind.iter().map(|i| i.value).fold(0.0, f64::max);
            let limit = of_kind.iter().map(|i| i.limit).fold(0.0, f64::max);
            health.push(Recommendation {
                kind: name.to_owned(),
                severity,
                message: format!("Database {}: {} {text}", database.name, of_kind.len()),
                value: worst,
                threshold: limit,
                objects: admin.then(|| {
                    of_kind
                        .iter()
                        .map(|i| {
                            if i.detail.is_empty() {
                                i.object.clone()
                            } else {
                                format!("{} ({})", i.object, i.detail)
                            }
                        })
                        .collect()
                }),
            });
        }
        if let Some(replication) = database.replication.latest() {
            health.extend(slot_findings(&database.name, &replication, admin));
        }
        if let Some(space) = database.space.latest() {
            health.extend(bloat_findings(&database.name, &space, admin));
        }
        if let Some(activity) = database.activity.latest() {
            health.extend(activity_findings(
                &database.name,
                &activity,
                database.activity.thresholds(),
                admin,
            ));
        }
        let Some(s) = database.database.latest() else {
            continue;
        };
        let name = &database.name;
        if let Some(ratio) = s.hit_ratio().filter(|r| {
            *r < LOW_DATABASE_HIT_RATIO && s.blks_hit + s.blks_read >= MIN_DATABASE_BLOCKS
        }) {
            cache.push(Recommendation {
                kind: "buffer_hit_ratio".into(),
                severity: if ratio < 0.95 { Severity::High } else { Severity::Medium },
                message: format!(
                    "Database {name} serves {:.2}% of block reads from shared buffers (goal: 99%): raise shared_buffers or the instance's memory, or index the statements that read the most blocks.",
                    ratio * 100.0
                ),
                value: ratio,
                threshold: LOW_DATABASE_HIT_RATIO,
                objects: None,
            });
        }
        let max = f64::from(s.max_connections.max(1));
        let share = s.server_connections() as f64 / max;
        if share >= HIGH_CONNECTION_SHARE {
            health.push(Recommendation {
                kind: "connections".into(),
                severity: Severity::High,
                message: format!(
                    "{} of max_connections {} are in use ({:.0}%): new connections will soon be refused. Lower pool sizes, close idle sessions, or put PgBouncer in front.",
                    s.server_connections(),
                    s.max_connections,
                    share * 100.0
                ),
                value: share,
                threshold: HIGH_CONNECTION_SHARE,
                objects: None,
            });
        }
        let tuples = (s.dead_tuples + s.live_tuples).max(1) as f64;
        let dead = s.dead_tuples as f64 / tuples;
        if dead >= HIGH_DEAD_TUPLE_SHARE && s.dead_tuples >= 10_000 {
            health.push(Recommendation {
                kind: "dead_tuples".into(),
                severity: Severity::Medium,
                message: format!(
                    "{:.0}% of the tuples in {name}'s tables are dead ({}): autovacuum is behind. Check its settings for the busiest tables, or run VACUUM.",
                    dead * 100.0,
                    s.dead_tuples
                ),
                value: dead,
                threshold: HIGH_DEAD_TUPLE_SHARE,
                objects: None,
            });
        }
    }
    (cache, health)
}

/// One kind of activity finding: its name, advice, severity, threshold and
/// the age of a session that counts.
#[cfg(feature = "postgres")]
type ActivityKind = (
    &'static str,
    &'static str,
    Severity,
    f64,
    fn(&crate::pg::activity::Session) -> Option<f64>,
);

/// Long-running queries, idle-in-transaction sessions and blocked sessions
/// from the activity reader's last pass. Pids and statements only for the
/// admin token.
#[cfg(feature = "postgres")]
fn activity_findings(
    name: &str,
    activity: &crate::pg::activity::ActivitySnapshot,
    thresholds: crate::pg::activity::Thresholds,
    admin: bool,
) -> Vec<Recommendation> {
    let kinds: [ActivityKind; 3] = [
        (
            "long_running",
            "queries have been running longer than the threshold: check them in GET /api/performance/activity; cancel one with POST /api/performance/activity/{pid}/cancel, or set statement_timeout for the role.",
            Severity::Medium,
            thresholds.long_query.as_secs_f64(),
            |s| s.query_seconds,
        ),
        (
            "idle_in_transaction",
            "sessions sit idle inside an open transaction: they hold locks and stop vacuum from cleaning up. Fix the app's transaction handling, or set idle_in_transaction_session_timeout.",
            Severity::Medium,
            thresholds.idle_in_transaction.as_secs_f64(),
            |s| s.state_seconds,
        ),
        (
            "blocked",
            "sessions wait on locks another session holds: see the lock chains in GET /api/performance/activity, root blocker first.",
            Severity::High,
            0.0,
            |s| s.state_seconds,
        ),
    ];
    let mut findings = Vec::new();
    for (kind, text, severity, threshold, seconds) in kinds {
        let flagged: Vec<&crate::pg::activity::Session> = activity
            .sessions
            .iter()
            .filter(|s| s.flags.iter().any(|f| f == kind))
            .collect();
        if flagged.is_empty() {
            continue;
        }
        findings.push(Recommendation {
            kind: kind.to_owned(),
            severity,
            message: format!("Database {name}: {} {text}", flagged.len()),
            value: flagged
                .iter()
                .filter_map(|s| seconds(s))
                .fold(0.0, f64::max),
            threshold,
            objects: admin.then(|| {
                flagged
                    .iter()
                    .map(|s| {
                        format!(
                            "pid {} ({:.0} s): {}",
                            s.pid,
                            seconds(s).unwrap_or(0.0),
                            s.query
                        )
                    })
                    .collect()
            }),
        });
    }
    findings
}

/// Tables and indexes whose estimated bloat is at least half their size
/// and 8 MiB, from the space reader's last pass. Names only for the admin
/// token.
#[cfg(feature = "postgres")]
fn bloat_findings(
    name: &str,
    space: &crate::pg::space::SpaceSnapshot,
    admin: bool,
) -> Vec<Recommendation> {
    let (tables, indexes) = space.bloated();
    let mib = |b: Option<f64>| b.unwrap_or(0.0) / 1024.0 / 1024.0;
    let mut findings = Vec::new();
    if !tables.is_empty() {
        findings.push(Recommendation {
            kind: "table_bloat".into(),
            severity: Severity::Medium,
            message: format!(
                "Database {name}: {} tables are mostly dead space (estimated from statistics): VACUUM (FULL, or pg_repack online) to give it back, and tune autovacuum for them.",
                tables.len()
            ),
            value: tables.iter().filter_map(|t| t.bloat_ratio).fold(0.0, f64::max),
            threshold: crate::pg::space::BLOAT_SHARE,
            objects: admin.then(|| {
                tables
                    .iter()
                    .map(|t| format!("{}.{} ({:.0} MiB of {:.0} MiB)", t.schema, t.name, mib(t.bloat_bytes), t.heap_bytes as f64 / 1024.0 / 1024.0))
                    .collect()
            }),
        });
    }
    if !indexes.is_empty() {
        findings.push(Recommendation {
            kind: "index_bloat".into(),
            severity: Severity::Medium,
            message: format!(
                "Database {name}: {} indexes are mostly empty space (estimated from statistics): REINDEX CONCURRENTLY them.",
                indexes.len()
            ),
            value: indexes.iter().filter_map(|i| i.bloat_ratio).fold(0.0, f64::max),
            threshold: crate::pg::space::BLOAT_SHARE,
            objects: admin.then(|| {
                indexes
                    .iter()
                    .map(|i| format!("{}.{} on {} ({:.0} MiB of {:.0} MiB)", i.schema, i.name, i.table, mib(i.bloat_bytes), i.bytes as f64 / 1024.0 / 1024.0))
                    .collect()
            }),
        });
    }
    findings
}

/// Inactive replication slots that keep WAL from being removed. Slot names
/// only for the admin token.
#[cfg(feature = "postgres")]
fn slot_findings(
    name: &str,
    replication: &crate::pg::replication::ReplicationSnapshot,
    admin: bool,
) -> Vec<Recommendation> {
    let inactive = replication.inactive_slots();
    if inactive.is_empty() {
        return Vec::new();
    }
    let retained = inactive
        .iter()
        .filter_map(|s| s.retained_bytes)
        .fold(0.0, f64::max);
    vec![Recommendation {
        kind: "inactive_replication_slot".into(),
        severity: if retained >= 1024.0 * 1024.0 * 1024.0 {
            Severity::High
        } else {
            Severity::Medium
        },
        message: format!(
            "Database {name}'s server has {} inactive replication slot(s) keeping WAL ({:.0} MiB at most): the disk fills until the consumer returns. Reconnect it, or drop the slot with pg_drop_replication_slot(name).",
            inactive.len(),
            retained / 1024.0 / 1024.0
        ),
        value: retained,
        threshold: 0.0,
        objects: admin.then(|| {
            inactive
                .iter()
                .map(|s| {
                    format!(
                        "{} ({}, {:.0} MiB)",
                        s.name,
                        s.slot_type,
                        s.retained_bytes.unwrap_or(0.0) / 1024.0 / 1024.0
                    )
                })
                .collect()
        }),
    }]
}
