//! The Overview page (`GET /ui`): routes with their rates, latencies and
//! errors over the last hour, the runtime, memory, pools and firing
//! alerts. Its handler, the figures it reads and its view live together,
//! so the page is changed in one file. The route table comes from the
//! pages' route source (this process, or Prometheus across every replica)
//! and says which; the other cards are always this process's. The route
//! table takes a range (`?range=1h|24h|7d|30d`, see `ui::range`): past
//! the hour it reads the history store (or Prometheus, when configured),
//! and marks the store's events (deploys, resets, …) on its charts. The
//! runtime cards' sparklines follow the same range: past the hour they
//! draw the store's runtime minutes (`ui::timeline::runtime`).

use std::collections::HashMap;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use crate::Perfscope;
use crate::alerts::{FiringAlert, PoolReading};
use crate::history::{POINTS, RouteSummary, RuntimePoint, SAMPLE_INTERVAL, TimeRange};
use crate::ui::Ui;
use crate::ui::format;
use crate::ui::guard::LoggedIn;
use crate::ui::layout::{Page, shown, shown_with};
use crate::ui::range::{Axis, ChartRange, selector};
use crate::ui::routes::{Origin, RouteView};
use crate::ui::svg::{chart, sparkline};
use crate::ui::timeline::Timeline;
use crate::ui::timeline::runtime::RuntimeTrend;
use crate::ui::widgets::meter;

#[handler]
pub async fn show(
    ui: Data<&Ui>,
    Query(query): Query<HashMap<String, String>>,
    logged_in: LoggedIn,
) -> Response {
    let session = &logged_in.session;
    let range = match ChartRange::parse(query.get("range").map(String::as_str)) {
        Ok(range) => range,
        Err(message) => {
            return shown_with(
                StatusCode::BAD_REQUEST,
                Page::Overview,
                session,
                html! { h1 { "Overview" } (selector(ChartRange::Hour, "/ui?")) p.notice { (message) } },
            );
        }
    };
    let mut data = data(&ui.perfscope);
    let timeline = Timeline::load(&ui.perfscope, range).await;
    let (routes, axis) = routes(&ui, &timeline).await;
    data.routes = routes.routes;
    data.routes_origin = routes.origin;
    data.range = range;
    data.axis = Some(axis);
    data.stored_runtime = stored_runtime(&timeline).await;
    data.events = timeline.events;
    data.notice = timeline
        .notice
        .filter(|_| !matches!(data.routes_origin, Origin::Prometheus { .. }));
    shown(Page::Overview, session, view(&data))
}

/// The runtime over the timeline's range from the store, past the hour
/// (`None`: the process's own hour is drawn).
async fn stored_runtime(timeline: &Timeline) -> Option<RuntimeTrend> {
    #[cfg(feature = "store")]
    if let Some(store) = &timeline.store {
        match RuntimeTrend::load(store, timeline.range, timeline.now).await {
            Ok(trend) => return Some(trend),
            Err(error) => {
                tracing::warn!(%error, "the history store gave no runtime data; the overview shows this process's hour");
            }
        }
    }
    let _ = timeline;
    None
}

/// The route table's rows over the timeline's range, and their axis:
/// Prometheus when configured, the store past the hour, else this
/// process's hour.
async fn routes(ui: &Ui, timeline: &Timeline) -> (RouteView, Axis) {
    #[cfg(feature = "store")]
    if let (Some(store), false) = (&timeline.store, ui.routes.is_remote()) {
        match ui
            .stored_routes
            .routes(store, timeline.range, timeline.now)
            .await
        {
            Ok((routes, axis)) => {
                let origin = Origin::Store;
                return (RouteView { routes, origin }, axis);
            }
            Err(error) => {
                tracing::warn!(%error, "the history store gave no route data; the overview shows this process's hour");
            }
        }
    }
    let range: TimeRange = timeline.range.time_range(timeline.now as f64);
    let view = ui.routes.routes(&ui.perfscope, range).await;
    let axis = match view.origin {
        Origin::Prometheus { .. } => Axis {
            last: range.start + range.step.as_secs_f64() * (range.points() - 1) as f64,
            step: range.step.as_secs_f64(),
        },
        _ => Axis {
            last: timeline.now as f64,
            step: SAMPLE_INTERVAL.as_secs_f64(),
        },
    };
    (view, axis)
}

/// The Overview's figures now.
pub fn data(perfscope: &Perfscope) -> Overview {
    let process = crate::runtime::process::ProcessSnapshot::read();
    let runtime = perfscope.runtime().snapshot();
    let config = perfscope.config();
    Overview {
        uptime: perfscope.uptime().as_secs_f64(),
        resident: process.resident_bytes,
        limit: process.memory_limit_bytes,
        memory_threshold: config.runtime.high_memory_threshold,
        lag: runtime.lag.as_secs_f64(),
        lag_threshold: config.runtime.event_loop_lag_threshold.as_secs_f64(),
        utilization: runtime.utilization,
        workers: runtime.workers,
        http_buckets: config.metrics.http_buckets.bounds().to_vec(),
        runtime: perfscope.history().runtime(),
        stored_runtime: None,
        routes: perfscope.history().routes(),
        routes_origin: Origin::Process,
        range: ChartRange::Hour,
        axis: None,
        events: Vec::new(),
        notice: None,
        pools: perfscope
            .db()
            .pool_readings()
            .into_iter()
            .map(|reading| PoolRow {
                size: reading.size,
                max: reading.max,
                reading,
            })
            .collect(),
        alerts: perfscope.alerts().firing(),
    }
}

/// What the Overview shows.
#[derive(Clone, Debug, Default)]
pub struct Overview {
    /// Seconds since start.
    pub uptime: f64,
    /// Resident memory now.
    pub resident: u64,
    /// The container's limit.
    pub limit: Option<u64>,
    /// `HIGH_MEMORY_THRESHOLD`.
    pub memory_threshold: f64,
    /// Lag now, seconds.
    pub lag: f64,
    /// `EVENT_LOOP_LAG_THRESHOLD`, seconds.
    pub lag_threshold: f64,
    /// Busy share now.
    pub utilization: f64,
    /// Worker threads.
    pub workers: usize,
    /// The runtime's history.
    pub runtime: Vec<RuntimePoint>,
    /// The request histogram's bounds, seconds: where a route's quantiles
    /// are bucket interpolations, the bucket is shown instead.
    pub http_buckets: Vec<f64>,
    /// The runtime over the range from the store, drawn instead of
    /// `runtime` past the hour.
    pub stored_runtime: Option<RuntimeTrend>,
    /// Routes, busiest first.
    pub routes: Vec<RouteSummary>,
    /// Where `routes` came from.
    pub routes_origin: Origin,
    /// The route charts' range.
    pub range: ChartRange,
    /// The route charts' time axis, for the markers.
    pub axis: Option<Axis>,
    /// Events to mark: time and label.
    pub events: Vec<(f64, String)>,
    /// Why the route charts cover less than the range.
    pub notice: Option<String>,
    /// Pools with their size and limit.
    pub pools: Vec<PoolRow>,
    /// Alerts firing now.
    pub alerts: Vec<FiringAlert>,
}

/// One pool.
#[derive(Clone, Debug)]
pub struct PoolRow {
    /// The reading the alert rules see.
    pub reading: PoolReading,
    /// Connections open.
    pub size: usize,
    /// The limit.
    pub max: usize,
}

/// The Overview page's body.
pub fn view(data: &Overview) -> Markup {
    let series = |f: fn(&RuntimePoint) -> f64| -> Vec<Option<f64>> {
        data.runtime.iter().map(|p| Some(f(p))).collect()
    };
    let (lag_points, busy_points, memory_points, over) = match &data.stored_runtime {
        Some(trend) => (
            trend.lag_max.clone(),
            trend.utilization.clone(),
            trend.resident_max.clone(),
            format!("the last {}", trend.range.words()),
        ),
        None => (
            series(|p| p.lag),
            series(|p| p.utilization),
            series(|p| p.resident as f64),
            "last hour".to_owned(),
        ),
    };
    let per_step = data
        .stored_runtime
        .as_ref()
        .map(|trend| format!(", the highest per {}", trend.step_words()))
        .unwrap_or_default();
    let window = format::age((POINTS as u64 * SAMPLE_INTERVAL.as_secs()) as f64);
    html! {
        h1 { "Overview" }
        section.cards {
            div.card {
                h2 { "Memory" }
                p.figure { (format::bytes(Some(data.resident))) }
                @if let Some(limit) = data.limit {
                    (meter(data.resident as f64 / limit as f64, data.memory_threshold))
                    p.muted { "of " (format::bytes(Some(limit))) " limit" }
                } @else {
                    p.muted { "no container limit" }
                }
                (sparkline(&memory_points, &format!("resident memory{per_step}, {over}")))
                @if let Some(trend) = &data.stored_runtime {
                    p.muted { "peak " (format::bytes(trend.peak_resident)) " over " (over) }
                }
            }
            div.card {
                h2 { "Event-loop lag" }
                p.figure.warn[data.lag >= data.lag_threshold] { (format::seconds(Some(data.lag))) }
                p.muted { "threshold " (format::seconds(Some(data.lag_threshold))) }
                (sparkline(&lag_points, &format!("event-loop lag{per_step}, {over}")))
                @if let Some(trend) = &data.stored_runtime {
                    p.muted { "worst " (format::seconds(trend.worst_lag)) " over " (over) }
                }
            }
            div.card {
                h2 { "Utilization" }
                p.figure { (format::percent(Some(data.utilization))) }
                p.muted { (data.workers) " workers · up " (format::age(data.uptime)) }
                @let busy_step = data.stored_runtime.as_ref().map(|trend| format!(", the mean per {}", trend.step_words())).unwrap_or_default();
                (sparkline(&busy_points, &format!("runtime utilization{busy_step}, {over}")))
            }
            div.card {
                h2 { "Alerts firing" }
                @if data.alerts.is_empty() {
                    p.figure.ok { "none" }
                } @else {
                    p.figure.warn { (data.alerts.len()) }
                    ul.plain {
                        @for alert in &data.alerts {
                            li { span.sev.high { (alert.rule) } " " (alert.subject) }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Routes" span.muted { (route_source(&data.routes_origin, &window, data.range)) } }
            (selector(data.range, "/ui?"))
            @if let Some(notice) = &data.notice {
                p.notice.range { (notice) }
            }
            @if let Origin::Fallback { reason } = &data.routes_origin {
                p.notice.warn { "Prometheus gave no route data (" (reason) "): this table shows this process's own requests only." }
            }
            @if data.routes.is_empty() && data.range.is_stored() {
                p.empty { "No requests recorded over the last " (data.range.words()) "." }
            } @else if data.routes.is_empty() {
                p.empty { "No requests yet. Requests to this service show here within "
                    (SAMPLE_INTERVAL.as_secs()) " s, by route template." }
            } @else {
                div.scroll {
                    table {
                        thead { tr {
                            th { "Route" } th.num { "Rate" } th.num { "Requests" } th.num { "Errors" }
                            th.num { "p50" } th.num { "p95" } th.num { "p99" } th { "p95, the last " (data.range.words()) }
                        } }
                        tbody {
                            @for route in &data.routes {
                                tr {
                                    td { span.method { (route.key.0) } " " code { (route.key.1) } }
                                    td.num { (format::rate(Some(route.rate))) }
                                    td.num { (format::count(route.requests)) }
                                    td.num.warn[route.error_ratio.is_some_and(|r| r >= 0.01)] {
                                        (format::percent(route.error_ratio))
                                    }
                                    @let within = if route.accuracy > 0.0 { format!("within ±{:.0} % of a request's duration", route.accuracy * 100.0) } else { "somewhere in this histogram bucket (Prometheus, or the history store's bucket counts, keep no finer)".to_owned() };
                                    @let quantile = |value| if route.accuracy > 0.0 { format::seconds(value) } else { format::bucket(value, &data.http_buckets) };
                                    td.num title=(within) { (quantile(route.p50)) }
                                    td.num title=(within) { (quantile(route.p95)) }
                                    td.num title=(within) { (quantile(route.p99)) }
                                    @let markers = data.axis.map(|axis| axis.markers(route.p95_points.len(), &data.events)).unwrap_or_default();
                                    td { (chart(&route.p95_points, &format!("p95 of {} {}", route.key.0, route.key.1), &markers)) }
                                }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Connection pools" }
            @if data.pools.is_empty() {
                p.empty { "No timed pool in this process. Set DATABASE_URL, or build the app's pool with "
                    code { "perfscope.connect_pool(…)" } "." }
            } @else {
                table {
                    thead { tr { th { "Pool" } th.num { "Open" } th.num { "Idle" } th.num { "Limit" } th { "In use" } th.num { "Waiting" } th.num { "Wait timeouts" } } }
                    tbody {
                        @for pool in &data.pools {
                            @let in_use = pool.size.saturating_sub(pool.reading.idle);
                            tr {
                                td { (pool.reading.name) }
                                td.num { (pool.size) }
                                td.num { (pool.reading.idle) }
                                td.num { (pool.max) }
                                td { (meter(in_use as f64 / pool.max.max(1) as f64, 0.9)) }
                                td.num.warn[pool.reading.waiting > 0] { (pool.reading.waiting) }
                                td.num { (format::count(pool.reading.wait_timeouts)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// What the route table's heading says of its source.
fn route_source(origin: &Origin, window: &str, range: ChartRange) -> String {
    let every = format::age(range.step_secs() as f64);
    match origin {
        Origin::Prometheus { selector } => format!(
            " · every replica, from Prometheus ({{{selector}}}), the last {}, p95 every {every}; percentiles as the histogram bucket that holds them",
            format::age(range.span_secs() as f64),
        ),
        Origin::Store => format!(
            " · this process's requests from the history store, the last {}, p95 every {every}; percentiles as the histogram bucket that holds them",
            range.words()
        ),
        Origin::Process | Origin::Fallback { .. } => format!(
            " · this process only, the last {window} at most, sampled every {} s; percentiles from a quantile sketch, within the ± shown of a real request's duration",
            SAMPLE_INTERVAL.as_secs()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(method: &str, path: &str) -> RouteSummary {
        let mut p95_points = vec![None; POINTS];
        p95_points[POINTS - 2] = Some(0.02);
        p95_points[POINTS - 1] = Some(0.03);
        RouteSummary {
            key: (method.to_owned(), path.to_owned()),
            rate: 12.5,
            requests: 12_345,
            error_ratio: Some(0.021),
            p50: Some(0.0042),
            p95: Some(0.031),
            p99: Some(1.5),
            p95_points,
            accuracy: 0.01,
        }
    }

    #[test]
    fn the_overview_formats_numbers_with_units() {
        let page = view(&Overview {
            resident: 21_390_000,
            limit: Some(256 * 1024 * 1024),
            memory_threshold: 0.9,
            lag: 0.0012,
            lag_threshold: 0.1,
            utilization: 0.35,
            workers: 2,
            routes: vec![route("GET", "/users/:id")],
            pools: vec![PoolRow {
                reading: PoolReading {
                    name: "default".into(),
                    size: 4,
                    max: 10,
                    idle: 1,
                    waiting: 2,
                    wait_timeouts: 1_500,
                },
                size: 4,
                max: 10,
            }],
            alerts: vec![FiringAlert {
                rule: "pool_exhausted".into(),
                subject: "default".into(),
                value: 2.0,
                threshold: 0.0,
                started_at: 0,
            }],
            ..Default::default()
        })
        .into_string();
        for expected in [
            "20.4 MiB",
            "256.0 MiB",
            "1.20 ms",
            "35 %",
            "/users/:id",
            "13/s",
            "12,345",
            "2.1 %",
            "4.20 ms",
            "31.0 ms",
            "1.50 s",
            "pool_exhausted",
            "1,500",
            "<polyline",
            "class=\"num warn\">2.1 %",
        ] {
            assert!(page.contains(expected), "{expected} missing from {page}");
        }
    }

    #[test]
    fn bucket_interpolations_show_their_bucket_not_a_point() {
        let page = view(&Overview {
            http_buckets: crate::metrics::Buckets::HTTP_DEFAULT.to_vec(),
            routes: vec![RouteSummary {
                accuracy: 0.0,
                p50: Some(0.0005),
                ..route("GET", "/stored")
            }],
            range: ChartRange::Week,
            ..Default::default()
        })
        .into_string();
        for expected in ["≤ 1 ms", "25–50 ms", "1–2.5 s"] {
            assert!(page.contains(expected), "{expected} missing from {page}");
        }
        assert!(!page.contains("500 µs"), "{page}");
    }

    #[test]
    fn the_route_table_says_where_it_comes_from() {
        let process = view(&Overview {
            routes: vec![route("GET", "/a")],
            ..Default::default()
        })
        .into_string();
        assert!(process.contains("this process only"), "{process}");
        let prometheus = view(&Overview {
            routes: vec![route("GET", "/<b>")],
            routes_origin: Origin::Prometheus {
                selector: r#"job="shop""#.into(),
            },
            ..Default::default()
        })
        .into_string();
        assert!(
            prometheus.contains("every replica, from Prometheus ({job=&quot;shop&quot;}), the last 60 min, p95 every 30 s"),
            "{prometheus}"
        );
        assert!(
            prometheus.contains("/&lt;b&gt;"),
            "route labels are escaped"
        );
        assert!(!prometheus.contains("/<b>"));
        let fallback = view(&Overview {
            routes_origin: Origin::Fallback {
                reason: "<i>no answer</i>".into(),
            },
            ..Default::default()
        })
        .into_string();
        assert!(
            fallback.contains("Prometheus gave no route data (&lt;i&gt;no answer&lt;/i&gt;)"),
            "{fallback}"
        );
        assert!(fallback.contains("this process only"), "{fallback}");
    }

    #[test]
    fn past_the_hour_the_runtime_cards_draw_the_stored_range() {
        let mut resident_max = vec![None; 145];
        resident_max[3] = Some(300.0 * 1_048_576.0);
        resident_max[4] = Some(20.0 * 1_048_576.0);
        let page = view(&Overview {
            range: ChartRange::Day,
            stored_runtime: Some(RuntimeTrend {
                range: ChartRange::Day,
                lag_max: vec![Some(0.002); 145],
                utilization: vec![Some(0.3); 145],
                resident_max,
                worst_lag: Some(0.002),
                peak_resident: Some(300 << 20),
            }),
            ..Default::default()
        })
        .into_string();
        for expected in [
            "resident memory, the highest per 10 minutes, the last 24 hours",
            "event-loop lag, the highest per 10 minutes, the last 24 hours",
            "runtime utilization, the mean per 10 minutes, the last 24 hours",
            "peak 300.0 MiB over the last 24 hours",
            "worst 2.00 ms over the last 24 hours",
        ] {
            assert!(page.contains(expected), "{expected} missing from {page}");
        }
        assert!(!page.contains("last hour"), "{page}");

        let hour = view(&Overview::default()).into_string();
        assert!(hour.contains("resident memory, last hour"), "{hour}");
        assert!(!hour.contains("peak "), "{hour}");
    }

    #[test]
    fn empty_states_say_what_to_do() {
        let page = view(&Overview::default()).into_string();
        assert!(page.contains("No requests yet"), "{page}");
        assert!(page.contains("Set DATABASE_URL"), "{page}");
    }
}
