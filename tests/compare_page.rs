//! The Compare page over real HTTP (issue 19, "Deploys compared"): a
//! store seeded (as a previous run would have) with a route and a
//! statement before and after a moment, a marker posted there through the
//! API; the page lists the marker as a link, splits at it with the
//! figures on both sides, refuses a bad window by name, needs a session,
//! and says so when the store is off. The charts' markers link to it.

#![cfg(all(feature = "store", feature = "ui"))]

mod support;

use std::sync::Arc;
use std::time::Duration;

use perfscope::metrics::Buckets;
use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{RouteDelta, StatementDelta, Store, StoreSettings, Write, unix_now};
use reqwest::StatusCode;
use serde_json::json;
use support::TestAgent;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// The page's status, `Location` and body, once the agent's store has
/// opened (it opens on its own thread after the agent binds).
async fn page(
    agent: &TestAgent,
    cookie: Option<&str>,
    path: &str,
) -> (StatusCode, Option<String>, String) {
    for _ in 0..50 {
        let mut request = client().get(agent.url(path));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = response.text().await.expect("body");
        if !body.contains("still opening") {
            return (status, location, body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the store did not open within 5 s");
}

/// Six writes on each side of `at`: `GET /orders/:id` 20 requests each
/// (8 ms before, 40 ms after), statement 4242 30 calls each (1.5 ms and
/// 1 block read per call before, 6 ms and 100 after); and on both sides
/// a route and a statement with too few to be compared.
async fn seed(dir: &std::path::Path, at: i64) {
    let (store, task) = Store::open(
        StoreSettings::new(dir, 64 << 20),
        Arc::new(StoreMetrics::default()),
    );
    let mut bounds = Buckets::HTTP_DEFAULT.to_vec();
    bounds.push(f64::INFINITY);
    let bounds: Arc<[f64]> = Arc::from(bounds);
    let route = |route: &str, requests: u64, bucket: usize, seconds: f64| {
        let mut buckets = vec![0; bounds.len()];
        buckets[bucket] = requests;
        RouteDelta {
            method: "GET".into(),
            route: route.into(),
            requests,
            errors: 0,
            sum_seconds: requests as f64 * seconds,
            buckets,
        }
    };
    let statement =
        |queryid: i64, text: &str, calls: i64, mean_ms: f64, reads: i64| StatementDelta {
            queryid,
            text: Some(Arc::from(text)),
            calls,
            total_ms: calls as f64 * mean_ms,
            rows: calls,
            shared_read: reads,
            ..StatementDelta::default()
        };
    for k in 0..6 {
        for (ts, bucket, seconds, mean_ms, reads) in [
            // (0.005, 0.01] s, then (0.025, 0.05] s.
            (at - 3_000 + k * 300, 3, 0.008, 1.5, 30),
            (at + 300 + k * 300, 5, 0.040, 6.0, 3_000),
        ] {
            store.record(Write::Routes {
                at: ts,
                bounds: bounds.clone(),
                rows: vec![
                    route("/orders/:id", 20, bucket, seconds),
                    route("/rare", 1, bucket, seconds),
                ],
            });
            store.record(Write::Statements {
                at: ts,
                database: Arc::from("default"),
                rows: vec![
                    statement(
                        4242,
                        "SELECT * FROM orders WHERE note <> '<b>' AND id = $1",
                        30,
                        mean_ms,
                        reads,
                    ),
                    statement(7, "SELECT 1", 1, mean_ms, 0),
                ],
            });
        }
        store.flush().await;
    }
    task.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_marker_splits_the_compare_page_with_figures_on_both_sides() {
    let dir = support::temp_dir("compare-page");
    // Both windows of an hour over before now.
    let at = unix_now() - 2 * 3_600;
    seed(&dir, at).await;
    let data_dir = dir.display().to_string();
    let agent = TestAgent::start_with(move |raw| raw.data_dir = Some(data_dir)).await;

    // Without a session: to the login.
    let (status, location, _) = page(&agent, None, &format!("/ui/compare?at={at}")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location.as_deref(), Some("/ui/login"));

    let cookie = support::ui_session(&agent.url("")).await;
    let (status, _, body) = page(&agent, Some(&cookie), "/ui/compare").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("checkout"), "{body}");
    assert!(
        body.contains(r#"href="/ui/compare" aria-current="page""#),
        "the nav tab: {body}"
    );

    let (status, marker) = agent
        .admin_post(
            "/api/performance/events",
            Some(&json!({"label": "checkout <v2>", "at": at})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{marker}");

    // The list: the marker, escaped, a link to its moment.
    let (status, _, body) = page(&agent, Some(&cookie), "/ui/compare").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("<v2>"), "{body}");
    let row = body
        .split("<tr>")
        .find(|row| row.contains("checkout &lt;v2&gt;"))
        .unwrap_or_else(|| panic!("the marker is listed: {body}"));
    assert!(row.contains("<strong>marker</strong>"), "{row}");
    assert!(
        row.contains(&format!(r#"href="/ui/compare?at={at}""#)),
        "{row}"
    );
    // A window picked on the form is carried by the links.
    let (_, _, body) = page(&agent, Some(&cookie), "/ui/compare?window=90m").await;
    assert!(
        body.contains(&format!(r#"href="/ui/compare?at={at}&amp;window=90m""#)),
        "{body}"
    );

    // Split at it: both tables with figures on both sides.
    let (status, _, body) = page(&agent, Some(&cookie), &format!("/ui/compare?at={at}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("At that moment: <strong>marker</strong> checkout &lt;v2&gt;"),
        "{body}"
    );
    let route = body
        .split("<tr>")
        .find(|row| row.contains("/orders/:id"))
        .unwrap_or_else(|| panic!("the route is compared: {body}"));
    for figure in [
        "<td class=\"num\">120</td>",
        "8.00 ms → 40.0 ms",
        "5.0× slower",
    ] {
        assert!(route.contains(figure), "{figure}: {route}");
    }
    let statement = body
        .split("<tr>")
        .find(|row| row.contains("queryid 4242"))
        .unwrap_or_else(|| panic!("the statement is compared: {body}"));
    for figure in [
        "<td class=\"num\">180</td>",
        "1.50 ms → 6.00 ms",
        "4.0× slower",
        "1.0 → 100",
        r#"href="/ui/explain?database=default&amp;queryid=4242""#,
        "note &lt;&gt; '&lt;b&gt;'",
    ] {
        assert!(statement.contains(figure), "{figure}: {statement}");
    }
    assert!(!body.contains("'<b>'"), "{body}");
    // The routes table comes before the statements', the ones with too
    // few samples are counted, not listed.
    assert!(
        body.find("/orders/:id") < body.find("queryid 4242"),
        "{body}"
    );
    assert!(
        !body.contains("/rare") && !body.contains("queryid 7 "),
        "{body}"
    );
    assert!(body.contains("1 route and 1 statement"), "{body}");
    assert!(
        body.contains("at least 20 requests or calls on each side"),
        "{body}"
    );

    // A window outside the API's bounds, or a moment that is not one: a
    // 400 naming the parameter, with the form.
    for (path, name) in [
        (format!("/ui/compare?at={at}&window=10"), "window"),
        (format!("/ui/compare?at={at}&window=31d"), "window"),
        ("/ui/compare?at=yesterday".to_owned(), "at"),
    ] {
        let (status, _, body) = page(&agent, Some(&cookie), &path).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(body.contains(&format!("Field `{name}`")), "{path}: {body}");
        assert!(
            body.contains(r#"<form class="params" method="get" action="/ui/compare">"#),
            "{body}"
        );
    }

    // The 24 h route chart marks the marker with a link to this page.
    let (status, _, body) = page(&agent, Some(&cookie), "/ui?range=24h").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains(&format!(
            r#"<a href="/ui/compare?at={at}"><line class="marker-hit""#
        )),
        "{body}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_the_compare_page_says_so() {
    let agent = TestAgent::start_with(|raw| raw.data_dir = Some("off".into())).await;
    let cookie = support::ui_session(&agent.url("")).await;
    for path in ["/ui/compare", "/ui/compare?at=1780000000&window=1h"] {
        let (status, _, body) = page(&agent, Some(&cookie), path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(
            body.contains("The history store is off (PERFSCOPE_DATA_DIR=off)"),
            "{path}: {body}"
        );
    }
    agent.stop().await;
}
