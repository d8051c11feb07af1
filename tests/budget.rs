//! The agent never turns against the database it watches: a read that
//! ignores its cancel is stopped on the server (its backend terminated, its
//! connection never reused), and the agent's own pools hold no connection
//! between passes. Real PostgreSQL, real connections.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use perfscope::Perfscope;
use perfscope::config::Config;
use perfscope::db::{PoolSettings, TimedPool, TimedTransaction};
use perfscope::metrics::pg::{PgMetrics, ReaderLabels};
use perfscope::pg::{ReadError, Reader, runner};
use support::eventually;
use support::pg::PgCluster;

/// Loops forever, swallowing every cancel and `statement_timeout`.
const STUBBORN: &str = "
CREATE FUNCTION stubborn() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  LOOP
    BEGIN
      PERFORM pg_sleep(0.05);
    EXCEPTION WHEN query_canceled THEN
      NULL;
    END;
  END LOOP;
END $$;
GRANT EXECUTE ON FUNCTION stubborn() TO perfscope;";

/// Remembers its backend's pid, then calls `stubborn()`.
#[derive(Default)]
struct Stubborn {
    pid: AtomicI32,
}

impl Reader for Stubborn {
    fn name(&self) -> &'static str {
        "stubborn"
    }

    fn read<'a>(
        &'a self,
        tx: &'a TimedTransaction<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ReadError>> + Send + 'a>> {
        Box::pin(async move {
            let pid: i32 = tx.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);
            self.pid.store(pid, Ordering::SeqCst);
            tx.query_one("SELECT stubborn()", &[]).await?;
            Ok(())
        })
    }
}

/// Counts its successes; records `client_connection_check_interval`.
#[derive(Default)]
struct Quick {
    done: AtomicU32,
    check_interval: Mutex<String>,
}

impl Reader for Quick {
    fn name(&self) -> &'static str {
        "quick"
    }

    fn read<'a>(
        &'a self,
        tx: &'a TimedTransaction<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), ReadError>> + Send + 'a>> {
        Box::pin(async move {
            let interval: String = tx
                .query_one(
                    "SELECT current_setting('client_connection_check_interval')",
                    &[],
                )
                .await?
                .get(0);
            *self.check_interval.lock().expect("lock") = interval;
            self.done.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }
}

async fn backend_alive(cluster: &PgCluster, pid: i32) -> bool {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("superuser connects");
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("reads pg_stat_activity")
        .get::<_, i64>(0)
        > 0
}

async fn agent_connections(cluster: &PgCluster) -> i64 {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("superuser connects");
    tokio::spawn(connection);
    client
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'perfscope'",
            &[],
        )
        .await
        .expect("reads pg_stat_activity")
        .get(0)
}

fn success(metrics: &PgMetrics, reader: &'static str) -> i64 {
    metrics
        .reader_success
        .get_or_create(&ReaderLabels {
            database: Arc::from("db"),
            reader,
        })
        .get()
}

fn duration(metrics: &PgMetrics, reader: &'static str) -> f64 {
    metrics
        .reader_duration
        .get_or_create(&ReaderLabels {
            database: Arc::from("db"),
            reader,
        })
        .get()
}

/// Runs a pass of `stubborn` then `quick` on `pool`, and checks: the
/// stubborn read answers (failed) by its deadline, the quick one succeeds
/// in the same pass, the stubborn backend is gone within 10 s, and later
/// passes succeed.
async fn a_stubborn_read_is_stopped(cluster: &PgCluster, pool: &TimedPool) -> Arc<Quick> {
    let metrics = PgMetrics::default();
    let stubborn = Arc::new(Stubborn::default());
    let quick = Arc::new(Quick::default());
    let readers: Vec<Arc<dyn Reader>> = vec![stubborn.clone(), quick.clone()];
    let timeout = Duration::from_millis(300);
    let deadline = timeout + Duration::from_secs(1);
    let name: Arc<str> = Arc::from("db");

    let mut failures = perfscope::failure_log::FailureLogs::default();
    let started = Instant::now();
    runner::run_once(pool, &name, &readers, &metrics, timeout, 0, &mut failures).await;
    let pass = started.elapsed();
    assert_eq!(success(&metrics, "stubborn"), 0, "the stubborn read fails");
    assert_eq!(
        success(&metrics, "quick"),
        1,
        "the next reader of the pass works"
    );
    let answered = duration(&metrics, "stubborn");
    assert!(
        answered < (deadline + Duration::from_millis(500)).as_secs_f64(),
        "the stubborn read answered after {answered} s (deadline {deadline:?}); pass {pass:?}"
    );
    let pid = stubborn.pid.load(Ordering::SeqCst);
    assert!(pid > 0, "the stubborn reader ran");

    eventually("the stubborn backend to be gone", async || {
        (!backend_alive(cluster, pid).await).then_some(())
    })
    .await;
    for pass in 1..=3 {
        runner::run_once(
            pool,
            &name,
            &[quick.clone() as Arc<dyn Reader>],
            &metrics,
            timeout,
            pass,
            &mut failures,
        )
        .await;
        assert_eq!(success(&metrics, "quick"), 1, "pass {pass}");
    }
    assert_eq!(quick.done.load(Ordering::SeqCst), 4);
    quick
}

async fn cluster_with_stubborn() -> PgCluster {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.exec("postgres", STUBBORN).await;
    cluster
}

/// The agent's (budgeted) pool: the stubborn backend is gone, later passes
/// work, the connections carry `client_connection_check_interval`, and no
/// connection stays open between passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_ignores_its_cancel_is_stopped_on_the_agents_pool() {
    let cluster = cluster_with_stubborn().await;
    let perfscope = Perfscope::new(Config::default());
    let pool = perfscope
        .connect_pool(
            &cluster.url("perfscope", "postgres"),
            PoolSettings {
                name: "db".into(),
                min: 0,
                max: 2,
                budget: Some(perfscope.connection_budget().clone()),
                ..PoolSettings::default()
            },
        )
        .await
        .expect("pool");
    let quick = a_stubborn_read_is_stopped(&cluster, &pool).await;
    assert_eq!(*quick.check_interval.lock().expect("lock"), "1s");
    eventually(
        "the agent to hold no connection between passes",
        async || (agent_connections(&cluster).await == 0).then_some(()),
    )
    .await;
}

/// A host app's pool (not budgeted, connections kept, no
/// `client_connection_check_interval`): the backend is terminated all the
/// same, and the stuck connection is never handed out again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_that_ignores_its_cancel_is_stopped_on_a_host_pool() {
    let cluster = cluster_with_stubborn().await;
    let perfscope = Perfscope::new(Config::default());
    let pool = perfscope
        .connect_pool(
            &cluster.url("perfscope", "postgres"),
            PoolSettings {
                name: "db".into(),
                min: 1,
                max: 1,
                ..PoolSettings::default()
            },
        )
        .await
        .expect("pool");
    let quick = a_stubborn_read_is_stopped(&cluster, &pool).await;
    assert_eq!(*quick.check_interval.lock().expect("lock"), "0");
}
