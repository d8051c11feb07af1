//! The pages, rendered from plain view models (so each can be rendered
//! from known data in tests): a shared layout, then Overview, Queries,
//! Advice, Database, the login form and the confirmation of a change.
//! maud escapes every interpolated value; nothing here writes raw text
//! except the SVG the chart module builds from numbers.

use maud::{DOCTYPE, Markup, html};

use super::format;
use super::history::{POINTS, RouteSummary, RuntimePoint, SAMPLE_INTERVAL};
use super::svg::sparkline;
use crate::alerts::{FiringAlert, PoolReading};
use crate::findings::{Recommendation, Severity};

/// The pages, for the navigation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// `/ui`.
    Overview,
    /// `/ui/queries`.
    Queries,
    /// `/ui/advice`.
    Advice,
    /// `/ui/database`.
    Database,
    /// `/ui/activity`.
    Activity,
}

impl Page {
    const ALL: [Page; 5] = [
        Self::Overview,
        Self::Queries,
        Self::Activity,
        Self::Advice,
        Self::Database,
    ];

    fn path(self) -> &'static str {
        match self {
            Self::Overview => "/ui",
            Self::Queries => "/ui/queries",
            Self::Advice => "/ui/advice",
            Self::Database => "/ui/database",
            Self::Activity => "/ui/activity",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Overview => "Overview",
            Self::Queries => "Queries",
            Self::Advice => "Advice",
            Self::Database => "Database",
            Self::Activity => "Activity",
        }
    }
}

/// The frame around every page of a logged-in session.
pub fn layout(page: Page, csrf: &str, body: Markup) -> Markup {
    frame(page, csrf, body, true)
}

/// The frame around the answer to a POST: no auto-refresh (a reload would
/// post the form again).
pub fn layout_posted(page: Page, csrf: &str, body: Markup) -> Markup {
    frame(page, csrf, body, false)
}

fn frame(page: Page, csrf: &str, body: Markup, refreshable: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page.title()) " · perfscope" }
                link rel="stylesheet" href="/ui/assets/style.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/ui" { "perfscope" }
                    nav {
                        @for p in Page::ALL {
                            a href=(p.path()) aria-current=[(p == page).then_some("page")] { (p.title()) }
                        }
                    }
                    div.tools {
                        @if refreshable {
                            label.refresh { input type="checkbox" id="auto-refresh"; " Auto-refresh" }
                        }
                        a href="/docs" { "API" }
                        form method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The login form; `error` after a wrong token.
pub fn login(error: Option<&str>, configured: bool) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Log in · perfscope" }
                link rel="stylesheet" href="/ui/assets/style.css";
            }
            body.login {
                main {
                    h1 { "perfscope" }
                    @if configured {
                        form method="post" action="/ui/login" {
                            label for="token" { "Admin token" }
                            input #token type="password" name="token" autocomplete="current-password" required autofocus;
                            @if let Some(error) = error {
                                p.error role="alert" { (error) }
                            }
                            button type="submit" { "Log in" }
                        }
                        p.muted { "The token is PERFSCOPE_ADMIN_TOKEN (" code { "perfscope demo" } " prints one)." }
                    } @else {
                        p.error { "The pages need an admin token: start the agent with PERFSCOPE_ADMIN_TOKEN set (e.g. "
                            code { "openssl rand -hex 24" } ")." }
                    }
                }
            }
        }
    }
}

fn severity(severity: Severity) -> Markup {
    let (class, text) = match severity {
        Severity::High => ("sev high", "high"),
        Severity::Medium => ("sev medium", "medium"),
        Severity::Low => ("sev low", "low"),
    };
    html! { span class=(class) { (text) } }
}

/// Long SQL: the start on one line, the whole text on demand.
fn sql(text: &str) -> Markup {
    const SHORT: usize = 110;
    if text.chars().count() <= SHORT {
        return html! { code.sql { (text) } };
    }
    let short: String = text.chars().take(SHORT).collect();
    html! {
        details.sql {
            summary { code { (short) "…" } }
            pre { code { (text) } }
        }
    }
}

fn copy_button(text: &str) -> Markup {
    html! { button.copy type="button" data-copy=(text) { "Copy" } }
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
    /// Routes, busiest first.
    pub routes: Vec<RouteSummary>,
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

fn meter(share: f64, warn: f64) -> Markup {
    let width = 120.0;
    let filled = (share.clamp(0.0, 1.0) * width).round();
    let class = if share >= warn {
        "meter-fill warn"
    } else {
        "meter-fill"
    };
    html! {
        svg.meter width="120" height="8" viewBox="0 0 120 8" role="img" aria-label=(format::percent(Some(share))) {
            rect.meter-track x="0" y="0" width="120" height="8" rx="4" {}
            rect class=(class) x="0" y="0" width=(filled) height="8" rx="4" {}
        }
    }
}

/// The Overview page's body.
pub fn overview(data: &Overview) -> Markup {
    let series = |f: fn(&RuntimePoint) -> f64| -> Vec<Option<f64>> {
        data.runtime.iter().map(|p| Some(f(p))).collect()
    };
    let lag_points = series(|p| p.lag);
    let busy_points = series(|p| p.utilization);
    let memory_points = series(|p| p.resident as f64);
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
                (sparkline(&memory_points, "resident memory, last hour"))
            }
            div.card {
                h2 { "Event-loop lag" }
                p.figure.warn[data.lag >= data.lag_threshold] { (format::seconds(Some(data.lag))) }
                p.muted { "threshold " (format::seconds(Some(data.lag_threshold))) }
                (sparkline(&lag_points, "event-loop lag, last hour"))
            }
            div.card {
                h2 { "Utilization" }
                p.figure { (format::percent(Some(data.utilization))) }
                p.muted { (data.workers) " workers · up " (format::age(data.uptime)) }
                (sparkline(&busy_points, "runtime utilization, last hour"))
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
            h2 { "Routes" span.muted { " · the last " (window) " at most, sampled every " (SAMPLE_INTERVAL.as_secs()) " s" } }
            @if data.routes.is_empty() {
                p.empty { "No requests yet. Requests to this service show here within "
                    (SAMPLE_INTERVAL.as_secs()) " s, by route template." }
            } @else {
                div.scroll {
                    table {
                        thead { tr {
                            th { "Route" } th.num { "Rate" } th.num { "Requests" } th.num { "Errors" }
                            th.num { "p50" } th.num { "p95" } th.num { "p99" } th { "p95, last hour" }
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
                                    td.num { (format::seconds(route.p50)) }
                                    td.num { (format::seconds(route.p95)) }
                                    td.num { (format::seconds(route.p99)) }
                                    td { (sparkline(&route.p95_points, &format!("p95 of {} {}", route.key.0, route.key.1))) }
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
pub fn queries(data: &Queries) -> Markup {
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

/// One index suggestion.
#[derive(Clone, Debug, Default)]
pub struct SuggestionRow {
    /// The watched database.
    pub database: String,
    /// `schema.table`.
    pub table: String,
    /// Columns, in order.
    pub columns: Vec<String>,
    /// The ready statement.
    pub create_statement: String,
    /// Statements it helps.
    pub helps: Vec<String>,
    /// Their calls.
    pub calls: u64,
    /// Their total time, ms.
    pub total_ms: f64,
    /// Planner cost before and after (hypopg).
    pub costs: Option<(f64, f64)>,
    /// `1 - after / before`.
    pub saving: Option<f64>,
    /// `hypopg` or `statistics`.
    pub confirmed_by: String,
}

/// What the Advice page shows.
#[derive(Clone, Debug, Default)]
pub struct Advice {
    /// Index suggestions.
    pub suggestions: Vec<SuggestionRow>,
    /// Health findings of the databases.
    pub health: Vec<Recommendation>,
    /// Runtime and cache advice.
    pub other: Vec<Recommendation>,
    /// Whether maintenance can run (a DATABASE_URL is set).
    pub maintenance: bool,
    /// What the last action did.
    pub flash: Option<String>,
}

/// The Advice page's body.
pub fn advice(data: &Advice, csrf: &str) -> Markup {
    html! {
        h1 { "Advice" }
        @if let Some(flash) = &data.flash {
            p.notice role="status" { (flash) }
        }
        section {
            h2 { "Indexes worth creating" }
            @if data.suggestions.is_empty() {
                p.empty { "No index suggestion. The advisor reads the slowest statements of pg_stat_statements and plans them with hypopg when it is installed; suggestions show here after its next pass." }
            }
            @for s in &data.suggestions {
                article.suggestion {
                    header {
                        h3 { code { (s.table) } " (" (s.columns.join(", ")) ")" }
                        @if let Some(saving) = s.saving {
                            span.saving { "−" (format::percent(Some(saving))) " planner cost" }
                        } @else if s.confirmed_by == "hypopg" {
                            span.muted { "planned with hypopg" }
                        } @else {
                            span.muted { "from column statistics (not confirmed with hypopg)" }
                        }
                    }
                    div.statement-row {
                        code.ddl { (s.create_statement) }
                        (copy_button(&s.create_statement))
                    }
                    p.muted {
                        (s.database) " · helps " (s.helps.len()) " statement(s), "
                        (format::count(s.calls)) " calls, " (format::millis(Some(s.total_ms))) " total"
                        @if let Some((before, after)) = s.costs { " · cost " (format!("{before:.0} → {after:.0}")) }
                    }
                    @for statement in &s.helps {
                        div.helps { (sql(statement)) }
                    }
                    @if data.maintenance && s.database == "default" {
                        form.inline method="post" action="/ui/advice/analyze" {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="table" value=(s.table);
                            button.secondary type="submit" { "Run ANALYZE on " (s.table) "…" }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Database health" }
            @if data.health.is_empty() {
                p.empty { "No finding: indexes, vacuum, sequences, wraparound and connections look fine (or no database is watched yet)." }
            } @else {
                (recommendations(&data.health))
            }
        }
        section {
            h2 { "Runtime and caches" }
            @if data.other.is_empty() {
                p.empty { "Nothing to change." }
            } @else {
                (recommendations(&data.other))
            }
        }
    }
}

fn recommendations(list: &[Recommendation]) -> Markup {
    html! {
        ul.findings {
            @for r in list {
                li {
                    (severity(r.severity)) " "
                    strong { (r.kind) } " "
                    span { (r.message) }
                    @if let Some(objects) = &r.objects {
                        @if !objects.is_empty() {
                            div.muted { @for (i, o) in objects.iter().enumerate() { @if i > 0 { ", " } code { (o) } } }
                        }
                    }
                }
            }
        }
    }
}

/// One database's self-check, or why it could not run.
#[cfg(feature = "postgres")]
pub type CheckResult = (
    String,
    Result<crate::pg::actions::self_check::SelfCheck, String>,
);

/// The Database page's body.
#[cfg(feature = "postgres")]
pub fn database(checks: &[CheckResult]) -> Markup {
    html! {
        h1 { "Database" }
        @if checks.is_empty() {
            p.empty { "No database is watched. Set DATABASE_URL (and PERFSCOPE_WATCH_DATABASES for more), after running sql/install.sql as a superuser." }
        }
        @for (name, check) in checks {
            section {
                @match check {
                    Ok(check) => {
                        h2 { (name) span.muted { " · " (check.database_name) " as " (check.role) ", PostgreSQL " (check.server_version) } }
                        table {
                            thead { tr { th { "Capability" } th { "State" } th { "Detail" } th { "Fix" } } }
                            tbody {
                                @for c in &check.capabilities {
                                    tr {
                                        td { (c.name) }
                                        td { @if c.ok { span.sev.low { "ok" } } @else { span.sev.high { "missing" } } }
                                        td { (c.detail)
                                            @if !c.ok && !c.disables.is_empty() { div.muted { "turns off: " (c.disables.join(", ")) } } }
                                        td { @if let Some(fix) = &c.fix { div.statement-row { code.ddl { (fix) } (copy_button(fix)) } } }
                                    }
                                }
                            }
                        }
                    }
                    Err(error) => {
                        h2 { (name) }
                        p.notice { (error) }
                    }
                }
            }
        }
    }
}

/// The Database page's "perfscope's own cost" of one database: the
/// agent's statements there (as src/pg/own.rs recognises them) since the
/// last stats reset, and their share of all statement time, so an operator
/// can watch that the agent does no harm. `connections` is the agent's
/// connections open to the database now (between passes, none).
#[cfg(feature = "postgres")]
pub fn own_cost(
    name: &str,
    statements: &crate::pg::readers::statements::StatementsSnapshot,
    connections: Option<u64>,
) -> Markup {
    let own = &statements.own;
    let all_ms: f64 = own.total_ms
        + statements
            .statements
            .iter()
            .map(|s| s.cumulative.total_ms)
            .sum::<f64>();
    let share = (all_ms > 0.0).then(|| own.total_ms / all_ms);
    html! {
        section.own-cost {
            h2 { (name) span.muted { " · perfscope's own cost" } }
            @if statements.at.is_none() {
                p.empty { "Not read yet: pg_stat_statements has not been read in this database." }
            } @else {
                table {
                    thead { tr { th.num { "Statements" } th.num { "Calls" } th.num { "Total time" } th.num { "Share of statement time" } th.num { "Connections" } } }
                    tbody {
                        tr {
                            td.num { (statements.own_statements) }
                            td.num { (format::count(u64::try_from(own.calls).unwrap_or(0))) }
                            td.num { (format::millis(Some(own.total_ms))) }
                            td.num { (format::percent(share)) }
                            td.num { (connections.map_or_else(|| "–".to_owned(), |c| c.to_string())) }
                        }
                    }
                }
                p.muted { "The agent's own statements in pg_stat_statements since its last reset (also perfscope_agent_statement_calls_total and perfscope_agent_statement_seconds_total); they are left out of every statement list. Connections: those the agent holds open to this database now, within its budget of PERFSCOPE_MAX_DB_CONNECTIONS across every database (perfscope_db_connections); between passes it holds none." }
            }
        }
    }
}

/// The Database page's space and replication views of one database, from
/// the readers' last passes.
#[cfg(feature = "postgres")]
pub fn space_and_replication(
    name: &str,
    space: Option<&crate::pg::readers::space::SpaceSnapshot>,
    replication: Option<&crate::pg::readers::replication::ReplicationSnapshot>,
) -> Markup {
    let bytes = |b: i64| format::bytes(u64::try_from(b).ok());
    html! {
        section {
            h2 { (name) span.muted { " · space" } }
            @match space {
                None => { p.empty { "Not read yet: the space reader runs every fourth pass of the readers." } }
                Some(space) => {
                    div.scroll {
                        table {
                            thead { tr { th { "Table" } th.num { "Rows" } th.num { "Heap" } th.num { "TOAST" } th.num { "Indexes" }
                                th.num { "Total" } th.num { "Bloat (est.)" } th.num { "Growth" } } }
                            tbody {
                                @for t in space.tables.iter().take(10) {
                                    tr {
                                        td { code { (t.schema) "." (t.name) } }
                                        td.num { (format::count(t.rows_estimate.max(0.0) as u64)) }
                                        td.num { (bytes(t.heap_bytes)) }
                                        td.num { (bytes(t.toast_bytes)) }
                                        td.num { (bytes(t.index_bytes)) }
                                        td.num { (bytes(t.total_bytes)) }
                                        td.num.warn[t.bloat_ratio.is_some_and(|r| r >= crate::pg::readers::space::BLOAT_SHARE)] {
                                            (format::percent(t.bloat_ratio))
                                        }
                                        td.num { (t.growth_bytes.map_or_else(|| "–".to_owned(), |g| if g >= 0 { format!("+{}", bytes(g)) } else { format!("−{}", bytes(-g)) })) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { (name) span.muted { " · replication" } }
            @match replication {
                None => { p.empty { "Not read yet." } }
                Some(r) => {
                    p {
                        @if r.standby { "A standby, replaying from its primary." }
                        @else if r.standbys.is_empty() { "A primary with no standby connected." }
                        @else { "A primary with " (r.standbys.len()) " standby(s)." }
                        " "
                        @if r.slots.is_empty() { "No replication slot." }
                    }
                    @if !r.standbys.is_empty() {
                        table {
                            thead { tr { th { "Standby" } th { "State" } th.num { "Write lag" } th.num { "Flush lag" } th.num { "Replay lag" } th.num { "Behind" } } }
                            tbody {
                                @for s in &r.standbys {
                                    tr {
                                        td { (s.name) @if !s.client.is_empty() { span.muted { " · " (s.client) } } }
                                        td { (s.state) @if !s.sync_state.is_empty() { span.muted { " · " (s.sync_state) } } }
                                        td.num { (format::seconds(s.write_lag_seconds)) }
                                        td.num { (format::seconds(s.flush_lag_seconds)) }
                                        td.num { (format::seconds(s.replay_lag_seconds)) }
                                        td.num { (format::bytes(s.bytes_behind.map(|b| b.max(0.0) as u64))) }
                                    }
                                }
                            }
                        }
                    }
                    @if !r.slots.is_empty() {
                        table {
                            thead { tr { th { "Slot" } th { "Type" } th { "Active" } th { "WAL status" } th.num { "WAL retained" } } }
                            tbody {
                                @for slot in &r.slots {
                                    tr {
                                        td { code { (slot.name) } }
                                        td { (slot.slot_type) }
                                        td.warn[!slot.active] { @if slot.active { "yes" } @else { "no" } }
                                        td { (slot.wal_status) }
                                        td.num { (format::bytes(slot.retained_bytes.map(|b| b.max(0.0) as u64))) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One database's activity, or why it could not be read.
#[cfg(feature = "postgres")]
pub type ActivityResult = (
    String,
    Result<
        (
            crate::pg::readers::activity::ActivitySnapshot,
            crate::pg::readers::activity::Thresholds,
        ),
        String,
    >,
);

#[cfg(feature = "postgres")]
fn flag_badges(flags: &[String]) -> Markup {
    html! {
        @for flag in flags {
            @let class = match flag.as_str() {
                "blocked" | "blocking" => "sev high",
                _ => "sev medium",
            };
            span class=(class) { (flag.replace('_', " ")) } " "
        }
    }
}

#[cfg(feature = "postgres")]
fn signal_form(
    database: &str,
    session: &crate::pg::readers::activity::Backend,
    action: &str,
    csrf: &str,
) -> Markup {
    html! {
        form.inline-action method="post" action="/ui/activity/signal" {
            input type="hidden" name="csrf" value=(csrf);
            input type="hidden" name="database" value=(database);
            input type="hidden" name="pid" value=(session.pid);
            input type="hidden" name="backend_start" value=(session.backend_start);
            input type="hidden" name="action" value=(action);
            button.secondary.small type="submit" { (action) "…" }
        }
    }
}

/// The Activity page's body: per database, the lock chains root first and
/// the sessions with cancel and terminate buttons.
#[cfg(feature = "postgres")]
pub fn activity(databases: &[ActivityResult], csrf: &str, flash: Option<&str>) -> Markup {
    html! {
        h1 { "Activity" }
        @if let Some(flash) = flash {
            p.notice role="status" { (flash) }
        }
        @if databases.is_empty() {
            p.empty { "No database is watched. Set DATABASE_URL to see its sessions and locks." }
        }
        @for (name, result) in databases {
            section {
                @match result {
                    Err(error) => {
                        h2 { (name) }
                        p.notice { (error) }
                    }
                    Ok((snapshot, thresholds)) => {
                        @let summary = snapshot.summary();
                        h2 { (name) span.muted { " · " (snapshot.sessions.len()) " sessions · longest query "
                            (format::seconds(Some(summary.longest_query).filter(|s| *s > 0.0))) " · oldest transaction "
                            (format::seconds(Some(summary.longest_transaction).filter(|s| *s > 0.0))) } }
                        @let chains = snapshot.lock_chains();
                        @if !chains.is_empty() {
                            h3 { "Lock chains" span.muted { " · root blocker first" } }
                            @for chain in &chains {
                                ul.chain {
                                    @for member in &chain.sessions {
                                        li data-depth=(member.depth.min(3)) {
                                            @if member.depth == 0 {
                                                span.sev.high { "root" } " "
                                            } @else {
                                                span.muted { "↳ waits " (format::seconds(member.seconds)) " · " }
                                            }
                                            strong { "pid " (member.pid) } " "
                                            span.muted { (member.state) }
                                            @if member.depth == 0 {
                                                span.muted { " · transaction open " (format::seconds(member.seconds)) }
                                            }
                                            @if let Some(query) = &member.query {
                                                div { (sql(query)) }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                        @if snapshot.sessions.is_empty() {
                            p.empty { "No client session besides the agent's own." }
                        } @else {
                            div.scroll {
                                table.activity {
                                    thead { tr {
                                        th.num { "PID" } th { "User · application" } th { "State" } th { "Waiting on" }
                                        th.num { "Query age" } th.num { "Transaction age" } th { "Statement" } th { "" }
                                    } }
                                    tbody {
                                        @for session in &snapshot.sessions {
                                            tr {
                                                td.num { (session.pid) }
                                                td { (session.user) @if !session.application.is_empty() { span.muted { " · " (session.application) } }
                                                    @if !session.client.is_empty() { div.muted { (session.client) } } }
                                                td { (session.state) div { (flag_badges(&session.flags)) } }
                                                td { @if let Some(event) = &session.wait_event {
                                                        (session.wait_event_type.as_deref().unwrap_or("")) ": " (event)
                                                        @if !session.blocked_by.is_empty() {
                                                            div.muted { "blocked by " (session.blocked_by.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")) }
                                                        }
                                                    } @else { span.muted { "–" } } }
                                                td.num.warn[session.flags.iter().any(|f| f == "long_running")] { (format::seconds(session.query_seconds)) }
                                                td.num.warn[session.transaction_seconds.is_some_and(|t| t > thresholds.idle_in_transaction.as_secs_f64())] { (format::seconds(session.transaction_seconds)) }
                                                td.statement { (sql(&session.query)) }
                                                td.actions {
                                                    @if session.state == "active" { (signal_form(name, session, "cancel", csrf)) }
                                                    (signal_form(name, session, "terminate", csrf))
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A statement's plan, and (for a SELECT) the form that runs it with
/// EXPLAIN ANALYZE.
#[derive(Clone, Debug)]
pub struct ExplainView {
    /// The watched database.
    pub database: String,
    /// The queryid.
    pub queryid: String,
    /// The normalized statement.
    pub statement: String,
    /// The plan's text, or why there is none.
    pub plan: Result<String, String>,
    /// Whether the plan was run (ANALYZE).
    pub analyzed: bool,
    /// `$n` parameters, when it may be analyzed (a SELECT).
    pub analyzable: Option<usize>,
}

/// The Explain page's body.
pub fn explain(view: &ExplainView, csrf: &str) -> Markup {
    html! {
        h1 { "Plan" span.muted { " · " (view.database) " · queryid " (view.queryid) } }
        section {
            pre.statement { code { (view.statement) } }
            h2 { @if view.analyzed { "EXPLAIN (ANALYZE, BUFFERS)" } @else { "Generic plan" span.muted { " · nothing was run" } } }
            @match &view.plan {
                Ok(text) => { pre.plan { code { (text) } } }
                Err(error) => { p.notice { (error) } }
            }
            @if let Some(params) = view.analyzable {
                h2 { "Run it" }
                p.muted { "EXPLAIN (ANALYZE, BUFFERS) runs the SELECT with these values in a read-only transaction that is rolled back, under a 10 s statement_timeout." }
                form.params method="post" action="/ui/explain" {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="database" value=(view.database);
                    input type="hidden" name="queryid" value=(view.queryid);
                    @for i in 1..=params {
                        label { "$" (i) " " input type="text" name=(format!("p{i}")) required; }
                    }
                    button type="submit" { "EXPLAIN ANALYZE…" }
                }
            }
        }
    }
}

/// The confirmation of a change, posted again with `confirmed`.
pub fn confirm(
    question: &str,
    action: &str,
    fields: &[(&str, &str)],
    csrf: &str,
    back: &str,
) -> Markup {
    html! {
        h1 { "Confirm" }
        section.confirm {
            p { (question) }
            form method="post" action=(action) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="confirmed" value="yes";
                @for (name, value) in fields {
                    input type="hidden" name=(name) value=(value);
                }
                button type="submit" { "Yes, run it" }
                " "
                a.button.secondary href=(back) { "Cancel" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::history::RouteSummary;

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
        }
    }

    #[test]
    fn the_overview_formats_numbers_with_units() {
        let page = overview(&Overview {
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
    fn empty_states_say_what_to_do() {
        let page = overview(&Overview::default()).into_string();
        assert!(page.contains("No requests yet"), "{page}");
        assert!(page.contains("Set DATABASE_URL"), "{page}");
        let page = queries(&Queries {
            statements_missing: Some("pg_stat_statements is not loaded: add it".into()),
            ..Default::default()
        })
        .into_string();
        assert!(
            page.contains("pg_stat_statements is not loaded: add it"),
            "{page}"
        );
        assert!(page.contains("No statement is slow yet"), "{page}");
        let page = advice(&Advice::default(), "t").into_string();
        assert!(page.contains("No index suggestion"), "{page}");
    }

    #[test]
    fn sql_is_escaped_and_long_sql_folds() {
        let evil = "select '<script>alert(1)</script>' from t";
        let long = format!(
            "select {} from orders where customer_id = $1",
            "a, ".repeat(60)
        );
        let page = queries(&Queries {
            slow: vec![
                SlowRow {
                    statement: evil.into(),
                    source: "app".into(),
                    route: Some("/x/<b>".into()),
                    calls: 3,
                    mean_ms: 1_250.0,
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
        assert!(page.contains("<details class=\"sql\">"), "{page}");
        assert!(page.contains("50 %"), "{page}");
        assert!(
            page.contains("href=\"/ui/explain?database=default&amp;queryid=42\""),
            "{page}"
        );
    }

    #[test]
    fn advice_shows_the_statement_with_a_copy_button_and_the_saving() {
        let statement = "CREATE INDEX CONCURRENTLY ON \"public\".\"customers\" (\"email\");";
        let page = advice(
            &Advice {
                suggestions: vec![SuggestionRow {
                    database: "default".into(),
                    table: "public.customers".into(),
                    columns: vec!["email".into()],
                    create_statement: statement.into(),
                    helps: vec!["select * from customers where email = $1".into()],
                    calls: 1_000,
                    total_ms: 12_000.0,
                    costs: Some((1_500.0, 8.0)),
                    saving: Some(0.9947),
                    confirmed_by: "hypopg".into(),
                }],
                maintenance: true,
                ..Default::default()
            },
            "csrf-token-value",
        )
        .into_string();
        let escaped = statement.replace('"', "&quot;");
        assert!(page.contains(&escaped), "{page}");
        assert!(page.contains(&format!("data-copy=\"{escaped}\"")), "{page}");
        assert!(page.contains("−99 % planner cost"), "{page}");
        assert!(page.contains("1500 → 8"), "{page}");
        assert!(
            page.contains("name=\"csrf\" value=\"csrf-token-value\""),
            "{page}"
        );
        assert!(page.contains("action=\"/ui/advice/analyze\""), "{page}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_database_page_gives_the_fix_for_each_missing_piece() {
        use crate::pg::actions::self_check::{Capability, SelfCheck};
        let fix =
            "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'; -- then restart";
        let checks = vec![
            (
                "default".to_owned(),
                Ok(SelfCheck {
                    database: "default".into(),
                    database_name: "app".into(),
                    role: "perfscope".into(),
                    server_version: "15.18".into(),
                    capabilities: vec![
                        Capability {
                            name: "pg_stat_statements_loaded".into(),
                            ok: false,
                            detail: "statement statistics".into(),
                            disables: vec!["slow queries".into(), "index advice".into()],
                            fix: Some(fix.into()),
                        },
                        Capability {
                            name: "hypopg".into(),
                            ok: true,
                            detail: "hypothetical indexes".into(),
                            disables: vec![],
                            fix: None,
                        },
                    ],
                }),
            ),
            (
                "reports".to_owned(),
                Err("The database cannot be reached.".to_owned()),
            ),
        ];
        let page = database(&checks).into_string();
        for expected in [
            "app as perfscope, PostgreSQL 15.18",
            "pg_stat_statements_loaded",
            "missing",
            "turns off: slow queries, index advice",
            "ALTER SYSTEM SET shared_preload_libraries = &#39;pg_stat_statements&#39;",
            "The database cannot be reached.",
        ] {
            let expected = expected.replace("&#39;", "'");
            assert!(page.contains(&expected), "{expected} missing from {page}");
        }
        assert_eq!(page.matches("class=\"copy\"").count(), 1, "{page}");
        assert!(
            database(&[])
                .into_string()
                .contains("No database is watched")
        );
    }

    #[test]
    fn the_login_page_explains_a_missing_token_and_a_wrong_one() {
        let page = login(Some("That is not the admin token."), true).into_string();
        assert!(page.contains("type=\"password\""), "{page}");
        assert!(page.contains("That is not the admin token."), "{page}");
        let page = login(None, false).into_string();
        assert!(page.contains("PERFSCOPE_ADMIN_TOKEN"), "{page}");
        assert!(!page.contains("<form"), "{page}");
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_activity_page_shows_chains_root_first_and_signal_forms() {
        use crate::pg::readers::activity::{ActivitySnapshot, Backend, Thresholds};
        let session = |pid: i32, state: &str, blocked_by: Vec<i32>, query: &str| Backend {
            pid,
            user: "app".into(),
            application: "api".into(),
            client: "10.0.0.7".into(),
            state: state.into(),
            wait_event_type: (!blocked_by.is_empty()).then(|| "Lock".into()),
            wait_event: (!blocked_by.is_empty()).then(|| "transactionid".into()),
            query_seconds: Some(75.0),
            transaction_seconds: Some(90.0),
            state_seconds: Some(42.0),
            query: query.into(),
            blocked_by,
            backend_start: "2026-11-29 06:00:00+00".into(),
            flags: Vec::new(),
        };
        let mut snapshot = ActivitySnapshot {
            at: std::time::SystemTime::now(),
            sessions: vec![
                session(
                    101,
                    "idle in transaction",
                    vec![],
                    "update items set name = ? where id = ?",
                ),
                session(202, "active", vec![101], "select '<script>' from items"),
            ],
        };
        snapshot.flag(Thresholds::default());
        let page = activity(
            &[("default".into(), Ok((snapshot, Thresholds::default())))],
            "csrf-value",
            Some("Terminate sent to pid 101: its session ends."),
        )
        .into_string();
        let root = page.find("<strong>pid 101</strong>").expect("the root");
        let waiter = page.find("<strong>pid 202</strong>").expect("the waiter");
        assert!(root < waiter, "root first: {page}");
        for expected in [
            "Lock chains",
            "transaction open 90.00 s",
            "blocked by 101",
            "Lock: transactionid",
            "&lt;script&gt;",
            "name=\"action\" value=\"terminate\"",
            "name=\"csrf\" value=\"csrf-value\"",
            "Terminate sent to pid 101",
            "idle in transaction",
        ] {
            assert!(page.contains(expected), "{expected} missing from {page}");
        }
        assert!(!page.contains("<script>'"), "{page}");
        // Only the active session can be cancelled.
        assert_eq!(page.matches("value=\"cancel\"").count(), 1, "{page}");
    }
}
