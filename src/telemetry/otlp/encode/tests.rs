//! The encoder against opentelemetry-proto's own conversion: the bytes
//! decode (prost) into the very request `group_spans_by_resource_and_scope`
//! builds from the same spans, field by field.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, KeyValue, StringValue, Value};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use prost::Message;

use super::{SpanEncoder, varint_len};

fn resource() -> Resource {
    Resource::builder_empty()
        .with_service_name("shop · café")
        .with_attribute(KeyValue::new("service.version", "1.2.3"))
        .with_attribute(KeyValue::new("host.cores", 2))
        .with_schema_url(
            [KeyValue::new("deployment.environment.name", "prod")],
            "https://opentelemetry.io/schemas/1.26.0",
        )
        .build()
}

fn perfscope_scope() -> InstrumentationScope {
    InstrumentationScope::builder("perfscope")
        .with_version("0.1.0")
        .build()
}

fn context(trace: u128, span: u64, flags: TraceFlags, remote: bool, state: &str) -> SpanContext {
    let state = if state.is_empty() {
        TraceState::NONE
    } else {
        state.parse().expect("valid tracestate")
    };
    SpanContext::new(
        TraceId::from(trace),
        SpanId::from(span),
        flags,
        remote,
        state,
    )
}

/// A server span with a query child's usual attributes.
fn server_span(i: u64) -> SpanData {
    let start = UNIX_EPOCH + Duration::from_nanos(1_764_383_018_112_000_000 + i * 1_000);
    SpanData {
        span_context: context(
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736 + u128::from(i),
            0x00f0_67aa_0ba9_02b7 + i,
            TraceFlags::SAMPLED,
            false,
            "",
        ),
        parent_span_id: SpanId::INVALID,
        parent_span_is_remote: false,
        span_kind: SpanKind::Server,
        name: Cow::Borrowed("GET /users/:id"),
        start_time: start,
        end_time: start + Duration::from_micros(420),
        attributes: vec![
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/users/:id"),
            KeyValue::new("http.response.status_code", 200),
            KeyValue::new("url.scheme", "http"),
            KeyValue::new("network.protocol.version", "1.1"),
        ],
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: Status::Unset,
        instrumentation_scope: perfscope_scope(),
    }
}

/// A query span, child of `server_span(i)`.
fn query_span(i: u64) -> SpanData {
    let parent = server_span(i);
    SpanData {
        span_context: context(
            0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736 + u128::from(i),
            0x1111_2222_3333_4444 + i,
            TraceFlags::SAMPLED,
            false,
            "",
        ),
        parent_span_id: parent.span_context.span_id(),
        span_kind: SpanKind::Client,
        name: Cow::Owned("SELECT orders".to_owned()),
        attributes: vec![
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.system", "postgresql"),
            KeyValue::new("db.operation.name", "SELECT"),
            KeyValue::new("db.collection.name", "orders"),
            KeyValue::new(
                "db.query.text",
                "SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY id LIMIT $2",
            ),
        ],
        ..parent
    }
}

/// Every kind of value and field a span can hold.
fn every_field_span() -> SpanData {
    let mut events = SpanEvents::default();
    events.events.push(Event::new(
        "exception",
        UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789),
        vec![
            KeyValue::new("exception.type", "ΔError"),
            KeyValue::new("exception.message", ""),
        ],
        2,
    ));
    events
        .events
        .push(Event::new("", UNIX_EPOCH, Vec::new(), 0));
    events.dropped_count = 7;
    let mut links = SpanLinks::default();
    links.links.push(Link::new(
        context(7, 9, TraceFlags::SAMPLED, true, "vendor=a,other=b-c"),
        vec![KeyValue::new("link.kind", "follows")],
        1,
    ));
    links.links.push(Link::new(
        context(8, 10, TraceFlags::default(), false, ""),
        Vec::new(),
        0,
    ));
    links.dropped_count = 3;
    SpanData {
        span_context: context(
            u128::MAX - 5,
            u64::MAX - 5,
            TraceFlags::SAMPLED,
            true,
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
        ),
        parent_span_id: SpanId::from(42),
        parent_span_is_remote: true,
        span_kind: SpanKind::Consumer,
        name: Cow::Borrowed("résumé ✓ 日本語"),
        // Before the epoch: written as 0, as opentelemetry-proto does.
        start_time: UNIX_EPOCH - Duration::from_secs(1),
        end_time: SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::MAX / 2),
        attributes: vec![
            KeyValue::new("text", "naïve ☕"),
            KeyValue::new("empty", ""),
            KeyValue::new("", "an empty key"),
            KeyValue::new("zero", 0),
            KeyValue::new("negative", -1),
            KeyValue::new("min", i64::MIN),
            KeyValue::new("max", i64::MAX),
            KeyValue::new("float", -1.5e300),
            KeyValue::new("float.zero", 0.0),
            KeyValue::new("true", true),
            KeyValue::new("false", false),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![0, -7, 300, i64::MIN]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![0.0, 2.5]))),
            KeyValue::new(
                "strings",
                Value::Array(Array::String(vec![
                    StringValue::from(""),
                    StringValue::from("ü"),
                ])),
            ),
            KeyValue::new("empty.array", Value::Array(Array::I64(Vec::new()))),
        ],
        dropped_attributes_count: 4,
        events,
        links,
        status: Status::error("boom: ünïcode"),
        instrumentation_scope: InstrumentationScope::builder("host-app")
            .with_version("9.9")
            .with_schema_url("https://opentelemetry.io/schemas/1.20.0")
            .with_attributes([KeyValue::new("scope.attr", 1)])
            .build(),
    }
}

/// What opentelemetry-proto's conversion makes of `spans`.
fn expected(spans: &[SpanData], resource: &Resource) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(
            spans.to_vec(),
            &ResourceAttributesWithSchema::from(resource),
        ),
    }
}

/// Encodes `spans` and checks the bytes decode into what
/// opentelemetry-proto's conversion gives, and are the bytes prost writes.
fn check(encoder: &mut SpanEncoder, spans: &[SpanData], resource: &Resource) {
    let bytes = encoder.encode(spans).to_vec();
    let decoded = ExportTraceServiceRequest::decode(bytes.as_slice()).expect("valid protobuf");
    let expected = expected(spans, resource);
    assert!(decoded == expected, "decoded differently: {decoded:#?}");
    // Fields in the same order as prost's: the very same bytes.
    let prost = expected.encode_to_vec();
    let differ = bytes.iter().zip(&prost).position(|(a, b)| a != b);
    assert!(
        bytes.len() == prost.len() && differ.is_none(),
        "{} bytes, prost {}, first difference at {differ:?}",
        bytes.len(),
        prost.len()
    );
}

#[test]
fn server_and_query_spans_encode_as_opentelemetry_proto_converts_them() {
    let resource = resource();
    let mut encoder = SpanEncoder::new(&resource);
    let spans: Vec<SpanData> = (0..4)
        .flat_map(|i| [query_span(i), server_span(i)])
        .collect();
    check(&mut encoder, &spans, &resource);
    let decoded = ExportTraceServiceRequest::decode(encoder.encode(&spans)).expect("valid");
    let scope_spans = &decoded.resource_spans[0].scope_spans;
    assert_eq!(scope_spans.len(), 1);
    assert_eq!(scope_spans[0].spans.len(), 8);
    let query = &scope_spans[0].spans[0];
    assert_eq!(query.name, "SELECT orders");
    assert_eq!(
        query.parent_span_id,
        server_span(0).span_context.span_id().to_bytes()
    );
    assert_eq!(query.flags, 0x101);
    let scope = scope_spans[0].scope.as_ref().expect("scope");
    assert_eq!(
        (scope.name.as_str(), scope.version.as_str()),
        ("perfscope", "0.1.0")
    );
}

#[test]
fn every_value_kind_events_links_and_an_error_status_encode_alike() {
    let resource = resource();
    let mut encoder = SpanEncoder::new(&resource);
    let mut ok = server_span(1);
    ok.status = Status::Ok;
    let spans = [every_field_span(), ok];
    check(&mut encoder, &spans, &resource);
    let decoded = ExportTraceServiceRequest::decode(encoder.encode(&spans)).expect("valid");
    let span = &decoded.resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.name, "résumé ✓ 日本語");
    assert_eq!(span.trace_state, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    assert_eq!(span.flags, 0x301);
    assert_eq!(span.start_time_unix_nano, 0);
    assert_eq!(span.events.len(), 2);
    assert_eq!(span.dropped_events_count, 7);
    assert_eq!(span.links[0].trace_state, "vendor=a,other=b-c");
    assert_eq!(span.links[0].flags, 0x301);
    assert_eq!(span.links[1].flags, 0x100);
    let status = span.status.as_ref().expect("status");
    assert_eq!((status.code, status.message.as_str()), (2, "boom: ünïcode"));
}

#[test]
fn spans_of_several_scopes_are_grouped_in_order_of_first_appearance() {
    let resource = resource();
    let mut encoder = SpanEncoder::new(&resource);
    let spans = [
        server_span(0),
        every_field_span(),
        query_span(0),
        every_field_span(),
        server_span(1),
    ];
    check(&mut encoder, &spans, &resource);
    let decoded = ExportTraceServiceRequest::decode(encoder.encode(&spans)).expect("valid");
    let scopes = &decoded.resource_spans[0].scope_spans;
    assert_eq!(scopes.len(), 2);
    assert_eq!(scopes[0].spans.len(), 3);
    assert_eq!(
        scopes[1].schema_url,
        "https://opentelemetry.io/schemas/1.20.0"
    );
}

#[test]
fn a_large_batch_with_long_values_encodes_alike_and_the_buffer_is_reused() {
    let resource = resource();
    let mut encoder = SpanEncoder::new(&resource);
    let long = "x".repeat(300_000);
    let mut spans: Vec<SpanData> = (0..2048).map(query_span).collect();
    spans[17]
        .attributes
        .push(KeyValue::new("long", long.clone()));
    spans[18].name = Cow::Owned(long);
    check(&mut encoder, &spans, &resource);
    let capacity = encoder.buffer.capacity();
    // A smaller batch after: the same bytes as a fresh encoder's, in the
    // same buffer.
    let small: Vec<SpanData> = (0..3).map(server_span).collect();
    check(&mut encoder, &small, &resource);
    assert_eq!(encoder.buffer.capacity(), capacity);
    assert_eq!(
        encoder.encode(&small),
        SpanEncoder::new(&resource).encode(&small)
    );
}

#[test]
fn an_empty_resource_and_an_empty_batch() {
    let empty = Resource::builder_empty().build();
    let mut encoder = SpanEncoder::new(&empty);
    check(&mut encoder, &[server_span(3)], &empty);
    assert!(encoder.encode(&[]).is_empty());
}

#[test]
fn varint_lengths() {
    for (value, len) in [
        (0u64, 1),
        (127, 1),
        (128, 2),
        (16_383, 2),
        (16_384, 3),
        (u64::from(u32::MAX), 5),
        (u64::MAX, 10),
    ] {
        assert_eq!(varint_len(value), len, "{value}");
    }
}

proptest::proptest! {
    /// Any text, number and count a span can hold encodes as
    /// opentelemetry-proto converts it.
    #[test]
    fn any_span_encodes_as_opentelemetry_proto_converts_it(
        name in ".{0,40}",
        key in ".{0,20}",
        text in ".{0,300}",
        int in proptest::num::i64::ANY,
        float in -1e300f64..1e300,
        flag in proptest::bool::ANY,
        dropped in proptest::num::u32::ANY,
        nanos in proptest::num::u64::ANY,
        ids in (proptest::num::u128::ANY, proptest::num::u64::ANY, proptest::num::u64::ANY),
        description in ".{0,40}",
    ) {
        let mut span = every_field_span();
        span.name = Cow::Owned(name);
        span.span_context = context(ids.0, ids.1, TraceFlags::new(ids.2 as u8), ids.2 % 2 == 0, "");
        span.parent_span_id = SpanId::from(ids.2);
        span.start_time = UNIX_EPOCH + Duration::from_nanos(nanos);
        span.attributes = vec![
            KeyValue::new(key.clone(), text.clone()),
            KeyValue::new(key.clone(), int),
            KeyValue::new(key.clone(), float),
            KeyValue::new(key, flag),
            KeyValue::new("list", Value::Array(Array::String(vec![StringValue::from(text)]))),
        ];
        span.dropped_attributes_count = dropped;
        span.status = Status::error(description);
        let resource = resource();
        check(&mut SpanEncoder::new(&resource), &[span, server_span(nanos % 1000)], &resource);
    }
}
