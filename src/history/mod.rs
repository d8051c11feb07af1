//! The pages' memory of the last hour: one sample every
//! [`SAMPLE_INTERVAL`], [`POINTS`] kept, for the runtime, the busiest
//! [`MAX_ROUTES`] routes and the [`MAX_STATEMENTS`] statements with the most
//! database time. Bounded by construction: a point of a route is three
//! numbers and its interval's quantile sketch, encoded in at most
//! [`MAX_POINT_BYTES`], so the whole history stays near 3.3 MiB at its caps
//! (its unit tests measure it).
//!
//! A route's point holds the quantile sketch of its interval (the
//! difference between two reads of the cumulative sketches the request
//! path records, [`crate::metrics::sketch`]), so the pages show the hour's
//! p50/p95/p99 within 1 % of a real request's duration, not a point
//! interpolated inside a histogram bucket (which printed 1.75 s for
//! requests that all took 1.10 s). An interval spread over more buckets
//! than its bytes hold is kept at a coarser resolution (2 %, 4 %, …);
//! [`RouteSummary::accuracy`] says which.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::metrics::histogram::HistogramSnapshot;
use crate::metrics::sketch::Sketch;

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
/// Bytes of one route point's interval sketch at most: about 50 buckets at
/// 1 %; a wider interval is coarsened to fit.
pub const MAX_POINT_BYTES: usize = 128;

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
    /// The interval's sketch, [`Sketch::encode`]d, at most
    /// [`MAX_POINT_BYTES`].
    sketch: Box<[u8]>,
}

impl RoutePoint {
    fn sketch(&self) -> Sketch {
        // Encoded by `record` itself: cannot fail, an empty one if it did.
        Sketch::decode(&self.sketch).unwrap_or_default()
    }
}

/// The last cumulative reading of a route, kept encoded (a dense sketch of
/// a wide distribution is KiBs; its encoding a fraction of that).
#[derive(Clone, Debug, Default)]
struct PreviousRoute {
    sketch: Box<[u8]>,
    errors: u64,
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
    /// All its series merged (the exported buckets, for whoever keeps
    /// them; the history's quantiles come from `sketch`).
    pub histogram: HistogramSnapshot,
    /// All its series' duration sketches merged.
    pub sketch: Sketch,
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
    /// Quantiles over the window, seconds, each within `accuracy` of a
    /// request's real duration.
    pub p50: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
    /// 99th percentile.
    pub p99: Option<f64>,
    /// p95 per interval, oldest first (one per sample so far, at most
    /// [`POINTS`]).
    pub p95_points: Vec<Option<f64>>,
    /// Relative error of the window's quantiles (0.01 at full resolution).
    /// (0 when the source has no sketch: Prometheus' bucket
    /// interpolation.)
    pub accuracy: f64,
}

#[derive(Default)]
struct State {
    tick: u64,
    previous_routes: HashMap<RouteKey, PreviousRoute>,
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
            let before = state.previous_routes.get(key);
            let was = before
                .and_then(|b| Sketch::decode(&b.sketch).ok())
                .unwrap_or_default();
            let mut interval = now.sketch.minus(&was);
            let requests = u32::try_from(interval.count()).unwrap_or(u32::MAX);
            if requests == 0 {
                continue;
            }
            interval.fit(MAX_POINT_BYTES);
            points.push((
                key.clone(),
                RoutePoint {
                    tick,
                    requests,
                    errors: delta(now.errors, before.map_or(0, |b| b.errors)),
                    sketch: interval.encode().into_boxed_slice(),
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
        state.previous_routes = reading
            .routes
            .into_iter()
            .map(|(key, now)| {
                let previous = PreviousRoute {
                    sketch: now.sketch.encode().into_boxed_slice(),
                    errors: now.errors,
                };
                (key, previous)
            })
            .collect();

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
                let mut window = Sketch::new();
                let mut errors = 0u64;
                let mut p95s = Vec::with_capacity(series.len());
                for point in series {
                    let sketch = point.sketch();
                    errors += u64::from(point.errors);
                    p95s.push((point.tick, sketch.quantile(0.95).unwrap_or(0.0)));
                    window.merge(&sketch);
                }
                let recent: u64 = series
                    .iter()
                    .filter(|p| p.tick + 6 > state.tick)
                    .map(|p| u64::from(p.requests))
                    .sum();
                let requests = window.count();
                RouteSummary {
                    key: key.clone(),
                    rate: recent as f64
                        / (6.0 * interval)
                            .min(state.tick as f64 * interval)
                            .max(interval),
                    requests,
                    error_ratio: (requests > 0).then(|| errors as f64 / requests as f64),
                    p50: window.quantile(0.5),
                    p95: window.quantile(0.95),
                    p99: window.quantile(0.99),
                    p95_points: aligned(state.tick, p95s.into_iter()),
                    accuracy: window.relative_accuracy(),
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
        let routes: usize = state
            .routes
            .values()
            .map(|s| {
                s.iter()
                    .map(|p| std::mem::size_of::<RoutePoint>() + p.sketch.len())
                    .sum::<usize>()
                    + 64
            })
            .sum();
        let previous: usize = state
            .previous_routes
            .values()
            .map(|p| std::mem::size_of::<(RouteKey, PreviousRoute)>() + p.sketch.len() + 64)
            .sum();
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
    use crate::metrics::sketch::AtomicSketch;

    /// A reading of routes: name, the cumulative sketch, errors so far.
    fn reading(routes: &[(&str, &AtomicSketch, u64)]) -> Reading {
        Reading {
            routes: routes
                .iter()
                .map(|(route, sketch, errors)| {
                    (
                        ("GET".to_owned(), (*route).to_owned()),
                        RouteReading {
                            sketch: sketch.snapshot(),
                            errors: *errors,
                            ..RouteReading::default()
                        },
                    )
                })
                .collect(),
            ..Default::default()
        }
    }

    fn observe(sketch: &AtomicSketch, value: f64, times: usize) {
        for _ in 0..times {
            sketch.observe(value);
        }
    }

    #[test]
    fn intervals_are_differences_and_quantiles_cover_the_window() {
        let history = History::default();
        let a = AtomicSketch::default();
        observe(&a, 0.004, 10);
        history.record(reading(&[("/a", &a, 0)]));
        observe(&a, 0.040, 20);
        history.record(reading(&[("/a", &a, 2)]));
        let routes = history.routes();
        assert_eq!(routes.len(), 1);
        let a = &routes[0];
        assert_eq!(a.requests, 30);
        assert_eq!(a.error_ratio, Some(2.0 / 30.0));
        // 10 at 4 ms, 20 at 40 ms: the quantiles are those durations, not
        // points inside a bucket.
        let within = |v: Option<f64>, expected: f64| {
            let v = v.expect("a quantile");
            assert!((v - expected).abs() <= expected * 0.01, "{v} vs {expected}");
        };
        within(a.p50, 0.040);
        within(a.p95, 0.040);
        assert!((a.accuracy - 0.01).abs() < 1e-9, "full resolution");
        assert_eq!(a.p95_points.len(), 2, "one per sample so far");
        within(a.p95_points[0], 0.004);
        within(a.p95_points[1], 0.040);
        // 30 requests over two 10 s intervals.
        assert!((a.rate - 1.5).abs() < 1e-9, "{}", a.rate);
    }

    #[test]
    fn fast_routes_show_their_own_durations() {
        // Under a millisecond the histogram's first bucket said 500 µs,
        // 950 µs and 990 µs for every route.
        let history = History::default();
        let fast = AtomicSketch::default();
        observe(&fast, 0.000_080, 100);
        let faster = AtomicSketch::default();
        observe(&faster, 0.000_020, 100);
        history.record(reading(&[("/fast", &fast, 0), ("/faster", &faster, 0)]));
        for route in history.routes() {
            let expected = if route.key.1 == "/fast" { 80e-6 } else { 20e-6 };
            for q in [route.p50, route.p95, route.p99] {
                let q = q.expect("a quantile");
                assert!((q - expected).abs() <= expected * 0.01, "{route:?}");
            }
        }
    }

    #[test]
    fn a_wide_interval_is_coarsened_to_its_bytes() {
        let history = History::default();
        let wide = AtomicSketch::default();
        for i in 1..=5_000 {
            wide.observe(f64::from(i) * 1e-3);
        }
        history.record(reading(&[("/wide", &wide, 0)]));
        let route = &history.routes()[0];
        assert_eq!(route.requests, 5_000);
        assert!(route.accuracy > 0.01, "coarsened: {}", route.accuracy);
        let p50 = route.p50.expect("p50");
        assert!((p50 - 2.5).abs() <= 2.5 * route.accuracy, "{p50}");
        let state = history.state.lock();
        let point = &state.routes[&("GET".to_owned(), "/wide".to_owned())][0];
        assert!(point.sketch.len() <= MAX_POINT_BYTES);
    }

    #[test]
    fn the_busiest_routes_are_kept_and_old_points_leave() {
        let history = History::default();
        let names: Vec<String> = (0..MAX_ROUTES + 10).map(|i| format!("/r{i}")).collect();
        let sketches: Vec<AtomicSketch> = (0..names.len())
            .map(|i| {
                let sketch = AtomicSketch::default();
                observe(&sketch, 0.005, i + 1);
                sketch
            })
            .collect();
        let first: Vec<(&str, &AtomicSketch, u64)> = names
            .iter()
            .zip(&sketches)
            .map(|(n, s)| (n.as_str(), s, 0))
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

    /// At its caps — 50 routes busy in every interval of the hour, each
    /// interval spread over more buckets than a point holds, 50 statements,
    /// and many more routes and statements read each time — the history
    /// stays near its estimate, well under the 32 MiB memory goal.
    #[test]
    fn a_full_hour_at_the_caps_stays_small() {
        let history = History::default();
        let sketches: Vec<AtomicSketch> = (0..80).map(|_| AtomicSketch::default()).collect();
        for tick in 1..=(POINTS as u64 + 10) {
            let mut reading = Reading::default();
            for (route, sketch) in sketches.iter().enumerate() {
                // Log-spread from 1 ms to ~10 s: about 450 buckets in all,
                // 60 new values per interval (some routes more).
                for i in 0..(60 + route as u64 % 7) {
                    let step = (tick * 61 + i * 7) % 460;
                    sketch.observe(0.001 * (step as f64 * 0.02).exp());
                }
                reading.routes.insert(
                    ("GET".to_owned(), format!("/route/{route}")),
                    RouteReading {
                        sketch: sketch.snapshot(),
                        errors: tick,
                        ..RouteReading::default()
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
        let bytes = history.approximate_bytes();
        println!("history at its caps: about {bytes} bytes");
        assert!(bytes < 4 * 1024 * 1024, "{bytes} bytes");
    }
}
