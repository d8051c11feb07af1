//! The stock equivalent of perfscope's Sentry, for `bench_server
//! stock-sentry`: what a Poem user wires up without perfscope —
//! `sentry::init` with the `sentry` crate's default (reqwest) transport and
//! sentry-tower's `NewSentryLayer` + `SentryHttpLayer` with transactions
//! around the app, at sample rate 1.0. Poem serves `poem::Request`s, so
//! the layers see an `http::Request` made by moving the request's method,
//! URI and headers into it (no copies, as a tower-compat bridge does), and
//! the inner service puts the Poem request back together.

use std::convert::Infallible;
use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Middleware, Request, RequestParts, Response, Result};
use sentry_tower::{NewSentryLayer, SentryHttpLayer};
use tower::{Layer, ServiceExt};

/// Sentry with its stock transport, sending to the receiver at `port`.
pub fn init(port: &str) -> sentry::ClientInitGuard {
    sentry::init((
        format!("http://public@127.0.0.1:{port}/1"),
        sentry::ClientOptions::default().traces_sample_rate(1.0),
    ))
}

/// The sentry-tower layers as a Poem middleware.
pub struct StockSentry;

impl<E: Endpoint + 'static> Middleware<E> for StockSentry {
    type Output = StockSentryEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        StockSentryEndpoint(Arc::new(inner))
    }
}

/// The endpoint [`StockSentry`] makes.
pub struct StockSentryEndpoint<E>(Arc<E>);

/// The Poem request's remaining parts and body, as the `http` body.
struct Carried(RequestParts, poem::Body);

/// The Poem response, as the `http` body.
struct Answer(Response);

impl<E: Endpoint + 'static> Endpoint for StockSentryEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let (mut parts, body) = req.into_parts();
        let mut http = http::Request::new(());
        *http.method_mut() = parts.method.clone();
        *http.uri_mut() = std::mem::take(&mut parts.uri);
        *http.headers_mut() = std::mem::take(&mut parts.headers);
        let http = http.map(|()| Carried(parts, body));
        let inner = self.0.clone();
        let service = tower::service_fn(move |http: http::Request<Carried>| {
            let inner = inner.clone();
            async move {
                let (head, Carried(mut parts, body)) = http.into_parts();
                parts.uri = head.uri;
                parts.headers = head.headers;
                let response = inner
                    .call(Request::from_parts(parts, body))
                    .await
                    .map(IntoResponse::into_response)
                    .unwrap_or_else(|error| error.into_response());
                let mut answer = http::Response::new(());
                *answer.status_mut() = response.status();
                Ok::<_, Infallible>(answer.map(|()| Answer(response)))
            }
        });
        let layered = NewSentryLayer::<http::Request<Carried>>::new_from_top()
            .layer(SentryHttpLayer::new().enable_transaction().layer(service));
        match layered.oneshot(http).await {
            Ok(answer) => Ok(answer.into_body().0),
            Err(never) => match never {},
        }
    }
}
