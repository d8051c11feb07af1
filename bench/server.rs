//! The service `bench/http-overhead` loads: one trivial endpoint, served
//! bare, with perfscope's HTTP metrics middleware and runtime monitoring on
//! (`instrumented`), or with Sentry too (`full`: every request a
//! transaction, sample rate 1.0, sent to a local receiver) — so they differ
//! only by perfscope. `receiver` is that Sentry receiver: it answers 200 to
//! every envelope.
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
                let config = perfscope::Config {
                    sentry_dsn: Some(perfscope::config::Secret::new(format!(
                        "http://public@127.0.0.1:{receiver}/1"
                    ))),
                    // BENCH_SENTRY_RATE: the transaction sample rate [1.0].
                    sentry_traces_sample_rate: std::env::var("BENCH_SENTRY_RATE")
                        .ok()
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(1.0),
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
                            .with(perfscope.sentry_middleware()),
                    )
                    .await
            }
            "receiver" => {
                Server::new(listener)
                    .run(Route::new().at("/api/1/envelope/", post(envelope)))
                    .await
            }
            _ => Server::new(listener).run(routes).await,
        }
    })
}
