//! The "Database time" page's markup, from a plain view model so tests
//! render it from known data. Every text in it (statements, routes,
//! applications, roles, trace ids) came from the database or another
//! app's SQL comments: untrusted, rendered only through maud (escaped),
//! statements normalized and cut as the other pages cut them, and a
//! trace id becomes a link only through the checked template
//! (`PERFSCOPE_TRACE_URL`) and only when it is 32 hex digits.

use maud::{Markup, html};

use super::chart::{profile, stacked, swatch};
use super::params::{Params, Range};
use crate::config::TraceUrl;
use crate::pg::ash::WaitClass;
use crate::pg::ash::answer::{DbTime, DbTimeRow};
use crate::ui::widgets::{meter, sql};

/// What the page shows.
pub struct View {
    /// What was asked.
    pub params: Params,
    /// The watched databases, for the selector.
    pub databases: Vec<String>,
    /// The range by wait event (its series is the chart's).
    pub waits: DbTime,
    /// By statement.
    pub statements: DbTime,
    /// By route.
    pub routes: DbTime,
    /// By application.
    pub applications: DbTime,
    /// By role.
    pub roles: DbTime,
    /// Where a trace id opens.
    pub trace_url: Option<TraceUrl>,
}

/// An AAS as shown: two decimals under 10, one above.
pub fn aas_text(aas: f64) -> String {
    if aas < 10.0 {
        format!("{aas:.2}")
    } else {
        format!("{aas:.1}")
    }
}

/// The page's head: title, the range and database selectors.
fn head(params: &Params, databases: &[String]) -> Markup {
    let database = params.database.as_deref();
    html! {
        h1 { "Database time" @if let Some(name) = database { span.muted { " · " (name) } } }
        nav.ranges aria-label="Range" {
            @for range in Range::ALL {
                a href=(Params::href(database, range)) aria-current=[(range == params.range).then_some("page")] { (range.as_str()) }
            }
        }
        @if databases.len() > 1 || database.is_some() {
            nav.ranges aria-label="Database" {
                a href=(Params::href(None, params.range)) aria-current=[database.is_none().then_some("page")] { "every database" }
                @for name in databases {
                    a href=(Params::href(Some(name), params.range)) aria-current=[(database == Some(name.as_str())).then_some("page")] { (name) }
                }
            }
        }
    }
}

/// A refused page: the sentence and the selectors to pick again.
pub fn refused(message: &str, databases: &[String]) -> Markup {
    html! {
        (head(&Params::default(), databases))
        p.notice { (message) }
    }
}

/// The page.
pub fn page(view: &View) -> Markup {
    let waits = &view.waits;
    html! {
        (head(&view.params, &view.databases))
        @if waits.samples == 0 {
            p.empty { "No samples yet: ASH samples pg_stat_activity every PERFSCOPE_ASH_INTERVAL (when it is off, none are taken)." }
        } @else {
            p { "Average active sessions over the last " (view.params.range.words()) ": " strong { (aas_text(waits.aas)) }
                span.muted { " · " (waits.samples) " samples, one every " (waits.interval_seconds) " s · "
                    (format!("{:.0}", waits.seconds)) " s of database time" } }
            (stacked(&waits.series, waits.since, waits.until, waits.step_seconds))
            (legend(waits))
            @if waits.cut_comments > 0 {
                p.notice { (waits.cut_comments) " statement texts were cut inside their sqlcommenter comment at track_activity_query_size: their tags (route, trace) are lost; raise the setting." }
            }
            (table("Top waits", "Wait", waits, view, Columns::WAITS))
            (table("Top statements", "Statement", &view.statements, view, Columns::STATEMENTS))
            (table("Top routes", "Route", &view.routes, view, Columns::ROUTES))
            (table("Top applications", "Application", &view.applications, view, Columns::OTHERS))
            (table("Top roles", "Role", &view.roles, view, Columns::OTHERS))
        }
    }
}

/// Each class' colour and its average over the range.
fn legend(answer: &DbTime) -> Markup {
    let mut totals = [0.0f64; WaitClass::ALL.len()];
    for row in answer.top.iter().chain(&answer.other) {
        for wait in &row.waits {
            if let Some(i) = WaitClass::ALL.iter().position(|c| c.as_str() == wait.class) {
                totals[i] += wait.aas;
            }
        }
    }
    html! {
        ul.legend {
            @for (class, aas) in WaitClass::ALL.iter().zip(totals) {
                @if aas > 0.0 {
                    li { (swatch(class.as_str())) " " (class.as_str()) " " span.muted { (aas_text(aas)) } }
                }
            }
        }
    }
}

/// Which columns a table has.
#[derive(Clone, Copy)]
struct Columns {
    statement: bool,
    profile: bool,
    traces: bool,
    blockers: bool,
}

impl Columns {
    const WAITS: Self = Self {
        statement: false,
        profile: false,
        traces: false,
        blockers: true,
    };
    const STATEMENTS: Self = Self {
        statement: true,
        profile: true,
        traces: true,
        blockers: true,
    };
    const ROUTES: Self = Self {
        statement: false,
        profile: true,
        traces: true,
        blockers: true,
    };
    const OTHERS: Self = Self {
        statement: false,
        profile: true,
        traces: false,
        blockers: false,
    };
}

fn table(title: &str, what: &str, answer: &DbTime, view: &View, columns: Columns) -> Markup {
    html! {
        section.db-time {
            h2 { (title) }
            @if answer.top.is_empty() {
                p.empty { "None in the range." }
            } @else {
                div.scroll {
                    table {
                        thead { tr {
                            th { (what) } th.num { "AAS" } th { "Share" }
                            @if columns.profile { th { "Wait profile" } }
                            @if columns.traces { th { "Traces" } }
                            @if columns.blockers { th { "Blocked by" } }
                        } }
                        tbody {
                            @for row in &answer.top { (table_row(row, view, columns, false)) }
                            @if let Some(other) = &answer.other { (table_row(other, view, columns, true)) }
                        }
                    }
                }
            }
        }
    }
}

fn table_row(row: &DbTimeRow, view: &View, columns: Columns, other: bool) -> Markup {
    html! {
        tr {
            td {
                @if other {
                    span.muted { "the rest" }
                } @else if columns.statement {
                    (sql(&row.key))
                    div.muted {
                        @if let Some(fingerprint) = &row.fingerprint { "fingerprint " code { (fingerprint) } }
                        @if let (Some(database), Some(id)) = (&view.params.database, row.query_id) {
                            " · " a href=(format!("/ui/explain?database={}&queryid={id}", crate::ui::range::query_value(database))) { "plan and trend" }
                        }
                    }
                } @else {
                    code { (row.key) }
                }
            }
            td.num { (aas_text(row.aas)) }
            td { (meter(row.share, 0.5)) " " span.muted { (format!("{:.0} %", row.share * 100.0)) } }
            @if columns.profile { td { (profile(&row.waits)) } }
            @if columns.traces { td { (traces(&row.trace_ids, view.trace_url.as_ref())) } }
            @if columns.blockers { td { (blockers(row)) } }
        }
    }
}

/// Trace ids, each a link when a trace URL is configured.
fn traces(ids: &[String], url: Option<&TraceUrl>) -> Markup {
    html! {
        @for id in ids {
            @match url.and_then(|u| u.link(id)) {
                Some(link) => { a.trace href=(link) rel="noreferrer" { code { (id) } } " " }
                None => { code.trace { (id) } " " }
            }
        }
    }
}

/// A row that waited on locks: the statements that held them, and the
/// activity page's lock chains.
fn blockers(row: &DbTimeRow) -> Markup {
    let waited_on_locks = row
        .waits
        .iter()
        .any(|w| w.class == WaitClass::Lock.as_str());
    html! {
        @if waited_on_locks || !row.blocked_by.is_empty() {
            @for blocker in &row.blocked_by { div { (sql(blocker)) } }
            a href="/ui/activity" { "lock chains now" }
        }
    }
}
