//! The service `bench/http-overhead` loads: one trivial endpoint, served
//! bare, with perfscope's HTTP metrics middleware and runtime monitoring on
//! (`instrumented`), or with Sentry and OpenTelemetry too (`full`: every
//! request a Sentry transaction, sample rate 1.0, and an OTLP server span,
//! all sent to a local receiver) — so they differ only by perfscope.
//! `receiver` is that receiver: it answers 200 to every Sentry envelope and
//! every OTLP/HTTP export, and counts them (`GET /count`: envelopes,
//! transactions and spans received; each export body is decoded as an
//! `ExportTraceServiceRequest`, gzip or not, and its spans counted).
//!
//! The parts of `full` alone, each beside the stock equivalent a Poem user
//! would wire up: `otlp` (metrics + perfscope's OTLP/HTTP spans at 1.0) and
//! `stock-otel` (metrics + Poem's `OpenTelemetryTracing` with the SDK's
//! stock batch processor and OTLP/HTTP exporter at 1.0: feature
//! `bench-stock-otel`, see `stock_otel.rs`); `sentry` (metrics +
//! perfscope's Sentry, transport included, at `BENCH_SENTRY_RATE`) and
//! `stock-sentry` (metrics + sentry-tower's `NewSentryLayer` and
//! `SentryHttpLayer` with the `sentry` crate's own reqwest transport, at
//! 1.0: feature `bench-stock-sentry`, see `stock.rs`).
//!
//! Every mode but `bare` serves perfscope's `/metrics` too, so the script
//! reads the requests served and perfscope's dropped counters.
//!
//! Usage: bench_server <bare|instrumented|full|otlp|sentry|stock-otel|stock-sentry|receiver> <port> [receiver port]

#[cfg(feature = "bench-stock-sentry")]
#[path = "stock.rs"]
mod stock;
#[cfg(feature = "bench-stock-otel")]
#[path = "stock_otel.rs"]
mod stock_otel;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use poem::listener::TcpListener;
use poem::{EndpointExt, Route, Server, get, handler, post};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[handler]
fn hello() -> &'static str {
    "hello"
}

/// What the receiver got.
#[derive(Default)]
struct Received {
    envelopes: AtomicU64,
    transactions: AtomicU64,
    spans: AtomicU64,
}

#[handler]
fn envelope(body: Vec<u8>, received: poem::web::Data<&Arc<Received>>) -> &'static str {
    received.envelopes.fetch_add(1, Ordering::Relaxed);
    let item = b"\"type\":\"transaction\"";
    if body.windows(item.len()).any(|w| w == item) {
        received.transactions.fetch_add(1, Ordering::Relaxed);
    }
    "{}"
}

/// `<envelopes> <transactions> <spans>` received so far.
#[handler]
fn count(received: poem::web::Data<&Arc<Received>>) -> String {
    format!(
        "{} {} {}",
        received.envelopes.load(Ordering::Relaxed),
        received.transactions.load(Ordering::Relaxed),
        received.spans.load(Ordering::Relaxed)
    )
}

/// perfscope with its Sentry at `BENCH_SENTRY_RATE` (1.0) to the receiver
/// at `receiver`, and OTLP too when `otlp`.
fn sentry_config(receiver: &str, otlp: bool) -> perfscope::Config {
    let sentry = perfscope::config::SentryConfig {
        dsn: Some(perfscope::config::Secret::new(format!(
            "http://public@127.0.0.1:{receiver}/1"
        ))),
        // BENCH_SENTRY_RATE: the transaction sample rate [1.0].
        traces_sample_rate: std::env::var("BENCH_SENTRY_RATE")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(1.0),
        ..Default::default()
    };
    perfscope::Config {
        telemetry: perfscope::config::TelemetryConfig {
            sentry,
            otlp: otlp.then(|| {
                perfscope::config::OtlpConfig::new(
                    format!("http://127.0.0.1:{receiver}/v1/traces"),
                    perfscope::config::OtlpProtocol::HttpProtobuf,
                )
            }),
            resource: perfscope::config::ServiceResource::default(),
            trace_url: None,
        },
        ..perfscope::Config::default()
    }
}

/// perfscope with its OTLP/HTTP spans alone (every request sampled, the
/// SDK's default sampler) to the receiver at `receiver`.
fn otlp_config(receiver: &str) -> perfscope::Config {
    let mut config = sentry_config(receiver, true);
    config.telemetry.sentry = perfscope::config::SentryConfig::default();
    config
}

/// An empty `ExportTraceServiceResponse` (all fields default), after
/// counting the export's spans; a body that does not decode counts none.
#[handler]
fn traces(
    request: &poem::Request,
    body: Vec<u8>,
    received: poem::web::Data<&Arc<Received>>,
) -> poem::Response {
    let gzip = request
        .headers()
        .get("content-encoding")
        .is_some_and(|encoding| encoding.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let spans = if gzip {
        let mut plain = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(body.as_slice()),
            &mut plain,
        )
        .map_or(0, |_| spans_in(&plain))
    } else {
        spans_in(&body)
    };
    received.spans.fetch_add(spans, Ordering::Relaxed);
    poem::Response::builder()
        .content_type("application/x-protobuf")
        .body(Vec::<u8>::new())
}

/// The spans of one OTLP/HTTP export body (0 if it does not decode).
fn spans_in(body: &[u8]) -> u64 {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    ExportTraceServiceRequest::decode(body).map_or(0, |request| {
        request
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len() as u64)
            .sum()
    })
}

/// perfscope's `/metrics` exposition, for the script's counts.
fn metrics(perfscope: &perfscope::Perfscope) -> impl poem::Endpoint + use<> {
    let exposition = perfscope.clone();
    poem::endpoint::make_sync(move |_| exposition.encode_metrics().unwrap_or_default())
}

/// perfscope with `config`, and its monitors started (they run while the
/// tasks are held).
fn started(config: perfscope::Config) -> (perfscope::Perfscope, perfscope::BackgroundTasks) {
    let perfscope = perfscope::Perfscope::new(config);
    let monitors = perfscope.start(&tokio_util::sync::CancellationToken::new());
    (perfscope, monitors)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "bare".into());
    let port = args.next().unwrap_or_else(|| "18081".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(format!("127.0.0.1:{port}"));
        let routes = Route::new().at("/hello/:name", get(hello));
        let receiver = args.next().unwrap_or_else(|| "18089".into());
        match mode.as_str() {
            "instrumented" => {
                let (perfscope, _monitors) = started(perfscope::Config::default());
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics(&perfscope)))
                            .with(perfscope.middleware()),
                    )
                    .await
            }
            "full" => {
                // BENCH_OTLP=0 leaves OpenTelemetry off.
                let otlp = std::env::var("BENCH_OTLP").as_deref() != Ok("0");
                let (perfscope, _monitors) = started(sentry_config(&receiver, otlp));
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics(&perfscope)))
                            .with(perfscope.middleware())
                            .with(perfscope.sentry_middleware())
                            .with(perfscope.otel_middleware()),
                    )
                    .await
            }
            "otlp" => {
                let (perfscope, _monitors) = started(otlp_config(&receiver));
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics(&perfscope)))
                            .with(perfscope.middleware())
                            .with(perfscope.otel_middleware()),
                    )
                    .await
            }
            "sentry" => {
                let (perfscope, _monitors) = started(sentry_config(&receiver, false));
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics(&perfscope)))
                            .with(perfscope.middleware())
                            .with(perfscope.sentry_middleware()),
                    )
                    .await
            }
            #[cfg(feature = "bench-stock-otel")]
            "stock-otel" => {
                let (_provider, tracer) = stock_otel::init(&receiver)?;
                let (perfscope, _monitors) = started(perfscope::Config::default());
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics(&perfscope)))
                            .with(perfscope.middleware())
                            .with(poem::middleware::OpenTelemetryTracing::new(tracer)),
                    )
                    .await
            }
            #[cfg(feature = "bench-stock-sentry")]
            "stock-sentry" => {
                let _sentry = stock::init(&receiver);
                let (perfscope, _monitors) = started(perfscope::Config::default());
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics(&perfscope)))
                            .with(perfscope.middleware())
                            .with(stock::StockSentry),
                    )
                    .await
            }
            "receiver" => {
                Server::new(listener)
                    .run(
                        Route::new()
                            .at("/api/1/envelope/", post(envelope))
                            .at("/v1/traces", post(traces))
                            .at("/count", get(count))
                            .data(Arc::new(Received::default())),
                    )
                    .await
            }
            "bare" => Server::new(listener).run(routes).await,
            other => Err(std::io::Error::other(format!(
                "unknown mode {other} (or its bench-stock-* feature is off)"
            ))),
        }
    })
}
