//! A gRPC shop on tonic with perfscope as a library: each method measured
//! by name through `grpc_layer()`, orders read through the timed pool, the
//! metrics on a listener of their own, and a shutdown that drains.
//!
//!     DATABASE_URL=postgres://app@localhost/shop cargo run --features tower --example tonic_shop
//!
//! Methods (no protoc: the messages are prost structs written by hand in
//! `tonic_shop/proto.rs`, and [`Orders`] routes by path as tonic's
//! generated servers do):
//! - `/shop.v1.Orders/Get`: one order by id; NOT_FOUND when there is none;
//! - `/shop.v1.Orders/List`: a customer's orders (at most 1,000), streamed;
//! - `/grpc.health.v1.Health/Check` and `Watch` (tonic-health);
//! - anything else: UNIMPLEMENTED (counted as `unmatched`, never by path).
//!
//! gRPC listens on `SHOP_LISTEN` (default `127.0.0.1:50051`), the open
//! `GET /metrics` on `SHOP_METRICS_LISTEN` (default `127.0.0.1:9464`), an
//! address only the scraper should reach. The other settings are the
//! agent's (`DATABASE_URL`, `DATABASE_POOL_MAX`, `PERFSCOPE_*`). Ctrl-C or
//! SIGTERM turns the health to NOT_SERVING, stops accepting calls, gives
//! open ones `PERFSCOPE_SHUTDOWN_GRACE`, then stops perfscope's tasks.

#[path = "tonic_shop/proto.rs"]
mod proto;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use perfscope::db::{DbError, TimedPool};
use proto::{GetOrder, ListOrders, Order};
use tonic::{Request, Response, Status};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, customer_id bigint NOT NULL, total_cents bigint NOT NULL);
CREATE INDEX IF NOT EXISTS orders_customer ON orders (customer_id, id);
";

/// The most orders one `List` streams.
const LIST_LIMIT: i64 = 1_000;

/// `shop.v1.Orders`: its two methods over the app's timed pool.
#[derive(Clone)]
struct Orders {
    pool: TimedPool,
}

impl Orders {
    async fn get(self, request: Request<GetOrder>) -> Result<Response<Order>, Status> {
        let id = request.into_inner().id;
        let client = self.pool.get().await.map_err(db_status)?;
        let row = client
            .named("getOrder")
            .query_opt(
                "SELECT id, customer_id, total_cents FROM orders WHERE id = $1",
                &[&id],
            )
            .await
            .map_err(db_status)?;
        row.map(|row| Response::new(order(&row)))
            .ok_or_else(|| Status::not_found("no such order"))
    }

    async fn list(
        self,
        request: Request<ListOrders>,
    ) -> Result<Response<impl tokio_stream::Stream<Item = Result<Order, Status>>>, Status> {
        let customer = request.into_inner().customer_id;
        let client = self.pool.get().await.map_err(db_status)?;
        let rows = client
            .named("listOrders")
            .query(
                "SELECT id, customer_id, total_cents FROM orders WHERE customer_id = $1 ORDER BY id LIMIT $2",
                &[&customer, &LIST_LIMIT],
            )
            .await
            .map_err(db_status)?;
        // Read first, so a slow reader of the stream holds no connection.
        let orders: Vec<Order> = rows.iter().map(order).collect();
        Ok(Response::new(tokio_stream::iter(
            orders.into_iter().map(Ok),
        )))
    }
}

fn order(row: &tokio_postgres::Row) -> Order {
    Order {
        id: row.get(0),
        customer_id: row.get(1),
        total_cents: row.get(2),
    }
}

/// A pool error as a gRPC status: the details go to the log, never to the
/// caller (they may quote SQL).
fn db_status(error: impl Into<DbError>) -> Status {
    let error = error.into();
    eprintln!("database error: {error}");
    match error {
        DbError::Pool(_) | DbError::Budget(_) => Status::unavailable("database unavailable"),
        _ => Status::internal("database error"),
    }
}

type Answer = http::Response<tonic::body::Body>;

/// Routing by method path, as tonic's generated `OrdersServer` would.
impl tower::Service<http::Request<tonic::body::Body>> for Orders {
    type Response = Answer;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Answer, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let orders = self.clone();
        match request.uri().path() {
            "/shop.v1.Orders/Get" => Box::pin(async move {
                let method = tower::service_fn(move |r| orders.clone().get(r));
                Ok(grpc().unary(method, request).await)
            }),
            "/shop.v1.Orders/List" => Box::pin(async move {
                let method = tower::service_fn(move |r| orders.clone().list(r));
                Ok(grpc().server_streaming(method, request).await)
            }),
            _ => Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// A method's protobuf codec: answers `T`, requests `U` (inferred).
fn grpc<T, U>() -> tonic::server::Grpc<tonic_prost::ProstCodec<T, U>>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    tonic::server::Grpc::new(tonic_prost::ProstCodec::default())
}

impl tonic::server::NamedService for Orders {
    const NAME: &'static str = "shop.v1.Orders";
}

/// An address from `var`, or `default` when it is unset.
fn listen(var: &str, default: &str) -> Result<SocketAddr, String> {
    let value = std::env::var(var).unwrap_or_else(|_| default.into());
    value
        .parse()
        .map_err(|error| format!("{var}={value}: {error}"))
}

/// Ctrl-C, or SIGTERM (what Kubernetes sends before it kills a pod).
async fn shutdown_signal() {
    #[cfg(unix)]
    if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        return;
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let grpc_listen = listen("SHOP_LISTEN", "127.0.0.1:50051")?;
    let metrics_listen = listen("SHOP_METRICS_LISTEN", "127.0.0.1:9464")?;

    // 1. perfscope, the app's timed pool on DATABASE_URL and the readers
    //    of its statistics, all from the agent's variables; every task
    //    stops with `cancel`.
    let cancel = tokio_util::sync::CancellationToken::new();
    let perfscope::Integrated {
        perfscope,
        pool,
        tasks,
    } = perfscope::Integration::from_env()?.start(&cancel).await?;
    pool.get().await?.batch_execute(SCHEMA).await?;

    // 2. The metrics, open, on a port of their own.
    let metrics =
        perfscope::mount::metrics::serve(&perfscope, metrics_listen, cancel.clone()).await?;
    println!(
        "tonic_shop metrics on http://{}/metrics",
        metrics.local_addr()
    );

    // 3. The services, every call measured by its method name. On Ctrl-C
    //    or SIGTERM: NOT_SERVING, no new calls, and the open ones get
    //    PERFSCOPE_SHUTDOWN_GRACE to finish (a health Watch never would).
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<Orders>().await;
    let listener = tokio::net::TcpListener::bind(grpc_listen).await?;
    println!("tonic_shop listening on http://{}", listener.local_addr()?);
    let stopping = tokio_util::sync::CancellationToken::new();
    let server = tonic::transport::Server::builder()
        .layer(perfscope.grpc_layer())
        .add_service(health_service)
        .add_service(Orders { pool })
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stopping.clone().cancelled_owned(),
        );
    let mut server = std::pin::pin!(server);
    tokio::select! {
        served = server.as_mut() => served?,
        () = shutdown_signal() => {
            health.set_not_serving::<Orders>().await;
            stopping.cancel();
            let grace = perfscope.config().server.shutdown_grace;
            match tokio::time::timeout(grace, server).await {
                Ok(served) => served?,
                Err(_) => eprintln!("calls still open after {grace:?}: closing them"),
            }
        }
    }

    // 4. Calls drained: stop the metrics listener and perfscope's tasks.
    cancel.cancel();
    metrics.join().await?;
    tasks.join().await;
    Ok(())
}
