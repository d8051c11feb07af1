//! Regressions: a statement or a route that got at least twice as slow as
//! its own past, read from the history store.
//!
//! The baseline is the **last 7 days before the window** (not the same
//! hour of the week): a week of passes is what a fresh store has soonest,
//! and a same-hour baseline would need four weeks before it said anything
//! as steady. The window is the last hour. A statement regresses when its
//! mean time per call, or its shared blocks read per call, over the window
//! is at least [`RATIO`] times the baseline's, with at least
//! [`MIN_CALLS`] calls on each side and an absolute rise worth telling (so
//! 20 µs becoming 50 µs is not a regression); a route when its p95 (from
//! the stored request-duration buckets) is, with at least
//! [`MIN_REQUESTS`] requests on each side.
//!
//! Pure over a read connection: [`check`] answers what regressed now, and
//! [`Regression::recorded`] the finding the store keeps for it
//! (`super::recorded`). The
//! agent runs both every few minutes (`perfscope/regressions.rs`) and
//! hands the list to the alert rules `statement_regression` and
//! `route_regression`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rusqlite::Connection;

use super::recorded::{Recorded, severity_name};
use super::{Kind, Recommendation, Severity};
use crate::store::StatementTotal;
use crate::store::read::{self, MAX_ROWS};

/// How much worse than the baseline counts as a regression.
pub const RATIO: f64 = 2.0;
/// Calls a statement needs in the window and in the baseline.
pub const MIN_CALLS: i64 = 50;
/// Requests a route needs in the window and in the baseline.
pub const MIN_REQUESTS: i64 = 200;
/// The smallest rise of the mean time per call worth telling, ms.
pub const MIN_MEAN_RISE_MS: f64 = 0.5;
/// The smallest rise of blocks read per call worth telling.
pub const MIN_READS_RISE: f64 = 8.0;
/// The smallest rise of a route's p95 worth telling, seconds.
pub const MIN_P95_RISE: f64 = 0.005;
/// Regressions kept (and alerted) at once, the worst first.
pub const MAX_REGRESSIONS: usize = 20;
/// The window, seconds.
pub const WINDOW: i64 = 3_600;
/// The baseline before the window, seconds.
pub const BASELINE: i64 = 7 * 86_400;
/// Databases looked at per check.
const MAX_DATABASES: usize = 64;

/// What got worse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Measure {
    /// A statement's mean execution time per call, ms.
    MeanTime,
    /// A statement's shared blocks read per call.
    ReadsPerCall,
    /// A route's 95th percentile request duration, seconds.
    RouteP95,
}

impl Measure {
    /// The finding's (and alert rule's) kind.
    pub fn kind(self) -> Kind {
        match self {
            Self::MeanTime | Self::ReadsPerCall => Kind::StatementRegression,
            Self::RouteP95 => Kind::RouteRegression,
        }
    }

    fn describe(self, value: f64) -> String {
        match self {
            Self::MeanTime => format!("{value:.2} ms per call"),
            Self::ReadsPerCall => format!("{value:.1} blocks read per call"),
            Self::RouteP95 => format!("p95 {:.1} ms", value * 1_000.0),
        }
    }
}

/// One regression: a statement or route, its numbers before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct Regression {
    /// What got worse.
    pub measure: Measure,
    /// The statement's database (`None` for a route).
    pub database: Option<Arc<str>>,
    /// pg_stat_statements' queryid (`None` for a route).
    pub queryid: Option<i64>,
    /// The normalized statement, when stored (never a literal value).
    pub statement: Option<Arc<str>>,
    /// For a route: `METHOD template`; for a statement: the route that
    /// ran it, when the slow log knows it.
    pub route: Option<String>,
    /// The baseline's value.
    pub before: f64,
    /// The window's value.
    pub after: f64,
    /// Calls (or requests) in the baseline.
    pub before_count: i64,
    /// Calls (or requests) in the window.
    pub after_count: i64,
}

impl Regression {
    /// How many times the baseline.
    pub fn ratio(&self) -> f64 {
        if self.before > 0.0 {
            self.after / self.before
        } else {
            f64::INFINITY
        }
    }

    /// The alert's subject: `database/queryid` or `METHOD template`.
    pub fn subject(&self) -> String {
        match (&self.database, self.queryid) {
            (Some(database), Some(queryid)) => format!("{database}/{queryid}"),
            _ => self.route.clone().unwrap_or_default(),
        }
    }

    /// The finding's stable key in the store: kind and subject.
    pub fn key(&self) -> String {
        format!("{}:{}", self.measure.kind().as_str(), self.subject())
    }

    /// How serious: four times or worse is high.
    pub fn severity(&self) -> Severity {
        if self.ratio() >= 2.0 * RATIO {
            Severity::High
        } else {
            Severity::Medium
        }
    }

    /// What happened, in words, without the statement's text.
    pub fn summary(&self) -> String {
        let what = match self.measure {
            Measure::RouteP95 => format!("Route {}", self.subject()),
            _ => {
                let on = self
                    .route
                    .as_deref()
                    .map(|route| format!(" (run by {route})"))
                    .unwrap_or_default();
                format!("Statement {}{on}", self.subject())
            }
        };
        let unit = if self.measure == Measure::RouteP95 {
            "requests"
        } else {
            "calls"
        };
        format!(
            "{what} regressed: {} over the last hour vs {} over the 7 days before ({:.1}×; {} vs {} {unit}).",
            self.measure.describe(self.after),
            self.measure.describe(self.before),
            self.ratio(),
            self.after_count,
            self.before_count,
        )
    }

    /// As a finding; the statement's text only for an admin.
    pub fn recommendation(&self, admin: bool) -> Recommendation {
        let mut message = self.summary();
        match self.statement.as_deref() {
            Some(text) if admin => {
                message.push_str(&format!(
                    " `{text}`: look for a dropped index, a plan change or grown data."
                ));
            }
            _ if self.measure == Measure::RouteP95 => {
                message.push_str(" Look at its statements and what was deployed.");
            }
            _ => message.push_str(" Look for a dropped index, a plan change or grown data."),
        }
        Recommendation {
            kind: self.measure.kind().into(),
            severity: self.severity(),
            message,
            value: self.ratio(),
            threshold: RATIO,
            objects: (admin && self.statement.is_some())
                .then(|| self.statement.iter().map(|s| s.to_string()).collect()),
        }
    }
}

/// `after` is a regression of `before` by [`RATIO`] and at least `rise`.
fn regressed(before: f64, after: f64, rise: f64) -> bool {
    after >= before * RATIO && after - before >= rise
}

/// A statement's regression between its baseline and window sums, if any
/// (mean time before reads per call when both got worse).
fn statement_regression(
    database: &Arc<str>,
    before: &StatementTotal,
    after: &StatementTotal,
) -> Option<Regression> {
    let (b, a) = (&before.sums, &after.sums);
    if b.calls < MIN_CALLS || a.calls < MIN_CALLS {
        return None;
    }
    let time = (b.mean_ms()?, a.mean_ms()?);
    let reads = (b.reads_per_call()?, a.reads_per_call()?);
    let (measure, (was, is)) = if regressed(time.0, time.1, MIN_MEAN_RISE_MS) {
        (Measure::MeanTime, time)
    } else if regressed(reads.0, reads.1, MIN_READS_RISE) {
        (Measure::ReadsPerCall, reads)
    } else {
        return None;
    };
    Some(Regression {
        measure,
        database: Some(database.clone()),
        queryid: Some(after.queryid),
        statement: after.text.clone().or_else(|| before.text.clone()),
        route: None,
        before: was,
        after: is,
        before_count: b.calls,
        after_count: a.calls,
    })
}

/// What regressed at `now`: every database's statements and every route,
/// the worst [`MAX_REGRESSIONS`] by ratio.
pub fn check(conn: &Connection, now: i64) -> rusqlite::Result<Vec<Regression>> {
    let window = (now - WINDOW, now + 1);
    let baseline = (window.0 - BASELINE, window.0);
    let mut found = Vec::new();
    for database in read::statement_databases(conn, MAX_DATABASES)? {
        let database: Arc<str> = Arc::from(database);
        let before: HashMap<i64, StatementTotal> =
            read::statement_totals(conn, &database, baseline.0, baseline.1, MAX_ROWS)?
                .into_iter()
                .map(|total| (total.queryid, total))
                .collect();
        for after in read::statement_totals(conn, &database, window.0, window.1, MAX_ROWS)? {
            if let Some(before) = before.get(&after.queryid) {
                found.extend(statement_regression(&database, before, &after));
            }
        }
    }
    let before: BTreeMap<(String, String), read::RouteTotal> =
        read::route_totals(conn, baseline.0, baseline.1)?
            .into_iter()
            .map(|total| ((total.method.clone(), total.route.clone()), total))
            .collect();
    for after in read::route_totals(conn, window.0, window.1)? {
        let Some(before) = before.get(&(after.method.clone(), after.route.clone())) else {
            continue;
        };
        if before.sums.requests < MIN_REQUESTS || after.sums.requests < MIN_REQUESTS {
            continue;
        }
        let (Some(was), Some(is)) = (
            before.sums.histogram.quantile(0.95),
            after.sums.histogram.quantile(0.95),
        ) else {
            continue;
        };
        if regressed(was, is, MIN_P95_RISE) {
            found.push(Regression {
                measure: Measure::RouteP95,
                database: None,
                queryid: None,
                statement: None,
                route: Some(format!("{} {}", after.method, after.route)),
                before: was,
                after: is,
                before_count: before.sums.requests,
                after_count: after.sums.requests,
            });
        }
    }
    found.sort_by(|a, b| b.ratio().total_cmp(&a.ratio()));
    found.truncate(MAX_REGRESSIONS);
    Ok(found)
}

impl Regression {
    /// As the store keeps it.
    pub fn recorded(&self) -> Recorded {
        Recorded {
            key: self.key(),
            severity: severity_name(self.severity()),
            summary: self.summary(),
        }
    }
}

#[cfg(test)]
mod tests;
