//! The service `bench/axum-overhead` loads: one trivial axum route, `GET
//! /users/{id}`, served bare, with perfscope's `axum_layer()` (and
//! `perfscope.start()` running its runtime monitors, as a real app does),
//! or with `axum-prometheus`'s layer configured as its README says (the
//! `pair()` and a `/metrics` route), so the three differ only by the
//! middleware. Each runs on one worker thread, the same runtime for all.
//!
//! Two more modes take pieces away to see what they cost (not part of the
//! default run): `perfscope-static` names the route from a template built
//! once (no `Arc<str>` allocated per request, through `tower_layer`; it
//! names every routed request `/users/{id}`, so it is for measuring only) and
//! `perfscope-unmonitored` leaves `perfscope.start()` out.
//!
//! Usage: axum_bench_server <bare|perfscope|axum-prometheus|perfscope-static|perfscope-unmonitored> <port>

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Path};
use axum::routing::get;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

async fn user(Path(_id): Path<String>) -> &'static str {
    "hello"
}

/// The route every mode serves.
fn routes() -> Router {
    Router::new().route("/users/{id}", get(user))
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "bare".into());
    let port = args.next().unwrap_or_else(|| "18281".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
        let cancel = tokio_util::sync::CancellationToken::new();
        let mut monitors = None;
        let app = match mode.as_str() {
            "perfscope" | "perfscope-static" | "perfscope-unmonitored" => {
                let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
                if mode != "perfscope-unmonitored" {
                    // The monitors run while the server does.
                    monitors = Some(perfscope.start(&cancel));
                }
                let layer = if mode == "perfscope-static" {
                    let template: Arc<str> = Arc::from("/users/{id}");
                    perfscope.tower_layer(move |parts| {
                        parts
                            .extensions
                            .get::<MatchedPath>()
                            .map(|_| template.clone())
                    })
                } else {
                    perfscope.axum_layer()
                };
                let exposition = perfscope.clone();
                routes()
                    .route(
                        "/metrics",
                        get(move || async move { exposition.encode_metrics().unwrap_or_default() }),
                    )
                    .layer(layer)
            }
            "axum-prometheus" => {
                let (layer, handle) = axum_prometheus::PrometheusMetricLayer::pair();
                routes()
                    .route("/metrics", get(move || async move { handle.render() }))
                    .layer(layer)
            }
            _ => routes(),
        };
        let served = axum::serve(listener, app).await;
        drop(monitors);
        served
    })
}
