//! Alerts end to end with a real webhook receiver on loopback: a blocked
//! runtime worker raises the lag alert once and it resolves once; the body
//! is signed; deliveries retry on 500 and give up at the deadline; a
//! receiver that never answers makes the sink drop and count, without
//! slowing the caller; `GET /api/performance/alerts` reports it all.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use perfscope::Perfscope;
use perfscope::alerts::Readings;
use perfscope::config::{RawConfig, Secret};
use perfscope::db::slow_log::SlowQuery;
use perfscope::db::statement;
use poem::web::Data;
use poem::{EndpointExt, Request, Route, handler, post};
use reqwest::StatusCode;
use serde_json::Value;
use support::{ADMIN_TOKEN, TestAgent, client};

const WEBHOOK_SECRET: &str = "webhook-signing-secret-0123456789";

/// What the receiver saw, and what it answers (a script of statuses; the
/// last one repeats).
#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<(Option<String>, Value)>>,
    script: Mutex<Vec<u16>>,
}

#[handler]
async fn receive(request: &Request, body: Vec<u8>, inbox: Data<&Arc<Inbox>>) -> StatusCode {
    let signature = request.header("x-perfscope-signature").map(str::to_owned);
    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    // The signature covers the exact body.
    if let Some(signature) = &signature {
        assert_eq!(
            *signature,
            perfscope::alerts::webhook::sign(&Secret::new(WEBHOOK_SECRET), &body)
        );
    }
    inbox.received.lock().push((signature, value));
    let mut script = inbox.script.lock();
    let status = if script.len() > 1 {
        script.remove(0)
    } else {
        script.first().copied().unwrap_or(200)
    };
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

/// A receiver on 127.0.0.1:0; its URL and inbox.
async fn receiver(script: Vec<u16>) -> (String, Arc<Inbox>) {
    let inbox = Arc::new(Inbox {
        received: Mutex::default(),
        script: Mutex::new(script),
    });
    let addr =
        support::serve_loopback(Route::new().at("/hook", post(receive)).data(inbox.clone())).await;
    (format!("http://{addr}/hook"), inbox)
}

async fn until<T>(what: &str, limit: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Now, in ms since the Unix epoch (the notifications' unit).
fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .expect("after 1970")
}

fn states(inbox: &Inbox, rule: &str) -> Vec<String> {
    inbox
        .received
        .lock()
        .iter()
        .filter(|(_, v)| v["rule"] == rule)
        .map(|(_, v)| v["state"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_worker_raises_the_lag_alert_once_and_it_resolves_once() {
    let test_began = unix_ms_now();
    let (url, inbox) = receiver(vec![200]).await;
    let agent = TestAgent::start_with(|raw| {
        raw.event_loop_lag_threshold = Some("50".into());
        raw.alert_for = Some("1000".into());
        raw.alert_webhook_urls = Some(url.clone());
        raw.alert_webhook_secret = Some(WEBHOOK_SECRET.into());
    })
    .await;
    // Block one worker for 150 ms at a time, for about 4 s.
    let blocker = tokio::spawn(async {
        let until = Instant::now() + Duration::from_secs(4);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(150));
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    until("the lag alert", Duration::from_secs(10), || {
        states(&inbox, "event_loop_lag")
            .contains(&"firing".to_owned())
            .then_some(())
    })
    .await;
    // While it fires, the API lists it (admin only).
    let http = client();
    let report: Value = http
        .get(agent.url("/api/performance/alerts"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("alerts")
        .json()
        .await
        .expect("json");
    let firing = report["firing"].as_array().cloned().unwrap_or_default();
    assert!(
        firing.iter().any(|f| f["rule"] == "event_loop_lag"),
        "{report}"
    );
    let anonymous = http
        .get(agent.url("/api/performance/alerts"))
        .send()
        .await
        .expect("alerts");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    blocker.await.expect("blocker");
    until("the resolution", Duration::from_secs(10), || {
        states(&inbox, "event_loop_lag")
            .contains(&"resolved".to_owned())
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(states(&inbox, "event_loop_lag"), vec!["firing", "resolved"]);
    let received = inbox.received.lock().clone();
    let (signature, firing) = received
        .iter()
        .find(|(_, v)| v["rule"] == "event_loop_lag" && v["state"] == "firing")
        .expect("the firing notification");
    assert!(
        signature
            .as_deref()
            .is_some_and(|s| s.starts_with("sha256="))
    );
    assert_eq!(firing["subject"], "runtime");
    assert_eq!(firing["threshold"], 0.05);
    assert!(firing["value"].as_f64().unwrap_or(0.0) >= 0.05, "{firing}");
    // Both times must be there (a missing one must not compare as 0), the
    // condition began during this test, and it had held for `alert_for`
    // (1000 ms) when it fired.
    let started_at = firing["startedAt"].as_u64().expect("startedAt");
    let at = firing["at"].as_u64().expect("at");
    assert!(
        started_at >= test_began,
        "{started_at} < {test_began}: {firing}"
    );
    assert!(
        at >= started_at + 1000,
        "fired {} ms after it began: {firing}",
        at.saturating_sub(started_at)
    );
    assert!(at <= unix_ms_now(), "{firing}");
    let metrics = http
        .get(agent.url("/api/performance/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains(r#"perfscope_alert_notifications_total{rule="event_loop_lag",sink="webhook",outcome="delivered"} 2"#),
        "{}",
        metrics.lines().filter(|l| l.contains("alert")).collect::<Vec<_>>().join("\n")
    );
    assert!(metrics.contains(r#"perfscope_alerts_firing{rule="event_loop_lag"} 0"#));
    agent.stop().await;
}

fn perfscope_with_webhook(url: &str, deadline_ms: &str) -> Perfscope {
    let config = RawConfig {
        alert_webhook_urls: Some(url.into()),
        webhook_deadline: Some(deadline_ms.into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    Perfscope::new(config)
}

/// A slow-query event for a distinct statement `n`.
fn slow_event(n: usize) -> Readings {
    let info = Arc::new(statement::parse(&format!(
        "SELECT * FROM orders_{n} WHERE total > 1000"
    )));
    Readings {
        slow: vec![Arc::new(SlowQuery {
            statement: info,
            operation: "select".into(),
            duration: Duration::from_millis(1500),
            at: SystemTime::now(),
            failed: false,
            route: std::sync::OnceLock::new(),
        })],
        ..Readings::default()
    }
}

fn notifications(perfscope: &Perfscope, outcome: &str) -> String {
    let text = perfscope.encode_metrics().expect("metrics");
    let prefix = format!(
        r#"perfscope_alert_notifications_total{{rule="slow_query",sink="webhook",outcome="{outcome}"}} "#
    );
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()).map(str::to_owned))
        .unwrap_or_else(|| "0".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_retry_on_500_and_give_up_at_the_deadline() {
    // Two 500s, then 200: delivered on the third attempt.
    let (url, inbox) = receiver(vec![500, 500, 200]).await;
    let perfscope = perfscope_with_webhook(&url, "10000");
    let cancel = tokio_util::sync::CancellationToken::new();
    let tasks = perfscope.start(&cancel);
    perfscope.alerts().evaluate(&slow_event(1), Instant::now());
    until("delivery", Duration::from_secs(10), || {
        (notifications(&perfscope, "delivered") == "1").then_some(())
    })
    .await;
    assert_eq!(inbox.received.lock().len(), 3);
    let event = inbox.received.lock()[2].1.clone();
    assert_eq!(event["state"], "event");
    assert_eq!(event["statement"], "select * from orders_1 where total > ?");
    cancel.cancel();
    tasks.join().await;

    // Always 500, with a 1.5 s deadline: retried with backoff, then failed.
    let (url, inbox) = receiver(vec![500]).await;
    let perfscope = perfscope_with_webhook(&url, "1500");
    let cancel = tokio_util::sync::CancellationToken::new();
    let tasks = perfscope.start(&cancel);
    let started = Instant::now();
    perfscope.alerts().evaluate(&slow_event(2), Instant::now());
    until("giving up", Duration::from_secs(10), || {
        (notifications(&perfscope, "failed") == "1").then_some(())
    })
    .await;
    // Retried (at least once), with backoff (250 ms, then doubling: 4
    // attempts fit in 1.5 s, and a loaded machine makes fewer, never more;
    // a retry loop without backoff would make hundreds), and given up at
    // the deadline, not before it (the `until` above bounds it after).
    let attempts = inbox.received.lock().len();
    assert!((2..=5).contains(&attempts), "{attempts} attempts in 1.5 s");
    let gave_up = started.elapsed();
    assert!(gave_up >= Duration::from_millis(1500), "{gave_up:?}");
    cancel.cancel();
    tasks.join().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_never_answers_costs_the_caller_nothing() {
    let addr = support::black_hole().await;
    let perfscope = perfscope_with_webhook(&format!("http://{addr}/hook"), "60000");
    let cancel = tokio_util::sync::CancellationToken::new();
    let tasks = perfscope.start(&cancel);
    let started = Instant::now();
    for n in 0..400 {
        perfscope.alerts().evaluate(&slow_event(n), Instant::now());
    }
    // Had the caller waited for even one attempt, it would have waited the
    // attempt timeout (the receiver never answers); 400 of them, far longer.
    // How fast evaluation is belongs to the benchmarks, not here.
    let elapsed = started.elapsed();
    assert!(
        elapsed < perfscope::alerts::webhook::ATTEMPT_TIMEOUT,
        "notifying took {elapsed:?}"
    );
    let dropped: u64 = notifications(&perfscope, "dropped")
        .parse()
        .expect("a count");
    // One is in flight, 256 queued: the rest are dropped and counted.
    assert!(dropped >= 400 - 256 - 1, "{dropped} dropped");
    let text = perfscope.encode_metrics().expect("metrics");
    assert!(
        text.contains(&format!(
            r#"perfscope_telemetry_dropped_total{{sink="webhook"}} {dropped}"#
        )),
        "{}",
        text.lines()
            .filter(|l| l.contains("dropped"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Shutdown does not wait past the flush deadline for the black hole.
    let stopping = Instant::now();
    cancel.cancel();
    tasks.join().await;
    assert!(
        stopping.elapsed() < Duration::from_secs(12),
        "{:?}",
        stopping.elapsed()
    );
}
