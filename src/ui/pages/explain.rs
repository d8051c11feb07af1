//! The Plan page (`GET /ui/explain`: the generic plan of a statement of
//! the slow-query list) and EXPLAIN ANALYZE with the form's values (`POST
//! /ui/explain`, confirmed first), both through
//! `crate::service::explain`. Handlers and view live together. Below the
//! plan, the statement's trend over a range (`?range=`, `ui::trend`).

use std::collections::HashMap;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

#[cfg(feature = "postgres")]
use crate::Perfscope;
use crate::ui::Ui;
use crate::ui::guard::{LoggedIn, Posted};
use crate::ui::layout::{Page, answered, confirm, shown_with};

/// The plan of one statement: `values` carries the parameter values of an
/// EXPLAIN ANALYZE.
#[cfg(feature = "postgres")]
async fn plan_view(
    perfscope: &Perfscope,
    db_name: &str,
    queryid: &str,
    values: Option<&[Option<String>]>,
) -> Result<ExplainView, (StatusCode, String)> {
    let id: i64 = queryid.trim().parse().map_err(|_| {
        (
            StatusCode::BAD_REQUEST,
            "Field `queryid`: an integer is required.".to_owned(),
        )
    })?;
    let statement = crate::service::explain::statement(perfscope, Some(db_name), id)
        .map_err(|error| crate::ui::refusal::refusal(&error))?;
    let plan = crate::service::explain::plan(
        perfscope,
        &statement,
        values,
        None,
        crate::service::Source::Ui,
    )
    .await
    .map(|p| p.text)
    .map_err(|e| e.to_string());
    // The form only for a SELECT that may run, with a form-sized number of
    // parameters.
    let analyzable = statement.analyzable().filter(|params| *params <= 100);
    Ok(ExplainView {
        database: db_name.to_owned(),
        queryid: id.to_string(),
        statement: statement.text.to_string(),
        plan,
        analyzed: values.is_some(),
        analyzable,
    })
}

#[handler]
pub async fn show(
    ui: Data<&Ui>,
    Query(query): Query<HashMap<String, String>>,
    logged_in: LoggedIn,
) -> Response {
    let session = &logged_in.session;
    #[cfg(feature = "postgres")]
    let (status, body) = {
        let db_name = query.get("database").map_or("default", String::as_str);
        let queryid = query.get("queryid").map_or("", String::as_str);
        let range =
            match crate::ui::range::ChartRange::parse(query.get("range").map(String::as_str)) {
                Ok(range) => range,
                Err(message) => {
                    let body = maud::html! { h1 { "Plan" } p.notice { (message) } };
                    return shown_with(StatusCode::BAD_REQUEST, Page::Queries, session, body);
                }
            };
        let trend = match queryid.trim().parse::<i64>() {
            Ok(id) => {
                let trend = crate::ui::trend::load(&ui.perfscope, db_name, id, range).await;
                crate::ui::trend::view(&trend, db_name, id)
            }
            Err(_) => maud::html! {},
        };
        match plan_view(&ui.perfscope, db_name, queryid, None).await {
            Ok(plan) => (
                StatusCode::OK,
                maud::html! { (view(&plan, &session.csrf)) (trend) },
            ),
            Err((status, message)) => (
                status,
                maud::html! { h1 { "Plan" } p.notice { (message) } (trend) },
            ),
        }
    };
    #[cfg(not(feature = "postgres"))]
    let (status, body) = {
        let _ = (&ui, &query);
        (
            StatusCode::SERVICE_UNAVAILABLE,
            maud::html! { h1 { "Plan" } p.empty { "This build has no Postgres support." } },
        )
    };
    shown_with(status, Page::Queries, session, body)
}

/// `POST /ui/explain`: EXPLAIN ANALYZE with the form's values, after a
/// confirmation.
#[handler]
pub async fn run(ui: Data<&Ui>, posted: Posted) -> Response {
    let Posted { session, form, .. } = posted;
    let db_name = form.get("database").map_or("default", String::as_str);
    let queryid = form.get("queryid").map_or("", String::as_str);
    // Exactly p1…pN, in order: a gap or another spelling of a number is
    // refused rather than bound to the wrong parameter.
    let values: Vec<String> = (1..)
        .map_while(|n| form.get(&format!("p{n}")).cloned())
        .collect();
    let stray = form.keys().any(|k| {
        k.starts_with('p') && k != "pid" && k.len() > 1 && {
            let n = &k[1..];
            !(n.parse::<usize>()
                .is_ok_and(|n| (1..=values.len()).contains(&n))
                && n == n.trim_start_matches('0'))
        }
    });
    if stray {
        return answered(
            StatusCode::BAD_REQUEST,
            Page::Queries,
            &session,
            maud::html! {
                h1 { "Plan" } p.notice { "Fields `p1`, `p2`, …: one value per parameter, numbered from 1 without gaps." }
            },
        );
    }
    if form.get("confirmed").map(String::as_str) != Some("yes") {
        let mut fields: Vec<(String, String)> = vec![
            ("database".into(), db_name.into()),
            ("queryid".into(), queryid.into()),
        ];
        for (n, v) in values.iter().enumerate() {
            fields.push((format!("p{}", n + 1), v.clone()));
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        return answered(
            StatusCode::OK,
            Page::Queries,
            &session,
            confirm(
                &format!(
                    "Run statement {queryid} of {db_name} with EXPLAIN (ANALYZE, BUFFERS)? It runs for real (read-only, rolled back, at most 10 s)."
                ),
                "/ui/explain",
                &borrowed,
                &session.csrf,
                &format!("/ui/explain?database={db_name}&queryid={queryid}"),
            ),
        );
    }
    #[cfg(feature = "postgres")]
    {
        let params: Vec<Option<String>> = values.into_iter().map(Some).collect();
        let (status, body) = match plan_view(&ui.perfscope, db_name, queryid, Some(&params)).await {
            Ok(plan) => (StatusCode::OK, view(&plan, &session.csrf)),
            Err((status, message)) => {
                (status, maud::html! { h1 { "Plan" } p.notice { (message) } })
            }
        };
        answered(status, Page::Queries, &session, body)
    }
    #[cfg(not(feature = "postgres"))]
    {
        let _ = (&ui, values);
        answered(
            StatusCode::SERVICE_UNAVAILABLE,
            Page::Queries,
            &session,
            maud::html! { h1 { "Plan" } p.empty { "This build has no Postgres support." } },
        )
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
pub fn view(view: &ExplainView, csrf: &str) -> Markup {
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
