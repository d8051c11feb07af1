//! HTTP server metrics: `http_request_duration_seconds{method, route,
//! status_code}` and `http_requests_in_flight`; for the agent's own
//! listener, its open connections against their cap.
//!
//! `route` is the matched route template (poem's `PathPattern`), never the
//! raw path, whose ids and tokens would make one series per request;
//! requests that match no route are `unmatched`. Methods outside the
//! standard set are `other`.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::bounded::{BoundedFamily, OverflowLabels, SeriesAccounting};
use super::histogram::{AtomicHistogram, Buckets, HistogramSnapshot, TracedBuckets};
use super::sketch::Sketch;
use super::sketches::SketchMap;

/// The `method` label: the standard methods, everything else `other`.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum HttpMethod {
    Get,
    Head,
    Post,
    Put,
    Delete,
    Connect,
    Options,
    Trace,
    Patch,
    Other,
}

impl HttpMethod {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Delete => "DELETE",
            Self::Connect => "CONNECT",
            Self::Options => "OPTIONS",
            Self::Trace => "TRACE",
            Self::Patch => "PATCH",
            Self::Other => "other",
        }
    }
}

impl From<&poem::http::Method> for HttpMethod {
    fn from(method: &poem::http::Method) -> Self {
        use poem::http::Method;
        match *method {
            Method::GET => Self::Get,
            Method::HEAD => Self::Head,
            Method::POST => Self::Post,
            Method::PUT => Self::Put,
            Method::DELETE => Self::Delete,
            Method::CONNECT => Self::Connect,
            Method::OPTIONS => Self::Options,
            Method::TRACE => Self::Trace,
            Method::PATCH => Self::Patch,
            _ => Self::Other,
        }
    }
}

impl EncodeLabelValue for HttpMethod {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The `route` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum RouteLabel {
    /// A matched route template, e.g. `/users/:id`.
    Template(Arc<str>),
    /// The request matched no route.
    Unmatched,
    /// The family reached its series cap.
    Overflow,
}

impl RouteLabel {
    /// The label value.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Template(template) => template,
            Self::Unmatched => "unmatched",
            Self::Overflow => "__overflow__",
        }
    }
}

impl EncodeLabelValue for RouteLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// The `status_code` label: the numeric code, or `other` in the overflow
/// series.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct StatusLabel(pub Option<u16>);

impl EncodeLabelValue for StatusLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        match self.0 {
            Some(code) => std::fmt::Write::write_str(encoder, itoa_u16(code).as_str()),
            None => std::fmt::Write::write_str(encoder, "other"),
        }
    }
}

/// Three ASCII digits without an allocation.
fn itoa_u16(code: u16) -> ShortStr {
    let mut buf = [b'0'; 5];
    let mut n = code;
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    ShortStr { buf, start }
}

struct ShortStr {
    buf: [u8; 5],
    start: usize,
}

impl ShortStr {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[self.start..]).unwrap_or("other")
    }
}

/// Labels of `http_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub method: HttpMethod,
    pub route: RouteLabel,
    pub status_code: StatusLabel,
}

impl OverflowLabels for HttpLabels {
    fn overflow() -> Self {
        Self {
            method: HttpMethod::Other,
            route: RouteLabel::Overflow,
            status_code: StatusLabel(None),
        }
    }
}

/// The HTTP server's metric families.
#[derive(Debug)]
pub struct HttpMetrics {
    /// `http_request_duration_seconds{method, route, status_code}`.
    pub request_duration: BoundedFamily<HttpLabels, AtomicHistogram, TracedBuckets>,
    /// `http_requests_in_flight`.
    pub in_flight: Gauge,
    /// `perfscope_http_connections` and
    /// `perfscope_http_connection_waits_total` (the agent's listener).
    pub connections: ConnectionGauges,
    /// `perfscope_http_connections_limit`.
    pub connections_limit: Gauge,
    /// The same durations as quantile sketches per series (not exported:
    /// the pages' and the rating's percentiles), at most
    /// [`MAX_ROUTE_SKETCHES`] series.
    pub route_sketches: SketchMap<HttpLabels>,
}

/// Request series with a duration sketch; later ones share the overflow
/// sketch (a sketch holds a few KiB, a histogram series ~200 bytes).
pub const MAX_ROUTE_SKETCHES: usize = 512;

impl HttpMetrics {
    /// Defines and registers the families.
    pub fn register(
        registry: &mut Registry,
        accounting: &SeriesAccounting,
        buckets: Buckets,
    ) -> Self {
        let request_duration = BoundedFamily::register(
            registry,
            accounting,
            "http_request_duration",
            "Duration of HTTP requests by method, route template and status code",
            Some(Unit::Seconds),
            TracedBuckets(buckets),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "HTTP requests being served",
            in_flight.clone(),
        );
        let connections = ConnectionGauges::default();
        registry.register(
            "perfscope_http_connections",
            "Connections open to the agent's own listener",
            connections.open.clone(),
        );
        registry.register(
            "perfscope_http_connection_waits",
            "Connections that found PERFSCOPE_MAX_HTTP_CONNECTIONS open and waited for a slot",
            connections.waits.clone(),
        );
        let connections_limit = Gauge::default();
        registry.register(
            "perfscope_http_connections_limit",
            "PERFSCOPE_MAX_HTTP_CONNECTIONS: connections the agent's listener holds at most",
            connections_limit.clone(),
        );
        Self {
            request_duration,
            in_flight,
            connections,
            connections_limit,
            route_sketches: SketchMap::new(
                MAX_ROUTE_SKETCHES.min(accounting.cap()),
                Some(HttpLabels::overflow()),
            ),
        }
    }

    /// Records one finished request, without an exemplar.
    pub fn observe(&self, labels: &HttpLabels, seconds: f64) {
        self.request_duration.get(labels).observe(seconds);
    }

    /// Records one finished request with its trace id, from `trace_id`
    /// (the request middleware passes [`crate::telemetry::current_trace_id`]),
    /// as the bucket's exemplar inside a sampled trace.
    pub fn observe_traced(
        &self,
        labels: &HttpLabels,
        seconds: f64,
        trace_id: impl FnOnce() -> Option<[u8; 16]>,
    ) {
        self.request_duration
            .get(labels)
            .observe_traced(seconds, trace_id);
    }

    /// The merged histogram of every series whose method and route match
    /// (`method` `None` matches any): the exported buckets; percentiles
    /// come from [`HttpMetrics::sketch`].
    pub fn history(&self, method: Option<HttpMethod>, route: &str) -> HistogramSnapshot {
        let mut merged = HistogramSnapshot::default();
        self.request_duration.for_each(|labels, histogram| {
            if labels.route.as_str() == route && method.is_none_or(|m| m == labels.method) {
                merged.merge(&histogram.snapshot());
            }
        });
        merged
    }

    /// The merged duration sketch of every series whose method and route
    /// match (`method` `None` matches any): honest percentiles for the
    /// rating.
    pub fn sketch(&self, method: Option<HttpMethod>, route: &str) -> Sketch {
        self.route_sketches.merged(|labels| {
            labels.route.as_str() == route && method.is_none_or(|m| m == labels.method)
        })
    }
}

/// What the listener's connection cap ([`crate::http::ConnectionLimit`])
/// reports.
#[derive(Clone, Debug, Default)]
pub struct ConnectionGauges {
    /// Connections open now.
    pub open: Gauge,
    /// Accepts that found every slot taken and waited.
    pub waits: Counter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_encode_without_allocation() {
        assert_eq!(itoa_u16(200).as_str(), "200");
        assert_eq!(itoa_u16(0).as_str(), "0");
        assert_eq!(itoa_u16(65535).as_str(), "65535");
    }

    #[test]
    fn methods_fold_to_other() {
        let custom = poem::http::Method::from_bytes(b"PURGE").expect("valid method");
        assert_eq!(HttpMethod::from(&custom), HttpMethod::Other);
        assert_eq!(HttpMethod::from(&poem::http::Method::GET).as_str(), "GET");
    }
}
