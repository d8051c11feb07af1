//! The built-in web pages under `/ui`: Overview (routes, runtime, memory,
//! pools, alerts), Queries (slow statements, N+1 suspects, database time
//! per route), Advice (index suggestions with the ready statement, health
//! findings, ANALYZE on request), Database (the capability self-check)
//! and Compare (routes and statements before vs after a deploy, from the
//! history store).
//!
//! Server-rendered with maud, plain CSS and a few lines of JavaScript (auto
//! refresh, copy buttons), all embedded in the binary; charts are SVG from
//! the in-memory `crate::history::History`. A host app mounts [`endpoint`] at
//! `/ui` beside the API, so the per-route views show its own routes.
//!
//! Every page needs a session opened with the admin token (see
//! [`session`]); every change is a POST carrying the session's CSRF token
//! and is confirmed on a page of its own first. Responses forbid framing,
//! inline script and caching.
//!
//! The shape: [`pages`] holds one module per page with its handlers, the
//! data it reads and its view; `layout` the shared frame and plain
//! responses; `guard` the session extractors (`LoggedIn`, `Posted`) in
//! place of a preamble per handler; `widgets` the shared markup; the use
//! cases themselves are `crate::service`'s. This module keeps the route
//! table, the static assets and the response hardening.

pub mod format;
mod guard;
mod layout;
pub mod login_limit;
pub mod pages;
mod range;
#[cfg(feature = "postgres")]
mod refusal;
mod routes;
pub mod session;
pub mod svg;
mod timeline;
#[cfg(feature = "postgres")]
mod trend;
mod widgets;

use std::sync::Arc;

use poem::http::header;
use poem::{Endpoint, EndpointExt, Response, Route, RouteMethod, handler};

use self::pages::{
    activity, advice, compare, database, db_time, explain, login, overview, plan_changes, queries,
};
use self::session::Sessions;
use crate::Perfscope;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("app.js");

/// What the handlers share.
#[derive(Clone)]
pub(crate) struct Ui {
    pub(crate) perfscope: Perfscope,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) logins: Arc<login_limit::LoginLimit>,
    pub(crate) routes: Arc<routes::RouteSource>,
    /// The overview's stored route rows, one read per range and minute.
    #[cfg(feature = "store")]
    pub(crate) stored_routes: Arc<timeline::route_cache::RouteCache>,
    /// The Compare page's comparisons of the last minute.
    #[cfg(feature = "store")]
    pub(crate) comparisons: Arc<crate::service::compare::Comparisons>,
}

/// The route table: each path with its handlers by method, and the
/// `Allow` header of a 405 read off the same entries, so the two cannot
/// drift apart.
macro_rules! route_table {
    ($($path:literal => $($method:ident($handler:expr)),+;)+) => {
        (
            Route::new()$(.at($path, RouteMethod::new()$(.$method($handler))+))+,
            crate::http::AllowHeader::new([$((
                $path.to_owned(),
                vec![$(stringify!($method).to_uppercase()),+],
            )),+]),
        )
    };
}

/// The pages, their assets and the login, to mount at `/ui` (their links
/// are absolute): `Route::new().nest("/ui", perfscope::ui::endpoint(&p))`,
/// linking to the API's docs at the agent's `/docs`.
pub fn endpoint(perfscope: &Perfscope) -> impl Endpoint<Output = Response> + 'static {
    endpoint_with_docs_at(perfscope, "/docs")
}

/// [`endpoint`], linking to the API's docs at `docs`.
pub fn endpoint_with_docs_at(
    perfscope: &Perfscope,
    docs: &'static str,
) -> impl Endpoint<Output = Response> + 'static {
    let ui = Ui {
        perfscope: perfscope.clone(),
        sessions: Arc::new(Sessions::default()),
        logins: Arc::new(login_limit::LoginLimit::default()),
        routes: Arc::new(routes::RouteSource::new(perfscope)),
        #[cfg(feature = "store")]
        stored_routes: Arc::new(timeline::route_cache::RouteCache::default()),
        #[cfg(feature = "store")]
        comparisons: Arc::default(),
    };
    let (routes, allowed) = route_table! {
        "/" => get(overview::show);
        "/queries" => get(queries::show);
        "/advice" => get(advice::show);
        "/advice/analyze" => post(advice::analyze);
        "/database" => get(database::show);
        "/activity" => get(activity::show);
        "/activity/signal" => post(activity::signal);
        "/db-time" => get(db_time::show);
        "/explain" => get(explain::show), post(explain::run);
        "/plan-changes" => get(plan_changes::show);
        "/compare" => get(compare::show);
        "/login" => get(login::show), post(login::submit);
        "/logout" => post(login::logout);
        "/assets/style.css" => get(style);
        "/assets/app.js" => get(script);
    };
    routes
        .data(ui)
        // Forms are small: the same limit as the API's bodies (413 past it).
        .with(crate::http::BodyLimit::new(
            perfscope.config().server.max_body_bytes,
        ))
        .after(|result: poem::Result<Response>| async move {
            let mut response = result.unwrap_or_else(|error| error.into_response());
            harden(&mut response);
            Ok(response)
        })
        .with(allowed)
        .around(move |inner, request| {
            layout::DOCS.scope(docs, async move { inner.call(request).await })
        })
}

/// Headers every answer of the pages carries.
fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    let set = |headers: &mut poem::http::HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, poem::http::HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, "cache-control", "no-store");
    }
}

#[handler]
fn style() -> Response {
    Response::builder()
        .content_type("text/css; charset=utf-8")
        .header(header::CACHE_CONTROL, "private, max-age=300")
        .body(STYLE)
}

#[handler]
fn script() -> Response {
    Response::builder()
        .content_type("text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "private, max-age=300")
        .body(SCRIPT)
}
