//! The Queries page (`GET /ui/queries`): the slow-query report (one row
//! per statement, each source's figures on a line of its own with the
//! span of time they cover) with each statement's trend, N+1 suspects and
//! database time per route. Its handler, the figures it reads and its
//! view live together. The trends take a range (`?range=1h|24h|7d|30d`,
//! see `ui::range`): the hour is this process's, longer ranges the
//! history store's, with its events marked.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use crate::Perfscope;
use crate::service::slow_queries::{SlowQueryEntry, Window, WindowKind};
use crate::ui::Ui;
use crate::ui::format;
use crate::ui::guard::LoggedIn;
use crate::ui::layout::{Page, shown, shown_with};
use crate::ui::range::{Axis, ChartRange, selector};
use crate::ui::timeline::Timeline;
use crate::ui::widgets::sql;
use std::sync::Arc;

use crate::ui::svg::chart;

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
                Page::Queries,
                session,
                html! { h1 { "Queries" } (selector(ChartRange::Hour, "/ui/queries?")) p.notice { (message) } },
            );
        }
    };
    let mut data = data(&ui.perfscope);
    let timeline = Timeline::load(&ui.perfscope, range).await;
    data.range = range;
    data.axis = Some(Axis {
        last: timeline.now as f64,
        step: crate::history::SAMPLE_INTERVAL.as_secs_f64(),
    });
    #[cfg(feature = "store")]
    if let Some(store) = &timeline.store {
        stored_trends(&mut data, store, &timeline).await;
    }
    data.events = timeline.events;
    data.notice = timeline.notice;
    shown(Page::Queries, session, view(&data))
}

/// Replaces the rows' trends with the store's over the timeline's range
/// (the rows' own hour stays on a failed read, which the log says).
#[cfg(feature = "store")]
async fn stored_trends(data: &mut Queries, store: &crate::store::Store, timeline: &Timeline) {
    let keys: Vec<(String, i64)> = data.slow.iter().filter_map(|row| key(&row.entry)).collect();
    match crate::ui::timeline::stored::statements(store, keys, timeline.range, timeline.now).await {
        Ok((mut trends, axis)) => {
            for row in &mut data.slow {
                row.trend = key(&row.entry)
                    .and_then(|key| trends.remove(&key))
                    .map(|trend| trend.mean_ms);
            }
            data.axis = Some(axis);
        }
        Err(error) => {
            tracing::warn!(%error, "the history store gave no statement trends; the Queries page shows this process's hour");
        }
    }
}

/// A row's statement in pg_stat_statements: its database and queryid.
fn key(entry: &SlowQueryEntry) -> Option<(String, i64)> {
    entry
        .database
        .clone()
        .zip(entry.queryid.as_deref().and_then(|id| id.parse().ok()))
}

/// The Queries page's figures now.
pub fn data(perfscope: &Perfscope) -> Queries {
    let report = crate::service::slow_queries::report(perfscope, None);
    let history = perfscope.history();
    let slow = report
        .queries
        .into_iter()
        .map(|entry| {
            let trend = key(&entry)
                .and_then(|(db, id)| history.statement(&(Arc::from(db), id)))
                .map(|(points, _)| points);
            SlowRow { entry, trend }
        })
        .collect();
    let db = perfscope.db();
    let n_plus_one = db
        .n_plus_one
        .suspects()
        .into_iter()
        .map(|s| NPlusOneRow {
            route: s.route.to_string(),
            statement: s.statement.normalized.to_string(),
            max_per_request: s.max_per_request,
            requests: s.requests,
        })
        .collect();
    let mut routes: HashMap<String, RouteDbRow> = HashMap::new();
    db.metrics.route_duration.for_each(|labels, histogram| {
        let snapshot = histogram.snapshot();
        let row = routes.entry(labels.route.as_str().to_owned()).or_default();
        row.requests += snapshot.count;
        row.total += snapshot.sum;
    });
    db.metrics.route_queries.for_each(|labels, counter| {
        routes
            .entry(labels.route.as_str().to_owned())
            .or_default()
            .queries += counter.get();
    });
    let mut routes: Vec<RouteDbRow> = routes
        .into_iter()
        .filter(|(_, row)| row.queries > 0)
        .map(|(route, row)| RouteDbRow { route, ..row })
        .collect();
    routes.sort_by(|a, b| b.total.total_cmp(&a.total));
    Queries {
        threshold_ms: report.threshold_ms,
        slow,
        cap: report.cap,
        left_out: report.left_out,
        n_plus_one,
        routes,
        statements_missing: statements_missing(perfscope),
        ..Queries::default()
    }
}

/// Why pg_stat_statements shows nothing, when it does not.
#[cfg(feature = "postgres")]
fn statements_missing(perfscope: &Perfscope) -> Option<String> {
    let watched = perfscope.watched().all();
    if watched.is_empty() {
        return Some(
            "No database is watched: set DATABASE_URL to read its pg_stat_statements.".to_owned(),
        );
    }
    watched.iter().all(|db| db.statements.latest().unwrap_or_default().at.is_none()).then(|| {
        "pg_stat_statements has not been read: it is not loaded or not readable yet. Add `shared_preload_libraries = 'pg_stat_statements'` to postgresql.conf, restart, run `CREATE EXTENSION pg_stat_statements;` and grant pg_read_all_stats (sql/install.sql); the Database page checks each piece.".to_owned()
    })
}

#[cfg(not(feature = "postgres"))]
fn statements_missing(_: &Perfscope) -> Option<String> {
    Some("This build has no Postgres support.".to_owned())
}

/// One statement: the report's row and its trend.
#[derive(Clone, Debug)]
pub struct SlowRow {
    /// The report's row (each source's figures with their window).
    pub entry: SlowQueryEntry,
    /// Mean per step over the page's range, ms.
    pub trend: Option<Vec<Option<f64>>>,
}

/// One N+1 suspect.
#[derive(Clone, Debug, Default)]
pub struct NPlusOneRow {
    /// The route.
    pub route: String,
    /// The repeated statement.
    pub statement: String,
    /// Most executions in one request.
    pub max_per_request: u32,
    /// Requests that showed it.
    pub requests: u64,
}

/// Database time of one route.
#[derive(Clone, Debug, Default)]
pub struct RouteDbRow {
    /// The route.
    pub route: String,
    /// Requests.
    pub requests: u64,
    /// Statements run.
    pub queries: u64,
    /// Database time, seconds.
    pub total: f64,
}

/// What the Queries page shows.
#[derive(Clone, Debug, Default)]
pub struct Queries {
    /// `SLOW_QUERY_THRESHOLD`, ms.
    pub threshold_ms: f64,
    /// Slow statements, worst total first.
    pub slow: Vec<SlowRow>,
    /// The most rows the report lists.
    pub cap: u64,
    /// Statements it left out.
    pub left_out: u64,
    /// N+1 suspects.
    pub n_plus_one: Vec<NPlusOneRow>,
    /// Database time per route.
    pub routes: Vec<RouteDbRow>,
    /// Why pg_stat_statements has nothing to show, when it has not.
    pub statements_missing: Option<String>,
    /// The trends' range.
    pub range: ChartRange,
    /// The trends' time axis, for the markers.
    pub axis: Option<Axis>,
    /// Events to mark: time and label.
    pub events: Vec<(f64, String)>,
    /// Why the trends cover less than the range.
    pub notice: Option<String>,
}

/// A window in a few words: `last 2 s`, `since reset 3.5 h ago`, with
/// the full description on hover.
fn window(source: &str, window: &Window) -> Markup {
    let span = window.from.map(|from| format::age(window.to - from));
    let words = match (window.kind, span) {
        (WindowKind::SinceReset, Some(span)) => format!("since reset, {span}"),
        (WindowKind::SinceReset, None) => "since reset".to_owned(),
        (_, Some(span)) => format!("last {span}"),
        (_, None) => String::new(),
    };
    html! { span title=(window.description) { (source) " · " (words) } }
}

/// The figure cells of one row: a line per source.
fn figures(entry: &SlowQueryEntry) -> Markup {
    let app = entry.app.as_ref();
    let pg = entry.pg_stat_statements.as_ref();
    html! {
        td.window {
            @if let Some(app) = app { div { (window("slow log", &app.window)) } }
            @if let Some(pg) = pg { div { (window("pg_stat_statements", &pg.window)) } }
        }
        td.num {
            @if let Some(app) = app { div { (format::count(app.calls)) } }
            @if let Some(pg) = pg { div { (format::count(pg.calls)) } }
        }
        td.num {
            @if let Some(app) = app { div { (format::millis(Some(app.mean_ms))) } }
            @if let Some(pg) = pg { div { (format::millis(Some(pg.mean_ms))) } }
        }
        td.num {
            @if let Some(app) = app { div { (format::millis(Some(app.max_ms))) } }
            @if let Some(pg) = pg {
                div title="the slowest since pg_stat_statements' last reset, whatever the window" {
                    (format::millis(Some(pg.max_since_reset_ms)))
                    @if pg.window.kind != WindowKind::SinceReset { span.muted { " since reset" } }
                }
            }
        }
        td.num {
            @if let (Some(p50), Some(p95)) = (entry.p50_ms, entry.p95_ms) {
                (format::millis(Some(p50))) " · " (format::millis(Some(p95)))
            } @else { span.muted { "–" } }
        }
        td.num {
            @if let Some(app) = app { div { (format::millis(Some(app.total_ms))) } }
            @if let Some(pg) = pg { div { (format::millis(Some(pg.total_ms))) } }
        }
        td.num {
            @if app.is_some() { div { "–" } }
            @if let Some(pg) = pg { div { (format::count(u64::try_from(pg.rows).unwrap_or(0))) } }
        }
        td.num {
            @if app.is_some() { div { "–" } }
            @if let Some(pg) = pg {
                div.warn[pg.hit_ratio.is_some_and(|h| h < 0.99)] { (format::percent(pg.hit_ratio)) }
            }
        }
    }
}

/// The Queries page's body.
pub fn view(data: &Queries) -> Markup {
    html! {
        h1 { "Queries" span.muted { " · " a href="/ui/plan-changes" { "plan changes" } } }
        @if let Some(missing) = &data.statements_missing {
            p.notice { (missing) }
        }
        section {
            h2 { "Slow and expensive statements" span.muted { " · one row per statement: the slow log's executions over " (format::millis(Some(data.threshold_ms))) " and pg_stat_statements' worst by mean and total, each over its own window" } }
            (selector(data.range, "/ui/queries?"))
            @if let Some(notice) = &data.notice {
                p.notice.range { (notice) }
            }
            @if data.slow.is_empty() {
                p.empty { "No statement is slow yet. Statements over the threshold (SLOW_QUERY_THRESHOLD) and the worst of pg_stat_statements show here." }
            } @else {
                div.scroll {
                    table.queries {
                        thead { tr {
                            th { "Statement" } th { "Route" } th { "Source · window" } th.num { "Calls" } th.num { "Mean" } th.num { "Max" }
                            th.num title="Median and 95th percentile of every execution by this process's timed pool (a quantile sketch, within 1 %); pg_stat_statements keeps no distribution, only the mean and the max" { "p50 · p95 (app)" }
                            th.num { "Total" } th.num { "Rows" } th.num { "Hit ratio" } th { "Mean, the last " (data.range.words()) }
                        } }
                        tbody {
                            @for row in &data.slow {
                                @let entry = &row.entry;
                                tr {
                                    td.statement {
                                        (sql(&entry.statement))
                                        div.muted {
                                            (entry.sources.join(" + ")) @if let Some(db) = &entry.database { " · " (db) }
                                            @if let (Some(db), Some(id)) = (&entry.database, &entry.queryid) {
                                                " · " a href=(format!("/ui/explain?database={}&queryid={id}&range={}", crate::ui::range::query_value(db), data.range.as_str())) { "plan and trend" }
                                            }
                                        }
                                    }
                                    td { @if let Some(route) = &entry.route { code { (route) } } @else { span.muted { "–" } } }
                                    (figures(entry))
                                    td { @if let Some(trend) = &row.trend {
                                        @let markers = data.axis.map(|axis| axis.markers(trend.len(), &data.events)).unwrap_or_default();
                                        (chart(trend, &format!("mean per step, the last {}", data.range.words()), &markers))
                                    } }
                                }
                            }
                        }
                    }
                }
                @if data.left_out > 0 {
                    p.muted { (format::count(data.left_out)) " more statements are not listed: the list shows at most " (data.cap) " rows, and of pg_stat_statements each database's worst by mean and by total (and those the slow log also has)." }
                }
            }
        }
        section {
            h2 { "N+1 suspects" }
            @if data.n_plus_one.is_empty() {
                p.empty { "No route has run one statement many times in a request." }
            } @else {
                table {
                    thead { tr { th { "Route" } th { "Repeated statement" } th.num { "Most per request" } th.num { "Requests" } } }
                    tbody {
                        @for row in &data.n_plus_one {
                            tr {
                                td { code { (row.route) } }
                                td.statement { (sql(&row.statement)) }
                                td.num.warn { (row.max_per_request) }
                                td.num { (format::count(row.requests)) }
                            }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Database time per route" }
            @if data.routes.is_empty() {
                p.empty { "No request has used the timed pool yet." }
            } @else {
                table {
                    thead { tr { th { "Route" } th.num { "Requests" } th.num { "Statements / request" } th.num { "DB time / request" } th.num { "DB time, total" } } }
                    tbody {
                        @for row in &data.routes {
                            @let per = row.requests.max(1) as f64;
                            tr {
                                td { code { (row.route) } }
                                td.num { (format::count(row.requests)) }
                                td.num { (format!("{:.1}", row.queries as f64 / per)) }
                                td.num { (format::seconds(Some(row.total / per))) }
                                td.num { (format::seconds(Some(row.total))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::slow_queries::{AppFigures, PgFigures};

    #[test]
    fn empty_states_say_what_to_do() {
        let page = view(&Queries {
            statements_missing: Some("pg_stat_statements is not loaded: add it".into()),
            ..Default::default()
        })
        .into_string();
        assert!(
            page.contains("pg_stat_statements is not loaded: add it"),
            "{page}"
        );
        assert!(page.contains("No statement is slow yet"), "{page}");
    }

    fn window(kind: WindowKind, from: Option<f64>, to: f64) -> Window {
        Window {
            kind,
            from,
            to,
            description: "the span in words".into(),
        }
    }

    fn entry(statement: &str) -> SlowQueryEntry {
        SlowQueryEntry {
            p50_ms: None,
            p95_ms: None,
            sources: vec!["pg_stat_statements".into()],
            database: None,
            queryid: None,
            statement: statement.into(),
            fingerprint: "00".into(),
            operation: "select".into(),
            table: "t".into(),
            route: None,
            app: None,
            pg_stat_statements: None,
        }
    }

    fn pg(kind: WindowKind, hit_ratio: Option<f64>) -> PgFigures {
        PgFigures {
            calls: 7,
            mean_ms: 2.0,
            total_ms: 14.0,
            rows: 7,
            hit_ratio,
            window: window(kind, Some(1_000.0), 1_002.0),
            max_since_reset_ms: 9.0,
            entries: 1,
        }
    }

    #[test]
    fn sql_is_escaped_and_long_sql_folds() {
        let evil = "select '<script>alert(1)</script>' from t";
        let long = format!(
            "select {} from orders where customer_id = $1",
            "a, ".repeat(60)
        );
        let page = view(&Queries {
            slow: vec![
                SlowRow {
                    entry: SlowQueryEntry {
                        sources: vec!["app".into()],
                        route: Some("/x/<b>".into()),
                        p50_ms: Some(1_100.0),
                        p95_ms: Some(2_030.0),
                        app: Some(AppFigures {
                            calls: 3,
                            mean_ms: 1_250.0,
                            max_ms: 1_300.0,
                            total_ms: 3_750.0,
                            last_seen: 0.0,
                            window: window(WindowKind::SlowLog, Some(0.0), 720.0),
                        }),
                        ..entry(evil)
                    },
                    trend: None,
                },
                SlowRow {
                    entry: SlowQueryEntry {
                        database: Some("default".into()),
                        queryid: Some("42".into()),
                        pg_stat_statements: Some(pg(WindowKind::SinceReset, Some(0.5))),
                        ..entry(&long)
                    },
                    trend: None,
                },
            ],
            ..Default::default()
        })
        .into_string();
        assert!(!page.contains("<script>"), "{page}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}"
        );
        assert!(page.contains("/x/&lt;b&gt;"), "{page}");
        assert!(page.contains("1.25 s"), "{page}");
        assert!(page.contains("1.10 s · 2.03 s"), "{page}");
        assert!(page.contains("<details class=\"sql\">"), "{page}");
        assert!(page.contains("50 %"), "{page}");
        assert!(
            page.contains("href=\"/ui/explain?database=default&amp;queryid=42&amp;range=1h\""),
            "{page}"
        );
    }

    /// One row holds both sources, each line saying the span it covers;
    /// a capped list says so.
    #[test]
    fn each_sources_figures_say_their_window() {
        let page = view(&Queries {
            slow: vec![SlowRow {
                entry: SlowQueryEntry {
                    sources: vec!["app".into(), "pg_stat_statements".into()],
                    app: Some(AppFigures {
                        calls: 15,
                        mean_ms: 1_100.0,
                        max_ms: 1_200.0,
                        total_ms: 16_500.0,
                        last_seen: 0.0,
                        window: window(WindowKind::SlowLog, Some(0.0), 720.0),
                    }),
                    pg_stat_statements: Some(pg(WindowKind::SincePreviousRead, None)),
                    ..entry("select pg_sleep($1)")
                },
                trend: None,
            }],
            cap: 100,
            left_out: 12,
            ..Default::default()
        })
        .into_string();
        assert_eq!(page.matches("select pg_sleep($1)").count(), 1, "{page}");
        assert!(page.contains("app + pg_stat_statements"), "{page}");
        assert!(page.contains("slow log · last 12 min"), "{page}");
        assert!(page.contains("pg_stat_statements · last 2 s"), "{page}");
        assert!(page.contains(" since reset"), "{page}");
        assert!(page.contains("title=\"the span in words\""), "{page}");
        assert!(page.contains("12 more statements are not listed"), "{page}");
    }
}
