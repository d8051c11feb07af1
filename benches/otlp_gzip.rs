//! What `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` costs: the process CPU time
//! of making and exporting 10,000 request spans (every request sampled:
//! perfscope's middleware and OpenTelemetry server span, exported through
//! perfscope's queue to a receiver in a child process, so the receiver's
//! own work is not counted), with and without gzip, over HTTP/protobuf and
//! gRPC, in alternation. It also prints what arrived (spans and, over
//! HTTP, bytes on the wire) so a lossy run shows.
//!
//!     cargo bench --no-default-features --features otlp --bench otlp_gzip
//!     ROUNDS=5 SPANS=50000 cargo bench … --bench otlp_gzip

use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use perfscope::config::{OtlpCompression, OtlpConfig, OtlpProtocol};
use perfscope::telemetry::otlp::{OtlpSlot, init};
use poem::web::Data;
use poem::{Endpoint, EndpointExt, Request, Route, get, handler, post};
use prost::Message;

/// What the receiver got: spans, and HTTP body bytes as sent.
#[derive(Clone, Default)]
struct Counts {
    spans: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
}

impl Counts {
    fn add(&self, request: &ExportTraceServiceRequest) {
        let spans: usize = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
    }
}

#[tonic::async_trait]
impl TraceService for Counts {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.add(request.get_ref());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[handler]
fn traces(request: &poem::Request, body: Vec<u8>, counts: Data<&Counts>) -> poem::Response {
    counts.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    let body = if request.header("content-encoding") == Some("gzip") {
        let mut plain = Vec::new();
        let _ = flate2::read::GzDecoder::new(body.as_slice()).read_to_end(&mut plain);
        plain
    } else {
        body
    };
    if let Ok(decoded) = ExportTraceServiceRequest::decode(body.as_slice()) {
        counts.add(&decoded);
    }
    poem::Response::builder()
        .content_type("application/x-protobuf")
        .body(ExportTraceServiceResponse::default().encode_to_vec())
}

#[handler]
fn count(counts: Data<&Counts>) -> String {
    format!(
        "{} {}",
        counts.spans.load(Ordering::Relaxed),
        counts.bytes.load(Ordering::Relaxed)
    )
}

/// The child: HTTP and gRPC receivers; prints `<http port> <grpc port>`.
fn receiver() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let counts = Counts::default();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let http_port = http.local_addr().expect("addr").port();
        let grpc_port = grpc.local_addr().expect("addr").port();
        drop(http);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(
                    TraceServiceServer::new(counts.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
                )
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(grpc)),
        );
        let app = Route::new()
            .at("/v1/traces", post(traces))
            .at("/count", get(count))
            .data(counts);
        println!("{http_port} {grpc_port}");
        let _ = poem::Server::new(poem::listener::TcpListener::bind(format!(
            "127.0.0.1:{http_port}"
        )))
        .run(app)
        .await;
    });
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

/// CPU time of this process so far (every thread, live or exited).
fn process_cpu() -> Duration {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid timespec for the call to fill.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut time) } == 0;
    assert!(ok, "clock_gettime");
    Duration::new(time.tv_sec as u64, time.tv_nsec as u32)
}

/// Spans and bytes the receiver has got.
fn received(http_port: u16) -> (u64, u64) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", http_port)).expect("connect");
    write!(
        stream,
        "GET /count HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let body = answer.rsplit("\r\n\r\n").next().unwrap_or("");
    let mut numbers = body.split_whitespace().map(|n| n.parse().unwrap_or(0));
    (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0))
}

/// One run: `spans` requests through the middleware and the OTel server
/// span, then a flushing shutdown; the process CPU time it took, what the
/// receiver got, and the drops counted.
fn run(
    protocol: OtlpProtocol,
    compression: OtlpCompression,
    ports: (u16, u16),
    spans: usize,
) -> (Duration, u64, u64, u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let endpoint = match protocol {
        OtlpProtocol::HttpProtobuf => format!("http://127.0.0.1:{}/v1/traces", ports.0),
        OtlpProtocol::Grpc => format!("http://127.0.0.1:{}", ports.1),
    };
    let mut config = OtlpConfig::new(endpoint, protocol);
    config.compression = compression;
    // Room for every span: the figure is the cost of sending them all.
    config.max_queue_size = spans + 1;
    let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    let slot = Arc::new(OtlpSlot::default());
    let dropped = prometheus_client::metrics::counter::Counter::default();
    let (before_spans, before_bytes) = received(ports.0);
    let cpu = process_cpu();
    runtime.block_on(async {
        let guard = init(&config, slot.clone(), dropped.clone()).expect("OTLP starts");
        let traced = Route::new()
            .at("/users/:id", get(hello))
            .with(perfscope.middleware())
            .with(perfscope::http::otel::OtelTracing::new(slot));
        for _ in 0..spans {
            let _ = traced
                .call(Request::builder().uri_str("/users/42").finish())
                .await;
        }
        guard.close().await;
    });
    let cpu = process_cpu() - cpu;
    let (after_spans, after_bytes) = received(ports.0);
    (
        cpu,
        after_spans - before_spans,
        after_bytes - before_bytes,
        dropped.get(),
    )
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if std::env::var_os("OTLP_GZIP_RECEIVER").is_some() {
        receiver();
        return;
    }
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let spans: usize = std::env::var("SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
        .env("OTLP_GZIP_RECEIVER", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the receiver starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the receiver's ports");
    let mut ports = line.split_whitespace().map(|p| p.parse().expect("port"));
    let ports: (u16, u16) = (ports.next().expect("http"), ports.next().expect("grpc"));
    std::thread::sleep(Duration::from_millis(200));
    let variants = [
        (
            "http/protobuf",
            OtlpProtocol::HttpProtobuf,
            OtlpCompression::None,
        ),
        (
            "http/protobuf gzip",
            OtlpProtocol::HttpProtobuf,
            OtlpCompression::Gzip,
        ),
        ("grpc", OtlpProtocol::Grpc, OtlpCompression::None),
        ("grpc gzip", OtlpProtocol::Grpc, OtlpCompression::Gzip),
    ];
    // Warm up once each.
    for (_, protocol, compression) in variants {
        run(protocol, compression, ports, spans / 10);
    }
    let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut bytes = vec![0u64; variants.len()];
    let mut lost = vec![0u64; variants.len()];
    let started = Instant::now();
    for round in 1..=rounds {
        for (i, (name, protocol, compression)) in variants.iter().enumerate() {
            let (time, got, sent_bytes, dropped) = run(*protocol, *compression, ports, spans);
            let per_10k = time.as_secs_f64() * 1e3 * 10_000.0 / spans as f64;
            cpu[i].push(per_10k);
            bytes[i] += sent_bytes;
            lost[i] += spans as u64 - got.min(spans as u64);
            println!(
                "round {round}: {name}: {per_10k:.1} ms CPU per 10,000 spans, {got} of {spans} received, {dropped} dropped"
            );
        }
    }
    println!(
        "medians of {rounds} rounds of {spans} spans ({:?}):",
        started.elapsed()
    );
    let base = |i: usize| median(cpu[i].clone());
    for (i, (name, _, _)) in variants.iter().enumerate() {
        let plain = if i % 2 == 1 { base(i - 1) } else { base(i) };
        let per_span_bytes = bytes[i] as f64 / (rounds * spans) as f64;
        println!(
            "{name}: {:.1} ms CPU per 10,000 spans ({:+.1} ms, {:+.2} µs a span, against plain){}, {} lost",
            base(i),
            base(i) - plain,
            (base(i) - plain) * 1e3 / 10_000.0,
            if per_span_bytes > 0.0 {
                format!(", {per_span_bytes:.0} bytes a span on the wire")
            } else {
                String::new()
            },
            lost[i]
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}
