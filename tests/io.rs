//! The I/O reader (`pg_stat_io`) on a real server of each kind it meets:
//!
//! - PostgreSQL 18 (`PERFSCOPE_TEST_PG18_BIN`, as in tests/postgres18.rs),
//!   with shared_buffers small enough that a 25 MB table does not fit and
//!   `track_io_timing` on: a bulk-written table, a sequential scan of it,
//!   inserts and a CHECKPOINT make the figures grow for the backend types
//!   and contexts that did them (client backends' bulk writes, bulk reads
//!   and extends, the checkpointer's writes), the bytes are at least a
//!   block per read, the times are there, and the counters are in a real
//!   scrape once per server, under one of its watched databases only;
//! - PostgreSQL 15 (the tests' default cluster), which has no `pg_stat_io`:
//!   the reader succeeds every pass, counts no error, exports no series,
//!   and the API and the Database page say it needs PostgreSQL 16+.

mod support;

use serde_json::Value;
use support::pg::PgCluster;
use support::{TestAgent, eventually};

/// The API's row of `backend_type`, `object`, `context`, if any.
fn row<'a>(io: &'a Value, backend_type: &str, object: &str, context: &str) -> Option<&'a Value> {
    io["rows"].as_array()?.iter().find(|r| {
        r["backendType"] == backend_type && r["object"] == object && r["context"] == context
    })
}

/// A figure of that row (0 when the row is not there: no operation yet).
fn figure(io: &Value, (backend_type, object, context): (&str, &str, &str), field: &str) -> f64 {
    row(io, backend_type, object, context)
        .and_then(|r| r[field].as_f64())
        .unwrap_or(0.0)
}

const BULKREAD: (&str, &str, &str) = ("client backend", "relation", "bulkread");
const BULKWRITE: (&str, &str, &str) = ("client backend", "relation", "bulkwrite");
const NORMAL: (&str, &str, &str) = ("client backend", "relation", "normal");
const CHECKPOINTER: (&str, &str, &str) = ("checkpointer", "relation", "normal");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_18_io_grows_by_backend_type_and_context() {
    let Some(cluster) = PgCluster::start_major(18) else {
        return;
    };
    // ALTER SYSTEM refuses to run in a transaction: one at a time.
    for setting in ["shared_buffers = '16MB'", "track_io_timing = on"] {
        cluster
            .exec("postgres", &format!("ALTER SYSTEM SET {setting}"))
            .await;
    }
    cluster.stop();
    cluster.restart();
    cluster.install().await;
    // A second database of the same server: the server's figures are
    // exported once, under the name that sorts first (`default`).
    cluster.exec("postgres", "CREATE DATABASE shop").await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.watch_databases = Some(format!("shop={}", cluster.url("perfscope", "shop")));
        raw.read_interval = Some("300".into());
    })
    .await;

    let before = eventually("a first pass of pg_stat_io", async || {
        let io = agent.admin_json("/api/performance/io").await?;
        (io["state"] == "read").then_some(io)
    })
    .await;
    assert!(
        before["serverVersionNum"]
            .as_i64()
            .is_some_and(|v| v >= 180_000),
        "{before}"
    );
    assert_eq!(before["timing"], true, "{before}");
    let rows = before["rows"].as_array().expect("rows");
    assert!(!rows.is_empty() && rows.len() <= 128, "{before}");
    assert!(
        rows.iter().all(|r| [
            "reads",
            "writes",
            "extends",
            "hits",
            "evictions",
            "reuses",
            "fsyncs",
            "writebacks"
        ]
        .iter()
        .any(|f| r[f].as_i64().unwrap_or(0) > 0)),
        "a row with no operation: {before}"
    );

    // The workload, as the superuser: a table written through the bulk
    // write ring (CREATE TABLE AS), bigger than shared_buffers, scanned
    // through the bulk read ring; rows inserted one statement at a time
    // (normal extends); a checkpoint writes what is dirty. No parallel
    // workers: the client backend itself reads the whole table (parallel
    // workers' reads are counted under "background worker").
    cluster
        .exec(
            "postgres",
            "SET max_parallel_workers_per_gather = 0;
             CREATE TABLE io_big AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 100000) g;
             SELECT count(*) FROM io_big;
             SELECT count(*) FROM io_big;
             CREATE TABLE io_small (id int, pad text);
             INSERT INTO io_small SELECT g, repeat('y', 100) FROM generate_series(1, 20000) g;
             CHECKPOINT;
             SELECT pg_stat_force_next_flush();",
        )
        .await;

    let after = eventually("the workload's I/O in pg_stat_io", async || {
        let io = agent.admin_json("/api/performance/io").await?;
        let grown = figure(&io, BULKREAD, "reads") > figure(&before, BULKREAD, "reads")
            && figure(&io, BULKWRITE, "extends") > figure(&before, BULKWRITE, "extends")
            && figure(&io, NORMAL, "extends") > figure(&before, NORMAL, "extends")
            && figure(&io, CHECKPOINTER, "writes") > figure(&before, CHECKPOINTER, "writes");
        grown.then_some(io)
    })
    .await;
    // The scans read a table of about 25 MB through the ring: thousands of
    // blocks, each at least 8 kB (18 may merge several into one read).
    let reads = figure(&after, BULKREAD, "reads") - figure(&before, BULKREAD, "reads");
    let read_bytes = figure(&after, BULKREAD, "readBytes") - figure(&before, BULKREAD, "readBytes");
    assert!(read_bytes >= 20e6, "{read_bytes} bytes read: {after}");
    assert!(
        read_bytes >= reads * 8192.0,
        "{reads} reads of {read_bytes} bytes: {after}"
    );
    assert!(
        figure(&after, BULKREAD, "reuses") > 0.0,
        "the ring is reused: {after}"
    );
    assert!(
        figure(&after, BULKWRITE, "extendBytes") >= 20e6,
        "the table was extended by about 25 MB: {after}"
    );
    assert!(
        figure(&after, CHECKPOINTER, "writeBytes") > 0.0,
        "the checkpoint wrote: {after}"
    );
    // track_io_timing is on: reads take time.
    let bulkread = row(&after, "client backend", "relation", "bulkread").expect("bulkread row");
    assert!(
        bulkread["readTimeMs"].as_f64().is_some_and(|ms| ms > 0.0),
        "{bulkread}"
    );

    // The counters in a real scrape, once per server: under the watched
    // database whose name sorts first (`default`), never repeated under
    // `shop`.
    let series = "pg_io_operations_total{database=\"default\",backend_type=\"client backend\",object=\"relation\",context=\"bulkread\",op=\"reads\"} ";
    let scrape = eventually("the I/O counters in the scrape", async || {
        let scrape = agent.metrics().await;
        scrape.contains(series).then_some(scrape)
    })
    .await;
    let value: f64 = scrape
        .lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .expect("a value");
    assert!(value >= reads, "{value} < {reads}");
    for needle in [
        "pg_io_bytes_total{database=\"default\",backend_type=\"client backend\",object=\"relation\",context=\"bulkread\",op=\"reads\"}",
        "pg_io_time_seconds_total{database=\"default\",backend_type=\"client backend\",object=\"relation\",context=\"bulkread\",op=\"reads\"}",
        "pg_io_operations_total{database=\"default\",backend_type=\"checkpointer\",object=\"relation\",context=\"normal\",op=\"writes\"}",
        "# TYPE pg_io_operations counter",
    ] {
        assert!(scrape.contains(needle), "{needle} not in the scrape");
    }
    assert!(
        !scrape
            .lines()
            .any(|l| l.starts_with("pg_io_") && l.contains("database=\"shop\"")),
        "the server's I/O repeated under its second database"
    );
    // The second database's API shows the same server's figures.
    let shop = agent
        .admin_json("/api/performance/io?database=shop")
        .await
        .expect("shop");
    assert_eq!(shop["state"], "read", "{shop}");
    assert!(
        row(&shop, "checkpointer", "relation", "normal").is_some(),
        "{shop}"
    );
    assert!(
        !scrape.contains("perfscope_reader_errors_total{database=\"default\",reader=\"io\"}"),
        "the io reader failed"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_15_has_no_pg_stat_io_and_says_so_without_errors() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.read_interval = Some("200".into());
    })
    .await;
    let success = "perfscope_reader_success{database=\"default\",reader=\"io\"} 1";
    // Several passes, each a success.
    let mut passes = 0;
    let scrape = eventually("several passes of the io reader", async || {
        let scrape = agent.metrics().await;
        passes += u32::from(scrape.contains(success));
        (passes >= 5).then_some(scrape)
    })
    .await;
    assert!(
        !scrape.contains("perfscope_reader_success{database=\"default\",reader=\"io\"} 0"),
        "the io reader failed a pass"
    );
    assert!(
        !scrape.contains("perfscope_reader_errors_total{database=\"default\",reader=\"io\"}"),
        "the io reader counted errors"
    );
    assert!(
        !scrape.lines().any(|l| l.starts_with("pg_io_")),
        "I/O series from a server without pg_stat_io"
    );
    let anonymous = support::client()
        .get(agent.url("/api/performance/io"))
        .send()
        .await
        .expect("answers");
    assert_eq!(anonymous.status().as_u16(), 401, "admin only");
    let io = agent
        .admin_json("/api/performance/io")
        .await
        .expect("the io report");
    assert_eq!(io["state"], "unsupported", "{io}");
    assert_eq!(io["rows"], serde_json::json!([]), "{io}");
    assert!(
        io["summary"]
            .as_str()
            .is_some_and(|s| s.starts_with("pg_stat_io needs PostgreSQL 16+")),
        "{io}"
    );
    let base = agent.url("");
    let cookie = support::ui_session(base.trim_end_matches('/')).await;
    let (status, page) =
        support::ui_page(base.trim_end_matches('/'), "/ui/database", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("pg_stat_io needs PostgreSQL 16+; this server runs PostgreSQL 15."),
        "{page}"
    );
    agent.stop().await;
}
