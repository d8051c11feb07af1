//! One slow-statement finding per statement in the stats' `slowQueries`:
//! the slow log lists a statement once per route, pg_stat_statements once
//! per database, and both now share the statement's fingerprint (as the
//! slow-query report, `super::super::slow_queries::merge`, joins them).
//! The slow log's findings of one fingerprint are folded into one, and
//! that one is joined to the pg_stat_statements finding of the same
//! fingerprint with the most time (a statement two databases run stays a
//! finding each; the slow log's figures go to one). Each source keeps its
//! own figures and window: they count over different spans, so none is
//! added to the other. Pure, so its rules are tested without a server.

use std::collections::HashMap;

use crate::findings::{Kind, QueryFinding, Severity};

/// The sources' names, as the findings spell them.
const APP: &str = "app";
const PG: &str = "pg_stat_statements";

/// `findings` with every slow statement once: N+1 suspects, plan
/// regressions and the rest pass as they are, in their order; a joined
/// finding takes the place of the first of its parts.
pub(super) fn one_per_statement(findings: Vec<QueryFinding>) -> Vec<QueryFinding> {
    let slow = |f: &QueryFinding| f.kind == Kind::SlowQuery.as_str();
    // The pg_stat_statements finding each fingerprint's slow-log figures
    // join: the one with the most time.
    let mut pg_target: HashMap<&str, usize> = HashMap::new();
    for (i, finding) in findings.iter().enumerate() {
        if slow(finding) && finding.source == PG {
            let best = pg_target.entry(&finding.fingerprint).or_insert(i);
            if findings[*best].total_ms < finding.total_ms {
                *best = i;
            }
        }
    }
    let pg_target: HashMap<String, usize> = pg_target
        .into_iter()
        .map(|(fingerprint, i)| (fingerprint.to_owned(), i))
        .collect();
    // Fold the slow log's findings per fingerprint; each fold goes where
    // its first part or its pg_stat_statements finding stood, whichever
    // came first.
    let mut slots: Vec<Option<QueryFinding>> = Vec::with_capacity(findings.len());
    // Per fingerprint: its slot and the slow time of the route it names.
    let mut app_slot: HashMap<String, (usize, f64)> = HashMap::new();
    let mut joins: HashMap<usize, usize> = HashMap::new();
    for (i, finding) in findings.into_iter().enumerate() {
        if !(slow(&finding) && finding.source == APP) {
            slots.push(Some(finding));
            continue;
        }
        match app_slot.get_mut(&finding.fingerprint) {
            Some((at, route_ms)) => {
                if let Some(folded) = slots[*at].as_mut() {
                    fold(folded, finding, route_ms);
                }
                slots.push(None);
            }
            None => {
                app_slot.insert(finding.fingerprint.clone(), (i, finding.total_ms));
                if let Some(&pg) = pg_target.get(&finding.fingerprint) {
                    joins.insert(i, pg);
                }
                slots.push(Some(finding));
            }
        }
    }
    for (app, pg) in joins {
        let (Some(app_finding), Some(pg_finding)) = (slots[app].take(), slots[pg].take()) else {
            continue;
        };
        slots[app.min(pg)] = Some(join(pg_finding, app_finding));
    }
    slots.into_iter().flatten().collect()
}

/// Adds `more` (the slow log's finding of the same statement from another
/// route) to `into`: counts and totals summed, the slowest kept, the route
/// with the most slow time (`route_ms`, the named one's) named.
fn fold(into: &mut QueryFinding, more: QueryFinding, route_ms: &mut f64) {
    if more.total_ms > *route_ms {
        *route_ms = more.total_ms;
        into.route = more.route.or(into.route.take());
        into.message = more.message;
    }
    into.calls += more.calls;
    into.total_ms += more.total_ms;
    into.max_ms = into.max_ms.max(more.max_ms);
    into.mean_ms = into.total_ms / into.calls.max(1) as f64;
    into.severity = worse(into.severity, more.severity);
    into.app = match (into.app.take(), more.app) {
        (Some(mut figures), Some(other)) => {
            figures.calls += other.calls;
            figures.total_ms += other.total_ms;
            figures.max_ms = figures.max_ms.max(other.max_ms);
            figures.mean_ms = figures.total_ms / figures.calls.max(1) as f64;
            Some(figures)
        }
        (figures, other) => figures.or(other),
    };
}

/// pg_stat_statements' finding of a statement with the slow log's figures
/// of it: pg_stat_statements' figures on top (every execution), the slow
/// log's in `app` with its window, the route from the slow log, the worse
/// severity, and both messages.
fn join(mut pg: QueryFinding, app: QueryFinding) -> QueryFinding {
    pg.sources = vec![APP.to_owned(), PG.to_owned()];
    pg.severity = worse(pg.severity, app.severity);
    pg.route = pg.route.or(app.route);
    if let Some(figures) = app.app {
        pg.message = format!(
            "{} This process's pool ran it too: {} executions over the slow threshold (mean {:.0} ms, max {:.0} ms), {}.",
            pg.message, figures.calls, figures.mean_ms, figures.max_ms, figures.window.description,
        );
        pg.app = Some(figures);
    }
    pg
}

/// The more serious of two severities.
fn worse(a: Severity, b: Severity) -> Severity {
    let rank = |s: Severity| match s {
        Severity::Low => 0,
        Severity::Medium => 1,
        Severity::High => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::findings::figures::{SourceFigures, Window, WindowKind};

    fn window(kind: WindowKind) -> Window {
        Window {
            kind,
            from: Some(100.0),
            to: 200.0,
            description: format!("{kind:?}"),
        }
    }

    fn finding(
        kind: Kind,
        source: &str,
        fingerprint: &str,
        calls: u64,
        total_ms: f64,
    ) -> QueryFinding {
        let figures = SourceFigures {
            calls,
            total_ms,
            mean_ms: total_ms / calls as f64,
            max_ms: total_ms / calls as f64 + 1.0,
            window: window(if source == APP {
                WindowKind::SlowLog
            } else {
                WindowKind::SinceReset
            }),
        };
        QueryFinding {
            kind: kind.into(),
            source: source.into(),
            sources: vec![source.into()],
            severity: Severity::Medium,
            message: format!("{source} saw {fingerprint}."),
            statement: None,
            table: None,
            route: (source == APP).then(|| format!("/r/{calls}")),
            fingerprint: fingerprint.into(),
            calls,
            total_ms,
            mean_ms: figures.mean_ms,
            max_ms: figures.max_ms,
            per_request: None,
            app: (source == APP && kind == Kind::SlowQuery).then(|| figures.clone()),
            pg_stat_statements: (source == PG && kind == Kind::SlowQuery).then_some(figures),
        }
    }

    #[test]
    fn a_statement_both_sources_know_is_one_finding_with_both_windows() {
        let mut app = finding(Kind::SlowQuery, APP, "aa", 15, 1_500.0);
        app.severity = Severity::High;
        let merged = one_per_statement(vec![
            app,
            finding(Kind::SlowQuery, APP, "bb", 2, 300.0),
            finding(Kind::SlowQuery, PG, "aa", 16, 1_700.0),
            finding(Kind::SlowQuery, PG, "cc", 4, 800.0),
        ]);
        let fingerprints: Vec<&str> = merged.iter().map(|f| f.fingerprint.as_str()).collect();
        assert_eq!(fingerprints, ["aa", "bb", "cc"]);
        let both = &merged[0];
        assert_eq!(both.sources, [APP, PG]);
        assert_eq!(both.source, PG);
        assert_eq!((both.calls, both.total_ms), (16, 1_700.0));
        assert_eq!(both.severity, Severity::High);
        assert_eq!(both.route.as_deref(), Some("/r/15"));
        let app = both.app.as_ref().expect("app figures");
        assert_eq!((app.calls, app.window.kind), (15, WindowKind::SlowLog));
        let pg = both.pg_stat_statements.as_ref().expect("pg figures");
        assert_eq!((pg.calls, pg.window.kind), (16, WindowKind::SinceReset));
        assert!(
            both.message.starts_with("pg_stat_statements saw aa."),
            "{}",
            both.message
        );
        assert!(both.message.contains("15 executions"), "{}", both.message);
        assert_eq!(merged[1].sources, [APP]);
        assert!(merged[1].pg_stat_statements.is_none());
        assert_eq!(merged[2].sources, [PG]);
        assert!(merged[2].app.is_none());
    }

    #[test]
    fn routes_fold_first_and_join_the_database_with_the_most_time() {
        let merged = one_per_statement(vec![
            finding(Kind::NPlusOne, APP, "aa", 40, 0.0),
            finding(Kind::SlowQuery, APP, "aa", 3, 300.0),
            finding(Kind::SlowQuery, APP, "aa", 5, 900.0),
            finding(Kind::SlowQuery, PG, "aa", 10, 100.0),
            finding(Kind::SlowQuery, PG, "aa", 20, 2_000.0),
            finding(Kind::PlanRegression, PG, "aa", 20, 2_000.0),
        ]);
        let shape: Vec<(&str, &[String])> = merged
            .iter()
            .map(|f| (f.kind.as_str(), f.sources.as_slice()))
            .collect();
        assert_eq!(merged.len(), 4, "{shape:?}");
        // The N+1 suspect and the plan regression are left as they are.
        assert_eq!(merged[0].kind, "n_plus_one");
        assert_eq!(merged[3].kind, "plan_regression");
        // Both routes folded, joined to the database with 2,000 ms.
        let joined = &merged[1];
        assert_eq!(joined.sources, [APP, PG]);
        assert_eq!(joined.total_ms, 2_000.0);
        let app = joined.app.as_ref().expect("app");
        assert_eq!((app.calls, app.total_ms), (8, 1_200.0));
        assert_eq!(app.mean_ms, 150.0);
        assert_eq!(joined.route.as_deref(), Some("/r/5"));
        // The other database's finding stays alone.
        assert_eq!(merged[2].sources, [PG]);
        assert_eq!(merged[2].total_ms, 100.0);
    }
}
