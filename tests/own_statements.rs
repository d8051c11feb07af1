//! The agent's own statements are recognised by what the agent sends, not
//! by a marker a user can type nor by hiding its whole role, against a
//! real cluster: a user's statement that starts with `/* perfscope */` is
//! listed; a host app that shares the agent's role sees its statements;
//! every statement the agent itself ran (by queryid, from
//! pg_stat_statements as the superuser sees it) is left out and counted as
//! the agent's own cost, in the metrics and on the Database page.

mod support;

use std::collections::BTreeMap;

use support::pg::PgCluster;
use support::{TestAgent, eventually, ui_page, ui_session};

async fn connect(cluster: &PgCluster, user: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&cluster.url(user, "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connects");
    tokio::spawn(connection);
    client
}

/// Queryids with a `pg_stat_statements_calls_total` series.
fn listed(scrape: &str) -> Vec<i64> {
    scrape
        .lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("pg_stat_statements_calls_total{database=\"default\",queryid=\"")?;
            rest.split('"').next()?.parse().ok()
        })
        .collect()
}

fn sample(scrape: &str, name: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `(queryid, role) → (text, calls)` of the watched database, as the
/// superuser reads pg_stat_statements (one entry per role and queryid).
async fn server_statements(
    admin: &tokio_postgres::Client,
) -> BTreeMap<(i64, String), (String, i64)> {
    admin
        .query(
            "SELECT s.queryid, r.rolname::text, s.query, s.calls
             FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
             WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND s.queryid IS NOT NULL",
            &[],
        )
        .await
        .expect("pg_stat_statements")
        .iter()
        .map(|row| ((row.get(0), row.get(1)), (row.get(2), row.get(3))))
        .collect()
}

async fn queryid_of(admin: &tokio_postgres::Client, role: &str, prefix: &str) -> Option<i64> {
    server_statements(admin)
        .await
        .into_iter()
        .find(|((_, r), (text, _))| r == role && text.starts_with(prefix))
        .map(|((id, _), _)| id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_statements_are_recognised_by_their_text_not_a_marker_or_the_role() {
    let cluster = PgCluster::start();
    cluster.install().await;
    cluster
        .exec(
            "postgres",
            "CREATE ROLE mallory LOGIN;
             CREATE TABLE orders (id int PRIMARY KEY, customer int NOT NULL, note text);
             INSERT INTO orders SELECT g, g % 500, 'n' FROM generate_series(1, 20000) g;
             ANALYZE orders;
             GRANT SELECT ON orders TO perfscope, mallory;",
        )
        .await;
    let admin = connect(&cluster, "postgres").await;
    // A user hides nothing by starting a statement with the marker.
    let mallory = connect(&cluster, "mallory").await;
    for _ in 0..3 {
        mallory
            .query(
                "/* perfscope */ SELECT count(*) FROM orders WHERE note = 'secret'",
                &[],
            )
            .await
            .expect("mallory's statement");
    }
    // A host app whose pool logs in as the agent's role.
    let app = connect(&cluster, "perfscope").await;
    for customer in 0..5 {
        app.query("SELECT id FROM orders WHERE customer = $1", &[&customer])
            .await
            .expect("the app's statement");
    }
    let marker = queryid_of(&admin, "mallory", "/* perfscope */ SELECT count(*)")
        .await
        .expect("mallory's statement is in pg_stat_statements");
    let shared = queryid_of(&admin, "perfscope", "SELECT id FROM orders WHERE customer")
        .await
        .expect("the app's statement is in pg_stat_statements");

    let url = cluster.url("perfscope", "postgres");
    let agent = TestAgent::start_with(|raw| {
        raw.database_url = Some(url.clone());
        raw.read_interval = Some("300".into());
        raw.top_statements = Some("1000".into());
    })
    .await;
    // Let every reader (the advisor's EXPLAINs, the space reader's every
    // fourth pass) run a few times as the agent.
    eventually("every reader to have read", async || {
        let scrape = agent.metrics().await;
        [
            "pg_stat_statements",
            "database",
            "index_advisor",
            "index_impact",
            "health",
            "activity",
            "space",
            "replication",
            "io",
        ]
        .iter()
        .all(|reader| {
            scrape.contains(&format!(
                "perfscope_reader_success{{database=\"default\",reader=\"{reader}\"}} 1"
            ))
        })
        .then_some(())
    })
    .await;
    let before = server_statements(&admin).await;
    // The agent's entries: its role's, but the app's statement. Their
    // calls all count as its own cost; a queryid another role also ran
    // (a statement the advisor explained) is listed for that role.
    let agent_calls: i64 = before
        .iter()
        .filter(|((id, role), _)| role == "perfscope" && *id != shared)
        .map(|(_, (_, calls))| calls)
        .sum();
    let agents: Vec<i64> = before
        .keys()
        .filter(|(id, role)| {
            role == "perfscope"
                && *id != shared
                && !before
                    .keys()
                    .any(|(other, r)| other == id && r != "perfscope")
        })
        .map(|(id, _)| *id)
        .collect();
    assert!(agents.len() >= 10, "the agent ran only {agents:?}");

    // A statement run after that read: once it is listed, a statements
    // pass has seen (and fetched the text of) every queryid read above.
    mallory
        .query(
            "SELECT count(*) FROM orders WHERE customer = 7 AND note <> 'later'",
            &[],
        )
        .await
        .expect("a later statement");
    let later = queryid_of(
        &admin,
        "mallory",
        "SELECT count(*) FROM orders WHERE customer",
    )
    .await
    .expect("the later statement");
    let scrape = eventually("a statements pass after the read", async || {
        let scrape = agent.metrics().await;
        listed(&scrape).contains(&later).then_some(scrape)
    })
    .await;
    let shown = listed(&scrape);
    assert!(
        shown.contains(&marker),
        "a user's statement starting with /* perfscope */ is hidden"
    );
    assert!(
        shown.contains(&shared),
        "the host app's statement is hidden because it shares the agent's role"
    );
    let leaked: Vec<&(String, i64)> = agents
        .iter()
        .filter(|id| shown.contains(id))
        .map(|id| &before[&(*id, "perfscope".to_owned())])
        .collect();
    assert!(
        leaked.is_empty(),
        "the agent's own statements are listed: {leaked:#?}"
    );

    // Its own cost: at least what it had run at the read above.
    let calls = sample(
        &scrape,
        "perfscope_agent_statement_calls_total{database=\"default\"}",
    );
    let seconds = sample(
        &scrape,
        "perfscope_agent_statement_seconds_total{database=\"default\"}",
    );
    assert!(
        calls >= agent_calls as f64 && agent_calls > 0,
        "{calls} calls counted, {agent_calls} run"
    );
    assert!(seconds > 0.0, "{seconds}");

    // The Database page shows it.
    let cookie = ui_session(&agent.url("")).await;
    let (status, page) = ui_page(&agent.url(""), "/ui/database", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("perfscope&#39;s own cost") || page.contains("perfscope's own cost"),
        "{page}"
    );
    agent.stop().await;
}

/// A role listed as the agent's own (its planner role, say): all of its
/// statements are the agent's, whatever their text; unlisted, the same
/// role's statements are the application's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_statement_of_a_role_listed_as_the_agents_own_is_its_own() {
    use perfscope::pg::Reader;
    use perfscope::pg::readers::statements::StatementsReader;

    let cluster = PgCluster::start();
    cluster.install().await;
    cluster
        .exec(
            "postgres",
            "CREATE ROLE planner LOGIN; CREATE TABLE t (id int); GRANT SELECT ON t TO planner;",
        )
        .await;
    let admin = connect(&cluster, "postgres").await;
    let planner = connect(&cluster, "planner").await;
    for _ in 0..50 {
        planner
            .query("SELECT count(*) FROM t WHERE id > 3", &[])
            .await
            .expect("the planner's statement");
    }
    let id = queryid_of(&admin, "planner", "SELECT count(*) FROM t")
        .await
        .expect("in pg_stat_statements");
    let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    let pool = perfscope
        .connect_pool(
            &cluster.url("perfscope", "postgres"),
            perfscope::db::PoolSettings {
                min: 0,
                max: 1,
                ..Default::default()
            },
        )
        .await
        .expect("a pool");
    // The agent's own statements add a few calls a pass; the planner's 50
    // calls tell the two apart.
    let mut own_calls = Vec::new();
    for (roles, own) in [(vec![], false), (vec!["planner".to_owned()], true)] {
        let reader = StatementsReader::default().with_own_roles(roles);
        let mut client = pool.get().await.expect("a connection");
        let tx = client.transaction().await.expect("a transaction");
        reader.read(&tx).await.expect("a pass");
        tx.commit().await.expect("commit");
        let snapshot = reader.latest().expect("the pass is kept");
        let listed = snapshot.statements.iter().any(|s| s.queryid == id);
        assert_eq!(listed, !own, "listed: {listed}");
        own_calls.push(snapshot.own.calls);
    }
    assert!(own_calls[0] < 50, "{own_calls:?}");
    assert!(own_calls[1] - own_calls[0] >= 50, "{own_calls:?}");
}
