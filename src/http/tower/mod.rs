//! [`PerfscopeLayer`]: the request measurement as a `tower::Layer`, for
//! axum, tonic and any server built on tower. It records what the Poem
//! middleware records, through the same core ([`super::RequestCore`]):
//! `http_request_duration_seconds{method, route, status_code}` with the
//! trace id as exemplar, `http_requests_in_flight`, the request's
//! database work attributed to its route (per-route database time, N+1
//! suspects, the route of its slow queries) and, with OTLP on, the
//! request's server span around the handler.
//!
//! Where the route template comes from is the one thing a framework
//! decides ([`Routes`]):
//! - **axum**: `MatchedPath`, which the router sets before it calls a
//!   route, so the layer goes *inside* the router:
//!   `Router::new().route(..).layer(perfscope.axum_layer())` (also on a
//!   nested router, whose templates include the prefix). A service
//!   mounted with `nest_service` gets no `MatchedPath` from axum and is
//!   `unmatched` (a `Router` nested that way can take the layer itself).
//!   Wrapped around the router from outside the layer sees no route,
//!   records every request as `unmatched`, and says so once in the log.
//! - **tonic**: the gRPC method, `/package.Service/Method`
//!   (`Server::builder().layer(perfscope.grpc_layer())`); a call answered
//!   UNIMPLEMENTED is `unmatched`. Its status is the `grpc-status` of the
//!   headers or the trailers, carried in `status_code` as the HTTP status
//!   it maps to (see `grpc.rs`), and a call ends when its response body
//!   ends, so a streaming call lasts its stream (a body dropped early is
//!   CANCELLED).
//! - **anything else**: a function from the request's head to its
//!   template ([`crate::Perfscope::tower_layer`]).
//!
//! Queries run while the handler's future is polled are the request's;
//! queries a streaming body runs after the handler returned are not
//! attributed to it.
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use axum::{Router, routing::get};
//! use tower::ServiceExt;
//!
//! let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
//! let app: Router = Router::new()
//!     .route("/users/{id}", get(|| async { "ok" }))
//!     .layer(perfscope.axum_layer());
//! let request = http::Request::get("/users/42").body(axum::body::Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert!(perfscope.encode_metrics().unwrap().contains(
//!     r#"http_request_duration_seconds_count{method="GET",route="/users/{id}",status_code="200"} 1"#
//! ));
//! # });
//! ```

mod body;
mod grpc;
mod route;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

pub use body::MeasuredBody;
pub use route::{RouteFn, Routes};

use super::core::{RequestCore, Started};
use crate::db::context::{self, RequestDb, Scoped};
use crate::metrics::http::RouteLabel;
use route::UnroutedWarning;

/// The layer; see the module docs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct PerfscopeLayer {
    shared: Arc<Shared>,
}

/// What every request of one layer shares.
#[derive(Debug)]
struct Shared {
    core: RequestCore,
    routes: Routes,
    unrouted: UnroutedWarning,
    #[cfg(feature = "otlp")]
    otlp: Arc<crate::telemetry::otlp::OtlpSlot>,
}

impl PerfscopeLayer {
    /// A layer recording through `core`, naming routes by `routes`, with
    /// no server spans. [`crate::Perfscope::axum_layer`], `grpc_layer`
    /// and `tower_layer` build it with the instance's core and tracer.
    pub fn new(core: RequestCore, routes: Routes) -> Self {
        Self::build(core, routes, Arc::default())
    }

    /// A layer that also opens a server span per request with the tracer
    /// `slot` holds while OTLP runs.
    #[cfg(feature = "otlp")]
    pub(crate) fn traced(
        core: RequestCore,
        routes: Routes,
        slot: Arc<crate::telemetry::otlp::OtlpSlot>,
    ) -> Self {
        Self::build(core, routes, slot)
    }

    fn build(
        core: RequestCore,
        routes: Routes,
        #[allow(unused_variables)] slot: Arc<Slot>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                core,
                routes,
                unrouted: UnroutedWarning::default(),
                #[cfg(feature = "otlp")]
                otlp: slot,
            }),
        }
    }
}

/// The tracer's slot, or nothing to hold without OTLP.
#[cfg(feature = "otlp")]
type Slot = crate::telemetry::otlp::OtlpSlot;
#[cfg(not(feature = "otlp"))]
type Slot = ();

impl<S> tower::Layer<S> for PerfscopeLayer {
    type Service = PerfscopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PerfscopeService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service [`PerfscopeLayer`] wraps around another.
#[derive(Clone, Debug)]
pub struct PerfscopeService<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for PerfscopeService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = http::Response<MeasuredBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let (parts, body) = request.into_parts();
        let template = shared.routes.template(&parts);
        if !shared.routes.is_grpc() {
            shared.unrouted.observe(template.is_some());
        }
        let started = shared.core.begin(&parts.method);
        #[cfg(feature = "otlp")]
        let span = shared.otlp.tracer().map(|tracer| {
            let https = parts.uri.scheme_str() == Some("https");
            super::otel::ServerSpan::start(
                tracer,
                &parts.method,
                &parts.headers,
                https,
                parts.version,
            )
        });
        let request = http::Request::from_parts(parts, body);
        #[cfg(feature = "otlp")]
        let call = match &span {
            Some(span) => {
                use opentelemetry::context::FutureExt;
                Call::Traced {
                    future: self
                        .inner
                        .call(request)
                        .with_context(span.context().clone()),
                }
            }
            None => Call::Plain {
                future: self.inner.call(request),
            },
        };
        #[cfg(not(feature = "otlp"))]
        let call = Call::Plain {
            future: self.inner.call(request),
        };
        ResponseFuture {
            call: context::scope(call),
            pending: Some(Pending {
                shared: shared.clone(),
                started,
                template,
                db: None,
                #[cfg(feature = "otlp")]
                span,
            }),
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, inside the request's server span when
    /// it is traced.
    #[project = CallProj]
    pub(crate) enum Call<F> {
        Plain { #[pin] future: F },
        Traced { #[pin] future: Traced<F> },
    }
}

/// A future inside a span's context (never built without OTLP).
#[cfg(feature = "otlp")]
type Traced<F> = opentelemetry::context::WithContext<F>;
#[cfg(not(feature = "otlp"))]
type Traced<F> = F;

impl<F: Future> Future for Call<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            CallProj::Plain { future } => future.poll(cx),
            CallProj::Traced { future } => future.poll(cx),
        }
    }
}

/// A request between its start and its end: what finishing it needs.
#[derive(Debug)]
pub(crate) struct Pending {
    shared: Arc<Shared>,
    started: Started,
    template: Option<Arc<str>>,
    db: Option<Box<RequestDb>>,
    #[cfg(feature = "otlp")]
    span: Option<super::otel::ServerSpan>,
}

impl Pending {
    /// Records the request: `status` is the HTTP status, `grpc` the gRPC
    /// code of a gRPC call.
    fn finish(self, status: u16, grpc: Option<u16>) {
        let route = match self.template {
            Some(_) if grpc == Some(grpc::UNIMPLEMENTED) => RouteLabel::Unmatched,
            Some(template) => RouteLabel::Template(template),
            None => RouteLabel::Unmatched,
        };
        let label_status = grpc.map_or(status, grpc::http_status);
        #[cfg(feature = "otlp")]
        let trace_id = self.span.as_ref().and_then(|span| span.trace_id());
        #[cfg(not(feature = "otlp"))]
        let trace_id = None;
        #[cfg(feature = "otlp")]
        if let Some(span) = self.span {
            span.finish(&route, status, grpc);
        }
        self.shared.core.finish(
            self.started,
            route,
            label_status,
            self.db.as_deref(),
            || trace_id,
        );
    }
}

pin_project_lite::pin_project! {
    /// The future of a [`PerfscopeService`] call.
    pub struct ResponseFuture<F> {
        #[pin]
        call: Scoped<Call<F>>,
        pending: Option<Pending>,
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    ResBody: http_body::Body,
{
    type Output = Result<http::Response<MeasuredBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (result, db) = ready!(this.call.poll(cx));
        let Some(mut pending) = this.pending.take() else {
            // Polled after it completed: the service contract is broken
            // upstream; answer as the inner future would.
            return Poll::Ready(result.map(|r| r.map(MeasuredBody::plain)));
        };
        pending.db = db;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                pending.finish(500, None);
                return Poll::Ready(Err(error));
            }
        };
        let status = response.status().as_u16();
        // A Poem endpoint bridged into the router (perfscope's own API and
        // pages, `crate::mount::axum`) names its route more precisely than
        // the router's wildcard did.
        if let Some(pattern) = response.extensions().get::<poem::PathPattern>() {
            pending.template = Some(pattern.0.clone());
        }
        if !pending.shared.routes.is_grpc() {
            pending.finish(status, None);
            return Poll::Ready(Ok(response.map(MeasuredBody::plain)));
        }
        // gRPC: a trailers-only answer carries its status in the headers;
        // otherwise the call ends with its body.
        if let Some(code) = grpc::status_in(response.headers()) {
            pending.finish(status, Some(code));
            return Poll::Ready(Ok(response.map(MeasuredBody::plain)));
        }
        Poll::Ready(Ok(
            response.map(|body| MeasuredBody::until_trailers(body, pending))
        ))
    }
}
