//! perfscope mounted in host apps (Poem and axum) over real sockets: the
//! host keeps its `/`, its fallback and its own `/healthz`; perfscope
//! answers under `/api/performance` (docs and spec too) and `/ui`; the
//! metrics endpoint is open, token-guarded or on a listener of its own, as
//! the host chose.

mod support;

use std::net::SocketAddr;

use perfscope::Perfscope;
use perfscope::config::{Config, RawConfig};
use perfscope::mount::{MetricsAccess, Mount};
use poem::error::NotFoundError;
use poem::http::StatusCode as PoemStatus;
use poem::{EndpointExt, Route, get, handler};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use support::{ADMIN_TOKEN, METRICS_TOKEN, client, serve_loopback};

const HOME: &str = "the host's home";
const HEALTH: &str = "the host's own health";
const MISSING: &str = "the host has no such page";
const HOST_STATS: &str = "the host's own stats";

fn perfscope() -> Perfscope {
    let raw = RawConfig {
        admin_token: Some(ADMIN_TOKEN.into()),
        metrics_token: Some(METRICS_TOKEN.into()),
        // Short, so the slow-body check below is quick.
        body_timeout: Some("300".into()),
        ..Default::default()
    };
    let config: Config = raw.validate().expect("test config is valid");
    Perfscope::new(config)
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn get_text(url: String) -> (StatusCode, String, String) {
    let response = no_redirects().get(url).send().await.expect("request");
    let status = response.status();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, response.text().await.expect("body"))
}

/// What every host app must see, whatever its framework: its own paths
/// answered by itself, perfscope's under its prefixes only.
async fn host_and_perfscope_side_by_side(base: &str) {
    // The host's own.
    for (path, status, body) in [
        ("/", StatusCode::OK, HOME),
        ("/healthz", StatusCode::OK, HEALTH),
        ("/no/such/page", StatusCode::NOT_FOUND, MISSING),
        // A host route under perfscope's prefix is more specific: the host's.
        ("/api/performance/stats/host", StatusCode::OK, HOST_STATS),
        // The agent's layout is not claimed in a host app.
        ("/readyz", StatusCode::NOT_FOUND, MISSING),
        ("/docs", StatusCode::NOT_FOUND, MISSING),
        ("/openapi.json", StatusCode::NOT_FOUND, MISSING),
        ("/api/other", StatusCode::NOT_FOUND, MISSING),
        ("/uix", StatusCode::NOT_FOUND, MISSING),
    ] {
        let (got, _, text) = get_text(format!("{base}{path}")).await;
        assert_eq!((got, text.as_str()), (status, body), "{path}");
    }

    // perfscope's API, with its JSON 404 inside its prefix only.
    let (status, content_type, text) = get_text(format!("{base}/api/performance/stats")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let stats: serde_json::Value = serde_json::from_str(&text).expect("stats JSON");
    assert!(stats["system"].is_object(), "{stats}");
    let (status, content_type, _) = get_text(format!("{base}/api/performance/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );

    // The docs and the spec under the prefix; the spec lists only paths
    // that are served there.
    let (status, content_type, page) = get_text(format!("{base}/api/performance/docs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains("swagger"), "not Swagger UI");
    let (status, _, spec) = get_text(format!("{base}/api/performance/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    let spec: serde_json::Value = serde_json::from_str(&spec).expect("spec JSON");
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.contains_key("/api/performance/stats"));
    assert!(
        paths.keys().all(|p| p.starts_with("/api/performance/")),
        "{:?}",
        paths.keys().collect::<Vec<_>>()
    );
    // The spec is the one the docs page shows.
    assert!(!page.contains("\"/healthz\""), "the docs list /healthz");

    // The pages: the login without a session, then a session with the
    // admin token, then a page.
    let (status, _, _) = get_text(format!("{base}/ui")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let response = no_redirects()
        .get(format!("{base}/ui"))
        .send()
        .await
        .expect("ui");
    assert_eq!(response.headers()[LOCATION], "/ui/login");
    let (status, _, login) = get_text(format!("{base}/ui/login")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(login.contains("type=\"password\""), "{login}");
    let wrong = no_redirects()
        .post(format!("{base}/ui/login"))
        .form(&[("token", "not-the-token")])
        .send()
        .await
        .expect("login");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = no_redirects()
        .post(format!("{base}/ui/login"))
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(right.status(), StatusCode::SEE_OTHER);
    let cookie = right.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("a pair")
        .to_owned();
    let overview = no_redirects()
        .get(format!("{base}/ui"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("overview");
    assert_eq!(overview.status(), StatusCode::OK);
    // Its "API" link leads to the docs where they are in a host app.
    let overview = overview.text().await.expect("page");
    assert!(
        overview.contains(r#"href="/api/performance/docs""#)
            && !overview.contains(r#"href="/docs""#),
        "{overview}"
    );

    bodies_stay_bounded(base).await;

    // Metrics: open, and token-guarded.
    assert_scrapes(&format!("{base}/metrics"), None).await;
    let guarded = format!("{base}/private/metrics");
    for token in [None, Some("not-the-token")] {
        let mut request = client().get(&guarded);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("scrape");
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        let body = response.text().await.expect("body");
        assert!(!body.contains("# EOF"), "{body}");
    }
    for token in [METRICS_TOKEN, ADMIN_TOKEN] {
        assert_scrapes(&guarded, Some(token)).await;
    }
}

/// perfscope's endpoints in a host keep the agent's bounds on bodies: past
/// the size a 413, a body that stalls a 408 (API and pages alike).
async fn bodies_stay_bounded(base: &str) {
    let too_big = client()
        .post(format!("{base}/api/performance/analyze"))
        .header(CONTENT_TYPE, "application/json")
        .body(vec![b' '; 200 * 1024])
        .send()
        .await
        .expect("post");
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    for (path, content_type) in [
        ("/api/performance/analyze", "application/json"),
        ("/ui/login", "application/x-www-form-urlencoded"),
    ] {
        let status = stalled_body(base, path, content_type).await;
        assert_eq!(status, "HTTP/1.1 408", "{path}");
    }
}

/// Sends `path` a head announcing 100 bytes and then only one; the status
/// line of the answer.
async fn stalled_body(base: &str, path: &str, content_type: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: host\r\nContent-Type: {content_type}\r\n\
         Content-Length: 100\r\nConnection: close\r\n\r\n{{"
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answered within 10 s")
    .expect("read");
    String::from_utf8_lossy(&answer)
        .chars()
        .take("HTTP/1.1 408".len())
        .collect()
}

/// `url` answers the OpenMetrics exposition (with `token` when given).
async fn assert_scrapes(url: &str, token: Option<&str>) {
    let mut request = client().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("scrape");
    assert_eq!(response.status(), StatusCode::OK, "{url}");
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        perfscope::metrics::OPENMETRICS_CONTENT_TYPE
    );
    let text = response.text().await.expect("text");
    assert!(text.contains("# TYPE http_requests_in_flight"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[handler]
fn home() -> &'static str {
    HOME
}

#[handler]
fn health() -> &'static str {
    HEALTH
}

#[handler]
fn host_stats() -> &'static str {
    HOST_STATS
}

fn poem_host(perfscope: &Perfscope, mount: Mount) -> impl poem::Endpoint + 'static {
    let host = Route::new()
        .at("/", get(home))
        .at("/healthz", get(health))
        .at("/api/performance/stats/host", get(host_stats));
    mount
        .onto(host)
        .at(
            "/metrics",
            perfscope::mount::metrics::endpoint(perfscope, MetricsAccess::Open),
        )
        .at(
            "/private/metrics",
            perfscope::mount::metrics::endpoint(perfscope, MetricsAccess::Token),
        )
        .catch_error(|_: NotFoundError| async { (PoemStatus::NOT_FOUND, MISSING) })
        .with(perfscope.middleware())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poem_host_keeps_its_paths_beside_perfscope() {
    let perfscope = perfscope();
    let addr = serve_loopback(poem_host(&perfscope, Mount::new(&perfscope))).await;
    host_and_perfscope_side_by_side(&format!("http://{addr}")).await;
    // perfscope's operations are labelled by their templates in the host's
    // request metrics, the host's by its own.
    let text = routes_labelled(&perfscope);
    assert!(!text.contains("route=\"/api/performance/nope\""), "{text}");
}

/// The exposition, after checking that perfscope's operations and the
/// host's `/` are labelled by their templates.
fn routes_labelled(perfscope: &Perfscope) -> String {
    let text = perfscope.encode_metrics().expect("exposition");
    for route in ["/api/performance/stats", "/api/performance/docs", "/"] {
        assert!(
            text.contains(&format!("route=\"{route}\"")),
            "{route} missing in {text}"
        );
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_is_served_only_where_the_host_asks() {
    let perfscope = perfscope();
    let mount = Mount::new(&perfscope).health("/live", "/ready");
    assert!(mount.claims().contains(&"/ready".to_owned()));
    let addr = serve_loopback(poem_host(&perfscope, mount)).await;
    let base = format!("http://{addr}");
    let (status, _, live) = get_text(format!("{base}/live")).await;
    assert_eq!(
        (status, live.as_str()),
        (StatusCode::OK, r#"{"status":"ok"}"#)
    );
    // Not started (no monitors in this test): reported, still a verdict.
    let (_, content_type, ready) = get_text(format!("{base}/ready")).await;
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("JSON");
    assert_eq!(ready["checks"]["runtime_monitor"], "not_started", "{ready}");
    assert_eq!(ready["checks"]["database"], "not_configured", "{ready}");
    // The host's own /healthz is untouched, /readyz still the host's 404.
    let (_, _, text) = get_text(format!("{base}/healthz")).await;
    assert_eq!(text, HEALTH);
    let (status, _, text) = get_text(format!("{base}/readyz")).await;
    assert_eq!((status, text.as_str()), (StatusCode::NOT_FOUND, MISSING));
}

#[test]
fn the_same_path_claimed_twice_fails_at_start_up() {
    let perfscope = perfscope();
    let claimed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Mount::new(&perfscope).onto(Route::new().nest("/ui", get(home)))
    }));
    assert!(
        claimed.is_err(),
        "a host's /ui and perfscope's both mounted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metrics_listener_of_its_own_serves_until_cancelled() {
    let perfscope = perfscope();
    let cancel = tokio_util::sync::CancellationToken::new();
    let listener = perfscope::mount::metrics::serve(
        &perfscope,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        cancel.clone(),
    )
    .await
    .expect("bound");
    let base = format!("http://{}", listener.local_addr());
    assert_scrapes(&format!("{base}/metrics"), None).await;
    let (status, _, _) = get_text(format!("{base}/api/performance/stats")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "only /metrics there");
    let response = client()
        .post(format!("{base}/metrics"))
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    cancel.cancel();
    tokio::time::timeout(std::time::Duration::from_secs(10), listener.join())
        .await
        .expect("stops within 10 s")
        .expect("served cleanly");
    assert!(
        tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
            .await
            .is_err(),
        "still accepting after the cancel"
    );
}

#[cfg(feature = "axum")]
mod axum_host {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    fn app(perfscope: &Perfscope) -> Router {
        Router::new()
            .route("/", get(|| async { HOME }))
            .route("/healthz", get(|| async { HEALTH }))
            .route("/api/performance/stats/host", get(|| async { HOST_STATS }))
            .merge(perfscope::mount::axum::router(perfscope))
            .route(
                "/metrics",
                perfscope::mount::axum::metrics(perfscope, MetricsAccess::Open),
            )
            .route(
                "/private/metrics",
                perfscope::mount::axum::metrics(perfscope, MetricsAccess::Token),
            )
            .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, MISSING) })
            .layer(perfscope.axum_layer())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_axum_host_keeps_its_paths_beside_perfscope() {
        let perfscope = perfscope();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        let app = app(&perfscope);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
        });
        host_and_perfscope_side_by_side(&format!("http://{addr}")).await;
        // perfscope's operations are labelled by their Poem templates (not
        // the bridge's wildcard), the host's by its own.
        let text = routes_labelled(&perfscope);
        assert!(!text.contains("{*"), "{text}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_axum_host_gets_health_only_where_it_asks() {
        let perfscope = perfscope();
        let app: Router = Router::new()
            .merge(
                Mount::new(&perfscope)
                    .health("/live", "/ready")
                    .axum_router(),
            )
            .fallback(|| async { (axum::http::StatusCode::NOT_FOUND, MISSING) });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let (status, _, live) = get_text(format!("{base}/live")).await;
        assert_eq!(
            (status, live.as_str()),
            (StatusCode::OK, r#"{"status":"ok"}"#)
        );
        let (_, _, ready) = get_text(format!("{base}/ready")).await;
        let ready: serde_json::Value = serde_json::from_str(&ready).expect("JSON");
        assert_eq!(ready["checks"]["database"], "not_configured", "{ready}");
        for path in ["/live/more", "/healthz", "/readyz"] {
            let (status, _, text) = get_text(format!("{base}{path}")).await;
            assert_eq!(
                (status, text.as_str()),
                (StatusCode::NOT_FOUND, MISSING),
                "{path}"
            );
        }
    }

    #[test]
    fn the_same_route_merged_twice_fails_at_start_up() {
        let perfscope = perfscope();
        let claimed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            Router::<()>::new()
                .route("/ui", get(|| async { HOME }))
                .merge(perfscope::mount::axum::router(&perfscope))
        }));
        assert!(claimed.is_err(), "a host's /ui and perfscope's both routed");
    }
}
