//! The export thread's work per span, from a batch in hand to the bytes of
//! its `ExportTraceServiceRequest` (the batch dropped after): 512 spans as
//! perfscope's requests make them (a server span and its two query spans,
//! with their usual attributes and normalized SQL), through the old path
//! (opentelemetry-proto's conversion into message structs, then prost, as
//! opentelemetry-otlp's exporter did) and through perfscope's encoder
//! (`src/telemetry/otlp/encode.rs`), and the encoder plus gzip. Each
//! iteration gets a fresh copy of the batch, made outside the timing.
//!
//!     CARGO_TARGET_DIR=/tmp/bench-target cargo bench --no-default-features \
//!       --features otlp --bench otlp_export

use std::borrow::Cow;
use std::hint::black_box;
use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use perfscope::telemetry::otlp::encode::SpanEncoder;
use prost::Message;

const BATCH: usize = 512;

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder("perfscope")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// Request `i`'s server span and its two queries.
fn request(i: u64) -> [SpanData; 3] {
    let trace = TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736 ^ (u128::from(i) << 64));
    let server_id = SpanId::from(0x00f0_67aa_0ba9_02b7 ^ i);
    let start = UNIX_EPOCH + Duration::from_nanos(1_764_383_018_112_000_000 + i * 50_000);
    let context = |id| SpanContext::new(trace, id, TraceFlags::SAMPLED, false, TraceState::NONE);
    let server = SpanData {
        span_context: context(server_id),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Owned("GET /users/:id/orders".to_owned()),
        start_time: start,
        end_time: start + Duration::from_micros(840),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/users/:id/orders"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("url.scheme", "https"),
            KeyValue::new("network.protocol.version", "1.1"),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: scope(),
    };
    let query = |n: u64, name: &str, table: &str, text: &str| SpanData {
        span_context: context(SpanId::from(0x1111_2222_3333_4444 ^ (i << 2) ^ n)),
        parent_span_id: server_id,
        span_kind: SpanKind::Client,
        name: Cow::Owned(name.to_owned()),
        start_time: start + Duration::from_micros(100 * n),
        end_time: start + Duration::from_micros(100 * n + 250),
        attributes: vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.system", "postgresql"),
            KeyValue::new("db.operation.name", "SELECT"),
            KeyValue::new("db.collection.name", table.to_owned()),
            KeyValue::new("db.query.text", text.to_owned()),
        ],
        ..server.clone()
    };
    [
        query(
            1,
            "SELECT users",
            "users",
            "SELECT id, name, email FROM users WHERE id = $1",
        ),
        query(
            2,
            "SELECT orders",
            "orders",
            "SELECT id, total, created_at FROM orders WHERE user_id = $1 ORDER BY created_at DESC LIMIT $2",
        ),
        server.clone(),
    ]
}

fn batch() -> Vec<SpanData> {
    (0..).flat_map(request).take(BATCH).collect()
}

fn export(c: &mut Criterion) {
    let resource = Resource::builder().with_service_name("shop").build();
    let spans = batch();
    let mut group = c.benchmark_group("otlp_export_512_spans");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("dropping the batch alone (both paths pay it)", |b| {
        b.iter_batched(|| spans.clone(), drop, BatchSize::LargeInput);
    });
    group.bench_function("opentelemetry-proto conversion + prost", |b| {
        let with_schema = ResourceAttributesWithSchema::from(&resource);
        b.iter_batched(
            || spans.clone(),
            |batch| {
                let request = ExportTraceServiceRequest {
                    resource_spans: group_spans_by_resource_and_scope(batch, &with_schema),
                };
                black_box(request.encode_to_vec())
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("perfscope encoder", |b| {
        let mut encoder = SpanEncoder::new(&resource);
        b.iter_batched(
            || spans.clone(),
            |batch| {
                black_box(encoder.encode(&batch).len());
                drop(batch);
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function(
        "perfscope encoder, one batch again and again (warm caches)",
        |b| {
            let mut encoder = SpanEncoder::new(&resource);
            b.iter(|| black_box(encoder.encode(&spans).len()));
        },
    );
    group.bench_function("perfscope encoder + gzip", |b| {
        let mut encoder = SpanEncoder::new(&resource);
        b.iter_batched(
            || spans.clone(),
            |batch| {
                let bytes = encoder.encode(&batch);
                let mut gzip = flate2::write::GzEncoder::new(
                    Vec::with_capacity(bytes.len() / 4),
                    flate2::Compression::default(),
                );
                let _ = gzip.write_all(bytes);
                black_box(gzip.finish().map(|v| v.len()).unwrap_or(0));
                drop(batch);
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
    let bytes = SpanEncoder::new(&resource).encode(&spans).len();
    println!(
        "one batch: {BATCH} spans, {bytes} bytes ({} a span)",
        bytes / BATCH
    );
}

criterion_group!(benches, export);
criterion_main!(benches);
