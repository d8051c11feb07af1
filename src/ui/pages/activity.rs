//! The Activity page (`GET /ui/activity`) and its change, cancelling or
//! terminating a backend (`POST /ui/activity/signal`, confirmed first,
//! sent through `crate::service::signal`). Handlers and view live
//! together.

use std::collections::HashMap;

#[cfg(feature = "postgres")]
use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use crate::ui::Ui;
#[cfg(feature = "postgres")]
use crate::ui::format;
use crate::ui::guard::{LoggedIn, Posted};
use crate::ui::layout::{Page, answered, shown};
#[cfg(feature = "postgres")]
use crate::ui::{layout::confirm, layout::see_other, widgets::sql};

#[handler]
pub async fn show(
    ui: Data<&Ui>,
    Query(query): Query<HashMap<String, String>>,
    logged_in: LoggedIn,
) -> Response {
    let session = &logged_in.session;
    #[cfg(feature = "postgres")]
    let body = {
        let timeout = ui.perfscope.config().readers.timeout;
        let mut databases = Vec::new();
        for watched in ui.perfscope.watched().all() {
            let thresholds = watched.activity.thresholds();
            let read =
                crate::pg::readers::activity::read_now(&watched.pool, thresholds, timeout).await;
            databases.push((
                watched.name.to_string(),
                read.map(|snapshot| (snapshot, thresholds)).map_err(|error| {
                    tracing::warn!(database = %watched.name, %error, "ui: activity read failed");
                    "The database cannot be read now; reload to try again.".to_owned()
                }),
            ));
        }
        // The message is made here from a closed set, never echoed.
        let pid = query.get("pid").and_then(|p| p.parse::<i32>().ok());
        let flash = match (query.get("done").map(String::as_str), pid) {
            (Some("cancel"), Some(pid)) => Some(format!(
                "Cancel sent to pid {pid}: its query stops, the session stays."
            )),
            (Some("terminate"), Some(pid)) => {
                Some(format!("Terminate sent to pid {pid}: its session ends."))
            }
            (Some("gone"), Some(pid)) => Some(format!("pid {pid} was already gone.")),
            _ => None,
        };
        view(&databases, &session.csrf, flash.as_deref())
    };
    #[cfg(not(feature = "postgres"))]
    let body = {
        let _ = (&ui, &query);
        maud::html! { h1 { "Activity" } p.empty { "This build has no Postgres support." } }
    };
    shown(Page::Activity, session, body)
}

/// `POST /ui/activity/signal`: cancel or terminate one session, after a
/// confirmation that shows what it is running.
#[handler]
pub async fn signal(ui: Data<&Ui>, posted: Posted) -> Response {
    let Posted { session, form, .. } = posted;
    let refuse = |status: StatusCode, message: String| {
        answered(
            status,
            Page::Activity,
            &session,
            maud::html! {
                h1 { "Activity" } p.notice { (message) } p { a href="/ui/activity" { "Back to the activity" } }
            },
        )
    };
    let Some(pid) = form
        .get("pid")
        .and_then(|p| p.parse::<i32>().ok())
        .filter(|p| *p > 0)
    else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Field `pid`: a positive backend pid is required.".into(),
        );
    };
    #[cfg(feature = "postgres")]
    {
        use crate::pg::actions::signal::Signal;
        let action = match form.get("action").map(String::as_str) {
            Some("cancel") => Signal::Cancel,
            Some("terminate") => Signal::Terminate,
            _ => {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "Field `action`: cancel or terminate.".into(),
                );
            }
        };
        let name = form.get("database").map_or("default", String::as_str);
        let watched = match crate::service::databases::watched(&ui.perfscope, Some(name)) {
            Ok(watched) => watched,
            Err(error) => {
                let (status, message) = crate::ui::refusal::refusal(&error);
                return refuse(status, message);
            }
        };
        // The session the page listed, not a later one with its pid.
        let backend_start = form
            .get("backend_start")
            .map(String::as_str)
            .filter(|b| !b.is_empty() && b.len() <= 64);
        if form.get("confirmed").map(String::as_str) != Some("yes") {
            let running = watched
                .activity
                .latest()
                .and_then(|a| {
                    a.sessions
                        .iter()
                        .find(|s| s.pid == pid)
                        .map(|s| format!(" ({}, {}: {})", s.user, s.state, s.query))
                })
                .unwrap_or_default();
            let question = match action {
                Signal::Cancel => format!(
                    "Cancel the running query of pid {pid}{running} in {name}? The session stays."
                ),
                Signal::Terminate => format!(
                    "Terminate pid {pid}{running} in {name}? Its session ends and its open transaction rolls back."
                ),
            };
            let pid_text = pid.to_string();
            return answered(
                StatusCode::OK,
                Page::Activity,
                &session,
                confirm(
                    &question,
                    "/ui/activity/signal",
                    &[
                        ("database", name),
                        ("pid", &pid_text),
                        ("action", action.as_str()),
                        ("backend_start", backend_start.unwrap_or("")),
                    ],
                    &session.csrf,
                    "/ui/activity",
                ),
            );
        }
        match crate::service::signal::send(
            &ui.perfscope,
            &watched,
            pid,
            action,
            backend_start,
            crate::service::Source::Ui,
        )
        .await
        {
            Ok(signalled) => {
                let outcome = if signalled { action.as_str() } else { "gone" };
                see_other(&format!("/ui/activity?done={outcome}&pid={pid}"))
            }
            Err(error) => {
                let (status, message) = crate::ui::refusal::refusal(&error);
                refuse(status, message)
            }
        }
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (&ui, pid);
        refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "This build has no Postgres support.".into(),
        )
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
pub fn view(databases: &[ActivityResult], csrf: &str, flash: Option<&str>) -> Markup {
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
                                                td.statement { (sql(&session.query))
                                                    @if let Some(tags) = &session.tags {
                                                        div.muted.tags {
                                                            @if let Some(route) = tags.route.as_ref().or(tags.controller.as_ref()) { "route " code { (route) } " " }
                                                            @if let Some(framework) = &tags.framework { "· " (framework) " " }
                                                            @if let Some(trace) = &tags.trace_id { "· trace " code { (trace) } }
                                                        }
                                                    } }
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

#[cfg(test)]
mod tests {
    use super::*;

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
            tags: crate::pg::readers::activity::SqlTags::of(
                "SELECT 1 /*route='%2Fapi%2Forders',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
            ),
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
        let page = view(
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
            "route <code>/api/orders</code>",
            "trace <code>4bf92f3577b34da6a3ce929d0e0e4736</code>",
        ] {
            assert!(page.contains(expected), "{expected} missing from {page}");
        }
        assert!(!page.contains("<script>'"), "{page}");
        // Only the active session can be cancelled.
        assert_eq!(page.matches("value=\"cancel\"").count(), 1, "{page}");
    }
}
