//! [`PerfscopeLayer`]: the request measurement as a `tower::Layer`, for
//! axum, tonic and any server built on tower. It records what the Poem
//! middleware records, through the same core ([`super::RequestCore`]):
//! `http_request_duration_seconds{method, route, status_code}` with the
//! trace id as exemplar, `http_requests_in_flight`, the request's
//! database work attributed to its route (per-route database time, N+1
//! suspects, the route of its slow queries) and, when they run, the
//! request's OTLP server span and Sentry transaction around the handler
//! (sampled as the Poem middleware samples: the caller's decision, else
//! `SENTRY_TRACES_SAMPLE_RATE`), named by the route template, with the
//! pool's and the measurements' spans as children and a 5xx answer as a
//! Sentry event.
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
//!   (`Server::builder().layer(perfscope.grpc_layer())`); a call no
//!   service answered (UNIMPLEMENTED, or refused before one could:
//!   UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED) is
//!   `unmatched`, and so is any method past the 256 first seen (a path is
//!   the client's until a service answers it); a non-gRPC answer (no
//!   `grpc-status`, HTTP status not 200) is `unmatched` with its HTTP
//!   status. Its status is the `grpc-status` of the
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

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

pub use body::MeasuredBody;
pub use route::{RequestHead, RouteFn, Routes};

use super::core::{RequestCore, Started};
use crate::db::context::{self, RequestDb, Scoped};
use crate::metrics::http::RouteLabel;
use route::UnroutedWarning;

/// The layer; see the module docs. Cheap to clone. `K` says when a
/// request ends: [`Http`] when its response head is ready (the body is
/// passed through untouched), [`Grpc`] when its body ends.
pub struct PerfscopeLayer<K: Kind = Http> {
    shared: Arc<Shared>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Kind> Clone for PerfscopeLayer<K> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Kind> fmt::Debug for PerfscopeLayer<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfscopeLayer")
            .field("routes", &self.shared.routes)
            .finish_non_exhaustive()
    }
}

/// When a request ends, and what its response body becomes.
pub trait Kind: sealed::Sealed + Send + Sync + 'static {
    /// The response body the layer hands on.
    type Body<B>;
    /// Finishes `pending` when the response head says the request is
    /// over, or ties it to the body.
    #[doc(hidden)]
    fn respond<B>(response: http::Response<B>, pending: Pending) -> http::Response<Self::Body<B>>;
    /// The response as handed on, with nothing to finish.
    #[doc(hidden)]
    fn pass<B>(response: http::Response<B>) -> http::Response<Self::Body<B>>;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Http {}
    impl Sealed for super::Grpc {}
}

/// HTTP: a request ends when its response head is ready, as in the Poem
/// middleware; the body is the inner service's, unwrapped (axum does not
/// box it a second time).
#[derive(Debug)]
pub enum Http {}

/// gRPC: a call ends when its response body ends, with the `grpc-status`
/// of its trailers (or of a trailers-only head).
#[derive(Debug)]
pub enum Grpc {}

impl Kind for Http {
    type Body<B> = B;

    fn respond<B>(response: http::Response<B>, pending: Pending) -> http::Response<B> {
        pending.finish(response.status().as_u16(), None);
        response
    }

    fn pass<B>(response: http::Response<B>) -> http::Response<B> {
        response
    }
}

impl Kind for Grpc {
    type Body<B> = MeasuredBody<B>;

    fn respond<B>(
        response: http::Response<B>,
        pending: Pending,
    ) -> http::Response<MeasuredBody<B>> {
        let status = response.status().as_u16();
        if let Some(code) = grpc::status_in(response.headers()) {
            pending.finish(status, Some(code));
            return response.map(MeasuredBody::plain);
        }
        // Not a gRPC answer (a 404 or 415 from something in front of the
        // services): an HTTP status, recorded now, as `unmatched`.
        if status != 200 {
            let mut pending = pending;
            pending.template = None;
            pending.finish(status, None);
            return response.map(MeasuredBody::plain);
        }
        response.map(|body| MeasuredBody::until_trailers(body, pending))
    }

    fn pass<B>(response: http::Response<B>) -> http::Response<MeasuredBody<B>> {
        response.map(MeasuredBody::plain)
    }
}

/// What every request of one layer shares.
#[derive(Debug)]
struct Shared {
    core: RequestCore,
    routes: Routes,
    unrouted: UnroutedWarning,
    /// The gRPC methods seen answered, interned and capped.
    methods: route::KnownMethods,
    #[cfg_attr(not(any(feature = "otlp", feature = "sentry")), allow(dead_code))]
    exporters: Exporters,
}

/// The request front doors of the exporters a build has: the OTLP
/// tracer's slot and the Sentry sampler (`None`: no transactions).
#[derive(Debug, Default)]
pub(crate) struct Exporters {
    #[cfg(feature = "otlp")]
    pub(crate) otlp: Arc<crate::telemetry::otlp::OtlpSlot>,
    #[cfg(feature = "sentry")]
    pub(crate) sentry: Option<super::sentry::Sampler>,
}

impl<K: Kind> PerfscopeLayer<K> {
    /// A layer recording through `core`, naming routes by `routes`, with
    /// no spans or transactions. [`crate::Perfscope::axum_layer`],
    /// `grpc_layer` and `tower_layer` build it with the instance's core,
    /// tracer and Sentry sample rate. A gRPC layer is
    /// `PerfscopeLayer::<Grpc>::new(core, Routes::Grpc)`: the kind says
    /// when a call ends, the routes what it is called.
    pub fn new(core: RequestCore, routes: Routes) -> Self {
        Self::with_exporters(core, routes, Exporters::default())
    }

    /// A layer that also opens a server span (OTLP) and a transaction
    /// (Sentry) per request, through `exporters`, when they run.
    pub(crate) fn with_exporters(core: RequestCore, routes: Routes, exporters: Exporters) -> Self {
        Self {
            shared: Arc::new(Shared {
                core,
                routes,
                unrouted: UnroutedWarning::default(),
                methods: route::KnownMethods::default(),
                exporters,
            }),
            kind: PhantomData,
        }
    }
}

impl<S, K: Kind> tower::Layer<S> for PerfscopeLayer<K> {
    type Service = PerfscopeService<S, K>;

    fn layer(&self, inner: S) -> Self::Service {
        PerfscopeService {
            inner,
            shared: self.shared.clone(),
            kind: PhantomData,
        }
    }
}

/// The service [`PerfscopeLayer`] wraps around another.
pub struct PerfscopeService<S, K: Kind = Http> {
    inner: S,
    shared: Arc<Shared>,
    kind: PhantomData<fn() -> K>,
}

impl<S: Clone, K: Kind> Clone for PerfscopeService<S, K> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            kind: PhantomData,
        }
    }
}

impl<S: fmt::Debug, K: Kind> fmt::Debug for PerfscopeService<S, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PerfscopeService")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, K, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for PerfscopeService<S, K>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    K: Kind,
{
    type Response = http::Response<K::Body<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, K>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let shared = &self.shared;
        let head = RequestHead::of(&request);
        let template = shared.routes.template(&head);
        if shared.routes.reads_matched_path() {
            shared.unrouted.observe(template.is_some());
        }
        let started = shared.core.begin(head.method);
        #[cfg(feature = "otlp")]
        let span = shared.exporters.otlp.tracer().map(|tracer| {
            let https = head.uri.scheme_str() == Some("https");
            super::otel::ServerSpan::start(
                tracer,
                shared.exporters.otlp.runs_hosted(),
                head.method,
                head.headers,
                https,
                request.version(),
            )
        });
        #[cfg(feature = "sentry")]
        let transaction = shared
            .exporters
            .sentry
            .as_ref()
            .filter(|sampler| crate::telemetry::sentry::enabled() && sampler.sample(head.headers))
            .map(|_| {
                #[cfg(feature = "otlp")]
                let otel = span.as_ref().and_then(|span| span.hex_ids());
                #[cfg(not(feature = "otlp"))]
                let otel = None;
                super::sentry::ServerTransaction::start(
                    head.method,
                    template.as_deref(),
                    head.headers,
                    otel,
                )
            });
        #[cfg(feature = "sentry")]
        let hub = transaction.as_ref().map(|t| t.hub().clone());
        #[cfg(feature = "sentry")]
        let request_method = head.method.clone();
        #[cfg(not(feature = "sentry"))]
        let hub = None;
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
            call: context::scope_routed(OnHub { hub, future: call }, template.clone()),
            pending: Some(Pending {
                shared: shared.clone(),
                started,
                template,
                db: None,
                #[cfg(feature = "otlp")]
                span,
                #[cfg(feature = "sentry")]
                transaction,
                #[cfg(feature = "sentry")]
                method: request_method,
            }),
            kind: PhantomData,
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

pin_project_lite::pin_project! {
    /// A future run on the request's Sentry hub when it has a transaction,
    /// so the spans opened inside are the transaction's children.
    pub(crate) struct OnHub<F> {
        hub: Option<HubRef>,
        #[pin]
        future: F,
    }
}

/// A Sentry hub (nothing without Sentry).
#[cfg(feature = "sentry")]
type HubRef = Arc<sentry::Hub>;
#[cfg(not(feature = "sentry"))]
type HubRef = std::convert::Infallible;

impl<F: Future> Future for OnHub<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        match this.hub {
            #[cfg(feature = "sentry")]
            Some(hub) => sentry::Hub::run(hub.clone(), || this.future.poll(cx)),
            _ => this.future.poll(cx),
        }
    }
}

/// A request between its start and its end: what finishing it needs.
#[doc(hidden)]
pub struct Pending {
    shared: Arc<Shared>,
    started: Started,
    template: Option<Arc<str>>,
    db: Option<Box<RequestDb>>,
    #[cfg(feature = "otlp")]
    span: Option<super::otel::ServerSpan>,
    #[cfg(feature = "sentry")]
    transaction: Option<super::sentry::ServerTransaction>,
    /// For an unsampled request's 5xx event.
    #[cfg(feature = "sentry")]
    method: http::Method,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Records the request: `status` is the HTTP status, `grpc` the gRPC
    /// code of a gRPC call.
    fn finish(self, status: u16, grpc: Option<u16>) {
        let route = match self.template {
            // The method is a client's path until a service answered it:
            // no such method, or refused before a service saw it (an
            // interceptor, a limit), is `unmatched`; and past a cap of
            // distinct methods everything is.
            Some(_) if grpc.is_some_and(grpc::not_a_served_method) => RouteLabel::Unmatched,
            Some(template) if grpc.is_some() => self
                .shared
                .methods
                .admit(template)
                .map_or(RouteLabel::Unmatched, RouteLabel::Template),
            Some(template) => RouteLabel::Template(template),
            None => RouteLabel::Unmatched,
        };
        let label_status = grpc.map_or(status, grpc::http_status);
        #[cfg(feature = "otlp")]
        let trace_id = self.span.as_ref().and_then(|span| span.trace_id());
        #[cfg(not(feature = "otlp"))]
        let trace_id = None;
        #[cfg(feature = "sentry")]
        let trace_id = trace_id.or_else(|| self.transaction.as_ref().and_then(|t| t.trace_id()));
        #[cfg(feature = "otlp")]
        if let Some(span) = self.span {
            span.finish(&route, status, grpc);
        }
        #[cfg(feature = "sentry")]
        match self.transaction {
            Some(transaction) => transaction.finish(route.as_str(), label_status),
            // Unsampled: a 5xx is still an event, as in the Poem bridge.
            None if (500..600).contains(&label_status) && crate::telemetry::sentry::enabled() => {
                if let Ok(code) = poem::http::StatusCode::from_u16(label_status) {
                    let hub = sentry::Hub::new_from_top(sentry::Hub::main());
                    super::sentry::report_server_error(
                        &hub,
                        self.method.as_str(),
                        route.as_str(),
                        code,
                    );
                }
            }
            None => {}
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
    pub struct ResponseFuture<F, K> {
        #[pin]
        call: Scoped<OnHub<Call<F>>>,
        pending: Option<Pending>,
        kind: PhantomData<fn() -> K>,
    }
}

impl<F, K, ResBody, E> Future for ResponseFuture<F, K>
where
    F: Future<Output = Result<http::Response<ResBody>, E>>,
    K: Kind,
{
    type Output = Result<http::Response<K::Body<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (result, db) = ready!(this.call.poll(cx));
        let Some(mut pending) = this.pending.take() else {
            // Polled after it completed: the service contract is broken
            // upstream; answer as the inner future would.
            return Poll::Ready(result.map(K::pass));
        };
        pending.db = db;
        let response = match result {
            Ok(response) => response,
            Err(error) => {
                pending.finish(500, None);
                return Poll::Ready(Err(error));
            }
        };
        // A Poem endpoint bridged into the router (perfscope's own API and
        // pages, `crate::mount::axum`) names its route more precisely than
        // the router's wildcard did.
        if let Some(pattern) = response.extensions().get::<poem::PathPattern>() {
            pending.template = Some(pattern.0.clone());
        }
        Poll::Ready(Ok(K::respond(response, pending)))
    }
}
