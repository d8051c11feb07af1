//! Sentry through the tower layer, over the SDK's envelopes to a real
//! receiver: an axum request is a transaction named by its route template,
//! continuing the caller's `sentry-trace`, with its query as a child span;
//! a 5xx answer is an event tagged with the route; a fallback request is
//! `GET unmatched`, never its raw path. Its own test binary: the Sentry
//! client is process-global.

mod support;

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::db::TimedPool;
use serde_json::Value;
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, client};

async fn item(State(pool): State<TimedPool>, Path(id): Path<i32>) -> Result<String, StatusCode> {
    let client = pool
        .get()
        .await
        .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
    let row = client
        .query_one("SELECT name FROM items WHERE id = $1", &[&id])
        .await
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok(row.get(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_axum_request_is_a_transaction_by_template_with_its_query() {
    let cluster = PgCluster::start();
    cluster.create_items().await;
    let (dsn, inbox) = support::sentry_receiver().await;
    let config = RawConfig {
        admin_token: Some(ADMIN_TOKEN.into()),
        sentry_dsn: Some(dsn),
        sentry_traces_sample_rate: Some("1.0".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let cancel = tokio_util::sync::CancellationToken::new();
    let tasks = perfscope.start(&cancel);
    let pool = support::pg::pool(&perfscope, &cluster).await;
    let app = axum::Router::new()
        .route("/items/{id}", get(item))
        .route("/boom", get(|| async { StatusCode::BAD_GATEWAY }))
        .with_state(pool)
        .layer(perfscope.axum_layer());
    let base = support::serve_axum(app).await;

    let http = client();
    let answer = http
        .get(format!("{base}/items/42?session=hunter2"))
        .header(
            "sentry-trace",
            "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1",
        )
        .send()
        .await
        .expect("item");
    assert_eq!(answer.text().await.expect("text"), "item 42");
    for path in ["/boom", "/no/such/route"] {
        http.get(format!("{base}{path}"))
            .send()
            .await
            .expect("sent");
    }
    support::until("three transactions", Duration::from_secs(10), || {
        inbox.of("transaction").len() >= 3
    })
    .await;
    support::until("the 5xx event", Duration::from_secs(10), || {
        !inbox.of("event").is_empty()
    })
    .await;

    let transactions = inbox.of("transaction");
    let named = |name: &str| -> Value {
        transactions
            .iter()
            .find(|t| t["transaction"] == name)
            .unwrap_or_else(|| panic!("no transaction {name} in {transactions:?}"))
            .clone()
    };
    let item = named("GET /items/{id}");
    assert_eq!(
        item["contexts"]["trace"]["trace_id"],
        "771a43a4192642f0b136d5159a501700"
    );
    assert_eq!(
        item["contexts"]["trace"]["parent_span_id"],
        "b7ad6b7169203331"
    );
    assert_eq!(item["contexts"]["trace"]["status"], "ok");
    let spans = item["spans"].as_array().expect("spans");
    assert!(
        spans.iter().any(|s| s["op"] == "db.sql.query"
            && s["description"]
                .as_str()
                .is_some_and(|d| d.contains("from items where id = $1"))),
        "{spans:?}"
    );
    assert_eq!(
        named("GET /boom")["contexts"]["trace"]["status"],
        "internal_error"
    );
    named("GET unmatched");
    let events = inbox.of("event");
    assert!(
        events.iter().any(|e| e["tags"]["route"] == "/boom"),
        "{events:?}"
    );
    // Nothing personal: no query string, no raw path of the fallback.
    let raw = inbox.raw.lock().clone();
    assert!(
        !raw.contains("hunter2") && !raw.contains("/no/such/route"),
        "{raw}"
    );
    // The latency histogram's exemplar is the caller's trace.
    let text = perfscope.encode_metrics().expect("encodes");
    assert!(
        text.contains("trace_id=\"771a43a4192642f0b136d5159a501700\""),
        "{text}"
    );
    cancel.cancel();
    tasks.join().await;
}
