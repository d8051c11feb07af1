//! The pages' memory of the last hour: one sample every
//! [`SAMPLE_INTERVAL`], [`POINTS`] kept, for the runtime, the busiest
//! [`MAX_ROUTES`] routes and the [`MAX_STATEMENTS`] statements with the most
//! database time. Bounded by construction: a point of a route is five
//! numbers and its interval's bucket counts (u32), so the whole history
//! stays near 2.5 MiB at its caps (its unit tests measure it).
//!
//! A route's point holds the bucket counts of its interval (the difference
//! between two reads of the cumulative histograms), so the pages show exact
//! bucket-resolution quantiles over the whole hour, as
//! `histogram_quantile(rate(...[1h]))` would.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::metrics::histogram::HistogramSnapshot;

mod range;
mod sample;

pub use range::TimeRange;
pub use sample::{Sources, read};

/// Time between samples.
pub const SAMPLE_INTERVAL: Duration = Duration::from_secs(10);
/// Samples kept: an hour at the interval.
pub const POINTS: usize = 360;
/// Routes with a history (the busiest of the window).
pub const MAX_ROUTES: usize = 50;
/// Statements with a history (the most total time of the window).
pub const MAX_STATEMENTS: usize = 50;

/// A route: its method and template, e.g. `("GET", "/users/:id")`.
pub type RouteKey = (String, String);
/// A statement: its database and queryid.
pub type StatementKey = (Arc<str>, i64);

/// One interval of one route.
#[derive(Clone, Debug)]
struct RoutePoint {
    tick: u64,
    requests: u32,
    errors: u32,
    /// Bucket counts of the interval, in the histogram's bounds.
    buckets: Box<[u32]>,
    sum: f64,
}

/// One interval of the runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct RuntimePoint {
    /// Worst event-loop lag of the interval, seconds.
    pub lag: f64,
    /// Busy share of the workers (0..1).
    pub utilization: f64,
    /// Resident memory, bytes.
    pub resident: u64,
}

/// One interval of one statement.
#[derive(Clone, Copy, Debug)]
struct StatementPoint {
    tick: u64,
    calls: u64,
    total_ms: f64,
}

/// The cumulative reading of one route at a sample.
#[derive(Clone, Debug, Default)]
pub struct RouteReading {
    /// All its series merged.
    pub histogram: HistogramSnapshot,
    /// Requests answered 5xx so far.
    pub errors: u64,
}

/// What one sample reads (built by the sampler, or by tests).
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// Cumulative histograms per route.
    pub routes: HashMap<RouteKey, RouteReading>,
    /// The runtime now.
    pub runtime: RuntimePoint,
    /// Cumulative calls and total time per statement.
    pub statements: HashMap<StatementKey, (u64, f64)>,
}

/// A route's figures over the window, for the overview.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteSummary {
    /// Method and template.
    pub key: RouteKey,
    /// Requests per second over the last minute.
    pub rate: f64,
    /// Requests in the window.
    pub requests: u64,
    /// Share of them answered 5xx.
    pub error_ratio: Option<f64>,
    /// Quantiles over the window, seconds.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// p95 per interval, oldest first (one per sample so far, at most
    /// [`POINTS`]).
    pub p95_points: Vec<Option<f64>>,
}

#[derive(Default)]
struct State {
    tick: u64,
    bounds: Vec<f64>,
    previous_routes: HashMap<RouteKey, RouteReading>,
    previous_statements: HashMap<StatementKey, (u64, f64)>,
    routes: HashMap<RouteKey, VecDeque<RoutePoint>>,
    statements: HashMap<StatementKey, VecDeque<StatementPoint>>,
    runtime: VecDeque<(u64, RuntimePoint)>,
}

/// The history; see the module docs.
#[derive(Default)]
pub struct History {
    state: Mutex<State>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").finish_non_exhaustive()
    }
}

fn delta(now: u64, before: u64) -> u32 {
    u32::try_from(now.saturating_sub(before)).unwrap_or(u32::MAX)
}

impl History {
    /// Records one sample.
    pub fn record(&self, reading: Reading) {
        let mut state = self.state.lock();
        state.tick += 1;
        let tick = state.tick;
        let oldest = tick.saturating_sub(POINTS as u64 - 1);
        // Routes: the interval is this reading minus the previous one (a
        // route seen for the first time counts from zero).
        let mut points: Vec<(RouteKey, RoutePoint)> = Vec::new();
        for (key, now) in &reading.routes {
            if state.bounds.is_empty() {
                state.bounds = now.histogram.buckets.iter().map(|(b, _)| *b).collect();
            }
            let before = state.previous_routes.get(key);
            let requests = delta(now.histogram.count, before.map_or(0, |b| b.histogram.count));
            if requests == 0 {
                continue;
            }
            let buckets = now
                .histogram
                .buckets
                .iter()
                .enumerate()
                .map(|(i, (_, count))| {
                    let was = before
                        .and_then(|b| b.histogram.buckets.get(i))
                        .map_or(0, |(_, c)| *c);
                    delta(*count, was)
                })
                .collect();
            points.push((
                key.clone(),
                RoutePoint {
                    tick,
                    requests,
                    errors: delta(now.errors, before.map_or(0, |b| b.errors)),
                    buckets,
                    sum: (now.histogram.sum - before.map_or(0.0, |b| b.histogram.sum)).max(0.0),
                },
            ));
        }
        for (key, point) in points {
            state.routes.entry(key).or_default().push_back(point);
        }
        for series in state.routes.values_mut() {
            while series.front().is_some_and(|p| p.tick < oldest) {
                series.pop_front();
            }
        }
        state.routes.retain(|_, series| !series.is_empty());
        keep_busiest(&mut state.routes, MAX_ROUTES, |p| f64::from(p.requests));
        state.previous_routes = reading.routes;

        let mut statement_points = Vec::new();
        for (key, &(calls, total_ms)) in &reading.statements {
            let (was_calls, was_total) = state
                .previous_statements
                .get(key)
                .copied()
                .unwrap_or((calls, total_ms));
            // A stats reset shows as counts going down: start again.
            if calls <= was_calls {
                continue;
            }
            statement_points.push((
                key.clone(),
                StatementPoint {
                    tick,
                    calls: calls - was_calls,
                    total_ms: (total_ms - was_total).max(0.0),
                },
            ));
        }
        for (key, point) in statement_points {
            state.statements.entry(key).or_default().push_back(point);
        }
        for series in state.statements.values_mut() {
            while series.front().is_some_and(|p| p.tick < oldest) {
                series.pop_front();
            }
        }
        state.statements.retain(|_, series| !series.is_empty());
        keep_busiest(&mut state.statements, MAX_STATEMENTS, |p| p.total_ms);
        state.previous_statements = reading.statements;

        state.runtime.push_back((tick, reading.runtime));
        while state.runtime.len() > POINTS {
            state.runtime.pop_front();
        }
    }

    /// The routes with a history, busiest first.
    pub fn routes(&self) -> Vec<RouteSummary> {
        let state = self.state.lock();
        let interval = SAMPLE_INTERVAL.as_secs_f64();
        let mut summaries: Vec<RouteSummary> = state
            .routes
            .iter()
            .map(|(key, series)| {
                let mut window = HistogramSnapshot {
                    sum: 0.0,
                    count: 0,
                    buckets: state.bounds.iter().map(|b| (*b, 0)).collect(),
                };
                let mut errors = 0u64;
                for point in series {
                    window.count += u64::from(point.requests);
                    window.sum += point.sum;
                    errors += u64::from(point.errors);
                    for ((_, total), count) in window.buckets.iter_mut().zip(point.buckets.iter()) {
                        *total += u64::from(*count);
                    }
                }
                let recent: u64 = series
                    .iter()
                    .filter(|p| p.tick + 6 > state.tick)
                    .map(|p| u64::from(p.requests))
                    .sum();
                let per_tick = |f: &dyn Fn(&RoutePoint) -> f64| {
                    aligned(state.tick, series.iter().map(|p| (p.tick, f(p))))
                };
                let p95_points = per_tick(&|p| {
                    point_histogram(&state.bounds, p)
                        .quantile(0.95)
                        .unwrap_or(0.0)
                });
                RouteSummary {
                    key: key.clone(),
                    rate: recent as f64
                        / (6.0 * interval)
                            .min(state.tick as f64 * interval)
                            .max(interval),
                    requests: window.count,
                    error_ratio: (window.count > 0).then(|| errors as f64 / window.count as f64),
                    p50: window.quantile(0.5),
                    p95: window.quantile(0.95),
                    p99: window.quantile(0.99),
                    p95_points,
                }
            })
            .collect();
        summaries.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.key.cmp(&b.key)));
        summaries
    }

    /// Mean time per interval of a statement (ms), oldest first, and its
    /// calls over the window.
    pub fn statement(&self, key: &StatementKey) -> Option<(Vec<Option<f64>>, u64)> {
        let state = self.state.lock();
        let series = state.statements.get(key)?;
        let calls = series.iter().map(|p| p.calls).sum();
        let points = aligned(
            state.tick,
            series
                .iter()
                .map(|p| (p.tick, p.total_ms / p.calls.max(1) as f64)),
        );
        Some((points, calls))
    }

    /// The runtime's points, oldest first.
    pub fn runtime(&self) -> Vec<RuntimePoint> {
        self.state.lock().runtime.iter().map(|(_, p)| *p).collect()
    }

    /// Routes and statements with a history.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize) {
        let state = self.state.lock();
        (state.routes.len(), state.statements.len())
    }

    /// An estimate of the memory the history holds, bytes (the unit tests
    /// hold it to the figure above).
    #[cfg(test)]
    pub fn approximate_bytes(&self) -> usize {
        let state = self.state.lock();
        let route_point = std::mem::size_of::<RoutePoint>() + state.bounds.len() * 4;
        let routes: usize = state
            .routes
            .values()
            .map(|s| s.len() * route_point + 64)
            .sum();
        let previous = state.previous_routes.len()
            * (std::mem::size_of::<RouteReading>() + state.bounds.len() * 16 + 64);
        let statements: usize = state
            .statements
            .values()
            .map(|s| s.len() * std::mem::size_of::<StatementPoint>() + 48)
            .sum();
        routes
            + previous
            + statements
            + state.previous_statements.len() * 48
            + state.runtime.len() * std::mem::size_of::<(u64, RuntimePoint)>()
    }
}

/// The interval's own histogram.
fn point_histogram(bounds: &[f64], point: &RoutePoint) -> HistogramSnapshot {
    HistogramSnapshot {
        sum: point.sum,
        count: u64::from(point.requests),
        buckets: bounds
            .iter()
            .zip(point.buckets.iter())
            .map(|(b, c)| (*b, u64::from(*c)))
            .collect(),
    }
}

/// One value per sample taken so far (at most [`POINTS`]), ending at
/// `tick`, `None` where no point was kept: the charts of every route and
/// the runtime share this time axis.
fn aligned(tick: u64, points: impl Iterator<Item = (u64, f64)>) -> Vec<Option<f64>> {
    let len = usize::try_from(tick.min(POINTS as u64)).unwrap_or(POINTS);
    let first = tick + 1 - len as u64;
    let mut out = vec![None; len];
    for (at, value) in points {
        if at >= first && at <= tick {
            out[usize::try_from(at - first).unwrap_or(0)] = Some(value);
        }
    }
    out
}

/// Keeps the `cap` series with the largest total of `weight`.
fn keep_busiest<K: Clone + Eq + std::hash::Hash, P>(
    series: &mut HashMap<K, VecDeque<P>>,
    cap: usize,
    weight: impl Fn(&P) -> f64,
) {
    if series.len() <= cap {
        return;
    }
    let mut totals: Vec<(K, f64)> = series
        .iter()
        .map(|(k, s)| (k.clone(), s.iter().map(&weight).sum()))
        .collect();
    totals.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (key, _) in totals.into_iter().skip(cap) {
        series.remove(&key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(routes: &[(&str, u64, u64, &[u64])]) -> Reading {
        let bounds = [0.01, 0.1, 1.0, f64::INFINITY];
        Reading {
            routes: routes
                .iter()
                .map(|(route, count, errors, buckets)| {
                    (
                        ("GET".to_owned(), (*route).to_owned()),
                        RouteReading {
                            histogram: HistogramSnapshot {
                                sum: 0.05 * *count as f64,
                                count: *count,
                                buckets: bounds
                                    .iter()
                                    .copied()
                                    .zip(buckets.iter().copied())
                                    .collect(),
                            },
                            errors: *errors,
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn intervals_are_differences_and_quantiles_cover_the_window() {
        let history = History::default();
        history.record(reading(&[("/a", 10, 0, &[10, 0, 0, 0])]));
        history.record(reading(&[("/a", 30, 2, &[10, 20, 0, 0])]));
        let routes = history.routes();
        assert_eq!(routes.len(), 1);
        let a = &routes[0];
        assert_eq!(a.requests, 30);
        assert_eq!(a.error_ratio, Some(2.0 / 30.0));
        // 10 under 10 ms, 20 between 10 and 100 ms.
        let p50 = a.p50.expect("p50");
        assert!(p50 > 0.01 && p50 < 0.1, "{p50}");
        assert!(a.p95.expect("p95") > 0.08);
        assert_eq!(a.p95_points.len(), 2, "one per sample so far");
        assert_eq!(a.p95_points.iter().flatten().count(), 2);
        // 30 requests over two 10 s intervals.
        assert!((a.rate - 1.5).abs() < 1e-9, "{}", a.rate);
    }

    #[test]
    fn the_busiest_routes_are_kept_and_old_points_leave() {
        let history = History::default();
        let names: Vec<String> = (0..MAX_ROUTES + 10).map(|i| format!("/r{i}")).collect();
        let first: Vec<(&str, u64, u64, &[u64])> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i as u64 + 1, 0, &[1u64, 0, 0, 0][..]))
            .collect();
        history.record(reading(&first));
        let (routes, _) = history.sizes();
        assert_eq!(routes, MAX_ROUTES);
        let kept = history.routes();
        assert!(
            kept.iter().all(|r| r.key.1 != "/r0"),
            "the quietest is dropped"
        );
        // An hour of idle samples empties the history.
        for _ in 0..POINTS {
            history.record(reading(&first));
        }
        assert_eq!(history.sizes().0, 0);
        assert!(history.approximate_bytes() < 64 * 1024);
    }

    #[test]
    fn statements_report_the_mean_per_interval_and_restart_after_a_reset() {
        let history = History::default();
        let key: StatementKey = (Arc::from("default"), 42);
        let mut reading = Reading::default();
        reading.statements.insert(key.clone(), (10, 100.0));
        history.record(reading.clone());
        reading.statements.insert(key.clone(), (20, 300.0));
        history.record(reading.clone());
        let (points, calls) = history.statement(&key).expect("a history");
        assert_eq!(calls, 10);
        assert_eq!(
            points.iter().flatten().copied().collect::<Vec<_>>(),
            vec![20.0]
        );
        reading.statements.insert(key.clone(), (3, 10.0));
        history.record(reading);
        assert_eq!(history.statement(&key).expect("kept").1, 10);
    }

    /// At its caps — 50 routes busy in every interval of the hour, 50
    /// statements, and many more routes and statements read each time — the
    /// history stays near its estimate, well under the 32 MiB memory goal.
    #[test]
    fn a_full_hour_at_the_caps_stays_small() {
        let history = History::default();
        let bounds: Vec<f64> = crate::metrics::histogram::Buckets::default_http()
            .bounds()
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .collect();
        for tick in 1..=(POINTS as u64 + 10) {
            let mut reading = Reading::default();
            for route in 0..200u64 {
                let count = tick * (route + 1);
                reading.routes.insert(
                    ("GET".to_owned(), format!("/route/{route}")),
                    RouteReading {
                        histogram: HistogramSnapshot {
                            sum: count as f64 * 0.01,
                            count,
                            buckets: bounds
                                .iter()
                                .map(|b| (*b, count / bounds.len() as u64))
                                .collect(),
                        },
                        errors: tick,
                    },
                );
            }
            for queryid in 0..500i64 {
                reading.statements.insert(
                    (Arc::from("default"), queryid),
                    (tick * 10, tick as f64 * 3.0),
                );
            }
            history.record(reading);
        }
        assert_eq!(history.sizes(), (MAX_ROUTES, MAX_STATEMENTS));
        let routes = history.routes();
        assert!(routes.iter().all(|r| r.p95_points.len() == POINTS));
        assert!(routes[0].key.1 == "/route/199", "the busiest first");
        let bytes = history.approximate_bytes();
        println!("history at its caps: about {bytes} bytes");
        assert!(bytes < 4 * 1024 * 1024, "{bytes} bytes");
    }
}
