//! Telemetry out: where perfscope reports beyond its own metrics. Each
//! sink queues boundedly and drops and counts rather than waiting
//! (`perfscope_telemetry_dropped_total{sink}`), so no sink can slow a
//! request. [`sentry`] (feature `sentry`, on with `SENTRY_DSN`) sends a
//! transaction per request with a span per query and measurement;
//! [`otlp`] (feature `otlp`, on with `OTEL_EXPORTER_OTLP_ENDPOINT`) sends
//! the same as OpenTelemetry spans; the alert sinks live in
//! [`crate::alerts::sinks`].
//!
//! Both implement [`crate::trace::SpanExporter`]; [`EXPORTERS`] is this
//! build's set of them — the one place that says which exporters exist —
//! and the measurement points (the timed pool, measurements, the request
//! metrics' exemplars) reach Sentry and OTLP only through it. Each member
//! is switched on by [`crate::Perfscope::start`] when configured.
//!
//! A request is one trace in both tools: the OpenTelemetry middleware
//! continues `traceparent` (or `sentry-trace`) and the Sentry bridge
//! continues from that span, so both carry the same W3C trace id — which
//! the latency histograms also keep as exemplars ([`current_trace_id`]).

use crate::trace::{Gated, SpanExporter};

#[cfg(feature = "otlp")]
pub mod otlp;
#[cfg(feature = "sentry")]
pub mod sentry;

/// The OpenTelemetry crates perfscope is built with, for an app that hands
/// it its own tracer provider ([`crate::Perfscope::use_tracer_provider`]):
/// the provider must come from this `opentelemetry_sdk`.
#[cfg(feature = "otlp")]
pub mod otel {
    pub use opentelemetry;
    pub use opentelemetry_sdk;
}

#[cfg(feature = "otlp")]
type OtlpMember = otlp::OtlpSpans;
#[cfg(not(feature = "otlp"))]
type OtlpMember = ();
#[cfg(feature = "otlp")]
const OTLP: OtlpMember = otlp::OtlpSpans;
#[cfg(not(feature = "otlp"))]
const OTLP: OtlpMember = ();

#[cfg(feature = "sentry")]
type SentryMember = sentry::SentrySpans;
#[cfg(not(feature = "sentry"))]
type SentryMember = ();
#[cfg(feature = "sentry")]
const SENTRY: SentryMember = sentry::SentrySpans;
#[cfg(not(feature = "sentry"))]
const SENTRY: SentryMember = ();

/// This build's exporters: OpenTelemetry first (its trace id and headers
/// win, as the request's trace starts there), then Sentry.
pub type Exporters = Gated<(OtlpMember, SentryMember)>;

/// The exporters the measurement points send spans to.
pub const EXPORTERS: Exporters = Gated((OTLP, SENTRY));

/// An open span of [`EXPORTERS`], held by a measurement point.
pub type OpenSpan = Option<<Exporters as SpanExporter>::Span>;

/// The W3C trace id of the sampled trace the current request is part of:
/// its OpenTelemetry span's, else its Sentry transaction's. `None` outside
/// a traced request or when neither is running.
pub fn current_trace_id() -> Option<[u8; 16]> {
    EXPORTERS.trace_id()
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
    let mut headers = Vec::new();
    EXPORTERS.outgoing_headers(&mut headers);
    headers
}

/// The W3C `traceparent` (`00-<trace id>-<span id>-01`) of the current
/// span when the current request is traced and sampled: the OpenTelemetry
/// span's, else (Sentry alone, or OpenTelemetry not sampling it) the
/// Sentry span's trace and span ids. `None` outside a sampled trace. For a
/// statement's sqlcommenter comment (`PERFSCOPE_SQL_COMMENTS`).
pub fn current_traceparent() -> Option<String> {
    let mut headers = Vec::new();
    EXPORTERS.outgoing_headers(&mut headers);
    traceparent_of(&headers)
}

/// The sampled `traceparent` among outgoing trace headers, or one built
/// from a sampled `sentry-trace` (`<trace>-<span>[-<0|1>]`).
fn traceparent_of(headers: &[(&'static str, String)]) -> Option<String> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    };
    if let Some(parent) = header("traceparent") {
        let sampled = parent
            .rsplit('-')
            .next()
            .and_then(|flags| u8::from_str_radix(flags, 16).ok())
            .is_some_and(|flags| flags & 1 == 1);
        if sampled {
            return Some(parent.to_owned());
        }
    }
    let mut parts = header("sentry-trace")?.split('-');
    let (trace, span) = (parts.next()?, parts.next()?);
    if parts.next() == Some("0") {
        return None;
    }
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    (hex(trace, 32) && hex(span, 16)).then(|| format!("00-{trace}-{span}-01"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn the_sampled_traceparent_else_sentrys_ids() {
        let otel = |flags: &str| ("traceparent", format!("00-{TRACE}-{SPAN}-{flags}"));
        let sentry = |tail: &str| ("sentry-trace", format!("{TRACE}-{SPAN}{tail}"));
        let want = Some(format!("00-{TRACE}-{SPAN}-01"));
        assert_eq!(traceparent_of(&[otel("01")]), want);
        assert_eq!(traceparent_of(&[otel("00")]), None);
        assert_eq!(traceparent_of(&[otel("00"), sentry("-1")]), want);
        assert_eq!(traceparent_of(&[sentry("")]), want);
        assert_eq!(traceparent_of(&[sentry("-0")]), None);
        assert_eq!(traceparent_of(&[("sentry-trace", "nonsense".into())]), None);
        assert_eq!(traceparent_of(&[]), None);
        assert_eq!(current_traceparent(), None, "no exporter runs here");
    }
}
