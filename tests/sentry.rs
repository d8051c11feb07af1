//! Sentry end to end, over the SDK's envelopes to a real HTTP receiver on
//! loopback: a transaction per request named by route template (unmatched
//! as `METHOD unmatched`), continuing an incoming `sentry-trace`, with a
//! span per query (normalized SQL, `db.system`) and per measurement; 5xx
//! answers and panics as events; nothing personal in anything sent; and a
//! receiver that never answers costs requests nothing while the drops are
//! counted. One test function: the Sentry client is process-global.

mod support;

use std::time::{Duration, Instant};

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::db::TimedPool;
use poem::web::{Data, Path};
use poem::{EndpointExt, Route, get, handler};
use serde_json::Value;
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, SentryInbox, client};

#[handler]
async fn item_handler(
    pool: Data<&TimedPool>,
    perfscope: Data<&Perfscope>,
    Path(id): Path<i32>,
) -> poem::Result<String> {
    let pool = pool.clone();
    perfscope
        .measurements()
        .track("load_item", async move {
            let client = pool.get().await?;
            let row = client
                .query_one("SELECT name FROM items WHERE id = $1", &[&id])
                .await?;
            Ok::<_, perfscope::db::DbError>(row.get::<_, String>(0))
        })
        .await
        .map_err(poem::error::InternalServerError)
}

#[handler]
fn boom_handler() -> poem::Result<String> {
    Err(poem::Error::from_status(
        poem::http::StatusCode::BAD_GATEWAY,
    ))
}

#[handler]
fn explode() -> String {
    panic!("the handler exploded")
}

/// Serves the agent plus the test routes.
async fn serve(perfscope: &Perfscope, pool: TimedPool) -> support::HostApp {
    let routes = Route::new()
        .at(
            "/items/:id",
            get(item_handler).data(pool).data(perfscope.clone()),
        )
        .at("/boom", get(boom_handler))
        .at("/explode", get(explode));
    support::HostApp::start(perfscope, routes).await
}

fn perfscope(dsn: &str) -> Perfscope {
    let config = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        sentry_dsn: Some(dsn.into()),
        sentry_traces_sample_rate: Some("1.0".into()),
        sentry_environment: Some("test".into()),
        alert_for: Some("0".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    Perfscope::new(config)
}

fn transactions(inbox: &SentryInbox) -> Vec<Value> {
    inbox.of("transaction")
}

fn events(inbox: &SentryInbox) -> Vec<Value> {
    inbox.of("event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_transactions_spans_and_events_over_real_envelopes() {
    let cluster = PgCluster::start();
    cluster.create_items().await;
    let (dsn, inbox) = support::sentry_receiver().await;
    let perfscope = perfscope(&dsn);
    let pool = support::pg::pool(&perfscope, &cluster).await;
    let app = serve(&perfscope, pool).await;
    let base = app.base.clone();
    let http = client();

    // A request continuing a trace, with a secret in the query and a token
    // in a header.
    let response = http
        .get(format!("{base}/items/42?session=hunter2"))
        .header(
            "sentry-trace",
            "771a43a4192642f0b136d5159a501700-b7ad6b7169203331-1",
        )
        .header("authorization", "Bearer very-secret-token-0123")
        .send()
        .await
        .expect("item");
    assert_eq!(response.text().await.expect("text"), "item 42");
    for path in ["/no/such/route", "/boom", "/explode"] {
        let _ = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("sent");
    }
    // An alert becomes a Sentry event too.
    perfscope.alerts().evaluate(
        &perfscope::alerts::Readings {
            lag: Some(Duration::from_secs(2)),
            ..Default::default()
        },
        Instant::now(),
    );
    support::until("four transactions", Duration::from_secs(10), || {
        transactions(&inbox).len() >= 4
    })
    .await;
    // The transport sends several envelopes at once, so they may arrive in
    // any order: wait for each of the three, not for a count.
    support::until(
        "the 5xx, panic and alert events",
        Duration::from_secs(10),
        || {
            let events = events(&inbox);
            let has = |check: &dyn Fn(&serde_json::Value) -> bool| events.iter().any(check);
            has(&|e| {
                e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("GET /boom answered 502"))
            }) && has(&|e| e.to_string().contains("the handler exploded"))
                && has(&|e| e["tags"]["alert.rule"] == "event_loop_lag")
        },
    )
    .await;

    let all = transactions(&inbox);
    let names: Vec<&str> = all
        .iter()
        .filter_map(|t| t["transaction"].as_str())
        .collect();
    // A panic unwinds through poem's router before it tags the response
    // with the route template, so a panicking request is `unmatched` too
    // (its panic event carries the message and stack).
    for expected in ["GET /items/:id", "GET unmatched", "GET /boom"] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert_eq!(
        names.iter().filter(|n| **n == "GET unmatched").count(),
        2,
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.contains("42") || n.contains("/no/such")),
        "{names:?}"
    );
    let item = all
        .iter()
        .find(|t| t["transaction"] == "GET /items/:id")
        .expect("the item transaction");
    let trace = &item["contexts"]["trace"];
    assert_eq!(trace["op"], "http.server");
    assert_eq!(
        trace["trace_id"], "771a43a4192642f0b136d5159a501700",
        "continued"
    );
    assert_eq!(trace["parent_span_id"], "b7ad6b7169203331");
    assert_eq!(trace["status"], "ok");
    assert_eq!(item["tags"]["route"], "/items/:id", "{item}");
    let spans = item["spans"].as_array().cloned().unwrap_or_default();
    let measure = spans
        .iter()
        .find(|s| s["op"] == "function")
        .expect("a measurement span");
    assert_eq!(measure["description"], "load_item");
    let query = spans
        .iter()
        .find(|s| s["op"] == "db.sql.query")
        .expect("a query span");
    assert_eq!(query["description"], "select name from items where id = $1");
    assert_eq!(query["data"]["db.system"], "postgresql");
    assert_eq!(
        query["parent_span_id"], measure["span_id"],
        "the query ran inside the measurement"
    );
    // Without OpenTelemetry, the latency exemplars are Sentry's trace ids.
    let scrape = perfscope.encode_metrics().expect("scrape");
    let exemplar = scrape
        .lines()
        .filter(|l| {
            l.starts_with("http_request_duration_seconds_bucket")
                && l.contains("route=\"/items/:id\"")
        })
        .find_map(|l| {
            l.split_once(" # {trace_id=\"")
                .map(|(_, rest)| rest[..32].to_owned())
        })
        .unwrap_or_else(|| panic!("an exemplar on the item route: {scrape}"));
    assert_eq!(exemplar, "771a43a4192642f0b136d5159a501700");
    let boom = all
        .iter()
        .find(|t| t["transaction"] == "GET /boom")
        .expect("boom");
    assert_eq!(boom["contexts"]["trace"]["status"], "internal_error");

    let events = events(&inbox);
    let failure = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("GET /boom answered 502"))
        })
        .expect("the 5xx event");
    assert_eq!(failure["tags"]["route"], "/boom");
    // Error is the protocol's default level, so it may be left out.
    assert!(
        failure["level"].is_null() || failure["level"] == "error",
        "{failure}"
    );
    let panic = events
        .iter()
        .find(|e| e.to_string().contains("the handler exploded"))
        .expect("the panic event");
    let alert = events
        .iter()
        .find(|e| e["tags"]["alert.rule"] == "event_loop_lag")
        .expect("the alert event");
    assert_eq!(alert["tags"]["alert.state"], "firing");
    assert_eq!(alert["level"], "warning");
    assert_eq!(panic["request"]["method"], "GET");
    assert!(panic["request"].get("url").is_none(), "{panic}");
    // Nothing personal anywhere: no query values, no headers.
    let raw = inbox.raw.lock().clone();
    for secret in ["hunter2", "very-secret-token", "Bearer", "authorization"] {
        assert!(!raw.contains(secret), "{secret} reached Sentry");
    }
    app.stop().await;

    // A Sentry that accepts and never answers: requests stay fine, and the
    // transport drops and counts.
    let black_hole = support::black_hole().await;
    let perfscope = self::perfscope(&format!("http://public@{black_hole}/1"));
    let pool = support::pg::pool(&perfscope, &cluster).await;
    let app = serve(&perfscope, pool).await;
    let base = app.base.clone();
    assert!(
        perfscope::telemetry::sentry::enabled(),
        "Sentry is on again"
    );
    assert!(
        sentry::Hub::main().client().is_some_and(|c| c.is_enabled()),
        "a client is bound"
    );
    let started = Instant::now();
    for i in 0..300 {
        let response = http
            .get(format!("{base}/items/{}", 1 + i % 100))
            .send()
            .await
            .expect("item");
        assert_eq!(response.status(), 200);
    }
    let elapsed = started.elapsed();
    let metrics = http
        .get(format!("{base}/api/performance/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let dropped: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"perfscope_telemetry_dropped_total{sink="sentry"} "#))
        .and_then(|v| v.parse().ok())
        .expect("the sentry drop counter");
    assert!(
        dropped >= 100.0,
        "{dropped} dropped of 300 transactions: {}",
        metrics
            .lines()
            .filter(|l| l.contains("dropped") || l.contains("http_request_duration_seconds_count"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        elapsed < Duration::from_secs(20),
        "300 requests took {elapsed:?}"
    );
    let stopping = Instant::now();
    app.stop().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(15),
        "{:?}",
        stopping.elapsed()
    );
}
