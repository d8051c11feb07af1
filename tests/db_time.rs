//! Where database time goes (issue 20, "Answers from it"), over real
//! HTTP: an agent watching a throwaway cluster as `default`, its active
//! session history filled with known samples (`support::ash::fill`: the
//! handle's real ring, pushed what the sampler would push). The API is
//! admin only, answers the shares that were driven, refuses bad
//! parameters by name and answers an empty range with an empty result;
//! the metrics carry the wait classes, the top statements and the routes
//! (an untrusted route cleaned), and the ring's own size.

#![cfg(feature = "postgres")]

mod support;

use reqwest::StatusCode;
use serde_json::Value;
use support::ash::{TRACE_ID, agent, fill, now};
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, client};

const PATH: &str = "/api/performance/db-time";

async fn get(base: &str, token: Option<&str>, query: &[(&str, String)]) -> (StatusCode, Value) {
    let mut request = client().get(format!("{base}{PATH}")).query(query);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn row<'a>(answer: &'a Value, key: &str) -> &'a Value {
    answer["top"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["key"] == key))
        .unwrap_or_else(|| panic!("no row {key:?} in {answer}"))
}

fn close(value: &Value, expected: f64, what: &str) {
    let value = value
        .as_f64()
        .unwrap_or_else(|| panic!("{what} is no number"));
    assert!(
        (value - expected).abs() < 1e-6,
        "{what} is {value}, expected {expected}"
    );
}

/// Admin only; the shares of a filled ring by wait, route and statement,
/// with the trace id and the blocker; bad parameters named; an empty
/// range empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_time_answers_the_driven_shares_to_an_admin_only() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let (perfscope, app) = agent(&cluster, None).await;
    let until = now();
    fill(&perfscope, until, None);
    let range = |by: &str| {
        vec![
            ("since", (until - 300).to_string()),
            ("until", (until + 1).to_string()),
            ("by", by.to_owned()),
        ]
    };
    let base = app.base.as_str();

    let (status, body) = get(base, None, &range("wait")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _) = get(base, Some("not-the-token-0123456789"), &range("wait")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // By wait: 2 sessions on CPU and 1 on a row lock in every sample.
    let (status, by_wait) = get(base, Some(ADMIN_TOKEN), &range("wait")).await;
    assert_eq!(status, StatusCode::OK, "{by_wait}");
    assert_eq!(by_wait["samples"], 301, "{by_wait}");
    close(&by_wait["aas"], 3.0, "aas");
    close(&row(&by_wait, "CPU")["share"], 2.0 / 3.0, "CPU's share");
    let lock = row(&by_wait, "Lock:transactionid");
    close(&lock["share"], 1.0 / 3.0, "Lock's share");
    assert_eq!(
        lock["blockedBy"][0], "delete from accounts where id = ?",
        "{lock}"
    );
    assert_eq!(by_wait["stepSeconds"], 10);
    let point = &by_wait["series"][3];
    let total: f64 = point["classes"]
        .as_array()
        .expect("classes")
        .iter()
        .map(|c| c["aas"].as_f64().expect("aas"))
        .sum();
    assert!((total - 3.0).abs() < 1e-6, "{point}");

    // By route: /orders two thirds, /pay a third with its trace id.
    let (_, by_route) = get(base, Some(ADMIN_TOKEN), &range("route")).await;
    close(
        &row(&by_route, "/orders")["share"],
        2.0 / 3.0,
        "/orders' share",
    );
    let pay = row(&by_route, "/pay");
    close(&pay["aas"], 1.0, "/pay's aas");
    assert_eq!(pay["traceIds"], serde_json::json!([TRACE_ID]), "{pay}");
    assert_eq!(pay["waits"][0]["class"], "Lock", "{pay}");

    // By statement: normalized texts (no literal), fingerprints; top=1
    // leaves the rest as `other`.
    let mut query = range("statement");
    query.push(("top", "1".into()));
    query.push(("database", "default".into()));
    let (status, by_statement) = get(base, Some(ADMIN_TOKEN), &query).await;
    assert_eq!(status, StatusCode::OK, "{by_statement}");
    assert_eq!(by_statement["database"], "default");
    let top = &by_statement["top"][0];
    assert_eq!(top["key"], "select * from orders where id = ?", "{top}");
    assert_eq!(top["fingerprint"].as_str().map(str::len), Some(16), "{top}");
    close(&by_statement["other"]["share"], 1.0 / 3.0, "other's share");
    let texts = format!("{}{}", top["key"], by_statement["other"]["blockedBy"]);
    assert!(!texts.contains("42"), "no literal value: {texts}");

    // An empty range is an empty answer.
    let empty = vec![("since", "1000".to_owned()), ("until", "1000".to_owned())];
    let (status, nothing) = get(base, Some(ADMIN_TOKEN), &empty).await;
    assert_eq!(status, StatusCode::OK, "{nothing}");
    assert_eq!(nothing["samples"], 0, "{nothing}");
    assert_eq!(nothing["top"], serde_json::json!([]), "{nothing}");

    // Refusals name their parameter.
    for (query, status, field) in [
        (
            vec![("database", "nope".to_owned())],
            StatusCode::NOT_FOUND,
            "database",
        ),
        (
            vec![("since", "20".to_owned()), ("until", "10".to_owned())],
            StatusCode::BAD_REQUEST,
            "since",
        ),
        (
            vec![("since", "-1".to_owned())],
            StatusCode::BAD_REQUEST,
            "since",
        ),
        (
            vec![("since", "0".to_owned()), ("until", until.to_string())],
            StatusCode::BAD_REQUEST,
            "since",
        ),
        (
            vec![("top", "0".to_owned())],
            StatusCode::BAD_REQUEST,
            "top",
        ),
        (
            vec![("by", "table".to_owned())],
            StatusCode::BAD_REQUEST,
            "by",
        ),
    ] {
        let (got, body) = get(base, Some(ADMIN_TOKEN), &query).await;
        assert_eq!(got, status, "{query:?}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{query:?}: {body}");
    }
    app.stop().await;
}

/// The value of the exposition line that starts with `series`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The wait classes (every one, zero included), the top statements and
/// routes with `other` never past the cap, an untrusted route cleaned,
/// and the ring's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_carry_wait_classes_top_statements_and_clean_routes() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let (perfscope, app) = agent(&cluster, None).await;
    fill(&perfscope, now(), Some("/evil\n# EOF\u{1b}"));
    let text = client()
        .get(format!("{}/api/performance/metrics", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let class = |name: &str| {
        sample(
            &text,
            &format!(r#"pg_ash_active_sessions{{database="default",wait_event_type="{name}"}}"#),
        )
        .unwrap_or_else(|| panic!("no {name} series in\n{text}"))
    };
    assert!((class("CPU") - 2.0).abs() < 1e-6, "CPU {}", class("CPU"));
    assert!((class("Lock") - 1.0).abs() < 1e-6, "Lock {}", class("Lock"));
    assert!(class("IO") < 0.2, "IO {}", class("IO"));
    assert_eq!(class("BufferPin"), 0.0);
    let routes: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("pg_ash_route_active_sessions{"))
        .collect();
    assert!(
        routes.iter().any(|l| l.contains(r#"route="/evil# EOF""#)),
        "{routes:?}"
    );
    assert_eq!(
        text.matches("# EOF\n").count(),
        1,
        "one end of the exposition"
    );
    let orders = sample(
        &text,
        r#"pg_ash_route_active_sessions{database="default",route="/orders"}"#,
    )
    .expect("/orders");
    assert!((orders - 2.0).abs() < 1e-6, "{orders}");
    let statements = text
        .lines()
        .filter(|l| l.starts_with("pg_ash_statement_active_sessions{"))
        .count();
    assert!(
        (2..=11).contains(&statements),
        "{statements} statement series"
    );
    assert!(!text.contains("orders where"), "never a statement's text");
    assert!(sample(&text, "perfscope_ash_memory_bytes").is_some_and(|b| b > 0.0));
    assert!(sample(&text, "perfscope_ash_minutes").is_some_and(|m| m >= 5.0));
    assert_eq!(
        sample(&text, "perfscope_ash_dropped_minutes_total"),
        Some(0.0)
    );
    app.stop().await;
}

/// A range older than the ring is answered from the history store's
/// minutes joined with the ring's: a minute written to the store two days
/// ago (as the recorder writes the ring's closed minutes) and the ring's
/// recent samples both count, and a range the ring alone covers does not
/// read the store's.
#[cfg(feature = "store")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_older_than_the_ring_is_answered_from_the_store() {
    use std::sync::Arc;
    let cluster = PgCluster::start();
    cluster.install().await;
    let (perfscope, app) = agent(&cluster, None).await;
    let store = perfscope.store().expect("the agent's history store");
    let until = now();
    let two_days_ago = (until - 2 * 86_400) / 60 * 60;
    let at = i64::try_from(two_days_ago).expect("a time");
    // 60 samples of one minute, 4 sessions in each on IO: AAS 4.
    store.record(perfscope::store::Write::Ash(perfscope::store::AshMinute {
        at,
        ticks: vec![(Arc::from("default"), 60)],
        counts: vec![perfscope::store::AshCount {
            database: Arc::from("default"),
            class: Arc::from("IO"),
            event: Some(Arc::from("DataFileRead")),
            fingerprint: 42,
            query_id: None,
            text: Arc::from("select * from archive"),
            role: Arc::from("reports"),
            application: Arc::from("nightly"),
            route: Some(Arc::from("/reports/archive")),
            samples: 240,
        }],
    }));
    store.flush().await;
    fill(&perfscope, until, None);
    let base = app.base.as_str();
    let since = (two_days_ago - 3_600).to_string();
    let (status, answer) = get(
        base,
        Some(ADMIN_TOKEN),
        &[
            ("since", since.clone()),
            ("until", (until + 1).to_string()),
            ("by", "route".into()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let stored = row(&answer, "/reports/archive");
    close(&stored["seconds"], 240.0, "the stored minute's seconds");
    assert_eq!(stored["waits"][0]["class"], "IO", "{answer}");
    // The ring's own rows are there too.
    row(&answer, "/pay");
    // The ring alone: the stored minute is not in the last hour.
    let (_, recent) = get(
        base,
        Some(ADMIN_TOKEN),
        &[
            ("since", (until - 3_600).to_string()),
            ("until", (until + 1).to_string()),
            ("by", "route".into()),
        ],
    )
    .await;
    assert!(
        recent["top"]
            .as_array()
            .is_some_and(|rows| rows.iter().all(|r| r["key"] != "/reports/archive")),
        "{recent}"
    );
}
