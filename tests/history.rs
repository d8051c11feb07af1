//! The history store through the agent (issue 19): what the agent learns
//! survives a restart, and a restart on the same release adds no second
//! deploy marker.

#![cfg(feature = "store")]

mod support;

use std::sync::Arc;
use std::time::Duration;

use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{EventKind, Store, StoreSettings, read};
use support::TestAgent;
use support::pg::PgCluster;

async fn agent_on(cluster: &PgCluster, dir: &std::path::Path) -> TestAgent {
    let url = cluster.url("perfscope", "postgres");
    let dir = dir.display().to_string();
    TestAgent::start_with(move |raw| {
        raw.database_url = Some(url);
        raw.read_interval = Some("300".into());
        raw.data_dir = Some(dir);
    })
    .await
}

/// Opens the store the agent left (it must have stopped: the store is
/// locked while an agent holds it).
async fn stored<T: Send + 'static>(
    dir: &std::path::Path,
    query: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T> + Send + 'static,
) -> T {
    let (store, task) = Store::open(
        StoreSettings::new(dir, 64 << 20),
        Arc::new(StoreMetrics::default()),
    );
    store.flush().await;
    let out = store.read(query).await.expect("the store reads");
    task.join().await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_survives_an_agent_restart() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let dir = support::temp_dir("history-restart");
    let agent = agent_on(&cluster, &dir).await;
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    // The statement once, until the reader has seen it; then a recorder
    // tick (every second here) takes its baseline, and the workload follows.
    client
        .query(
            "SELECT count(*) FROM pg_class WHERE relname = $1",
            &[&"pg_proc"],
        )
        .await
        .expect("query");
    support::eventually("the statements reader's pass", async || {
        let report = agent.admin_json("/api/performance/slow-queries").await?;
        report["queries"]
            .as_array()?
            .iter()
            .any(|q| {
                q["statement"]
                    .as_str()
                    .is_some_and(|s| s.contains("pg_class"))
            })
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    for _ in 0..4 {
        for _ in 0..10 {
            client
                .query(
                    "SELECT count(*) FROM pg_class WHERE relname = $1",
                    &[&"pg_proc"],
                )
                .await
                .expect("query");
        }
        let _ = agent.admin_json("/api/performance/stats").await;
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    agent.stop().await;

    let (statements, routes, deploys) = stored(&dir, |conn| {
        Ok((
            read::statement_totals(conn, "default", 0, i64::MAX, 100)?,
            read::route_totals(conn, 0, i64::MAX)?,
            read::events_of(conn, EventKind::Deploy, 10)?,
        ))
    })
    .await;
    let ours = statements
        .iter()
        .find(|s| s.text.as_deref().is_some_and(|t| t.contains("pg_class")))
        .unwrap_or_else(|| panic!("the workload's statement is stored: {statements:?}"));
    assert!(
        ours.sums.calls >= 20,
        "its calls after the baseline are stored: {ours:?}"
    );
    assert!(
        !ours.text.as_deref().unwrap_or_default().contains("pg_proc"),
        "no literal values are stored: {ours:?}"
    );
    let stats = routes
        .iter()
        .find(|r| r.route == "/api/performance/stats")
        .unwrap_or_else(|| panic!("the stats route is stored: {routes:?}"));
    assert!(
        stats.sums.requests >= 4 && stats.sums.histogram.count >= 4,
        "{stats:?}"
    );
    assert_eq!(deploys.len(), 1, "{deploys:?}");
    assert!(
        deploys[0].label.contains(env!("CARGO_PKG_VERSION")),
        "{deploys:?}"
    );

    // The same release again: history is still there, no second marker.
    let agent = agent_on(&cluster, &dir).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    agent.stop().await;
    let (statements, deploys) = stored(&dir, |conn| {
        Ok((
            read::statement_totals(conn, "default", 0, i64::MAX, 100)?,
            read::events_of(conn, EventKind::Deploy, 10)?,
        ))
    })
    .await;
    assert!(
        statements
            .iter()
            .any(|s| s.text.as_deref().is_some_and(|t| t.contains("pg_class"))),
        "the first run's statements survive the restart"
    );
    assert_eq!(deploys.len(), 1, "one marker per release: {deploys:?}");
}
