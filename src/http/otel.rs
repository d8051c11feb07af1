//! [`OtelTracing`]: an OpenTelemetry server span per request, exported over
//! OTLP (see [`crate::telemetry::otlp`]).
//!
//! The span continues the caller's W3C `traceparent` (or, failing that, a
//! Sentry `sentry-trace`, so a trace Sentry started stays one trace), is
//! named `METHOD /route/:template` once routing is known (the method alone
//! when no route matched, as the HTTP semantic conventions say; never the
//! raw path), and carries `http.request.method`, `http.route`,
//! `http.response.status_code`, `url.scheme` and
//! `network.protocol.version`; a 5xx answer sets the error status and
//! `error.type`. No URL, query, header or client address is recorded.
//!
//! The handler runs inside the span's context, with the tracer beside it:
//! the timed pool opens a client span per query and measurements an
//! internal span there, the latency histograms take the trace id as an
//! exemplar, and [`crate::telemetry::trace_headers`] hands the trace on.
//! With the app's own tracer provider
//! ([`crate::Perfscope::use_tracer_provider`]), when the app's middleware
//! (or a `tracing` span bridged by tracing-opentelemetry) already made a
//! span current around the request, no second server span is opened:
//! perfscope's spans continue the app's.
//! Put it outermost: `.with(perfscope.middleware())
//! .with(perfscope.sentry_middleware()).with(perfscope.otel_middleware())`.
//! With OTLP off the request passes straight through.

use std::sync::Arc;

use opentelemetry::context::FutureExt;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracer;
use poem::http::{HeaderMap, Method, Version};
use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result};

use super::request_metrics::route_of_result;
use crate::metrics::http::RouteLabel;
use crate::telemetry::otlp::{ActiveTracer, OtlpSlot, context_from_sentry_trace};

/// The middleware; see [`crate::Perfscope::otel_middleware`].
#[derive(Clone, Debug)]
pub struct OtelTracing {
    slot: Arc<OtlpSlot>,
}

impl OtelTracing {
    /// Traces requests with the tracer `slot` holds while OTLP runs.
    pub fn new(slot: Arc<OtlpSlot>) -> Self {
        Self { slot }
    }
}

impl<E: Endpoint> Middleware<E> for OtelTracing {
    type Output = OtelTracingEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        OtelTracingEndpoint {
            inner,
            slot: self.slot.clone(),
        }
    }
}

/// The endpoint [`OtelTracing`] makes.
#[derive(Debug)]
pub struct OtelTracingEndpoint<E> {
    inner: E,
    slot: Arc<OtlpSlot>,
}

/// The method as a span name without allocating for the standard ones.
fn method_name(method: &Method) -> std::borrow::Cow<'static, str> {
    let name = match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => return std::borrow::Cow::Owned(method.as_str().to_owned()),
    };
    std::borrow::Cow::Borrowed(name)
}

/// Reads propagation headers from poem's header map.
struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The caller's trace: `traceparent`, else `sentry-trace`, else none.
fn parent_context(headers: &HeaderMap) -> Context {
    if headers.contains_key("traceparent") {
        let cx = TraceContextPropagator::new().extract(&Headers(headers));
        if cx.span().span_context().is_valid() {
            return cx;
        }
    }
    headers
        .get("sentry-trace")
        .and_then(|v| v.to_str().ok())
        .and_then(context_from_sentry_trace)
        .unwrap_or_default()
}

impl<E: Endpoint> Endpoint for OtelTracingEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let Some(tracer) = self.slot.tracer() else {
            return self.inner.call(req).await.map(IntoResponse::into_response);
        };
        let https = req.uri().scheme_str() == Some("https");
        let span = ServerSpan::start(
            tracer,
            self.slot.runs_hosted(),
            req.method(),
            req.headers(),
            https,
            req.version(),
        );
        let result = self
            .inner
            .call(req)
            .with_context(span.context().clone())
            .await
            .map(IntoResponse::into_response);
        let status = match &result {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        span.finish(&route_of_result(&result), status.as_u16(), None);
        result
    }
}

/// A request's server span, framework-neutral: the Poem middleware above
/// and the tower layer both start and finish it.
#[derive(Debug)]
pub struct ServerSpan {
    cx: Context,
    method: Method,
    /// Whether perfscope's own span records.
    recording: bool,
    /// The span is the app's, continued: perfscope neither names nor ends it.
    continued: bool,
}

impl ServerSpan {
    /// Starts the span under the caller's trace (see the module docs).
    /// The sampler decides first; attributes and the tracer are added for
    /// recorded spans only, so an unsampled request allocates little.
    pub fn start(
        tracer: SdkTracer,
        hosted: bool,
        method: &Method,
        headers: &HeaderMap,
        https: bool,
        version: Version,
    ) -> Self {
        if hosted && let Some(continued) = Self::continue_current(&tracer, method) {
            return continued;
        }
        let parent = parent_context(headers);
        let mut span = tracer
            .span_builder(method_name(method))
            .with_kind(SpanKind::Server)
            .start_with_context(&tracer, &parent);
        let recording = opentelemetry::trace::Span::is_recording(&span);
        if recording {
            let version = match version {
                Version::HTTP_10 => "1.0",
                Version::HTTP_2 => "2",
                Version::HTTP_3 => "3",
                _ => "1.1",
            };
            opentelemetry::trace::Span::set_attributes(
                &mut span,
                [
                    KeyValue::new("http.request.method", method_name(method)),
                    KeyValue::new("url.scheme", if https { "https" } else { "http" }),
                    KeyValue::new("network.protocol.version", version),
                ],
            );
        }
        let cx = parent.with_span(span);
        let cx = if recording {
            cx.with_value(ActiveTracer(tracer))
        } else {
            cx
        };
        Self {
            cx,
            method: method.clone(),
            recording,
            continued: false,
        }
    }

    /// The app's own request span, when perfscope runs with the app's
    /// tracer provider and the app's middleware (or a `tracing` span
    /// bridged by tracing-opentelemetry) opened one around this request:
    /// no second server span is opened, and perfscope's query and
    /// measurement spans become its children. The app names and ends it.
    /// (With an exporter of perfscope's own, a span the app made current
    /// belongs to another pipeline and is not continued.)
    fn continue_current(tracer: &SdkTracer, method: &Method) -> Option<Self> {
        let current = Context::current();
        let context = current.span().span_context().clone();
        if !context.is_valid() || context.is_remote() {
            return None;
        }
        let cx = if context.is_sampled() {
            current.with_value(ActiveTracer(tracer.clone()))
        } else {
            current
        };
        Some(Self {
            cx,
            method: method.clone(),
            recording: false,
            continued: true,
        })
    }

    /// The context the handler runs in (`FutureExt::with_context`).
    pub fn context(&self) -> &Context {
        &self.cx
    }

    /// The span's trace and span ids in hex, when it is sampled (for a
    /// Sentry transaction continuing it).
    pub fn hex_ids(&self) -> Option<(String, String)> {
        let span = self.cx.span();
        let context = span.span_context();
        (context.is_valid() && context.is_sampled()).then(|| {
            (
                context.trace_id().to_string(),
                context.span_id().to_string(),
            )
        })
    }

    /// The span's trace id when it is sampled (the latency exemplar).
    pub fn trace_id(&self) -> Option<[u8; 16]> {
        let span = self.cx.span();
        let context = span.span_context();
        (context.is_valid() && context.is_sampled()).then(|| context.trace_id().to_bytes())
    }

    /// Ends the span: named by `route` when one matched, with the HTTP
    /// `status`, and for a gRPC call its `grpc` status code (an HTTP 5xx
    /// is an error, and so are the gRPC codes the semantic conventions
    /// count as a server's fault).
    pub fn finish(self, route: &RouteLabel, status: u16, grpc: Option<u16>) {
        let span = self.cx.span();
        if !self.recording {
            if !self.continued {
                span.end();
            }
            return;
        }
        if let RouteLabel::Template(route) = route {
            span.update_name(format!("{} {route}", self.method.as_str()));
            span.set_attribute(KeyValue::new("http.route", route.to_string()));
        }
        span.set_attribute(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
        if let Some(code) = grpc {
            span.set_attribute(KeyValue::new("rpc.system", "grpc"));
            span.set_attribute(KeyValue::new("rpc.grpc.status_code", i64::from(code)));
        }
        if (500..600).contains(&status) {
            span.set_attribute(KeyValue::new("error.type", status.to_string()));
            span.set_status(Status::error(""));
        } else if let Some(code) = grpc.filter(|code| grpc_server_error(*code)) {
            span.set_attribute(KeyValue::new("error.type", code.to_string()));
            span.set_status(Status::error(""));
        }
        span.end();
    }
}

/// The gRPC codes that mark a server span as failed (OpenTelemetry's RPC
/// conventions): UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
/// UNAVAILABLE, DATA_LOSS. A client's mistake (INVALID_ARGUMENT,
/// NOT_FOUND, …) is not the server's error.
fn grpc_server_error(code: u16) -> bool {
    matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
}
