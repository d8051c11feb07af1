//! The Queries page (`GET /ui/queries`): the slow-query report with each
//! statement's trend, N+1 suspects and database time per route. Its
//! handler, the figures it reads and its view live together.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::web::Data;
use poem::{Response, handler};

use crate::Perfscope;
use crate::ui::Ui;
use crate::ui::format;
use crate::ui::guard::LoggedIn;
use crate::ui::layout::{Page, shown};
use crate::ui::widgets::sql;
use std::sync::Arc;

use crate::ui::svg::sparkline;

#[handler]
pub fn show(ui: Data<&Ui>, logged_in: LoggedIn) -> Response {
    let session = &logged_in.session;
    let data = data(&ui.perfscope);
    shown(Page::Queries, session, view(&data))
}

/// The Queries page's figures now.
pub fn data(perfscope: &Perfscope) -> Queries {
    let report = crate::service::slow_queries::report(perfscope, None);
    let history = perfscope.history();
    let slow = report
        .queries
        .into_iter()
        .map(|q| {
            let trend = q
                .database
                .as_deref()
                .zip(q.queryid.as_deref().and_then(|id| id.parse::<i64>().ok()))
                .and_then(|(db, id)| history.statement(&(Arc::from(db), id)))
                .map(|(points, _)| points);
            SlowRow {
                source: q.source,
                database: q.database,
                queryid: q.queryid,
                statement: q.statement,
                route: q.route,
                calls: q.calls,
                mean_ms: q.mean_ms,
                max_ms: q.max_ms,
                p50_ms: q.p50_ms,
                p95_ms: q.p95_ms,
                total_ms: q.total_ms,
                rows: q.rows,
                hit_ratio: q.hit_ratio,
                trend,
            }
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
        n_plus_one,
        routes,
        statements_missing: statements_missing(perfscope),
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

/// One slow statement.
#[derive(Clone, Debug, Default)]
pub struct SlowRow {
    /// `app` or `pg_stat_statements`.
    pub source: String,
    /// The watched database.
    pub database: Option<String>,
    /// pg_stat_statements' queryid (its entries).
    pub queryid: Option<String>,
    /// The normalized text.
    pub statement: String,
    /// The route that issued it.
    pub route: Option<String>,
    /// Executions.
    pub calls: u64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Median and 95th percentile of this process's executions, ms (none
    /// for a statement only pg_stat_statements saw: it has no
    /// distribution).
    pub p50_ms: Option<f64>,
    /// See `p50_ms`.
    pub p95_ms: Option<f64>,
    /// Total, ms.
    pub total_ms: f64,
    /// Rows.
    pub rows: Option<i64>,
    /// Shared-buffer hit ratio.
    pub hit_ratio: Option<f64>,
    /// Mean per interval over the last hour.
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
    /// N+1 suspects.
    pub n_plus_one: Vec<NPlusOneRow>,
    /// Database time per route.
    pub routes: Vec<RouteDbRow>,
    /// Why pg_stat_statements has nothing to show, when it has not.
    pub statements_missing: Option<String>,
}

/// The Queries page's body.
pub fn view(data: &Queries) -> Markup {
    html! {
        h1 { "Queries" }
        @if let Some(missing) = &data.statements_missing {
            p.notice { (missing) }
        }
        section {
            h2 { "Slow and expensive statements" span.muted { " · slow log over " (format::millis(Some(data.threshold_ms))) ", pg_stat_statements by mean and total" } }
            @if data.slow.is_empty() {
                p.empty { "No statement is slow yet. Statements over the threshold (SLOW_QUERY_THRESHOLD) and the worst of pg_stat_statements show here." }
            } @else {
                div.scroll {
                    table.queries {
                        thead { tr {
                            th { "Statement" } th { "Route" } th.num { "Calls" } th.num { "Mean" } th.num { "Max" }
                            th.num title="Median and 95th percentile of every execution by this process's timed pool (a quantile sketch, within 1 %); pg_stat_statements keeps no distribution, only the mean and the max" { "p50 · p95 (app)" }
                            th.num { "Total" } th.num { "Rows" } th.num { "Hit ratio" } th { "Mean, last hour" }
                        } }
                        tbody {
                            @for row in &data.slow {
                                tr {
                                    td.statement {
                                        (sql(&row.statement))
                                        div.muted {
                                            (row.source) @if let Some(db) = &row.database { " · " (db) }
                                            @if let (Some(db), Some(id)) = (&row.database, &row.queryid) {
                                                " · " a href=(format!("/ui/explain?database={db}&queryid={id}")) { "plan" }
                                            }
                                        }
                                    }
                                    td { @if let Some(route) = &row.route { code { (route) } } @else { span.muted { "–" } } }
                                    td.num { (format::count(row.calls)) }
                                    td.num { (format::millis(Some(row.mean_ms))) }
                                    td.num { (format::millis(Some(row.max_ms))) }
                                    td.num {
                                        @if let (Some(p50), Some(p95)) = (row.p50_ms, row.p95_ms) {
                                            (format::millis(Some(p50))) " · " (format::millis(Some(p95)))
                                        } @else { span.muted { "–" } }
                                    }
                                    td.num { (format::millis(Some(row.total_ms))) }
                                    td.num { (row.rows.map_or_else(|| "–".to_owned(), |r| format::count(u64::try_from(r).unwrap_or(0)))) }
                                    td.num.warn[row.hit_ratio.is_some_and(|h| h < 0.99)] { (format::percent(row.hit_ratio)) }
                                    td { @if let Some(trend) = &row.trend { (sparkline(trend, "mean per interval, last hour")) } }
                                }
                            }
                        }
                    }
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
                    statement: evil.into(),
                    source: "app".into(),
                    route: Some("/x/<b>".into()),
                    calls: 3,
                    mean_ms: 1_250.0,
                    p50_ms: Some(1_100.0),
                    p95_ms: Some(2_030.0),
                    ..Default::default()
                },
                SlowRow {
                    statement: long.clone(),
                    source: "pg_stat_statements".into(),
                    database: Some("default".into()),
                    queryid: Some("42".into()),
                    hit_ratio: Some(0.5),
                    ..Default::default()
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
            page.contains("href=\"/ui/explain?database=default&amp;queryid=42\""),
            "{page}"
        );
    }
}
