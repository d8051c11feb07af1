//! perfscope's endpoints beside a host app's own routes, claiming only
//! their prefixes.
//!
//! The agent serves its API at `/` (the docs at `/docs`, health at
//! `/healthz`, JSON 404s for every unmatched path): right for a process of
//! its own, wrong inside someone else's app, where it would shadow the
//! host's `/`, take its fallback and its health paths. [`Mount`] adds to a
//! host's [`Route`] exactly two prefixes, [`API_PREFIX`] (the API, Swagger
//! UI at `/api/performance/docs`, the spec at
//! `/api/performance/openapi.json`) and, with the `ui` feature,
//! [`UI_PREFIX`] (the pages); health endpoints only at paths the host
//! names ([`Mount::health`]), metrics only where the host puts them
//! ([`metrics`]).
//!
//! It adds routes to the host's `Route` rather than handing out an endpoint
//! to nest at `/`: a nest at `/` is the host's root and its fallback, so
//! only prefixes cannot shadow anything. The host's routes keep winning:
//! one of its own under a prefix (`/api/performance/mine`) is more specific
//! than perfscope's catch-all and stays the host's, and the very same path
//! claimed twice (a host's own nest at `/ui`) makes poem's `Route` panic
//! when the routes are built, at start-up rather than by one silently
//! winning.
//!
//! ```
//! use poem::{Route, get, handler, EndpointExt};
//! #[handler]
//! fn home() -> &'static str { "the shop" }
//!
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! let app = perfscope::mount::Mount::new(&perfscope)
//!     .health("/healthz", "/readyz") // only if the host wants them
//!     .onto(Route::new().at("/", get(home)))
//!     .at("/metrics", perfscope::mount::metrics::endpoint(&perfscope, perfscope::mount::MetricsAccess::Open))
//!     .with(perfscope.middleware());
//! # let _ = app;
//! ```
//!
//! The same endpoints for axum are in `axum` (feature `axum`).

#[cfg(feature = "axum")]
pub mod axum;
pub mod metrics;

pub use metrics::{MetricsAccess, MetricsListener};

#[cfg(feature = "ui")]
use poem::EndpointExt;
use poem::endpoint::make_sync;
use poem::http::StatusCode;
use poem::{Endpoint, Response, Route, get};
use poem_openapi::types::ToJSON;

use crate::Perfscope;
use crate::api::CheckStatus;
use crate::http::BodyDeadline;

/// The prefix of the API, its docs and its spec.
pub const API_PREFIX: &str = crate::api::MOUNT_PREFIX;

/// The prefix of the web pages (feature `ui`).
pub const UI_PREFIX: &str = "/ui";

/// perfscope's routes for a host app; see the module docs.
#[derive(Clone)]
pub struct Mount {
    perfscope: Perfscope,
    health: Option<(String, String)>,
}

impl Mount {
    /// The API under [`API_PREFIX`] and the pages under [`UI_PREFIX`],
    /// nothing else.
    pub fn new(perfscope: &Perfscope) -> Self {
        Self {
            perfscope: perfscope.clone(),
            health: None,
        }
    }

    /// Also serves liveness at `live` and readiness at `ready` (the
    /// agent's `/healthz` and `/readyz` bodies), for a host that wants
    /// perfscope's view of readiness as its own.
    #[must_use]
    pub fn health(mut self, live: impl Into<String>, ready: impl Into<String>) -> Self {
        self.health = Some((live.into(), ready.into()));
        self
    }

    /// The paths this mount claims: each prefix (with everything below
    /// it) and the health paths asked for.
    pub fn claims(&self) -> Vec<String> {
        let mut claims = vec![API_PREFIX.to_owned()];
        if cfg!(feature = "ui") {
            claims.push(UI_PREFIX.to_owned());
        }
        if let Some((live, ready)) = &self.health {
            claims.extend([live.clone(), ready.clone()]);
        }
        claims
    }

    /// `routes` with perfscope's added. Panics, as poem's `Route` does,
    /// when the host already routes one of [`Mount::claims`] itself.
    pub fn onto(self, routes: Route) -> Route {
        let config = &self.perfscope.config().server;
        // The agent puts the body deadline around everything; a host's
        // server has its own settings, so it goes around perfscope's part.
        let deadline = BodyDeadline::new(config.body_timeout);
        let routes = crate::api::mount_onto(&self.perfscope, routes, deadline);
        #[cfg(feature = "ui")]
        let routes = routes.nest(
            UI_PREFIX,
            crate::ui::endpoint_with_docs_at(&self.perfscope, crate::api::MOUNT_DOCS)
                .with(deadline),
        );
        match self.health {
            None => routes,
            Some((live, ready)) => routes
                .at(live, get(liveness()))
                .at(ready, get(readiness(&self.perfscope))),
        }
    }
}

/// `GET /healthz`'s answer at a host's path.
fn liveness() -> impl Endpoint<Output = Response> {
    make_sync(|_| {
        json(
            StatusCode::OK,
            &crate::api::Health {
                status: CheckStatus::Ok,
            },
        )
    })
}

/// `GET /readyz`'s answer at a host's path.
fn readiness(perfscope: &Perfscope) -> impl Endpoint<Output = Response> + use<> {
    let perfscope = perfscope.clone();
    make_sync(move |_| {
        let readiness = crate::api::readiness(&perfscope);
        let status = if readiness.status == CheckStatus::Ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        json(status, &readiness)
    })
}

fn json(status: StatusCode, body: &impl ToJSON) -> Response {
    Response::builder()
        .status(status)
        .content_type("application/json; charset=utf-8")
        .body(body.to_json_string())
}
