//! The "Database time" page (`GET /ui/db-time`, issue 20): where a
//! watched database's time went, from the active session history — the
//! average active sessions (AAS) stacked by wait class over the range,
//! then the top waits, statements, routes (with each one's wait profile),
//! applications and roles, the blockers of rows that waited on locks
//! (linking to the activity page's lock chains) and the trace ids sampled
//! statements carried. The same use case as `GET
//! /api/performance/db-time` (`crate::service::db_time`), so the page and
//! the API cannot disagree.
//!
//! `?database=` (absent: every database) and `?range=15m|1h|6h|24h` are
//! checked before anything is read; a bad one is the page's 400 (404 for
//! a database not watched) naming the parameter.

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use crate::ui::Ui;
use crate::ui::guard::LoggedIn;
use crate::ui::layout::{Page, shown_with};

#[cfg(feature = "postgres")]
mod chart;
#[cfg(feature = "postgres")]
mod params;
#[cfg(feature = "postgres")]
mod view;

/// Rows per table.
#[cfg(feature = "postgres")]
const ROWS: u32 = 10;

#[handler]
pub async fn show(
    ui: Data<&Ui>,
    Query(query): Query<HashMap<String, String>>,
    logged_in: LoggedIn,
) -> Response {
    let session = &logged_in.session;
    #[cfg(feature = "postgres")]
    let (status, body) = {
        let databases: Vec<String> = ui
            .perfscope
            .watched()
            .all()
            .iter()
            .map(|w| w.name.to_string())
            .collect();
        match params::Params::parse(&query) {
            Ok(params) => match load(&ui, params, databases.clone()).await {
                Ok(view) => (StatusCode::OK, view::page(&view)),
                Err((status, message)) => (status, view::refused(&message, &databases)),
            },
            Err(message) => (StatusCode::BAD_REQUEST, view::refused(&message, &databases)),
        }
    };
    #[cfg(not(feature = "postgres"))]
    let (status, body) = {
        let _ = (&ui, &query);
        (
            StatusCode::OK,
            maud::html! { h1 { "Database time" } p.empty { "This build has no Postgres support." } },
        )
    };
    shown_with(status, Page::DbTime, session, body)
}

/// The page's data for `params`, or the status and sentence of a refusal.
#[cfg(feature = "postgres")]
async fn load(
    ui: &Ui,
    params: params::Params,
    databases: Vec<String>,
) -> Result<view::View, (StatusCode, String)> {
    use crate::pg::ash::By;
    use crate::service::db_time::{self as service, DbTimeError, DbTimeQuery};
    let now = service::unix_now();
    let read = async |by: By, top: u32| {
        let query = DbTimeQuery {
            database: params.database.clone(),
            since: Some(now - params.range.span_secs()),
            until: Some(now + 1),
            by,
            top: Some(top),
        };
        service::db_time(&ui.perfscope, &query, now)
            .await
            .map_err(|error| match error {
                DbTimeError::Refused(error) => crate::ui::refusal::refusal(&error),
                DbTimeError::Invalid { .. } => (StatusCode::BAD_REQUEST, format!("{error}.")),
            })
    };
    Ok(view::View {
        waits: read(By::Wait, 20).await?,
        statements: read(By::Statement, ROWS).await?,
        routes: read(By::Route, ROWS).await?,
        applications: read(By::Application, ROWS).await?,
        roles: read(By::Role, ROWS).await?,
        trace_url: ui.perfscope.config().telemetry.trace_url.clone(),
        params,
        databases,
    })
}
