//! The tower layer on real sockets: an axum app's routes by template
//! (`Router::layer`, `nest`, `nest_service`, the fallback), the outer
//! wrap that sees no route and says so, its timed-pool queries attributed
//! to the axum route (slow log, N+1, route time), and a tonic service's
//! methods by name with their gRPC status.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::db::TimedPool;
use support::pg::PgCluster;
use tower::Layer;

fn perfscope_with(slow_ms: &str) -> Perfscope {
    let config = RawConfig {
        slow_query_threshold: Some(slow_ms.into()),
        ..Default::default()
    }
    .validate()
    .expect("valid config");
    Perfscope::new(config)
}

async fn serve(app: Router) -> String {
    support::serve_axum(app).await
}

fn count(text: &str, route: &str, status: u16) -> u64 {
    support::request_count(text, "GET", route, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_requests_are_recorded_by_route_template_never_raw_path() {
    let perfscope = perfscope_with("1000");
    let items = Router::new().route("/items/{id}", get(|| async { "item" }));
    let files = tower::service_fn(|_request: axum::extract::Request| async {
        Ok::<_, Infallible>(axum::response::Response::new(axum::body::Body::from(
            "file",
        )))
    });
    let app = Router::new()
        .route("/users/{id}", get(|| async { "user" }))
        .nest("/api", items)
        .nest_service("/static", files)
        .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, "nothing here") })
        .layer(perfscope.axum_layer());
    let base = serve(app).await;

    for path in ["/users/1", "/users/2", "/api/items/9", "/static/a/b.css"] {
        assert_eq!(
            support::status_of(&format!("{base}{path}")).await,
            200,
            "{path}"
        );
    }
    for path in ["/nope/1", "/nope/2"] {
        assert_eq!(
            support::status_of(&format!("{base}{path}")).await,
            404,
            "{path}"
        );
    }

    let text = perfscope.encode_metrics().expect("encodes");
    assert_eq!(count(&text, "/users/{id}", 200), 2, "{text}");
    assert_eq!(count(&text, "/api/items/{id}", 200), 1, "{text}");
    // axum gives a `nest_service` route no `MatchedPath` (the service
    // routes the rest itself): it is `unmatched`, never its raw path.
    assert_eq!(count(&text, "unmatched", 200), 1, "{text}");
    assert_eq!(count(&text, "unmatched", 404), 2, "{text}");
    for raw in ["/users/1", "/api/items/9", "/static/a", "/nope"] {
        assert!(
            !text.contains(&format!("route=\"{raw}")),
            "raw path {raw} in {text}"
        );
    }
    assert!(text.contains("http_requests_in_flight 0"), "{text}");
}

/// Collects what the test's subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<parking_lot::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread, so the server's tasks log through this test's subscriber.
#[tokio::test(flavor = "current_thread")]
async fn a_layer_wrapping_the_router_from_outside_says_once_that_it_sees_no_route() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let perfscope = perfscope_with("1000");
    let router = Router::new().route("/users/{id}", get(|| async { "user" }));
    let outer = perfscope.axum_layer().layer(router);
    let app = Router::new().fallback_service(outer);
    let base = serve(app).await;
    for id in 0..150 {
        assert_eq!(support::status_of(&format!("{base}/users/{id}")).await, 200);
    }
    let text = perfscope.encode_metrics().expect("encodes");
    assert_eq!(count(&text, "unmatched", 200), 150, "{text}");
    let logs = String::from_utf8(logs.0.lock().clone()).expect("utf-8");
    assert_eq!(
        logs.matches("has seen no route template").count(),
        1,
        "{logs}"
    );
}

async fn slow_report(State(pool): State<TimedPool>) -> Result<&'static str, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    client
        .query("SELECT pg_sleep(0.15), 'secret-literal'", &[])
        .await
        .map_err(|e| e.to_string())?;
    Ok("done")
}

async fn user_orders(
    State(pool): State<TimedPool>,
    Path(user): Path<i32>,
) -> Result<String, String> {
    let client = pool.get().await.map_err(|e| e.to_string())?;
    let orders = client
        .query("SELECT id FROM orders WHERE user_id = $1", &[&user])
        .await
        .map_err(|e| e.to_string())?;
    // The N+1: one query per order instead of one for all.
    for order in &orders {
        let id: i32 = order.get(0);
        client
            .query_one("SELECT id, user_id FROM orders WHERE id = $1", &[&id])
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(orders.len().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_routes_queries_are_attributed_to_it_slow_log_and_n_plus_one() {
    let cluster = PgCluster::start();
    cluster
        .exec(
            "postgres",
            "CREATE TABLE orders (id int PRIMARY KEY, user_id int NOT NULL);
             INSERT INTO orders SELECT g, 1 + g % 4 FROM generate_series(1, 48) g;",
        )
        .await;
    let perfscope = perfscope_with("100");
    let pool = support::pg::pool(&perfscope, &cluster).await;
    let app = Router::new()
        .route("/reports/slow", get(slow_report))
        .route("/users/{id}/orders", get(user_orders))
        .with_state(pool)
        .layer(perfscope.axum_layer());
    let base = serve(app).await;
    assert_eq!(
        support::status_of(&format!("{base}/reports/slow")).await,
        200
    );
    assert_eq!(
        support::status_of(&format!("{base}/users/2/orders")).await,
        200
    );

    let slow = perfscope.db().slow_log.summary();
    assert_eq!(slow.len(), 1, "{slow:?}");
    assert_eq!(slow[0].route.as_deref(), Some("/reports/slow"));
    let text = perfscope.encode_metrics().expect("encodes");
    // 1 + 12 statements on the N+1 route.
    assert!(
        text.contains("db_route_queries_total{route=\"/users/{id}/orders\"} 13"),
        "{text}"
    );
    assert!(
        text.contains("db_n_plus_one_requests_total{route=\"/users/{id}/orders\"} 1"),
        "{text}"
    );
    assert!(text.contains("db_route_duration_seconds_count{route=\"/reports/slow\"} 1"));
    assert!(!text.contains("secret-literal"));
    let _ = Duration::ZERO;
}

/// A tonic server with the health service (a unary and a streaming
/// method), under the gRPC layer, on a loopback port.
async fn grpc_server(perfscope: &Perfscope) -> (String, tonic_health::server::HealthReporter) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("shop.Orders", tonic_health::ServingStatus::Serving)
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tonic::transport::Server::builder()
        .layer(perfscope.grpc_layer())
        .add_service(health)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);
    (format!("http://{addr}"), reporter)
}

fn grpc_count(text: &str, route: &str, status: u16) -> u64 {
    support::request_count(text, "POST", route, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tonic_methods_are_recorded_by_name_with_their_grpc_status() {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let perfscope = perfscope_with("1000");
    let (url, _reporter) = grpc_server(&perfscope).await;
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel.clone());
    let check = |service: &str| {
        tonic::Request::new(HealthCheckRequest {
            service: service.into(),
        })
    };
    for _ in 0..3 {
        health.check(check("shop.Orders")).await.expect("serving");
    }
    // An unknown service name answers NOT_FOUND (a trailers-only answer).
    let missing = health
        .check(check("shop.Missing"))
        .await
        .expect_err("not found");
    assert_eq!(missing.code(), tonic::Code::NotFound);

    // A streaming call lasts its stream: the first message arrives, then
    // the caller goes away — CANCELLED, recorded when the body is dropped.
    let mut watch = health
        .watch(check("shop.Orders"))
        .await
        .expect("watch")
        .into_inner();
    watch.message().await.expect("a message").expect("status");
    let text = perfscope.encode_metrics().expect("encodes");
    assert_eq!(
        grpc_count(&text, "/grpc.health.v1.Health/Watch", 499),
        0,
        "{text}"
    );
    drop(watch);
    drop(health);

    // A method the server does not have answers UNIMPLEMENTED: unmatched.
    let mut traces =
        opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient::new(channel);
    let unimplemented = traces
        .export(
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::default(),
        )
        .await
        .expect_err("unimplemented");
    assert_eq!(unimplemented.code(), tonic::Code::Unimplemented);

    support::until(
        "the cancelled stream is recorded",
        Duration::from_secs(10),
        || {
            let text = perfscope.encode_metrics().expect("encodes");
            grpc_count(&text, "/grpc.health.v1.Health/Watch", 499) == 1
        },
    )
    .await;
    let text = perfscope.encode_metrics().expect("encodes");
    assert_eq!(
        grpc_count(&text, "/grpc.health.v1.Health/Check", 200),
        3,
        "{text}"
    );
    assert_eq!(
        grpc_count(&text, "/grpc.health.v1.Health/Check", 404),
        1,
        "{text}"
    );
    assert_eq!(grpc_count(&text, "unmatched", 501), 1, "{text}");
    assert!(!text.contains("TraceService"), "{text}");
    assert!(text.contains("http_requests_in_flight 0"), "{text}");
}
