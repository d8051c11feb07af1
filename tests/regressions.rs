//! Regressions caught on a real cluster (issue 19): a week of a statement's
//! own history, seeded into the agent's store at the speed it really ran
//! with its index; then the index is dropped, the agent sees the slower
//! calls, and its regression check raises one finding and one alert (the
//! API's list, a real webhook receiver) with the before/after numbers,
//! written to the store.

#![cfg(feature = "store")]

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{StatementDelta, Store, StoreSettings, Write, read, unix_now};
use poem::web::{Data, Json};
use poem::{EndpointExt, handler, post};
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, client};
use tokio::sync::oneshot;

/// What the webhook receiver got.
type Inbox = Arc<Mutex<Vec<serde_json::Value>>>;

#[handler]
fn receive(body: Json<serde_json::Value>, inbox: Data<&Inbox>) {
    inbox.lock().push(body.0);
}

const QUERY: &str = "SELECT count(*), sum(total) FROM regress_orders WHERE customer = $1";

/// The agent, served in this test with its handle kept, so the test can
/// run the regression check now rather than in five minutes.
struct Agent {
    perfscope: Perfscope,
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn agent_on(cluster: &PgCluster, dir: &std::path::Path, webhook: String) -> Agent {
    let raw = RawConfig {
        alert_webhook_urls: Some(webhook),
        listen: Some("127.0.0.1:0".into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        runtime_sample_interval: Some("200".into()),
        database_url: Some(cluster.url("perfscope", "postgres")),
        read_interval: Some("300".into()),
        data_dir: Some(dir.display().to_string()),
        ..Default::default()
    };
    let perfscope = Perfscope::new(raw.validate().expect("test config is valid"));
    let (bound_tx, bound_rx) = oneshot::channel();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = perfscope.clone();
    let task = tokio::spawn(async move {
        perfscope::agent::serve_with(
            &serving,
            poem::Route::new(),
            async move {
                let _ = stopped.await;
            },
            move |addr| {
                let _ = bound_tx.send(addr);
            },
        )
        .await
        .expect("the agent serves");
    });
    let addr = tokio::time::timeout(Duration::from_secs(10), bound_rx)
        .await
        .expect("binds within 10 s")
        .expect("reports its address");
    Agent {
        perfscope,
        addr,
        stop,
        task,
    }
}

async fn get(addr: SocketAddr, path: &str, admin: bool) -> serde_json::Value {
    let request = client().get(format!("http://{addr}{path}"));
    let request = if admin {
        request.bearer_auth(ADMIN_TOKEN)
    } else {
        request
    };
    request
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON")
}

async fn run(client: &tokio_postgres::Client, times: i32) {
    for n in 0..times {
        client
            .query(QUERY, &[&(n % 5_000)])
            .await
            .expect("the workload runs");
    }
}

/// pg_stat_statements' queryid, text and mean time of [`QUERY`].
async fn measured(client: &tokio_postgres::Client) -> (i64, String, f64) {
    let row = client
        .query_one(
            "SELECT queryid, query, total_exec_time / calls FROM pg_stat_statements
             WHERE query LIKE 'SELECT count(*), sum(total) FROM regress_orders%'",
            &[],
        )
        .await
        .expect("pg_stat_statements has the workload");
    (row.get(0), row.get(1), row.get(2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_index_raises_one_regression_with_before_and_after() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE regress_orders (id bigint PRIMARY KEY, customer int NOT NULL, total int NOT NULL);
             INSERT INTO regress_orders SELECT g, g % 5000, g % 977 FROM generate_series(1, 300000) g;
             CREATE INDEX regress_orders_customer ON regress_orders (customer);
             ANALYZE regress_orders;",
        )
        .await
        .expect("the table");
    // Its speed with the index, as pg_stat_statements measured it.
    run(&client, 200).await;
    let (queryid, text, fast_ms) = measured(&client).await;

    // A week of that speed, seeded where the agent keeps its history.
    let dir = support::temp_dir("regressions");
    let now = unix_now();
    {
        let (store, task) = Store::open(
            StoreSettings::new(&dir, 64 << 20),
            Arc::new(StoreMetrics::default()),
        );
        store.flush().await;
        for hour in 2..7 * 24 {
            store.record(Write::Statements {
                at: now - hour * 3_600,
                database: Arc::from("default"),
                rows: vec![StatementDelta {
                    queryid,
                    text: Some(Arc::from(text.as_str())),
                    calls: 30,
                    total_ms: 30.0 * fast_ms,
                    rows: 30,
                    shared_hit: 30 * 40,
                    ..StatementDelta::default()
                }],
            });
            if hour % 32 == 0 {
                store.flush().await;
            }
        }
        store.flush().await;
        task.join().await;
    }

    client
        .batch_execute("DROP INDEX regress_orders_customer")
        .await
        .expect("drop the index");
    let inbox = Inbox::default();
    let hook = support::serve_loopback(
        poem::Route::new()
            .at("/hook", post(receive))
            .data(inbox.clone()),
    )
    .await;
    let agent = agent_on(&cluster, &dir, format!("http://{hook}/hook")).await;
    // The recorder's first reading is its starting point; the slow calls
    // come after it: once the statements reader has read the database, a
    // reading now sets it.
    support::eventually("the statements reader's first pass", async || {
        let report = get(agent.addr, "/api/performance/slow-queries", true).await;
        report["queries"]
            .as_array()?
            .iter()
            .any(|q| q["pgStatStatements"].is_object())
            .then_some(())
    })
    .await;
    agent.perfscope.record_history_now().await;
    run(&client, 120).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // Points are written once a minute: now, for the test.
    agent.perfscope.record_history_now().await;

    let mut found = Vec::new();
    for _ in 0..20 {
        found = agent
            .perfscope
            .check_regressions()
            .await
            .expect("the check reads the store");
        if !found.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(found.len(), 1, "one regression: {found:#?}");
    let regression = &found[0];
    assert_eq!(regression.queryid, Some(queryid));
    assert_eq!(regression.database.as_deref(), Some("default"));
    assert!(
        (regression.before - fast_ms).abs() <= 0.001 + fast_ms * 0.01,
        "the baseline is the indexed speed, {fast_ms} ms: {regression:?}"
    );
    assert!(
        regression.after >= 3.0 * regression.before,
        "at least 3× slower without the index: {regression:?}"
    );
    assert!(regression.after_count >= 50, "{regression:?}");

    // One alert, with the numbers; the gauge counts it.
    let alerts = get(agent.addr, "/api/performance/alerts", true).await;
    let told: Vec<&serde_json::Value> = alerts["recent"]
        .as_array()
        .expect("recent")
        .iter()
        .filter(|n| n["rule"] == "statement_regression")
        .collect();
    assert_eq!(told.len(), 1, "{alerts:#}");
    assert_eq!(told[0]["state"], "firing");
    assert_eq!(told[0]["subject"], format!("default/{queryid}"));
    assert!(told[0]["before"].as_f64().is_some() && told[0]["after"].as_f64().is_some());
    assert!(
        told[0]["statement"]
            .as_str()
            .is_some_and(|s| s.contains("regress_orders") && !s.contains("4999")),
        "{alerts:#}"
    );
    // The webhook got the same, once.
    for _ in 0..50 {
        if !inbox.lock().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let hooked: Vec<serde_json::Value> = inbox
        .lock()
        .iter()
        .filter(|n| n["rule"] == "statement_regression")
        .cloned()
        .collect();
    assert_eq!(hooked.len(), 1, "{hooked:#?}");
    assert_eq!(hooked[0]["before"], told[0]["before"]);
    assert_eq!(hooked[0]["after"], told[0]["after"]);
    // The finding, without the statement's text for an outsider.
    let stats = get(agent.addr, "/api/performance/stats", false).await;
    let health = stats["recommendations"]["health"]
        .as_array()
        .expect("health");
    let finding = health
        .iter()
        .find(|f| f["kind"] == "statement_regression")
        .unwrap_or_else(|| panic!("the finding: {health:#?}"));
    assert!(
        !finding.to_string().contains("regress_orders"),
        "{finding:#}"
    );

    let Agent {
        perfscope,
        stop,
        task,
        ..
    } = agent;
    drop(perfscope);
    let _ = stop.send(());
    task.await.expect("the agent stops");
    // Written to the store as it opened.
    let (store, task) = Store::open(
        StoreSettings::new(&dir, 64 << 20),
        Arc::new(StoreMetrics::default()),
    );
    store.flush().await;
    let findings = store
        .read(|conn| read::findings(conn, 0, i64::MAX))
        .await
        .expect("findings");
    task.join().await;
    // Every finding is stored in its public form: no object names.
    assert!(
        findings
            .iter()
            .all(|f| !f.summary.contains("regress_orders")),
        "{findings:#?}"
    );
    let regressions: Vec<_> = findings
        .iter()
        .filter(|f| f.key.starts_with("statement_regression:"))
        .collect();
    assert_eq!(regressions.len(), 1, "{findings:#?}");
    assert_eq!(
        regressions[0].key,
        format!("statement_regression:default/{queryid}")
    );
    assert_eq!(regressions[0].closed, None);
}
