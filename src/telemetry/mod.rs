//! Telemetry out: where perfscope reports beyond its own metrics. Each
//! sink queues boundedly and drops and counts rather than waiting
//! (`perfscope_telemetry_dropped_total{sink}`), so no sink can slow a
//! request. [`sentry`] (feature `sentry`, on with `SENTRY_DSN`) sends a
//! transaction per request with a span per query and measurement;
//! [`otlp`] (feature `otlp`, on with `OTEL_EXPORTER_OTLP_ENDPOINT`) sends
//! the same as OpenTelemetry spans; the alert webhooks live in
//! [`crate::alerts::webhook`].
//!
//! A request is one trace in both tools: the OpenTelemetry middleware
//! continues `traceparent` (or `sentry-trace`) and the Sentry bridge
//! continues from that span, so both carry the same W3C trace id — which
//! the latency histograms also keep as exemplars ([`current_trace_id`]).

use std::sync::atomic::{AtomicUsize, Ordering};

#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "sentry")]
pub mod sentry;

/// Running tracers (OTLP or Sentry) in this process: zero, and looking for
/// a trace id costs one atomic load.
static TRACING: AtomicUsize = AtomicUsize::new(0);

#[cfg_attr(not(any(feature = "otlp", feature = "sentry")), allow(dead_code))]
pub(crate) fn tracing_started() {
    TRACING.fetch_add(1, Ordering::Relaxed);
}

#[cfg_attr(not(any(feature = "otlp", feature = "sentry")), allow(dead_code))]
pub(crate) fn tracing_stopped() {
    TRACING.fetch_sub(1, Ordering::Relaxed);
}

/// The W3C trace id of the sampled trace the current request is part of:
/// its OpenTelemetry span's, else its Sentry transaction's. `None` outside
/// a traced request or when neither is running.
pub fn current_trace_id() -> Option<[u8; 16]> {
    if TRACING.load(Ordering::Relaxed) == 0 {
        return None;
    }
    #[cfg(feature = "otlp")]
    if let Some(id) = otlp::current_trace_id() {
        return Some(id);
    }
    #[cfg(feature = "sentry")]
    if let Some(id) = sentry::current_trace_id() {
        return Some(id);
    }
    None
}

/// Headers that carry the current trace to a service this request calls:
/// `traceparent`/`tracestate` (OpenTelemetry) and `sentry-trace`/`baggage`
/// (Sentry), for whichever is running. Empty outside a traced request.
///
/// ```
/// let headers = perfscope::telemetry::trace_headers();
/// assert!(headers.is_empty()); // not inside a traced request
/// // for (name, value) in headers { request = request.header(name, value); }
/// ```
pub fn trace_headers() -> Vec<(&'static str, String)> {
    #[cfg_attr(not(any(feature = "otlp", feature = "sentry")), allow(unused_mut))]
    let mut headers = Vec::new();
    if TRACING.load(Ordering::Relaxed) == 0 {
        return headers;
    }
    #[cfg(feature = "otlp")]
    otlp::outgoing_headers(&mut headers);
    #[cfg(feature = "sentry")]
    sentry::outgoing_headers(&mut headers);
    headers
}
