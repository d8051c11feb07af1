//! OpenTelemetry end to end, over OTLP to real receivers on loopback built
//! on `opentelemetry-proto` (gRPC through tonic, and HTTP/protobuf): a
//! server span per request named by route template, continuing a caller's
//! `traceparent` (or `sentry-trace`); a client span per query with the
//! database conventions and the normalized SQL; an internal span per
//! measurement; the service name; the same trace id in the Sentry
//! transaction (a real envelope receiver) and in the latency histograms'
//! exemplars; `traceparent` handed on for outgoing calls; and OTLP, Sentry
//! and webhook receivers that never answer (with alerts flapping) cost
//! requests nothing while the drops are counted and memory stays flat. One test function: Sentry's client is
//! process-global.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use parking_lot::Mutex;
use perfscope::Perfscope;
use perfscope::config::{RawConfig, RawOtlp};
use perfscope::db::TimedPool;
use poem::web::{Data, Json, Path};
use poem::{EndpointExt, Route, get, handler, post};
use prost::Message;
use serde_json::Value;
use support::otlp::{Collector, Received, grpc_receiver, hex, http_receiver, int, text};
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, client};

/// An item, loaded inside a measurement; the answer is the trace headers
/// an outgoing call made here would carry.
#[handler]
async fn item_handler(
    pool: Data<&TimedPool>,
    perfscope: Data<&Perfscope>,
    Path(id): Path<i32>,
) -> poem::Result<Json<Value>> {
    let pool = pool.clone();
    let name = perfscope
        .measurements()
        .track("load_item", async move {
            let client = pool.get().await?;
            let row = client
                .query_one(
                    "SELECT name FROM items WHERE id = $1 AND name <> 'hunter2'",
                    &[&id],
                )
                .await?;
            Ok::<_, perfscope::db::DbError>(row.get::<_, String>(0))
        })
        .await
        .map_err(poem::error::InternalServerError)?;
    // A span of the app's own, through `otel_tracing_layer`.
    let headers: serde_json::Map<String, Value> = tracing::info_span!("render_item", item = id)
        .in_scope(|| {
            perfscope::telemetry::trace_headers()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), Value::String(v)))
                .collect()
        });
    Ok(Json(
        serde_json::json!({ "name": name, "outgoing": headers }),
    ))
}

/// The app under test and its `Perfscope`.
struct Served {
    app: support::HostApp,
    perfscope: Perfscope,
}

async fn serve(cluster: &PgCluster, otlp: RawOtlp, sentry_dsn: Option<String>) -> Served {
    serve_with(cluster, otlp, sentry_dsn, |_| {}).await
}

async fn serve_with(
    cluster: &PgCluster,
    otlp: RawOtlp,
    sentry_dsn: Option<String>,
    tweak: impl FnOnce(&mut RawConfig),
) -> Served {
    let mut raw = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        sentry_dsn,
        sentry_traces_sample_rate: Some("1.0".into()),
        otlp,
        ..Default::default()
    };
    tweak(&mut raw);
    let config = raw.validate().expect("config");
    let perfscope = Perfscope::new(config);
    let pool = support::pg::pool(&perfscope, cluster).await;
    let routes = Route::new().at(
        "/items/:id",
        get(item_handler).data(pool).data(perfscope.clone()),
    );
    Served {
        app: support::HostApp::start(&perfscope, routes).await,
        perfscope,
    }
}

/// Trace ids of the exemplars on `family`'s bucket lines.
fn exemplar_trace_ids(scrape: &str, family: &str) -> Vec<String> {
    scrape
        .lines()
        .filter(|l| l.starts_with(&format!("{family}_bucket")))
        .filter_map(|l| l.split_once(" # {trace_id=\"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split('"').next().map(str::to_owned))
        .collect()
}

fn dropped(scrape: &str, sink: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| {
            l.strip_prefix(&format!(
                "perfscope_telemetry_dropped_total{{sink=\"{sink}\"}} "
            ))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const T1: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const P1: &str = "00f067aa0ba902b7";
const T2: &str = "771a43a4192642f0b136d5159a501700";
const P2: &str = "b7ad6b7169203331";
const T3: &str = "0af7651916cd43dd8448eb211c80319c";
/// The axum test's own trace: Sentry is process-global, so a transaction
/// it makes while the other test runs Sentry must not carry their traces.
const T4: &str = "5b8efff798038103d269b633813fc60c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_spans_over_grpc_and_http_with_sentry_and_exemplars_on_one_trace() {
    let cluster = PgCluster::start();
    cluster.create_items().await;
    let http = client();

    // --- gRPC, with Sentry on beside it.
    let grpc = Collector::default();
    let grpc_endpoint = grpc_receiver(grpc.clone()).await;
    let (sentry_dsn, envelopes) = support::sentry_receiver().await;
    let served = serve(
        &cluster,
        RawOtlp {
            endpoint: Some(grpc_endpoint),
            protocol: Some("grpc".into()),
            service_name: Some("otlp-test".into()),
            bsp_schedule_delay: Some("100".into()),
            ..Default::default()
        },
        Some(sentry_dsn),
    )
    .await;
    let base = &served.app.base;
    // The app's tracing spans join the request's trace (this binary's
    // only test sets the global subscriber).
    {
        use tracing_subscriber::prelude::*;
        let layer = served
            .perfscope
            .otel_tracing_layer()
            .expect("OTLP is running");
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only subscriber");
    }

    // (1) A caller's traceparent.
    let answer: Value = http
        .get(format!("{base}/items/1"))
        .header("traceparent", format!("00-{T1}-{P1}-01"))
        .send()
        .await
        .expect("item 1")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["name"], "item 1");
    // (2) A caller's sentry-trace only.
    let status = http
        .get(format!("{base}/items/2"))
        .header("sentry-trace", format!("{T2}-{P2}-1"))
        .send()
        .await
        .expect("item 2")
        .status();
    assert_eq!(status, 200);
    // (3) No caller trace; (4) no route.
    let fresh: Value = http
        .get(format!("{base}/items/3"))
        .send()
        .await
        .expect("item 3")
        .json()
        .await
        .expect("json");
    // (5) A caller that decided not to sample: no span is exported, the
    // decision travels on.
    let unsampled: Value = http
        .get(format!("{base}/items/4"))
        .header("traceparent", format!("00-{T3}-{P1}-00"))
        .send()
        .await
        .expect("item 4")
        .json()
        .await
        .expect("json");
    let passed_on = unsampled["outgoing"]["traceparent"]
        .as_str()
        .expect("a traceparent");
    assert!(
        passed_on.starts_with(&format!("00-{T3}-")) && passed_on.ends_with("-00"),
        "{passed_on}"
    );
    let status = http
        .get(format!("{base}/no/such/path"))
        .send()
        .await
        .expect("unmatched")
        .status();
    assert_eq!(status, 404);
    let scrape = http
        .get(format!("{base}/api/performance/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    served.app.stop().await;
    support::until("the gRPC receiver's spans", Duration::from_secs(10), || {
        grpc.spans()
            .iter()
            .filter(|r| r.span.kind == SpanKind::Server as i32)
            .count()
            >= 4
    })
    .await;
    let spans = grpc.spans();
    let server = |trace: &str| {
        spans
            .iter()
            .find(|r| r.span.kind == SpanKind::Server as i32 && hex(&r.span.trace_id) == trace)
            .unwrap_or_else(|| panic!("a server span in trace {trace}: {spans:#?}"))
            .clone()
    };
    let children = |of: &Received| -> Vec<Received> {
        spans
            .iter()
            .filter(|r| r.span.parent_span_id == of.span.span_id)
            .cloned()
            .collect()
    };

    // (1) continues the caller's trace, named by route, HTTP conventions.
    let first = server(T1);
    assert_eq!(first.service, "otlp-test");
    assert_eq!(first.span.name, "GET /items/:id");
    assert_eq!(hex(&first.span.parent_span_id), P1);
    let attributes = &first.span.attributes;
    assert_eq!(
        text(attributes, "http.route").as_deref(),
        Some("/items/:id")
    );
    assert_eq!(
        text(attributes, "http.request.method").as_deref(),
        Some("GET")
    );
    assert_eq!(int(attributes, "http.response.status_code"), Some(200));
    assert!(
        attributes.iter().all(|kv| !kv.key.starts_with("url.path")
            && !kv.key.starts_with("url.query")
            && !kv.key.starts_with("client.")),
        "no URL or client address: {attributes:?}"
    );
    // Its children: the query (database conventions, normalized SQL) and
    // the measurement.
    let kids = children(&first);
    let query = kids
        .iter()
        .find(|r| r.span.kind == SpanKind::Client as i32)
        .unwrap_or_else(|| panic!("a client span under the server span: {kids:#?}"));
    assert_eq!(query.span.name, "SELECT items");
    assert_eq!(
        text(&query.span.attributes, "db.system.name").as_deref(),
        Some("postgresql")
    );
    let sql = text(&query.span.attributes, "db.query.text").expect("db.query.text");
    assert!(sql.contains("from items"), "{sql}");
    assert!(
        !sql.contains("hunter2"),
        "a literal reached the span: {sql}"
    );
    assert_eq!(hex(&query.span.trace_id), T1);
    let measurement = kids
        .iter()
        .find(|r| r.span.kind == SpanKind::Internal as i32 && r.span.name == "load_item")
        .unwrap_or_else(|| panic!("a measurement span: {kids:#?}"));
    assert_eq!(hex(&measurement.span.trace_id), T1);
    let own = kids
        .iter()
        .find(|r| r.span.name == "render_item")
        .unwrap_or_else(|| panic!("the app's tracing span: {kids:#?}"));
    assert_eq!(int(&own.span.attributes, "item"), Some(1));
    assert!(query.span.start_time_unix_nano >= first.span.start_time_unix_nano);
    assert!(query.span.end_time_unix_nano <= first.span.end_time_unix_nano);
    // Outgoing calls carry the trace on, from the span they are made in
    // (here the app's own, which the tracing layer made current).
    assert_eq!(
        answer["outgoing"]["traceparent"],
        format!("00-{T1}-{}-01", hex(&own.span.span_id))
    );
    assert!(
        answer["outgoing"]["sentry-trace"]
            .as_str()
            .is_some_and(|v| v.starts_with(T1)),
        "{answer}"
    );

    // (2) continues a Sentry trace; (4) is named by its method alone.
    let second = server(T2);
    assert_eq!(hex(&second.span.parent_span_id), P2);
    let unmatched = spans
        .iter()
        .find(|r| r.span.kind == SpanKind::Server as i32 && r.span.name == "GET")
        .unwrap_or_else(|| panic!("the unmatched request's span: {spans:#?}"));
    assert_eq!(
        int(&unmatched.span.attributes, "http.response.status_code"),
        Some(404)
    );
    assert!(text(&unmatched.span.attributes, "http.route").is_none());

    assert!(
        spans.iter().all(|r| hex(&r.span.trace_id) != T3),
        "an unsampled trace was exported"
    );
    assert!(
        !exemplar_trace_ids(&scrape, "http_request_duration_seconds").contains(&T3.to_owned()),
        "an unsampled trace became an exemplar"
    );

    // (3) started a trace here, handed on with the OpenTelemetry span.
    let fresh_trace = fresh["outgoing"]["traceparent"]
        .as_str()
        .and_then(|v| v.split('-').nth(1))
        .expect("a traceparent")
        .to_owned();
    let third = server(&fresh_trace);
    assert!(third.span.parent_span_id.is_empty(), "a root span");

    // Sentry saw the same traces: each transaction's trace id is an
    // OpenTelemetry trace id, (3)'s included, parented by the server span.
    support::until("three Sentry transactions", Duration::from_secs(10), || {
        envelopes.of("transaction").len() >= 3
    })
    .await;
    let transactions = envelopes.of("transaction");
    let trace_of = |name: &str, trace: &str| {
        transactions
            .iter()
            .find(|t| t["contexts"]["trace"]["trace_id"] == trace)
            .unwrap_or_else(|| {
                panic!("a Sentry transaction in {name} trace {trace}: {transactions:#?}")
            })
            .clone()
    };
    let t1 = trace_of("the traceparent", T1);
    assert_eq!(t1["transaction"], "GET /items/:id");
    assert_eq!(
        t1["contexts"]["trace"]["parent_span_id"],
        hex(&first.span.span_id)
    );
    trace_of("the sentry-trace", T2);
    let t3 = trace_of("the fresh", &fresh_trace);
    assert_eq!(
        t3["contexts"]["trace"]["parent_span_id"],
        hex(&third.span.span_id)
    );

    // Exemplars: the latency buckets point at traces the receiver has.
    let traces: Vec<String> = spans.iter().map(|r| hex(&r.span.trace_id)).collect();
    for family in ["http_request_duration_seconds", "db_query_duration_seconds"] {
        let ids = exemplar_trace_ids(&scrape, family);
        assert!(!ids.is_empty(), "no exemplar on {family}: {scrape}");
        for id in &ids {
            assert!(
                traces.contains(id),
                "{family} exemplar {id} is no received trace"
            );
        }
    }

    // The strict OpenMetrics parser takes the exemplars.
    let file = support::temp_dir("otlp-exemplars").join("scrape.txt");
    std::fs::write(&file, &scrape).expect("write scrape");
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
ids = {s.exemplar.labels["trace_id"] for f in text_string_to_metric_families(open(sys.argv[1]).read())
       for s in f.samples if s.exemplar}
print("\n".join(sorted(ids)))
"#;
    let output = std::process::Command::new(support::python())
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "the strict parser rejected the exemplars: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let parsed = String::from_utf8_lossy(&output.stdout);
    assert!(
        parsed.lines().any(|id| traces.iter().any(|t| t == id)),
        "the parser saw no received trace id: {parsed}"
    );

    // --- HTTP/protobuf, OpenTelemetry alone.
    let over_http = Collector::default();
    let http_endpoint = http_receiver(over_http.clone()).await;
    let served = serve(
        &cluster,
        RawOtlp {
            endpoint: Some(http_endpoint),
            protocol: Some("http/protobuf".into()),
            service_name: Some("otlp-http-test".into()),
            bsp_schedule_delay: Some("100".into()),
            ..Default::default()
        },
        None,
    )
    .await;
    let status = http
        .get(format!("{}/items/5", served.app.base))
        .header("traceparent", format!("00-{T1}-{P1}-01"))
        .send()
        .await
        .expect("item 5")
        .status();
    assert_eq!(status, 200);
    served.app.stop().await;
    support::until("the HTTP receiver's spans", Duration::from_secs(10), || {
        over_http.spans().len() >= 3
    })
    .await;
    let spans = over_http.spans();
    let server = spans
        .iter()
        .find(|r| r.span.kind == SpanKind::Server as i32)
        .expect("a server span over HTTP");
    assert_eq!(server.service, "otlp-http-test");
    assert_eq!(server.span.name, "GET /items/:id");
    assert_eq!(hex(&server.span.trace_id), T1);
    assert!(
        spans.iter().any(|r| r.span.kind == SpanKind::Client as i32
            && r.span.parent_span_id == server.span.span_id),
        "{spans:#?}"
    );

    // --- A receiver that accepts and never answers, with a small queue:
    // requests are unaffected, spans are dropped and counted, memory stays
    // flat.
    let black_hole = support::black_hole().await;
    let served = serve_with(
        &cluster,
        RawOtlp {
            endpoint: Some(format!("http://{black_hole}")),
            protocol: Some("grpc".into()),
            bsp_max_queue_size: Some("64".into()),
            bsp_export_timeout: Some("1000".into()),
            bsp_schedule_delay: Some("50".into()),
            ..Default::default()
        },
        Some(format!("http://public@{black_hole}/1")),
        |raw| {
            raw.alert_webhook_urls = Some(format!("http://{black_hole}/hook"));
            raw.alert_for = Some("0".into());
        },
    )
    .await;
    let load = |n: usize| {
        let http = http.clone();
        let base = served.app.base.clone();
        async move {
            let mut tasks = Vec::new();
            for worker in 0..8 {
                let http = http.clone();
                let base = base.clone();
                tasks.push(tokio::spawn(async move {
                    for i in 0..n / 8 {
                        let status = http
                            .get(format!("{base}/items/{}", 1 + (worker * 13 + i) % 100))
                            .send()
                            .await
                            .expect("item")
                            .status();
                        assert_eq!(status, 200);
                    }
                }));
            }
            for task in tasks {
                task.await.expect("load");
            }
        }
    };
    // Alerts flapping the whole time: every notification goes to the
    // black-holed webhook and Sentry too.
    let flapping = {
        let alerts = served.perfscope.clone();
        tokio::spawn(async move {
            for i in 0..2000u64 {
                let lag = if i % 2 == 0 { 2000 } else { 0 };
                alerts.alerts().evaluate(
                    &perfscope::alerts::Readings {
                        lag: Some(Duration::from_millis(lag)),
                        ..Default::default()
                    },
                    Instant::now(),
                );
                tokio::task::yield_now().await;
            }
        })
    };
    let started = Instant::now();
    load(400).await;
    let before = support::resident_bytes(std::process::id());
    load(2000).await;
    flapping.await.expect("alerts flap");
    let after = support::resident_bytes(std::process::id());
    let elapsed = started.elapsed();
    let scrape = served.perfscope.encode_metrics().expect("scrape");
    let otlp_dropped = dropped(&scrape, "otlp");
    assert!(
        otlp_dropped >= 1000.0,
        "{otlp_dropped} spans dropped of ~7200"
    );
    assert!(
        dropped(&scrape, "sentry") >= 100.0,
        "Sentry drops counted too"
    );
    assert!(
        dropped(&scrape, "webhook") >= 100.0,
        "webhook drops counted too: {}",
        dropped(&scrape, "webhook")
    );
    assert!(
        after < before + 24 * 1024 * 1024,
        "resident memory grew from {before} to {after} bytes"
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "2400 requests took {elapsed:?}"
    );
    let stopping = Instant::now();
    served.app.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "shutdown with a dead sink took {:?}",
        stopping.elapsed()
    );
}

/// The tower layer's spans: an axum app's request is a server span named
/// by its route template, continuing the caller's `traceparent`, with the
/// query inside the handler as its child; a gRPC-free, Sentry-free run
/// (Sentry's client is global to the other test).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_apps_server_span_carries_its_route_and_parents_its_query() {
    use axum::extract::{Path as AxumPath, State};

    let cluster = PgCluster::start();
    cluster.create_items().await;
    let collector = Collector::default();
    let endpoint = grpc_receiver(collector.clone()).await;
    let (perfscope, cancel, tasks) =
        support::otlp::started_with(support::otlp::grpc_export(endpoint, "axum-test"), |_| {});
    let pool = support::pg::pool(&perfscope, &cluster).await;
    async fn item(
        State(pool): State<TimedPool>,
        AxumPath(id): AxumPath<i32>,
    ) -> Result<String, String> {
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let row = client
            .query_one("SELECT name FROM items WHERE id = $1", &[&id])
            .await
            .map_err(|e| e.to_string())?;
        Ok(row.get(0))
    }
    let app = axum::Router::new()
        .route("/items/{id}", axum::routing::get(item))
        .with_state(pool)
        .layer(perfscope.axum_layer());
    let base = support::serve_axum(app).await;

    let answer = client()
        .get(format!("{base}/items/7"))
        .header("traceparent", format!("00-{T4}-{P1}-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.text().await.expect("body"), "item 7");

    support::until("the spans arrive", Duration::from_secs(10), || {
        collector.spans().len() >= 2
    })
    .await;
    let spans = collector.spans();
    let server = spans
        .iter()
        .find(|r| r.span.kind == SpanKind::Server as i32)
        .unwrap_or_else(|| panic!("no server span in {spans:?}"));
    assert_eq!(server.service, "axum-test");
    assert_eq!(server.span.name, "GET /items/{id}");
    assert_eq!(hex(&server.span.trace_id), T4);
    assert_eq!(hex(&server.span.parent_span_id), P1);
    assert_eq!(
        text(&server.span.attributes, "http.route").as_deref(),
        Some("/items/{id}")
    );
    assert_eq!(
        int(&server.span.attributes, "http.response.status_code"),
        Some(200)
    );
    let query = spans
        .iter()
        .find(|r| r.span.kind == SpanKind::Client as i32)
        .unwrap_or_else(|| panic!("no query span in {spans:?}"));
    assert_eq!(query.span.trace_id, server.span.trace_id);
    assert_eq!(query.span.parent_span_id, server.span.span_id);
    // The histogram's exemplar is the request's trace.
    let scrape = perfscope.encode_metrics().expect("encodes");
    assert!(
        exemplar_trace_ids(&scrape, "http_request_duration_seconds").contains(&T4.to_owned()),
        "{scrape}"
    );
    cancel.cancel();
    tasks.join().await;
}

/// A receiver that also keeps how each export request was encoded
/// (`grpc-encoding` over gRPC, `content-encoding` over HTTP), and takes
/// gzip bodies.
#[derive(Clone, Default)]
struct EncodingCollector {
    collector: Collector,
    encodings: Arc<Mutex<Vec<Option<String>>>>,
}

#[tonic::async_trait]
impl TraceService for EncodingCollector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let encoding = request
            .metadata()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        self.encodings.lock().push(encoding);
        self.collector.export(request).await
    }
}

/// The gRPC receiver, accepting gzip; its endpoint.
async fn gzip_grpc_receiver(collector: EncodingCollector) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(
                TraceServiceServer::new(collector)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
            )
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    format!("http://{addr}")
}

#[handler]
async fn gzip_http_export(
    request: &poem::Request,
    body: Vec<u8>,
    collector: Data<&EncodingCollector>,
) -> poem::Response {
    use std::io::Read;
    let encoding = request.header("content-encoding").map(str::to_owned);
    collector.encodings.lock().push(encoding.clone());
    let body = if encoding.as_deref() == Some("gzip") {
        let mut plain = Vec::new();
        if flate2::read::GzDecoder::new(body.as_slice())
            .read_to_end(&mut plain)
            .is_err()
        {
            return poem::Response::builder()
                .status(poem::http::StatusCode::BAD_REQUEST)
                .finish();
        }
        plain
    } else {
        body
    };
    match ExportTraceServiceRequest::decode(body.as_slice()) {
        Ok(decoded) => {
            collector.collector.0.lock().push(decoded);
            poem::Response::builder()
                .content_type("application/x-protobuf")
                .body(ExportTraceServiceResponse::default().encode_to_vec())
        }
        Err(_) => poem::Response::builder()
            .status(poem::http::StatusCode::BAD_REQUEST)
            .finish(),
    }
}

/// The HTTP/protobuf receiver, decoding gzip bodies; its base endpoint.
async fn gzip_http_receiver(collector: EncodingCollector) -> String {
    let app = Route::new()
        .at("/v1/traces", post(gzip_http_export))
        .data(collector);
    format!("http://{}", support::serve_loopback(app).await)
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` over each protocol: every export
/// request the receiver gets says gzip, and its spans decode (the
/// request's server span, in the caller's trace). Without it, the same
/// receiver sees plain requests. No database and no Sentry: only the
/// exporter's encoding is under test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_batches_are_gzipped_over_grpc_and_http_when_asked() {
    const T5: &str = "a3ce929d0e0e47364bf92f3577b34da6";
    for (protocol, compression) in [
        ("grpc", Some("gzip")),
        ("http/protobuf", Some("gzip")),
        ("http/protobuf", None),
    ] {
        let receiver = EncodingCollector::default();
        let endpoint = if protocol == "grpc" {
            gzip_grpc_receiver(receiver.clone()).await
        } else {
            gzip_http_receiver(receiver.clone()).await
        };
        let config = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            admin_token: Some(ADMIN_TOKEN.into()),
            otlp: RawOtlp {
                endpoint: Some(endpoint),
                protocol: Some(protocol.into()),
                compression: compression.map(Into::into),
                service_name: Some("gzip-test".into()),
                bsp_schedule_delay: Some("100".into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .validate()
        .expect("config");
        let perfscope = Perfscope::new(config);
        let app = support::HostApp::start(&perfscope, Route::new().at("/hello", get(hello))).await;
        for _ in 0..3 {
            let answer = client()
                .get(format!("{}/hello", app.base))
                .header("traceparent", format!("00-{T5}-{P1}-01"))
                .send()
                .await
                .expect("hello");
            assert_eq!(answer.status(), 200);
        }
        app.stop().await;
        support::until(
            &format!("three server spans over {protocol}"),
            Duration::from_secs(10),
            || {
                receiver
                    .collector
                    .spans()
                    .iter()
                    .filter(|r| r.span.kind == SpanKind::Server as i32)
                    .count()
                    >= 3
            },
        )
        .await;
        let spans = receiver.collector.spans();
        let server = spans
            .iter()
            .find(|r| r.span.kind == SpanKind::Server as i32)
            .expect("a server span");
        assert_eq!(server.service, "gzip-test");
        assert_eq!(server.span.name, "GET /hello");
        assert_eq!(hex(&server.span.trace_id), T5);
        let encodings = receiver.encodings.lock().clone();
        assert!(!encodings.is_empty());
        assert!(
            encodings.iter().all(|e| e.as_deref() == compression),
            "{protocol} with {compression:?}: the requests were encoded {encodings:?}"
        );
    }
}
