//! Sentry's rate-limit answers, at a real envelope receiver on loopback
//! that answers as told: a 429 with `Retry-After: 2` stops every envelope
//! for 2 s (dropped and counted, no request made), then sending resumes;
//! `X-Sentry-Rate-Limits: 60:transaction:key` on a 200 stops transactions
//! while events still go; garbage in both headers changes nothing. One test
//! function: the Sentry client is process-global.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use perfscope::Perfscope;
use perfscope::config::RawConfig;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{EndpointExt, Route, get, handler};
use support::{ADMIN_TOKEN, client};

/// An answer the receiver gives: status and headers.
#[derive(Clone)]
struct Answer {
    status: StatusCode,
    headers: Vec<(&'static str, String)>,
}

impl Answer {
    fn ok() -> Self {
        Self {
            status: StatusCode::OK,
            headers: Vec::new(),
        }
    }
}

/// What the receiver got and how it answers: the next answers in order,
/// then 200.
#[derive(Default)]
struct Receiver {
    /// Item types of each request, and when it was answered.
    requests: Mutex<Vec<(Vec<String>, Instant)>>,
    answers: Mutex<Vec<Answer>>,
}

impl Receiver {
    fn requests(&self) -> usize {
        self.requests.lock().len()
    }

    /// Requests carrying an item of `kind`.
    fn with(&self, kind: &str) -> usize {
        self.requests
            .lock()
            .iter()
            .filter(|(kinds, _)| kinds.iter().any(|k| k == kind))
            .count()
    }
}

#[handler]
async fn envelope(body: Vec<u8>, receiver: Data<&Arc<Receiver>>) -> poem::Response {
    let text = String::from_utf8_lossy(&body);
    let kinds = text
        .lines()
        .skip(1)
        .step_by(2)
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|header| header["type"].as_str().map(str::to_owned))
        .collect();
    let answer = {
        let mut answers = receiver.answers.lock();
        if answers.is_empty() {
            Answer::ok()
        } else {
            answers.remove(0)
        }
    };
    receiver.requests.lock().push((kinds, Instant::now()));
    let mut response = poem::Response::builder().status(answer.status);
    for (name, value) in answer.headers {
        response = response.header(name, value);
    }
    response.body("{}")
}

/// The receiver; its DSN.
async fn receiver(receiver: Arc<Receiver>) -> String {
    let app = Route::new()
        .at("/api/1/envelope/", poem::post(envelope))
        .data(receiver);
    format!("http://public@{}/1", support::serve_loopback(app).await)
}

#[handler]
fn hello() -> &'static str {
    "hello"
}

/// A host app with Sentry at sample rate 1.0 sending to `dsn`.
async fn serve(dsn: &str) -> (Perfscope, support::HostApp) {
    let config = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        sentry_dsn: Some(dsn.into()),
        sentry_traces_sample_rate: Some("1.0".into()),
        alert_for: Some("0".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let app = support::HostApp::start(&perfscope, Route::new().at("/hello", get(hello))).await;
    (perfscope, app)
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

/// A counter's value in `scrape`, 0 when absent.
fn counter(scrape: &str, series: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

const DROPPED: &str = r#"perfscope_telemetry_dropped_total{sink="sentry"}"#;
const LIMITED_TRANSACTIONS: &str =
    r#"perfscope_telemetry_rate_limited_total{sink="sentry",category="transaction"}"#;
const LIMITED_ERRORS: &str =
    r#"perfscope_telemetry_rate_limited_total{sink="sentry",category="error"}"#;

/// Waits until `series` reaches `at_least` in `perfscope`'s scrape.
async fn counted(perfscope: &Perfscope, series: &str, at_least: f64) {
    support::until(
        &format!("{series} >= {at_least}"),
        Duration::from_secs(10),
        || counter(&perfscope.encode_metrics().expect("scrape"), series) >= at_least,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentry_rate_limits_are_honoured_per_category() {
    // --- A 429 with Retry-After: 2: nothing is sent for 2 s.
    let inbox = Arc::new(Receiver::default());
    inbox.answers.lock().push(Answer {
        status: StatusCode::TOO_MANY_REQUESTS,
        headers: vec![("retry-after", "2".into())],
    });
    let (perfscope, app) = serve(&receiver(inbox.clone()).await).await;
    requests(&app, 1).await;
    support::until("the first envelope", Duration::from_secs(10), || {
        inbox.requests() >= 1
    })
    .await;
    let refused_at = inbox.requests.lock()[0].1;
    // The refused envelope and five more, all in the window.
    counted(&perfscope, LIMITED_TRANSACTIONS, 1.0).await;
    requests(&app, 5).await;
    counted(&perfscope, LIMITED_TRANSACTIONS, 6.0).await;
    let scrape = perfscope.encode_metrics().expect("scrape");
    assert!(
        refused_at.elapsed() < Duration::from_secs(2),
        "the burst outlasted the window ({:?}): the test proves nothing",
        refused_at.elapsed()
    );
    assert_eq!(inbox.requests(), 1, "a request was made while limited");
    assert_eq!(counter(&scrape, DROPPED), 6.0, "{scrape}");
    // Past the window, sending resumes.
    tokio::time::sleep(
        (refused_at + Duration::from_millis(2300)).saturating_duration_since(Instant::now()),
    )
    .await;
    requests(&app, 2).await;
    support::until("sending resumes", Duration::from_secs(10), || {
        inbox.with("transaction") >= 2
    })
    .await;
    let resumed_at = inbox.requests.lock()[1].1;
    assert!(resumed_at >= refused_at + Duration::from_secs(2));
    assert_eq!(
        counter(
            &perfscope.encode_metrics().expect("scrape"),
            LIMITED_TRANSACTIONS
        ),
        6.0
    );
    app.stop().await;

    // --- X-Sentry-Rate-Limits on a 200: transactions stop, events go.
    let inbox = Arc::new(Receiver::default());
    inbox.answers.lock().push(Answer {
        status: StatusCode::OK,
        headers: vec![("x-sentry-rate-limits", "60:transaction:key".into())],
    });
    let (perfscope, app) = serve(&receiver(inbox.clone()).await).await;
    requests(&app, 1).await;
    support::until("the first envelope", Duration::from_secs(10), || {
        inbox.requests() >= 1
    })
    .await;
    requests(&app, 4).await;
    counted(&perfscope, LIMITED_TRANSACTIONS, 4.0).await;
    // An alert is an event: it still goes.
    perfscope.alerts().evaluate(
        &perfscope::alerts::Readings {
            lag: Some(Duration::from_secs(2)),
            ..Default::default()
        },
        Instant::now(),
    );
    support::until("the alert event", Duration::from_secs(10), || {
        inbox.with("event") >= 1
    })
    .await;
    let scrape = perfscope.encode_metrics().expect("scrape");
    assert_eq!(inbox.with("transaction"), 1, "only the first transaction");
    assert_eq!(counter(&scrape, LIMITED_TRANSACTIONS), 4.0, "{scrape}");
    assert_eq!(counter(&scrape, LIMITED_ERRORS), 0.0, "{scrape}");
    assert_eq!(counter(&scrape, DROPPED), 4.0, "{scrape}");
    app.stop().await;

    // --- Garbage in both headers, on 200s: every transaction is sent.
    let inbox = Arc::new(Receiver::default());
    let garbage = [
        "garbage",
        "-5:transaction:key, NaN::key, inf:transaction:key",
        ":::,,,;;;",
        "60:nosuchcategory:key",
        &"9".repeat(10_000),
    ];
    for value in garbage {
        inbox.answers.lock().push(Answer {
            status: StatusCode::OK,
            headers: vec![
                ("x-sentry-rate-limits", value.to_owned()),
                ("retry-after", "60".into()),
            ],
        });
    }
    let (perfscope, app) = serve(&receiver(inbox.clone()).await).await;
    requests(&app, 8).await;
    support::until("eight transactions", Duration::from_secs(10), || {
        inbox.with("transaction") >= 8
    })
    .await;
    let scrape = perfscope.encode_metrics().expect("scrape");
    assert_eq!(counter(&scrape, DROPPED), 0.0, "{scrape}");
    assert!(
        !scrape.contains("perfscope_telemetry_rate_limited_total{"),
        "{scrape}"
    );
    app.stop().await;
}
