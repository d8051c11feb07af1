//! Hardening: what an attacker or an unlucky day can throw at the agent.
//!
//! - A label cardinality attack (100,000 distinct random paths, methods and
//!   operation names) leaves every family under its series cap, with the
//!   overflow series counting what was folded.
//! - A run with a password in `DATABASE_URL` (and in a watched database's
//!   URL, and the planner role's), both tokens, a Sentry DSN, a webhook URL
//!   with a token in its path, a webhook signing key and OTLP headers, and
//!   a workload with a literal value in its SQL: none of them appears in
//!   the logs (at debug level for perfscope), the metrics, any answer (every
//!   GET of the spec, the POSTs of the API and of the web pages, refusals
//!   included), or any body that reaches the real Sentry, OTLP and webhook
//!   receivers while traced requests run and slow-query alerts fire; a
//!   value sent in a bad field is never echoed.
//! - Slow-loris clients (silent, dribbling a head, dribbling the second
//!   head of a kept-alive connection) are cut at `PERFSCOPE_HEADER_TIMEOUT`
//!   while everyone else is served.
//! - A reader blocked on a catalog lock times out, is counted, and the
//!   next pass works.
//! - Postgres stopped and restarted under load: `/healthz` never fails,
//!   database endpoints answer 503 (never a dropped connection), readiness
//!   reports the outage, the pool serves again within 5 s, and no
//!   connection leaks.
//! - Shutdown under load drains every in-flight request and refuses new
//!   ones.
//! - More callers than pool connections get a clear 503 after the pool's
//!   wait timeout (counted), never a hang, while `/healthz` answers.
//! - Bursts of 2 MiB bodies (declared and chunked) past the body limit get
//!   413s while `/healthz` answers, and the agent's memory stays bounded.

mod support;

use std::time::Duration;

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use poem::http::Method;
use poem::{Endpoint, EndpointExt, Request, Route, get, handler};
use serde_json::Value;
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, METRICS_TOKEN, client, spawn_agent};

/// xorshift64*: deterministic random text without a dependency.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn word(&mut self, len: usize) -> String {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";
        (0..len)
            .map(|_| ALPHABET[(self.next() % ALPHABET.len() as u64) as usize] as char)
            .collect()
    }
}

#[handler]
fn user() -> &'static str {
    "user"
}

/// Series of `family` in a scrape (its sample lines, by label set).
fn series(scrape: &str, family: &str) -> std::collections::BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.strip_prefix(family))
        .filter_map(|rest| {
            let labels = rest.split_once('{')?.1.split_once('}')?.0;
            // One series per label set, whatever the suffix or bucket.
            Some(
                labels
                    .split(',')
                    .filter(|kv| !kv.starts_with("le="))
                    .collect::<Vec<_>>()
                    .join(","),
            )
        })
        .collect()
}

fn counter(scrape: &str, sample: &str) -> f64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cardinality_attack_stays_under_the_series_cap() {
    const CAP: usize = 100;
    const ATTACKS: usize = 100_000;
    let config = RawConfig {
        max_series_per_family: Some(CAP.to_string()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let app = Route::new()
        .at("/users/:id", get(user))
        .nest("/", perfscope::api::endpoint(&perfscope))
        .with(perfscope.middleware());
    let measurements = perfscope.measurements();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    for i in 0..ATTACKS {
        // A random path (matching no route, or the one template), a random
        // or extension method, and a random operation name.
        let path = if i % 10 == 0 {
            format!("/users/{}", random.word(12))
        } else {
            format!("/{}/{}", random.word(8), random.word(16))
        };
        let method = if i % 7 == 0 {
            Method::from_bytes(random.word(6).to_uppercase().as_bytes()).expect("a token")
        } else {
            Method::GET
        };
        let _ = app
            .call(Request::builder().method(method).uri_str(&path).finish())
            .await;
        drop(measurements.start(random.word(20)));
    }
    let scrape = perfscope.encode_metrics().expect("scrape");
    let requests = series(&scrape, "http_request_duration_seconds");
    assert!(
        requests.len() <= 10,
        "{} request series: {requests:?}",
        requests.len()
    );
    assert!(
        requests
            .iter()
            .all(|s| !s.contains("/users/") || s.contains(":id")),
        "a raw path became a label: {requests:?}"
    );
    // And a lower bound, so that recording nothing cannot pass: the route
    // template, the unmatched paths and the folded methods each have their
    // series, and every one of the attack's requests was counted.
    for wanted in [
        [r#"method="GET""#, r#"route="/users/:id""#],
        [r#"method="GET""#, r#"route="unmatched""#],
        [r#"method="other""#, r#"route="unmatched""#],
    ] {
        assert!(
            requests
                .iter()
                .any(|s| wanted.iter().all(|label| s.contains(label))),
            "no request series with {wanted:?}: {requests:?}"
        );
    }
    let counted: f64 = scrape
        .lines()
        .filter(|l| l.starts_with("http_request_duration_seconds_count{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(
        counted, ATTACKS as f64,
        "requests counted across the request series"
    );
    let operations = series(&scrape, "custom_operation_duration_seconds");
    assert!(
        operations.len() <= CAP + 1,
        "{} operation series",
        operations.len()
    );
    // The cap is filled (the first CAP names), not left empty.
    assert!(
        operations.len() >= CAP,
        "{} operation series: {operations:?}",
        operations.len()
    );
    let folded = counter(
        &scrape,
        r#"perfscope_metric_overflow_total{family="custom_operation_duration"}"#,
    );
    assert!(
        folded >= (ATTACKS - CAP) as f64,
        "{folded} observations folded into the overflow series"
    );
    assert!(
        scrape.len() < 512 * 1024,
        "the scrape grew to {} bytes",
        scrape.len()
    );
}

/// Every GET path of the committed spec, with path parameters filled in.
fn spec_get_paths() -> Vec<String> {
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .expect("the spec"),
    )
    .expect("JSON");
    let paths = spec["paths"].as_object().expect("paths");
    let mut gets: Vec<String> = paths
        .iter()
        .filter(|(_, item)| item.get("get").is_some())
        .map(|(path, _)| path.replace("{id}", "1"))
        .collect();
    gets.extend(
        [
            "/metrics",
            "/openapi.json",
            "/api/performance/slow-queries?database=default",
            "/api/performance/slow-queries?database=reports",
            "/api/performance/database?database=reports",
        ]
        .map(String::from),
    );
    gets
}

/// One request a loopback receiver got: its target (path and query), its
/// headers and its body, as sent.
struct Delivery {
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Every request a receiver (Sentry, OTLP or webhook) got.
#[derive(Default)]
struct Inbox(parking_lot::Mutex<Vec<Delivery>>);

impl Inbox {
    fn bodies(&self, path_prefix: &str) -> Vec<Vec<u8>> {
        self.0
            .lock()
            .iter()
            .filter(|d| d.target.starts_with(path_prefix))
            .map(|d| d.body.clone())
            .collect()
    }
}

#[handler]
async fn keep(
    request: &Request,
    body: Vec<u8>,
    inbox: poem::web::Data<&std::sync::Arc<Inbox>>,
) -> poem::Response {
    let target = request
        .uri()
        .path_and_query()
        .map_or_else(String::new, ToString::to_string);
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
        .collect();
    let otlp = target.starts_with("/v1/traces");
    inbox.0.0.lock().push(Delivery {
        target,
        headers,
        body,
    });
    // An empty body is an empty ExportTraceServiceResponse; Sentry and the
    // webhook sink take any 200.
    if otlp {
        poem::Response::builder()
            .content_type("application/x-protobuf")
            .body(Vec::<u8>::new())
    } else {
        poem::Response::builder()
            .content_type("application/json")
            .body("{}")
    }
}

/// A receiver on loopback that answers 200 and keeps what it got.
async fn receiver() -> (std::net::SocketAddr, std::sync::Arc<Inbox>) {
    let inbox = std::sync::Arc::new(Inbox::default());
    let addr = support::serve_loopback(keep.data(inbox.clone())).await;
    (addr, inbox)
}

/// The Sentry envelope items of `bodies` as (type, payload); panics on a
/// body that is not a plain-text envelope (so searching its bytes for a
/// secret means something).
#[cfg(feature = "sentry")]
fn envelope_items(bodies: &[Vec<u8>]) -> Vec<(String, Value)> {
    let mut items = Vec::new();
    for body in bodies {
        let text = std::str::from_utf8(body).expect("an uncompressed envelope");
        let mut lines = text.lines();
        let _: Value = serde_json::from_str(lines.next().unwrap_or("")).expect("envelope header");
        while let Some(header) = lines.next() {
            let Ok(header) = serde_json::from_str::<Value>(header) else {
                continue;
            };
            let payload = serde_json::from_str(lines.next().unwrap_or("")).unwrap_or(Value::Null);
            items.push((header["type"].as_str().unwrap_or("").to_owned(), payload));
        }
    }
    items
}

/// The spans' names in OTLP/HTTP protobuf `bodies`; panics on a body that
/// does not decode (a compressed one would hide what it carries).
#[cfg(feature = "otlp")]
fn otlp_span_names(bodies: &[Vec<u8>]) -> Vec<String> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let mut names = Vec::new();
    for body in bodies {
        let request =
            ExportTraceServiceRequest::decode(body.as_slice()).expect("an uncompressed export");
        for resource in request.resource_spans {
            for scope in resource.scope_spans {
                names.extend(scope.spans.into_iter().map(|s| s.name));
            }
        }
    }
    names
}

/// A Sentry envelope without its header's `trace.public_key`: the dynamic
/// sampling context tells Sentry which of its keys the trace belongs to,
/// the one place Sentry's protocol puts the DSN's key in a body. Anywhere
/// else it, like any secret, must not be.
fn without_own_sentry_key(body: &[u8], key: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(body);
    let (header, items) = text.split_once('\n').unwrap_or((&text, ""));
    let mut header: Value = serde_json::from_str(header).expect("envelope header");
    if header["trace"]["public_key"] == key
        && let Some(trace) = header["trace"].as_object_mut()
    {
        trace.remove("public_key");
    }
    format!("{header}\n{items}").into_bytes()
}

/// Panics if `secret` is in `haystack`, showing where.
fn assert_absent(what: &str, haystack: &[u8], secret: &str) {
    if let Some(at) = haystack
        .windows(secret.len())
        .position(|w| w == secret.as_bytes())
    {
        let from = at.saturating_sub(300);
        panic!(
            "{secret} in {what}: …{}…",
            String::from_utf8_lossy(&haystack[from..(at + secret.len()).min(haystack.len())])
        );
    }
}

/// Sends `request` and appends its status, headers and body to `seen`;
/// the status.
async fn record(seen: &mut String, what: &str, request: reqwest::RequestBuilder) -> u16 {
    let response = request.send().await.expect("answered");
    let status = response.status();
    assert!(!status.is_server_error(), "{what}: {status}");
    seen.push_str(&format!("{what} {status}\n"));
    for (name, value) in response.headers() {
        seen.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("")));
    }
    seen.push_str(&response.text().await.expect("body"));
    seen.push('\n');
    status.as_u16()
}

/// A run with every secret the agent takes configured, real Sentry, OTLP
/// and webhook receivers, a slow-query alert firing and every kind of
/// request (each GET of the spec, the POSTs of the API and of the web
/// pages, with their error answers): no secret in the logs, the metrics,
/// an answer, or what reached a receiver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_logs_metrics_answers_or_sinks() {
    const PASSWORD: &str = "Pg-Passw0rd-Never-Shown";
    const WATCHED_PASSWORD: &str = "Watched-Passw0rd-Never-Shown";
    const PLANNER_PASSWORD: &str = "Planner-Passw0rd-Never-Shown";
    const SENTRY_KEY: &str = "sentrykeyneverShown0123";
    const WEBHOOK_TOKEN: &str = "webhook-url-token-never-shown";
    const WEBHOOK_SECRET: &str = "webhook-signing-key-never-shown";
    const OTLP_KEY: &str = "otlp-api-key-never-shown";
    const LITERAL: &str = "literal-value-never-shown";
    // What a client sends as a bad value (a token mistyped into the wrong
    // field, say): answers name the field and never echo it.
    const SENT: &str = "Sent-Value-Never-Echoed";
    const SECRETS: [&str; 10] = [
        PASSWORD,
        WATCHED_PASSWORD,
        PLANNER_PASSWORD,
        ADMIN_TOKEN,
        METRICS_TOKEN,
        SENTRY_KEY,
        WEBHOOK_TOKEN,
        WEBHOOK_SECRET,
        OTLP_KEY,
        LITERAL,
    ];

    let cluster = PgCluster::start();
    cluster.install().await;
    // `accounts` belongs to a role the agent's role is a member of (so it
    // may maintain it), `audit` to the superuser (so it may not); the
    // planner role may read `accounts` (so its statements can be planned).
    cluster
        .exec(
            "postgres",
            "CREATE ROLE app;
             GRANT app TO perfscope;
             CREATE TABLE accounts (id int PRIMARY KEY, email text NOT NULL);
             ALTER TABLE accounts OWNER TO app;
             GRANT SELECT ON accounts TO perfscope_planner;
             INSERT INTO accounts SELECT g, 'user' || g || '@example.com' FROM generate_series(1, 1000) g;
             CREATE TABLE audit (id int PRIMARY KEY);",
        )
        .await;
    // A workload with a literal in its text (pg_stat_statements keeps the
    // normalized form; the agent must never show the value).
    for _ in 0..5 {
        cluster
            .exec(
                "postgres",
                &format!("SELECT count(*) FROM accounts WHERE email <> '{LITERAL}'"),
            )
            .await;
    }
    let queryid: String = {
        let (superuser, connection) =
            tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
                .await
                .expect("connects");
        let connection = tokio::spawn(connection);
        let id: i64 = superuser
            .query_one(
                "SELECT queryid FROM pg_stat_statements
                  WHERE query LIKE 'SELECT count(*) FROM accounts WHERE email <>%'",
                &[],
            )
            .await
            .expect("the workload's queryid")
            .get(0);
        drop(superuser);
        let _ = connection.await;
        id.to_string()
    };
    let with_password = |password: &str| {
        cluster.url("perfscope", "postgres").replacen(
            "perfscope@",
            &format!("perfscope:{password}@"),
            1,
        )
    };
    let (sentry, sentry_inbox) = receiver().await;
    let (otlp, otlp_inbox) = receiver().await;
    let (hook, hook_inbox) = receiver().await;
    let (agent, address, logs) = spawn_agent(&[
        ("DATABASE_URL", &with_password(PASSWORD)),
        (
            "PERFSCOPE_WATCH_DATABASES",
            &format!("reports={}", with_password(WATCHED_PASSWORD)),
        ),
        ("PERFSCOPE_METRICS_TOKEN", METRICS_TOKEN),
        ("PERFSCOPE_READ_INTERVAL", "500"),
        ("PERFSCOPE_PLANNER_USER", "perfscope_planner"),
        ("PERFSCOPE_PLANNER_PASSWORD", PLANNER_PASSWORD),
        ("PERFSCOPE_PLAN_ROLES", "postgres"),
        ("SENTRY_DSN", &format!("http://{SENTRY_KEY}@{sentry}/1")),
        ("SENTRY_TRACES_SAMPLE_RATE", "1.0"),
        // Every statement of the agent's own pool is slow: slow-query
        // alerts fire at once, to the webhook and to Sentry.
        ("SLOW_QUERY_THRESHOLD", "0"),
        (
            "ALERT_WEBHOOK_URLS",
            &format!("http://{hook}/hook/{WEBHOOK_TOKEN}"),
        ),
        ("ALERT_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{otlp}")),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            &format!("x-api-key={OTLP_KEY}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("RUST_LOG", "info,perfscope=debug"),
    ]);
    let base = format!("http://{address}");
    let http = client();
    // Wait (not a fixed sleep) until the readers have listed the
    // workload's statement, so the answers below carry it.
    support::eventually("the workload's statement listed", async || {
        let text = http
            .get(format!(
                "{base}/api/performance/slow-queries?database=default"
            ))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.to_lowercase()
            .contains("from accounts where email <>")
            .then_some(())
    })
    .await;

    let mut seen = String::new();
    for path in spec_get_paths() {
        for token in [None, Some(METRICS_TOKEN), Some(ADMIN_TOKEN)] {
            let mut request = http.get(format!("{base}{path}"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            record(&mut seen, &path, request).await;
        }
    }

    // The POSTs of the API, answered and refused. A secret sent as a
    // value must not come back either: answers name the field.
    let post = |path: &str, body: String| {
        http.post(format!("{base}{path}"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
    };
    for body in [
        format!(r#"{{"operation": "x", "duration": "{SENT}"}}"#),
        "{".to_owned(),
    ] {
        record(&mut seen, "analyze", post("/api/performance/analyze", body)).await;
    }
    let explain = "/api/performance/explain";
    for (query, expected) in [
        (format!("queryid={queryid}"), 200),
        (format!("queryid={queryid}&database=reports"), 200),
        (format!("queryid={SENT}"), 400),
        ("queryid=12345".to_owned(), 404),
    ] {
        let status = record(
            &mut seen,
            explain,
            http.get(format!("{base}{explain}?{query}"))
                .bearer_auth(ADMIN_TOKEN),
        )
        .await;
        assert_eq!(status, expected, "GET {explain}?{query}");
    }
    for (body, expected) in [
        (format!(r#"{{"queryid": "{queryid}"}}"#), 200),
        (
            format!(
                r#"{{"queryid": "{queryid}", "analyze": true, "params": ["someone@example.com"]}}"#
            ),
            200,
        ),
        (
            format!(r#"{{"queryid": "{queryid}", "analyze": true}}"#),
            400,
        ),
        (format!(r#"{{"queryid": "{SENT}"}}"#), 400),
        (
            format!(r#"{{"queryid": "{queryid}", "analyze": "{SENT}"}}"#),
            400,
        ),
        (
            format!(r#"{{"queryid": "{queryid}", "params": [1, "{SENT}"]}}"#),
            400,
        ),
        (
            format!(r#"{{"queryid": "{queryid}", "timeoutMs": 5}}"#),
            400,
        ),
        (
            format!(r#"{{"queryid": "{queryid}", "extra": "{SENT}"}}"#),
            400,
        ),
        (r#"{"queryid": "12345"}"#.to_owned(), 404),
        ("{".to_owned(), 400),
        (String::new(), 400),
    ] {
        let status = record(&mut seen, explain, post(explain, body.clone())).await;
        assert_eq!(status, expected, "POST {explain} {body}");
    }
    let optimize = "/api/performance/optimize";
    for (body, expected) in [
        (r#"{"task": "vacuum", "table": "audit"}"#.to_owned(), 403),
        (r#"{"task": "analyze", "table": "nope"}"#.to_owned(), 404),
        (format!(r#"{{"task": "{SENT}"}}"#), 400),
        (format!(r#"{{"task": "analyze", "table": "{SENT}"}}"#), 400),
        (r#"{"task": "reindex"}"#.to_owned(), 400),
        (format!(r#"{{"task": "analyze", "extra": "{SENT}"}}"#), 400),
        (
            r#"{"task": "analyze", "table": "accounts"}"#.to_owned(),
            202,
        ),
    ] {
        let status = record(&mut seen, optimize, post(optimize, body.clone())).await;
        assert_eq!(status, expected, "POST {optimize} {body}");
    }
    // The job's end, as its poller sees it.
    support::eventually("the ANALYZE job to end", async || {
        let job: Value = http
            .get(format!("{base}{optimize}/1"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (job["state"] != "running").then_some(())
    })
    .await;
    record(
        &mut seen,
        optimize,
        http.get(format!("{base}{optimize}/1"))
            .bearer_auth(ADMIN_TOKEN),
    )
    .await;
    for (path, expected) in [
        ("/api/performance/activity/999999/cancel".to_owned(), 404),
        (
            "/api/performance/activity/999999/terminate?database=reports".to_owned(),
            404,
        ),
        (
            format!("/api/performance/activity/999999/cancel?backendStart={SENT}"),
            404,
        ),
        (format!("/api/performance/activity/999999/{SENT}"), 400),
        ("/api/performance/activity/0/cancel".to_owned(), 400),
    ] {
        let status = record(
            &mut seen,
            // (not the path: some carry the password on purpose)
            "signal",
            http.post(format!("{base}{path}")).bearer_auth(ADMIN_TOKEN),
        )
        .await;
        assert_eq!(status, expected, "POST {path}");
    }

    // The web pages, logged in with the admin token, show none either,
    // nor do their forms' answers.
    #[cfg(feature = "ui")]
    let session = {
        let wrong = support::ui_post(&base, "/ui/login", "", &[("token", SENT)]).await;
        assert_ne!(wrong.0, 303, "a wrong token opens no session");
        seen.push_str(&wrong.2);
        let cookie = support::ui_session(&base).await;
        for path in [
            "/ui",
            "/ui/queries",
            "/ui/activity",
            "/ui/db-time",
            "/ui/advice",
            "/ui/database",
        ] {
            let (status, page) = support::ui_page(&base, path, &cookie).await;
            assert_eq!(status, 200, "{path}");
            seen.push_str(&page);
        }
        let (_, overview) = support::ui_page(&base, "/ui", &cookie).await;
        let csrf = support::csrf_of(&overview);
        let (status, page) =
            support::ui_page(&base, &format!("/ui/explain?queryid={queryid}"), &cookie).await;
        assert_eq!(status, 200, "the plan page");
        seen.push_str(&page);
        for (path, form, expected) in [
            (
                "/ui/explain",
                vec![("csrf", csrf.as_str()), ("queryid", queryid.as_str())],
                200,
            ),
            (
                "/ui/explain",
                vec![
                    ("csrf", csrf.as_str()),
                    ("queryid", queryid.as_str()),
                    ("p1", "someone@example.com"),
                    ("confirmed", "yes"),
                ],
                200,
            ),
            (
                "/ui/explain",
                vec![
                    ("csrf", csrf.as_str()),
                    ("queryid", SENT),
                    ("confirmed", "yes"),
                ],
                400,
            ),
            (
                "/ui/explain",
                vec![("csrf", SENT), ("queryid", queryid.as_str())],
                403,
            ),
            (
                "/ui/advice/analyze",
                vec![
                    ("csrf", csrf.as_str()),
                    ("table", "public.accounts"),
                    ("confirmed", "yes"),
                ],
                303,
            ),
            (
                "/ui/advice/analyze",
                vec![
                    ("csrf", csrf.as_str()),
                    ("table", SENT),
                    ("confirmed", "yes"),
                ],
                400,
            ),
            (
                "/ui/activity/signal",
                vec![
                    ("csrf", csrf.as_str()),
                    ("pid", "999999"),
                    ("action", "cancel"),
                    ("confirmed", "yes"),
                ],
                404,
            ),
            (
                "/ui/activity/signal",
                vec![("csrf", csrf.as_str()), ("pid", "999999"), ("action", SENT)],
                400,
            ),
        ] {
            let (status, location, page) = support::ui_post(&base, path, &cookie, &form).await;
            assert_eq!(status, expected, "POST {path} {form:?}: {page}");
            seen.push_str(&format!("{path} {status} {location:?}\n{page}\n"));
            // Where a form sends the browser next (the job it started).
            if let Some(location) = location {
                let (status, page) = support::ui_page(&base, &location, &cookie).await;
                assert_eq!(status, 200, "{location}");
                seen.push_str(&page);
            }
        }
        let (status, _, page) =
            support::ui_post(&base, "/ui/logout", &cookie, &[("csrf", &csrf)]).await;
        assert_eq!(status, 303, "logged out");
        seen.push_str(&page);
        cookie
    };
    assert!(
        seen.contains("select count(*) from accounts where email <>")
            || seen.contains("SELECT count(*) FROM accounts WHERE email <>"),
        "the workload's statement is listed (so the check below means something)"
    );
    assert!(
        seen.contains("actual time"),
        "an EXPLAIN ANALYZE ran (so its answer was checked)"
    );

    // Every sink got something before the agent stops: the traces of the
    // POSTs above (Sentry transactions, OTLP server spans) and slow-query
    // alerts (webhook notifications and Sentry events).
    #[cfg(any(feature = "sentry", feature = "otlp"))]
    let mut posts = vec![
        "POST /api/performance/explain",
        "POST /api/performance/optimize",
        "POST /api/performance/activity/:param0/:param1",
    ];
    #[cfg(all(feature = "ui", any(feature = "sentry", feature = "otlp")))]
    posts.extend(["POST /ui/login", "POST /ui/explain"]);
    #[cfg(feature = "sentry")]
    support::eventually("Sentry transactions and an alert event", async || {
        let items = envelope_items(&sentry_inbox.bodies("/api/1/envelope/"));
        let traced = posts.iter().all(|post| {
            items
                .iter()
                .any(|(kind, v)| kind == "transaction" && v["transaction"] == *post)
        });
        let alerted = items
            .iter()
            .any(|(kind, v)| kind == "event" && v["tags"]["alert.rule"] == "slow_query");
        (traced && alerted).then_some(())
    })
    .await;
    #[cfg(feature = "otlp")]
    support::eventually("OTLP spans", async || {
        let names = otlp_span_names(&otlp_inbox.bodies("/v1/traces"));
        posts
            .iter()
            .all(|post| names.iter().any(|name| name == post))
            .then_some(())
    })
    .await;
    #[cfg(feature = "webhooks")]
    support::eventually("a slow-query notification", async || {
        hook_inbox
            .bodies("/hook/")
            .iter()
            .any(|body| {
                serde_json::from_slice::<Value>(body).is_ok_and(|v| v["rule"] == "slow_query")
            })
            .then_some(())
    })
    .await;
    // A graceful stop, so the sinks flush what they hold.
    let mut agent = agent;
    // SAFETY: kill(2) on the child this test started.
    let signalled = unsafe { libc::kill(agent.0.id() as i32, libc::SIGTERM) };
    assert_eq!(signalled, 0, "SIGTERM sent");
    support::eventually("the agent to stop", async || {
        agent.0.try_wait().ok().flatten()
    })
    .await;
    let logs = logs.join().expect("logs").join("\n");
    assert!(logs.contains("perfscope listening"), "{logs}");

    for secret in SECRETS {
        assert_absent("an answer", seen.as_bytes(), secret);
        assert_absent("the logs", logs.as_bytes(), secret);
    }
    // The requests above carried SENT on purpose: an answer names the
    // field, never echoes the value, and the logs do not record it, but
    // for the audit line of a maintenance request, which names the table
    // asked for (what was refused included).
    assert_absent("an answer", seen.as_bytes(), SENT);
    for line in logs.lines() {
        if !line.contains(r#""message":"maintenance requested""#) {
            assert_absent("the logs", line.as_bytes(), SENT);
        }
    }
    #[cfg(feature = "ui")]
    {
        let session = session.split_once('=').map_or("", |(_, id)| id);
        assert!(session.len() >= 16, "a session id: {session}");
        assert_absent("the logs", logs.as_bytes(), session);
        for inbox in [&sentry_inbox, &otlp_inbox, &hook_inbox] {
            for delivery in inbox.0.lock().iter() {
                assert_absent("a sink's body", &delivery.body, session);
            }
        }
    }
    // What reached each receiver: no secret in any body; in the request
    // line and headers, only the receiver's own credential (which must be
    // there: it shows the secret was configured and used).
    for (name, built, inbox, own) in [
        (
            "Sentry",
            cfg!(feature = "sentry"),
            &sentry_inbox,
            SENTRY_KEY,
        ),
        ("OTLP", cfg!(feature = "otlp"), &otlp_inbox, OTLP_KEY),
        (
            "the webhook",
            cfg!(feature = "webhooks"),
            &hook_inbox,
            WEBHOOK_TOKEN,
        ),
    ] {
        if !built {
            continue;
        }
        let deliveries = inbox.0.lock();
        assert!(!deliveries.is_empty(), "{name} received nothing");
        for delivery in deliveries.iter() {
            let head = format!(
                "{}\n{}",
                delivery.target,
                delivery
                    .headers
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            assert!(head.contains(own), "{name}'s credential is used: {head}");
            let body = if own == SENTRY_KEY {
                without_own_sentry_key(&delivery.body, own)
            } else {
                delivery.body.clone()
            };
            for secret in SECRETS.into_iter().chain([SENT]) {
                assert_absent(&format!("a body sent to {name}"), &body, secret);
                if secret != own {
                    assert_absent(
                        &format!("a request head sent to {name}"),
                        head.as_bytes(),
                        secret,
                    );
                }
            }
        }
    }
    #[cfg(feature = "webhooks")]
    for delivery in hook_inbox.0.lock().iter() {
        let signature = delivery
            .headers
            .iter()
            .find(|(k, _)| k == perfscope::alerts::webhook::SIGNATURE_HEADER)
            .map(|(_, v)| v.as_str());
        assert_eq!(
            signature,
            Some(
                perfscope::alerts::webhook::sign(
                    &perfscope::config::Secret::new(WEBHOOK_SECRET),
                    &delivery.body
                )
                .as_str()
            ),
            "each notification is signed with the configured secret"
        );
    }
}

/// Reads until the peer closes, an error, or `limit`; what was read and
/// whether the peer closed.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> (String, bool) {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// Reads one response head and body of `Content-Length`.
async fn read_response(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer within 5 s")
            .expect("read");
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                return text;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_client_is_cut_at_the_head() {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;
    let agent = support::TestAgent::start_with(|raw| {
        raw.header_timeout = Some("1000".into());
    })
    .await;
    let head = "GET /healthz HTTP/1.1\r\nHost: perfscope\r\n\r\n";

    // Silent: connects and sends nothing.
    let mut silent = TcpStream::connect(agent.addr).await.expect("connect");
    let started = std::time::Instant::now();
    let (got, closed) = read_until_closed(&mut silent, Duration::from_secs(5)).await;
    assert!(closed && got.is_empty(), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Slow loris: a header byte every 100 ms, never ending its head.
    let mut loris = TcpStream::connect(agent.addr).await.expect("connect");
    loris
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let dribble = async {
        for byte in b"X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if loris.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let (got, closed) = read_until_closed(&mut loris, Duration::from_secs(5)).await;
        (got, closed)
    };
    let (got, closed) = dribble.await;
    eprintln!(
        "slow loris: cut after {:?} (head timeout 1000 ms)",
        started.elapsed()
    );
    assert!(closed, "the slow head was not cut");
    assert!(!got.contains("200 OK"), "a slow head was served: {got}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // A head split over 300 ms (within the timeout) is served; then the
    // connection may idle longer than the head timeout, and a second
    // request is served too; a second head that dribbles is cut.
    let mut kept = TcpStream::connect(agent.addr).await.expect("connect");
    for part in head.as_bytes().chunks(10) {
        kept.write_all(part).await.expect("write");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kept.write_all(head.as_bytes()).await.expect("write");
    assert!(read_response(&mut kept).await.starts_with("HTTP/1.1 200"));
    kept.write_all(b"GET /healthz HTTP/1.1\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let (got, closed) = read_until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(closed && !got.contains("200 OK"), "{got}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // A body sent after `100 Continue`, slower than the head timeout, is
    // the same request's: it is served, not cut.
    let body = r#"{"operation": "GET /users/:id", "duration": 12}"#;
    let mut uploader = TcpStream::connect(agent.addr).await.expect("connect");
    uploader
        .write_all(
            format!(
                "POST /api/performance/analyze HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
                 Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("write");
    let interim = read_response(&mut uploader).await;
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");
    let (first, rest) = body.split_at(body.len() / 2);
    uploader.write_all(first.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    uploader.write_all(rest.as_bytes()).await.expect("write");
    let answer = read_response(&mut uploader).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // And the agent answers everyone else throughout.
    let status = client()
        .get(agent.url("/healthz"))
        .send()
        .await
        .expect("healthz")
        .status();
    assert_eq!(status, 200);
    agent.stop().await;
}

/// `(reader, success)` of every reader of the default database.
fn readers(scrape: &str) -> Vec<(String, bool)> {
    scrape
        .lines()
        .filter_map(|l| l.strip_prefix(r#"perfscope_reader_success{database="default",reader=""#))
        .filter_map(|rest| {
            let (reader, value) = rest.split_once("\"} ")?;
            Some((reader.to_owned(), value.trim() == "1"))
        })
        .collect()
}

fn reader_errors(scrape: &str) -> f64 {
    scrape
        .lines()
        .filter(|l| l.starts_with(r#"perfscope_reader_errors_total{database="default""#))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_reader_times_out_is_counted_and_the_next_pass_works() {
    let cluster = PgCluster::start();
    cluster.install().await;
    let url = cluster.url("perfscope", "postgres");
    let agent = support::TestAgent::start_with(|raw| {
        raw.database_url = Some(url.clone());
        raw.read_interval = Some("300".into());
        raw.read_timeout = Some("400".into());
    })
    .await;
    let http = client();
    let scrape = || async {
        http.get(agent.url("/api/performance/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("scrape")
            .text()
            .await
            .expect("text")
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = readers(&scrape().await);
        if !now.is_empty() && now.iter().all(|(_, ok)| *ok) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readers never all worked: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let errors_before = reader_errors(&scrape().await);

    // Hold pg_class exclusively: every reader's catalog query waits on the
    // lock until its statement_timeout ends it.
    let (locker, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    locker
        .batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_class IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let failing = loop {
        let text = scrape().await;
        let failing: Vec<String> = readers(&text)
            .into_iter()
            .filter(|(_, ok)| !ok)
            .map(|(r, _)| r)
            .collect();
        if !failing.is_empty() && reader_errors(&text) > errors_before {
            break failing;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reader timed out: {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The agent answers meanwhile.
    let status = http
        .get(agent.url("/healthz"))
        .send()
        .await
        .expect("healthz")
        .status();
    assert_eq!(status, 200);
    locker.batch_execute("COMMIT").await.expect("unlock");
    let released = std::time::Instant::now();

    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = readers(&scrape().await);
        if now.iter().all(|(_, ok)| *ok) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readers {failing:?} did not recover: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!(
        "hanging reader: {failing:?} timed out under the lock; all readers back {:?} after its release",
        released.elapsed()
    );
    agent.stop().await;
}

/// A pool of `max` connections (one opened at start) that waits at most
/// `wait` for one; creating and recycling are bounded by 1 s.
async fn small_pool(
    perfscope: &Perfscope,
    url: &str,
    name: &str,
    max: u32,
    wait: Duration,
) -> perfscope::db::TimedPool {
    perfscope
        .connect_pool(
            url,
            perfscope::db::PoolSettings {
                name: name.into(),
                min: 1,
                max,
                wait_timeout: wait,
                create_timeout: Duration::from_secs(1),
                recycle_timeout: Duration::from_secs(1),
                budget: None,
                application_name: None,
                ..Default::default()
            },
        )
        .await
        .expect("pool")
}

#[handler]
async fn item_handler(
    pool: poem::web::Data<&perfscope::db::TimedPool>,
    poem::web::Path(id): poem::web::Path<i32>,
) -> poem::Result<String> {
    let unavailable = |e: perfscope::db::DbError| {
        poem::Error::from_string(e.to_string(), poem::http::StatusCode::SERVICE_UNAVAILABLE)
    };
    let client = pool.get().await.map_err(unavailable)?;
    let row = client
        .query_one("SELECT $1::int + 1", &[&id])
        .await
        .map_err(|e| unavailable(e.into()))?;
    Ok(row.get::<_, i32>(0).to_string())
}

#[derive(Default)]
struct Tally {
    healthz_failed: std::sync::atomic::AtomicUsize,
    transport_errors: std::sync::atomic::AtomicUsize,
    items_ok: std::sync::atomic::AtomicUsize,
    items_unavailable: std::sync::atomic::AtomicUsize,
    items_other: std::sync::atomic::AtomicUsize,
    last_item_ok: parking_lot::Mutex<Option<std::time::Instant>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_and_restarted_under_load() {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;
    const APP_POOL: u32 = 4;
    const AGENT_POOL: u32 = 3;
    let cluster = Arc::new(PgCluster::start());
    let url = cluster.url("postgres", "postgres");
    let config = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        database_url: Some(url.clone()),
        pool_max: Some(AGENT_POOL.to_string()),
        pool_min: Some("1".into()),
        read_interval: Some("500".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let pool = small_pool(&perfscope, &url, "app", APP_POOL, Duration::from_secs(1)).await;
    let app = support::HostApp::start(
        &perfscope,
        Route::new().at("/items/:id", get(item_handler).data(pool)),
    )
    .await;
    let tally = Arc::new(Tally::default());
    let running = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut load = Vec::new();
    for worker in 0..6 {
        let (tally, running, base) = (tally.clone(), running.clone(), app.base.clone());
        load.push(tokio::spawn(async move {
            let http = client();
            let mut i = 0;
            while running.load(Ordering::Relaxed) {
                i += 1;
                let path = if worker % 3 == 0 {
                    "/healthz".to_owned()
                } else {
                    format!("/items/{i}")
                };
                match http.get(format!("{base}{path}")).send().await {
                    Err(_) => {
                        tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(response) if path == "/healthz" => {
                        if response.status() != 200 {
                            tally.healthz_failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(response) => match response.status().as_u16() {
                        200 => {
                            tally.items_ok.fetch_add(1, Ordering::Relaxed);
                            *tally.last_item_ok.lock() = Some(std::time::Instant::now());
                        }
                        503 => {
                            tally.items_unavailable.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {
                            tally.items_other.fetch_add(1, Ordering::Relaxed);
                        }
                    },
                }
            }
        }));
    }
    let readiness = |state: &'static str| {
        let base = app.base.clone();
        async move {
            let deadline = std::time::Instant::now() + Duration::from_secs(20);
            loop {
                let response = client()
                    .get(format!("{base}/readyz"))
                    .send()
                    .await
                    .expect("readyz");
                let code = response.status().as_u16();
                let ready: Value = response.json().await.expect("json");
                if ready["checks"]["database"] == state {
                    // Not ready (503) exactly while the database is down.
                    let down = state == "unreachable";
                    assert_eq!(code, if down { 503 } else { 200 }, "{ready}");
                    assert_eq!(ready["status"], if down { "not_ready" } else { "ready" });
                    return;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "never {state}: {ready}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    readiness("ok").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let stopper = cluster.clone();
    tokio::task::spawn_blocking(move || stopper.stop())
        .await
        .expect("stop");
    readiness("unreachable").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let unavailable_during = tally.items_unavailable.load(Ordering::Relaxed);
    let starter = cluster.clone();
    tokio::task::spawn_blocking(move || starter.restart())
        .await
        .expect("restart");
    let back = std::time::Instant::now();
    let deadline = back + Duration::from_secs(10);
    let recovered = loop {
        if let Some(at) = *tally.last_item_ok.lock()
            && at > back
        {
            break at - back;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the pool never recovered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    readiness("ok").await;
    running.store(false, Ordering::Relaxed);
    for task in load {
        task.await.expect("load");
    }
    eprintln!(
        "outage: recovered {recovered:?} after Postgres returned; items 200: {}, 503: {}; healthz failures: {}",
        tally.items_ok.load(Ordering::Relaxed),
        tally.items_unavailable.load(Ordering::Relaxed),
        tally.healthz_failed.load(Ordering::Relaxed)
    );
    assert!(
        recovered < Duration::from_secs(5),
        "recovered in {recovered:?}"
    );
    assert!(unavailable_during > 0, "the outage was not seen");
    assert_eq!(tally.healthz_failed.load(Ordering::Relaxed), 0);
    assert_eq!(tally.transport_errors.load(Ordering::Relaxed), 0);
    assert_eq!(
        tally.items_other.load(Ordering::Relaxed),
        0,
        "answers other than 200/503"
    );
    assert!(tally.items_ok.load(Ordering::Relaxed) > 0);

    // No connection leaked: the app's, the agent's and the readers' pools
    // stay within their sizes.
    let (checker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let count: i64 = checker
        .query_one(
            "SELECT count(*) FROM pg_stat_activity
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
            &[],
        )
        .await
        .expect("count")
        .get(0);
    eprintln!("outage: {count} client connections after recovery");
    assert!(
        count <= i64::from(APP_POOL + AGENT_POOL + 2),
        "{count} connections after the outage"
    );
    app.stop().await;
}

#[handler]
async fn slow_handler(
    arrived: poem::web::Data<&std::sync::Arc<std::sync::atomic::AtomicUsize>>,
) -> &'static str {
    arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(800)).await;
    "done"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_under_load_drains_in_flight_requests() {
    let config = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        shutdown_grace: Some("5000".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let arrived = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = support::HostApp::start(
        &perfscope,
        Route::new().at("/slow", get(slow_handler).data(arrived.clone())),
    )
    .await;
    let base = app.base.clone();
    let in_flight: Vec<_> = (0..20)
        .map(|_| {
            let url = format!("{base}/slow");
            tokio::spawn(async move { client().get(url).send().await })
        })
        .collect();
    // Every request is inside its handler before the stop.
    support::until("20 requests in flight", Duration::from_secs(10), || {
        arrived.load(std::sync::atomic::Ordering::SeqCst) == 20
    })
    .await;
    let stopping = std::time::Instant::now();
    let stopped = tokio::spawn(app.stop());
    // New connections are refused (or answered 503) while draining: waited
    // for (the stop takes effect when the crowded machine gets to it), and
    // seen while the in-flight requests (800 ms each) still run.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let late = client().get(format!("{base}/healthz")).send().await;
        if late.as_ref().map_or(true, |r| r.status() != 200) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new requests are still served 10 s into the stop"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        in_flight.iter().any(|request| !request.is_finished()),
        "every in-flight request finished before new ones were refused"
    );
    for request in in_flight {
        let response = request
            .await
            .expect("task")
            .expect("an in-flight request completes");
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.expect("body"), "done");
    }
    stopped.await.expect("stopped");
    let took = stopping.elapsed();
    eprintln!("shutdown: 20 in-flight 800 ms requests drained, stopped in {took:?}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
}

#[handler]
async fn hold_handler(pool: poem::web::Data<&perfscope::db::TimedPool>) -> poem::Result<String> {
    let client = pool.get().await.map_err(|e| {
        poem::Error::from_string(e.to_string(), poem::http::StatusCode::SERVICE_UNAVAILABLE)
    })?;
    client
        .query_one("SELECT pg_sleep(0.3)::text", &[])
        .await
        .map_err(|e| {
            poem::Error::from_string(e.to_string(), poem::http::StatusCode::SERVICE_UNAVAILABLE)
        })?;
    Ok("held".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_callers_than_connections_get_a_clear_503_not_a_hang() {
    let cluster = PgCluster::start();
    let perfscope = Perfscope::new(
        RawConfig {
            listen: Some("127.0.0.1:0".into()),
            admin_token: Some(ADMIN_TOKEN.into()),
            ..Default::default()
        }
        .validate()
        .expect("config"),
    );
    let pool = small_pool(
        &perfscope,
        &cluster.url("postgres", "postgres"),
        "small",
        2,
        Duration::from_millis(200),
    )
    .await;
    let app = support::HostApp::start(
        &perfscope,
        Route::new().at("/hold", get(hold_handler).data(pool)),
    )
    .await;
    let started = std::time::Instant::now();
    let callers: Vec<_> = (0..30)
        .map(|_| {
            let url = format!("{}/hold", app.base);
            tokio::spawn(async move { client().get(url).send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    // The agent stays responsive while the pool is exhausted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let healthz = client()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("healthz");
    assert_eq!(healthz.status(), 200);
    let mut statuses = Vec::new();
    for caller in callers {
        statuses.push(
            caller
                .await
                .expect("task")
                .expect("an answer, not a dropped connection"),
        );
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let unavailable = statuses.iter().filter(|s| **s == 503).count();
    assert_eq!(ok + unavailable, statuses.len(), "{statuses:?}");
    eprintln!(
        "pool exhaustion: 30 callers, 2 connections: {ok} served, {unavailable} answered 503, in {:?}",
        started.elapsed()
    );
    assert!(ok >= 2 && unavailable > 0, "{statuses:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let scrape = perfscope.encode_metrics().expect("scrape");
    let timeouts = counter(
        &scrape,
        r#"db_pool_timeouts_total{pool="small",kind="wait"}"#,
    );
    assert!(
        timeouts >= unavailable as f64,
        "{timeouts} wait timeouts counted: {scrape}"
    );
    app.stop().await;
}

/// 60 concurrent 2 MiB bodies (half declared, half chunked) to the analyze
/// endpoint, while `/healthz` is asked; (413 answers, connections closed
/// while still sending).
async fn body_burst(base: &str) -> (usize, usize) {
    let url = format!("{base}/api/performance/analyze");
    let mut burst = Vec::new();
    for i in 0..60 {
        let url = url.clone();
        burst.push(tokio::spawn(async move {
            let body = vec![b'x'; 2 * 1024 * 1024];
            let request = client()
                .post(url)
                .bearer_auth(ADMIN_TOKEN)
                .header("content-type", "application/json");
            let request = if i % 2 == 0 {
                request.body(body)
            } else {
                let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
                    body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
                request.body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
            };
            request.send().await.map(|r| r.status().as_u16())
        }));
    }
    let healthz = client()
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz during the burst");
    assert_eq!(healthz.status(), 200);
    let (mut refused, mut reset) = (0, 0);
    for request in burst {
        match request.await.expect("task") {
            Ok(413) => refused += 1,
            Ok(other) => panic!("a 2 MiB body was answered {other}"),
            // Past what the agent drains (1 MiB), a client still sending
            // may see the connection close after the 413.
            Err(_) => reset += 1,
        }
    }
    (refused, reset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_past_the_body_limit_are_refused_with_bounded_memory() {
    // The agent binary, so its memory is its own (the clients' 120 MiB of
    // bodies live in this process).
    let (agent, address, _logs) = spawn_agent(&[]);
    let pid = agent.0.id();
    let base = format!("http://{address}");
    // Warm up the allocator with a few ordinary requests.
    for _ in 0..20 {
        let _ = client().get(format!("{base}/healthz")).send().await;
    }
    let before = support::resident_bytes(pid);
    let (refused, reset) = body_burst(&base).await;
    let first = support::resident_bytes(pid);
    let (refused_again, reset_again) = body_burst(&base).await;
    let second = support::resident_bytes(pid);
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    eprintln!(
        "body bursts: 2 × 60 × 2 MiB: {} × 413, {} closed while sending; agent resident {:.1} → {:.1} → {:.1} MiB",
        refused + refused_again,
        reset + reset_again,
        mib(before),
        mib(first),
        mib(second)
    );
    assert!(
        refused + refused_again >= 60,
        "{refused} + {refused_again} refused with 413"
    );
    // Per connection, hyper buffers what it reads: 60 at once may take some
    // MiB, and a second burst reuses them rather than adding more.
    assert!(
        first < before + 64 * 1024 * 1024,
        "the agent grew from {before} to {first} bytes in a burst"
    );
    assert!(
        second < first + 8 * 1024 * 1024,
        "a second burst grew the agent from {first} to {second} bytes"
    );
    drop(agent);
}
