//! Sentry, when `SENTRY_DSN` is set: the client, its transport, and the
//! spans of queries and measurements ([`SentrySpans`], Sentry behind
//! [`crate::trace`]'s interface).
//!
//! The transport is ours ([`transport`]): a bounded queue (of
//! [`QUEUE_CAPACITY`] envelopes) emptied by a thread of its own, which
//! keeps up to [`MAX_IN_FLIGHT`] POSTs outstanding on kept-alive
//! connections, each with a timeout. The SDK's own
//! transport drops on a full channel and only logs it at debug level; this
//! one counts every envelope it drops — queue full, receiver down, slow,
//! black-holed or answering 429 — in `perfscope_telemetry_dropped_total
//! {sink="sentry"}`, so Sentry never slows a request and its losses show.
//! It honours Sentry's rate-limit answers per category ([`rate_limits`]):
//! while one is in force, that category's envelopes are dropped before any
//! request is made, counted in `perfscope_telemetry_rate_limited_total
//! {sink="sentry",category}` as well.
//!
//! Nothing personal leaves: `send_default_pii` is off, and every event's
//! request keeps its method alone (no URL, query, headers, cookies or
//! body); transactions get the same treatment in the HTTP bridge.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sentry::ClientOptions;
use sentry::protocol::Event;
use sentry::types::Dsn;

use crate::config::SentryConfig;
use crate::metrics::alerts::RateLimitedLabels;
use crate::trace::{SpanDetails, SpanEnd, SpanExporter, SpanKind, SpanStart};

/// How long shutdown waits for queued envelopes.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

pub mod rate_limits;
pub mod transport;

use rate_limits::Category;
pub use transport::{MAX_ANSWER_BYTES, MAX_IN_FLIGHT, QUEUE_CAPACITY, SEND_TIMEOUT};
use transport::{QueueTransport, TransportThread};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether a Sentry client is running (checked before any span is made,
/// so Sentry off costs one atomic load).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The running client and its transport's thread; [`SentryGuard::close`]
/// flushes it with a deadline and stops the thread.
pub struct SentryGuard {
    client: Arc<sentry::Client>,
    thread: Option<TransportThread>,
    finisher: transport::Finisher,
}

impl std::fmt::Debug for SentryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentryGuard")
    }
}

impl SentryGuard {
    fn stop(&self) {
        if ENABLED.swap(false, Ordering::Relaxed) {
            self.finisher.uninstall();
            crate::trace::exporter_stopped();
        }
    }

    /// Flushes queued envelopes (up to [`FLUSH_DEADLINE`]) and stops,
    /// the transport's thread included.
    pub async fn close(mut self) {
        self.stop();
        let client = self.client.clone();
        let thread = self.thread.take();
        // Closing blocks on the flush: off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || {
            // Flushed first, while the client can still take the envelopes
            // of the transactions the transport's thread finishes: once
            // closing, the client sends nothing more.
            let until = std::time::Instant::now() + FLUSH_DEADLINE;
            client.flush(Some(FLUSH_DEADLINE));
            client.close(Some(
                until.saturating_duration_since(std::time::Instant::now()),
            ));
            if let Some(thread) = thread {
                thread.join();
            }
        })
        .await;
    }
}

/// Dropped without closing, Sentry still stops (no more spans or events
/// are made; queued envelopes are not waited for, and the transport's
/// thread ends, counting them as dropped).
impl Drop for SentryGuard {
    fn drop(&mut self) {
        self.stop();
        if let Some(thread) = &self.thread {
            thread.stop();
        }
    }
}

/// What the transport counts.
#[derive(Clone, Debug)]
pub struct SentryDrops {
    /// `perfscope_telemetry_dropped_total{sink="sentry"}`: every envelope
    /// lost, whatever the reason.
    pub dropped: Counter,
    /// `perfscope_telemetry_rate_limited_total{sink="sentry",category}`:
    /// of those, the ones Sentry's rate limits refused (answered 429, or
    /// not sent while their category was limited).
    pub rate_limited: Family<RateLimitedLabels, Counter>,
}

impl SentryDrops {
    /// One envelope of `category` lost to a rate limit.
    fn rate_limited(&self, category: Category) {
        self.dropped.inc();
        self.rate_limited
            .get_or_create(&RateLimitedLabels {
                sink: "sentry",
                category: category.label(),
            })
            .inc();
    }
}

/// Starts Sentry when `SENTRY_DSN` is set: the client and its transport's
/// thread (which ends once the client is closed).
pub fn init(config: &SentryConfig, drops: SentryDrops) -> Option<SentryGuard> {
    let dsn: Dsn = config.dsn.as_ref()?.expose().parse().ok()?;
    let (transport, thread) = QueueTransport::spawn(dsn.clone(), drops);
    // The HTTP bridge decides which requests become transactions (at
    // `SENTRY_TRACES_SAMPLE_RATE`) before doing any work; the client keeps
    // every transaction it is given.
    let mut options = ClientOptions::default().traces_sample_rate(1.0);
    options.dsn = Some(dsn);
    options.environment = config.environment.clone().map(Cow::Owned);
    options.release = config.release.clone().map(Cow::Owned);
    options.send_default_pii = false;
    let transport = Arc::new(transport);
    // `Arc<impl Transport>` is the factory the options take.
    options.transport = Some(Arc::new(transport.clone()));
    options.before_send = Some(Arc::new(|mut event: Event<'static>| {
        scrub(&mut event);
        Some(event)
    }));
    // `sentry::init` binds to the calling thread's hub, which is the main
    // hub only on the thread that first touched it: bind to the main hub
    // explicitly, which every request's hub is made from.
    let client = Arc::new(sentry::Client::from(sentry::apply_defaults(options)));
    sentry::Hub::main().bind_client(Some(client.clone()));
    let finisher = transport.finisher(client.clone());
    finisher.clone().install();
    ENABLED.store(true, Ordering::Relaxed);
    crate::trace::exporter_started();
    Some(SentryGuard {
        client,
        thread: Some(thread),
        finisher,
    })
}

/// Keeps only the method of an event's request.
fn scrub(event: &mut Event<'static>) {
    if let Some(request) = event.request.as_mut() {
        *request = sentry::protocol::Request {
            method: request.method.take(),
            ..Default::default()
        };
    }
    event.user = None;
}

/// The trace id of the current transaction, when one is sampled.
pub fn current_trace_id() -> Option<[u8; 16]> {
    if !enabled() {
        return None;
    }
    // The bridge samples before it opens a transaction (the client keeps
    // every one it is given): a running transaction is a sampled one.
    let span = sentry::configure_scope(|scope| scope.get_span())?;
    hex_trace_id(&span.get_trace_context().trace_id.to_string())
}

/// `sentry-trace` and `baggage` for an outgoing call inside the current
/// transaction.
pub fn outgoing_headers(headers: &mut Vec<(&'static str, String)>) {
    if !enabled() {
        return;
    }
    if let Some(span) = sentry::configure_scope(|scope| scope.get_span()) {
        headers.extend(span.iter_headers());
    }
}

/// 32 hex digits as 16 bytes.
pub(crate) fn hex_trace_id(hex: &str) -> Option<[u8; 16]> {
    let mut bytes = [0u8; 16];
    if hex.len() != 32 {
        return None;
    }
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

/// Sentry as a [`SpanExporter`]: a query is a child span of the current
/// transaction (op `db.sql.query`); a measurement is a child that becomes
/// the scope's current span while it runs (op `function`), so queries
/// inside it are its children.
#[derive(Clone, Copy, Debug, Default)]
pub struct SentrySpans;

/// An open Sentry span, with the span to make current again when it ends
/// (for one that was entered).
#[derive(Debug)]
pub struct SentrySpan {
    span: sentry::TransactionOrSpan,
    restore: Option<sentry::TransactionOrSpan>,
}

impl SpanExporter for SentrySpans {
    type Span = SentrySpan;

    fn start(&self, start: &SpanStart<'_>) -> Option<SentrySpan> {
        if !enabled() {
            return None;
        }
        match start.kind {
            SpanKind::Query => {
                let parent = sentry::configure_scope(|scope| scope.get_span())?;
                let span: sentry::TransactionOrSpan =
                    parent.start_child("db.sql.query", start.description).into();
                if let Some(system) = start.db_system {
                    span.set_data("db.system", system.into());
                }
                Some(SentrySpan {
                    span,
                    restore: None,
                })
            }
            SpanKind::Measurement => sentry::configure_scope(|scope| {
                let parent = scope.get_span()?;
                let span: sentry::TransactionOrSpan =
                    parent.start_child("function", start.description).into();
                scope.set_span(Some(span.clone()));
                Some(SentrySpan {
                    span,
                    restore: Some(parent),
                })
            }),
        }
    }

    fn finish<D: Fn() -> SpanDetails>(
        &self,
        span: Option<SentrySpan>,
        _start: &SpanStart<'_>,
        end: &SpanEnd,
        _details: &D,
    ) {
        let Some(SentrySpan { span, restore }) = span else {
            return;
        };
        if let Some(parent) = restore {
            sentry::configure_scope(|scope| scope.set_span(Some(parent)));
        }
        span.set_status(if end.ok {
            sentry::protocol::SpanStatus::Ok
        } else {
            sentry::protocol::SpanStatus::InternalError
        });
        span.finish();
    }

    fn trace_id(&self) -> Option<[u8; 16]> {
        current_trace_id()
    }

    fn outgoing_headers(&self, headers: &mut Vec<(&'static str, String)>) {
        outgoing_headers(headers);
    }
}
