//! Per-request cost of the metrics middleware, and of one histogram
//! observation (perfscope's lock-free histogram beside prometheus-client's).
//!
//!     cargo bench --bench middleware

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use poem::{Endpoint, EndpointExt, Request, Route, get, handler};
use prometheus_client::metrics::histogram::Histogram;

use perfscope::metrics::{AtomicHistogram, Buckets};

#[handler]
fn hello() -> &'static str {
    "hello"
}

fn middleware(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    let bare = Route::new().at("/users/:id", get(hello));
    let instrumented = Route::new()
        .at("/users/:id", get(hello))
        .with(perfscope.middleware());
    let request = || Request::builder().uri_str("/users/42").finish();

    let mut group = c.benchmark_group("request");
    group.bench_function("bare", |b| {
        b.iter(|| runtime.block_on(async { black_box(bare.call(request()).await) }))
    });
    group.bench_function("with perfscope middleware", |b| {
        b.iter(|| runtime.block_on(async { black_box(instrumented.call(request()).await) }))
    });
    group.finish();
}

fn observation(c: &mut Criterion) {
    let ours = AtomicHistogram::new(Buckets::default_http());
    let theirs = Histogram::new(Buckets::HTTP_DEFAULT.iter().copied());
    let mut group = c.benchmark_group("histogram observe");
    group.bench_function("perfscope AtomicHistogram", |b| {
        b.iter(|| ours.observe(black_box(0.042)))
    });
    group.bench_function("prometheus-client Histogram", |b| {
        b.iter(|| theirs.observe(black_box(0.042)))
    });
    group.finish();
}

fn clock(c: &mut Criterion) {
    c.bench_function("Instant::now", |b| {
        b.iter(|| black_box(std::time::Instant::now()))
    });
}

criterion_group!(benches, middleware, observation, clock);
criterion_main!(benches);
