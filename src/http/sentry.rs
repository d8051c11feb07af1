//! A poem middleware that makes each sampled request a Sentry transaction
//! (what sentry-tower's `SentryHttpLayer` does for `http::Request`s, done
//! here directly: the first version ran the layer through a probe
//! `http::Request` carrying the poem request, which cost a request, a
//! parsed URI, header copies, a lock and the layer's own request data
//! each time).
//!
//! It samples first (`Sampler`): an unsampled request goes straight to
//! the endpoint and costs no Sentry work unless it answers 5xx.
//!
//! A sampled request's transaction continues the caller's `sentry-trace`
//! and `baggage` (else the OpenTelemetry server span it runs in) and runs
//! the endpoint on a hub of its own. After routing it names the transaction `METHOD /route/:template`
//! (`METHOD unmatched` when nothing matched; never the raw path), keeps
//! only the method as request data (no URL, query or headers), and
//! captures 5xx answers as events tagged with the route. Each sampled
//! request gets its own hub, so spans opened by the timed pool and by
//! measurements inside the handler become the transaction's children.
//!
//! With Sentry off (no `SENTRY_DSN`) the request passes straight through.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};
use sentry::{Hub, SentryFutureExt};

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
        // The transaction directly (no tower layer, probe request or
        // carried request): the route template is known only once the
        // endpoint has answered, so it is named then.
        #[cfg(feature = "otlp")]
        let otel = crate::telemetry::otlp::current_span_ids()
            .map(|(trace, span)| (trace.to_string(), span.to_string()));
        #[cfg(not(feature = "otlp"))]
        let otel = None;
        let transaction = ServerTransaction::start(req.method(), None, req.headers(), otel);
        let hub = transaction.hub().clone();
        let result = self
            .inner
            .call(req)
            .bind_hub(hub)
            .await
            .map(IntoResponse::into_response);
        let route = route_of_result(&result);
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        transaction.finish(route.as_str(), status.as_u16());
        result
    }
}

/// A request's transaction, framework-neutral: the tower layer starts one
/// for each sampled request and runs the handler on its hub, so the timed
/// pool's and the measurements' spans become its children.
pub(crate) struct ServerTransaction {
    hub: Arc<Hub>,
    transaction: sentry::Transaction,
    method: String,
}

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
        let event_method = method.clone();
        hub.configure_scope(|scope| {
            scope.set_span(Some(span));
            // An event inside the request (a panic) keeps its method alone.
            scope.add_event_processor(move |mut event| {
                if event.request.is_none() {
                    event.request = Some(sentry::protocol::Request {
                        method: Some(event_method.clone()),
                        ..Default::default()
                    });
                }
                Some(event)
            });
        });
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
    #[cfg(feature = "tower")]
    pub(crate) fn trace_id(&self) -> Option<[u8; 16]> {
        crate::telemetry::sentry::hex_trace_id(
            &self.transaction.get_trace_context().trace_id.to_string(),
        )
    }

    /// Ends it under the final `route` with the answer's `status`; a 5xx
    /// is also captured as an event tagged with the route. The SDK's
    /// finishing (building the event and its envelope) happens on the
    /// transport's thread ([`crate::telemetry::sentry::transport::finish_later`]).
    pub(crate) fn finish(self, route: &str, status: u16) {
        let ended = std::time::SystemTime::now();
        self.transaction
            .set_name(&format!("{} {route}", self.method));
        self.transaction.set_data("http.route", route.into());
        self.transaction.set_tag("route", route);
        self.transaction.set_status(span_status(status));
        if let Ok(code) = poem::http::StatusCode::from_u16(status)
            && code.is_server_error()
        {
            report_server_error(&self.hub, &self.method, route, code);
        }
        crate::telemetry::sentry::transport::finish_later(self.transaction, ended);
    }
}

/// The span status of an HTTP answer (as sentry-tower maps it).
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
