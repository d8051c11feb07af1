//! The Compare page (`GET /ui/compare`, issue 19, "Deploys compared"):
//! without `at`, the history store's recent events (deploys, markers and
//! the others), newest first, each a link that splits the view there;
//! with `at` (and `window`, `database`), routes and statements in the
//! window before that moment against the window after it, sorted by the
//! change, from `crate::service::compare` (the same use case as `GET
//! /api/performance/compare`, so the page and the API cannot disagree).
//!
//! The parameters are checked here before anything is read: a bad `at`,
//! `window` or `database` is the page's 400 naming the parameter (as a
//! bad `?range=` is), with the form to pick again, rather than a
//! comparison of some other window than the one asked for. Without a
//! store (`PERFSCOPE_DATA_DIR=off`, or a build without the `store`
//! feature) the page says so. Statement texts, route templates and labels
//! are untrusted: rendered only through maud (escaped), statements cut as
//! the other pages cut them.

use std::collections::HashMap;

use poem::http::StatusCode;
use poem::web::{Data, Query};
use poem::{Response, handler};

use crate::ui::Ui;
use crate::ui::guard::LoggedIn;
use crate::ui::layout::{Page, shown_with};

#[cfg(feature = "store")]
mod params;
#[cfg(feature = "store")]
mod view;

#[handler]
pub async fn show(
    ui: Data<&Ui>,
    Query(query): Query<HashMap<String, String>>,
    logged_in: LoggedIn,
) -> Response {
    let session = &logged_in.session;
    #[cfg(feature = "store")]
    let (status, body) = match params::Params::parse(&query) {
        Ok(params) => load(&ui, &params).await,
        Err(message) => (
            StatusCode::BAD_REQUEST,
            view::refused(&params::Params::default(), &message),
        ),
    };
    #[cfg(not(feature = "store"))]
    let (status, body) = {
        let _ = (&ui, &query);
        (
            StatusCode::OK,
            maud::html! { h1 { "Compare" } p.empty { "This build has no history store (the `store` feature), so there is nothing to compare." } },
        )
    };
    shown_with(status, Page::Compare, session, body)
}

/// The page for `params`: the events to pick from, or the comparison.
#[cfg(feature = "store")]
async fn load(ui: &Ui, params: &params::Params) -> (StatusCode, maud::Markup) {
    use crate::service::events::{self, HistoryError};

    let perfscope = &ui.perfscope;
    let store = perfscope.store();
    let databases: Vec<String> = perfscope
        .watched()
        .all()
        .iter()
        .map(|watched| watched.name.to_string())
        .collect();
    let now = store.map_or_else(crate::store::unix_now, crate::store::Store::now);
    let answer = match params.at {
        None => events::list(store, None, None, Some(view::LISTED))
            .await
            .map(|events| view::moments(params, &databases, &events, now)),
        Some(at) => {
            let compared = ui
                .comparisons
                .compare(store, &params.database, at, params.window)
                .await;
            match compared {
                Ok(comparison) => {
                    // The event of that very second, when the link came
                    // from one (a failed read only loses its name).
                    let named = events::list(store, Some(at), Some(at.saturating_add(1)), Some(5))
                        .await
                        .unwrap_or_default();
                    Ok(view::comparison(
                        params,
                        &databases,
                        &comparison,
                        &named,
                        now,
                    ))
                }
                Err(error) => Err(error),
            }
        }
    };
    match answer {
        Ok(body) => (StatusCode::OK, body),
        Err(HistoryError::NoStore) => (StatusCode::OK, view::no_store()),
        Err(HistoryError::BadRequest(message)) => {
            (StatusCode::BAD_REQUEST, view::refused(params, &message))
        }
        Err(HistoryError::Store(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            view::unavailable(params, &error.to_string()),
        ),
    }
}
