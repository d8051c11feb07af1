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

use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::error::NotFoundError;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::UnmatchedRoute;
use crate::db::{DbInsights, context};
use crate::metrics::http::{HttpLabels, HttpMethod, HttpMetrics, RouteLabel, StatusLabel};

/// Middleware recording request metrics; see the module docs.
#[derive(Clone, Debug)]
pub struct RequestMetrics {
    metrics: Arc<HttpMetrics>,
    db: Arc<DbInsights>,
}

impl RequestMetrics {
    /// Middleware recording into `metrics`, attributing each request's
    /// database work through `db`.
    pub fn new(metrics: Arc<HttpMetrics>, db: Arc<DbInsights>) -> Self {
        Self { metrics, db }
    }
}

impl<E: Endpoint> Middleware<E> for RequestMetrics {
    type Output = RequestMetricsEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestMetricsEndpoint {
            inner,
            metrics: self.metrics.clone(),
            db: self.db.clone(),
        }
    }
}

/// The endpoint produced by [`RequestMetrics`].
#[derive(Debug)]
pub struct RequestMetricsEndpoint<E> {
    inner: E,
    metrics: Arc<HttpMetrics>,
    db: Arc<DbInsights>,
}

/// Decrements the in-flight gauge even if the request future is dropped.
struct InFlight<'a>(&'a prometheus_client::metrics::gauge::Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
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
        let method = HttpMethod::from(req.method());
        self.metrics.in_flight.inc();
        let _in_flight = InFlight(&self.metrics.in_flight);
        let started = Instant::now();

        let (result, db) = context::scope(self.inner.call(req)).await;
        let result = result.map(IntoResponse::into_response);

        let elapsed = started.elapsed().as_secs_f64();
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        let route = route_of_result(&result);
        if let Some(db) = db {
            self.db.finish_request(&route, &db);
        }
        let labels = HttpLabels {
            method,
            route,
            status_code: StatusLabel(Some(status.as_u16())),
        };
        self.metrics
            .observe_traced(&labels, elapsed, crate::telemetry::current_trace_id);
        result
    }
}
