//! `GET /api/performance/growth` through the agent (issue 19): its shape,
//! the admin token, "not enough history" on a fresh store, and a trend
//! from a store seeded with ten days of sizes before the agent started.

#![cfg(feature = "store")]

mod support;

use std::sync::Arc;

use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{RelationKind, RelationSize, Store, StoreSettings, Write};
use reqwest::StatusCode;
use support::pg::PgCluster;
use support::{TestAgent, assert_refused, client, eventually};

const DAY: i64 = 86_400;
const MIB: i64 = 1024 * 1024;

async fn agent_on(cluster: &PgCluster, dir: &std::path::Path) -> TestAgent {
    let url = cluster.url("perfscope", "postgres");
    let dir = dir.display().to_string();
    TestAgent::start_with(move |raw| {
        raw.database_url = Some(url);
        raw.data_dir = Some(dir);
    })
    .await
}

/// The growth answer once the store is open (200).
async fn growth(agent: &TestAgent, query: &[(&str, &str)]) -> serde_json::Value {
    eventually("the growth answer", async || {
        let (status, body) = agent.admin_get("/api/performance/growth", query).await?;
        (status == StatusCode::OK && body["history"] == "kept").then_some(body)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growth_needs_the_admin_token_and_says_when_history_is_short() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let dir = support::temp_dir("growth-fresh");
    let agent = agent_on(&cluster, &dir).await;

    let url = agent.url("/api/performance/growth");
    let anonymous = client().get(&url).send().await.expect("request");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let wrong = client()
        .get(&url)
        .bearer_auth("not-the-token-0123456789")
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = agent
        .admin_get("/api/performance/growth", &[("database", "nope")])
        .await
        .expect("request");
    assert_refused(status, &body, StatusCode::NOT_FOUND, "nope");
    let (status, body) = agent
        .admin_get("/api/performance/growth", &[("limit", "0")])
        .await
        .expect("request");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let body = growth(&agent, &[("targetBytes", "1000000000")]).await;
    assert_eq!(body["database"], "default", "{body}");
    assert_eq!(body["windowDays"], 30, "{body}");
    assert_eq!(body["minDays"], 3, "{body}");
    assert_eq!(body["targetBytes"], 1_000_000_000_i64, "{body}");
    assert!(
        body["objects"].is_array() && body["sequences"].is_array(),
        "{body}"
    );
    // A fresh store holds today at most: no row has a trend.
    let rows: Vec<&serde_json::Value> = body["objects"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(body["total"].as_object().map(|_| &body["total"]))
        .collect();
    for row in &rows {
        assert_eq!(row["trend"], "not_enough_history", "{row}");
        assert!(
            row["daysOfHistory"].as_u64().is_some_and(|d| d < 3),
            "{row}"
        );
        assert!(row["growthBytesPerDay"].is_null(), "{row}");
        assert!(row["daysUntilDouble"].is_null(), "{row}");
    }
    assert!(
        body["note"]
            .as_str()
            .is_some_and(|n| n.contains("not enough history")),
        "{body}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn growth_forecasts_from_the_days_the_store_kept() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let dir = support::temp_dir("growth-seeded");
    // Ten days of sizes, as earlier runs of the agent would have left them.
    let (store, task) = Store::open(
        StoreSettings::new(&dir, 64 << 20),
        Arc::new(StoreMetrics::default()),
    );
    let now = perfscope::store::unix_now();
    for days_ago in (1..=10).rev() {
        let day = 10 - days_ago;
        store.record(Write::Sizes {
            at: now - days_ago * DAY,
            database: Arc::from("default"),
            rows: vec![
                RelationSize {
                    kind: RelationKind::Table,
                    name: "public.seeded <script>".into(),
                    bytes: 100 * MIB + 10 * MIB * day,
                },
                RelationSize {
                    kind: RelationKind::Table,
                    name: "public.steady".into(),
                    bytes: 500 * MIB,
                },
            ],
        });
    }
    store.flush().await;
    task.join().await;

    let agent = agent_on(&cluster, &dir).await;
    let body = growth(&agent, &[("limit", "5")]).await;
    let objects = body["objects"].as_array().expect("objects");
    assert!(objects.len() <= 5, "{body}");
    assert!(body["note"].is_null(), "a trend, so no note: {body}");
    let seeded = &objects[0];
    assert_eq!(
        seeded["name"], "public.seeded <script>",
        "fastest first: {body}"
    );
    assert_eq!(seeded["kind"], "table");
    assert_eq!(seeded["trend"], "trend");
    assert_eq!(seeded["daysOfHistory"], 10);
    assert_eq!(seeded["bytes"], 190 * MIB);
    let per_day = seeded["growthBytesPerDay"].as_f64().expect("a growth");
    assert!((per_day - (10 * MIB) as f64).abs() < 1.0, "{seeded}");
    let double = seeded["daysUntilDouble"].as_f64().expect("it doubles");
    assert!((double - 19.0).abs() < 0.01, "{seeded}");
    let steady = objects
        .iter()
        .find(|o| o["name"] == "public.steady")
        .unwrap_or_else(|| panic!("{body}"));
    assert_eq!(steady["growthBytesPerDay"], 0.0, "{steady}");
    assert!(steady["daysUntilDouble"].is_null(), "{steady}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_near_its_end_is_kept_per_day_and_listed() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE SEQUENCE public.near_end_seq AS integer;
             SELECT setval('public.near_end_seq', 2000000000);
             CREATE SEQUENCE public.far_seq AS integer;
             SELECT setval('public.far_seq', 10);",
        )
        .await
        .expect("sequences");
    let dir = support::temp_dir("growth-sequence");
    let url = cluster.url("perfscope", "postgres");
    let data_dir = dir.display().to_string();
    let agent = TestAgent::start_with(move |raw| {
        raw.database_url = Some(url);
        raw.read_interval = Some("300".into());
        raw.data_dir = Some(data_dir);
    })
    .await;
    let body = eventually("the sequence in the growth answer", async || {
        let (status, body) = agent.admin_get("/api/performance/growth", &[]).await?;
        (status == StatusCode::OK && body["sequences"].as_array().is_some_and(|s| !s.is_empty()))
            .then_some(body)
    })
    .await;
    let sequences = body["sequences"].as_array().expect("sequences");
    assert_eq!(sequences.len(), 1, "only the one past 75 %: {body}");
    let near = &sequences[0];
    assert_eq!(near["name"], "public.near_end_seq", "{near}");
    assert_eq!(near["lastValue"], 2_000_000_000.0, "{near}");
    assert_eq!(near["bound"], f64::from(i32::MAX), "{near}");
    assert_eq!(near["trend"], "not_enough_history", "one day: {near}");
    assert_eq!(near["daysOfHistory"], 1, "{near}");
    assert!(near["daysUntilExhausted"].is_null(), "{near}");
    agent.stop().await;
}
