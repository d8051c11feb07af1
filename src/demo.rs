//! `perfscope demo`: the main job on an embedded default. It starts a
//! throwaway Postgres cluster (pg_stat_statements, and hypopg when the
//! server has it), creates a small shop schema, and serves in one process
//! the agent's endpoints plus a small demo API built with the library,
//! whose routes issue the queries a real app gets wrong: a search by an
//! unindexed column, a lookup by one column or another (an `OR`, one
//! branch under `lower()`), a lookup by SKU whose suggested index the demo
//! then creates (so an impact report shows), an N+1 list, a slow report (timed as a custom
//! measurement) — and a cached customer lookup, so the cache metrics show. A background workload
//! drives those routes over HTTP, so route attribution, N+1 detection, the
//! slow log and index advice all show within a minute.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use poem::web::{Data, Path, Query};
use poem::{EndpointExt, Route, get, handler};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::Perfscope;
use crate::agent::{AgentError, serve_with};
use crate::cache::QueryCache;
use crate::config::{Config, ConfigError, DatabaseUrl, Secret};
use crate::db::{PoolSettings, TimedPool};
use crate::testing::cluster::Cluster;

const INSTALL: &str = include_str!("../sql/install.sql");

const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL,
                        phone text NOT NULL);
INSERT INTO customers SELECT g, 'customer' || g || '@example.com', 'Customer ' || g,
                             '+1555' || lpad(g::text, 7, '0')
  FROM generate_series(1, 50000) g;
CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id),
                     total numeric NOT NULL, created_at timestamptz NOT NULL);
INSERT INTO orders SELECT g, 1 + g % 5000, (g % 500) + 0.99, now() - g * interval '30 seconds'
  FROM generate_series(1, 200000) g;
CREATE INDEX orders_customer ON orders (customer_id);
CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL, sku text NOT NULL, qty int NOT NULL);
INSERT INTO order_items SELECT g, 1 + g % 200000, 'SKU' || (g % 1000), 1 + g % 3
  FROM generate_series(1, 400000) g;
CREATE INDEX order_items_order ON order_items (order_id);
ANALYZE;
-- The planner role plans the shop's statements (index advice, EXPLAIN).
GRANT SELECT ON ALL TABLES IN SCHEMA public TO perfscope_planner;
-- The shop's tables belong to a role the agent is a member of, so ANALYZE
-- and VACUUM from the API and the Advice page work in the demo (the
-- least-privilege role of sql/install.sql alone may only read).
CREATE ROLE shop NOLOGIN;
ALTER TABLE customers OWNER TO shop;
ALTER TABLE orders OWNER TO shop;
ALTER TABLE order_items OWNER TO shop;
GRANT shop TO perfscope;
";

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// No cluster (e.g. no server binaries: the message says what to install).
    #[error(transparent)]
    Cluster(#[from] crate::testing::cluster::ClusterError),
    /// Setting up the schema or the pool failed.
    #[error("setting up the demo database: {0}")]
    Setup(String),
    /// The agent failed.
    #[error(transparent)]
    Agent(#[from] AgentError),
}

fn setup(error: impl std::fmt::Display) -> DemoError {
    DemoError::Setup(error.to_string())
}

/// A fresh random token (hex), for an admin token the user did not set.
fn random_token() -> Result<String, DemoError> {
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .map_err(setup)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[derive(serde::Deserialize)]
struct Search {
    email: String,
}

/// Search by an unindexed column: a sequential scan on every call.
#[handler]
async fn search(pool: Data<&TimedPool>, Query(query): Query<Search>) -> poem::Result<String> {
    let client = pool.get().await.map_err(poem::error::ServiceUnavailable)?;
    let rows = client
        .named("findCustomerByEmail")
        .query(
            "SELECT id, name FROM customers WHERE email = $1",
            &[&query.email],
        )
        .await
        .map_err(poem::error::InternalServerError)?;
    Ok(format!("{} customer(s)", rows.len()))
}

#[derive(serde::Deserialize)]
struct Find {
    phone: String,
    email: String,
}

/// A lookup by phone or by email in any case: an `OR` across columns, one
/// of them under `lower()`, which only an index per branch (one of them an
/// expression index) serves.
#[handler]
async fn find(pool: Data<&TimedPool>, Query(query): Query<Find>) -> poem::Result<String> {
    let client = pool.get().await.map_err(poem::error::ServiceUnavailable)?;
    let rows = client
        .named("findCustomerByPhoneOrEmail")
        .query(
            "SELECT id, name FROM customers WHERE phone = $1 OR lower(email) = lower($2)",
            &[&query.phone, &query.email],
        )
        .await
        .map_err(poem::error::InternalServerError)?;
    Ok(format!("{} customer(s)", rows.len()))
}

#[derive(serde::Deserialize)]
struct Items {
    sku: String,
}

/// Items by SKU: unindexed at first. The demo creates the index the
/// advisor suggests for it after [`APPLY_AFTER`], as an operator would, so
/// the Advice page's "Did it help?" judges it before and after.
#[handler]
async fn items_by_sku(pool: Data<&TimedPool>, Query(query): Query<Items>) -> poem::Result<String> {
    let client = pool.get().await.map_err(poem::error::ServiceUnavailable)?;
    let rows = client
        .named("findItemsBySku")
        .query(
            "SELECT order_id, qty FROM order_items WHERE sku = $1",
            &[&query.sku],
        )
        .await
        .map_err(poem::error::InternalServerError)?;
    Ok(format!("{} item(s)", rows.len()))
}

/// When the demo creates the SKU index, after the workload started.
const APPLY_AFTER: Duration = Duration::from_secs(30);

/// The index the demo creates, as an operator applying the advice would.
const APPLIED_INDEX: &str = "CREATE INDEX CONCURRENTLY order_items_sku ON order_items (sku)";

/// Waits [`APPLY_AFTER`] (or `cancel`), then creates [`APPLIED_INDEX`].
async fn apply_advice(cluster: &Cluster, cancel: &CancellationToken) {
    tokio::select! {
        () = cancel.cancelled() => return,
        () = tokio::time::sleep(APPLY_AFTER) => {}
    }
    tracing::info!(
        "demo: creating order_items (sku), the index the advisor suggests for /demo/items, as an operator would; the Advice page's \"Did it help?\" judges it"
    );
    if let Err(error) = cluster.exec("postgres", APPLIED_INDEX).await {
        tracing::warn!(%error, "demo: creating the SKU index failed");
    }
}

/// The N+1: one query for the orders, then one per order for its items.
#[handler]
async fn customer_orders(pool: Data<&TimedPool>, Path(id): Path<i32>) -> poem::Result<String> {
    let client = pool.get().await.map_err(poem::error::ServiceUnavailable)?;
    let orders = client
        .query(
            "SELECT id, total FROM orders WHERE customer_id = $1",
            &[&id],
        )
        .await
        .map_err(poem::error::InternalServerError)?;
    let mut items = 0;
    for order in &orders {
        let order_id: i32 = order.try_get(0).map_err(poem::error::InternalServerError)?;
        items += client
            .query(
                "SELECT sku, qty FROM order_items WHERE order_id = $1",
                &[&order_id],
            )
            .await
            .map_err(poem::error::InternalServerError)?
            .len();
    }
    Ok(format!("{} orders, {items} items", orders.len()))
}

/// A customer's name through the `customers` query cache: the workload
/// asks for a small set of ids, so most lookups hit.
#[handler]
async fn customer(
    pool: Data<&TimedPool>,
    cache: Data<&QueryCache<Option<String>>>,
    Path(id): Path<i32>,
) -> poem::Result<String> {
    let pool = pool.clone();
    let name = cache
        .cached_query(
            &format!("customer:{id}"),
            || async move {
                let client = pool.get().await?;
                let row = client
                    .named("findCustomer")
                    .query_opt("SELECT name FROM customers WHERE id = $1", &[&id])
                    .await?;
                Ok::<_, crate::db::DbError>(row.map(|r| r.get(0)))
            },
            None,
        )
        .await
        .map_err(poem::error::InternalServerError)?;
    name.ok_or_else(|| poem::error::NotFound(std::io::Error::other("no such customer")))
}

/// A slow report (the sleep stands for a heavy aggregate), timed as the
/// custom measurement `slow_report`.
#[handler]
async fn report(pool: Data<&TimedPool>, perfscope: Data<&Perfscope>) -> poem::Result<String> {
    let pool = pool.clone();
    perfscope
        .measurements()
        .track("slow_report", async move {
            let client = pool.get().await?;
            client.query("SELECT pg_sleep(1.1)", &[]).await?;
            let rows = client
                .query(
                    "SELECT customer_id, sum(total) FROM orders WHERE created_at > now() - interval '30 days' GROUP BY 1 ORDER BY 2 DESC LIMIT 20",
                    &[],
                )
                .await?;
            Ok::<_, crate::db::DbError>(format!("{} rows", rows.len()))
        })
        .await
        .map_err(poem::error::InternalServerError)
}

/// GET over a plain TCP connection (the workload needs nothing more).
async fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: demo\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut sink = Vec::new();
    stream.read_to_end(&mut sink).await?;
    Ok(())
}

/// Drives the demo routes until `cancel` fires.
async fn workload(addr: SocketAddr, cancel: CancellationToken) {
    let mut n: u64 = 0;
    loop {
        n += 1;
        let path = match n % 20 {
            0 => "/demo/reports/slow".to_owned(),
            5 | 10 | 15 => format!("/demo/customers/{}", 1 + n % 25),
            i if i % 2 == 0 => format!("/demo/customers/{}/orders", 1 + (n * 7919) % 5000),
            3 | 7 | 11 => format!("/demo/items?sku=SKU{}", (n * 7) % 1000),
            i if i % 4 == 1 => format!(
                "/demo/customers/find?phone=%2B1555{:07}&email=Customer{}@Example.com",
                1 + (n * 7907) % 50000,
                1 + (n * 104723) % 50000
            ),
            _ => format!(
                "/demo/customers/search?email=customer{}@example.com",
                1 + (n * 104729) % 50000
            ),
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = http_get(addr, &path) => {}
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

/// Runs the demo until `shutdown` resolves; `on_ready` gets the bound
/// address once everything is up, and the admin token when the demo
/// generated it (`None` when the operator set `PERFSCOPE_ADMIN_TOKEN`,
/// which is theirs and is never printed).
pub async fn run(
    mut config: Config,
    shutdown: impl Future<Output = ()> + Send,
    on_ready: impl FnOnce(SocketAddr, Option<&str>),
) -> Result<(), DemoError> {
    tracing::info!("starting a throwaway PostgreSQL cluster");
    let cluster = tokio::task::spawn_blocking(|| Cluster::start(""))
        .await
        .map_err(setup)??;
    cluster.exec("postgres", INSTALL).await.map_err(setup)?;
    tracing::info!("creating the demo schema (about 650,000 rows)");
    cluster.exec("postgres", SCHEMA).await.map_err(setup)?;
    // The schema load is not the app's workload, nor is the reset itself
    // (run untracked, or it would be listed as the app's statement).
    cluster.reset_statements().await.map_err(setup)?;

    let generated = match &config.server.admin_token {
        Some(_) => None,
        None => {
            let token = random_token()?;
            config.server.admin_token = Some(Secret::new(token.as_str()));
            Some(token)
        }
    };
    // The agent reads as the least-privilege role; the demo app is the
    // database's owner.
    config.database.url = Some(DatabaseUrl::new(cluster.url("perfscope", "postgres")));
    // Its statements (the demo app connects as `postgres`) are planned by
    // the planner role of sql/install.sql, unless the operator chose one.
    if config.database.planner.is_none() {
        config.database.planner = Some(crate::config::PlannerConfig {
            user: "perfscope_planner".into(),
            password: None,
            roles: vec!["postgres".into()],
            trusted_owners: Vec::new(),
        });
    }
    // The demo's history lives beside its throwaway cluster and goes with
    // it, unless PERFSCOPE_DATA_DIR names a place.
    if config.store.data_dir == crate::config::DataDir::Unset {
        config.store.data_dir =
            crate::config::DataDir::Dir(cluster.work_dir().join("perfscope-history"));
    }
    // Quick feedback: read every 2 s (the advisor every 8 s).
    if config.readers.interval > Duration::from_secs(2) {
        config.readers.interval = Duration::from_secs(2);
    }
    // The demo app's pool follows DATABASE_POOL_MIN/MAX too (the soak
    // shrinks it so the pool alert fires and resolves with the load).
    let (pool_min, pool_max) = (config.database.pool_min, config.database.pool_max);
    let perfscope = Perfscope::new(config);
    let pool = perfscope
        .connect_pool(
            &cluster.url("postgres", "postgres"),
            PoolSettings {
                name: "demo".into(),
                min: pool_min,
                max: pool_max,
                ..PoolSettings::default()
            },
        )
        .await
        .map_err(|e| {
            DemoError::Agent(AgentError::Config(ConfigError {
                var: "DATABASE_URL",
                value: "demo cluster".into(),
                expected: e.to_string(),
            }))
        })?;
    let customers = perfscope
        .caches()
        .query_cache::<Option<String>>("customers");
    let routes = Route::new()
        .at("/demo/customers/search", get(search).data(pool.clone()))
        .at("/demo/customers/find", get(find).data(pool.clone()))
        .at("/demo/items", get(items_by_sku).data(pool.clone()))
        .at(
            "/demo/customers/:id",
            get(customer).data(pool.clone()).data(customers),
        )
        .at(
            "/demo/customers/:id/orders",
            get(customer_orders).data(pool.clone()),
        )
        .at(
            "/demo/reports/slow",
            get(report).data(pool).data(perfscope.clone()),
        );

    let cancel = CancellationToken::new();
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let cluster = std::sync::Arc::new(cluster);
    let drive = {
        let cancel = cancel.clone();
        let cluster = cluster.clone();
        tokio::spawn(async move {
            if let Ok(addr) = bound_rx.await {
                tokio::join!(
                    workload(addr, cancel.clone()),
                    apply_advice(&cluster, &cancel)
                );
            }
        })
    };
    let served = serve_with(&perfscope, routes, shutdown, |addr| {
        on_ready(addr, generated.as_deref());
        let _ = bound_tx.send(addr);
    })
    .await;
    cancel.cancel();
    let _ = drive.await;
    drop(cluster);
    served.map_err(DemoError::from)
}
