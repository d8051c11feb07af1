//! The shop on axum: perfscope in an axum app, in the few lines it takes.
//! One step from the environment (`Integration`: the config, the app's
//! timed pool, the elected readers of its database), the tower layer
//! inside the router (routes by template, queries attributed to them),
//! a query cache, handlers that use `?` on the pool's errors, perfscope's
//! API and pages merged in, an open `/metrics`, and a graceful shutdown.
//!
//!     DATABASE_URL=postgres://app@localhost/shop cargo run --features agent,axum --example axum_shop
//!
//! Routes:
//! - `GET /users/{id}`: one user, through the `users` query cache;
//! - `GET /users/{id}/orders`: the user's orders, then each order again
//!   (an N+1 on purpose: perfscope's findings name this route);
//! - `GET /reports/slow`: a slow query (the slow log names this route);
//! - `GET /metrics`: this app's metrics, open; perfscope's API under
//!   `/api/performance/*` (Swagger UI at `/api/performance/docs`) and the
//!   pages under `/ui` (log in with `PERFSCOPE_ADMIN_TOKEN`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use perfscope::cache::QueryCache;
use perfscope::db::{DbError, TimedPool};
use perfscope::mount::MetricsAccess;
use serde::Serialize;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (id bigint PRIMARY KEY, email text NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE IF NOT EXISTS orders (id bigint PRIMARY KEY, user_id bigint NOT NULL REFERENCES users (id), total_cents bigint NOT NULL);
";

#[derive(Clone, Debug, Serialize)]
struct User {
    id: i64,
    email: String,
    name: String,
}

#[derive(Clone)]
struct App {
    pool: TimedPool,
    users: QueryCache<Option<Arc<User>>>,
}

/// One user, cached for a minute (misses too). The cache's error wraps
/// the loader's: a failed load answers 503 (and is counted by the cache).
async fn user(State(app): State<App>, Path(id): Path<i64>) -> Result<Response, StatusCode> {
    let pool = app.pool.clone();
    let user = app
        .users
        .cached_query(
            &format!("user:{id}"),
            || async move {
                let client = pool.get().await?;
                let row = client
                    .query_opt("SELECT id, email, name FROM users WHERE id = $1", &[&id])
                    .await?;
                Ok::<_, DbError>(row.map(|r| {
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
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    Ok(match user {
        Some(user) => Json(User::clone(&user)).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// The user's orders, each read again one by one: the N+1 perfscope
/// flags for this route.
async fn user_orders(
    State(app): State<App>,
    Path(id): Path<i64>,
) -> Result<Json<Vec<(i64, i64)>>, DbError> {
    let client = app.pool.get().await?;
    let ids = client
        .query(
            "SELECT id FROM orders WHERE user_id = $1 ORDER BY id",
            &[&id],
        )
        .await?;
    let mut orders = Vec::with_capacity(ids.len());
    for row in &ids {
        let order: i64 = row.get(0);
        let row = client
            .query_one(
                "SELECT id, total_cents FROM orders WHERE id = $1",
                &[&order],
            )
            .await?;
        orders.push((row.get(0), row.get(1)));
    }
    Ok(Json(orders))
}

/// A slow statement: the slow log keeps it, normalized, with this route.
async fn slow_report(State(app): State<App>) -> Result<&'static str, DbError> {
    let client = app.pool.get().await?;
    client.query("SELECT pg_sleep(0.3)", &[]).await?;
    Ok("done")
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listen = std::env::var("SHOP_LISTEN").unwrap_or_else(|_| "127.0.0.1:3000".into());

    // 1. perfscope from the agent's variables: the app's timed pool from
    //    DATABASE_URL, the monitors, and the readers of that database.
    let cancel = tokio_util::sync::CancellationToken::new();
    let perfscope::Integrated {
        perfscope,
        pool,
        tasks,
    } = perfscope::Integration::from_env()?.start(&cancel).await?;
    pool.get().await?.batch_execute(SCHEMA).await?;
    let app = App {
        users: perfscope.caches().query_cache("users"),
        pool,
    };

    // 2. The routes, the layer inside the router (it reads the route
    //    template), perfscope's API and pages beside them.
    let router = axum::Router::new()
        .route("/users/{id}", get(user))
        .route("/users/{id}/orders", get(user_orders))
        .route("/reports/slow", get(slow_report))
        .with_state(app)
        .route(
            "/metrics",
            perfscope::mount::axum::metrics(&perfscope, MetricsAccess::Open),
        )
        .merge(perfscope::mount::axum::router(&perfscope))
        .layer(perfscope.axum_layer());

    // 3. Serve until Ctrl-C or SIGTERM, drain, then stop perfscope.
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("shop listening on http://{}", listener.local_addr()?);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown())
    .await?;
    cancel.cancel();
    tasks.join().await;
    Ok(())
}

/// Ctrl-C or SIGTERM (what Kubernetes sends).
async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
