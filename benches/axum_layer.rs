//! Per-request cost of perfscope's axum layer beside axum-prometheus's, in
//! process and on one thread (the response body read to its end, as a
//! server would), so the figure is not lost in the socket and
//! load-generator noise `bench/axum-overhead` sees on a shared machine:
//! the same `GET /users/{id}` route bare, with `perfscope.axum_layer()`,
//! with a `tower_layer` that names the route from a template built once (no
//! `Arc<str>` allocated per request: what that allocation costs), and with
//! axum-prometheus's layer as its README sets it up.
//!
//!     cargo bench --features axum --bench axum_layer

use std::hint::black_box;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Path};
use axum::http::Request;
use axum::routing::get;
use criterion::{Criterion, criterion_group, criterion_main};
use tower::Service;

async fn user(Path(_id): Path<String>) -> &'static str {
    "hello"
}

fn routes() -> Router {
    Router::new().route("/users/{id}", get(user))
}

fn request() -> Request<Body> {
    Request::get("/users/42")
        .body(Body::empty())
        .expect("a valid request")
}

fn axum_layers(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    let template: Arc<str> = Arc::from("/users/{id}");
    let static_layer = perfscope.tower_layer(move |parts| {
        parts
            .extensions
            .get::<MatchedPath>()
            .map(|_| template.clone())
    });
    // pair() spawns its upkeep task: it needs the runtime entered.
    let (prometheus, _handle) =
        runtime.block_on(async { axum_prometheus::PrometheusMetricLayer::pair() });
    let apps = [
        ("bare", routes()),
        (
            "perfscope axum_layer",
            routes().layer(perfscope.axum_layer()),
        ),
        (
            "perfscope, template built once",
            routes().layer(static_layer),
        ),
        ("axum-prometheus", routes().layer(prometheus)),
    ];
    let mut group = c.benchmark_group("axum");
    for (name, mut app) in apps {
        group.bench_function(name, |b| {
            b.iter(|| {
                runtime.block_on(async {
                    let response = app.call(request()).await.expect("infallible");
                    // Read the body as a server would: a layer's body
                    // wrapper costs there.
                    black_box(axum::body::to_bytes(response.into_body(), 64).await)
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, axum_layers);
criterion_main!(benches);
