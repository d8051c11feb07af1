//! Real OTLP receivers for the tests: a gRPC `TraceService` and an
//! HTTP/protobuf `/v1/traces` endpoint, both built on the official
//! `opentelemetry-proto` types, keeping every export request they decode.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::Span;
use parking_lot::Mutex;
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use prost::Message;

/// Every export request a receiver got.
#[derive(Clone, Default)]
pub struct Collector(pub Arc<Mutex<Vec<ExportTraceServiceRequest>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.lock().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// A received span with its service's name and its scope's.
#[derive(Clone, Debug)]
pub struct Received {
    pub service: String,
    pub scope: String,
    pub span: Span,
}

impl Collector {
    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        let mut spans = Vec::new();
        for request in self.0.lock().iter() {
            for resource in &request.resource_spans {
                let service = resource
                    .resource
                    .as_ref()
                    .and_then(|r| text(&r.attributes, "service.name"))
                    .unwrap_or_default();
                for scope_spans in &resource.scope_spans {
                    let scope = scope_spans
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for span in &scope_spans.spans {
                        spans.push(Received {
                            service: service.clone(),
                            scope: scope.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        spans
    }

    /// The span ids (hex) received under `trace` (hex).
    pub fn span_ids(&self, trace: &str) -> Vec<String> {
        self.spans()
            .iter()
            .filter(|r| hex(&r.span.trace_id) == trace)
            .map(|r| hex(&r.span.span_id))
            .collect()
    }
}

/// An attribute's value.
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Any> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

/// A string attribute.
pub fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        Any::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

/// An integer attribute.
pub fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        Any::IntValue(n) => Some(*n),
        _ => None,
    }
}

/// Bytes (an id) in lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A gRPC receiver on loopback; its endpoint.
pub async fn grpc_receiver(collector: Collector) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

#[handler]
async fn http_export(body: Vec<u8>, collector: Data<&Collector>) -> poem::Response {
    match ExportTraceServiceRequest::decode(body.as_slice()) {
        Ok(request) => {
            collector.0.0.lock().push(request);
            poem::Response::builder()
                .content_type("application/x-protobuf")
                .body(ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(_) => poem::Response::builder()
            .status(poem::http::StatusCode::BAD_REQUEST)
            .finish(),
    }
}

/// An HTTP/protobuf receiver on loopback; its base endpoint (`/v1/traces`
/// is added by the exporter).
pub async fn http_receiver(collector: Collector) -> String {
    let app = Route::new()
        .at("/v1/traces", post(http_export))
        .data(collector);
    format!("http://{}", super::serve_loopback(app).await)
}

/// perfscope's OTLP settings for a test: gRPC to `endpoint` as `service`,
/// batches sent every 100 ms.
pub fn grpc_export(endpoint: String, service: &str) -> perfscope::config::RawOtlp {
    perfscope::config::RawOtlp {
        endpoint: Some(endpoint),
        protocol: Some("grpc".into()),
        service_name: Some(service.into()),
        bsp_schedule_delay: Some("100".into()),
        ..Default::default()
    }
}

/// perfscope with `otlp` alone configured, before `prepare` (e.g. handing
/// it the app's tracer provider), started; stop with the token.
pub fn started_with(
    otlp: perfscope::config::RawOtlp,
    prepare: impl FnOnce(&perfscope::Perfscope),
) -> (
    perfscope::Perfscope,
    tokio_util::sync::CancellationToken,
    perfscope::BackgroundTasks,
) {
    let config = perfscope::config::RawConfig {
        otlp,
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = perfscope::Perfscope::new(config);
    prepare(&perfscope);
    let cancel = tokio_util::sync::CancellationToken::new();
    let tasks = perfscope.start(&cancel);
    (perfscope, cancel, tasks)
}
