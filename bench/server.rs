//! The service `bench/http-overhead` loads: one trivial endpoint, served
//! bare, with perfscope's HTTP metrics middleware and runtime monitoring on
//! (`instrumented`), or with Sentry and OpenTelemetry too (`full`: every
//! request a Sentry transaction, sample rate 1.0, and an OTLP server span,
//! all sent to a local receiver) — so they differ only by perfscope.
//! `receiver` is that receiver: it answers 200 to every Sentry envelope and
//! every OTLP/HTTP export.
//!
//! Usage: bench_server <bare|instrumented|full|receiver> <port> [receiver port]

use poem::listener::TcpListener;
use poem::{EndpointExt, Route, Server, get, handler, post};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[handler]
fn hello() -> &'static str {
    "hello"
}

#[handler]
fn envelope(_body: Vec<u8>) -> &'static str {
    "{}"
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
                let config = perfscope::Config {
                    telemetry: perfscope::config::TelemetryConfig {
                        sentry,
                        // BENCH_OTLP=0 leaves OpenTelemetry off.
                        otlp: (std::env::var("BENCH_OTLP").as_deref() != Ok("0")).then(|| {
                            perfscope::config::OtlpConfig::new(
                                format!("http://127.0.0.1:{receiver}/v1/traces"),
                                perfscope::config::OtlpProtocol::HttpProtobuf,
                            )
                        }),
                        resource: perfscope::config::ServiceResource::default(),
                        trace_url: None,
                    },
                    ..perfscope::Config::default()
                };
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
            "receiver" => {
                Server::new(listener)
                    .run(
                        Route::new()
                            .at("/api/1/envelope/", post(envelope))
                            .at("/v1/traces", post(traces)),
                    )
                    .await
            }
            _ => Server::new(listener).run(routes).await,
        }
    })
}
