//! The examples as a user runs them: built by cargo, started against a
//! throwaway cluster, called over real sockets, scraped, and stopped by a
//! signal: the tonic shop and the axum shop. (The Poem shop runs in
//! tests/postgres.rs.)

mod support;

#[path = "../examples/tonic_shop/proto.rs"]
mod proto;

use std::time::{Duration, Instant};

use proto::{GetOrder, ListOrders, Order};
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, Reaper, client, eventually, example_binary, printed, status_of};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::{Code, Request, Status};
use tonic_health::pb::health_check_response::ServingStatus;

/// A client of `shop.v1.Orders`, as tonic's generated `OrdersClient` is:
/// `tonic::client::Grpc` with the example's own messages.
struct OrdersClient(tonic::client::Grpc<tonic::transport::Channel>);

impl OrdersClient {
    fn new(channel: tonic::transport::Channel) -> Self {
        Self(tonic::client::Grpc::new(channel))
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.0
            .ready()
            .await
            .map_err(|error| Status::unavailable(error.to_string()))
    }

    /// A unary call to `path` (any path: the server decides).
    async fn unary<A>(&mut self, path: &'static str, request: GetOrder) -> Result<A, Status>
    where
        A: prost::Message + Default + Send + 'static,
    {
        self.ready().await?;
        let codec = tonic_prost::ProstCodec::<GetOrder, A>::default();
        self.0
            .unary(
                Request::new(request),
                PathAndQuery::from_static(path),
                codec,
            )
            .await
            .map(tonic::Response::into_inner)
    }

    async fn get(&mut self, id: i64) -> Result<Order, Status> {
        self.unary("/shop.v1.Orders/Get", GetOrder { id }).await
    }

    /// Every order `List` streams, read to the stream's end.
    async fn list(&mut self, customer_id: i64) -> Result<Vec<Order>, Status> {
        self.ready().await?;
        let codec = tonic_prost::ProstCodec::<ListOrders, Order>::default();
        let mut stream = self
            .0
            .server_streaming(
                Request::new(ListOrders { customer_id }),
                PathAndQuery::from_static("/shop.v1.Orders/List"),
                codec,
            )
            .await?
            .into_inner();
        let mut orders = Vec::new();
        while let Some(order) = stream.message().await? {
            orders.push(order);
        }
        Ok(orders)
    }
}

/// The count of `http_request_duration_seconds` for one gRPC method and
/// status.
fn calls(metrics: &str, route: &str, status: u16) -> u64 {
    support::request_count(metrics, "POST", route, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tonic_example_records_its_methods_by_name() {
    let cluster = PgCluster::start();
    let mut child = Reaper(
        std::process::Command::new(example_binary("tonic_shop"))
            .env("DATABASE_URL", cluster.url("postgres", "postgres"))
            .env("SHOP_LISTEN", "127.0.0.1:0")
            .env("SHOP_METRICS_LISTEN", "127.0.0.1:0")
            .env("PERFSCOPE_SHUTDOWN_GRACE", "1000")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the example starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let addresses = printed(
        stdout,
        &["tonic_shop listening on ", "tonic_shop metrics on "],
    )
    .await;
    let (grpc_url, metrics_url) = (&addresses[0], &addresses[1]);
    // The example made its schema before it listened; customer 7 has ten
    // orders (6, 16, …, 96).
    cluster
        .exec(
            "postgres",
            "INSERT INTO orders SELECT g, 1 + g % 10, g * 100 FROM generate_series(1, 100) g",
        )
        .await;

    let channel = tonic::transport::Endpoint::from_shared(grpc_url.clone())
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut orders = OrdersClient::new(channel.clone());
    for _ in 0..3 {
        let order = orders.get(42).await.expect("order 42");
        assert_eq!(
            order,
            Order {
                id: 42,
                customer_id: 3,
                total_cents: 4200
            }
        );
    }
    let missing = orders.get(424_242).await.expect_err("no such order");
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");

    let listed = orders.list(7).await.expect("customer 7's orders");
    let ids: Vec<i64> = listed.iter().map(|o| o.id).collect();
    assert_eq!(ids, (0..10).map(|i| 6 + 10 * i).collect::<Vec<i64>>());
    assert!(listed.iter().all(|o| o.customer_id == 7), "{listed:?}");
    assert!(orders.list(11).await.expect("no orders").is_empty());

    let unknown = orders
        .unary::<Order>("/shop.v1.Orders/Delete", GetOrder { id: 42 })
        .await
        .expect_err("no such method");
    assert_eq!(unknown.code(), Code::Unimplemented, "{unknown:?}");

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let serving = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "shop.v1.Orders".into(),
        })
        .await
        .expect("health check")
        .into_inner();
    assert_eq!(serving.status, ServingStatus::Serving as i32);

    // The metrics listener: each method by name with its status, the
    // unknown one unmatched, the pool's statements by operation and table,
    // attributed to the method that ran them.
    let http = client();
    let metrics = eventually("both streams are recorded", async || {
        let text = http.get(metrics_url).send().await.ok()?.text().await.ok()?;
        (calls(&text, "/shop.v1.Orders/List", 200) == 2).then_some(text)
    })
    .await;
    assert_eq!(calls(&metrics, "/shop.v1.Orders/Get", 200), 3, "{metrics}");
    assert_eq!(calls(&metrics, "/shop.v1.Orders/Get", 404), 1, "{metrics}");
    assert_eq!(calls(&metrics, "unmatched", 501), 1, "{metrics}");
    assert_eq!(
        calls(&metrics, "/grpc.health.v1.Health/Check", 200),
        1,
        "{metrics}"
    );
    for expected in [
        r#"db_query_duration_seconds_count{operation="getOrder",model="orders"} 4"#,
        r#"db_query_duration_seconds_count{operation="listOrders",model="orders"} 2"#,
        r#"db_route_queries_total{route="/shop.v1.Orders/Get"} 4"#,
        r#"db_route_queries_total{route="/shop.v1.Orders/List"} 2"#,
        "http_requests_in_flight 0",
    ] {
        assert!(metrics.contains(expected), "missing {expected}\n{metrics}");
    }
    // Never a raw path, never a query's value in a label.
    assert!(!metrics.contains("Delete"), "{metrics}");
    assert!(
        metrics
            .lines()
            .filter_map(|line| line.split_once('}'))
            .all(|(labels, _)| !labels.contains("424242")),
        "{metrics}"
    );

    // SIGTERM with a health Watch open (a stream that never ends by
    // itself): its watcher hears NOT_SERVING, the server drains for
    // PERFSCOPE_SHUTDOWN_GRACE, perfscope's tasks stop, and it exits 0.
    let serving_status =
        |message: Option<tonic_health::pb::HealthCheckResponse>| message.expect("a status").status;
    let mut watch = health
        .watch(tonic_health::pb::HealthCheckRequest {
            service: "shop.v1.Orders".into(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.message().await.expect("a message");
    assert_eq!(serving_status(first), ServingStatus::Serving as i32);
    // SAFETY: a signal to our own child's pid.
    let rc = unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
        .await
        .expect("NOT_SERVING within 10 s")
        .expect("a message after SIGTERM");
    assert_eq!(serving_status(next), ServingStatus::NotServing as i32);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the example exits after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    drop((orders, watch));
}

/// `examples/axum_shop` against a throwaway cluster, over its socket: its
/// routes by template, the N+1 and the slow query attributed to their axum
/// routes in perfscope's own API (merged into the app), a missing user as
/// the handler's 404, and SIGTERM drains and exits cleanly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_axum_example_app_runs_with_perfscope_merged_in() {
    let cluster = PgCluster::start();
    let mut child = Reaper(
        std::process::Command::new(example_binary("axum_shop"))
            .env("DATABASE_URL", cluster.url("postgres", "postgres"))
            .env("SHOP_LISTEN", "127.0.0.1:0")
            .env("PERFSCOPE_ADMIN_TOKEN", ADMIN_TOKEN)
            .env("SLOW_QUERY_THRESHOLD", "200")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the example starts"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let base = printed(stdout, &["shop listening on "]).await.remove(0);
    cluster
        .exec(
            "postgres",
            "INSERT INTO users SELECT g, 'user' || g || '@example.com', 'User ' || g FROM generate_series(1, 20) g;
             INSERT INTO orders SELECT g, 1 + g % 20, g FROM generate_series(1, 400) g;",
        )
        .await;
    let http = client();
    let user: serde_json::Value = http
        .get(format!("{base}/users/7"))
        .send()
        .await
        .expect("user")
        .json()
        .await
        .expect("json");
    assert_eq!(user["email"], "user7@example.com");
    assert_eq!(status_of(&format!("{base}/users/999")).await, 404);
    assert_eq!(status_of(&format!("{base}/users/3/orders")).await, 200);
    assert_eq!(status_of(&format!("{base}/reports/slow")).await, 200);

    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for status in [200, 404] {
        let line = format!(
            "http_request_duration_seconds_count{{method=\"GET\",route=\"/users/{{id}}\",status_code=\"{status}\"}} 1"
        );
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
    assert!(
        metrics.contains("db_n_plus_one_requests_total{route=\"/users/{id}/orders\"} 1"),
        "{metrics}"
    );
    let slow: serde_json::Value = http
        .get(format!("{base}/api/performance/slow-queries"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("slow queries")
        .json()
        .await
        .expect("json");
    let queries = slow["queries"].as_array().expect("queries");
    assert!(
        queries
            .iter()
            .any(|q| q["route"] == "/reports/slow"
                && q["app"]["calls"].as_u64() >= Some(1)
                // pg_stat_statements' text once it read the statement.
                && (q["statement"] == "select pg_sleep(?)" || q["statement"] == "select pg_sleep($1)")),
        "{slow}"
    );

    // SIGTERM: the server drains, perfscope stops, the process exits 0.
    let pid = child.0.id() as libc::pid_t;
    // SAFETY: signalling our own child by its pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.0.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .expect("waiter");
    assert!(status.success(), "{status:?}");
}
