//! Per-request cost of the metrics middleware, of the OpenTelemetry server
//! span on top of it (sampled, and a caller's unsampled trace; spans go to
//! a closed local port, so they are exported — and dropped — off the
//! request path), of one histogram observation (perfscope's lock-free
//! histogram beside prometheus-client's), and of one quantile-sketch
//! observation (alone, and through the route series' capped map).
//!
//!     cargo bench --bench middleware

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use poem::{Endpoint, EndpointExt, Request, Route, get, handler};
use prometheus_client::metrics::histogram::Histogram;

use perfscope::metrics::{AtomicHistogram, AtomicSketch, Buckets, SketchMap};

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

#[cfg(feature = "otlp")]
fn tracing(c: &mut Criterion) {
    use perfscope::config::{OtlpConfig, OtlpProtocol};
    use perfscope::telemetry::otlp::{OtlpSlot, init};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    let slot = std::sync::Arc::new(OtlpSlot::default());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}/v1/traces", closed.local_addr().expect("addr"));
    drop(closed);
    let _guard = runtime.block_on(async {
        init(
            &OtlpConfig::new(endpoint, OtlpProtocol::HttpProtobuf),
            slot.clone(),
            Default::default(),
        )
        .expect("OTLP starts")
    });
    let traced = Route::new()
        .at("/users/:id", get(hello))
        .with(perfscope.middleware())
        .with(perfscope::http::otel::OtelTracing::new(slot));
    let mut group = c.benchmark_group("request");
    group.bench_function("with perfscope middleware and an OTel span", |b| {
        b.iter(|| {
            runtime.block_on(async {
                black_box(
                    traced
                        .call(Request::builder().uri_str("/users/42").finish())
                        .await,
                )
            })
        })
    });
    let unsampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    group.bench_function(
        "with perfscope middleware, OTel on, caller unsampled",
        |b| {
            b.iter(|| {
                runtime.block_on(async {
                    black_box(
                        traced
                            .call(
                                Request::builder()
                                    .uri_str("/users/42")
                                    .header("traceparent", unsampled)
                                    .finish(),
                            )
                            .await,
                    )
                })
            })
        },
    );
    group.finish();
}

#[cfg(not(feature = "otlp"))]
fn tracing(_: &mut Criterion) {}

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

fn sketch(c: &mut Criterion) {
    let sketch = AtomicSketch::default();
    let map: SketchMap<(u8, std::sync::Arc<str>)> = SketchMap::new(512, None);
    let key = (0u8, std::sync::Arc::<str>::from("/users/:id"));
    map.observe(&key, 0.042);
    let mut group = c.benchmark_group("sketch observe");
    group.bench_function("perfscope AtomicSketch", |b| {
        b.iter(|| sketch.observe(black_box(0.042)))
    });
    group.bench_function("perfscope SketchMap (lookup and observe)", |b| {
        b.iter(|| map.observe(black_box(&key), black_box(0.042)))
    });
    group.finish();
}

fn clock(c: &mut Criterion) {
    c.bench_function("Instant::now", |b| {
        b.iter(|| black_box(std::time::Instant::now()))
    });
}

criterion_group!(benches, middleware, tracing, observation, sketch, clock);
criterion_main!(benches);
