//! The compare view (issue 19, "Deploys compared"): routes and statements
//! in the window before a moment (a deploy marker, usually) against the
//! window after it, from the history store, sorted by how much their mean
//! changed.
//!
//! A mean over three calls says nothing, so an entry is shown only with
//! at least [`MIN_SAMPLES`] calls or requests on both sides, and the
//! answer says so (`minimumSamples`) and counts what it left out. Route
//! figures come from the stored request-duration histograms (mean from
//! their sums, p95 interpolated in the bucket that holds it, as
//! Prometheus' `histogram_quantile` does); statement figures from the
//! stored pg_stat_statements deltas. The types derive poem-openapi's
//! `Object` because they are also the API's answer (one shape, not a
//! copy).

use std::collections::HashMap;

use poem_openapi::Object;

mod shared;

pub use shared::Comparisons;

use super::events::HistoryError;
use crate::store::Store;
use crate::store::read::{self, RouteTotal, StatementTotal};

/// Calls or requests an entry needs on each side to be compared.
pub const MIN_SAMPLES: i64 = 20;
/// Routes and statements returned at most, each.
pub const MAX_ENTRIES: usize = 50;
/// The window when none is asked, seconds.
pub const DEFAULT_WINDOW: i64 = 3_600;
/// The shortest window, seconds (a minute: the routes' stored step).
pub const MIN_WINDOW: i64 = 60;
/// The longest window, seconds (30 days).
pub const MAX_WINDOW: i64 = 30 * 86_400;

/// A route's figures over one window.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct RouteFigures {
    /// Requests answered.
    pub requests: i64,
    /// Of them answered 5xx, as a fraction.
    pub error_ratio: f64,
    /// Mean duration, ms.
    pub mean_ms: f64,
    /// 95th percentile, ms, interpolated inside its histogram bucket (an
    /// estimate: the true value is somewhere in that bucket).
    pub p95_ms: f64,
}

/// One route before and after.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct RouteChange {
    /// HTTP method (or `GRPC`).
    pub method: String,
    /// The route template.
    pub route: String,
    /// The window before.
    pub before: RouteFigures,
    /// The window after.
    pub after: RouteFigures,
    /// Relative change of the mean (`0.5`: half as slow again; `-0.5`:
    /// twice as fast); absent when the mean before was 0.
    #[oai(skip_serializing_if_is_none)]
    pub mean_change: Option<f64>,
}

/// A statement's figures over one window.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct StatementFigures {
    /// Calls.
    pub calls: i64,
    /// Mean execution time, ms.
    pub mean_ms: f64,
    /// Shared blocks read (not found in the buffer cache) per call.
    pub blocks_read_per_call: f64,
}

/// One statement before and after.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct StatementChange {
    /// pg_stat_statements' queryid, as a string (it is a 64-bit integer).
    pub queryid: String,
    /// Its normalized text (no literal values), when stored.
    #[oai(skip_serializing_if_is_none)]
    pub text: Option<String>,
    /// The window before.
    pub before: StatementFigures,
    /// The window after.
    pub after: StatementFigures,
    /// Relative change of the mean, as for routes.
    #[oai(skip_serializing_if_is_none)]
    pub mean_change: Option<f64>,
}

/// Before and after a moment.
#[derive(Clone, Debug, PartialEq, Object)]
#[oai(rename_all = "camelCase")]
pub struct Comparison {
    /// The moment compared around, Unix seconds.
    pub at: i64,
    /// Each window's length, seconds: before is `[at - window, at)`,
    /// after `[at, at + window)`.
    pub window: i64,
    /// The database of the statements.
    pub database: String,
    /// Calls or requests an entry had on each side to be listed.
    pub minimum_samples: i64,
    /// Routes with enough requests on both sides, the largest change of
    /// the mean (either way) first, at most 50.
    pub routes: Vec<RouteChange>,
    /// Routes seen in either window but not listed (too few requests on a
    /// side, or past the cap).
    pub routes_left_out: usize,
    /// Statements with enough calls on both sides, the largest change of
    /// the mean first, at most 50.
    pub statements: Vec<StatementChange>,
    /// Statements seen in either window but not listed.
    pub statements_left_out: usize,
}

/// What one window holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Window {
    /// Its routes.
    pub routes: Vec<RouteTotal>,
    /// Its statements.
    pub statements: Vec<StatementTotal>,
}

/// Compares `[at - window, at)` with `[at, at + window)` for `database`.
pub async fn compare(
    store: Option<&Store>,
    database: &str,
    at: i64,
    window: i64,
) -> Result<Comparison, HistoryError> {
    let store = store.ok_or(HistoryError::NoStore)?;
    validate(at, window)?;
    let name = database.to_owned();
    let (before, after) = store
        .read(move |conn| {
            let window_of = |from: i64, to: i64| -> rusqlite::Result<Window> {
                Ok(Window {
                    routes: read::route_totals(conn, from, to)?,
                    statements: read::statement_totals(conn, &name, from, to, read::MAX_ROWS)?,
                })
            };
            Ok((
                window_of(at.saturating_sub(window).max(0), at)?,
                window_of(at, at.saturating_add(window))?,
            ))
        })
        .await?;
    Ok(compare_windows(database, at, window, &before, &after))
}

/// Checks what a caller asks: a window of [`MIN_WINDOW`] to
/// [`MAX_WINDOW`] seconds, a moment not before the epoch.
fn validate(at: i64, window: i64) -> Result<(), HistoryError> {
    if !(MIN_WINDOW..=MAX_WINDOW).contains(&window) {
        return Err(HistoryError::BadRequest(format!(
            "parameter `window`: expected {MIN_WINDOW} to {MAX_WINDOW} seconds"
        )));
    }
    if at < 0 {
        return Err(HistoryError::BadRequest(
            "parameter `at`: expected Unix seconds, at least 0".into(),
        ));
    }
    Ok(())
}

/// The comparison of two windows already read.
pub fn compare_windows(
    database: &str,
    at: i64,
    window: i64,
    before: &Window,
    after: &Window,
) -> Comparison {
    let (routes, routes_left_out) = routes(&before.routes, &after.routes);
    let (statements, statements_left_out) = statements(&before.statements, &after.statements);
    Comparison {
        at,
        window,
        database: database.to_owned(),
        minimum_samples: MIN_SAMPLES,
        routes,
        routes_left_out,
        statements,
        statements_left_out,
    }
}

fn route_figures(total: &RouteTotal) -> Option<RouteFigures> {
    let sums = &total.sums;
    if sums.requests < MIN_SAMPLES {
        return None;
    }
    Some(RouteFigures {
        requests: sums.requests,
        error_ratio: sums.errors as f64 / sums.requests as f64,
        mean_ms: sums.histogram.mean()? * 1_000.0,
        p95_ms: sums.histogram.quantile(0.95)? * 1_000.0,
    })
}

fn routes(before: &[RouteTotal], after: &[RouteTotal]) -> (Vec<RouteChange>, usize) {
    let key = |total: &RouteTotal| (total.method.clone(), total.route.clone());
    let earlier: HashMap<_, _> = before.iter().map(|total| (key(total), total)).collect();
    let mut changes = Vec::new();
    for total in after {
        let Some(then) = earlier.get(&key(total)) else {
            continue;
        };
        let (Some(before), Some(after)) = (route_figures(then), route_figures(total)) else {
            continue;
        };
        changes.push(RouteChange {
            method: total.method.clone(),
            route: total.route.clone(),
            mean_change: change(before.mean_ms, after.mean_ms),
            before,
            after,
        });
    }
    let seen = seen(before.iter().chain(after).map(key));
    let changes = ranked(changes, |change| change.mean_change);
    let left_out = seen.saturating_sub(changes.len());
    (changes, left_out)
}

fn statement_figures(total: &StatementTotal) -> Option<StatementFigures> {
    let sums = &total.sums;
    if sums.calls < MIN_SAMPLES {
        return None;
    }
    Some(StatementFigures {
        calls: sums.calls,
        mean_ms: sums.mean_ms()?,
        blocks_read_per_call: sums.reads_per_call()?,
    })
}

fn statements(
    before: &[StatementTotal],
    after: &[StatementTotal],
) -> (Vec<StatementChange>, usize) {
    let earlier: HashMap<i64, &StatementTotal> =
        before.iter().map(|total| (total.queryid, total)).collect();
    let mut changes = Vec::new();
    for total in after {
        let Some(then) = earlier.get(&total.queryid) else {
            continue;
        };
        let (Some(before), Some(after)) = (statement_figures(then), statement_figures(total))
        else {
            continue;
        };
        changes.push(StatementChange {
            queryid: total.queryid.to_string(),
            text: total
                .text
                .as_deref()
                .or(then.text.as_deref())
                .map(str::to_owned),
            mean_change: change(before.mean_ms, after.mean_ms),
            before,
            after,
        });
    }
    let seen = seen(before.iter().chain(after).map(|total| total.queryid));
    let changes = ranked(changes, |change| change.mean_change);
    let left_out = seen.saturating_sub(changes.len());
    (changes, left_out)
}

/// Distinct keys.
fn seen<K: std::hash::Hash + Eq>(keys: impl Iterator<Item = K>) -> usize {
    keys.collect::<std::collections::HashSet<_>>().len()
}

/// `after` relative to `before` (`None` when `before` is not positive).
fn change(before: f64, after: f64) -> Option<f64> {
    (before > 0.0 && after.is_finite()).then(|| after / before - 1.0)
}

/// The largest changes either way first (by the log of the ratio, so
/// twice as slow and twice as fast weigh the same), those without one
/// last, at most [`MAX_ENTRIES`].
fn ranked<T>(mut entries: Vec<T>, change_of: impl Fn(&T) -> Option<f64>) -> Vec<T> {
    let weight = |entry: &T| change_of(entry).map_or(-1.0, |change| (1.0 + change).ln().abs());
    entries.sort_by(|a, b| weight(b).total_cmp(&weight(a)));
    entries.truncate(MAX_ENTRIES);
    entries
}

#[cfg(test)]
mod tests;
