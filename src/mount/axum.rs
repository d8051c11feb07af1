//! perfscope's API, pages and metrics in an axum app.
//!
//! Bridged, not re-implemented: [`PoemService`] runs perfscope's Poem
//! endpoints as a tower service, so an axum app gets the very endpoints the
//! agent serves, with their auth, redaction, body limits, JSON errors and
//! the one OpenAPI spec generated from them. A native axum copy would be a
//! second implementation of every endpoint and guard, free to drift from
//! the spec and from each other. The price is a conversion per request (the
//! bodies pass through as streams, nothing is buffered), on endpoints that
//! are read by people and scrapers, not on the host's hot path.
//!
//! ```
//! use axum::{Router, routing::get};
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! let app: Router = Router::new()
//!     .route("/", get(|| async { "the shop" }))
//!     // /api/performance/*, its docs and spec, /ui/*; nothing else:
//!     .merge(perfscope::mount::axum::router(&perfscope))
//!     .route(
//!         "/metrics",
//!         perfscope::mount::axum::metrics(&perfscope, perfscope::mount::MetricsAccess::Token),
//!     );
//! # let _ = app;
//! ```
//!
//! Merge the router (`Router::merge`): its routes carry their full paths,
//! and the pages link to `/ui/...`. A host route under a prefix is more
//! specific and stays the host's; the same path routed twice makes axum
//! panic when the routers are merged, at start-up. For the login's per-address rate limit, serve the app with
//! `into_make_service_with_connect_info::<SocketAddr>()`; without it every
//! login attempt counts against one shared address.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::routing::MethodRouter;
use futures_util::TryStreamExt;
use futures_util::future::BoxFuture;
use poem::endpoint::BoxEndpoint;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Addr, Endpoint, EndpointExt, RequestParts, Route};

use super::{MetricsAccess, Mount};
use crate::Perfscope;

/// perfscope's API under [`super::API_PREFIX`] and pages under
/// [`super::UI_PREFIX`], to merge into the host's router; see
/// [`Mount::axum_router`] for health paths.
pub fn router<S: Clone + Send + Sync + 'static>(perfscope: &Perfscope) -> axum::Router<S> {
    Mount::new(perfscope).axum_router()
}

/// The exposition guarded as `access` says, for the host to route where it
/// wants (`.route("/metrics", metrics(&p, MetricsAccess::Open))`). The
/// separately bound listener is [`super::metrics::serve`], the same for
/// every framework.
pub fn metrics<S: Clone + Send + Sync + 'static>(
    perfscope: &Perfscope,
    access: MetricsAccess,
) -> MethodRouter<S> {
    axum::routing::get_service(PoemService::new(super::metrics::endpoint(
        perfscope, access,
    )))
}

impl Mount {
    /// The axum router of [`Mount::onto`]'s routes: each claim at its path
    /// and, for the prefixes, every path below.
    pub fn axum_router<S: Clone + Send + Sync + 'static>(self) -> axum::Router<S> {
        let claims = self.claims();
        let health = self.health.clone();
        let service = PoemService::new(self.onto(Route::new()));
        let mut router = axum::Router::new();
        for claim in claims {
            let is_health = health
                .as_ref()
                .is_some_and(|(live, ready)| claim == *live || claim == *ready);
            router = router.route_service(&claim, service.clone());
            if !is_health {
                router = router.route_service(&format!("{claim}/{{*rest}}"), service.clone());
            }
        }
        router
    }
}

/// A Poem endpoint as a tower service over axum's bodies.
#[derive(Clone)]
pub struct PoemService {
    endpoint: Arc<BoxEndpoint<'static>>,
}

impl PoemService {
    /// Wraps `endpoint`.
    pub fn new(endpoint: impl Endpoint + 'static) -> Self {
        Self {
            endpoint: Arc::new(endpoint.map_to_response().boxed()),
        }
    }
}

impl tower::Service<http::Request<Body>> for PoemService {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let response = endpoint
                .call(to_poem(request))
                .await
                .unwrap_or_else(|error| error.into_response());
            Ok(from_poem(response))
        })
    }
}

/// axum's request as Poem's: the body as a stream, the peer's address when
/// the server recorded it (`ConnectInfo`), the scheme when the URI has one.
fn to_poem(request: http::Request<Body>) -> poem::Request {
    let (parts, body) = request.into_parts();
    let remote = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| RemoteAddr(Addr::SocketAddr(*address)))
        .unwrap_or_default();
    let scheme = parts.uri.scheme().cloned().unwrap_or(Scheme::HTTP);
    let parts = RequestParts::from((parts, LocalAddr::default(), remote, scheme));
    let body =
        poem::Body::from_bytes_stream(body.into_data_stream().map_err(std::io::Error::other));
    poem::Request::from_parts(parts, body)
}

/// Poem's response as axum's, the body passed through as it streams.
fn from_poem(response: poem::Response) -> http::Response<Body> {
    let (parts, body) = response.into_parts();
    let mut response = http::Response::new(Body::from_stream(body.into_bytes_stream()));
    *response.status_mut() = parts.status;
    *response.version_mut() = parts.version;
    *response.headers_mut() = parts.headers;
    *response.extensions_mut() = parts.extensions;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_bridge_keeps_the_peer_the_body_and_the_answer() {
        let peer = SocketAddr::from(([192, 0, 2, 7], 4242));
        let mut request = http::Request::post("/echo?x=1")
            .header("x-test", "kept")
            .body(Body::from("the body"))
            .expect("request");
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut service = PoemService::new(poem::endpoint::make(
            |mut request: poem::Request| async move {
                let body = request.take_body().into_string().await?;
                let seen = format!(
                    "{} {} {} {body}",
                    request.remote_addr(),
                    request.uri(),
                    request.headers()["x-test"].to_str().unwrap_or_default(),
                );
                Ok::<_, poem::Error>(
                    poem::Response::builder()
                        .status(poem::http::StatusCode::ACCEPTED)
                        .header("x-answer", "yes")
                        .body(seen),
                )
            },
        ));
        let response = tower::Service::call(&mut service, request)
            .await
            .expect("infallible");
        assert_eq!(response.status(), http::StatusCode::ACCEPTED);
        assert_eq!(response.headers()["x-answer"], "yes");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .expect("body");
        assert_eq!(
            String::from_utf8_lossy(&body),
            "socket://192.0.2.7:4242 /echo?x=1 kept the body"
        );
    }
}
