//! Deploy markers and the compare view through the agent's API (issue 19,
//! "Deploys compared"): a posted marker is stored and listed, bad labels
//! and missing tokens are refused, no store is a 503, and the compare
//! view answers its documented shape. (The comparison's figures are
//! tested on a real store file in `service::compare`'s unit tests: the
//! agent holds its store's lock, so a test cannot seed it.)

#![cfg(feature = "store")]

mod support;

use reqwest::StatusCode;
use serde_json::json;
use support::{TestAgent, assert_refused, client};

fn now() -> i64 {
    perfscope::store::unix_now()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_marker_is_stored_and_listed_newest_first() {
    let agent = TestAgent::start().await;
    let t1 = now() - 100;
    let (status, marker) = agent
        .admin_post(
            "/api/performance/events",
            Some(&json!({"label": "feature flag checkout-v2 on", "at": t1})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{marker}");
    assert_eq!(marker["kind"], "marker", "marker is the default kind");
    assert_eq!(marker["label"], "feature flag checkout-v2 on");
    assert_eq!(marker["at"], t1);
    assert!(marker["id"].as_i64().is_some(), "{marker}");

    let (status, deploy) = agent
        .admin_post(
            "/api/performance/events",
            Some(&json!({"label": "shop v2.4.1", "kind": "deploy", "at": t1 + 50})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{deploy}");
    assert_eq!(deploy["kind"], "deploy");

    let since = t1.to_string();
    let until = (t1 + 51).to_string();
    let (status, listed) = agent
        .admin_get(
            "/api/performance/events",
            &[("since", &since), ("until", &until)],
        )
        .await
        .expect("the listing answers");
    assert_eq!(status, StatusCode::OK, "{listed}");
    let labels: Vec<&str> = listed["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["label"].as_str())
        .collect();
    assert_eq!(labels, ["shop v2.4.1", "feature flag checkout-v2 on"]);

    let (status, one) = agent
        .admin_get(
            "/api/performance/events",
            &[("since", &since), ("until", &until), ("limit", "1")],
        )
        .await
        .expect("the listing answers");
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["events"].as_array().map(Vec::len), Some(1), "{one}");
    agent.stop().await;
}

/// The deploy marker the agent writes at start names the release from
/// `OTEL_RESOURCE_ATTRIBUTES`: `service.name` and the percent-decoded
/// `service.version`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deploy_marker_is_named_by_the_resource_attributes() {
    let agent = TestAgent::start_with(|raw| {
        raw.read_interval = Some("200".into());
        raw.otlp.resource_attributes =
            Some("deployment.environment=prod,service.name=shop,service.version=2.4.1%2Bb7".into());
    })
    .await;
    let deploy = support::eventually("the deploy marker", async || {
        let (_, listed) = agent.admin_get("/api/performance/events", &[]).await?;
        listed["events"]
            .as_array()?
            .iter()
            .find(|event| event["kind"] == "deploy")
            .cloned()
    })
    .await;
    assert_eq!(deploy["label"], "shop 2.4.1+b7", "{deploy}");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_labels_and_missing_tokens_are_refused() {
    let agent = TestAgent::start().await;
    let long = "x".repeat(201);
    for body in [
        json!({"label": ""}),
        json!({"label": "   "}),
        json!({"label": long}),
        json!({"label": "v1\nDROP TABLE users"}),
        json!({"label": "v1\u{85}"}),
        json!({"label": "\u{a0}\u{3000}"}),
        json!({"kind": "marker"}),
    ] {
        let (status, answer) = agent
            .admin_post("/api/performance/events", Some(&body))
            .await;
        assert_refused(status, &answer, StatusCode::BAD_REQUEST, "label");
    }
    let (status, answer) = agent
        .admin_post(
            "/api/performance/events",
            Some(&json!({"label": "v1", "kind": "reset"})),
        )
        .await;
    assert_refused(status, &answer, StatusCode::BAD_REQUEST, "kind");
    let (status, answer) = agent
        .admin_post(
            "/api/performance/events",
            Some(&json!({"label": "v1", "at": now() + 10 * 86_400})),
        )
        .await;
    assert_refused(status, &answer, StatusCode::BAD_REQUEST, "at");
    // An optional field is left out, not null (the schema says so too).
    let (status, answer) = agent
        .admin_post(
            "/api/performance/events",
            Some(&json!({"label": "v1", "kind": null})),
        )
        .await;
    assert_refused(status, &answer, StatusCode::BAD_REQUEST, "kind");
    let (status, answer) = agent
        .admin_post(
            "/api/performance/events",
            Some(&json!({"label": "v1", "extra": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");

    for (method, path) in [
        ("POST", "/api/performance/events"),
        ("GET", "/api/performance/events"),
        ("GET", "/api/performance/compare?at=1780000000"),
    ] {
        let request = match method {
            "POST" => client().post(agent.url(path)).json(&json!({"label": "v1"})),
            _ => client().get(agent.url(path)),
        };
        let response = request.send().await.expect("request");
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let wrong = match method {
            "POST" => client().post(agent.url(path)).json(&json!({"label": "v1"})),
            _ => client().get(agent.url(path)),
        }
        .bearer_auth("not-the-token")
        .send()
        .await
        .expect("request");
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{method} {path}");
    }
    // Nothing refused was stored.
    let (_, listed) = agent
        .admin_get("/api/performance/events", &[])
        .await
        .expect("the listing answers");
    assert!(
        listed["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["kind"] != "marker" && e["label"] != "v1"),
        "{listed}"
    );
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_answers_its_shape_and_checks_its_window() {
    let agent = TestAgent::start().await;
    let at = now().to_string();
    let (status, comparison) = agent
        .admin_get("/api/performance/compare", &[("at", &at)])
        .await
        .expect("compare answers");
    assert_eq!(status, StatusCode::OK, "{comparison}");
    assert_eq!(comparison["minimumSamples"], 20);
    assert_eq!(comparison["window"], 3_600);
    assert_eq!(comparison["database"], "default");
    assert!(comparison["routes"].is_array() && comparison["statements"].is_array());
    assert!(comparison["routesLeftOut"].is_u64() && comparison["statementsLeftOut"].is_u64());

    let (status, answer) = agent
        .admin_get("/api/performance/compare", &[("at", &at), ("window", "10")])
        .await
        .expect("compare answers");
    assert_refused(status, &answer, StatusCode::BAD_REQUEST, "window");
    // A moment nearer the epoch than the window: the window before it
    // starts at 0 (nothing is there), not a refusal.
    let (status, early) = agent
        .admin_get("/api/performance/compare", &[("at", "0"), ("window", "60")])
        .await
        .expect("compare answers");
    assert_eq!(status, StatusCode::OK, "{early}");
    assert_eq!(early["routes"].as_array().map(Vec::len), Some(0), "{early}");
    // An empty range of events is an empty list, not a refusal.
    let (status, none) = agent
        .admin_get(
            "/api/performance/events",
            &[("since", "100"), ("until", "50")],
        )
        .await
        .expect("the listing answers");
    assert_eq!(status, StatusCode::OK, "{none}");
    assert_eq!(none["events"].as_array().map(Vec::len), Some(0), "{none}");
    let (status, answer) = agent
        .admin_get("/api/performance/compare", &[])
        .await
        .expect("compare answers");
    assert_refused(status, &answer, StatusCode::BAD_REQUEST, "at");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_store_the_history_operations_answer_503() {
    let agent = TestAgent::start_with(|raw| raw.data_dir = Some("off".into())).await;
    let (status, answer) = agent
        .admin_post("/api/performance/events", Some(&json!({"label": "v1"})))
        .await;
    assert_refused(
        status,
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "PERFSCOPE_DATA_DIR",
    );
    for (path, query) in [
        ("/api/performance/events", vec![]),
        ("/api/performance/compare", vec![("at", "1780000000")]),
    ] {
        let (status, answer) = agent.admin_get(path, &query).await.expect("answers");
        assert_refused(
            status,
            &answer,
            StatusCode::SERVICE_UNAVAILABLE,
            "history store",
        );
    }
    agent.stop().await;
}
