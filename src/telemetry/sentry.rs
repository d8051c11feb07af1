//! Sentry, when `SENTRY_DSN` is set: the client, its transport, and the
//! spans of queries and measurements ([`SentrySpans`], Sentry behind
//! [`crate::trace`]'s interface).
//!
//! The transport is ours: a bounded queue (of [`QUEUE_CAPACITY`]
//! envelopes) and one task that POSTs them with a timeout. The SDK's own
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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use sentry::protocol::Event;
use sentry::types::Dsn;
use sentry::{ClientOptions, Envelope, Transport};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::SentryConfig;
use crate::metrics::alerts::RateLimitedLabels;
use crate::trace::{SpanDetails, SpanEnd, SpanExporter, SpanKind, SpanStart};

/// Envelopes queued before new ones are dropped.
pub const QUEUE_CAPACITY: usize = 100;
/// Longest single POST.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How long shutdown waits for queued envelopes.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);

pub mod rate_limits;

use rate_limits::{Admission, Category, RateLimits};

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether a Sentry client is running (checked before any span is made,
/// so Sentry off costs one atomic load).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// The running client; [`SentryGuard::close`] flushes it with a deadline.
pub struct SentryGuard {
    client: Arc<sentry::Client>,
}

impl std::fmt::Debug for SentryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SentryGuard")
    }
}

impl SentryGuard {
    fn stop(&self) {
        if ENABLED.swap(false, Ordering::Relaxed) {
            crate::trace::exporter_stopped();
        }
    }

    /// Flushes queued envelopes (up to [`FLUSH_DEADLINE`]) and stops.
    pub async fn close(self) {
        self.stop();
        let client = self.client.clone();
        // Closing blocks on the flush: off the runtime's workers.
        let _ = tokio::task::spawn_blocking(move || {
            client.close(Some(FLUSH_DEADLINE));
        })
        .await;
    }
}

/// Dropped without closing, Sentry still stops (no more spans or events
/// are made; queued envelopes are not waited for).
impl Drop for SentryGuard {
    fn drop(&mut self) {
        self.stop();
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
/// task (which ends once the client is closed).
pub fn init(config: &SentryConfig, drops: SentryDrops) -> Option<(SentryGuard, JoinHandle<()>)> {
    let dsn: Dsn = config.dsn.as_ref()?.expose().parse().ok()?;
    let (transport, worker) = QueueTransport::spawn(dsn.clone(), drops);
    // The HTTP bridge decides which requests become transactions (at
    // `SENTRY_TRACES_SAMPLE_RATE`) before doing any work; the client keeps
    // every transaction it is given.
    let mut options = ClientOptions::default().traces_sample_rate(1.0);
    options.dsn = Some(dsn);
    options.environment = config.environment.clone().map(Cow::Owned);
    options.release = config.release.clone().map(Cow::Owned);
    options.send_default_pii = false;
    // `Arc<impl Transport>` is the factory the options take.
    options.transport = Some(Arc::new(Arc::new(transport)));
    options.before_send = Some(Arc::new(|mut event: Event<'static>| {
        scrub(&mut event);
        Some(event)
    }));
    // `sentry::init` binds to the calling thread's hub, which is the main
    // hub only on the thread that first touched it: bind to the main hub
    // explicitly, which every request's hub is made from.
    let client = Arc::new(sentry::Client::from(sentry::apply_defaults(options)));
    sentry::Hub::main().bind_client(Some(client.clone()));
    ENABLED.store(true, Ordering::Relaxed);
    crate::trace::exporter_started();
    Some((SentryGuard { client }, worker))
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

/// The bounded, counting transport.
#[derive(Debug, Clone)]
struct QueueTransport {
    tx: mpsc::Sender<Envelope>,
    pending: Arc<AtomicUsize>,
    dropped: Counter,
}

impl QueueTransport {
    fn spawn(dsn: Dsn, drops: SentryDrops) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        let pending = Arc::new(AtomicUsize::new(0));
        let dropped = drops.dropped.clone();
        let worker = tokio::spawn(deliver(dsn, rx, pending.clone(), drops));
        (
            Self {
                tx,
                pending,
                dropped,
            },
            worker,
        )
    }
}

impl Transport for QueueTransport {
    fn send_envelope(&self, envelope: Envelope) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if self.tx.try_send(envelope).is_err() {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.dropped.inc();
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while self.pending.load(Ordering::SeqCst) > 0 {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
}

/// How one envelope ended.
enum Outcome {
    Sent,
    RateLimited(Category),
    Failed,
}

/// POSTs each envelope its category's rate limit lets through; the rest,
/// and failures, are dropped and counted.
async fn deliver(
    dsn: Dsn,
    mut rx: mpsc::Receiver<Envelope>,
    pending: Arc<AtomicUsize>,
    drops: SentryDrops,
) {
    let client = match reqwest::Client::builder()
        .connect_timeout(SEND_TIMEOUT)
        .timeout(SEND_TIMEOUT)
        .build()
    {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(%error, "the Sentry transport could not start: Sentry is off");
            return;
        }
    };
    let url = dsn.envelope_api_url().to_string();
    let agent = concat!("perfscope/", env!("CARGO_PKG_VERSION"));
    let auth = dsn.to_auth(Some(agent)).to_string();
    let mut limits = RateLimits::default();
    while let Some(envelope) = rx.recv().await {
        let outcome = match limits.admit(envelope, Instant::now()) {
            Admission::Limited(category) => Outcome::RateLimited(category),
            Admission::Send(envelope) => {
                let category = envelope
                    .items()
                    .next()
                    .map_or(Category::Other, Category::of);
                let mut body = Vec::new();
                if envelope.to_writer(&mut body).is_err() {
                    Outcome::Failed
                } else {
                    let answer = client
                        .post(url.as_str())
                        .header("x-sentry-auth", auth.as_str())
                        .header("content-type", "application/x-sentry-envelope")
                        .body(body)
                        .send()
                        .await;
                    match answer {
                        Ok(response) => {
                            let status = response.status();
                            let header = |name| response.headers().get(name).map(|v| v.as_bytes());
                            limits.update(
                                status.as_u16(),
                                header("x-sentry-rate-limits"),
                                header("retry-after"),
                                Instant::now(),
                            );
                            if status.is_success() {
                                Outcome::Sent
                            } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                                Outcome::RateLimited(category)
                            } else {
                                Outcome::Failed
                            }
                        }
                        Err(_) => Outcome::Failed,
                    }
                }
            }
        };
        match outcome {
            Outcome::Sent => {}
            Outcome::RateLimited(category) => drops.rate_limited(category),
            Outcome::Failed => {
                drops.dropped.inc();
                tracing::debug!("a Sentry envelope was dropped");
            }
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
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
