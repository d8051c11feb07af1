//! The pages' route charts read from a real Prometheus (the Debian
//! package `tests/run.sh` installs) scraping two replicas of a service and
//! one unrelated app with a route of the same name under another job: the
//! Overview of one replica shows both replicas' requests and none of the
//! other app's. And a Prometheus that never answers, or answers something
//! else, leaves the page up with this process's own view and the reason.

#![cfg(feature = "prometheus")]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    METRICS_TOKEN, Reaper, TestAgent, agent_command, black_hole, client, eventually, free_port,
    serve_loopback, temp_dir, tool, ui_page, ui_session,
};

/// Requests sent to each replica of the service, and to the other app.
const PER_REPLICA: usize = 20;
const OTHER_APP: usize = 300;

/// Prometheus' answer to an instant query: the first series' value.
async fn instant(port: u16, promql: &str) -> Option<f64> {
    let url = format!("http://127.0.0.1:{port}/api/v1/query");
    let body: Value = client()
        .get(url)
        .query(&[("query", promql)])
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

/// Waits until Prometheus answers `promql` with `expected`.
async fn until_prometheus_says(port: u16, promql: &str, expected: f64) {
    eventually(
        &format!("Prometheus to answer {promql} with {expected}"),
        async || (instant(port, promql).await == Some(expected)).then_some(()),
    )
    .await;
}

async fn hit(agent: &TestAgent, path: &str, times: usize) {
    let http = client();
    for _ in 0..times {
        let status = http
            .get(agent.url(path))
            .send()
            .await
            .expect("request")
            .status();
        assert!(status.is_success(), "{path}: {status}");
    }
}

/// The text of the cells of the table row whose route is `route`.
fn row_cells(page: &str, route: &str) -> Option<Vec<String>> {
    let at = page.find(&format!("<code>{route}</code>"))?;
    let row = &page[at..page[at..].find("</tr>").map_or(page.len(), |end| at + end)];
    Some(
        row.split("<td")
            .skip(1)
            .map(|cell| {
                let inner = &cell[cell.find('>').map_or(0, |i| i + 1)..];
                inner[..inner.find("</td>").unwrap_or(inner.len())].to_owned()
            })
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_table_sums_every_replica_from_prometheus_and_nothing_else() {
    let prometheus_port = free_port();
    let reader = TestAgent::start_with(|raw| {
        raw.prometheus_url = Some(format!("http://127.0.0.1:{prometheus_port}"));
        raw.prometheus_selector = Some(r#"job="shop""#.into());
    })
    .await;
    let replica = TestAgent::start().await;
    let other = TestAgent::start().await;
    let dir = temp_dir("prometheus-source");
    let job = |name: &str, targets: &[&TestAgent]| {
        let targets: Vec<String> = targets.iter().map(|a| format!("\"{}\"", a.addr)).collect();
        format!(
            r#"  - job_name: {name}
    metrics_path: /api/performance/metrics
    authorization:
      type: Bearer
      credentials: {METRICS_TOKEN}
    static_configs:
      - targets: [{}]
"#,
            targets.join(", ")
        )
    };
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n{}{}",
        job("shop", &[&reader, &replica]),
        job("other", &[&other])
    );
    std::fs::write(dir.join("prometheus.yml"), config).expect("write config");
    let _prometheus = Reaper(
        Command::new(tool("prometheus"))
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prometheus_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );
    until_prometheus_says(prometheus_port, "count(up == 1)", 3.0).await;

    // One request each first, so Prometheus has every series before the
    // traffic: `increase()` counts from a series' first scrape.
    for agent in [&reader, &replica, &other] {
        hit(agent, "/healthz", 1).await;
    }
    hit(&other, "/readyz", 1).await;
    let healthz = |selector: &str| {
        format!(r#"sum(http_request_duration_seconds_count{{{selector},route="/healthz"}})"#)
    };
    until_prometheus_says(prometheus_port, &healthz(r#"job="shop""#), 2.0).await;
    until_prometheus_says(prometheus_port, &healthz(r#"job="other""#), 1.0).await;

    hit(&reader, "/healthz", PER_REPLICA).await;
    hit(&replica, "/healthz", PER_REPLICA).await;
    hit(&other, "/healthz", OTHER_APP).await;
    hit(&other, "/readyz", OTHER_APP).await;
    let shop_total = (2 * (PER_REPLICA + 1)) as f64;
    until_prometheus_says(prometheus_port, &healthz(r#"job="shop""#), shop_total).await;
    until_prometheus_says(
        prometheus_port,
        &healthz(r#"job="other""#),
        (OTHER_APP + 1) as f64,
    )
    .await;
    // A few more scrapes after the last request, so the range's end is
    // not extrapolated from a short stretch of samples.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let base = format!("http://{}", reader.addr);
    let cookie = ui_session(&base).await;
    let (status, page) = ui_page(&base, "/ui", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("every replica, from Prometheus ({job=&quot;shop&quot;})"),
        "the heading names the source: {page}"
    );
    assert!(!page.contains("Prometheus gave no route data"), "{page}");
    // The cells after the route's: rate, requests, errors, p50, p95, p99,
    // the p95 chart.
    let cells = row_cells(&page, "/healthz").expect("a /healthz row");
    let requests: u64 = cells[1]
        .replace(',', "")
        .parse()
        .unwrap_or_else(|_| panic!("a request count in {cells:?}"));
    // Both replicas' traffic after their baseline is 2 × 20; increase()
    // only ever extrapolates upward (to the range's end, by up to a scrape
    // interval over the few seconds sampled: under half here). One
    // replica alone would show at most ~30, the process's own view 21,
    // and the other app's 300 would show whole.
    let both = 2 * PER_REPLICA as u64;
    assert!(
        (both..=both * 3 / 2).contains(&requests),
        "{requests} requests for /healthz: {cells:?}"
    );
    assert_ne!(cells[4], "–", "a p95 from the summed buckets: {cells:?}");
    // histogram_quantile interpolates inside a bucket: the cell names the
    // bucket ("≤ 1 ms", "2.5–5 ms"), not a point.
    assert!(
        cells[4].starts_with("≤ ") || cells[4].starts_with("≥ ") || cells[4].contains('–'),
        "a p95 shown as its bucket: {cells:?}"
    );
    assert!(
        cells[6].contains("p95 of GET /healthz") && cells[6].contains("<svg"),
        "a p95 chart: {cells:?}"
    );
    assert!(
        row_cells(&page, "/readyz").is_none(),
        "the other app's route does not show"
    );
    // A longer range still reads Prometheus (not the history store), at
    // the range's step.
    let (status, page) = ui_page(&base, "/ui?range=24h", &cookie).await;
    assert_eq!(status, 200);
    assert!(
        page.contains("every replica, from Prometheus ({job=&quot;shop&quot;}), the last 24.0 h, p95 every 10 min"),
        "{page}"
    );
    let cells = row_cells(&page, "/healthz").expect("a /healthz row over 24 h");
    let day: u64 = cells[1].replace(',', "").parse().unwrap_or(0);
    assert!(day >= both, "{day} requests over 24 h: {cells:?}");
    reader.stop().await;
    replica.stop().await;
    other.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_that_is_down_or_answers_garbage_leaves_the_process_view() {
    let silent = black_hole().await;
    let garbage = serve_loopback(poem::Route::new().at(
        "/*",
        poem::endpoint::make_sync(|_| "<html>a login page</html>"),
    ))
    .await;
    for (upstream, reason) in [(silent, "no answer within 3 s"), (garbage, "(not JSON)")] {
        let agent = TestAgent::start_with(|raw| {
            raw.prometheus_url = Some(format!("http://{upstream}"));
            raw.prometheus_selector = Some(r#"job="shop""#.into());
        })
        .await;
        let base = format!("http://{}", agent.addr);
        let cookie = ui_session(&base).await;
        let (status, page) = ui_page(&base, "/ui", &cookie).await;
        assert_eq!(status, 200, "{page}");
        assert!(
            page.contains("Prometheus gave no route data (") && page.contains(reason),
            "the page says why: {page}"
        );
        assert!(page.contains("this process only"), "{page}");
        // Within the retry interval the pages do not ask again: the second
        // load does not wait for the silent upstream's deadline.
        let started = Instant::now();
        let (status, page) = ui_page(&base, "/ui", &cookie).await;
        assert_eq!(status, 200);
        assert!(page.contains(reason), "{page}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        agent.stop().await;
    }
}

#[test]
fn bad_prometheus_settings_stop_the_agent_naming_the_variable() {
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[("PERFSCOPE_PROMETHEUS_URL", "http://127.0.0.1:9090")],
            "PERFSCOPE_PROMETHEUS_SELECTOR=: expected label matchers",
        ),
        (
            &[("PERFSCOPE_PROMETHEUS_SELECTOR", r#"job="shop""#)],
            "PERFSCOPE_PROMETHEUS_URL=: expected a Prometheus URL",
        ),
        (
            &[
                ("PERFSCOPE_PROMETHEUS_URL", "http://127.0.0.1:9090"),
                (
                    "PERFSCOPE_PROMETHEUS_SELECTOR",
                    r#"job="shop"} or vector(1"#,
                ),
            ],
            "PERFSCOPE_PROMETHEUS_SELECTOR=job=\"shop\"} or vector(1: expected label matchers",
        ),
        (
            &[
                ("PERFSCOPE_PROMETHEUS_URL", "http://admin:hunter2@prom:9090"),
                ("PERFSCOPE_PROMETHEUS_SELECTOR", r#"job="shop""#),
            ],
            "PERFSCOPE_PROMETHEUS_URL=***: expected a URL without credentials",
        ),
    ];
    for (vars, expected) in cases {
        let output = agent_command()
            .envs(vars.iter().copied())
            .output()
            .expect("binary runs");
        assert_eq!(output.status.code(), Some(2), "{vars:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(
            stderr.contains(expected),
            "{stderr:?} should contain {expected:?}"
        );
        assert!(
            !stderr.contains("hunter2"),
            "a password was echoed: {stderr}"
        );
    }
}
