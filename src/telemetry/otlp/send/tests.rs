//! The senders against receivers on loopback: what reaches the collector
//! (body, content type, gzip, the configured headers), and which answers
//! are retried.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use parking_lot::Mutex;
use poem::listener::{Acceptor, Listener};
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use prost::Message;

use super::{Sender, retry_after};
use crate::config::{OtlpCompression, OtlpConfig, OtlpProtocol, Secret};

/// A request with something in it.
fn body() -> Vec<u8> {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource::default()),
            schema_url: "ünïcode".repeat(100),
            ..Default::default()
        }],
    }
    .encode_to_vec()
}

fn config(endpoint: String, protocol: OtlpProtocol, gzip: bool) -> OtlpConfig {
    let mut config = OtlpConfig::new(endpoint, protocol);
    if gzip {
        config.compression = OtlpCompression::Gzip;
    }
    config.export_timeout = Duration::from_secs(5);
    config.headers = vec![
        ("Api-Key".to_owned(), Secret::new("s3cr=t")),
        ("bad header".to_owned(), Secret::new("skipped")),
    ];
    config
}

/// A request's headers and body, as received.
type Received = (Vec<(String, String)>, Vec<u8>);
/// A status to answer, with its `Retry-After`.
type Answer = (u16, Option<&'static str>);

/// What an HTTP receiver saw, and the statuses it answers in turn (then 200).
#[derive(Clone, Default)]
struct Seen {
    requests: Arc<Mutex<Vec<Received>>>,
    answers: Arc<Mutex<Vec<Answer>>>,
}

#[handler]
fn traces(request: &poem::Request, body: Vec<u8>, seen: Data<&Seen>) -> poem::Response {
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    seen.requests.lock().push((headers, body));
    let (status, retry_after) = {
        let mut answers = seen.answers.lock();
        if answers.is_empty() {
            (200, None)
        } else {
            answers.remove(0)
        }
    };
    let mut response = poem::Response::builder()
        .status(poem::http::StatusCode::from_u16(status).expect("status"))
        .content_type("application/x-protobuf");
    if let Some(after) = retry_after {
        response = response.header("retry-after", after);
    }
    response.body(ExportTraceServiceResponse::default().encode_to_vec())
}

/// `app` served on loopback; its traces URL.
async fn serve(app: impl poem::Endpoint + 'static) -> String {
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind");
    let addr = acceptor.local_addr()[0]
        .as_socket_addr()
        .copied()
        .expect("tcp");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    format!("http://{addr}/v1/traces")
}

/// An HTTP receiver on loopback; its traces URL.
async fn http_receiver(seen: Seen) -> String {
    serve(Route::new().at("/v1/traces", post(traces)).data(seen)).await
}

/// Answers every export with a redirect to the URL it holds.
#[handler]
fn moved(target: Data<&String>) -> poem::Response {
    poem::Response::builder()
        .status(poem::http::StatusCode::TEMPORARY_REDIRECT)
        .header("location", target.0.as_str())
        .finish()
}

#[tokio::test]
async fn http_does_not_follow_a_redirect_with_the_headers() {
    let seen = Seen::default();
    let elsewhere = http_receiver(seen.clone()).await;
    let redirecting = serve(Route::new().at("/v1/traces", post(moved)).data(elsewhere)).await;
    let mut sender =
        Sender::new(&config(redirecting, OtlpProtocol::HttpProtobuf, false)).expect("a sender");
    assert!(
        sender.send(&body(), Duration::from_secs(2)).await.is_err(),
        "a redirect is a failed export"
    );
    assert!(
        seen.requests.lock().is_empty(),
        "the spans and the Api-Key header followed the redirect"
    );
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn http_posts_the_bytes_gzipped_with_the_headers_and_retries_a_503() {
    let seen = Seen::default();
    seen.answers.lock().push((503, Some("0")));
    let url = http_receiver(seen.clone()).await;
    let mut sender = Sender::new(&config(url, OtlpProtocol::HttpProtobuf, true)).expect("a sender");
    let body = body();
    sender
        .send(&body, Duration::from_secs(5))
        .await
        .expect("sent on the second attempt");
    let requests = seen.requests.lock();
    assert_eq!(requests.len(), 2, "the 503 was retried once");
    for (headers, sent) in requests.iter() {
        assert_eq!(
            header(headers, "content-type"),
            Some("application/x-protobuf")
        );
        assert_eq!(header(headers, "content-encoding"), Some("gzip"));
        assert_eq!(header(headers, "api-key"), Some("s3cr=t"));
        assert_eq!(header(headers, "bad header"), None);
        assert!(header(headers, "user-agent").is_some_and(|a| a.starts_with("perfscope/")));
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(sent.as_slice())
            .read_to_end(&mut plain)
            .expect("gzip");
        assert_eq!(plain, body);
    }
}

#[tokio::test]
async fn http_sends_plain_bytes_and_does_not_retry_a_400() {
    let seen = Seen::default();
    seen.answers.lock().push((400, None));
    let url = http_receiver(seen.clone()).await;
    let mut sender =
        Sender::new(&config(url, OtlpProtocol::HttpProtobuf, false)).expect("a sender");
    let error = sender
        .send(&body(), Duration::from_secs(5))
        .await
        .expect_err("a 400 drops the batch");
    assert!(error.contains("HTTP 400"), "{error}");
    let requests = seen.requests.lock();
    assert_eq!(requests.len(), 1);
    assert_eq!(header(&requests[0].0, "content-encoding"), None);
    assert_eq!(requests[0].1, body());
}

/// A call's `api-key` metadata, its `grpc-encoding` and message, as
/// received.
type Call = (Option<String>, Option<String>, ExportTraceServiceRequest);

/// A gRPC receiver answering the statuses in turn (then OK).
#[derive(Clone, Default)]
struct GrpcSeen {
    requests: Arc<Mutex<Vec<Call>>>,
    answers: Arc<Mutex<Vec<tonic::Code>>>,
}

#[tonic::async_trait]
impl TraceService for GrpcSeen {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let text = |name| {
            request
                .metadata()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (key, encoding) = (text("api-key"), text("grpc-encoding"));
        self.requests
            .lock()
            .push((key, encoding, request.into_inner()));
        let code = {
            let mut answers = self.answers.lock();
            (!answers.is_empty()).then(|| answers.remove(0))
        };
        match code {
            Some(code) => Err(tonic::Status::new(code, "no")),
            None => Ok(tonic::Response::new(ExportTraceServiceResponse::default())),
        }
    }
}

async fn grpc_receiver(seen: GrpcSeen) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(seen)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

#[tokio::test]
async fn grpc_sends_the_bytes_as_the_export_message_and_retries_unavailable() {
    let seen = GrpcSeen::default();
    seen.answers.lock().push(tonic::Code::Unavailable);
    let url = grpc_receiver(seen.clone()).await;
    let mut sender = Sender::new(&config(url, OtlpProtocol::Grpc, true)).expect("a sender");
    sender
        .send(&body(), Duration::from_secs(5))
        .await
        .expect("sent on the second attempt");
    let requests = seen.requests.lock();
    assert_eq!(requests.len(), 2);
    for (key, encoding, request) in requests.iter() {
        assert_eq!(key.as_deref(), Some("s3cr=t"));
        assert_eq!(encoding.as_deref(), Some("gzip"), "compressed as asked");
        assert_eq!(request.encode_to_vec(), body());
    }
}

#[tokio::test]
async fn grpc_does_not_retry_invalid_argument() {
    let seen = GrpcSeen::default();
    seen.answers.lock().push(tonic::Code::InvalidArgument);
    let url = grpc_receiver(seen.clone()).await;
    let mut sender = Sender::new(&config(url, OtlpProtocol::Grpc, false)).expect("a sender");
    sender
        .send(&body(), Duration::from_secs(5))
        .await
        .expect_err("dropped");
    assert_eq!(seen.requests.lock().len(), 1);
}

#[test]
fn retry_after_is_read_in_seconds_and_capped() {
    assert_eq!(retry_after(Some(" 3 ")), Some(Duration::from_secs(3)));
    assert_eq!(retry_after(Some("99999")), Some(Duration::from_secs(600)));
    assert_eq!(retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
    assert_eq!(retry_after(None), None);
}
