//! The service `bench/http-overhead` loads: one trivial endpoint, served
//! bare, with perfscope's HTTP metrics middleware and runtime monitoring on
//! (`instrumented`), or with Sentry and OpenTelemetry too (`full`: every
//! request a Sentry transaction, sample rate 1.0, and an OTLP server span,
//! all sent to a local receiver) — so they differ only by perfscope.
//! `receiver` is that receiver: it answers 200 to every Sentry envelope and
//! every OTLP/HTTP export, and counts them (`GET /count`: envelopes and
//! transactions received).
//!
//! Two modes put Sentry alone side by side with the stock SDK: `sentry`
//! (metrics + perfscope's Sentry, transport included, at
//! `BENCH_SENTRY_RATE`) and `stock-sentry` (metrics + sentry-tower's
//! `NewSentryLayer` and `SentryHttpLayer` with the `sentry` crate's own
//! reqwest transport, at 1.0: built with the `bench-stock-sentry` feature,
//! see `stock.rs`).
//!
//! Usage: bench_server <bare|instrumented|full|sentry|stock-sentry|receiver> <port> [receiver port]

#[cfg(feature = "bench-stock-sentry")]
#[path = "stock.rs"]
mod stock;

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

/// `<envelopes> <transactions>` received so far.
#[handler]
fn count(received: poem::web::Data<&Arc<Received>>) -> String {
    format!(
        "{} {}",
        received.envelopes.load(Ordering::Relaxed),
        received.transactions.load(Ordering::Relaxed)
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

/// An empty `ExportTraceServiceResponse` (all fields default).
#[handler]
fn traces(_body: Vec<u8>) -> poem::Response {
    poem::Response::builder()
        .content_type("application/x-protobuf")
        .body(Vec::<u8>::new())
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
        match mode.as_str() {
            "instrumented" => {
                let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
                let cancel = tokio_util::sync::CancellationToken::new();
                let _monitors = perfscope.start(&cancel);
                Server::new(listener)
                    .run(routes.with(perfscope.middleware()))
                    .await
            }
            "full" => {
                let receiver = args.next().unwrap_or_else(|| "18089".into());
                // BENCH_OTLP=0 leaves OpenTelemetry off.
                let config =
                    sentry_config(&receiver, std::env::var("BENCH_OTLP").as_deref() != Ok("0"));
                let perfscope = perfscope::Perfscope::new(config);
                let cancel = tokio_util::sync::CancellationToken::new();
                let _monitors = perfscope.start(&cancel);
                let exposition = perfscope.clone();
                let metrics = poem::endpoint::make_sync(move |_| {
                    exposition.encode_metrics().unwrap_or_default()
                });
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics))
                            .with(perfscope.middleware())
                            .with(perfscope.sentry_middleware())
                            .with(perfscope.otel_middleware()),
                    )
                    .await
            }
            "sentry" => {
                let receiver = args.next().unwrap_or_else(|| "18089".into());
                let perfscope = perfscope::Perfscope::new(sentry_config(&receiver, false));
                let cancel = tokio_util::sync::CancellationToken::new();
                let _monitors = perfscope.start(&cancel);
                let exposition = perfscope.clone();
                let metrics = poem::endpoint::make_sync(move |_| {
                    exposition.encode_metrics().unwrap_or_default()
                });
                Server::new(listener)
                    .run(
                        routes
                            .at("/metrics", get(metrics))
                            .with(perfscope.middleware())
                            .with(perfscope.sentry_middleware()),
                    )
                    .await
            }
            #[cfg(feature = "bench-stock-sentry")]
            "stock-sentry" => {
                let receiver = args.next().unwrap_or_else(|| "18089".into());
                let _sentry = stock::init(&receiver);
                let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
                let cancel = tokio_util::sync::CancellationToken::new();
                let _monitors = perfscope.start(&cancel);
                Server::new(listener)
                    .run(routes.with(perfscope.middleware()).with(stock::StockSentry))
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
            _ => Server::new(listener).run(routes).await,
        }
    })
}
