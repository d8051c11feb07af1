//! The service `bench/http-overhead` loads: one trivial endpoint, served
//! either bare or with perfscope's HTTP metrics middleware and runtime
//! monitoring on, so the two differ only by perfscope.
//!
//! Usage: bench_server <bare|instrumented> <port>

use poem::listener::TcpListener;
use poem::{EndpointExt, Route, Server, get, handler};

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[handler]
fn hello() -> &'static str {
    "hello"
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
            _ => Server::new(listener).run(routes).await,
        }
    })
}
