//! The route table and its p95 charts from Prometheus: the same figures
//! the in-process history gives ([`RouteSummary`]), computed by PromQL over
//! `http_request_duration_seconds` of every series the operator's selector
//! picks, so every replica of the service counts, and the range can be as
//! long as Prometheus keeps.
//!
//! Requests and errors are `increase()` over the range and the quantiles
//! `histogram_quantile()` of the summed buckets, so they carry
//! Prometheus' own approximations: `increase()` extrapolates to the range's
//! edges, and a series' first scrape is its baseline (requests a replica
//! served before Prometheus first saw that route are not counted).

use std::collections::HashMap;
use std::time::Duration;

use super::client::{Client, PrometheusError, Series};
use crate::config::Selector;
use crate::history::{MAX_ROUTES, RouteKey, RouteSummary, TimeRange};

/// The family every query reads.
const FAMILY: &str = "http_request_duration_seconds";
/// The shortest window a rate is taken over: a few scrapes at the usual
/// 15 s interval, so two samples are always inside it.
const MIN_RATE_WINDOW: Duration = Duration::from_secs(60);

/// The PromQL of each figure, for `selector` over `range`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteQueries {
    /// Requests per route over the range, the busiest [`MAX_ROUTES`].
    pub requests: String,
    /// 5xx answers per route over the range.
    pub errors: String,
    /// Requests per second at the range's end.
    pub rate: String,
    /// p50, p95 and p99 over the range.
    pub quantiles: [String; 3],
    /// p95 per step (a range query).
    pub p95_points: String,
}

impl RouteQueries {
    /// The queries for `selector` over `range`.
    pub fn new(selector: &Selector, range: &TimeRange) -> Self {
        let span = range.span_secs();
        let window = range.step.max(MIN_RATE_WINDOW).as_secs();
        let by = "method, route";
        let quantile = |q: &str| {
            format!(
                "histogram_quantile({q}, sum by (le, {by}) (increase({FAMILY}_bucket{{{selector}}}[{span}s])))"
            )
        };
        Self {
            requests: format!(
                "topk({MAX_ROUTES}, sum by ({by}) (increase({FAMILY}_count{{{selector}}}[{span}s])))"
            ),
            errors: format!(
                "sum by ({by}) (increase({FAMILY}_count{{{selector},status_code=~\"5..\"}}[{span}s]))"
            ),
            rate: format!("sum by ({by}) (rate({FAMILY}_count{{{selector}}}[{window}s]))"),
            quantiles: [quantile("0.5"), quantile("0.95"), quantile("0.99")],
            p95_points: format!(
                "histogram_quantile(0.95, sum by (le, {by}) (rate({FAMILY}_bucket{{{selector}}}[{window}s])))"
            ),
        }
    }
}

/// The routes of every replica over `range`, busiest first (at most
/// [`MAX_ROUTES`]), with one p95 point per step of the range.
pub async fn route_summaries(
    client: &Client,
    selector: &Selector,
    range: &TimeRange,
) -> Result<Vec<RouteSummary>, PrometheusError> {
    let queries = RouteQueries::new(selector, range);
    let at = range.end;
    let (requests, errors, rate, p50, p95, p99, points) = tokio::try_join!(
        client.query(&queries.requests, at),
        client.query(&queries.errors, at),
        client.query(&queries.rate, at),
        client.query(&queries.quantiles[0], at),
        client.query(&queries.quantiles[1], at),
        client.query(&queries.quantiles[2], at),
        client.query_range(&queries.p95_points, range),
    )?;
    Ok(assemble(
        range,
        Answers {
            requests,
            errors,
            rate,
            p50,
            p95,
            p99,
            points,
        },
    ))
}

/// What the queries answered.
#[derive(Default)]
struct Answers {
    requests: Vec<Series>,
    errors: Vec<Series>,
    rate: Vec<Series>,
    p50: Vec<Series>,
    p95: Vec<Series>,
    p99: Vec<Series>,
    points: Vec<Series>,
}

/// A series' route, when it has both labels.
fn key(series: &Series) -> Option<RouteKey> {
    Some((
        series.label("method")?.to_owned(),
        series.label("route")?.to_owned(),
    ))
}

/// Each route's finite value in `answer`.
fn by_route(answer: &[Series]) -> HashMap<RouteKey, f64> {
    answer
        .iter()
        .filter_map(|s| Some((key(s)?, s.value().filter(|v| v.is_finite())?)))
        .collect()
}

/// The table from the answers: the routes of `requests` (the only answer
/// whose size the query itself bounds), joined with the others by route.
fn assemble(range: &TimeRange, answers: Answers) -> Vec<RouteSummary> {
    let errors = by_route(&answers.errors);
    let rate = by_route(&answers.rate);
    let p50 = by_route(&answers.p50);
    let p95 = by_route(&answers.p95);
    let p99 = by_route(&answers.p99);
    let mut points: HashMap<RouteKey, Vec<Option<f64>>> = HashMap::new();
    for series in &answers.points {
        let Some(route) = key(series) else { continue };
        let line = points
            .entry(route)
            .or_insert_with(|| vec![None; range.points()]);
        for (at, value) in &series.points {
            if let Some(i) = range.index_of(*at)
                && value.is_finite()
            {
                line[i] = Some(*value);
            }
        }
    }
    let mut summaries: Vec<RouteSummary> = answers
        .requests
        .iter()
        .filter_map(|series| {
            let route = key(series)?;
            let requests = series.value().filter(|v| v.is_finite() && *v >= 0.5)?;
            Some(RouteSummary {
                // histogram_quantile interpolates in a bucket: no bound.
                accuracy: 0.0,
                rate: rate.get(&route).copied().unwrap_or(0.0),
                requests: requests.round() as u64,
                error_ratio: Some((errors.get(&route).copied().unwrap_or(0.0) / requests).min(1.0)),
                p50: p50.get(&route).copied(),
                p95: p95.get(&route).copied(),
                p99: p99.get(&route).copied(),
                p95_points: points
                    .remove(&route)
                    .unwrap_or_else(|| vec![None; range.points()]),
                key: route,
            })
        })
        .take(MAX_ROUTES)
        .collect();
    summaries.sort_by(|a, b| b.requests.cmp(&a.requests).then_with(|| a.key.cmp(&b.key)));
    summaries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(method: &str, route: &str, points: &[(f64, f64)]) -> Series {
        Series {
            labels: vec![
                ("method".into(), method.into()),
                ("route".into(), route.into()),
            ],
            points: points.to_vec(),
        }
    }

    #[test]
    fn queries_put_the_selector_in_every_selector() {
        let selector = Selector::parse(r#"job="shop",namespace=~"prod|stage""#).expect("valid");
        let range = TimeRange::ending(7_200.0, Duration::from_secs(3600), 121);
        let q = RouteQueries::new(&selector, &range);
        assert_eq!(
            q.requests,
            r#"topk(50, sum by (method, route) (increase(http_request_duration_seconds_count{job="shop",namespace=~"prod|stage"}[3600s])))"#
        );
        assert_eq!(
            q.errors,
            r#"sum by (method, route) (increase(http_request_duration_seconds_count{job="shop",namespace=~"prod|stage",status_code=~"5.."}[3600s]))"#
        );
        assert_eq!(
            q.quantiles[1],
            r#"histogram_quantile(0.95, sum by (le, method, route) (increase(http_request_duration_seconds_bucket{job="shop",namespace=~"prod|stage"}[3600s])))"#
        );
        assert_eq!(
            q.p95_points,
            r#"histogram_quantile(0.95, sum by (le, method, route) (rate(http_request_duration_seconds_bucket{job="shop",namespace=~"prod|stage"}[60s])))"#
        );
        let month = TimeRange::ending(0.0, Duration::from_secs(30 * 86_400), 121);
        assert!(
            RouteQueries::new(&selector, &month)
                .rate
                .contains("[21600s]")
        );
    }

    #[test]
    fn answers_join_by_route() {
        let range = TimeRange::ending(1_000.0, Duration::from_secs(100), 11);
        let answers = Answers {
            requests: vec![
                series("GET", "/a", &[(1_000.0, 40.0)]),
                series("GET", "/b", &[(1_000.0, 99.6)]),
                series("GET", "/idle", &[(1_000.0, 0.0)]),
            ],
            errors: vec![series("GET", "/a", &[(1_000.0, 4.0)])],
            rate: vec![series("GET", "/a", &[(1_000.0, 0.5)])],
            p95: vec![
                series("GET", "/a", &[(1_000.0, 0.2)]),
                series("GET", "/b", &[(1_000.0, f64::NAN)]),
            ],
            points: vec![series("GET", "/a", &[(900.0, 0.1), (990.0, 0.3)])],
            ..Default::default()
        };
        let routes = assemble(&range, answers);
        assert_eq!(routes.len(), 2, "{routes:?}");
        assert_eq!(routes[0].key.1, "/b");
        assert_eq!(routes[0].requests, 100);
        assert_eq!(routes[0].p95, None);
        assert_eq!(routes[0].error_ratio, Some(0.0));
        let a = &routes[1];
        assert_eq!(a.requests, 40);
        assert_eq!(a.error_ratio, Some(0.1));
        assert_eq!(a.rate, 0.5);
        assert_eq!(a.p95, Some(0.2));
        assert_eq!(a.p95_points.len(), 11);
        assert_eq!(a.p95_points[0], Some(0.1));
        assert_eq!(a.p95_points[9], Some(0.3));
        assert_eq!(a.p95_points[10], None);
    }
}
