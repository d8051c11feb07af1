//! OpenTelemetry traces over OTLP, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: the tracer, its export
//! queue, and the spans of queries and measurements ([`OtlpSpans`], OTLP
//! behind [`crate::trace`]'s interface).
//!
//! The queue is ours (`QueueProcessor`): the SDK's batch processor drops
//! spans on a full queue and keeps the count private, so a sink that is
//! slow, down or black-holed would lose spans unseen. This one has the
//! same settings (`OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_BSP_EXPORT_TIMEOUT`), never
//! blocks the span's thread, and counts every span it loses — queue full or
//! export failed — in `perfscope_telemetry_dropped_total{sink="otlp"}`. Its
//! exports run on a thread of their own (`perfscope-otlp`), which encodes
//! each batch straight into OTLP protobuf bytes (`encode.rs`) and sends
//! them over HTTP/protobuf or gRPC (`send.rs`) on a current-thread Tokio
//! runtime of its own; opentelemetry-otlp's exporter is not used (its
//! conversion into message structs was most of the thread's time).
//!
//! `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` compresses each batch on the
//! export thread, over either protocol (`grpc-encoding` / `content-encoding:
//! gzip`); the cost is measured in BENCHMARKS.md.
//!
//! An app with an OpenTelemetry pipeline of its own hands perfscope its
//! tracer provider instead ([`crate::Perfscope::use_tracer_provider`],
//! [`start_hosted`]): the slot then holds the app's tracer, and none of
//! the queue, thread or senders above runs.
//!
//! The tracer lives in an [`OtlpSlot`] of its [`crate::Perfscope`], not in
//! a global: the request middleware ([`crate::http::otel`]) puts the server
//! span and the tracer into the request's OpenTelemetry context, and the
//! timed pool and measurements open their spans from that context — so
//! spans exist only inside traced requests, and two instances in one
//! process (tests) do not share a tracer.

#[doc(hidden)]
pub mod encode;
mod send;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanProcessor};
use parking_lot::RwLock;
use prometheus_client::metrics::counter::Counter;

use crate::config::OtlpConfig;
use crate::trace::{SpanDetails, SpanEnd, SpanKind, SpanStart};

/// How long shutdown waits for queued spans.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(5);
/// How often the export thread wakes when it is not woken: to send a
/// partial batch that is due, or to answer a flush or shutdown.
const TICK: Duration = Duration::from_millis(50);
/// Instrumentation scope of perfscope's spans.
const SCOPE: &str = "perfscope";

/// The tracer of one [`crate::Perfscope`], set while OTLP is running.
#[derive(Debug, Default)]
pub struct OtlpSlot {
    tracer: RwLock<Option<SdkTracer>>,
    on: AtomicBool,
    /// The host app's tracer ([`crate::Perfscope::use_tracer_provider`]):
    /// used instead of an exporter of perfscope's own once started.
    host: RwLock<Option<SdkTracer>>,
    /// Running with the host app's tracer: a span the app made current is
    /// continued rather than a server span of perfscope's opened.
    hosted: AtomicBool,
}

impl OtlpSlot {
    /// The running tracer (one atomic load when OTLP is off).
    pub fn tracer(&self) -> Option<SdkTracer> {
        if !self.on.load(Ordering::Relaxed) {
            return None;
        }
        self.tracer.read().clone()
    }

    fn set(&self, tracer: SdkTracer) {
        *self.tracer.write() = Some(tracer);
        self.on.store(true, Ordering::Relaxed);
    }

    /// Sets the host app's tracer, used from the next start on.
    pub(crate) fn set_host(&self, tracer: SdkTracer) {
        *self.host.write() = Some(tracer);
    }

    /// Whether the spans go through the host app's tracer provider.
    pub fn is_hosted(&self) -> bool {
        self.host.read().is_some()
    }

    /// Whether the running tracer is the host app's (one atomic load).
    pub fn runs_hosted(&self) -> bool {
        self.hosted.load(Ordering::Relaxed)
    }

    /// Empties the slot; whether it held a tracer.
    fn clear(&self) -> bool {
        let was_on = self.on.swap(false, Ordering::Relaxed);
        self.hosted.store(false, Ordering::Relaxed);
        *self.tracer.write() = None;
        was_on
    }
}

/// The tracer a traced request's context carries, for the spans opened
/// inside it.
#[derive(Clone, Debug)]
pub struct ActiveTracer(pub SdkTracer);

/// The running pipeline; [`OtlpGuard::close`] flushes it with a deadline.
/// Dropped without closing, it still stops new spans (the provider then
/// shuts down with the SDK's own deadline).
#[derive(Debug)]
pub struct OtlpGuard {
    /// perfscope's own provider; `None` when the host app's is used (the
    /// host flushes and shuts down its own).
    provider: Option<SdkTracerProvider>,
    slot: Arc<OtlpSlot>,
}

impl OtlpGuard {
    fn stop_spans(&self) {
        if self.slot.clear() {
            crate::trace::exporter_stopped();
        }
    }

    /// Stops new spans, then exports what is queued (up to
    /// [`FLUSH_DEADLINE`]).
    pub async fn close(self) {
        self.stop_spans();
        let Some(provider) = self.provider.clone() else {
            return;
        };
        // Shutting down waits on the export thread: off the runtime.
        let _ = tokio::task::spawn_blocking(move || {
            if let Err(error) = provider.shutdown_with_timeout(FLUSH_DEADLINE) {
                tracing::warn!(%error, "OTLP spans were left unsent at shutdown");
            }
        })
        .await;
    }
}

impl Drop for OtlpGuard {
    fn drop(&mut self) {
        self.stop_spans();
    }
}

/// Starts the exporter and the tracer described by `config`, into `slot`.
/// Errors (an endpoint the sender refuses) are logged and leave OTLP off.
pub fn init(config: &OtlpConfig, slot: Arc<OtlpSlot>, dropped: Counter) -> Option<OtlpGuard> {
    let mut resource = Resource::builder();
    if let Some(name) = &config.service_name {
        resource = resource.with_service_name(name.clone());
    }
    let resource = resource.build();
    // The resource (service.name) goes with every batch.
    let processor = QueueProcessor::spawn(encode::SpanEncoder::new(&resource), config, dropped)?;
    let provider = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_span_processor(processor)
        .build();
    slot.set(scoped_tracer(&provider));
    crate::trace::exporter_started();
    Some(OtlpGuard {
        provider: Some(provider),
        slot,
    })
}

/// perfscope's tracer (its instrumentation scope) from `provider`.
pub(crate) fn scoped_tracer(provider: &SdkTracerProvider) -> SdkTracer {
    opentelemetry::trace::TracerProvider::tracer_with_scope(
        provider,
        opentelemetry::InstrumentationScope::builder(SCOPE)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build(),
    )
}

/// Starts spans through the host app's tracer provider when one was given
/// ([`crate::Perfscope::use_tracer_provider`]): no exporter of perfscope's
/// own runs, so the host's resource, sampler, processors and exporter
/// apply to perfscope's spans, in the host's traces. `None` when no host
/// provider was given.
pub fn start_hosted(slot: &Arc<OtlpSlot>, own_endpoint: bool) -> Option<OtlpGuard> {
    let tracer = slot.host.read().clone()?;
    if own_endpoint {
        tracing::info!(
            "perfscope's spans go through the app's tracer provider: its own OTLP exporter (OTEL_EXPORTER_OTLP_ENDPOINT) is not started"
        );
    }
    slot.set(tracer);
    slot.hosted.store(true, Ordering::Relaxed);
    crate::trace::exporter_started();
    Some(OtlpGuard {
        provider: None,
        slot: slot.clone(),
    })
}

/// What the export thread is asked besides spans.
enum Control {
    Flush(SyncSender<()>, Instant),
    Shutdown(SyncSender<()>, Instant),
}

/// The bounded, counting span processor (see the module docs).
///
/// Ending a span is a `try_send` and an atomic add: the export thread is
/// not woken per span (a futex wake per request cost more than the span
/// itself) but sleeps for [`TICK`] and is woken once a batch is waiting.
#[derive(Debug)]
struct QueueProcessor {
    spans: SyncSender<SpanData>,
    /// Spans queued and not yet taken by the export thread.
    queued: Arc<AtomicUsize>,
    batch_size: usize,
    worker: std::thread::Thread,
    control: parking_lot::Mutex<mpsc::Sender<Control>>,
    dropped: Counter,
}

impl QueueProcessor {
    /// Starts the export thread, its runtime and its sender; `None` (and
    /// logged) when one of them cannot start.
    fn spawn(encoder: encode::SpanEncoder, config: &OtlpConfig, dropped: Counter) -> Option<Self> {
        let (spans, queue) = mpsc::sync_channel(config.max_queue_size);
        let (control, requests) = mpsc::channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let batch_size = config.max_export_batch_size.min(config.max_queue_size);
        let (started, start) = mpsc::sync_channel(1);
        let worker_config = config.clone();
        let worker_queued = queued.clone();
        let worker_dropped = dropped.clone();
        let spawned = std::thread::Builder::new()
            .name("perfscope-otlp".into())
            .spawn(move || match runtime_and_sender(&worker_config) {
                Ok((runtime, sender)) => {
                    let _ = started.send(Ok(()));
                    ExportWorker {
                        encoder,
                        sender,
                        runtime,
                        timeout: worker_config.export_timeout,
                        queue,
                        queued: worker_queued,
                        requests,
                        dropped: worker_dropped,
                        batch_size,
                        delay: worker_config.schedule_delay,
                    }
                    .run();
                }
                Err(error) => {
                    let _ = started.send(Err(error));
                }
            });
        let spawned = spawned
            .map_err(|error| error.to_string())
            .and_then(|handle| match start.recv() {
                Ok(Ok(())) => Ok(handle),
                Ok(Err(error)) => Err(error),
                Err(_) => Err("the export thread ended".to_owned()),
            });
        match spawned {
            Ok(handle) => Some(Self {
                spans,
                queued,
                batch_size,
                worker: handle.thread().clone(),
                control: parking_lot::Mutex::new(control),
                dropped,
            }),
            Err(error) => {
                tracing::error!(%error, "the OTLP exporter could not start: traces are off");
                None
            }
        }
    }

    /// Sends `request` and waits up to `timeout` for the thread's answer.
    /// The thread gets the deadline too: what it cannot send by then it
    /// counts as dropped instead of sending past it.
    fn ask(
        &self,
        request: fn(SyncSender<()>, Instant) -> Control,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (done, answer) = mpsc::sync_channel(1);
        let deadline = Instant::now() + timeout;
        if self.control.lock().send(request(done, deadline)).is_err() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        self.worker.unpark();
        answer
            .recv_timeout(timeout)
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut opentelemetry_sdk::trace::Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        match self.spans.try_send(span) {
            Ok(()) => {
                if self.queued.fetch_add(1, Ordering::Relaxed) + 1 == self.batch_size {
                    self.worker.unpark();
                }
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.inc();
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush, FLUSH_DEADLINE)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.ask(Control::Shutdown, timeout)
    }
}

/// The export thread's runtime, and the sender made in it (a gRPC channel
/// is bound to the runtime it is made in).
fn runtime_and_sender(
    config: &OtlpConfig,
) -> Result<(tokio::runtime::Runtime, send::Sender), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| error.to_string())?;
    let sender = {
        let _entered = runtime.enter();
        send::Sender::new(config)?
    };
    Ok((runtime, sender))
}

/// The export thread: batches by size or delay, encodes and sends one
/// batch at a time, counts what fails.
struct ExportWorker {
    encoder: encode::SpanEncoder,
    sender: send::Sender,
    /// The thread's own runtime, which the sender runs on.
    runtime: tokio::runtime::Runtime,
    /// The longest one batch's sending may take, retries included.
    timeout: Duration,
    queue: Receiver<SpanData>,
    queued: Arc<AtomicUsize>,
    requests: mpsc::Receiver<Control>,
    dropped: Counter,
    batch_size: usize,
    delay: Duration,
}

impl ExportWorker {
    fn run(mut self) {
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut due = Instant::now() + self.delay;
        loop {
            std::thread::park_timeout(TICK.min(self.delay));
            match self.requests.try_recv() {
                Ok(Control::Flush(done, deadline)) => {
                    self.drain(&mut batch, deadline);
                    let _ = done.send(());
                }
                Ok(Control::Shutdown(done, deadline)) => {
                    self.drain(&mut batch, deadline);
                    let _ = done.send(());
                    return;
                }
                Err(mpsc::TryRecvError::Disconnected) => {
                    // The processor is gone without a shutdown.
                    self.drain(&mut batch, Instant::now() + FLUSH_DEADLINE);
                    return;
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            // Export full batches now, a partial one once it is due.
            loop {
                self.take(&mut batch);
                if batch.len() >= self.batch_size {
                    self.export(&mut batch);
                    due = Instant::now() + self.delay;
                } else {
                    break;
                }
            }
            if batch.is_empty() {
                due = Instant::now() + self.delay;
            } else if Instant::now() >= due {
                self.export(&mut batch);
                due = Instant::now() + self.delay;
            }
        }
    }

    /// Moves queued spans into `batch`, up to a batch.
    fn take(&mut self, batch: &mut Vec<SpanData>) {
        let mut taken = 0;
        while batch.len() < self.batch_size {
            match self.queue.try_recv() {
                Ok(span) => {
                    batch.push(span);
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        self.queued.fetch_sub(taken, Ordering::Relaxed);
    }

    /// Exports everything queued so far, each batch within what is left
    /// of `deadline`; once it has passed, what is left is counted as
    /// dropped.
    fn drain(&mut self, batch: &mut Vec<SpanData>, deadline: Instant) {
        loop {
            self.take(batch);
            if batch.is_empty() {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.dropped.inc_by(batch.len() as u64);
                batch.clear();
                continue;
            }
            self.export_within(batch, left.min(self.timeout));
        }
    }

    fn export(&mut self, batch: &mut Vec<SpanData>) {
        self.export_within(batch, self.timeout);
    }

    /// Encodes and sends `batch`, retries included, within `timeout`.
    fn export_within(&mut self, batch: &mut Vec<SpanData>, timeout: Duration) {
        let count = batch.len() as u64;
        let body = self.encoder.encode(batch);
        let result = self.runtime.block_on(self.sender.send(body, timeout));
        batch.clear();
        if let Err(error) = result {
            self.dropped.inc_by(count);
            tracing::debug!(%error, count, "OTLP spans were dropped");
        }
    }
}

/// Whether the current context is inside a request [`crate::http::otel`]
/// traces.
pub fn in_traced_request() -> bool {
    Context::map_current(|cx| cx.get::<ActiveTracer>().is_some())
}

/// The trace id of the current context's span, when it is sampled.
pub fn current_trace_id() -> Option<[u8; 16]> {
    Context::map_current(|cx| {
        let span = cx.span();
        let context = span.span_context();
        (context.is_valid() && context.is_sampled()).then(|| context.trace_id().to_bytes())
    })
}

/// The current span's trace and span ids, when a valid span is current.
pub fn current_span_ids() -> Option<(TraceId, SpanId)> {
    Context::map_current(|cx| {
        let span = cx.span();
        let context = span.span_context();
        context
            .is_valid()
            .then(|| (context.trace_id(), context.span_id()))
    })
}

/// A remote parent from a Sentry `sentry-trace` header
/// (`<32 hex trace id>-<16 hex span id>[-<0|1>]`), so a request Sentry
/// started continues as the same trace in OpenTelemetry.
pub fn context_from_sentry_trace(value: &str) -> Option<Context> {
    let mut parts = value.trim().split('-');
    let trace_id = TraceId::from_hex(parts.next()?).ok()?;
    let span_id = SpanId::from_hex(parts.next()?).ok()?;
    let flags = match parts.next() {
        Some("0") => TraceFlags::default(),
        _ => TraceFlags::SAMPLED,
    };
    let context = SpanContext::new(trace_id, span_id, flags, true, TraceState::default());
    context
        .is_valid()
        .then(|| Context::new().with_remote_span_context(context))
}

/// OTLP as a [`crate::trace::SpanExporter`]: each query (a client span) and measurement
/// (an internal span) is recorded as it ends, as a finished child of the
/// current traced request's span lasting `elapsed` up to now. The span is
/// built only inside a sampled traced request, so work outside one
/// allocates nothing; a failure sets the error status.
#[derive(Clone, Copy, Debug, Default)]
pub struct OtlpSpans;

impl crate::trace::SpanExporter for OtlpSpans {
    /// Nothing is held while the work runs.
    type Span = ();

    fn start(&self, _start: &SpanStart<'_>) -> Option<()> {
        None
    }

    fn finish<D: Fn() -> SpanDetails>(
        &self,
        _span: Option<()>,
        start: &SpanStart<'_>,
        end: &SpanEnd,
        details: &D,
    ) {
        Context::map_current(|cx| {
            let Some(ActiveTracer(tracer)) = cx.get::<ActiveTracer>() else {
                return;
            };
            if !cx.span().span_context().is_sampled() {
                return;
            }
            let SpanDetails { name, attributes } = details();
            let kind = match start.kind {
                SpanKind::Query => opentelemetry::trace::SpanKind::Client,
                SpanKind::Measurement => opentelemetry::trace::SpanKind::Internal,
            };
            let system = start.db_system.into_iter().flat_map(|system| {
                [
                    KeyValue::new("db.system.name", system),
                    KeyValue::new("db.system", system),
                ]
            });
            let attributes = system
                .chain(
                    attributes
                        .into_iter()
                        .map(|attribute| KeyValue::new(attribute.key, attribute.value)),
                )
                .collect::<Vec<_>>();
            let finished = SystemTime::now();
            let mut span = tracer
                .span_builder(name)
                .with_kind(kind)
                .with_start_time(finished - end.elapsed)
                .with_attributes(attributes)
                .start_with_context(tracer, cx);
            if !end.ok {
                opentelemetry::trace::Span::set_status(&mut span, Status::error(""));
            }
            opentelemetry::trace::Span::end_with_timestamp(&mut span, finished);
        });
    }

    fn trace_id(&self) -> Option<[u8; 16]> {
        current_trace_id()
    }

    fn outgoing_headers(&self, headers: &mut Vec<(&'static str, String)>) {
        outgoing_headers(headers);
    }
}

/// `traceparent` (and `tracestate`) for an outgoing call made inside the
/// current traced request.
pub fn outgoing_headers(headers: &mut Vec<(&'static str, String)>) {
    Context::map_current(|cx| {
        let span = cx.span();
        let context = span.span_context();
        if !context.is_valid() {
            return;
        }
        headers.push((
            "traceparent",
            format!(
                "00-{}-{}-{:02x}",
                context.trace_id(),
                context.span_id(),
                context.trace_flags().to_u8()
            ),
        ));
        let state = context.trace_state().header();
        if !state.is_empty() {
            headers.push(("tracestate", state));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentry_trace_header_becomes_a_remote_parent() {
        let cx = context_from_sentry_trace("771a43a4192642f0b136d5159a501700-b7ad6b7169203331-0")
            .expect("valid header");
        let span = cx.span();
        let context = span.span_context();
        assert_eq!(
            context.trace_id().to_string(),
            "771a43a4192642f0b136d5159a501700"
        );
        assert_eq!(context.span_id().to_string(), "b7ad6b7169203331");
        assert!(context.is_remote());
        assert!(!context.is_sampled());
        let sampled =
            context_from_sentry_trace("771a43a4192642f0b136d5159a501700-b7ad6b7169203331")
                .expect("valid header");
        assert!(sampled.span().span_context().is_sampled());
        assert!(context_from_sentry_trace("nonsense").is_none());
        assert!(
            context_from_sentry_trace("00000000000000000000000000000000-b7ad6b7169203331")
                .is_none()
        );
    }

    #[test]
    fn outgoing_headers_carry_the_current_span() {
        let context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let _attached = Context::new().with_remote_span_context(context).attach();
        let mut headers = Vec::new();
        outgoing_headers(&mut headers);
        assert_eq!(
            headers,
            vec![(
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()
            )]
        );
        assert_eq!(
            current_trace_id(),
            Some(
                TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736")
                    .expect("hex")
                    .to_bytes()
            )
        );
    }
}
