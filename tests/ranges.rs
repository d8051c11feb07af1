//! The pages' ranges over real HTTP (issue 19): `?range=7d` on a fresh
//! store says there is not enough history yet, a bogus range is a 400,
//! and a store seeded with a week of rows (written before the agent
//! starts, as a previous run would have) draws that week on the 7 d
//! charts with the week's deploy marked.

#![cfg(all(feature = "store", feature = "ui"))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use perfscope::metrics::Buckets;
use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{
    Event, EventKind, RouteDelta, StatementDelta, Store, StoreSettings, Write, unix_now,
};
use reqwest::StatusCode;
use support::TestAgent;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn page(agent: &TestAgent, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = client()
        .get(agent.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// The page once the agent's store has opened (it opens on its own
/// thread after the agent binds).
async fn page_with_store(agent: &TestAgent, cookie: &str, path: &str) -> (StatusCode, String) {
    for _ in 0..50 {
        let (status, body) = page(agent, cookie, path).await;
        if !body.contains("still opening") {
            return (status, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store did not open within 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_store_says_it_has_not_enough_history_and_a_bogus_range_is_refused() {
    let agent = TestAgent::start().await;
    let cookie = support::ui_session(&agent.url("")).await;

    let (status, body) = page_with_store(&agent, &cookie, "/ui?range=7d").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains(r#"<a href="/ui?range=7d" aria-current="page">7d</a>"#),
        "the selector marks 7d: {body}"
    );
    assert!(
        body.contains("Not enough history for the last 7 days yet"),
        "{body}"
    );
    assert!(
        body.contains("from the history store, the last 7 days"),
        "{body}"
    );
    assert!(
        body.contains("No requests recorded over the last 7 days"),
        "{body}"
    );

    let (status, body) = page_with_store(&agent, &cookie, "/ui/queries?range=30d").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#"aria-current="page">30d</a>"#), "{body}");
    assert!(
        body.contains("Not enough history for the last 30 days yet"),
        "{body}"
    );

    // The hour is the process's own: no notice.
    let (status, body) = page_with_store(&agent, &cookie, "/ui").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"aria-current="page">1h</a>"#), "{body}");
    assert!(!body.contains("Not enough history"), "{body}");

    for path in [
        "/ui?range=bogus",
        "/ui/queries?range=7D",
        "/ui/explain?database=default&queryid=1&range=%3Cb%3E",
    ] {
        let (status, body) = page(&agent, &cookie, path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body.contains("Field `range`: one of 1h, 24h, 7d or 30d is required."),
            "{path}: {body}"
        );
        assert!(!body.contains("<b>"), "{body}");
    }
    agent.stop().await;
}

/// A week of one route and one statement, an hour apart, and a deploy
/// three days ago, written as a previous run would have.
async fn seed_a_week(dir: &std::path::Path, now: i64) {
    let (store, task) = Store::open(
        StoreSettings::new(dir, 64 << 20),
        Arc::new(StoreMetrics::default()),
    );
    let mut bounds = Buckets::HTTP_DEFAULT.to_vec();
    bounds.push(f64::INFINITY);
    let bounds: Arc<[f64]> = Arc::from(bounds);
    for hour in 0..168 {
        let at = now - 7 * 86_400 + 60 + hour * 3_600;
        let mut buckets = vec![0; bounds.len()];
        // 10 requests between 50 and 75 ms.
        buckets[6] = 10;
        store.record(Write::Routes {
            at,
            bounds: bounds.clone(),
            rows: vec![RouteDelta {
                method: "GET".into(),
                route: "/orders/:id".into(),
                requests: 10,
                errors: 0,
                sum_seconds: 0.6,
                buckets,
            }],
        });
        store.record(Write::Statements {
            at,
            database: Arc::from("default"),
            rows: vec![StatementDelta {
                queryid: 4242,
                text: Some(Arc::from("SELECT * FROM orders WHERE id = $1")),
                calls: 5,
                total_ms: 5.0 * (1.0 + hour as f64 / 10.0),
                rows: 5,
                ..StatementDelta::default()
            }],
        });
        // Let the writer keep up with its bounded queue.
        if hour % 32 == 0 {
            store.flush().await;
        }
    }
    store.record(Write::Event(Event {
        at: now - 3 * 86_400,
        kind: EventKind::Deploy,
        database: None,
        label: "shop v2 <b>".into(),
        detail: None,
    }));
    store.flush().await;
    task.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_week_of_stored_history_shows_on_the_7d_charts_with_its_deploy() {
    let dir = support::temp_dir("ranges-week");
    seed_a_week(&dir, unix_now()).await;
    let data_dir = dir.display().to_string();
    let agent = TestAgent::start_with(move |raw| raw.data_dir = Some(data_dir)).await;
    let cookie = support::ui_session(&agent.url("")).await;
    let marker = "<title>deploy: shop v2 &lt;b&gt;</title>";

    let (status, body) = page_with_store(&agent, &cookie, "/ui?range=7d").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("Not enough history"), "{body}");
    assert!(
        body.contains("from the history store, the last 7 days"),
        "{body}"
    );
    let row = body
        .split("<tr>")
        .find(|row| row.contains("/orders/:id"))
        .unwrap_or_else(|| panic!("the stored route is listed: {body}"));
    assert!(row.contains("1,680"), "a week of requests: {row}");
    let points = row
        .split("<polyline points=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a line of p95s: {row}"));
    assert!(
        points.split(' ').count() >= 150,
        "a point per hour of the week: {points}"
    );
    assert!(row.contains(marker), "the deploy is marked: {row}");
    assert!(!body.contains("shop v2 <b>"), "labels are escaped");

    // The hour has none of it (the process's own), and no week-old marker.
    let (_, body) = page_with_store(&agent, &cookie, "/ui").await;
    assert!(!body.contains("/orders/:id"), "{body}");
    assert!(!body.contains(marker), "{body}");

    // The statement's page: calls and mean per step over the week.
    let (_, body) = page_with_store(
        &agent,
        &cookie,
        "/ui/explain?database=default&queryid=4242&range=7d",
    )
    .await;
    assert!(body.contains("Calls per step"), "{body}");
    assert!(body.contains("840"), "a week of calls: {body}");
    let charts = body.matches("<polyline points=\"").count();
    assert_eq!(charts, 2, "calls and mean time: {body}");
    assert_eq!(body.matches(marker).count(), 2, "{body}");
    assert!(
        body.contains(r#"<a href="/ui/explain?database=default&amp;queryid=4242&amp;range=7d" aria-current="page">7d</a>"#),
        "{body}"
    );
    agent.stop().await;
}

/// A live statement of the Queries page (pg_stat_statements on a real
/// cluster) with a week of stored history: its row's trend is the week's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listed_statement_trends_over_the_stored_week() {
    let cluster = support::pg::PgCluster::start();
    cluster.install().await;
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    for _ in 0..3 {
        client
            .query("SELECT pg_sleep(0.05)", &[])
            .await
            .expect("the workload");
    }
    let queryid: i64 = client
        .query_one(
            "SELECT queryid FROM pg_stat_statements WHERE query LIKE 'SELECT pg_sleep%' LIMIT 1",
            &[],
        )
        .await
        .expect("its queryid")
        .get(0);

    let dir = support::temp_dir("ranges-statement");
    let now = unix_now();
    let (store, task) = Store::open(
        StoreSettings::new(&dir, 64 << 20),
        Arc::new(StoreMetrics::default()),
    );
    for hour in 0..168 {
        store.record(Write::Statements {
            at: now - 7 * 86_400 + 60 + hour * 3_600,
            database: Arc::from("default"),
            rows: vec![StatementDelta {
                queryid,
                text: Some(Arc::from("SELECT pg_sleep($1)")),
                calls: 2,
                total_ms: 100.0,
                ..StatementDelta::default()
            }],
        });
    }
    store.record(Write::Event(Event {
        at: now - 2 * 86_400,
        kind: EventKind::Deploy,
        database: None,
        label: "shop v3".into(),
        detail: None,
    }));
    store.flush().await;
    task.join().await;

    let url = cluster.url("perfscope", "postgres");
    let data_dir = dir.display().to_string();
    let agent = TestAgent::start_with(move |raw| {
        raw.database_url = Some(url);
        raw.read_interval = Some("300".into());
        raw.data_dir = Some(data_dir);
    })
    .await;
    let cookie = support::ui_session(&agent.url("")).await;
    let mut row = None;
    for _ in 0..50 {
        let (status, body) = page_with_store(&agent, &cookie, "/ui/queries?range=7d").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        row = body
            .split("<tr>")
            .find(|row| row.contains("pg_sleep"))
            .map(str::to_owned);
        if row.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let row = row.expect("the statement is listed within 10 s");
    assert!(row.contains("mean per step, the last 7 days"), "{row}");
    let points = row
        .split("<polyline points=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a line of means: {row}"));
    assert!(points.split(' ').count() >= 150, "{points}");
    assert!(
        row.contains("<title>deploy: shop v3</title>"),
        "the deploy is marked: {row}"
    );
    assert!(
        row.contains(&format!("queryid={queryid}&amp;range=7d")),
        "its page keeps the range: {row}"
    );
    agent.stop().await;
}
