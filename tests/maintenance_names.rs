//! Maintenance resolves a table by its exact names: with `"Orders"` and
//! `orders` side by side, ANALYZE of `public.Orders` (as the advisor names
//! it) analyzes `"Orders"` and never `orders`, against a real cluster.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, TestAgent, client, eventually};

async fn optimize(agent: &TestAgent, body: Value) -> (StatusCode, Value) {
    agent
        .admin_post("/api/performance/optimize", Some(&body))
        .await
}

/// `analyze_count` of each of the two tables, from a fresh connection.
async fn analyzed(cluster: &PgCluster) -> (i64, i64) {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    let task = tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT (SELECT analyze_count FROM pg_stat_user_tables WHERE relid = '\"Orders\"'::regclass),
                    (SELECT analyze_count FROM pg_stat_user_tables WHERE relid = 'orders'::regclass)",
            &[],
        )
        .await
        .expect("stats");
    drop(client);
    let _ = task.await;
    (row.get(0), row.get(1))
}

async fn finished(agent: &TestAgent, job: &Value) -> Value {
    let id = job["id"].as_u64().expect("id");
    eventually("the job to finish", async || {
        let job: Value = client()
            .get(agent.url(&format!("/api/performance/optimize/{id}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (job["state"] != "running").then_some(job)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_of_a_mixed_case_table_never_touches_its_lowercase_twin() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster
        .exec(
            "postgres",
            "CREATE ROLE app;
             CREATE TABLE \"Orders\" (id int PRIMARY KEY);
             CREATE TABLE orders (id int PRIMARY KEY);
             ALTER TABLE \"Orders\" OWNER TO app;
             ALTER TABLE orders OWNER TO app;
             INSERT INTO \"Orders\" SELECT generate_series(1, 10);
             INSERT INTO orders SELECT generate_series(1, 10);
             GRANT app TO perfscope;",
        )
        .await;
    assert_eq!(analyzed(&cluster).await, (0, 0));
    let url = cluster.url("perfscope", "postgres");
    let agent = TestAgent::start_with(|raw| raw.database_url = Some(url.clone())).await;

    // The advisor's spelling of the table: schema.name as in the catalog.
    let (status, job) = optimize(
        &agent,
        serde_json::json!({"task": "analyze", "table": "public.Orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["table"], "public.Orders");
    assert_eq!(finished(&agent, &job).await["state"], "succeeded");
    eventually("\"Orders\" analyzed", async || {
        (analyzed(&cluster).await.0 == 1).then_some(())
    })
    .await;
    assert_eq!(analyzed(&cluster).await, (1, 0), "orders was analyzed");

    // Without a schema: the exact name on the search path.
    let (status, job) = optimize(
        &agent,
        serde_json::json!({"task": "analyze", "table": "Orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["table"], "public.Orders");
    assert_eq!(finished(&agent, &job).await["state"], "succeeded");
    eventually("\"Orders\" analyzed twice", async || {
        (analyzed(&cluster).await.0 == 2).then_some(())
    })
    .await;
    assert_eq!(analyzed(&cluster).await, (2, 0), "orders was analyzed");

    // The lowercase table by its own name; no folding of other spellings.
    let (status, job) = optimize(
        &agent,
        serde_json::json!({"task": "analyze", "table": "public.orders"}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["table"], "public.orders");
    assert_eq!(finished(&agent, &job).await["state"], "succeeded");
    let (status, missing) = optimize(
        &agent,
        serde_json::json!({"task": "analyze", "table": "ORDERS"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    eventually("orders analyzed once", async || {
        (analyzed(&cluster).await == (2, 1)).then_some(())
    })
    .await;
    agent.stop().await;
}
