//! `?` in a handler: a Poem app and an axum app, served on real loopback
//! sockets against a real throwaway cluster, whose handlers return
//! `Result<T, DbError>` and use `?` on the timed pool and on statements.
//! A pool timeout answers 503 with the JSON error body; a failed statement
//! (a unique violation whose key is a secret-looking literal) answers 500
//! and neither the body nor the log line holds the literal.

mod support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::db::{DbError, PoolSettings, TimedPool};
use support::pg::PgCluster;

/// The duplicate key: what a leak would show.
const SECRET: &str = "sk_live_4242424242424242@example.com";

/// A cluster with `accounts` holding [`SECRET`] and a pool of one
/// connection whose callers wait 200 ms at most.
async fn fixture() -> (PgCluster, Perfscope, TimedPool) {
    let cluster = PgCluster::start();
    cluster
        .exec(
            "postgres",
            &format!(
                "CREATE TABLE accounts (email text PRIMARY KEY);
                 INSERT INTO accounts VALUES ('{SECRET}');"
            ),
        )
        .await;
    let perfscope = Perfscope::new(RawConfig::default().validate().expect("config"));
    let pool = perfscope
        .connect_pool(
            &cluster.url("postgres", "postgres"),
            PoolSettings {
                min: 1,
                max: 1,
                wait_timeout: Duration::from_millis(200),
                ..Default::default()
            },
        )
        .await
        .expect("pool");
    (cluster, perfscope, pool)
}

/// Every log line of this test binary, from a global subscriber.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .with_writer(move || Writer(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        logs
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("logs").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The handlers' two jobs, the same in both frameworks.
async fn count(pool: &TimedPool) -> Result<i64, DbError> {
    let client = pool.get().await?;
    let row = client
        .query_one("SELECT count(*) FROM accounts", &[])
        .await?;
    Ok(row.get(0))
}

async fn signup(pool: &TimedPool) -> Result<u64, DbError> {
    let client = pool.get().await?;
    Ok(client
        .execute("INSERT INTO accounts (email) VALUES ($1)", &[&SECRET])
        .await?)
}

/// Checks one app at `addr`: `/count` while the pool's only connection is
/// held answers 503, once it is back 200; `/signup` answers 500.
async fn check(addr: SocketAddr, pool: &TimedPool) {
    // One app at a time, so the log lines read are this app's own.
    static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _turn = ONE_AT_A_TIME.lock().await;
    let logs = logs();
    let start = logs.lock().expect("logs").len();
    let http = support::client();
    let url = |path: &str| format!("http://{addr}{path}");

    let held = pool.get().await.expect("the one connection");
    let busy = http.get(url("/count")).send().await.expect("request");
    assert_eq!(busy.status(), 503);
    assert_eq!(
        busy.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: serde_json::Value = busy.json().await.expect("json");
    assert_eq!(body["error"], "database_unavailable", "{body}");
    assert_eq!(
        body["message"], "the database is unavailable; try again later",
        "{body}"
    );
    drop(held);
    let free = http.get(url("/count")).send().await.expect("request");
    assert_eq!(free.status(), 200);
    assert_eq!(free.text().await.expect("body"), "1");

    let duplicate = http.post(url("/signup")).send().await.expect("request");
    assert_eq!(duplicate.status(), 500);
    let text = duplicate.text().await.expect("body");
    let body: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["error"], "database_error", "{body}");
    for leak in ["sk_live", "4242", "accounts_pkey", "duplicate", "INSERT"] {
        assert!(!text.contains(leak), "{leak} in {text}");
    }

    let logged = String::from_utf8_lossy(&logs.lock().expect("logs")[start..]).into_owned();
    assert!(
        logged.contains("database error answered")
            && logged.contains("sqlstate=\"23505\"")
            && logged.contains("kind=\"pool_timeout\""),
        "{logged}"
    );
    assert!(!logged.contains("sk_live"), "{logged}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poem_handlers_answer_503_for_a_pool_timeout_and_500_without_values() {
    use poem::web::Data;
    use poem::{EndpointExt, Route, get, handler, post};

    #[handler]
    async fn count_route(Data(pool): Data<&TimedPool>) -> Result<String, DbError> {
        Ok(count(pool).await?.to_string())
    }

    // poem's own Result: the pool's error converts by itself, a
    // statement's through DbError (as the module docs say).
    #[handler]
    async fn signup_route(Data(pool): Data<&TimedPool>) -> poem::Result<String> {
        let client = pool.get().await?;
        let rows = client
            .execute("INSERT INTO accounts (email) VALUES ($1)", &[&SECRET])
            .await
            .map_err(DbError::from)?;
        Ok(rows.to_string())
    }

    let (_cluster, _perfscope, pool) = fixture().await;
    let app = Route::new()
        .at("/count", get(count_route))
        .at("/signup", post(signup_route))
        .data(pool.clone());
    let addr = support::serve_loopback(app).await;
    check(addr, &pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axum_handlers_answer_503_for_a_pool_timeout_and_500_without_values() {
    use axum::Router;
    use axum::extract::State;
    use axum::routing::{get, post};

    async fn count_route(State(pool): State<TimedPool>) -> Result<String, DbError> {
        Ok(count(&pool).await?.to_string())
    }

    async fn signup_route(State(pool): State<TimedPool>) -> Result<String, DbError> {
        Ok(signup(&pool).await?.to_string())
    }

    let (_cluster, _perfscope, pool) = fixture().await;
    let app = Router::new()
        .route("/count", get(count_route))
        .route("/signup", post(signup_route))
        .with_state(pool.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    check(addr, &pool).await;
    server.abort();
}
