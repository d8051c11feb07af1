//! A statement that got slower after its plan changed: the newest plan
//! change of each statement (`crate::pg::plans`) whose mean time after is
//! at least twice the mean time before, with enough calls on both sides.
//! Only the newest change of a statement counts: a plan that changed back
//! (an index recreated) ends the finding.

use std::collections::HashMap;

use super::queries::QueryFinding;
use super::{Kind, Severity};
use crate::pg::plans::PlanChange;

/// Slowdown from which a plan regression is of high severity.
const HIGH_SLOWDOWN: f64 = 5.0;

/// The plan regressions of every watched database; statement and plan
/// shapes only for the admin.
pub fn plan_findings(watched: &crate::pg::Watched, admin: bool) -> Vec<QueryFinding> {
    let mut findings = Vec::new();
    for database in watched.all() {
        let changes = database.advisor.plan_changes().changes();
        let mut newest: HashMap<&str, &PlanChange> = HashMap::new();
        for change in &changes {
            newest.insert(change.queryid.as_str(), change);
        }
        let mut slower: Vec<&PlanChange> = newest.into_values().filter(|c| c.slower).collect();
        slower.sort_by_key(|c| c.seq);
        findings.extend(slower.into_iter().filter_map(|c| finding(c, admin)));
    }
    findings
}

/// The finding of one change that made its statement slower.
fn finding(change: &PlanChange, admin: bool) -> Option<QueryFinding> {
    let (before, after, slowdown) = (change.before?, change.after?, change.slowdown?);
    let what = match (&change.statement, admin) {
        (Some(text), true) => format!("`{text}`"),
        _ => format!("Statement {}", change.queryid),
    };
    let message = format!(
        "{what} in database {} got {slowdown:.1}× slower after its plan changed (generic plan {} → {}): mean {:.2} ms over {} calls before, {:.2} ms over {} calls after; {:.0} → {:.0} shared blocks per call. Compare the two plans on the plan changes page; an index dropped or statistics gone stale are the usual causes.",
        change.database,
        change.before_fingerprint,
        change.after_fingerprint,
        before.mean_ms,
        before.calls,
        after.mean_ms,
        after.calls,
        before.blocks_per_call,
        after.blocks_per_call,
    );
    let fingerprint = change
        .statement
        .as_deref()
        .map(|text| crate::db::statement::parse(text).fingerprint);
    Some(QueryFinding {
        kind: Kind::PlanRegression.into(),
        source: "pg_stat_statements".into(),
        severity: if slowdown >= HIGH_SLOWDOWN {
            Severity::High
        } else {
            Severity::Medium
        },
        message,
        statement: admin.then(|| change.statement.clone()).flatten(),
        table: None,
        route: None,
        fingerprint: fingerprint.map_or_else(|| change.queryid.clone(), |f| format!("{f:016x}")),
        calls: after.calls,
        total_ms: after.mean_ms * after.calls as f64,
        mean_ms: after.mean_ms,
        max_ms: 0.0,
        per_request: None,
    })
}
