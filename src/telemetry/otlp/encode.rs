//! A batch of finished spans written straight into the bytes of an OTLP
//! `ExportTraceServiceRequest` (protobuf wire format), for the export
//! thread.
//!
//! Why not opentelemetry-otlp's path: it converts every `SpanData` into
//! opentelemetry-proto's structs first (a `String` per attribute key and
//! value, a `Vec` per id), then prost encodes those; on a busy 2-core host
//! at sample rate 1.0 that conversion was most of the export thread's
//! time (BENCHMARKS.md, "OTLP export encoder"). Here each field is written
//! from the span as it is, into one buffer kept across batches: nothing is
//! allocated per span or attribute once the buffer has grown.
//!
//! A length-delimited field needs its length before its bytes, so every
//! message is written by one generic function over an `Out`: with
//! `Count` it only adds up lengths, with `Vec<u8>` it writes. A nested
//! message is measured with `Count` (which never walks a body twice), then
//! written; spans' lengths are measured once and kept for the batch. One
//! definition per message means the measured and written bytes cannot
//! disagree.
//!
//! What is written is what opentelemetry-proto's conversion
//! (`group_spans_by_resource_and_scope`) gives for the same spans, field
//! by field (the unit tests decode both and compare): one `ResourceSpans`
//! with the resource and its schema URL, one `ScopeSpans` per
//! instrumentation scope in order of first appearance, default-valued
//! scalar fields left out as prost leaves them out, and `status`, `resource`,
//! `scope` and every attribute's value always present. Field numbers are
//! those of `opentelemetry/proto/{collector/trace,trace,common,resource}/v1`.

use std::time::{SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;

/// Wire type of varints.
const VARINT: u32 = 0;
/// Wire type of 64-bit fixed values (fixed64, double).
const I64: u32 = 1;
/// Wire type of length-delimited fields (bytes, strings, messages).
const LEN: u32 = 2;
/// Wire type of 32-bit fixed values (fixed32).
const I32: u32 = 5;

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`.
const HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`.
const IS_REMOTE: u32 = 0x200;

/// Where an encoding goes: counted ([`Count`]) or written (`Vec<u8>`).
trait Out {
    fn raw(&mut self, bytes: &[u8]);

    fn byte(&mut self, byte: u8);

    #[inline]
    fn varint(&mut self, mut value: u64) {
        // Tags and most lengths: one byte.
        if value < 0x80 {
            self.byte(value as u8);
            return;
        }
        let mut bytes = [0u8; 10];
        let mut n = 0;
        while value >= 0x80 {
            bytes[n] = (value as u8) | 0x80;
            value >>= 7;
            n += 1;
        }
        bytes[n] = value as u8;
        self.raw(&bytes[..=n]);
    }

    /// A nested message of `len` bytes that `body` writes.
    #[inline]
    fn message(&mut self, field: u32, len: usize, body: impl FnOnce(&mut Self)) {
        self.tag(field, LEN);
        self.varint(len as u64);
        body(self);
    }

    #[inline]
    fn tag(&mut self, field: u32, wire: u32) {
        self.varint(u64::from((field << 3) | wire));
    }

    /// A bytes or string field, even when empty (a oneof's member).
    #[inline]
    fn bytes_always(&mut self, field: u32, bytes: &[u8]) {
        self.tag(field, LEN);
        self.varint(bytes.len() as u64);
        self.raw(bytes);
    }

    /// A bytes or string field, left out when empty (proto3's default).
    #[inline]
    fn bytes(&mut self, field: u32, bytes: &[u8]) {
        if !bytes.is_empty() {
            self.bytes_always(field, bytes);
        }
    }

    /// An unsigned varint field, left out when zero.
    #[inline]
    fn uint(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.tag(field, VARINT);
            self.varint(value);
        }
    }

    /// A fixed64 field, left out when zero.
    #[inline]
    fn fixed64(&mut self, field: u32, value: u64) {
        if value != 0 {
            self.tag(field, I64);
            self.raw(&value.to_le_bytes());
        }
    }

    /// A timestamp as a fixed64 field of nanoseconds since the epoch,
    /// left out when zero (at or before the epoch).
    #[inline]
    fn time(&mut self, field: u32, time: SystemTime) {
        self.fixed64(field, nanos(time));
    }

    /// A fixed32 field, left out when zero.
    #[inline]
    fn fixed32(&mut self, field: u32, value: u32) {
        if value != 0 {
            self.tag(field, I32);
            self.raw(&value.to_le_bytes());
        }
    }
}

impl Out for Vec<u8> {
    #[inline]
    fn raw(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }

    #[inline]
    fn byte(&mut self, byte: u8) {
        self.push(byte);
    }
}

/// Adds up the bytes an encoding would write, never walking a nested
/// message's body (its length is already known).
#[derive(Default)]
struct Count(usize);

impl Out for Count {
    #[inline]
    fn raw(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }

    #[inline]
    fn byte(&mut self, _byte: u8) {
        self.0 += 1;
    }

    #[inline]
    fn time(&mut self, field: u32, time: SystemTime) {
        // Only whether it is zero matters: no need to compute it.
        if time > UNIX_EPOCH {
            self.tag(field, I64);
            self.0 += 8;
        }
    }

    #[inline]
    fn varint(&mut self, value: u64) {
        self.0 += varint_len(value);
    }

    #[inline]
    fn message(&mut self, field: u32, len: usize, _body: impl FnOnce(&mut Self)) {
        self.tag(field, LEN);
        self.0 += varint_len(len as u64) + len;
    }
}

#[inline]
fn varint_len(value: u64) -> usize {
    // 1 byte per 7 bits, at least one.
    (64 - (value | 1).leading_zeros() as usize).div_ceil(7)
}

/// The length of what `encode` writes.
fn len_of(encode: impl FnOnce(&mut Count)) -> usize {
    let mut count = Count::default();
    encode(&mut count);
    count.0
}

/// Nanoseconds since the epoch; 0 before it (as opentelemetry-proto).
#[inline]
fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

/// `AnyValue` (common.proto): the member of its `value` oneof.
fn any_value<O: Out>(out: &mut O, value: &Value) {
    match value {
        Value::String(text) => out.bytes_always(1, text.as_str().as_bytes()),
        Value::Bool(flag) => {
            out.tag(2, VARINT);
            out.varint(u64::from(*flag));
        }
        Value::I64(number) => {
            out.tag(3, VARINT);
            // int64: negative numbers as their 64-bit two's complement.
            out.varint(*number as u64);
        }
        Value::F64(number) => {
            out.tag(4, I64);
            out.raw(&number.to_le_bytes());
        }
        Value::Array(array) => {
            let len = len_of(|count| array_value(count, array));
            out.message(5, len, |out| array_value(out, array));
        }
        // A kind this encoder does not know (the enum is non-exhaustive):
        // an empty value rather than a panic on the export thread.
        _ => {}
    }
}

/// `ArrayValue`: `values` (1), each an `AnyValue`.
fn array_value<O: Out>(out: &mut O, array: &Array) {
    fn each<O: Out, T>(out: &mut O, items: &[T], write: impl Fn(&mut O, &T)) {
        for item in items {
            write(out, item);
        }
    }
    match array {
        Array::Bool(items) => each(out, items, |out, item| {
            out.message(1, 2, |out| {
                out.tag(2, VARINT);
                out.varint(u64::from(*item));
            });
        }),
        Array::I64(items) => each(out, items, |out, item| {
            let value = *item as u64;
            out.message(1, 1 + varint_len(value), |out| {
                out.tag(3, VARINT);
                out.varint(value);
            });
        }),
        Array::F64(items) => each(out, items, |out, item| {
            out.message(1, 9, |out| {
                out.tag(4, I64);
                out.raw(&item.to_le_bytes());
            });
        }),
        Array::String(items) => each(out, items, |out, item| {
            let text = item.as_str().as_bytes();
            out.message(1, 1 + varint_len(text.len() as u64) + text.len(), |out| {
                out.bytes_always(1, text);
            });
        }),
        _ => {}
    }
}

/// The length of an `AnyValue`, straight from the value for the scalars
/// every span has (measured, like any message, for arrays).
fn any_value_len(value: &Value) -> usize {
    match value {
        Value::String(text) => {
            let len = text.as_str().len();
            1 + varint_len(len as u64) + len
        }
        Value::Bool(_) => 2,
        Value::I64(number) => 1 + varint_len(*number as u64),
        Value::F64(_) => 9,
        _ => len_of(|count| any_value(count, value)),
    }
}

/// `KeyValue` as field `field`: `key` (1), `value` (2, always present).
fn key_value<O: Out>(out: &mut O, field: u32, key: &str, value: &Value) {
    let value_len = any_value_len(value);
    let key_len = if key.is_empty() {
        0
    } else {
        1 + varint_len(key.len() as u64) + key.len()
    };
    let len = key_len + 1 + varint_len(value_len as u64) + value_len;
    out.message(field, len, |out| {
        out.bytes(1, key.as_bytes());
        out.message(2, value_len, |out| any_value(out, value));
    });
}

/// Repeated `KeyValue`s as field `field`.
fn attributes<'a, O: Out>(
    out: &mut O,
    field: u32,
    attributes: impl IntoIterator<Item = &'a KeyValue>,
) {
    for KeyValue { key, value, .. } in attributes {
        key_value(out, field, key.as_str(), value);
    }
}

/// A W3C `tracestate` header's text (`k=v,k=v`) as a string field,
/// written from its members without building the string.
fn trace_state<O: Out>(out: &mut O, field: u32, state: &TraceState) {
    let len: usize = state
        .into_iter()
        .map(|(key, value)| key.len() + 1 + value.len())
        .sum::<usize>()
        + state.into_iter().len().saturating_sub(1);
    if len == 0 {
        return;
    }
    out.tag(field, LEN);
    out.varint(len as u64);
    for (i, (key, value)) in state.into_iter().enumerate() {
        if i > 0 {
            out.raw(b",");
        }
        out.raw(key.as_bytes());
        out.raw(b"=");
        out.raw(value.as_bytes());
    }
}

/// Span and link flags: the W3C trace flags, with "whether the parent is
/// remote" known.
fn flags(context: &SpanContext, remote: bool) -> u32 {
    let mut flags = u32::from(context.trace_flags().to_u8()) | HAS_IS_REMOTE;
    if remote {
        flags |= IS_REMOTE;
    }
    flags
}

/// `Span` (trace.proto).
fn span<O: Out>(out: &mut O, span: &SpanData) {
    let context = &span.span_context;
    out.bytes_always(1, &context.trace_id().to_bytes());
    out.bytes_always(2, &context.span_id().to_bytes());
    trace_state(out, 3, context.trace_state());
    if span.parent_span_id != SpanId::INVALID {
        out.bytes_always(4, &span.parent_span_id.to_bytes());
    }
    out.bytes(5, span.name.as_bytes());
    out.uint(6, kind(&span.span_kind));
    out.time(7, span.start_time);
    out.time(8, span.end_time);
    attributes(out, 9, &span.attributes);
    out.uint(10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        let event_len = len_of(|count| self::event(count, event));
        out.message(11, event_len, |out| self::event(out, event));
    }
    out.uint(12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        let link_len = len_of(|count| self::link(count, link));
        out.message(13, link_len, |out| self::link(out, link));
    }
    out.uint(14, u64::from(span.links.dropped_count));
    let status_len = len_of(|count| status(count, &span.status));
    out.message(15, status_len, |out| status(out, &span.status));
    // Last, as prost writes fields in the order of their numbers.
    out.fixed32(16, flags(context, span.parent_span_is_remote));
}

/// `Span.SpanKind`'s number.
fn kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

/// `Span.Event`.
fn event<O: Out>(out: &mut O, event: &opentelemetry::trace::Event) {
    out.time(1, event.timestamp);
    out.bytes(2, event.name.as_bytes());
    attributes(out, 3, &event.attributes);
    out.uint(4, u64::from(event.dropped_attributes_count));
}

/// `Span.Link`.
fn link<O: Out>(out: &mut O, link: &opentelemetry::trace::Link) {
    let context = &link.span_context;
    out.bytes_always(1, &context.trace_id().to_bytes());
    out.bytes_always(2, &context.span_id().to_bytes());
    trace_state(out, 3, context.trace_state());
    attributes(out, 4, &link.attributes);
    out.uint(5, u64::from(link.dropped_attributes_count));
    out.fixed32(6, flags(context, context.is_remote()));
}

/// `Status`: `message` (2, errors only), `code` (3).
fn status<O: Out>(out: &mut O, status: &Status) {
    match status {
        Status::Unset => {}
        Status::Ok => out.uint(3, 1),
        Status::Error { description } => {
            out.bytes(2, description.as_bytes());
            out.uint(3, 2);
        }
    }
}

/// `InstrumentationScope` (common.proto): name, version, attributes.
fn scope<O: Out>(out: &mut O, scope: &InstrumentationScope) {
    out.bytes(1, scope.name().as_bytes());
    out.bytes(2, scope.version().unwrap_or_default().as_bytes());
    attributes(out, 3, scope.attributes());
}

/// The bytes of one batch's `ExportTraceServiceRequest`, in a buffer kept
/// from batch to batch; the resource's part is encoded once.
#[derive(Debug, Default)]
pub struct SpanEncoder {
    /// `ResourceSpans.resource` (1), as written.
    resource: Vec<u8>,
    /// `ResourceSpans.schema_url` (3), as written (after the scopes).
    schema_url: Vec<u8>,
    /// The request being written.
    buffer: Vec<u8>,
    /// Each span's encoded length, measured once per batch.
    lengths: Vec<usize>,
    /// Each span's scope, as an index into `scopes`.
    scope_of: Vec<usize>,
    /// The batch's distinct scopes (the index of a span that has it) and
    /// the length of their `ScopeSpans`.
    scopes: Vec<(usize, usize)>,
}

impl SpanEncoder {
    /// An encoder that sends `resource` with every batch.
    pub fn new(resource: &Resource) -> Self {
        let mut encoder = Self::default();
        encoder.set_resource(resource);
        encoder
    }

    /// Sets the resource sent with every batch.
    pub fn set_resource(&mut self, resource: &Resource) {
        let mut attributes = Vec::new();
        for (key, value) in resource.iter() {
            key_value(&mut attributes, 1, key.as_str(), value);
        }
        self.resource.clear();
        self.resource
            .message(1, attributes.len(), |out| out.raw(&attributes));
        self.schema_url.clear();
        self.schema_url
            .bytes(3, resource.schema_url().unwrap_or_default().as_bytes());
    }

    /// Encodes `spans` as one request; the bytes stay valid until the next
    /// call. An empty batch is an empty request.
    pub fn encode(&mut self, spans: &[SpanData]) -> &[u8] {
        self.buffer.clear();
        if spans.is_empty() {
            return &self.buffer;
        }
        self.measure(spans);
        let scope_spans_len: usize = self
            .scopes
            .iter()
            .map(|&(_, len)| 1 + varint_len(len as u64) + len)
            .sum();
        let resource_spans_len = self.resource.len() + scope_spans_len + self.schema_url.len();
        let total = 1 + varint_len(resource_spans_len as u64) + resource_spans_len;
        self.buffer.reserve(total);
        let Self {
            resource,
            schema_url,
            buffer,
            lengths,
            scope_of,
            scopes,
        } = self;
        buffer.message(1, resource_spans_len, |out| {
            out.raw(resource);
            for (index, &(first, len)) in scopes.iter().enumerate() {
                out.message(2, len, |out| {
                    let own = &spans[first].instrumentation_scope;
                    let scope_len = len_of(|count| scope(count, own));
                    out.message(1, scope_len, |out| scope(out, own));
                    for (i, data) in spans.iter().enumerate() {
                        if scope_of[i] == index {
                            out.message(2, lengths[i], |out| span(out, data));
                        }
                    }
                    out.bytes(3, own.schema_url().unwrap_or_default().as_bytes());
                });
            }
            out.raw(schema_url);
        });
        debug_assert_eq!(buffer.len(), total);
        &self.buffer
    }

    /// Each span's length and scope, and each scope's `ScopeSpans` length.
    fn measure(&mut self, spans: &[SpanData]) {
        self.lengths.clear();
        self.scope_of.clear();
        self.scopes.clear();
        for (i, data) in spans.iter().enumerate() {
            let len = len_of(|count| span(count, data));
            self.lengths.push(len);
            let own = &data.instrumentation_scope;
            // A batch has one scope or a few: a scan beats hashing.
            let index = match self
                .scopes
                .iter()
                .position(|&(first, _)| spans[first].instrumentation_scope == *own)
            {
                Some(index) => index,
                None => {
                    let scope_len = len_of(|count| scope(count, own));
                    let mut header = Count::default();
                    header.message(1, scope_len, |_| {});
                    header.bytes(3, own.schema_url().unwrap_or_default().as_bytes());
                    self.scopes.push((i, header.0));
                    self.scopes.len() - 1
                }
            };
            self.scope_of.push(index);
            self.scopes[index].1 += 1 + varint_len(len as u64) + len;
        }
    }
}

#[cfg(test)]
mod tests;
