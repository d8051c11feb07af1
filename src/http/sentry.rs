//! A poem middleware that runs each request through sentry-tower's
//! `SentryHttpLayer`, which serves `http::Request`s, not poem's.
//!
//! The bridge hands the layer an `http::Request<()>` with the request's
//! method, URI and headers (what the layer reads: `sentry-trace` and
//! `baggage` continue an incoming trace) and carries the original
//! `poem::Request` — with its remote address and everything poem keeps —
//! in the request's extensions to the inner service, which calls the poem
//! endpoint. After routing it names the transaction `METHOD /route/:template`
//! (`METHOD unmatched` when nothing matched; never the raw path), keeps
//! only the method as request data (no URL, query or headers), and
//! captures 5xx answers as events tagged with the route. Each request gets
//! its own hub, so spans opened by the timed pool and by measurements
//! inside the handler become the transaction's children.
//!
//! With Sentry off (no `SENTRY_DSN`) the request passes straight through.

use std::convert::Infallible;
use std::sync::Arc;

use parking_lot::Mutex;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use sentry::{Hub, SentryFutureExt};
use sentry_tower::SentryHttpLayer;
use tower::{Layer, ServiceExt};

use super::request_metrics::route_of_result;
use crate::telemetry::sentry::enabled;

/// The middleware; see [`crate::Perfscope::sentry_middleware`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SentryBridge;

impl<E: Endpoint + 'static> Middleware<E> for SentryBridge {
    type Output = SentryBridgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SentryBridgeEndpoint {
            inner: Arc::new(inner),
        }
    }
}

/// The endpoint [`SentryBridge`] makes.
pub struct SentryBridgeEndpoint<E> {
    inner: Arc<E>,
}

/// The poem request, riding through the tower layer.
#[derive(Clone)]
struct Carried(Arc<Mutex<Option<Request>>>);

/// The poem response, riding back as the body.
struct Answer(Response);

impl<E: Endpoint + 'static> Endpoint for SentryBridgeEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if !enabled() {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        }
        let mut probe = http::Request::new(());
        *probe.method_mut() = req.method().clone();
        *probe.uri_mut() = req.uri().clone();
        *probe.headers_mut() = req.headers().clone();
        let method = req.method().to_string();
        probe
            .extensions_mut()
            .insert(Carried(Arc::new(Mutex::new(Some(req)))));
        let inner = self.inner.clone();
        let service = tower::service_fn(move |probe: http::Request<()>| {
            let inner = inner.clone();
            let method = method.clone();
            async move {
                let carried = probe.extensions().get::<Carried>().cloned();
                let Some(req) = carried.and_then(|c| c.0.lock().take()) else {
                    unreachable!("the bridge always carries its request");
                };
                let result = inner.call(req).await.map(IntoResponse::into_response);
                let route = route_of_result(&result);
                let response = match result {
                    Ok(response) => response,
                    Err(error) => error.into_response(),
                };
                let name = format!("{method} {}", route.as_str());
                sentry::configure_scope(|scope| {
                    scope.set_tag("route", route.as_str());
                    if let Some(transaction) = scope.get_span() {
                        transaction.set_name(&name);
                        transaction.set_request(sentry::protocol::Request {
                            method: Some(method.clone()),
                            ..Default::default()
                        });
                        transaction.set_data("http.route", route.as_str().into());
                    }
                });
                let status = response.status();
                if status.is_server_error() {
                    sentry::with_scope(
                        |scope| {
                            scope.set_tag("http.status_code", status.as_u16());
                            scope.set_tag("http.method", method.as_str());
                        },
                        || {
                            sentry::capture_message(
                                &format!("{name} answered {}", status.as_u16()),
                                sentry::Level::Error,
                            )
                        },
                    );
                }
                let mut answer = http::Response::new(Answer(response));
                *answer.status_mut() = status;
                Ok::<_, Infallible>(answer)
            }
        });
        let layered = SentryHttpLayer::new().enable_transaction().layer(service);
        let hub = Arc::new(Hub::new_from_top(Hub::main()));
        let answer = layered.oneshot(probe).bind_hub(hub).await;
        match answer {
            Ok(answer) => Ok(answer.into_body().0),
            Err(never) => match never {},
        }
    }
}
