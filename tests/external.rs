//! The agent against real outside parts: the Prometheus project's strict
//! OpenMetrics parser (Python `prometheus_client`), a real Prometheus server
//! scraping with the bearer token, the binary's configuration errors and
//! signal handling, and TLS checked by curl. `bash tests/run.sh` installs
//! the tools.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    ADMIN_TOKEN, METRICS_TOKEN, Reaper, TestAgent, agent_command, client, free_port, python,
    spawn_agent, temp_dir, tool,
};

async fn traffic(agent: &TestAgent) {
    let http = client();
    for path in ["/healthz", "/readyz", "/api/performance/stats", "/missing"] {
        http.get(agent.url(path)).send().await.expect("request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_openmetrics_parser_accepts_a_real_scrape() {
    let agent = TestAgent::start().await;
    traffic(&agent).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let scrape = client()
        .get(agent.url("/api/performance/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    let dir = temp_dir("openmetrics");
    let file = dir.join("scrape.txt");
    std::fs::write(&file, &scrape).expect("write scrape");
    let script = r#"
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = list(text_string_to_metric_families(open(sys.argv[1]).read()))
for family in families:
    print(family.name, family.type, len(family.samples))
"#;
    let output = Command::new(python())
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the strict parser rejected the scrape: {}\n{scrape}",
        String::from_utf8_lossy(&output.stderr)
    );
    for family in [
        "http_request_duration_seconds histogram",
        "http_requests_in_flight gauge",
        "runtime_event_loop_lag_seconds gauge",
        "runtime_scheduling_delay_seconds histogram",
        "process_cpu_seconds counter",
        "process_resident_memory_bytes gauge",
        "perfscope_metric_series gauge",
    ] {
        assert!(
            stdout.contains(family),
            "parser did not see {family}:\n{stdout}"
        );
    }
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_scrapes_with_the_metrics_token() {
    let agent = TestAgent::start().await;
    traffic(&agent).await;
    let dir = temp_dir("prometheus");
    let prometheus_port = free_port();
    let config = format!(
        r#"global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: perfscope
    metrics_path: /api/performance/metrics
    authorization:
      type: Bearer
      credentials: {METRICS_TOKEN}
    static_configs:
      - targets: ["{}"]
"#,
        agent.addr
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
    let query = |q: &'static str| {
        let url = format!("http://127.0.0.1:{prometheus_port}/api/v1/query");
        async move {
            let response = client().get(url).query(&[("query", q)]).send().await.ok()?;
            let body: Value = response.json().await.ok()?;
            let result = body["data"]["result"].as_array()?.clone();
            (!result.is_empty()).then_some(result)
        }
    };
    let deadline = Instant::now() + Duration::from_secs(45);
    let up = loop {
        if let Some(result) = query(r#"up{job="perfscope"}"#).await
            && result[0]["value"][1] == "1"
        {
            break result;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus never scraped the agent successfully"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(up[0]["metric"]["job"], "perfscope");
    let healthz = query(r#"http_request_duration_seconds_count{route="/healthz",method="GET"}"#)
        .await
        .expect("Prometheus has the request series");
    assert_eq!(healthz[0]["metric"]["status_code"], "200");
    let unmatched = query(r#"http_request_duration_seconds_count{route="unmatched"}"#)
        .await
        .expect("Prometheus has the unmatched series");
    assert_eq!(unmatched[0]["metric"]["status_code"], "404");
    assert!(query("runtime_event_loop_lag_seconds").await.is_some());
    assert!(query("process_resident_memory_bytes").await.is_some());
    agent.stop().await;
}

#[test]
fn bad_configuration_exits_non_zero_naming_the_variable() {
    let cases = [
        (
            "HIGH_MEMORY_THRESHOLD",
            "1.7",
            "HIGH_MEMORY_THRESHOLD=1.7: expected a ratio in (0, 1]",
        ),
        (
            "DATABASE_POOL_MAX",
            "0",
            "DATABASE_POOL_MAX=0: expected an integer in [1, 1000]",
        ),
        (
            "PERFSCOPE_LISTEN",
            "localhost",
            "PERFSCOPE_LISTEN=localhost: expected a socket address",
        ),
        (
            "PERFSCOPE_LOG_FORMAT",
            "xml",
            "PERFSCOPE_LOG_FORMAT=xml: expected text or json",
        ),
        (
            "PERFSCOPE_HEADER_TIMEOUT",
            "5",
            "PERFSCOPE_HEADER_TIMEOUT=5: expected milliseconds in [100, 600000]",
        ),
        (
            "PERFSCOPE_BODY_TIMEOUT",
            "0",
            "PERFSCOPE_BODY_TIMEOUT=0: expected milliseconds in [100, 600000]",
        ),
        (
            "PERFSCOPE_MAX_HTTP_CONNECTIONS",
            "0",
            "PERFSCOPE_MAX_HTTP_CONNECTIONS=0: expected an integer in [1, 65536]",
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "http/json",
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/json: expected grpc or http/protobuf",
        ),
        (
            "SLOW_QUERY_THRESHOLD",
            "soon",
            "SLOW_QUERY_THRESHOLD=soon: expected milliseconds",
        ),
        (
            "DATABASE_URL",
            "postgres://app:hunter2@db/shop?sslmode=always",
            "DATABASE_URL=postgres://app:***@db/shop?sslmode=always: expected a usable connection string: sslmode=always: expected disable, allow, prefer, require, verify-ca or verify-full",
        ),
        (
            "PERFSCOPE_TLS_CERT",
            "/nonexistent.pem",
            "PERFSCOPE_TLS_KEY=",
        ),
        (
            "PERFSCOPE_SQL_COMMENTS",
            "on",
            "PERFSCOPE_SQL_COMMENTS=on: expected off, sampled or all",
        ),
    ];
    for (var, value, expected) in cases {
        let output = agent_command()
            .env(var, value)
            .output()
            .expect("binary runs");
        assert_eq!(output.status.code(), Some(2), "{var}={value}");
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
    // A flag is checked the same way.
    let output = agent_command()
        .args(["serve", "--high-memory-threshold", "0"])
        .output()
        .expect("binary runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("HIGH_MEMORY_THRESHOLD=0"));
    // Secrets are never echoed.
    let output = agent_command()
        .env("PERFSCOPE_ADMIN_TOKEN", "short-secret")
        .output()
        .expect("binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(!stderr.contains("short-secret"), "{stderr}");
}

#[test]
fn openapi_subcommand_prints_the_committed_spec() {
    let output = agent_command()
        .arg("openapi")
        .output()
        .expect("binary runs");
    assert!(output.status.success());
    let committed = std::fs::read_to_string(support::repo_root().join("openapi/openapi.json"))
        .expect("committed spec");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim_end(),
        committed.trim_end()
    );
}

/// `perfscope openapi | head`: the reader closes the pipe early, and the
/// command ends quietly (it panicked on the closed pipe).
#[test]
fn openapi_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let mut child = agent_command()
        .arg("openapi")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).expect("the spec starts");
    drop(stdout);
    let output = child.wait_with_output().expect("waits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn sigterm_stops_the_agent_cleanly() {
    let (mut agent, address, logs) = spawn_agent(&[]);
    let response = plain_http::get(&format!("http://{address}/readyz"));
    assert_eq!(response, 200);
    // SAFETY: kill(2) with a valid pid of our own child.
    let rc = unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = agent.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let logs = logs.join().expect("log reader");
    assert!(status.success(), "exit status {status:?}; logs: {logs:?}");
    assert!(
        logs.iter().any(|l| l.contains("\"stopped\"")),
        "the agent logs that it stopped: {logs:?}"
    );
}

/// A plain HTTP/1.0 GET over a std socket, answering the status code, so
/// this synchronous test needs no client runtime.
mod plain_http {
    use std::io::{Read, Write};

    pub fn get(url: &str) -> u16 {
        let rest = url.trim_start_matches("http://");
        let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut stream = std::net::TcpStream::connect(host).expect("connect");
        write!(stream, "GET /{path} HTTP/1.0\r\nHost: {host}\r\n\r\n").expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }
}

#[cfg(feature = "tls")]
#[test]
fn tls_listener_serves_https() {
    let dir = temp_dir("tls");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let generated = Command::new(tool("openssl"))
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs");
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let (_agent, address, _logs) = spawn_agent(&[
        ("PERFSCOPE_TLS_CERT", cert.to_str().expect("utf-8 path")),
        ("PERFSCOPE_TLS_KEY", key.to_str().expect("utf-8 path")),
    ]);
    let output = Command::new(tool("curl"))
        .args(["-sS", "--max-time", "10", "--cacert"])
        .arg(&cert)
        .arg(format!("https://{address}/healthz"))
        .output()
        .expect("curl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        r#"{"status":"ok"}"#
    );
    // Over TLS the web pages' session cookie is Secure.
    #[cfg(feature = "ui")]
    {
        let login = Command::new(tool("curl"))
            .args(["-sS", "-i", "--max-time", "10", "--cacert"])
            .arg(&cert)
            .args(["--data-urlencode", &format!("token={ADMIN_TOKEN}")])
            .arg(format!("https://{address}/ui/login"))
            .output()
            .expect("curl runs");
        let answer = String::from_utf8_lossy(&login.stdout);
        let cookie = answer
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
            .unwrap_or_else(|| panic!("no session cookie: {answer}"));
        for flag in ["Secure", "HttpOnly", "SameSite=Strict"] {
            assert!(cookie.contains(flag), "{cookie}");
        }
    }
}

/// `perfscope demo` end to end: a throwaway cluster, the demo app and its
/// workload; within a minute the stats show the N+1 route and the index
/// for the unindexed search, and SIGTERM stops everything.
#[cfg(feature = "postgres")]
#[test]
fn the_demo_shows_n_plus_one_and_index_advice() {
    let mut command = agent_command();
    command.arg("demo").env("PERFSCOPE_LISTEN", "127.0.0.1:0");
    let mut child = Reaper(command.spawn().expect("demo starts"));
    let stdout = child.0.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let (mut docs, mut token) = (None, None);
    for line in lines.by_ref().map_while(Result::ok) {
        if let Some(url) = line.trim().strip_prefix("Swagger UI:") {
            docs = Some(url.trim().to_owned());
        }
        if let Some(t) = line.trim().strip_prefix("admin token:") {
            token = Some(t.trim().to_owned());
            break;
        }
    }
    let docs = docs.expect("the demo prints the Swagger UI URL");
    let token = token.expect("the demo prints an admin token");
    let base = docs.trim_end_matches("/docs").to_owned();
    let deadline = Instant::now() + Duration::from_secs(90);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    // The stats with the token; `None` while the demo is not answering.
    let fetch_stats = || -> Option<Value> {
        runtime.block_on(async {
            client()
                .get(format!("{base}/api/performance/stats"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()
        })
    };
    let stats = loop {
        let stats: Option<Value> = fetch_stats();
        if let Some(stats) = stats {
            let r = &stats["recommendations"];
            let n_plus_one = r["slowQueries"].as_array().is_some_and(|a| {
                a.iter().any(|f| {
                    f["kind"] == "n_plus_one" && f["route"] == "/demo/customers/:id/orders"
                })
            });
            let index = r["indexSuggestions"].as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s["table"] == "public.customers" && s["columns"] == serde_json::json!(["email"])
                })
            });
            // The OR across phone and lower(email): an index per branch,
            // one of them on the expression (hypopg confirms both).
            let or = r["indexSuggestions"].as_array().is_some_and(|a| {
                a.iter().any(|s| {
                    s["columns"] == serde_json::json!(["phone"])
                        && s["together"]
                            == serde_json::json!([
                                "CREATE INDEX CONCURRENTLY ON \"public\".\"customers\" ((lower(\"email\")));"
                            ])
                })
            });
            if n_plus_one && index && or {
                break stats;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the demo never showed its findings"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    assert!(stats["system"]["uptime"].as_f64().is_some());
    // The binary installs jemalloc as its allocator: its heap is shown.
    let memory = &stats["system"]["memory"];
    let heap = memory["heapUsedBytes"].as_u64().expect("heapUsedBytes");
    assert!(heap > 1_000_000, "{memory}");
    // The demo creates the SKU index the advisor suggested (30 s in): the
    // impact report judges it, before and after.
    let deadline = Instant::now() + Duration::from_secs(120);
    let impact = loop {
        let stats: Option<Value> = fetch_stats();
        let helped = stats.as_ref().and_then(|s| {
            s["recommendations"]["indexImpact"]
                .as_array()?
                .iter()
                .find(|r| r["table"] == "public.order_items" && r["verdict"] != "pending")
                .cloned()
        });
        if let Some(report) = helped {
            break report;
        }
        assert!(
            Instant::now() < deadline,
            "the demo never showed an impact report: {stats:?}"
        );
        std::thread::sleep(Duration::from_millis(1000));
    };
    assert_eq!(impact["verdict"], "helped", "{impact}");
    assert!(
        impact["speedup"].as_f64().is_some_and(|x| x > 1.5),
        "{impact}"
    );
    // SAFETY: kill(2) with a valid pid of our own child.
    assert_eq!(unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) }, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status:?}");
}
