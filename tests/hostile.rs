//! Hostile database users against a real cluster: nothing a database user
//! writes (statement texts, functions, views, operators, policies, object
//! names) may run with the agent's privileges, hold its connections or
//! stop its readers (issue "Do no harm"). Each case has a positive control
//! or a broken variant that shows the check can fail.
//!
//! The attacker, `mallory`, is a plain login role whose statements the
//! operator even listed in PERFSCOPE_PLAN_ROLES (the worst case: an
//! application role taken over through SQL injection). The agent runs as
//! the least-privilege `perfscope` role of sql/install.sql with the
//! optional `pg_signal_backend` grant, and plans as `perfscope_planner`.

#![cfg(feature = "postgres")]

mod support;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, TestAgent, client, eventually};

/// The text every hostile function writes to the server log when it runs,
/// with the role it ran as.
const MARKER: &str = "perfscope-hostile-marker ran as";

const SETUP: &str = "
GRANT pg_signal_backend TO perfscope;
CREATE ROLE mallory LOGIN;
CREATE ROLE victim LOGIN;
CREATE ROLE trusted_dev NOLOGIN;
CREATE SCHEMA mallory AUTHORIZATION mallory;
CREATE SCHEMA trusted_dev AUTHORIZATION trusted_dev;
GRANT USAGE ON SCHEMA trusted_dev TO mallory, perfscope_planner;
CREATE TABLE secrets (s text);
INSERT INTO secrets VALUES ('the-secret-value');
CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, code text NOT NULL);
INSERT INTO big SELECT g, g % 5000, 'C' || g FROM generate_series(1, 20000) g;
CREATE TABLE \"order items\" (id int PRIMARY KEY, sku text NOT NULL);
INSERT INTO \"order items\" SELECT g, 'SKU' || g FROM generate_series(1, 20000) g;
CREATE SCHEMA hidden;
CREATE TABLE hidden.t (id int PRIMARY KEY, code text NOT NULL);
INSERT INTO hidden.t SELECT g, 'H' || g FROM generate_series(1, 20000) g;
GRANT USAGE ON SCHEMA hidden TO mallory, perfscope_planner;
GRANT SELECT ON big, \"order items\", hidden.t TO mallory, perfscope_planner;
ANALYZE;
";

/// Created by mallory in her own schema: every function tries to read the
/// secret, terminate the victim's session and take a session advisory
/// lock, and leaves the marker in the server log.
const MALLORY: &str = r#"
CREATE FUNCTION mallory.leak() RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
DECLARE
  secret text := 'nothing';
BEGIN
  BEGIN
    SELECT s INTO secret FROM public.secrets LIMIT 1;
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  RAISE WARNING 'perfscope-hostile-marker ran as % and read %', current_user, secret;
  BEGIN
    PERFORM set_config('application_name', (SELECT s FROM public.secrets LIMIT 1), false);
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  BEGIN
    PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'victim';
  EXCEPTION WHEN OTHERS THEN NULL;
  END;
  PERFORM pg_advisory_lock(4242);
  RETURN 1;
END $$;
CREATE FUNCTION mallory.kill_eq(int, int) RETURNS bool IMMUTABLE LANGUAGE plpgsql AS $$
BEGIN
  RAISE WARNING 'perfscope-hostile-marker ran as %', current_user;
  RETURN $1 = $2;
END $$;
CREATE OPERATOR mallory.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = mallory.kill_eq);
CREATE FUNCTION mallory.wrap(text) RETURNS bool VOLATILE LANGUAGE sql AS $$
  SELECT bool_or(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = $1
$$;
-- A view that signals when anyone but mallory reads it.
CREATE VIEW mallory.v AS
  SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity
  WHERE usename = 'victim' AND current_user <> 'mallory';
GRANT USAGE ON SCHEMA mallory TO perfscope_planner;
GRANT SELECT ON mallory.v TO perfscope_planner;
-- SQL kept in a column, run by a built-in function.
CREATE TABLE mallory.cmds (id int PRIMARY KEY, sql text NOT NULL);
INSERT INTO mallory.cmds VALUES
  (1, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = ''victim'''),
  (2, 'SELECT 1');
GRANT SELECT ON mallory.cmds TO perfscope_planner;
-- A policy and a column default that call her function.
CREATE TABLE mallory.guarded (id int PRIMARY KEY, v int);
INSERT INTO mallory.guarded SELECT g, g FROM generate_series(1, 100) g;
ALTER TABLE mallory.guarded ENABLE ROW LEVEL SECURITY;
ALTER TABLE mallory.guarded FORCE ROW LEVEL SECURITY;
CREATE POLICY p ON mallory.guarded USING (mallory.leak() = 1);
CREATE TABLE mallory.defaults (a int, b int DEFAULT mallory.leak());
GRANT SELECT, INSERT ON mallory.guarded, mallory.defaults TO perfscope_planner;
-- An index expression on a partition (not on the table the statement
-- names): the planner folds it when it opens the partition.
CREATE TABLE mallory.parted (a int NOT NULL, b int) PARTITION BY RANGE (a);
CREATE TABLE mallory.parted_1 PARTITION OF mallory.parted FOR VALUES FROM (0) TO (1000);
INSERT INTO mallory.parted SELECT g, g FROM generate_series(1, 10) g;
CREATE INDEX ON mallory.parted_1 ((b + mallory.leak()));
GRANT SELECT ON mallory.parted TO perfscope_planner;
-- A function that stands in for the agent's own call of hypopg when the
-- statement's search_path (pg_catalog, mallory, public) is in force.
CREATE FUNCTION mallory.hypopg_create_index(text, OUT indexrelid oid, OUT indexname text)
  RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
  RAISE WARNING 'perfscope-hostile-marker ran as % (hypopg stand-in)', current_user;
  RETURN;
END $$;
"#;

/// mallory's workload (each runs fine for her; pg_stat_statements keeps
/// their texts with constants as `$n`).
const WORKLOAD: &[&str] = &[
    "SELECT v FROM big WHERE id = mallory.leak()",
    "SELECT v FROM big WHERE id OPERATOR(mallory.===) 7",
    "SELECT mallory.wrap('nobody')",
    "SELECT * FROM mallory.v",
    "SELECT query_to_xml(sql, true, false, '') FROM mallory.cmds WHERE id = 2",
    "SELECT U&\"pg\\005fterminate\\005fbackend\"(pid) FROM pg_stat_activity WHERE usename = 'nobody' AND datname = 'nowhere'",
    "SELECT v FROM mallory.guarded WHERE id = 3",
    "INSERT INTO mallory.defaults (a) VALUES (1)",
    "SELECT id FROM \"order items\" WHERE sku = 'SKU7'",
    "SELECT id FROM hidden.t WHERE code = 'H7'",
    "SELECT b FROM mallory.parted WHERE a = 5",
];

async fn connect(cluster: &PgCluster, user: &str, application: &str) -> tokio_postgres::Client {
    let url = format!(
        "{}?application_name={application}",
        cluster.url(user, "postgres")
    );
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    client
}

async fn queryid(admin: &tokio_postgres::Client, prefix: &str) -> String {
    let rows = admin
        .query(
            "SELECT queryid::text, query FROM pg_stat_statements WHERE query LIKE $1 || '%'",
            &[&prefix],
        )
        .await
        .expect("pg_stat_statements");
    match rows.first() {
        Some(row) => row.get(0),
        None => {
            let all: Vec<String> = admin
                .query("SELECT query FROM pg_stat_statements", &[])
                .await
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                .unwrap_or_default();
            panic!("no statement starting with {prefix} in {all:#?}")
        }
    }
}

async fn explain(agent: &TestAgent, body: Value) -> (StatusCode, Value, Duration) {
    let started = Instant::now();
    let (status, body) = agent
        .admin_post("/api/performance/explain", Some(&body))
        .await;
    (status, body, started.elapsed())
}

fn gauge(metrics: &str, name_and_labels: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Sessions of the planner role whose query matches `like`.
async fn planner_sessions(admin: &tokio_postgres::Client, like: &str) -> Option<i64> {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'perfscope_planner' AND query LIKE $1",
            &[&like],
        )
        .await
        .ok()
        .map(|row| row.get(0))
}

async fn advisory_locks(admin: &tokio_postgres::Client) -> i64 {
    admin
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'",
            &[],
        )
        .await
        .expect("pg_locks")
        .get(0)
}

async fn victim_alive(admin: &tokio_postgres::Client) -> bool {
    admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'victim'",
            &[],
        )
        .await
        .expect("pg_stat_activity")
        .get::<_, i64>(0)
        == 1
}

async fn start_agent(cluster: &PgCluster, trusted_owners: &str) -> TestAgent {
    let url = cluster.url("perfscope", "postgres");
    let trusted = trusted_owners.to_owned();
    TestAgent::start_with(move |raw| {
        raw.database_url = Some(url);
        raw.read_interval = Some("300".into());
        raw.planner_user = Some("perfscope_planner".into());
        raw.plan_roles = Some("mallory".into());
        raw.trusted_owners = Some(trusted);
    })
    .await
}

/// The whole hostile-user scenario on one cluster (its setup is the slow
/// part): planning never runs mallory's code; EXPLAIN ANALYZE bypasses of
/// a name list stay harmless; odd names never stop the advisor; and, as
/// the positive control, trusting mallory makes her code run, as the
/// planner role only, with nothing left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_database_users_cannot_use_the_agent() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.exec("postgres", SETUP).await;
    let mallory = connect(&cluster, "mallory", "mallory").await;
    mallory
        .batch_execute(MALLORY)
        .await
        .expect("mallory's objects");
    for _ in 0..3 {
        for sql in WORKLOAD {
            mallory
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    // Her own runs took her own lock: end her session.
    drop(mallory);
    let admin = connect(&cluster, "postgres", "test-admin").await;
    eventually("mallory's session ended", async || {
        (advisory_locks(&admin).await == 0).then_some(())
    })
    .await;
    let victim = connect(&cluster, "victim", "victim").await;
    let log_before = cluster.server_log().matches(MARKER).count();

    let agent = start_agent(&cluster, "").await;
    // The advisor saw her statements and refused to plan them.
    let untrusted = eventually("the advisor refuses untrusted code", async || {
        let text = agent.metrics().await;
        gauge(
            &text,
            "perfscope_advisor_skipped_statements{database=\"default\",reason=\"untrusted_code\"}",
        )
        .filter(|n| *n >= 2.0)
    })
    .await;
    assert!(untrusted >= 2.0);
    // Odd and hostile names never stop a pass: "order items" is advised
    // on (quoted), hidden.t is resolved although the agent has no USAGE
    // on its schema, and the advisor's reads succeed.
    let suggestions = eventually("advice on \"order items\"", async || {
        let stats: Value = agent.admin_json("/api/performance/stats").await?;
        let list = stats["recommendations"]["indexSuggestions"]
            .as_array()?
            .clone();
        list.iter()
            .any(|s| s["table"] == "public.order items")
            .then_some(list)
    })
    .await;
    let dump = serde_json::to_string(&suggestions).unwrap_or_default();
    assert!(
        dump.contains(r#"CREATE INDEX CONCURRENTLY ON \"public\".\"order items\" (\"sku\");"#),
        "{dump}"
    );
    assert!(dump.contains("\"hidden.t\""), "{dump}");
    let text = agent.metrics().await;
    assert_eq!(
        gauge(
            &text,
            "perfscope_reader_success{database=\"default\",reader=\"index_advisor\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // A few more advisor passes: still nothing ran.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let log = cluster.server_log();
    assert_eq!(
        log.matches(MARKER).count(),
        log_before,
        "mallory's code ran while the agent planned:\n{log}"
    );
    assert!(victim_alive(&admin).await, "the victim's session was ended");
    assert_eq!(advisory_locks(&admin).await, 0, "a lock was left behind");

    // EXPLAIN on request: her functions, operator, policy and default are
    // refused before anything is planned…
    for prefix in [
        "SELECT v FROM big WHERE id = mallory.leak()",
        "SELECT v FROM big WHERE id OPERATOR",
        "SELECT mallory.wrap",
        "SELECT v FROM mallory.guarded",
        "INSERT INTO mallory.defaults",
    ] {
        let id = queryid(&admin, prefix).await;
        let (status, body, _) = explain(&agent, serde_json::json!({"queryid": id})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{prefix}: {body}");
        assert_eq!(body["error"], "explain_refused", "{prefix}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("mallory.")),
            "{prefix}: {body}"
        );
    }
    // …a U& identifier is not read, so not run…
    let id = queryid(&admin, "SELECT U&").await;
    let (status, body, _) = explain(
        &agent,
        serde_json::json!({"queryid": id, "analyze": true, "params": ["victim"]}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "explain_refused", "{body}");
    // …and what passes every name check (a view, SQL from a column) runs
    // as the planner role, which may not signal anyone.
    let id = queryid(&admin, "SELECT * FROM mallory.v").await;
    let (status, body, _) = explain(
        &agent,
        serde_json::json!({"queryid": id, "analyze": true, "params": []}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"], "explain_failed", "{body}");
    assert!(victim_alive(&admin).await, "the victim's session was ended");
    // pg_stat_statements made every constant a parameter: $1…$3 are
    // query_to_xml's flags, $4 the row (1: the row whose SQL signals).
    let id = queryid(&admin, "SELECT query_to_xml").await;
    let (status, body, _) = explain(
        &agent,
        serde_json::json!({"queryid": id, "analyze": true, "params": ["true", "false", "", "1"]}),
    )
    .await;
    // SQL given as text is refused before it runs (400 naming
    // `analyze`); if it did run, it would run as the planner role, as the
    // view above shows.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("`analyze`")),
        "{body}"
    );
    assert!(victim_alive(&admin).await, "the victim's session was ended");
    assert_eq!(advisory_locks(&admin).await, 0);
    agent.stop().await;

    // The positive control: trusting mallory's code lets it run, so the
    // marker check above can fail. It runs as the planner role, never as
    // the agent's, and leaves nothing behind.
    cluster
        .exec("postgres", "GRANT SELECT ON secrets TO perfscope_planner")
        .await;
    let agent = start_agent(&cluster, "mallory").await;
    let ran = eventually("mallory's trusted code runs while planning", async || {
        let log = cluster.server_log();
        (log.matches(MARKER).count() > log_before).then_some(log)
    })
    .await;
    let runs: Vec<&str> = ran
        .lines()
        .filter(|l| l.contains(MARKER))
        .skip(log_before)
        .collect();
    assert!(
        runs.iter().all(|l| l.contains("ran as perfscope_planner")),
        "{runs:?}"
    );
    // What runs can read what the planner role may read (the documented
    // limit: grant it only the tables to advise on), nothing more.
    assert!(
        runs.iter()
            .any(|l| l.ends_with("and read the-secret-value")),
        "{runs:?}"
    );
    agent.stop().await;
    eventually("no planner session left", async || {
        (planner_sessions(&admin, "%").await? == 0).then_some(())
    })
    .await;
    // The planner role may not signal: the victim lives on.
    assert!(victim_alive(&admin).await);
    drop(victim);
}

/// A statement whose function catches `query_canceled` (so it survives
/// `statement_timeout` and a cancel) under EXPLAIN ANALYZE: the answer
/// comes within the deadline, the planner backend is terminated, and the
/// advisor's next passes succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_that_ignores_cancellation_is_stopped() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.exec("postgres", SETUP).await;
    cluster
        .exec(
            "postgres",
            r#"
            CREATE FUNCTION trusted_dev.stubborn(n int) RETURNS int VOLATILE LANGUAGE plpgsql AS $$
            BEGIN
              FOR i IN 1..n LOOP
                BEGIN
                  PERFORM pg_sleep(0.05);
                EXCEPTION WHEN query_canceled THEN NULL;
                END;
              END LOOP;
              RETURN n;
            END $$;
            ALTER FUNCTION trusted_dev.stubborn(int) OWNER TO trusted_dev;
            GRANT EXECUTE ON FUNCTION trusted_dev.stubborn(int) TO mallory, perfscope_planner;
            "#,
        )
        .await;
    let mallory = connect(&cluster, "mallory", "mallory").await;
    for _ in 0..3 {
        mallory
            .batch_execute("SELECT trusted_dev.stubborn(1)")
            .await
            .expect("stubborn");
        mallory
            .batch_execute("SELECT code FROM big WHERE id = 1")
            .await
            .expect("a plain statement");
    }
    let admin = connect(&cluster, "postgres", "test-admin").await;
    let id = queryid(&admin, "SELECT trusted_dev.stubborn").await;
    let agent = start_agent(&cluster, "trusted_dev").await;
    eventually("the statement in the agent's pass", async || {
        let (status, _) = agent
            .admin_get("/api/performance/explain", &[("queryid", id.as_str())])
            .await?;
        (status == StatusCode::OK).then_some(())
    })
    .await;
    let (status, body, took) = explain(
        &agent,
        serde_json::json!({"queryid": id, "analyze": true, "params": ["1000000"], "timeoutMs": 300}),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("deadline")),
        "{body}"
    );
    // 300 ms of statement_timeout plus the 2 s client-side grace.
    assert!(took < Duration::from_secs(10), "answered after {took:?}");
    eventually("the stubborn backend is gone", async || {
        (planner_sessions(&admin, "%stubborn%").await? == 0).then_some(())
    })
    .await;
    // The planner goes on: the next statement is planned.
    let plain = queryid(&admin, "SELECT code FROM big").await;
    let (status, body, _) = explain(&agent, serde_json::json!({"queryid": plain})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    agent.stop().await;
}

/// `$n` inside quoted identifiers and comments is not a parameter: a text
/// built to make the agent allocate one value per `$9999999999` leaves the
/// agent binary (under a 3 GiB address-space cap) answering, and EXPLAIN
/// plans it with its one real parameter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_cannot_make_the_agent_allocate() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster.exec("postgres", SETUP).await;
    let mallory = connect(&cluster, "mallory", "mallory").await;
    for _ in 0..3 {
        mallory
            .query(
                "SELECT id AS \"$9999999999\" FROM big /* $8888888888 */ WHERE v = $1",
                &[&7i32],
            )
            .await
            .expect("query");
    }
    let admin = connect(&cluster, "postgres", "test-admin").await;
    let id = queryid(&admin, "SELECT id AS").await;
    // The binary under an address-space cap: an unbounded allocation
    // fails the test instead of exhausting the machine.
    let mut command = std::process::Command::new("bash");
    command
        .args(["-c", "ulimit -v 3145728 && exec \"$0\"", support::BIN])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PERFSCOPE_LISTEN", "127.0.0.1:0")
        .env("PERFSCOPE_LOG_FORMAT", "json")
        .env("PERFSCOPE_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("DATABASE_URL", cluster.url("perfscope", "postgres"))
        .env("PERFSCOPE_READ_INTERVAL", "300")
        .env("PERFSCOPE_PLANNER_USER", "perfscope_planner")
        .env("PERFSCOPE_PLAN_ROLES", "mallory")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = support::Reaper(command.spawn().expect("agent starts"));
    let stderr = child.0.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if let Ok(entry) = serde_json::from_str::<Value>(&line)
                && entry["fields"]["message"] == "perfscope listening"
            {
                let _ = tx.send(entry["fields"]["address"].as_str().unwrap_or("").to_owned());
            }
        }
    });
    let address = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent logs its address");
    let base = format!("http://{address}");
    let plan = eventually("EXPLAIN of the hostile text", async || {
        let response = client()
            .get(format!("{base}/api/performance/explain"))
            .query(&[("queryid", id.as_str())])
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?;
        if response.status() != StatusCode::OK {
            return None;
        }
        response.json::<Value>().await.ok()
    })
    .await;
    assert!(plan["plan"][0]["Plan"]["Node Type"].is_string(), "{plan}");
    // A few advisor passes later the agent still answers, and is small.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let health = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("the agent still answers");
    assert_eq!(health.status(), StatusCode::OK);
    assert!(
        child.0.try_wait().expect("wait").is_none(),
        "the agent died"
    );
    let rss = support::resident_bytes(child.0.id());
    assert!(rss < 256 * 1024 * 1024, "resident {rss} bytes");
}

/// A database user who made a schema named `perfscope` before the install
/// could later replace the SECURITY DEFINER helper in it: the install
/// refuses such a schema, and creates nothing in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_perfscope_schema_made_first_by_a_database_user_stops_the_install() {
    let cluster = PgCluster::start();
    cluster
        .exec(
            "postgres",
            "CREATE ROLE squatter; CREATE SCHEMA perfscope AUTHORIZATION squatter;",
        )
        .await;
    let refusal = cluster
        .try_install()
        .await
        .expect_err("the install refuses");
    assert!(refusal.contains("schema perfscope"), "{refusal}");
    let admin = connect(&cluster, "postgres", "check").await;
    let helpers: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_proc WHERE proname = 'sequence_positions'",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    assert_eq!(helpers, 0);
    // Once the schema is gone, the install goes through.
    cluster.exec("postgres", "DROP SCHEMA perfscope").await;
    cluster.try_install().await.expect("the install");
}
