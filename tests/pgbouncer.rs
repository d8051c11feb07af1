//! The timed pool behind a transaction pooler: a real PgBouncer
//! (`pool_mode = transaction`, Debian's package, its own ini and userlist
//! in a temporary directory) in front of the throwaway cluster, with fewer
//! server connections than the app has clients, so each client's
//! statements run on whichever backend is free. With the pool's statement
//! cache off every statement of many clients and transactions succeeds and
//! is timed. PgBouncer 1.21+ can also keep protocol-level prepared
//! statements (`max_prepared_statements`); when the installed one can, the
//! cache-on pool is run through that too.
//!
//! Without PgBouncer the test fails, saying how to install it, unless
//! `PERFSCOPE_TEST_SKIP_PGBOUNCER=1`: then it says loudly that it skipped.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::db::{PoolSettings, TimedPool};
use support::pg::PgCluster;
use support::pgbouncer::PgBouncer;

/// PgBouncer's server connections: fewer than the app's clients.
const SERVER_POOL: usize = 2;
/// The app's concurrent clients (and its pool's size).
const CLIENTS: i32 = 12;
/// Rounds of statements per client.
const ROUNDS: i32 = 20;

/// One client's rounds: statements outside a transaction (each may run on
/// another backend) and a transaction with a statement prepared in it.
/// Returns the backends its statements ran on.
async fn rounds(pool: TimedPool, task: i32) -> HashSet<i32> {
    let mut backends = HashSet::new();
    for round in 0..ROUNDS {
        let mut client = pool.get().await.expect("a connection through pgbouncer");
        let id = task * 1000 + round;
        let value = format!("task {task} round {round}");
        client
            .execute(
                "INSERT INTO kv (id, v) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v",
                &[&id, &value],
            )
            .await
            .expect("insert");
        let row = client
            .query_one("SELECT v FROM kv WHERE id = $1", &[&id])
            .await
            .expect("select one");
        assert_eq!(row.get::<_, String>(0), value);
        let none = client
            .query_opt("SELECT v FROM kv WHERE id = $1", &[&-1_i32])
            .await
            .expect("select none");
        assert!(none.is_none());
        let rows = client
            .query("SELECT id FROM kv WHERE id = ANY($1)", &[&vec![id, -1]])
            .await
            .expect("select any");
        assert_eq!(rows.len(), 1);
        let pid: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get(0);
        backends.insert(pid);

        let tx = client.transaction().await.expect("begin");
        let updated = tx
            .execute("UPDATE kv SET n = n + $2 WHERE id = $1", &[&id, &1_i64])
            .await
            .expect("update");
        assert_eq!(updated, 1);
        // A statement prepared inside the transaction is good until it ends.
        let statement = tx
            .prepare("SELECT n FROM kv WHERE id = $1")
            .await
            .expect("prepare");
        let n: i64 = tx
            .query_one(&statement, &[&id])
            .await
            .expect("select prepared")
            .get(0);
        assert_eq!(n, 1);
        drop(statement);
        tx.commit().await.expect("commit");
    }
    backends
}

/// Runs [`CLIENTS`] clients through `url` with `settings` and checks that
/// every statement succeeded, backends were swapped under the clients, and
/// every statement was timed under the pool.
async fn run_workload(cluster: &PgCluster, url: &str, statement_cache: bool) {
    cluster
        .exec(
            "postgres",
            "DROP TABLE IF EXISTS kv;
             CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL, n bigint NOT NULL DEFAULT 0);",
        )
        .await;
    let perfscope = Perfscope::new(RawConfig::default().validate().expect("config"));
    let pool = perfscope
        .connect_pool(
            url,
            PoolSettings {
                name: "pooled".into(),
                min: 0,
                max: CLIENTS as u32,
                statement_cache,
                ..Default::default()
            },
        )
        .await
        .expect("pool");
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|task| tokio::spawn(rounds(pool.clone(), task)))
        .collect();
    let mut all = HashSet::new();
    let mut swapped = 0;
    for task in tasks {
        let backends = task.await.expect("every statement of the client succeeded");
        swapped += usize::from(backends.len() > 1);
        all.extend(backends);
    }
    assert!(
        all.len() <= SERVER_POOL,
        "{} backends: not through pgbouncer?",
        all.len()
    );
    assert!(
        swapped > 0,
        "no client's statements ran on more than one backend: {all:?}"
    );

    let text = perfscope.encode_metrics().expect("encodes");
    let calls = CLIENTS * ROUNDS;
    for line in [
        format!("db_query_duration_seconds_count{{operation=\"insert\",model=\"kv\"}} {calls}"),
        format!(
            "db_query_duration_seconds_count{{operation=\"select\",model=\"kv\"}} {}",
            calls * 4
        ),
        format!("db_query_duration_seconds_count{{operation=\"update\",model=\"kv\"}} {calls}"),
    ] {
        assert!(text.contains(&line), "no `{line}` in:\n{text}");
    }
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("db_query_errors_total{") && !l.ends_with(" 0")),
        "statements failed:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timed_pool_works_behind_pgbouncer_in_transaction_mode() {
    let Some(binary) = PgBouncer::binary() else {
        return;
    };
    let cluster = Arc::new(PgCluster::start());
    let bouncer = PgBouncer::start(binary, cluster.port, SERVER_POOL, "");
    run_workload(&cluster, &bouncer.url(), false).await;
    drop(bouncer);

    let (major, minor) = PgBouncer::version(binary);
    if (major, minor) >= (1, 21) {
        // Protocol-level prepared statements kept by PgBouncer itself: the
        // cache-on pool (named statements) works through it too.
        let bouncer = PgBouncer::start(
            binary,
            cluster.port,
            SERVER_POOL,
            "max_prepared_statements = 200",
        );
        run_workload(&cluster, &bouncer.url(), true).await;
    } else {
        eprintln!(
            "NOTE: PgBouncer {major}.{minor} has no max_prepared_statements (1.21+): only the \
             pool with its statement cache off was run through it"
        );
    }
}

/// With the statement cache off (on a direct connection here, the path is
/// the same), a value goes as the type of its Rust value and the server
/// casts: an `i64` into an int4 key, a `&str` into varchar, a JSON value
/// into jsonb, a NULL, an array; a failure is still timed and counted; and
/// `prepare` leaves nothing on the connection once its statement is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_statement_cache_off_values_go_as_their_rust_types() {
    let cluster = PgCluster::start();
    cluster
        .exec(
            "postgres",
            "CREATE TABLE t (id int PRIMARY KEY, name varchar(20) NOT NULL, doc jsonb,
                             at timestamptz, tags text[]);",
        )
        .await;
    let perfscope = Perfscope::new(RawConfig::default().validate().expect("config"));
    let pool = perfscope
        .connect_pool(
            &cluster.url("postgres", "postgres"),
            PoolSettings {
                statement_cache: false,
                ..Default::default()
            },
        )
        .await
        .expect("pool");
    let client = pool.get().await.expect("client");
    let inserted = client
        .execute(
            "INSERT INTO t VALUES ($1, $2, $3, $4, $5)",
            &[
                &1_i64,
                &"widget",
                &serde_json::json!({"a": 1}),
                &std::time::SystemTime::now(),
                &vec!["x", "y"],
            ],
        )
        .await
        .expect("insert");
    assert_eq!(inserted, 1);
    let row = client
        .query_one(
            "SELECT name, doc->>'a', array_length(tags, 1) FROM t WHERE id = $1",
            &[&1_i64],
        )
        .await
        .expect("select");
    assert_eq!(row.get::<_, String>(0), "widget");
    assert_eq!(row.get::<_, String>(1), "1");
    assert_eq!(row.get::<_, i32>(2), 2);
    let cleared = client
        .execute(
            "UPDATE t SET doc = $2 WHERE id = $1",
            &[&1_i32, &None::<serde_json::Value>],
        )
        .await
        .expect("update");
    assert_eq!(cleared, 1);
    let duplicate = client
        .execute(
            "INSERT INTO t (id, name) VALUES ($1, $2)",
            &[&1_i32, &"again"],
        )
        .await
        .expect_err("a duplicate key");
    assert_eq!(duplicate.code().map(|c| c.code()), Some("23505"));

    let statement = client
        .prepare("SELECT name FROM t WHERE id = $1")
        .await
        .expect("prepare");
    let name: String = client
        .query_one(&statement, &[&1_i32])
        .await
        .expect("prepared")
        .get(0);
    assert_eq!(name, "widget");
    drop(statement);
    let kept: i64 = client
        .query_one("SELECT count(*) FROM pg_prepared_statements", &[])
        .await
        .expect("pg_prepared_statements")
        .get(0);
    assert_eq!(kept, 0, "a statement stayed on the connection");

    let text = perfscope.encode_metrics().expect("encodes");
    for line in [
        "db_query_duration_seconds_count{operation=\"insert\",model=\"t\"} 2",
        "db_query_duration_seconds_count{operation=\"update\",model=\"t\"} 1",
    ] {
        assert!(text.contains(line), "no `{line}` in:\n{text}");
    }
    assert!(
        text.lines().any(|l| l.starts_with("db_query_errors_total{")
            && l.contains("operation=\"insert\",model=\"t\"")
            && l.ends_with(" 1")),
        "the duplicate is not counted:\n{text}"
    );
}
