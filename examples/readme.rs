//! Every Rust snippet of README.md, verbatim, so the README cannot drift
//! from the API: each sits in a function that gives it what it needs
//! (imports, `pool`, `perfscope`, `your_service`, …) before it, and this
//! file is compiled with the examples (`cargo build --all-features
//! --examples`, clippy's `--all-targets`). `tests/readme.rs` fails when a
//! README snippet has no exact copy here.
//!
//! Nothing here runs: `main` only exists, and no snippet needs a database
//! to compile. The snippets keep the README's layout, so this module is
//! left alone by rustfmt.

fn main() {}

#[rustfmt::skip]
#[allow(dead_code, unused_variables)]
mod readme {
    use std::error::Error;
    use std::pin::pin;
    use std::sync::Arc;

    use futures_util::StreamExt;
    use perfscope::batch::BatchOptions;
    use perfscope::db::Keyset;
    use tokio_postgres::types::ToSql;

    type Result<T = (), E = Box<dyn Error>> = std::result::Result<T, E>;

    struct User {
        id: i64,
        email: String,
        name: String,
    }

    async fn load_user(pool: &perfscope::TimedPool, id: i64) -> Result<Arc<User>, perfscope::DbError> {
        let client = pool.get().await?;
        let row = client.query_one("SELECT id, email, name FROM users WHERE id = $1", &[&id]).await?;
        Ok(Arc::new(User { id: row.get(0), email: row.get(1), name: row.get(2) }))
    }

    // ## As a library: the signal every snippet drains on.

    /// Ctrl-C or SIGTERM (what Kubernetes sends).
    async fn shutdown() {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut term) => drop(term.recv().await),
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = term => {}
        }
    }

    // Poem.
    async fn poem() -> Result {
        use perfscope::mount::{MetricsAccess, Mount};
        use poem::{EndpointExt, Route, Server, get, listener::TcpListener};
        use std::time::Duration;

        let cancel = tokio_util::sync::CancellationToken::new();
        let perfscope::Integrated { perfscope, pool, tasks } =
            perfscope::Integration::from_env()?.start(&cancel).await?;

        let app = Mount::new(&perfscope)                            // /api/performance/* and /ui, nothing else
            .onto(Route::new().at("/orders/count", get(count)))     // your `/`, fallback and /healthz stay yours
            .at("/metrics", perfscope::mount::metrics::endpoint(&perfscope, MetricsAccess::Open))
            .data(pool)                                             // handlers take Data<&TimedPool>
            .with(perfscope.middleware())                           // metrics by route template
            .with(perfscope.sentry_middleware())                    // feature `sentry`
            .with(perfscope.otel_middleware());                     // feature `otlp`, outermost

        Server::new(TcpListener::bind("0.0.0.0:3000"))
            .run_with_graceful_shutdown(app, shutdown(), Some(Duration::from_secs(30)))
            .await?;
        cancel.cancel();
        tasks.join().await;
        Ok(())
    }

    // axum.
    async fn axum_app() -> Result {
        use perfscope::mount::MetricsAccess;
        use std::net::SocketAddr;

        let cancel = tokio_util::sync::CancellationToken::new();
        let perfscope::Integrated { perfscope, pool, tasks } =
            perfscope::Integration::from_env()?.start(&cancel).await?;

        let app = axum::Router::new()
            .route("/orders/count", axum::routing::get(count_axum))
            .with_state(pool)                                       // handlers take State<TimedPool>
            .route("/metrics", perfscope::mount::axum::metrics(&perfscope, MetricsAccess::Open))
            .merge(perfscope::mount::axum::router(&perfscope))      // /api/performance/*, /ui
            .layer(perfscope.axum_layer());                         // inside the router: it reads MatchedPath

        let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()) // the login's rate limit needs the peer
            .with_graceful_shutdown(shutdown())
            .await?;
        cancel.cancel();
        tasks.join().await;
        Ok(())
    }

    // tonic: the host's service (here tonic-health's) is `your_service`.
    async fn tonic_app() -> Result {
        let your_service = |_pool: perfscope::TimedPool| tonic_health::server::health_reporter().1;

        let cancel = tokio_util::sync::CancellationToken::new();
        let perfscope::Integrated { perfscope, pool, tasks } =
            perfscope::Integration::from_env()?.start(&cancel).await?;
        let metrics =                                               // GET /metrics on a port of its own
            perfscope::mount::metrics::serve(&perfscope, "0.0.0.0:9464".parse()?, cancel.clone()).await?;

        tonic::transport::Server::builder()
            .layer(perfscope.grpc_layer())                          // calls by /package.Service/Method and grpc-status
            .add_service(your_service(pool))
            .serve_with_shutdown("0.0.0.0:50051".parse()?, shutdown())
            .await?;
        cancel.cancel();
        metrics.join().await?;
        tasks.join().await;
        Ok(())
    }

    // Custom measurements.
    async fn measurements(perfscope: perfscope::Perfscope) -> Result {
        let measurements = perfscope.measurements();
        {
            let _timer = measurements.start("rebuild_index");   // records on drop
        }
        let user = measurements.track("load_user", async { Ok::<_, std::io::Error>(42) }).await?;
        Ok(())
    }

    // ### Handlers and the pool's errors.
    use perfscope::db::{DbError, TimedPool};

    #[poem::handler]
    async fn count(poem::web::Data(pool): poem::web::Data<&TimedPool>) -> Result<String, DbError> {
        let client = pool.get().await?;                                      // 503 on a pool timeout
        let row = client.query_one("SELECT count(*) FROM orders", &[]).await?; // 500 on a failed statement
        Ok(row.get::<_, i64>(0).to_string())
    }

    // axum: the same body; DbError is an IntoResponse.
    async fn count_axum(axum::extract::State(pool): axum::extract::State<TimedPool>) -> Result<String, DbError> {
        let client = pool.get().await?;
        let row = client.query_one("SELECT count(*) FROM orders", &[]).await?;
        Ok(row.get::<_, i64>(0).to_string())
    }

    // ### Logging.
    fn logging() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .init();
    }

    // ### The allocator.
    #[global_allocator]
    static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    // ### What `Integration` does.
    async fn integration() -> Result {
        let cancel = tokio_util::sync::CancellationToken::new();
        let perfscope::Integrated { perfscope, pool, tasks } = perfscope::Integration::from_env()?
            .pool_settings(perfscope::PoolSettings { max: 16, ..Default::default() }) // else DATABASE_POOL_MIN/MAX
            .start(&cancel)          // the app's timed pool, the monitors, the elected readers
            .await?;
        cancel.cancel();
        tasks.join().await;
        Ok(())
    }

    // ### Query caches.
    async fn query_caches(perfscope: perfscope::Perfscope, pool: perfscope::TimedPool, id: i64, hit: bool) -> Result {
        let users = perfscope.caches().query_cache::<Arc<User>>("users");   // MAX_CACHE_SIZE, QUERY_CACHE_TTL
        let user = users
            .cached_query(&format!("user:{id}"), || async { load_user(&pool, id).await }, None)
            .await?;                                    // Some(ttl) overrides the default per entry
        users.invalidate(&format!("user:{id}"));        // by key
        users.invalidate_prefix(&format!("user:{id}:"));// by prefix
        perfscope.track_cache_operation("session_lookup", hit);   // a cache of your own
        Ok(())
    }

    // ### Batches, COPY and keyset pagination.
    async fn batches(perfscope: perfscope::Perfscope, pool: &perfscope::TimedPool, users: Vec<User>, user_id: i64) -> Result {
        // Cut a slice into batches, two at a time; every batch is timed and
        // reported, so failed ones can be retried exactly.
        let report = perfscope.batches().batch_operation(
            "import_users", &users, BatchOptions { batch_size: 1000, concurrency: 2 },
            |_, chunk| async move {
                let client = pool.get().await?;
                client.copy_in("users", &["id", "email", "name"],      // COPY … FROM STDIN BINARY
                    chunk.iter().map(|u| [&u.id as &(dyn ToSql + Sync), &u.email, &u.name])).await
            }).await;
        for failed in report.failures() { /* failed.items: Range<usize>, failed.result: Err(why) */ }

        // Every order, 500 rows a page, constant cost per page however deep.
        let mut pages = pin!(pool.cursor_paginate(
            Keyset::new("orders", &["created_at", "id"]).select(&["id", "total"]).page_size(500)
                .filter("user_id = $1", vec![Arc::new(user_id)])));
        while let Some(page) = pages.next().await { let rows = page?; /* … */ }
        Ok(())
    }

    // ### The timed Postgres pool.
    async fn timed_pool(pool: perfscope::TimedPool, user_id: i64) -> Result {
        let mut client = pool.get().await?;            // timed into db_pool_wait_duration_seconds
        let rows = client.query("SELECT id, total_cents FROM orders WHERE user_id = $1", &[&user_id]).await?;
        client.named("findManyOrders").query("SELECT id FROM orders", &[]).await?;  // operation="findManyOrders"
        let stmt = client.prepare("UPDATE users SET seen = now() WHERE id = $1").await?;
        client.execute(&stmt, &[&user_id]).await?;
        let tx = client.transaction().await?;          // timed too
        tx.execute("DELETE FROM carts WHERE user_id = $1", &[&user_id]).await?;
        tx.commit().await?;
        Ok(())
    }

    // #### Behind a transaction pooler.
    async fn pooler(perfscope: perfscope::Perfscope, pooler_url: String) -> Result {
        let settings = perfscope::db::PoolSettings { statement_cache: false, ..Default::default() };
        let pool = perfscope.connect_pool(&pooler_url, settings).await?;
        Ok(())
    }

    // ### With the app's own OpenTelemetry.
    async fn host_tracer_provider(perfscope: perfscope::Perfscope) -> Result {
        let cancel = tokio_util::sync::CancellationToken::new();
        use perfscope::telemetry::otel::opentelemetry_sdk::trace::SdkTracerProvider;

        // The app's provider, built as it builds it today (exporter, resource, sampler).
        let provider = SdkTracerProvider::builder().build();
        perfscope.use_tracer_provider(&provider);
        let tasks = perfscope.start(&cancel);
        // … serve; then stop perfscope first, the app's pipeline last.
        cancel.cancel();
        tasks.join().await;
        provider.shutdown()?;
        Ok(())
    }
}
