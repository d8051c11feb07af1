//! A poem middleware that runs each sampled request through sentry-tower's
//! `SentryHttpLayer`, which serves `http::Request`s, not poem's.
//!
//! It samples first (`Sampler`): an unsampled request goes straight to
//! the endpoint and costs no Sentry work unless it answers 5xx.
//!
//! The bridge hands the layer an `http::Request<()>` with the request's
//! method, path and the `sentry-trace` and `baggage` headers (which
//! continue an incoming trace) and carries the original
//! `poem::Request` — with its remote address and everything poem keeps —
//! in the request's extensions to the inner service, which calls the poem
//! endpoint. After routing it names the transaction `METHOD /route/:template`
//! (`METHOD unmatched` when nothing matched; never the raw path), keeps
//! only the method as request data (no URL, query or headers), and
//! captures 5xx answers as events tagged with the route. Each sampled
//! request gets its own hub, so spans opened by the timed pool and by
//! measurements inside the handler become the transaction's children.
//!
//! With Sentry off (no `SENTRY_DSN`) the request passes straight through.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use sentry::{Hub, SentryFutureExt};
use sentry_tower::SentryHttpLayer;
use tower::{Layer, ServiceExt};

use super::request_metrics::route_of_result;
use crate::telemetry::sentry::enabled;

/// The middleware; see [`crate::Perfscope::sentry_middleware`].
#[derive(Clone, Debug)]
pub struct SentryBridge {
    sampler: Arc<Sampler>,
}

impl SentryBridge {
    /// A bridge sending `rate` of the requests as transactions.
    pub fn new(rate: f64) -> Self {
        Self {
            sampler: Arc::new(Sampler::new(rate)),
        }
    }
}

impl<E: Endpoint + 'static> Middleware<E> for SentryBridge {
    type Output = SentryBridgeEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        SentryBridgeEndpoint {
            inner: Arc::new(inner),
            sampler: self.sampler.clone(),
        }
    }
}

/// The endpoint [`SentryBridge`] makes.
pub struct SentryBridgeEndpoint<E> {
    inner: Arc<E>,
    sampler: Arc<Sampler>,
}

/// Decides, before any Sentry work, whether a request becomes a
/// transaction: a caller's decision is kept (its `sentry-trace` flag, else
/// its W3C `traceparent` sampled flag); otherwise
/// exactly `rate` of the requests are taken (every 1/rate-th, by count).
/// Unsampled requests skip the layer, the hub and the transaction — which
/// cost several µs each even when the SDK drops them — and keep only the
/// 5xx capture. (The client itself samples at 1.0, so the decision is made
/// once.)
#[derive(Debug)]
pub(crate) struct Sampler {
    rate: f64,
    seen: AtomicU64,
}

impl Sampler {
    /// A sampler taking `rate` of the requests without a caller's
    /// decision.
    pub(crate) fn new(rate: f64) -> Self {
        Self {
            rate: rate.clamp(0.0, 1.0),
            seen: AtomicU64::new(0),
        }
    }

    /// Whether the request with these `headers` becomes a transaction.
    pub(crate) fn sample(&self, headers: &poem::http::HeaderMap) -> bool {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        // `sentry-trace: <trace>-<span>-<0|1>`, else W3C
        // `traceparent: 00-<trace>-<span>-<flags>` (bit 0: sampled).
        let parent = match header("sentry-trace") {
            Some(value) => value.split('-').nth(2),
            None => header("traceparent").and_then(|v| match v.split('-').nth(3) {
                Some(flags) => u8::from_str_radix(flags, 16)
                    .ok()
                    .map(|f| if f & 1 == 1 { "1" } else { "0" }),
                None => None,
            }),
        };
        match parent {
            Some("1") => true,
            Some("0") => false,
            _ => {
                let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
                ((n + 1.0) * self.rate).floor() > (n * self.rate).floor()
            }
        }
    }
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
        if !self.sampler.sample(req.headers()) {
            // Method is a cheap clone; it becomes text only for a 5xx.
            let method = req.method().clone();
            let result = self.inner.call(req).await.map(IntoResponse::into_response);
            if let Some(status) = server_error(&result) {
                let route = route_of_result(&result);
                let hub = Hub::new_from_top(Hub::main());
                report_server_error(&hub, method.as_str(), route.as_str(), status);
            }
            return result;
        }
        // Only what the layer needs: the method, the path (no authority and
        // no Host header, so it builds no URL — which would be dropped as
        // personal data anyway), and the trace-continuation headers.
        let mut probe = http::Request::new(());
        *probe.method_mut() = req.method().clone();
        if let Ok(path) = http::Uri::try_from(req.uri().path()) {
            *probe.uri_mut() = path;
        }
        for name in ["sentry-trace", "baggage"] {
            if let Some(value) = req.headers().get(name) {
                probe.headers_mut().insert(name, value.clone());
            }
        }
        #[cfg(feature = "otlp")]
        continue_otel_trace(&mut probe);
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
                    Hub::with_active(|hub| {
                        report_server_error(hub, &method, route.as_str(), status)
                    });
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

/// Inside an OpenTelemetry server span (see [`crate::http::otel`]) and
/// without a caller's `sentry-trace`, the transaction continues that span:
/// same W3C trace id, the span as its parent — one trace in both tools.
/// No sampled flag is passed: the bridge has already decided.
#[cfg(feature = "otlp")]
fn continue_otel_trace(probe: &mut http::Request<()>) {
    if probe.headers().contains_key("sentry-trace") {
        return;
    }
    if let Some((trace_id, span_id)) = crate::telemetry::otlp::current_span_ids()
        && let Ok(value) = http::HeaderValue::try_from(format!("{trace_id}-{span_id}"))
    {
        probe.headers_mut().insert("sentry-trace", value);
    }
}

/// A request's transaction, framework-neutral: the tower layer starts one
/// for each sampled request and runs the handler on its hub, so the timed
/// pool's and the measurements' spans become its children.
#[cfg(feature = "tower")]
pub(crate) struct ServerTransaction {
    hub: Arc<Hub>,
    transaction: sentry::Transaction,
    method: String,
}

#[cfg(feature = "tower")]
impl ServerTransaction {
    /// Starts the transaction `METHOD route` (the route as known before
    /// the call; `unmatched` otherwise), continuing the caller's
    /// `sentry-trace`, else the OpenTelemetry span `otel` names (trace and
    /// span ids), so both tools see one trace.
    pub(crate) fn start(
        method: &poem::http::Method,
        route: Option<&str>,
        headers: &poem::http::HeaderMap,
        otel: Option<(String, String)>,
    ) -> Self {
        let method = method.as_str().to_owned();
        let name = format!("{method} {}", route.unwrap_or("unmatched"));
        let sentry_trace = headers
            .get("sentry-trace")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| otel.map(|(trace, span)| format!("{trace}-{span}")));
        let baggage = headers.get("baggage").and_then(|v| v.to_str().ok());
        let context = sentry::TransactionContext::continue_from_headers(
            &name,
            "http.server",
            sentry_trace
                .as_deref()
                .map(|value| ("sentry-trace", value))
                .into_iter()
                .chain(baggage.map(|value| ("baggage", value))),
        );
        let hub = Arc::new(Hub::new_from_top(Hub::main()));
        let transaction = hub.start_transaction(context);
        transaction.set_request(sentry::protocol::Request {
            method: Some(method.clone()),
            ..Default::default()
        });
        let span = sentry::TransactionOrSpan::from(transaction.clone());
        hub.configure_scope(|scope| scope.set_span(Some(span)));
        Self {
            hub,
            transaction,
            method,
        }
    }

    /// The hub the handler runs on.
    pub(crate) fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// The transaction's trace id (the latency exemplar).
    pub(crate) fn trace_id(&self) -> Option<[u8; 16]> {
        crate::telemetry::sentry::hex_trace_id(
            &self.transaction.get_trace_context().trace_id.to_string(),
        )
    }

    /// Ends it under the final `route` with the answer's `status`; a 5xx
    /// is also captured as an event tagged with the route.
    pub(crate) fn finish(self, route: &str, status: u16) {
        self.transaction
            .set_name(&format!("{} {route}", self.method));
        self.transaction.set_data("http.route", route.into());
        self.transaction.set_status(span_status(status));
        self.hub
            .configure_scope(|scope| scope.set_tag("route", route));
        if let Ok(code) = poem::http::StatusCode::from_u16(status)
            && code.is_server_error()
        {
            report_server_error(&self.hub, &self.method, route, code);
        }
        self.transaction.finish();
    }
}

/// The span status of an HTTP answer (as sentry-tower maps it).
#[cfg(feature = "tower")]
fn span_status(status: u16) -> sentry::protocol::SpanStatus {
    use sentry::protocol::SpanStatus;
    match status {
        401 => SpanStatus::Unauthenticated,
        403 => SpanStatus::PermissionDenied,
        404 => SpanStatus::NotFound,
        409 => SpanStatus::AlreadyExists,
        429 => SpanStatus::ResourceExhausted,
        400..=499 => SpanStatus::InvalidArgument,
        501 => SpanStatus::Unimplemented,
        503 => SpanStatus::Unavailable,
        500..=599 => SpanStatus::InternalError,
        200..=299 => SpanStatus::Ok,
        _ => SpanStatus::UnknownError,
    }
}

/// The status of a 5xx answer.
fn server_error(result: &Result<Response>) -> Option<poem::http::StatusCode> {
    let status = match result {
        Ok(response) => response.status(),
        Err(error) => error.status(),
    };
    status.is_server_error().then_some(status)
}

/// Captures a 5xx answer as an event on `hub`, tagged with the route.
pub(crate) fn report_server_error(
    hub: &Hub,
    method: &str,
    route: &str,
    status: poem::http::StatusCode,
) {
    hub.with_scope(
        |scope| {
            scope.set_tag("route", route);
            scope.set_tag("http.status_code", status.as_u16());
            scope.set_tag("http.method", method);
            let method = method.to_owned();
            scope.add_event_processor(move |mut event| {
                event.request = Some(sentry::protocol::Request {
                    method: Some(method.clone()),
                    ..Default::default()
                });
                Some(event)
            });
        },
        || {
            hub.capture_message(
                &format!("{method} {route} answered {}", status.as_u16()),
                sentry::Level::Error,
            )
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(trace: Option<&str>) -> Request {
        let builder = Request::builder().uri_str("/users/1");
        match trace {
            Some(value) => builder.header("sentry-trace", value).finish(),
            None => builder.finish(),
        }
    }

    #[test]
    fn exactly_the_rate_is_sampled_and_a_callers_decision_is_kept() {
        let sampler = Sampler {
            rate: 0.25,
            seen: AtomicU64::new(0),
        };
        let taken = (0..100)
            .filter(|_| sampler.sample(request(None).headers()))
            .count();
        assert_eq!(taken, 25);
        let parent = "771a43a4192642f0b136d5159a501700-b7ad6b7169203331";
        assert!(sampler.sample(request(Some(&format!("{parent}-1"))).headers()));
        assert!(!sampler.sample(request(Some(&format!("{parent}-0"))).headers()));
        let w3c = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7";
        let traced = |flags: &str| {
            Request::builder()
                .header("traceparent", format!("{w3c}-{flags}"))
                .finish()
        };
        assert!(sampler.sample(traced("01").headers()));
        assert!(!sampler.sample(traced("00").headers()));
        let none = Sampler {
            rate: 0.0,
            seen: AtomicU64::new(0),
        };
        assert!((0..100).all(|_| !none.sample(request(None).headers())));
    }
}
