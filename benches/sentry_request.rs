//! Per-request cost of a Sentry transaction at sample rate 1.0, on the
//! request path only: perfscope's bridge beside sentry-tower's
//! `NewSentryLayer` + `SentryHttpLayer` wired onto Poem as a user would
//! (`bench/stock.rs`, the same code `bench_server stock-sentry` serves),
//! both over the metrics middleware and the same client, whose transport
//! (perfscope's, to a closed local port) drops off the request path. The
//! goal (issue 21): perfscope's at most half of sentry-tower's.
//!
//!     cargo bench --features sentry --bench sentry_request

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use poem::{Endpoint, EndpointExt, Request, Route, get, handler};

#[allow(dead_code)]
#[path = "../bench/stock.rs"]
mod stock;

#[handler]
fn hello() -> &'static str {
    "hello"
}

fn sentry_request(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dsn = format!("http://public@{}/1", closed.local_addr().expect("addr"));
    drop(closed);
    let config = perfscope::config::SentryConfig {
        dsn: Some(perfscope::config::Secret::new(dsn)),
        traces_sample_rate: 1.0,
        ..Default::default()
    };
    let drops = perfscope::telemetry::sentry::SentryDrops {
        dropped: Default::default(),
        rate_limited: Default::default(),
    };
    let _sentry = perfscope::telemetry::sentry::init(&config, drops).expect("Sentry starts");
    let perfscope = perfscope::Perfscope::new(perfscope::Config {
        telemetry: perfscope::config::TelemetryConfig {
            sentry: config,
            ..Default::default()
        },
        ..Default::default()
    });
    let routes = || Route::new().at("/users/:id", get(hello));
    let metrics = routes().with(perfscope.middleware());
    let ours = routes()
        .with(perfscope.middleware())
        .with(perfscope.sentry_middleware());
    let stock = routes()
        .with(perfscope.middleware())
        .with(stock::StockSentry);
    let request = || Request::builder().uri_str("/users/42").finish();

    let mut group = c.benchmark_group("sentry request");
    group.bench_function("metrics only", |b| {
        b.iter(|| runtime.block_on(async { black_box(metrics.call(request()).await) }))
    });
    group.bench_function("metrics + perfscope Sentry 1.0", |b| {
        b.iter(|| runtime.block_on(async { black_box(ours.call(request()).await) }))
    });
    group.bench_function("metrics + sentry-tower layers 1.0", |b| {
        b.iter(|| runtime.block_on(async { black_box(stock.call(request()).await) }))
    });
    group.finish();
}

criterion_group!(benches, sentry_request);
criterion_main!(benches);
