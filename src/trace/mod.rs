//! The span interface between what perfscope measures and where spans go.
//!
//! A measurement point (a timed query in the pool, a custom measurement,
//! the request middleware's latency exemplar) says *what* it timed —
//! [`SpanStart`] when it begins, [`SpanEnd`] and lazily built
//! [`SpanDetails`] when it ends — and asks for the current trace id or the
//! outgoing propagation headers. A [`SpanExporter`] (Sentry and OTLP, in
//! [`crate::telemetry`]) turns that into its own spans. The measurement
//! points import no exporter and carry no `cfg(feature = …)`.
//!
//! Why static dispatch: the exporters a build has are known when it is
//! compiled (features), and each one is switched on at start-up. The set is
//! a tuple of them ([`SpanExporter`] is implemented for `()` and pairs)
//! behind a [`Gated`] check, so a query pays what it paid before the
//! interface existed: no dyn call, no allocation, and — with no exporter
//! running — one atomic load ([`running`]) and nothing else. The open span
//! of each exporter is its own associated type, kept inline by the
//! measurement point (no box).
//!
//! This module imports nothing from the rest of the crate, so the metrics
//! core can depend on it without depending on any exporter or on config.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// What a span times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpanKind {
    /// A statement sent to the database (a client span, in OpenTelemetry
    /// terms).
    Query,
    /// A piece of the service's own work timed through
    /// [`crate::measure::Measurements`] (an internal span); spans opened
    /// inside it are its children where the exporter can nest them.
    Measurement,
}

/// A span as it begins.
#[derive(Clone, Copy, Debug)]
pub struct SpanStart<'a> {
    /// What it times.
    pub kind: SpanKind,
    /// A short text naming the work: a statement's normalized text, a
    /// measurement's operation.
    pub description: &'a str,
    /// The database system of a query (`db.system`), known up front.
    pub db_system: Option<&'static str>,
}

/// A span as it ends.
#[derive(Clone, Copy, Debug)]
pub struct SpanEnd {
    /// How long the work took, up to now.
    pub elapsed: Duration,
    /// Whether it succeeded.
    pub ok: bool,
}

/// The name and attributes of a finished span, built only when an
/// exporter records it (so untraced work allocates nothing).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpanDetails {
    /// The span's name.
    pub name: String,
    /// Its attributes, after those every exporter derives from
    /// [`SpanStart`].
    pub attributes: Vec<Attribute>,
}

/// One span attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// The semantic-convention key.
    pub key: &'static str,
    /// The value.
    pub value: Cow<'static, str>,
}

impl Attribute {
    /// An attribute.
    pub fn new(key: &'static str, value: impl Into<Cow<'static, str>>) -> Self {
        Self {
            key,
            value: value.into(),
        }
    }
}

/// Where spans go. Implemented by each exporter, and by `()` (nothing)
/// and pairs (both) so a build's set is one static type.
pub trait SpanExporter: Sync {
    /// The exporter's open span, held by the measurement point until it
    /// ends.
    type Span: Send;

    /// Opens a child of the current request's span; `None` outside a
    /// traced request (or when the exporter is off).
    fn start(&self, start: &SpanStart<'_>) -> Option<Self::Span>;

    /// Ends what [`SpanExporter::start`] opened (an exporter that records
    /// spans only as they end does it here, from `end.elapsed`).
    /// `details` is called only if a span is recorded.
    fn finish<D: Fn() -> SpanDetails>(
        &self,
        span: Option<Self::Span>,
        start: &SpanStart<'_>,
        end: &SpanEnd,
        details: &D,
    );

    /// The W3C trace id of the sampled trace the current request is in.
    fn trace_id(&self) -> Option<[u8; 16]>;

    /// Appends the headers that carry the current trace to a service this
    /// request calls.
    fn outgoing_headers(&self, headers: &mut Vec<(&'static str, String)>);
}

/// No exporter.
impl SpanExporter for () {
    type Span = ();

    fn start(&self, _start: &SpanStart<'_>) -> Option<()> {
        None
    }

    fn finish<D: Fn() -> SpanDetails>(
        &self,
        _span: Option<()>,
        _start: &SpanStart<'_>,
        _end: &SpanEnd,
        _details: &D,
    ) {
    }

    fn trace_id(&self) -> Option<[u8; 16]> {
        None
    }

    fn outgoing_headers(&self, _headers: &mut Vec<(&'static str, String)>) {}
}

/// Both exporters: spans go to each; the trace id is the first's, else
/// the second's; headers are the first's then the second's.
impl<A: SpanExporter, B: SpanExporter> SpanExporter for (A, B) {
    type Span = (Option<A::Span>, Option<B::Span>);

    fn start(&self, start: &SpanStart<'_>) -> Option<Self::Span> {
        let spans = (self.0.start(start), self.1.start(start));
        (spans.0.is_some() || spans.1.is_some()).then_some(spans)
    }

    fn finish<D: Fn() -> SpanDetails>(
        &self,
        span: Option<Self::Span>,
        start: &SpanStart<'_>,
        end: &SpanEnd,
        details: &D,
    ) {
        let (first, second) = span.unwrap_or((None, None));
        self.0.finish(first, start, end, details);
        self.1.finish(second, start, end, details);
    }

    fn trace_id(&self) -> Option<[u8; 16]> {
        self.0.trace_id().or_else(|| self.1.trace_id())
    }

    fn outgoing_headers(&self, headers: &mut Vec<(&'static str, String)>) {
        self.0.outgoing_headers(headers);
        self.1.outgoing_headers(headers);
    }
}

/// Exporters running in this process (each counts itself in when it
/// starts and out when it stops).
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// An exporter has started.
#[cfg_attr(not(any(feature = "otlp", feature = "sentry")), allow(dead_code))]
pub(crate) fn exporter_started() {
    RUNNING.fetch_add(1, Ordering::Relaxed);
}

/// An exporter has stopped.
#[cfg_attr(not(any(feature = "otlp", feature = "sentry")), allow(dead_code))]
pub(crate) fn exporter_stopped() {
    RUNNING.fetch_sub(1, Ordering::Relaxed);
}

/// Whether any exporter is running.
pub fn running() -> bool {
    RUNNING.load(Ordering::Relaxed) != 0
}

/// A set of exporters asked nothing while none is running: the whole cost
/// of tracing, off, is one atomic load per measurement point.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gated<E>(pub E);

impl<E: SpanExporter> SpanExporter for Gated<E> {
    type Span = E::Span;

    fn start(&self, start: &SpanStart<'_>) -> Option<E::Span> {
        if !running() {
            return None;
        }
        self.0.start(start)
    }

    fn finish<D: Fn() -> SpanDetails>(
        &self,
        span: Option<E::Span>,
        start: &SpanStart<'_>,
        end: &SpanEnd,
        details: &D,
    ) {
        // An open span is finished even if its exporter stopped meanwhile.
        if span.is_none() && !running() {
            return;
        }
        self.0.finish(span, start, end, details);
    }

    fn trace_id(&self) -> Option<[u8; 16]> {
        if !running() {
            return None;
        }
        self.0.trace_id()
    }

    fn outgoing_headers(&self, headers: &mut Vec<(&'static str, String)>) {
        if running() {
            self.0.outgoing_headers(headers);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it is asked, to check the pair's order.
    struct Probe(&'static str, std::sync::Mutex<Vec<String>>);

    impl SpanExporter for Probe {
        type Span = &'static str;

        fn start(&self, _start: &SpanStart<'_>) -> Option<&'static str> {
            Some(self.0)
        }

        fn finish<D: Fn() -> SpanDetails>(
            &self,
            span: Option<&'static str>,
            _start: &SpanStart<'_>,
            _end: &SpanEnd,
            details: &D,
        ) {
            let name = details().name;
            if let Ok(mut seen) = self.1.lock() {
                seen.push(format!("{}:{name}", span.unwrap_or("none")));
            }
        }

        fn trace_id(&self) -> Option<[u8; 16]> {
            (self.0 == "second").then_some([2; 16])
        }

        fn outgoing_headers(&self, headers: &mut Vec<(&'static str, String)>) {
            headers.push((self.0, String::new()));
        }
    }

    #[test]
    fn a_pair_asks_both_in_order() {
        let pair = (
            Probe("first", Default::default()),
            Probe("second", Default::default()),
        );
        let start = SpanStart {
            kind: SpanKind::Query,
            description: "SELECT 1",
            db_system: None,
        };
        let span = pair.start(&start);
        let end = SpanEnd {
            elapsed: Duration::from_millis(1),
            ok: true,
        };
        pair.finish(span, &start, &end, &|| SpanDetails {
            name: "SELECT".into(),
            attributes: Vec::new(),
        });
        assert_eq!(*pair.0.1.lock().expect("lock"), ["first:SELECT"]);
        assert_eq!(*pair.1.1.lock().expect("lock"), ["second:SELECT"]);
        assert_eq!(pair.trace_id(), Some([2; 16]));
        let mut headers = Vec::new();
        pair.outgoing_headers(&mut headers);
        assert_eq!(
            headers.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert_eq!(().start(&start), None);
    }
}
