//! A small Poem API (users and orders) that uses all of perfscope as a
//! library: the HTTP middleware, the timed pool, a query cache, a batch
//! import over COPY, keyset pagination and a custom measurement, with its
//! own metrics endpoint.
//!
//!     DATABASE_URL=postgres://app@localhost/shop cargo run --example shop
//!
//! Routes:
//! - `POST /users/import?count=N`: N generated users, COPY'd in batches of
//!   1,000, two at a time (`batch_operation` + `copy_in`);
//! - `GET /users/:id`: one user, through the `users` query cache;
//! - `PUT /users/:id/name`: renames, and invalidates the cached user;
//! - `GET /users/:id/orders?after=ID`: a page of orders by keyset;
//! - `GET /reports/orders`: walks every order page by page (memory: one
//!   page), timed as the custom measurement `orders_report`;
//! - `GET /metrics`: this app's metrics (OpenMetrics, open), and perfscope's
//!   own endpoints under `/api/performance/*` and pages under `/ui`.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use perfscope::Perfscope;
use perfscope::batch::BatchOptions;
use perfscope::cache::QueryCache;
use perfscope::db::{Keyset, PoolSettings, TimedPool};
use perfscope::mount::{MetricsAccess, Mount};
use poem::error::{InternalServerError, NotFound, ServiceUnavailable};
use poem::listener::{Acceptor, Listener, TcpListener};
use poem::web::{Data, Json, Path, Query};
use poem::{EndpointExt, IntoResponse, Response, Route, Server, get, handler, post, put};
use serde::{Deserialize, Serialize};
use tokio_postgres::types::ToSql;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), total_cents bigint NOT NULL);
CREATE INDEX IF NOT EXISTS orders_user ON orders (user_id, id);
";

#[derive(Clone, Debug, Serialize)]
struct User {
    id: i64,
    email: String,
    name: String,
}

#[derive(Clone)]
struct App {
    perfscope: Perfscope,
    pool: TimedPool,
    users: QueryCache<Option<Arc<User>>>,
}

#[derive(Deserialize)]
struct ImportQuery {
    count: usize,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ImportReport {
    imported: usize,
    batches: usize,
    failed_batches: Vec<String>,
}

/// Generates `count` users after the highest id and COPYs them in.
#[handler]
async fn import_users(
    app: Data<&App>,
    Query(query): Query<ImportQuery>,
) -> poem::Result<Json<ImportReport>> {
    let client = app.pool.get().await.map_err(ServiceUnavailable)?;
    let start: i64 = client
        .query_one("SELECT coalesce(max(id), 0) FROM users", &[])
        .await
        .map_err(InternalServerError)?
        .get(0);
    drop(client);
    let users: Vec<(i64, String, String)> = (1..=query.count.min(1_000_000) as i64)
        .map(|i| {
            (
                start + i,
                format!("user{}@example.com", start + i),
                format!("User {}", start + i),
            )
        })
        .collect();
    let pool = &app.pool;
    let report = app
        .perfscope
        .batches()
        .batch_operation(
            "import_users",
            &users,
            BatchOptions {
                batch_size: 1000,
                concurrency: 2,
            },
            |_, chunk: &[(i64, String, String)]| async move {
                let client = pool.get().await?;
                client
                    .copy_in(
                        "users",
                        &["id", "email", "name"],
                        chunk
                            .iter()
                            .map(|(id, email, name)| [id as &(dyn ToSql + Sync), email, name]),
                    )
                    .await
            },
        )
        .await;
    Ok(Json(ImportReport {
        imported: report.succeeded_items(),
        batches: report.batches.len(),
        failed_batches: report
            .failures()
            .map(|b| {
                format!(
                    "items {:?}: {}",
                    b.items,
                    b.result
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default()
                )
            })
            .collect(),
    }))
}

/// One user, cached for a minute (misses too, so unknown ids do not
/// reach the database each time).
#[handler]
async fn user(app: Data<&App>, Path(id): Path<i64>) -> poem::Result<Json<User>> {
    let pool = app.pool.clone();
    let user = app
        .users
        .cached_query(
            &format!("user:{id}"),
            || async move {
                let client = pool.get().await?;
                let row = client
                    .named("findUser")
                    .query_opt("SELECT id, email, name FROM users WHERE id = $1", &[&id])
                    .await?;
                Ok::<_, perfscope::db::DbError>(row.map(|r| {
                    Arc::new(User {
                        id: r.get(0),
                        email: r.get(1),
                        name: r.get(2),
                    })
                }))
            },
            Some(Duration::from_secs(60)),
        )
        .await
        .map_err(InternalServerError)?;
    user.map(|u| Json(User::clone(&u)))
        .ok_or_else(|| NotFound(std::io::Error::other("no such user")))
}

#[derive(Deserialize)]
struct Rename {
    name: String,
}

/// Renames a user and drops the cached copy.
#[handler]
async fn rename(
    app: Data<&App>,
    Path(id): Path<i64>,
    Json(body): Json<Rename>,
) -> poem::Result<Response> {
    let client = app.pool.get().await.map_err(ServiceUnavailable)?;
    let changed = client
        .execute(
            "UPDATE users SET name = $1 WHERE id = $2",
            &[&body.name, &id],
        )
        .await
        .map_err(InternalServerError)?;
    app.users.invalidate(&format!("user:{id}"));
    Ok(if changed == 0 {
        poem::http::StatusCode::NOT_FOUND.into_response()
    } else {
        poem::http::StatusCode::NO_CONTENT.into_response()
    })
}

#[derive(Deserialize)]
struct After {
    after: Option<i64>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct OrdersPage {
    orders: Vec<(i64, i64)>,
    next_after: Option<i64>,
}

/// A page of a user's orders: `WHERE user_id = $1 AND id > $2 ORDER BY id`.
#[handler]
async fn user_orders(
    app: Data<&App>,
    Path(id): Path<i64>,
    Query(after): Query<After>,
) -> poem::Result<Json<OrdersPage>> {
    let client = app.pool.get().await.map_err(ServiceUnavailable)?;
    let rows = client
        .named("findManyOrders")
        .query(
            "SELECT id, total_cents FROM orders WHERE user_id = $1 AND id > $2 ORDER BY id LIMIT 50",
            &[&id, &after.after.unwrap_or(0)],
        )
        .await
        .map_err(InternalServerError)?;
    let orders: Vec<(i64, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let next_after = (orders.len() == 50)
        .then(|| orders.last().map(|o| o.0))
        .flatten();
    Ok(Json(OrdersPage { orders, next_after }))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    orders: u64,
    pages: u64,
    total_cents: i64,
}

/// Every order, 500 at a time by keyset, timed as `orders_report`.
#[handler]
async fn orders_report(app: Data<&App>) -> poem::Result<Json<Report>> {
    let pool = app.pool.clone();
    let report = app
        .perfscope
        .measurements()
        .track("orders_report", async move {
            let mut pages = std::pin::pin!(
                pool.cursor_paginate(
                    Keyset::new("orders", &["id"])
                        .select(&["total_cents"])
                        .page_size(500)
                )
            );
            let mut report = Report {
                orders: 0,
                pages: 0,
                total_cents: 0,
            };
            while let Some(page) = pages.next().await {
                let page = page?;
                report.pages += 1;
                report.orders += page.len() as u64;
                report.total_cents += page.iter().map(|r| r.get::<_, i64>(0)).sum::<i64>();
            }
            Ok::<_, perfscope::db::DbError>(report)
        })
        .await
        .map_err(InternalServerError)?;
    Ok(Json(report))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let database_url = std::env::var("DATABASE_URL").map_err(|_| "set DATABASE_URL")?;
    let listen = std::env::var("SHOP_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());

    // 1. One perfscope for the process; its monitors stop with the server.
    let perfscope = Perfscope::new(perfscope::Config::from_env()?);
    let cancel = tokio_util::sync::CancellationToken::new();
    let monitors = perfscope.start(&cancel);

    // 2. The timed pool and a query cache.
    let pool = perfscope
        .connect_pool(&database_url, PoolSettings::default())
        .await?;
    pool.get().await?.batch_execute(SCHEMA).await?;
    let users = perfscope.caches().query_cache::<Option<Arc<User>>>("users");
    let app = App {
        perfscope: perfscope.clone(),
        pool,
        users,
    };

    // 3. Routes, with perfscope's endpoints and middleware.
    let routes = Route::new()
        .at("/users/import", post(import_users))
        .at("/users/:id", get(user))
        .at("/users/:id/name", put(rename))
        .at("/users/:id/orders", get(user_orders))
        .at("/reports/orders", get(orders_report))
        // Open: the shop's Prometheus scrapes inside its network, no token.
        .at(
            "/metrics",
            perfscope::mount::metrics::endpoint(&perfscope, MetricsAccess::Open),
        );
    // perfscope's API under /api/performance (docs and spec there too) and
    // the web pages under /ui (log in with PERFSCOPE_ADMIN_TOKEN: the
    // shop's own routes in the Overview, its statements in Queries); the
    // shop's other paths stay its own.
    let routes = Mount::new(&perfscope)
        .onto(routes)
        .data(app)
        .with(perfscope.middleware())
        // Sentry transactions with query spans, when SENTRY_DSN is set.
        .with(perfscope.sentry_middleware())
        // OpenTelemetry spans over OTLP, when OTEL_EXPORTER_OTLP_ENDPOINT
        // is set; outermost, so Sentry continues its trace.
        .with(perfscope.otel_middleware());

    let acceptor = TcpListener::bind(listen).into_acceptor().await?;
    for address in acceptor.local_addr() {
        if let Some(address) = address.as_socket_addr() {
            println!("shop listening on http://{address}");
        }
    }
    Server::new_with_acceptor(acceptor)
        .run_with_graceful_shutdown(
            routes,
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            Some(Duration::from_secs(5)),
        )
        .await?;
    cancel.cancel();
    monitors.join().await;
    Ok(())
}
