//! The Compare page's markup: the events to split at, the two tables of a
//! comparison, and the sentences for a refusal or a missing store. Plain
//! functions of known data, so tests render them without a store; every
//! text from outside (labels, route templates, statements, database
//! names) goes through maud, escaped.

use maud::{Markup, html};

use super::params::{DEFAULT_DATABASE, Params, window_text};
use crate::service::compare::{
    Comparison, MAX_ENTRIES, RouteChange, RouteFigures, StatementChange, StatementFigures,
};
use crate::store::{EventKind, EventRow};
use crate::ui::format;
use crate::ui::range::query_value;
use crate::ui::widgets::sql;

/// Events listed to pick from.
pub const LISTED: usize = 100;

/// Within this ratio either way a change is written as a percentage
/// (`+4 %`), past it as a factor (`2.4× slower`).
const SMALL_CHANGE: f64 = 1.25;

/// The list of events to compare at.
pub fn moments(params: &Params, databases: &[String], events: &[EventRow], now: i64) -> Markup {
    html! {
        h1 { "Compare" }
        p.muted {
            "Routes and statements in the window before a moment against the window after it, from the history store. "
            "Pick a deploy or a marker below; deploys are recorded when a new release starts (SENTRY_RELEASE, or OTEL_SERVICE_NAME and perfscope's version), "
            "markers are posted to " code { "POST /api/performance/events" } "."
        }
        (form(params, databases))
        @if events.is_empty() {
            p.empty { "No event recorded yet: a deploy, a marker, a reset or a new index shows here once the history store has one." }
        } @else {
            div.scroll {
                table.events {
                    thead { tr { th { "When (UTC)" } th.num { "Ago" } th { "Kind" } th { "Label" } th { "Database" } th {} } }
                    tbody {
                        @for event in events {
                            @let href = match &event.database {
                                Some(database) => params.link_in(event.at, database),
                                None => params.link(event.at),
                            };
                            tr {
                                td.num { (utc(event.at)) }
                                td.num { (format::age((now - event.at) as f64)) }
                                td {
                                    @if splits(event.kind) { strong { (event.kind.as_str()) } } @else { (event.kind.as_str()) }
                                }
                                td { (event.label) }
                                td { @if let Some(database) = &event.database { code { (database) } } }
                                td { a href=(href) { "compare" } }
                            }
                        }
                    }
                }
            }
            @if events.len() >= LISTED {
                p.muted { "The newest " (LISTED) " events." }
            }
        }
    }
}

/// Deploys and markers: the events a comparison is usually split at.
fn splits(kind: EventKind) -> bool {
    matches!(kind, EventKind::Deploy | EventKind::Marker)
}

/// A comparison: the moment, the event there if any, both tables.
pub fn comparison(
    params: &Params,
    databases: &[String],
    compared: &Comparison,
    named: &[EventRow],
    now: i64,
) -> Markup {
    let window = window_text(compared.window);
    let ends = compared.at.saturating_add(compared.window);
    html! {
        h1 { "Compare" span.muted { " · " (compared.database) } }
        p {
            "The " (window) " before " strong { (utc(compared.at)) } " against the " (window) " after it. "
            a href="/ui/compare" { "Other moments" }
        }
        @if named.is_empty() {
            p.muted { "No event was recorded at that moment." }
        } @else {
            p.moment {
                "At that moment: "
                @for (i, event) in named.iter().enumerate() {
                    @if i > 0 { "; " }
                    strong { (event.kind.as_str()) } " " (event.label)
                    @if let Some(database) = &event.database { span.muted { " (" (database) ")" } }
                }
            }
        }
        @if ends > now {
            p.notice {
                @if compared.at > now {
                    "That moment is still to come: nothing is recorded after it yet."
                } @else {
                    "The window after is not over (it ends in " (format::age((ends - now) as f64)) "): it holds what was recorded so far."
                }
            }
        }
        (form(params, databases))
        p.muted {
            "Listed: what had at least " (compared.minimum_samples) " requests or calls on each side, the largest change of the mean first "
            "(twice as slow and twice as fast weigh the same), at most " (MAX_ENTRIES) " of each. Left out for too few on a side: "
            (compared.routes_left_out) " " (plural(compared.routes_left_out, "route", "routes")) " and "
            (compared.statements_left_out) " " (plural(compared.statements_left_out, "statement", "statements")) "."
        }
        h2 { "Routes" }
        @if compared.routes.is_empty() {
            p.empty { "No route had " (compared.minimum_samples) " requests on both sides." }
        } @else {
            (routes(&compared.routes))
        }
        h2 { "Statements" span.muted { " · " (compared.database) } }
        @if compared.statements.is_empty() {
            p.empty { "No statement had " (compared.minimum_samples) " calls on both sides." }
        } @else {
            (statements(&compared.database, &compared.statements))
        }
    }
}

fn routes(rows: &[RouteChange]) -> Markup {
    html! {
        div.scroll {
            table.compare {
                thead { tr {
                    th { "Route" } th.num { "Requests before" } th.num { "after" } th.num { "Mean before → after" }
                    th.num { "Change" } th.num { "p95 before → after" } th.num { "Errors before → after" }
                } }
                tbody {
                    @for row in rows {
                        @let (text, class) = change(row.mean_change);
                        tr {
                            td { span.method { (row.method) } " " code { (row.route) } }
                            td.num { (requests(&row.before)) }
                            td.num { (requests(&row.after)) }
                            td.num { (format::millis(Some(row.before.mean_ms))) " → " (format::millis(Some(row.after.mean_ms))) }
                            td.num.warn[class == Some("warn")].ok[class == Some("ok")] { (text) }
                            td.num { (format::millis(Some(row.before.p95_ms))) " → " (format::millis(Some(row.after.p95_ms))) }
                            td.num { (format::percent(Some(row.before.error_ratio))) " → " (format::percent(Some(row.after.error_ratio))) }
                        }
                    }
                }
            }
        }
        p.muted { "p95: interpolated inside the stored histogram bucket that holds it (the true value is somewhere in that bucket)." }
    }
}

fn statements(database: &str, rows: &[StatementChange]) -> Markup {
    html! {
        div.scroll {
            table.compare {
                thead { tr {
                    th { "Statement" } th.num { "Calls before" } th.num { "after" } th.num { "Mean before → after" }
                    th.num { "Change" } th.num { "Blocks read per call" }
                } }
                tbody {
                    @for row in rows {
                        @let (text, class) = change(row.mean_change);
                        tr {
                            td.statement {
                                @match &row.text {
                                    Some(text) => { (sql(text)) }
                                    None => { span.muted { "text not stored" } }
                                }
                                div.muted {
                                    "queryid " (row.queryid) " · "
                                    a href=(format!("/ui/explain?database={}&queryid={}", query_value(database), query_value(&row.queryid))) { "plan and trend" }
                                }
                            }
                            td.num { (calls(&row.before)) }
                            td.num { (calls(&row.after)) }
                            td.num { (format::millis(Some(row.before.mean_ms))) " → " (format::millis(Some(row.after.mean_ms))) }
                            td.num.warn[class == Some("warn")].ok[class == Some("ok")] { (text) }
                            td.num { (per_call(row.before.blocks_read_per_call)) " → " (per_call(row.after.blocks_read_per_call)) }
                        }
                    }
                }
            }
        }
        p.muted { "From pg_stat_statements' deltas: mean execution time, and shared blocks read (not found in the buffer cache) per call." }
    }
}

/// The form picking the window (and the database, when several are
/// watched); it keeps the moment when there is one.
fn form(params: &Params, databases: &[String]) -> Markup {
    let mut choices: Vec<&str> = databases.iter().map(String::as_str).collect();
    if !choices.contains(&params.database.as_str()) {
        choices.push(&params.database);
    }
    html! {
        form.params method="get" action="/ui/compare" {
            @if let Some(at) = params.at { input type="hidden" name="at" value=(at); }
            label { "window " input type="text" name="window" value=(window_text(params.window)) size="5"; }
            @if choices.len() > 1 {
                label { "database "
                    select name="database" {
                        @for name in &choices {
                            option value=(name) selected[*name == params.database] { (name) }
                        }
                    }
                }
            } @else if params.database != DEFAULT_DATABASE {
                input type="hidden" name="database" value=(params.database);
            }
            button type="submit" { @if params.at.is_some() { "Compare" } @else { "Use this window" } }
            span.muted { " each side: 1m to 30d, in seconds or with a unit (90s, 15m, 1h, 7d)" }
        }
    }
}

/// The page refusing its parameters (400), with the form to pick again.
pub fn refused(params: &Params, message: &str) -> Markup {
    html! {
        h1 { "Compare" }
        (form(params, &[]))
        p.notice { (message) }
    }
}

/// The page without a history store.
pub fn no_store() -> Markup {
    html! {
        h1 { "Compare" }
        p.empty {
            "The history store is off (PERFSCOPE_DATA_DIR=off), so there are no deploys or figures to compare. "
            "Set PERFSCOPE_DATA_DIR to a writable directory to keep them."
        }
    }
}

/// The page when the store cannot be read now.
pub fn unavailable(params: &Params, why: &str) -> Markup {
    html! {
        h1 { "Compare" }
        (form(params, &[]))
        p.notice { "The history store is not available (" (why) "); try again in a moment." }
    }
}

/// A mean's change as shown, and the class that colours it: a
/// percentage within [`SMALL_CHANGE`] either way, a factor past it
/// (`2.4× slower`, `3.0× faster`), a dash without one.
pub fn change(mean_change: Option<f64>) -> (String, Option<&'static str>) {
    let Some(ratio) = mean_change
        .map(|change| 1.0 + change)
        .filter(|r| r.is_finite() && *r >= 0.0)
    else {
        return ("–".to_owned(), None);
    };
    let factor = |f: f64| {
        if f < 10.0 {
            format!("{f:.1}×")
        } else {
            format!("{}×", format::count(f.round() as u64))
        }
    };
    if ratio > SMALL_CHANGE {
        (format!("{} slower", factor(ratio)), Some("warn"))
    } else if ratio < 1.0 / SMALL_CHANGE {
        let faster = if ratio > 0.0 {
            factor(1.0 / ratio)
        } else {
            "∞×".to_owned()
        };
        (format!("{faster} faster"), Some("ok"))
    } else {
        let percent = ((ratio - 1.0) * 100.0).round();
        let sign = if percent < 0.0 { "−" } else { "+" };
        (format!("{sign}{} %", percent.abs()), None)
    }
}

fn requests(figures: &RouteFigures) -> String {
    format::count(u64::try_from(figures.requests).unwrap_or(0))
}

fn calls(figures: &StatementFigures) -> String {
    format::count(u64::try_from(figures.calls).unwrap_or(0))
}

/// Blocks per call: a decimal under 10, whole past it.
fn per_call(value: f64) -> String {
    if !value.is_finite() || value < 0.0 {
        "–".to_owned()
    } else if value < 10.0 {
        format!("{value:.1}")
    } else {
        format::count(value.round() as u64)
    }
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// A moment in UTC: `2026-12-02 04:56:10 UTC` (the proleptic Gregorian
/// calendar, from the days since the epoch).
pub fn utc(at: i64) -> String {
    let (days, secs) = (at.div_euclid(86_400), at.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days, with March as the year's first
    // month so a leap day is the year's last.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests;
