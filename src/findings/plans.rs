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
        sources: vec!["pg_stat_statements".into()],
        app: None,
        pg_stat_statements: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::plans::PlanWindow;

    fn change() -> PlanChange {
        PlanChange {
            seq: 3,
            updated: 5,
            database: "default".into(),
            queryid: "-42".into(),
            statement: Some("select id from parcels where tracking = $1".into()),
            detected_at: 0.0,
            before_fingerprint: "00000000000000aa".into(),
            after_fingerprint: "00000000000000bb".into(),
            before_shape: "Index Scan on parcels using parcels_tracking\n".into(),
            after_shape: "Seq Scan on parcels\n".into(),
            before: Some(PlanWindow {
                calls: 40,
                mean_ms: 0.05,
                blocks_per_call: 4.0,
            }),
            after: Some(PlanWindow {
                calls: 12,
                mean_ms: 30.0,
                blocks_per_call: 2_900.0,
            }),
            slowdown: Some(600.0),
            slower: true,
        }
    }

    #[test]
    fn the_finding_gives_both_sides_and_names_nothing_without_admin() {
        let admin = finding(&change(), true).expect("a finding");
        assert_eq!(admin.kind, "plan_regression");
        assert_eq!(admin.severity, Severity::High);
        assert!(
            admin
                .message
                .contains("`select id from parcels where tracking = $1`")
                && admin.message.contains("600.0× slower")
                && admin
                    .message
                    .contains("0.05 ms over 40 calls before, 30.00 ms over 12 calls after")
                && admin.message.contains("4 → 2900 shared blocks per call"),
            "{}",
            admin.message
        );
        let public = finding(&change(), false).expect("a finding");
        assert_eq!(public.statement, None);
        assert!(
            !public.message.contains("parcels") && public.message.starts_with("Statement -42 "),
            "{}",
            public.message
        );
        // Without an "after" yet, no finding.
        let pending = PlanChange {
            after: None,
            ..change()
        };
        assert_eq!(finding(&pending, true), None);
    }
}
