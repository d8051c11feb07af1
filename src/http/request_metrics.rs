//! [`RequestMetrics`]: times every request into
//! `http_request_duration_seconds{method, route, status_code}` and counts
//! `http_requests_in_flight`.
//!
//! Poem sets the route template (`PathPattern`) only after routing, on the
//! response or the error that comes back, so the middleware reads it there;
//! a request that matched no route is labelled `unmatched`. Put it outside
//! the routes (`Route::new()...with(perfscope.middleware())`).
//!
//! It also opens the request's database context (see [`crate::db::context`])
//! and, when the response is back, attributes the request's statements to
//! its route: per-route database time, N+1 suspects, the route of its slow
//! queries.
//!
//! ```
//! use poem::{Route, get, handler, EndpointExt, test::TestClient};
//!
//! #[handler]
//! fn user() -> &'static str { "ok" }
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! let app = Route::new().at("/users/:id", get(user)).with(perfscope.middleware());
//! TestClient::new(app).get("/users/42").send().await.assert_status_is_ok();
//!
//! let text = perfscope.encode_metrics().unwrap();
//! assert!(text.contains(
//!     r#"http_request_duration_seconds_count{method="GET",route="/users/:id",status_code="200"} 1"#
//! ));
//! # });
//! ```

use poem::PathPattern;
use poem::error::NotFoundError;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::UnmatchedRoute;
use super::core::RequestCore;
use crate::db::context;
use crate::metrics::http::RouteLabel;

/// Middleware recording request metrics; see the module docs.
#[derive(Clone, Debug)]
pub struct RequestMetrics {
    core: RequestCore,
}

impl RequestMetrics {
    /// Middleware recording through `core` (what the tower layer records
    /// through too).
    pub fn new(core: RequestCore) -> Self {
        Self { core }
    }
}

impl<E: Endpoint> Middleware<E> for RequestMetrics {
    type Output = RequestMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestMetricsEndpoint {
            inner,
            core: self.core.clone(),
        }
    }
}

/// The endpoint produced by [`RequestMetrics`].
#[derive(Debug)]
pub struct RequestMetricsEndpoint<E> {
    inner: E,
    core: RequestCore,
}

fn route_of(pattern: Option<&PathPattern>) -> RouteLabel {
    pattern.map_or(RouteLabel::Unmatched, |p| RouteLabel::Template(p.0.clone()))
}

/// The route template a response (or error) came from, `unmatched` when
/// no route matched.
pub(crate) fn route_of_result(result: &Result<Response>) -> RouteLabel {
    match result {
        Ok(response) if response.data::<UnmatchedRoute>().is_some() => RouteLabel::Unmatched,
        Ok(response) => route_of(response.data::<PathPattern>()),
        // A nested `Route` tags its own NotFoundError with the prefix it
        // matched (e.g. "" for a nest at "/"): that request matched no
        // route.
        Err(error) if error.is::<NotFoundError>() => RouteLabel::Unmatched,
        Err(error) => route_of(error.data::<PathPattern>()),
    }
}

impl<E: Endpoint> Endpoint for RequestMetricsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let started = self.core.begin(req.method());
        let (result, db) = context::scope(self.inner.call(req)).await;
        let result = result.map(IntoResponse::into_response);
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        // Inside the OTLP middleware's context, if it runs outside this one.
        self.core.finish(
            started,
            route_of_result(&result),
            status.as_u16(),
            db.as_deref(),
            crate::telemetry::current_trace_id,
        );
        result
    }
}
