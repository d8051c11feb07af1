//! The Sentry transport keeps several requests in flight and flushes on
//! shutdown, against a real envelope receiver on loopback that takes
//! 200 ms to answer each one: the receiver sees more than one request at
//! a time (never more than `MAX_IN_FLIGHT`), and envelopes still queued
//! when the app stops arrive before it has stopped. One test function: the
//! Sentry client is process-global.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::telemetry::sentry::MAX_IN_FLIGHT;
use poem::web::Data;
use poem::{EndpointExt, Route, get, handler};
use support::{ADMIN_TOKEN, client};

/// How long the receiver takes to answer.
const ANSWER_DELAY: Duration = Duration::from_millis(200);

/// What the receiver saw: envelopes answered, and requests at once.
#[derive(Default)]
struct Receiver {
    answered: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

#[handler]
async fn envelope(_body: Vec<u8>, receiver: Data<&Arc<Receiver>>) -> &'static str {
    let now = receiver.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    receiver.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(ANSWER_DELAY).await;
    receiver.in_flight.fetch_sub(1, Ordering::SeqCst);
    receiver.answered.fetch_add(1, Ordering::SeqCst);
    "{}"
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

/// `n` requests, each a transaction.
async fn requests(app: &support::HostApp, n: usize) {
    for _ in 0..n {
        let response = client()
            .get(format!("{}/hello", app.base))
            .send()
            .await
            .expect("hello");
        assert_eq!(response.status(), 200);
    }
}

/// The Sentry drop counter in `perfscope`'s scrape, 0 when absent.
fn dropped(perfscope: &Perfscope) -> f64 {
    perfscope
        .encode_metrics()
        .expect("scrape")
        .lines()
        .find_map(|l| l.strip_prefix(r#"perfscope_telemetry_dropped_total{sink="sentry"} "#))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sentry_transport_keeps_several_requests_in_flight_and_flushes_on_shutdown() {
    let inbox = Arc::new(Receiver::default());
    let app = Route::new()
        .at("/api/1/envelope/", poem::post(envelope))
        .data(inbox.clone());
    let dsn = format!("http://public@{}/1", support::serve_loopback(app).await);
    let config = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        sentry_dsn: Some(dsn),
        sentry_traces_sample_rate: Some("1.0".into()),
        alert_for: Some("0".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let app = support::HostApp::start(&perfscope, Route::new().at("/hello", get(hello))).await;

    // 20 transactions to a receiver that answers each in 200 ms: sent one
    // at a time they would take 4 s; several go at once.
    requests(&app, 20).await;
    support::until("20 envelopes", Duration::from_secs(10), || {
        inbox.answered.load(Ordering::SeqCst) >= 20
    })
    .await;
    let max = inbox.max_in_flight.load(Ordering::SeqCst);
    assert!(max >= 2, "one request at a time (max in flight {max})");
    assert!(
        max <= MAX_IN_FLIGHT,
        "{max} in flight, over {MAX_IN_FLIGHT}"
    );
    assert_eq!(dropped(&perfscope), 0.0);

    // 40 more, then stop at once: what is queued is flushed before the
    // app has stopped.
    requests(&app, 40).await;
    let before = inbox.answered.load(Ordering::SeqCst);
    assert!(
        before < 60,
        "everything arrived before the stop: the test proves nothing"
    );
    app.stop().await;
    assert_eq!(inbox.answered.load(Ordering::SeqCst), 60, "flushed on stop");
    assert_eq!(dropped(&perfscope), 0.0);
}
