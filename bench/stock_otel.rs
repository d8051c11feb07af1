//! The stock equivalent of perfscope's OTLP spans, for `bench_server
//! stock-otel`: what a Poem user wires up without perfscope — Poem's own
//! `poem::middleware::OpenTelemetryTracing` around the app, a tracer from
//! the OpenTelemetry SDK's provider with its stock `BatchSpanProcessor`
//! (its own thread, default queue and batch sizes) and opentelemetry-otlp's
//! HTTP/protobuf exporter (reqwest's blocking client), every span sampled,
//! and the W3C propagator Poem's middleware reads `traceparent` with.
//!
//! Poem 3.1's middleware is built on OpenTelemetry 0.30, so this file uses
//! 0.30 under other names (`opentelemetry_030` and its SDK and exporter,
//! feature `bench-stock-otel`); perfscope itself is on 0.33 and never sees
//! them.

use opentelemetry_030 as opentelemetry;
use opentelemetry_otlp_030 as opentelemetry_otlp;
use opentelemetry_sdk_030 as opentelemetry_sdk;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};

/// The provider (kept for the life of the server: dropping it shuts the
/// batch processor down) and the tracer Poem's middleware takes, exporting
/// to the receiver at `port`.
pub fn init(port: &str) -> std::io::Result<(SdkTracerProvider, SdkTracer)> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
        .build()
        .map_err(std::io::Error::other)?;
    let provider = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOn)
        .with_batch_exporter(exporter)
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("bench_server");
    Ok((provider, tracer))
}
