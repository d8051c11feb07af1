//! The live database view against a throwaway cluster: a sleeping session
//! shows as running and long-running; a session holding a row lock blocks
//! another and the chain is reported root first; the findings and metrics
//! follow; cancel ends the blocked query and terminate ends the blocker,
//! while a background process, the agent's own session and another
//! database's session are refused; without pg_signal_backend the answer
//! is a 403 that says what to grant.

mod support;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use support::pg::{PgCluster, queryid_of};
use support::{ADMIN_TOKEN, TestAgent, client, eventually};

/// A session of the `app` role on `database`, its pid, and the task that
/// drives its connection.
async fn session(cluster: &PgCluster, database: &str) -> (tokio_postgres::Client, i32) {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("app", database), tokio_postgres::NoTls)
            .await
            .expect("app connects");
    tokio::spawn(connection);
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    (client, pid)
}

async fn activity(agent: &TestAgent, database: Option<&str>) -> (StatusCode, Value) {
    let mut request = client()
        .get(agent.url("/api/performance/activity"))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(database) = database {
        request = request.query(&[("database", database)]);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

async fn signal(agent: &TestAgent, pid: i32, action: &str) -> (StatusCode, Value) {
    agent
        .admin_post(&format!("/api/performance/activity/{pid}/{action}"), None)
        .await
}

/// The `kind` finding in the stats' health recommendations, read with the
/// admin token.
async fn finding(agent: &TestAgent, kind: &str) -> Option<Value> {
    let stats: Value = agent.admin_json("/api/performance/stats").await?;
    stats["recommendations"]["health"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind)
        .cloned()
}

fn session_of(report: &Value, pid: i32) -> Option<Value> {
    report["sessions"]
        .as_array()?
        .iter()
        .find(|s| s["pid"] == pid)
        .cloned()
}

fn flags(session: &Value) -> Vec<String> {
    session["flags"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_locks_and_signals() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.create_items().await;
    cluster
        .exec(
            "postgres",
            "CREATE ROLE app LOGIN; GRANT SELECT, UPDATE ON items TO app",
        )
        .await;
    // CREATE DATABASE cannot run inside a multi-statement transaction.
    cluster.exec("postgres", "CREATE DATABASE other").await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.read_interval = Some("300".into());
        raw.long_query_threshold = Some("500".into());
        raw.idle_in_transaction_threshold = Some("500".into());
    })
    .await;

    // A sleeping session: running, its statement normalized, then
    // long-running.
    let (sleeper, sleeper_pid) = session(&cluster, "postgres").await;
    let sleeping = tokio::spawn(async move { sleeper.query("SELECT pg_sleep(30)", &[]).await });
    // A row lock held in an open transaction, and a session waiting on it.
    let (holder_client, holder_pid) = session(&cluster, "postgres").await;
    holder_client
        .batch_execute("BEGIN; UPDATE items SET name = 'held' WHERE id = 1")
        .await
        .expect("the holder locks the row");
    let (waiter, waiter_pid) = session(&cluster, "postgres").await;
    let waiting = tokio::spawn(async move {
        waiter
            .execute("UPDATE items SET name = 'waiting' WHERE id = 1", &[])
            .await
    });
    // A session of another database.
    let (_other, other_pid) = session(&cluster, "other").await;

    let report = eventually("the sleeper long-running and the chain", async || {
        let (status, report) = activity(&agent, None).await;
        assert_eq!(status, StatusCode::OK, "{report}");
        let sleeper = session_of(&report, sleeper_pid)?;
        let holder = session_of(&report, holder_pid)?;
        let ready = flags(&sleeper).contains(&"long_running".to_owned())
            && flags(&holder).contains(&"idle_in_transaction".to_owned())
            && !report["lockChains"].as_array()?.is_empty();
        ready.then_some(report)
    })
    .await;
    let dump = serde_json::to_string_pretty(&report).unwrap_or_default();
    let sleeper = session_of(&report, sleeper_pid).expect("the sleeper");
    assert_eq!(sleeper["state"], "active", "{dump}");
    assert_eq!(sleeper["query"], "select pg_sleep(?)", "{dump}");
    assert_eq!(sleeper["user"], "app");
    assert!(sleeper["querySeconds"].as_f64() > Some(0.5), "{dump}");
    let waiter = session_of(&report, waiter_pid).expect("the waiter");
    assert_eq!(waiter["waitEventType"], "Lock", "{dump}");
    assert_eq!(
        waiter["blockedBy"],
        serde_json::json!([holder_pid]),
        "{dump}"
    );
    assert!(flags(&waiter).contains(&"blocked".to_owned()), "{dump}");
    let holder = session_of(&report, holder_pid).expect("the holder");
    assert!(flags(&holder).contains(&"blocking".to_owned()), "{dump}");
    let holder_start = holder["backendStart"]
        .as_str()
        .expect("a backend start")
        .to_owned();
    // The chain: the root blocker first, with its transaction's age.
    let chain = &report["lockChains"][0]["sessions"];
    assert_eq!(chain[0]["pid"], holder_pid, "{dump}");
    assert_eq!(chain[0]["depth"], 0);
    assert!(chain[0]["seconds"].as_f64() > Some(0.0), "{dump}");
    assert_eq!(chain[1]["pid"], waiter_pid, "{dump}");
    assert_eq!(chain[1]["depth"], 1);
    // Neither the agent's sessions nor the other database's are listed.
    let sessions = report["sessions"].as_array().expect("sessions");
    assert!(sessions.iter().all(|s| s["user"] != "perfscope"), "{dump}");
    assert!(session_of(&report, other_pid).is_none(), "{dump}");
    assert!(report["longestTransactionSeconds"].as_f64() > Some(0.5));

    // Findings: for the admin token with pids and statements, without it
    // counts only.
    let stats = eventually("activity findings in the stats", async || {
        let stats: Value = agent.admin_json("/api/performance/stats").await?;
        let kinds: Vec<String> = stats["recommendations"]["health"]
            .as_array()?
            .iter()
            .filter_map(|r| r["kind"].as_str().map(str::to_owned))
            .collect();
        ["long_running", "idle_in_transaction", "blocked"]
            .iter()
            .all(|k| kinds.iter().any(|x| x == k))
            .then_some(stats)
    })
    .await;
    let blocked = stats["recommendations"]["health"]
        .as_array()
        .and_then(|h| h.iter().find(|r| r["kind"] == "blocked").cloned())
        .expect("blocked finding");
    assert!(
        blocked["objects"][0]
            .as_str()
            .is_some_and(|o| o.contains(&format!("pid {waiter_pid}"))),
        "{blocked}"
    );
    let public: Value = client()
        .get(agent.url("/api/performance/stats"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let public_health = public["recommendations"]["health"].to_string();
    assert!(public_health.contains("\"blocked\""), "{public_health}");
    assert!(
        !public_health.contains(&format!("pid {waiter_pid}")),
        "{public_health}"
    );

    // Metrics.
    let metrics = client()
        .get(agent.url("/api/performance/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    for family in [
        "pg_activity_blocked_sessions{database=\"default\"} 1",
        // The sleeper and the blocked update.
        "pg_activity_long_running_queries{database=\"default\"} 2",
        "pg_activity_idle_in_transaction_sessions{database=\"default\"} 1",
        "pg_activity_longest_transaction_seconds{database=\"default\"}",
    ] {
        assert!(metrics.contains(family), "{family} missing");
    }

    // Without pg_signal_backend the agent's role may not signal: a 403
    // that says what to grant.
    let (status, answer) = signal(&agent, waiter_pid, "cancel").await;
    support::assert_refused(status, &answer, StatusCode::FORBIDDEN, "pg_signal_backend");
    let capability = async || -> Value {
        let check: Value = client()
            .get(agent.url("/api/performance/database"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        check["capabilities"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "pg_signal_backend").cloned())
            .expect("the pg_signal_backend capability")
    };
    let missing = capability().await;
    assert_eq!(missing["ok"], false, "{missing}");
    assert!(
        missing["fix"]
            .as_str()
            .is_some_and(|f| f.contains("GRANT pg_signal_backend TO perfscope")),
        "{missing}"
    );
    cluster
        .exec("postgres", "GRANT pg_signal_backend TO perfscope")
        .await;
    assert_eq!(capability().await["ok"], true);

    // Refused: a background process, the agent's own session, another
    // database's session, a pid that does not exist.
    let (probe, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("the superuser connects");
    tokio::spawn(connection);
    let checkpointer: i32 = probe
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'",
            &[],
        )
        .await
        .expect("the checkpointer")
        .get(0);
    // The agent holds no connection between passes (its budget), so a
    // session that looks exactly like one of its own (its role, its pools'
    // application_name) stands for it, held open for the check.
    let (own, connection) = tokio_postgres::connect(
        &format!(
            "{}?application_name=perfscope",
            cluster.url("perfscope", "postgres")
        ),
        tokio_postgres::NoTls,
    )
    .await
    .expect("an agent-like session connects");
    tokio::spawn(connection);
    let agent_pid: i32 = own
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("an agent session")
        .get(0);
    for pid in [checkpointer, agent_pid, other_pid, 999_999] {
        let (status, answer) = signal(&agent, pid, "terminate").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "pid {pid}: {answer}");
    }
    let (status, _) = signal(&agent, 0, "cancel").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "pid 0 is not a pid");
    let (status, _) = signal(&agent, waiter_pid, "explode").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown action");

    // Cancel ends the blocked query; the session stays.
    let (status, answer) = signal(&agent, waiter_pid, "cancel").await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["signalled"], true);
    let cancelled = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiter returns")
        .expect("joins");
    let error = cancelled.expect_err("the blocked update was cancelled");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED),
        "{error}"
    );
    // A pid with another backend start (a session that reused the pid) is
    // not signalled.
    let response = client()
        .post(agent.url(&format!("/api/performance/activity/{holder_pid}/terminate")))
        .query(&[("backendStart", "1999-01-01 00:00:00+00")])
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // Terminate ends the blocker's session (from the Activity page, after
    // its confirmation); its transaction rolls back.
    let base = agent.url("");
    let cookie = support::ui_session(&base).await;
    let (status, page) = support::ui_page(&base, "/ui/activity", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("<td class=\"num\">{holder_pid}</td>")),
        "{page}"
    );
    assert!(page.contains("idle in transaction"), "{page}");
    let csrf = support::csrf_of(&page);
    let pid = holder_pid.to_string();
    let form = [
        ("csrf", csrf.as_str()),
        ("database", "default"),
        ("pid", pid.as_str()),
        ("action", "terminate"),
        ("backend_start", holder_start.as_str()),
    ];
    let (status, _, confirm) = support::ui_post(&base, "/ui/activity/signal", &cookie, &form).await;
    assert_eq!(status, 200);
    assert!(
        confirm.contains(&format!("Terminate pid {holder_pid}")),
        "{confirm}"
    );
    let mut confirmed = form.to_vec();
    confirmed.push(("confirmed", "yes"));
    let (status, location, _) =
        support::ui_post(&base, "/ui/activity/signal", &cookie, &confirmed).await;
    assert_eq!(status, 303);
    let location = location.expect("a redirect");
    let (_, done) = support::ui_page(&base, &location, &cookie).await;
    assert!(
        done.contains(&format!("Terminate sent to pid {holder_pid}")),
        "{done}"
    );
    eventually("the holder's session to end", async || {
        holder_client.is_closed().then_some(())
    })
    .await;
    let name: String = probe
        .query_one("SELECT name FROM items WHERE id = 1", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(name, "item 1", "the terminated transaction rolled back");
    let (status, _) = signal(&agent, sleeper_pid, "cancel").await;
    assert_eq!(status, StatusCode::OK);
    let slept = tokio::time::timeout(Duration::from_secs(5), sleeping)
        .await
        .expect("the sleeper returns")
        .expect("joins");
    assert!(slept.is_err(), "the sleep was cancelled");

    let metrics = client()
        .get(agent.url("/api/performance/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("text");
    for counted in [
        "perfscope_admin_actions_total{action=\"cancel\",outcome=\"forbidden\"} 1",
        "perfscope_admin_actions_total{action=\"cancel\",outcome=\"signalled\"} 2",
        "perfscope_admin_actions_total{action=\"terminate\",outcome=\"signalled\"} 1",
        "perfscope_admin_actions_total{action=\"terminate\",outcome=\"refused\"} 5",
    ] {
        assert!(metrics.contains(counted), "{counted} missing");
    }
    // An unknown database.
    let (status, _) = activity(&agent, Some("nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    agent.stop().await;
}

/// The queryid of the pg_stat_statements entry whose text starts with
/// `prefix` (read as the superuser: the slow-query list only shows the
/// worst statements).
async fn explain(agent: &TestAgent, body: Value) -> (StatusCode, Value) {
    agent
        .admin_post("/api/performance/explain", Some(&body))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_plans_any_statement_and_runs_selects_only() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.create_items().await;
    cluster
        .exec(
            "postgres",
            // The planner role plans (and with ANALYZE runs) them; it may
            // even write, so what stops a write is the read-only
            // transaction itself.
            "CREATE SEQUENCE counter; GRANT SELECT, UPDATE ON items TO perfscope_planner;
             GRANT USAGE, SELECT ON counter TO perfscope_planner;
             CREATE FUNCTION bump() RETURNS int LANGUAGE sql
               AS $$ INSERT INTO items SELECT max(id) + 1, 'bumped' FROM items RETURNING id $$;
             GRANT INSERT ON items TO perfscope_planner;",
        )
        .await;
    let (app, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    tokio::spawn(connection);
    for id in 1..=5i32 {
        app.query("SELECT name FROM items WHERE id = $1", &[&id])
            .await
            .expect("select");
        app.execute(
            "UPDATE items SET name = $1 WHERE id = $2",
            &[&"renamed", &(id + 50)],
        )
        .await
        .expect("update");
        app.query("SELECT bump()", &[]).await.expect("bump");
        app.query("SELECT nextval('counter')", &[])
            .await
            .expect("nextval");
    }
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.read_interval = Some("300".into());
        raw.planner_user = Some("perfscope_planner".into());
        raw.plan_roles = Some("postgres".into());
        // bump() is the superuser's: trusted here, so the read-only
        // transaction is what is tested (tests/hostile.rs refuses
        // untrusted code).
        raw.trusted_owners = Some("postgres".into());
    })
    .await;
    let select = queryid_of(&app, "SELECT name FROM items WHERE id = $1").await;
    let update = queryid_of(&app, "UPDATE items SET name = $1 WHERE id = $2").await;
    let counter = queryid_of(&app, "SELECT nextval").await;
    let bump = queryid_of(&app, "SELECT bump()").await;
    // Once the agent's reader has seen them.
    eventually("the statements in the agent's pass", async || {
        let (status, _) = agent
            .admin_get("/api/performance/explain", &[("queryid", counter.as_str())])
            .await?;
        (status == StatusCode::OK).then_some(())
    })
    .await;

    // The generic plan of any statement: nothing runs.
    for queryid in [&select, &update] {
        let response = client()
            .get(agent.url("/api/performance/explain"))
            .query(&[("queryid", queryid.as_str())])
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("request");
        let status = response.status();
        let plan: Value = response.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "{plan}");
        assert_eq!(plan["analyzed"], false, "{plan}");
        assert!(plan["plan"][0]["Plan"]["Node Type"].is_string(), "{plan}");
        assert!(
            plan["text"].as_str().is_some_and(|t| t.contains("items")),
            "{plan}"
        );
        assert!(
            !plan["text"].as_str().unwrap_or("").contains("actual time"),
            "{plan}"
        );
    }
    // ANALYZE of the SELECT with its parameter.
    let (status, plan) = explain(
        &agent,
        serde_json::json!({"queryid": select, "analyze": true, "params": ["7"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert_eq!(plan["analyzed"], true);
    let text = plan["text"].as_str().unwrap_or("");
    assert!(
        text.contains("actual time") && text.contains("Execution time"),
        "{text}"
    );
    assert_eq!(plan["plan"][0]["Plan"]["Actual Rows"], 1, "{plan}");
    assert_eq!(plan["statement"], "select name from items where id = $1");
    // Refused: ANALYZE of an UPDATE, a wrong number of values, a bad or
    // unknown queryid.
    let (status, answer) = explain(
        &agent,
        serde_json::json!({"queryid": update, "analyze": true, "params": ["x", "1"]}),
    )
    .await;
    support::assert_refused(status, &answer, StatusCode::BAD_REQUEST, "`analyze`");
    let (status, answer) = explain(
        &agent,
        serde_json::json!({"queryid": select, "analyze": true, "params": []}),
    )
    .await;
    support::assert_refused(status, &answer, StatusCode::BAD_REQUEST, "`params`");
    let (status, answer) = explain(&agent, serde_json::json!({"queryid": "abc"})).await;
    support::assert_refused(status, &answer, StatusCode::BAD_REQUEST, "`queryid`");
    let (status, _) = explain(&agent, serde_json::json!({"queryid": "12345"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A SELECT calling a function known to outlast the rollback is
    // refused up front (nextval, advisory locks, signals, …)…
    let before: i64 = app
        .query_one("SELECT last_value FROM counter", &[])
        .await
        .expect("read")
        .get(0);
    let (status, answer) = explain(
        &agent,
        // pg_stat_statements made the sequence's name a parameter.
        serde_json::json!({"queryid": counter, "analyze": true, "params": ["counter"]}),
    )
    .await;
    support::assert_refused(status, &answer, StatusCode::BAD_REQUEST, "`analyze`");
    // …and one that writes through a function of its own cannot run in
    // the read-only transaction: refused by Postgres (422), nothing written.
    let (status, answer) = explain(
        &agent,
        serde_json::json!({"queryid": bump, "analyze": true, "params": []}),
    )
    .await;
    support::assert_refused(
        status,
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "read-only",
    );
    let bumped: i64 = app
        .query_one("SELECT count(*) FROM items WHERE name = 'bumped'", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(bumped, 5, "only the workload's five");
    let after: i64 = app
        .query_one("SELECT last_value FROM counter", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(before, after, "nothing changed");
    let renamed: i64 = app
        .query_one("SELECT count(*) FROM items WHERE name = 'renamed'", &[])
        .await
        .expect("read")
        .get(0);
    assert_eq!(renamed, 5, "the plans changed no row");

    // The same from the web pages: the generic plan, then (for the SELECT
    // only) EXPLAIN ANALYZE with a value, after a confirmation.
    let base = agent.url("");
    let cookie = support::ui_session(&base).await;
    let (status, page) = support::ui_page(
        &base,
        &format!("/ui/explain?database=default&queryid={select}"),
        &cookie,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Generic plan") && page.contains("items"),
        "{page}"
    );
    assert!(page.contains("name=\"p1\""), "{page}");
    let (_, update_page) = support::ui_page(
        &base,
        &format!("/ui/explain?database=default&queryid={update}"),
        &cookie,
    )
    .await;
    assert!(
        !update_page.contains("name=\"p1\""),
        "an UPDATE is never run: {update_page}"
    );
    let csrf = support::csrf_of(&page);
    let form = [
        ("csrf", csrf.as_str()),
        ("database", "default"),
        ("queryid", select.as_str()),
        ("p1", "7"),
    ];
    let (status, _, confirm) = support::ui_post(&base, "/ui/explain", &cookie, &form).await;
    assert_eq!(status, 200);
    assert!(
        confirm.contains("name=\"confirmed\" value=\"yes\""),
        "{confirm}"
    );
    assert!(confirm.contains("name=\"p1\" value=\"7\""), "{confirm}");
    let mut confirmed = form.to_vec();
    confirmed.push(("confirmed", "yes"));
    let (status, _, analyzed) = support::ui_post(&base, "/ui/explain", &cookie, &confirmed).await;
    assert_eq!(status, 200, "{analyzed}");
    assert!(
        analyzed.contains("EXPLAIN (ANALYZE, BUFFERS)"),
        "{analyzed}"
    );
    assert!(analyzed.contains("actual time="), "{analyzed}");
    assert!(
        !analyzed.contains("auto-refresh"),
        "a POST's answer never reloads itself: {analyzed}"
    );
    // Parameters must be p1…pN: a gap is refused.
    let gap = [
        ("csrf", csrf.as_str()),
        ("database", "default"),
        ("queryid", select.as_str()),
        ("p2", "7"),
        ("confirmed", "yes"),
    ];
    let (status, _, _) = support::ui_post(&base, "/ui/explain", &cookie, &gap).await;
    assert_eq!(status, 400);
    agent.stop().await;
}

async fn space(agent: &TestAgent) -> Value {
    let response = client()
        .get(agent.url("/api/performance/space"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

fn table_of(report: &Value, name: &str) -> Value {
    report["tables"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name).cloned())
        .unwrap_or_else(|| panic!("{name} not listed: {report}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn space_shows_sizes_then_bloat_and_growth_after_a_mass_update_and_delete() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster
        .exec(
            "postgres",
            "CREATE TABLE bloaty (id int PRIMARY KEY, payload text NOT NULL) WITH (autovacuum_enabled = off);
             INSERT INTO bloaty SELECT g, repeat('p', 60) FROM generate_series(1, 200000) g;
             GRANT SELECT ON bloaty TO perfscope;
             ANALYZE bloaty;",
        )
        .await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.read_interval = Some("300".into());
    })
    .await;
    let before = space(&agent).await;
    let fresh = table_of(&before, "bloaty");
    let dump = fresh.to_string();
    assert!(fresh["rowsEstimate"].as_f64() > Some(150_000.0), "{dump}");
    assert!(fresh["heapBytes"].as_i64() > Some(10 << 20), "{dump}");
    assert!(fresh["indexBytes"].as_i64() > Some(1 << 20), "{dump}");
    assert_eq!(fresh["growthBytes"], 0, "{dump}");
    assert!(
        // Estimated (the role may read the table), and small.
        fresh["bloatRatio"].as_f64().is_some_and(|r| r < 0.3),
        "a fresh table is not bloated: {dump}"
    );
    let pkey = before["indexes"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["name"] == "bloaty_pkey").cloned())
        .expect("the primary key listed");
    assert_eq!(pkey["table"], "bloaty");
    assert_eq!(pkey["method"], "btree");

    cluster
        .exec(
            "postgres",
            "UPDATE bloaty SET payload = payload || 'x';
             DELETE FROM bloaty WHERE id % 10 <> 0;
             ANALYZE bloaty;",
        )
        .await;
    let after = space(&agent).await;
    let bloated = table_of(&after, "bloaty");
    let dump = bloated.to_string();
    assert!(bloated["bloatRatio"].as_f64() > Some(0.5), "{dump}");
    assert!(
        bloated["bloatBytes"].as_f64() > Some(8.0 * 1024.0 * 1024.0),
        "{dump}"
    );
    assert!(bloated["growthBytes"].as_i64() > Some(1 << 20), "{dump}");
    // The finding, with the table's name only for the admin token.
    let finding = eventually("a table_bloat finding", async || {
        finding(&agent, "table_bloat").await
    })
    .await;
    assert!(
        finding["objects"][0]
            .as_str()
            .is_some_and(|o| o.starts_with("public.bloaty")),
        "{finding}"
    );
    let public: Value = client()
        .get(agent.url("/api/performance/stats"))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    let health = public["recommendations"]["health"].to_string();
    assert!(
        health.contains("table_bloat") && !health.contains("bloaty"),
        "{health}"
    );
    // The Database page shows the space from the reader's last pass.
    let base = agent.url("");
    let cookie = support::ui_session(&base).await;
    let page = eventually("the bloated table on the Database page", async || {
        let (_, page) = support::ui_page(&base, "/ui/database", &cookie).await;
        (page.contains("public.bloaty") && page.contains("class=\"num warn\"")).then_some(page)
    })
    .await;
    assert!(page.contains("Bloat (est.)"), "{page}");
    agent.stop().await;
}

/// Bloat from the size a table has now: a table ANALYZEd, then grown
/// threefold and mostly deleted without ANALYZE (autovacuum off) is mostly
/// dead space, though its last ANALYZE's page count matches its rows then;
/// and its statistics are said to be stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bloat_is_estimated_from_the_current_size_not_the_last_analyze() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster
        .exec(
            "postgres",
            "CREATE TABLE grown (id int, payload text NOT NULL) WITH (autovacuum_enabled = off);
             INSERT INTO grown SELECT g, repeat('p', 200) FROM generate_series(1, 20000) g;
             GRANT SELECT ON grown TO perfscope;
             ANALYZE grown;
             INSERT INTO grown SELECT g, repeat('p', 200) FROM generate_series(20001, 60000) g;
             DELETE FROM grown WHERE id > 2000;",
        )
        .await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.read_interval = Some("300".into());
    })
    .await;
    // The statistics collector counts the inserts and deletes shortly
    // after they commit.
    let grown = eventually("the bloat of the grown table", async || {
        let grown = table_of(&space(&agent).await, "grown");
        (grown["bloatRatio"].as_f64() > Some(0.8)).then_some(grown)
    })
    .await;
    let dump = grown.to_string();
    assert!(grown["rowsEstimate"].as_f64() < Some(5_000.0), "{dump}");
    assert!(grown["heapBytes"].as_i64() > Some(12 << 20), "{dump}");
    assert!(
        grown["bloatBytes"].as_f64() > Some(10.0 * 1024.0 * 1024.0),
        "{dump}"
    );
    assert_eq!(grown["staleStatistics"], true, "{dump}");
    assert!(
        grown["modifiedSinceAnalyze"].as_i64() >= Some(90_000),
        "{dump}"
    );
    let finding = eventually("a table_bloat finding", async || {
        finding(&agent, "table_bloat").await
    })
    .await;
    assert!(
        finding["objects"][0]
            .as_str()
            .is_some_and(|o| o.starts_with("public.grown") && o.ends_with("statistics stale)")),
        "{finding}"
    );
    assert!(
        finding["message"]
            .as_str()
            .is_some_and(|m| m.contains("1 of them changed a lot since their last ANALYZE")),
        "{finding}"
    );
    agent.stop().await;
}

async fn replication(agent: &TestAgent, database: &str) -> Value {
    let response = client()
        .get(agent.url("/api/performance/replication"))
        .query(&[("database", database)])
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_alone_then_with_a_standby_and_a_stale_slot() {
    let primary = PgCluster::start();
    primary.install().await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(primary.url("perfscope", "postgres"));
        raw.read_interval = Some("300".into());
    })
    .await;
    // A single cluster: a primary with nothing, and said so.
    let alone = replication(&agent, "default").await;
    assert_eq!(alone["role"], "primary", "{alone}");
    assert_eq!(alone["standbys"], serde_json::json!([]), "{alone}");
    assert_eq!(alone["slots"], serde_json::json!([]), "{alone}");
    assert_eq!(
        alone["summary"], "primary with no standby connected; no replication slot",
        "{alone}"
    );
    agent.stop().await;

    // A streaming standby, and a slot nobody consumes while WAL is written.
    let standby = primary.start_standby();
    primary
        .exec(
            "postgres",
            "SELECT pg_create_physical_replication_slot('stale', true);
             CREATE TABLE filler AS SELECT g, repeat('w', 100) AS pad FROM generate_series(1, 50000) g;",
        )
        .await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(primary.url("perfscope", "postgres"));
        raw.watch_databases = Some(format!("replica={}", standby.url("perfscope", "postgres")));
        raw.read_interval = Some("300".into());
    })
    .await;
    let report = eventually("the standby streaming", async || {
        let report = replication(&agent, "default").await;
        (report["standbys"][0]["state"] == "streaming").then_some(report)
    })
    .await;
    let dump = report.to_string();
    assert_eq!(report["role"], "primary", "{dump}");
    assert!(
        report["standbys"][0]["bytesBehind"].as_f64().is_some(),
        "{dump}"
    );
    let slot = &report["slots"][0];
    assert_eq!(slot["name"], "stale", "{dump}");
    assert_eq!(slot["active"], false, "{dump}");
    assert!(slot["retainedBytes"].as_f64() > Some(1_000_000.0), "{dump}");
    assert!(
        report["summary"]
            .as_str()
            .is_some_and(|s| s.contains("1 inactive and holding WAL")),
        "{dump}"
    );
    // The standby reports itself and its replay lag.
    let replica = eventually("the standby's own view", async || {
        let replica = replication(&agent, "replica").await;
        (replica["role"] == "standby" && replica["standbys"][0]["replayLagSeconds"].is_number())
            .then_some(replica)
    })
    .await;
    assert_eq!(replica["standbys"][0]["name"], "self", "{replica}");
    // A real number of seconds, not a missing one (`None >= Some(0.0)` is
    // false, but `Some(NaN)`, a negative or an absurd lag must fail too):
    // the standby replays the primary of this very test.
    let lag = replica["standbys"][0]["replayLagSeconds"]
        .as_f64()
        .unwrap_or_else(|| panic!("no replay lag: {replica}"));
    assert!((0.0..600.0).contains(&lag), "replay lag {lag} s: {replica}");
    // The finding and the metrics.
    let finding = eventually("an inactive slot finding", async || {
        finding(&agent, "inactive_replication_slot").await
    })
    .await;
    assert!(
        finding["objects"][0]
            .as_str()
            .is_some_and(|o| o.starts_with("stale")),
        "{finding}"
    );
    let metrics = eventually("the replication metrics", async || {
        let text = client()
            .get(agent.url("/api/performance/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (text.contains("pg_replication_lag_seconds{database=\"default\"")
            && text.contains("pg_replication_lag_seconds{database=\"replica\",standby=\"self\"}"))
        .then_some(text)
    })
    .await;
    assert!(
        metrics.contains("pg_replication_slot_active{database=\"default\",slot=\"stale\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("pg_replication_slot_retained_bytes{database=\"default\",slot=\"stale\"}"),
        "{metrics}"
    );
    let base = agent.url("");
    let cookie = support::ui_session(&base).await;
    let (_, page) = support::ui_page(&base, "/ui/database", &cookie).await;
    assert!(page.contains("A primary with 1 standby(s)."), "{page}");
    assert!(
        page.contains("A standby, replaying from its primary."),
        "{page}"
    );
    assert!(page.contains("<code>stale</code>"), "{page}");
    agent.stop().await;
    drop(standby);
}

/// What a Node or Python service's sqlcommenter library appends (keys
/// sorted, values URL-encoded), as another app on the same database
/// writes it: the activity view reads its tags from the live statement,
/// and the slow-query list the route from the text pg_stat_statements kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_apps_sqlcommenter_tags_show_in_activity_and_slow_queries() {
    const TRACE: &str = "5bd66ef5095369c7b0d1f8f4bd33716a";
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.create_items().await;
    cluster
        .exec(
            "postgres",
            "CREATE ROLE app LOGIN; GRANT SELECT ON items TO app",
        )
        .await;
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(cluster.url("perfscope", "postgres"));
        raw.read_interval = Some("300".into());
    })
    .await;
    let (node, node_pid) = session(&cluster, "postgres").await;
    let sleeping = tokio::spawn(async move {
        node.batch_execute(&format!(
            "SELECT pg_sleep(30) /*controller='orders',db_driver='pg%3A8.11',\
             framework='express%3A4.18.2',route='%2Fapi%2Forders%2F%3Aid',\
             traceparent='00-{TRACE}-c532cb4098ac3dd2-01'*/"
        ))
        .await
    });
    let report = eventually("the tagged session", async || {
        let (_, report) = activity(&agent, None).await;
        session_of(&report, node_pid).filter(|s| s["tags"].is_object())
    })
    .await;
    let dump = serde_json::to_string_pretty(&report).unwrap_or_default();
    assert_eq!(report["tags"]["route"], "/api/orders/:id", "{dump}");
    assert_eq!(report["tags"]["framework"], "express:4.18.2", "{dump}");
    assert_eq!(report["tags"]["dbDriver"], "pg:8.11", "{dump}");
    assert_eq!(report["tags"]["traceId"], TRACE, "{dump}");
    // The statement stays normalized: the comment is not part of it.
    assert_eq!(report["query"], "select pg_sleep(?)", "{dump}");

    // A Python service's statement (slow enough to be listed), run a few
    // times: pg_stat_statements keeps its first text, comment included,
    // under the same queryid.
    let (python, _) = session(&cluster, "postgres").await;
    for id in 0..5 {
        python
            .batch_execute(&format!(
                "SELECT (SELECT count(*) FROM items WHERE id > {id}), pg_sleep(0.2) \
                 /*controller='items',framework='django%3A4.2',route='%5Eapi%2Fitems%2F%24'*/"
            ))
            .await
            .expect("the python app's statement");
    }
    let row = eventually("the tagged statement in the slow-query list", async || {
        let report = agent.admin_json("/api/performance/slow-queries").await?;
        report["queries"]
            .as_array()?
            .iter()
            .find(|q| {
                q["statement"]
                    .as_str()
                    .is_some_and(|s| s.contains("from items where id > $1), pg_sleep"))
            })
            .cloned()
    })
    .await;
    assert_eq!(row["route"], "^api/items/$", "{row}");
    assert!(
        !row["statement"].as_str().unwrap_or("").contains("/*"),
        "{row}"
    );
    sleeping.abort();
}
