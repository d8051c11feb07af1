//! Findings about sessions: long-running queries, idle-in-transaction and
//! blocked sessions.

use super::{Kind, Recommendation, Severity};

/// One kind of activity finding: its name, advice, severity, threshold and
/// the age of a session that counts.
type ActivityKind = (
    Kind,
    &'static str,
    Severity,
    f64,
    fn(&crate::pg::readers::activity::Backend) -> Option<f64>,
);

/// Long-running queries, idle-in-transaction sessions and blocked sessions
/// from the activity reader's last pass. Pids and statements only for the
/// admin token.
pub(super) fn activity_findings(
    name: &str,
    activity: &crate::pg::readers::activity::ActivitySnapshot,
    thresholds: crate::pg::readers::activity::Thresholds,
    admin: bool,
) -> Vec<Recommendation> {
    let kinds: [ActivityKind; 3] = [
        (
            Kind::LongRunning,
            "queries have been running longer than the threshold: check them in GET /api/performance/activity; cancel one with POST /api/performance/activity/{pid}/cancel, or set statement_timeout for the role.",
            Severity::Medium,
            thresholds.long_query.as_secs_f64(),
            |s| s.query_seconds,
        ),
        (
            Kind::IdleInTransaction,
            "sessions sit idle inside an open transaction: they hold locks and stop vacuum from cleaning up. Fix the app's transaction handling, or set idle_in_transaction_session_timeout.",
            Severity::Medium,
            thresholds.idle_in_transaction.as_secs_f64(),
            |s| s.state_seconds,
        ),
        (
            Kind::Blocked,
            "sessions wait on locks another session holds: see the lock chains in GET /api/performance/activity, root blocker first.",
            Severity::High,
            0.0,
            |s| s.state_seconds,
        ),
    ];
    let mut findings = Vec::new();
    for (kind, text, severity, threshold, seconds) in kinds {
        let flagged: Vec<&crate::pg::readers::activity::Backend> = activity
            .sessions
            .iter()
            .filter(|s| s.flags.iter().any(|f| f == kind.as_str()))
            .collect();
        if flagged.is_empty() {
            continue;
        }
        findings.push(Recommendation {
            kind: kind.into(),
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
