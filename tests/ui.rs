//! The web pages over real HTTP: sessions, CSRF and headers against an
//! agent without a database, then every page against `perfscope demo`
//! (a throwaway Postgres cluster with the demo's workload) — first read as
//! HTML, then driven in headless Chromium through chromedriver (W3C
//! WebDriver over HTTP), with a PNG screenshot of each page saved under
//! target/ui-screenshots/ for review; no browser process outlives the
//! test, pass or fail.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use support::{ADMIN_TOKEN, TestAgent, csrf_of};

const PAGES: [&str; 6] = [
    "/ui",
    "/ui/queries",
    "/ui/activity",
    "/ui/db-time",
    "/ui/advice",
    "/ui/database",
];

fn browser_like() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Logs in; the session cookie (`name=value`) and its `Set-Cookie` line.
async fn log_in(base: &str, token: &str) -> (String, String) {
    let response = browser_like()
        .post(format!("{base}/ui/login"))
        .form(&[("token", token)])
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/ui");
    let set_cookie = response.headers()[SET_COOKIE]
        .to_str()
        .expect("ascii")
        .to_owned();
    let cookie = set_cookie.split(';').next().expect("a pair").to_owned();
    (cookie, set_cookie)
}

async fn get(base: &str, path: &str, cookie: Option<&str>) -> (StatusCode, HeaderMap, String) {
    let mut request = browser_like().get(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

async fn post(
    base: &str,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
    origin: Option<&str>,
) -> (StatusCode, HeaderMap, String) {
    let mut request = browser_like()
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .form(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("body"))
}

/// POSTs a form body of `bytes` to `path` over a raw connection, reading
/// what the server answers while sending; the answer (empty when there was
/// none) and how sending ended (an error once the server closed).
async fn post_oversized(
    addr: SocketAddr,
    path: &str,
    bytes: usize,
) -> (String, std::io::Result<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: perfscope\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {bytes}\r\nConnection: close\r\n\r\n"
    );
    let send = async move {
        tokio::time::timeout(
            Duration::from_secs(30),
            send_body(&mut writer, &head, bytes),
        )
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("still sending after 30 s")))
    };
    async fn send_body(
        writer: &mut tokio::net::tcp::OwnedWriteHalf,
        head: &str,
        bytes: usize,
    ) -> std::io::Result<()> {
        writer.write_all(head.as_bytes()).await?;
        writer.write_all(b"token=").await?;
        let chunk = vec![b'a'; 64 * 1024];
        let mut left = bytes - 6;
        while left > 0 {
            let n = left.min(chunk.len());
            writer.write_all(&chunk[..n]).await?;
            left -= n;
        }
        writer.flush().await
    }
    let receive = async move {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        // Until the server closes (or resets) the connection.
        while let Ok(Ok(n)) =
            tokio::time::timeout(Duration::from_secs(20), reader.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&got).into_owned()
    };
    let (sending, answer) = tokio::join!(send, receive);
    (answer, sending)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_need_a_session_and_changes_need_the_csrf_token() {
    let agent = TestAgent::start().await;
    let base = agent.url("");
    // No session: every page sends to the login; the root goes to /ui.
    for page in PAGES {
        let (status, headers, _) = get(&base, page, None).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(headers[LOCATION], "/ui/login", "{page}");
    }
    let (status, headers, _) = get(&base, "/", None).await;
    assert_eq!(
        (status, &headers[LOCATION]),
        (StatusCode::SEE_OTHER, &"/ui".parse().expect("value"))
    );
    // A made-up session id is no session.
    let forged = format!("perfscope_session={}", "ab".repeat(32));
    let (status, _, _) = get(&base, "/ui", Some(&forged)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);

    // The login form, with the hardening headers.
    let (status, headers, body) = get(&base, "/ui/login", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("type=\"password\""), "{body}");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");

    // A wrong token: 401 and no cookie; a cross-site form: 403.
    let wrong = browser_like()
        .post(format!("{base}/ui/login"))
        .form(&[("token", "not-the-token")])
        .send()
        .await
        .expect("login");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers().get(SET_COOKIE).is_none());
    let cross = browser_like()
        .post(format!("{base}/ui/login"))
        .header("origin", "https://evil.example")
        .form(&[("token", ADMIN_TOKEN)])
        .send()
        .await
        .expect("login");
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    assert!(cross.headers().get(SET_COOKIE).is_none());

    // The right token: a session cookie with its flags (no Secure on
    // plain HTTP).
    let (cookie, set_cookie) = log_in(&base, ADMIN_TOKEN).await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(set_cookie.contains(flag), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "{set_cookie}");
    assert!(!set_cookie.contains(ADMIN_TOKEN));
    for page in PAGES {
        let (status, _, body) = get(&base, page, Some(&cookie)).await;
        assert_eq!(status, StatusCode::OK, "{page}: {body}");
        assert!(!body.contains(ADMIN_TOKEN), "{page} shows the token");
    }
    let (_, _, overview) = get(&base, "/ui", Some(&cookie)).await;
    // The agent's docs are at /docs (a host app's under /api/performance).
    assert!(overview.contains(r#"href="/docs""#), "{overview}");
    let csrf = csrf_of(&overview);

    // A change without the CSRF token, with a wrong one, or from another
    // site is refused; with it, it is confirmed first.
    let table = ("table", "public.items");
    for (form, origin) in [
        (vec![table], None),
        (vec![table, ("csrf", "0".repeat(64).as_str())], None),
        (
            vec![table, ("csrf", csrf.as_str())],
            Some("http://evil.example"),
        ),
    ] {
        let (status, _, body) = post(&base, "/ui/advice/analyze", &cookie, &form, origin).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{form:?} {origin:?}: {body}");
    }
    // A browser's own word that the form came from another site.
    let cross_site = browser_like()
        .post(format!("{base}/ui/advice/analyze"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&[table, ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    let same_origin = format!("http://{}", agent.addr);
    let (status, _, body) = post(
        &base,
        "/ui/advice/analyze",
        &cookie,
        &[table, ("csrf", &csrf)],
        Some(&same_origin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("Run ANALYZE on public.items?"), "{body}");
    assert!(body.contains("name=\"confirmed\" value=\"yes\""), "{body}");
    // Confirmed, but this agent has no database: a clear 503 page.
    let (status, _, body) = post(
        &base,
        "/ui/advice/analyze",
        &cookie,
        &[table, ("csrf", &csrf), ("confirmed", "yes")],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("DATABASE_URL"), "{body}");
    // A missing table names the field.
    let (status, _, body) = post(
        &base,
        "/ui/advice/analyze",
        &cookie,
        &[("csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Field `table`"), "{body}");

    // A body past the limit is refused before it is read whole.
    // Only a 413 counts, read off the socket even when the server closed
    // it while this client was still sending (a reset, a refused
    // connection or any other transport error without a 413 fails).
    let (answer, sending) = post_oversized(agent.addr, "/ui/login", 2 * 1024 * 1024).await;
    assert!(
        answer.starts_with("HTTP/1.1 413 "),
        "a 2 MiB login body was answered {:?} (sending: {sending:?})",
        answer.lines().next().unwrap_or("nothing")
    );

    // Logging out needs the token too, clears the cookie and ends the
    // session server-side.
    let (status, _, _) = post(&base, "/ui/logout", &cookie, &[], None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, headers, _) = post(&base, "/ui/logout", &cookie, &[("csrf", &csrf)], None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        headers[SET_COOKIE]
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0")
    );
    let (status, headers, _) = get(&base, "/ui", Some(&cookie)).await;
    assert_eq!(
        (status, &headers[LOCATION]),
        (StatusCode::SEE_OTHER, &"/ui/login".parse().expect("value"))
    );
    agent.stop().await;
}

/// The demo (agent, app, throwaway Postgres, workload) served in this
/// runtime; its address once it listens.
async fn start_demo() -> (
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let raw = perfscope::config::RawConfig {
        listen: Some("127.0.0.1:0".into()),
        admin_token: Some(ADMIN_TOKEN.into()),
        runtime_sample_interval: Some("500".into()),
        ..Default::default()
    };
    let config = raw.validate().expect("valid");
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        perfscope::demo::run(
            config,
            async move {
                let _ = stopped.await;
            },
            move |addr, _| {
                let _ = bound_tx.send(addr);
            },
        )
        .await
        .expect("the demo runs");
    });
    let addr = tokio::time::timeout(Duration::from_secs(180), bound_rx)
        .await
        .expect("the demo starts within 3 minutes")
        .expect("the demo reports its address");
    (addr, stop, task)
}

async fn eventually_page(
    base: &str,
    path: &str,
    cookie: &str,
    wanted: &[&str],
    limit: Duration,
) -> String {
    let started = Instant::now();
    loop {
        let (status, _, body) = get(base, path, Some(cookie)).await;
        if status == StatusCode::OK && wanted.iter().all(|w| body.contains(w)) {
            return body;
        }
        assert!(
            started.elapsed() < limit,
            "{path} never showed {wanted:?}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_show_the_demo_workload_in_a_browser() {
    let (addr, stop, task) = start_demo().await;
    let base = format!("http://{addr}");
    let (cookie, _) = log_in(&base, ADMIN_TOKEN).await;
    let minute = Duration::from_secs(90);
    // The slow search by an unindexed column, its route, and the N+1.
    let queries = eventually_page(
        &base,
        "/ui/queries",
        &cookie,
        &[
            "from customers where email",
            "/demo/customers/search",
            "/demo/customers/:id/orders",
        ],
        minute,
    )
    .await;
    assert!(queries.contains("N+1 suspects"), "{queries}");
    // pg_stat_statements' row of the search names the route that ran it
    // (the app's pool saw it), not only the slow log's rows.
    let row_at = queries
        .find("select id, name from customers where email = $1")
        .expect("the search's statement");
    let row_end = row_at + queries[row_at..].find("</tr>").expect("its row ends");
    assert!(
        queries[row_at..row_end].contains("/demo/customers/search"),
        "{}",
        &queries[row_at..row_end]
    );
    // The index suggestion with its ready statement.
    let create = "CREATE INDEX CONCURRENTLY ON &quot;public&quot;.&quot;customers&quot; (&quot;email&quot;);";
    let advice = eventually_page(&base, "/ui/advice", &cookie, &[create], minute).await;
    assert!(advice.contains("data-copy="), "{advice}");
    // Routes with their figures and a sparkline once two samples are in.
    let overview = eventually_page(
        &base,
        "/ui",
        &cookie,
        &["/demo/customers/search", "<polyline", "demo"],
        Duration::from_secs(60),
    )
    .await;
    assert!(overview.contains("ms</td>"), "{overview}");
    let database = eventually_page(
        &base,
        "/ui/database",
        &cookie,
        &["pg_stat_statements"],
        minute,
    )
    .await;
    assert!(database.contains("PostgreSQL"), "{database}");
    assert!(database.contains(" · growth</span>"), "{database}");

    // ANALYZE from the Advice page: confirm, run, see the job.
    let csrf = csrf_of(&advice);
    let (status, _, confirm) = post(
        &base,
        "/ui/advice/analyze",
        &cookie,
        &[("table", "public.customers"), ("csrf", &csrf)],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        confirm.contains("Run ANALYZE on public.customers?"),
        "{confirm}"
    );
    let (status, headers, body) = post(
        &base,
        "/ui/advice/analyze",
        &cookie,
        &[
            ("table", "public.customers"),
            ("csrf", &csrf),
            ("confirmed", "yes"),
        ],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    let job = headers[LOCATION].to_str().expect("ascii").to_owned();
    assert!(job.starts_with("/ui/advice?job="), "{job}");
    eventually_page(
        &base,
        &job,
        &cookie,
        &["ANALYZE public.customers: Succeeded"],
        Duration::from_secs(30),
    )
    .await;

    let marker = browser::tour(&base).await;
    // The tour's driver is gone: so is every browser process it started.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = browser::processes_marked(&marker);
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "browser processes outlived the test: {left:?} ({marker})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(30), task)
        .await
        .expect("the demo stops")
        .expect("joins");
}

/// Eight seeded days of history (`perfscope::testing::history`) under the
/// agent binary watching a throwaway cluster: every page with a range, at
/// each range, in headless Chromium, with a screenshot each
/// (`target/ui-screenshots/history-<page>-<range>.png`).
#[cfg(feature = "store")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_week_shows_in_every_range_in_a_browser() {
    use perfscope::metrics::store::StoreMetrics;
    use perfscope::store::{Store, StoreSettings};
    use perfscope::testing::history::{Seed, seed};

    let cluster = support::pg::PgCluster::start();
    cluster.install().await;
    let (client, connection) =
        tokio_postgres::connect(&cluster.url("postgres", "postgres"), tokio_postgres::NoTls)
            .await
            .expect("connect");
    tokio::spawn(connection);
    // Three real statements, so the Queries page lists them; the seeder
    // gives them their history (the first one regresses after the deploy).
    for _ in 0..3 {
        // A little sleep each, so they are among the worst by mean.
        for (sql, value) in [
            (
                "SELECT pg_sleep(0.02), count(*) FROM pg_class WHERE relname = $1",
                "pg_proc",
            ),
            (
                "SELECT pg_sleep(0.02), count(*) FROM pg_attribute WHERE attname = $1",
                "oid",
            ),
            (
                "SELECT pg_sleep(0.02), count(*) FROM pg_namespace WHERE nspname = $1",
                "public",
            ),
        ] {
            client.query(sql, &[&value]).await.expect("query");
        }
    }
    let statements: Vec<(i64, String)> = client
        .query(
            "SELECT queryid, query FROM pg_stat_statements
             WHERE query LIKE 'SELECT pg_sleep($%), count(*) FROM pg_%'
             ORDER BY query LIKE '%pg_class%' DESC, query",
            &[],
        )
        .await
        .expect("pg_stat_statements")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    assert_eq!(statements.len(), 3, "{statements:?}");

    let dir = support::temp_dir("history-tour");
    let (store, task) = Store::open(
        StoreSettings::new(&dir, 256 << 20),
        std::sync::Arc::new(StoreMetrics::default()),
    );
    let seeded = seed(
        &store,
        &Seed {
            statements,
            ..Seed::of_days(8)
        },
    )
    .await;
    task.join().await;

    let url = cluster.url("perfscope", "postgres");
    let data_dir = dir.display().to_string();
    let (_agent, address, _logs) = support::spawn_agent(&[
        ("PERFSCOPE_DATA_DIR", &data_dir),
        ("DATABASE_URL", &url),
        ("PERFSCOPE_READ_INTERVAL", "1000"),
    ]);
    let base = format!("http://{address}");
    let cookie = support::ui_session(&base).await;
    support::eventually("the Queries page lists the seeded statements", async || {
        let (status, body) = support::ui_page(&base, "/ui/queries", &cookie).await;
        (status == 200 && body.contains("pg_class") && body.contains("pg_namespace")).then_some(())
    })
    .await;

    let marker = browser::ranges(&base, seeded.regressed).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !browser::processes_marked(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "browser processes outlived the test ({marker})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Headless Chromium through chromedriver, with the W3C WebDriver
/// protocol spoken directly (a handful of JSON calls; no client crate).
mod browser {
    use std::os::unix::process::CommandExt;
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use base64::Engine;
    use serde_json::{Value, json};

    use super::support::ADMIN_TOKEN;

    /// chromedriver and the browser it starts. Dropping it, on every path
    /// (pass, failed assertion, panic), ends the WebDriver session, kills
    /// chromedriver's process group (the browser and its helpers are in
    /// it), then kills any process still naming this run's profile
    /// directory (a helper that left the group), so no browser outlives
    /// the test.
    struct Driver {
        /// chromedriver, leader of its own process group.
        child: Child,
        base: String,
        session: Option<String>,
        http: reqwest::Client,
        /// The browser's `--user-data-dir`, unique to this run: it marks
        /// every browser process's command line.
        profile: PathBuf,
    }

    /// Processes (not zombies) whose command line contains `marker`.
    pub fn processes_marked(marker: &str) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                // A zombie's command line is empty: it holds nothing.
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(marker))
            })
            .collect()
    }

    fn kill(pid: i32) {
        // SAFETY: kill(2) with a pid (or a negated process group id) and a
        // signal number touches no memory of this process.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }

    /// Ends WebDriver session `session` at `address` with a plain blocking
    /// request (Drop cannot await), waiting at most a few seconds.
    fn end_session(address: &str, session: &str) {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(address) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let _ = write!(
            stream,
            "DELETE /session/{session} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let _ = stream.read_to_end(&mut Vec::new());
    }

    impl Drop for Driver {
        fn drop(&mut self) {
            if let Some(session) = self.session.take() {
                end_session(self.base.trim_start_matches("http://"), &session);
            }
            if let Ok(group) = i32::try_from(self.child.id()) {
                kill(-group);
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
            let marker = self.profile.display().to_string();
            let stragglers = processes_marked(&marker);
            for pid in &stragglers {
                if let Ok(pid) = i32::try_from(*pid) {
                    kill(pid);
                }
            }
            if !stragglers.is_empty() {
                eprintln!("killed browser processes outside chromedriver's group: {stragglers:?}");
            }
            let _ = std::fs::remove_dir_all(&self.profile);
        }
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port()
    }

    impl Driver {
        async fn start() -> Self {
            let port = free_port();
            // Its own process group, so the browser it starts can be killed
            // with it whatever happens to this test.
            let child = Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .process_group(0)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver (Debian package chromium-driver; tests/run.sh installs it)");
            let base = format!("http://127.0.0.1:{port}");
            let profile = std::env::temp_dir().join(format!(
                "perfscope-chromium-{}-{port}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0)
            ));
            // From here on, dropping it cleans up.
            let mut driver = Self {
                child,
                base: base.clone(),
                session: None,
                http: reqwest::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .expect("client"),
                profile: profile.clone(),
            };
            let http = driver.http.clone();
            let started = Instant::now();
            while http.get(format!("{base}/status")).send().await.is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "chromedriver never answered"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let capabilities = json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        "--disable-dev-shm-usage",
                        format!("--user-data-dir={}", profile.display()),
                        "--window-size=1280,1000",
                    ]
                }
            }}});
            let answer: Value = http
                .post(format!("{base}/session"))
                .json(&capabilities)
                .send()
                .await
                .expect("new session")
                .json()
                .await
                .expect("json");
            let session = answer["value"]["sessionId"]
                .as_str()
                .unwrap_or_else(|| panic!("no session: {answer}"))
                .to_owned();
            driver.session = Some(session);
            driver
        }

        /// The profile directory, which every browser process names.
        fn marker(&self) -> String {
            self.profile.display().to_string()
        }

        async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
            let url = format!(
                "{}/session/{}{path}",
                self.base,
                self.session.as_deref().unwrap_or_default()
            );
            let mut request = self.http.request(method, url);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let answer: Value = request
                .send()
                .await
                .expect("webdriver call")
                .json()
                .await
                .expect("json");
            if let Some(error) = answer["value"]["error"].as_str() {
                panic!("webdriver {path}: {error}: {}", answer["value"]["message"]);
            }
            answer["value"].clone()
        }

        async fn go(&self, url: &str) {
            self.call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
                .await;
        }

        async fn element(&self, css: &str) -> String {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            found
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .expect("an element id")
                .to_owned()
        }

        async fn text(&self, css: &str) -> String {
            let id = self.element(css).await;
            self.call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }

        async fn url(&self) -> String {
            self.call(reqwest::Method::GET, "/url", None)
                .await
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }

        async fn resize(&self, width: u32, height: u32) {
            self.call(
                reqwest::Method::POST,
                "/window/rect",
                Some(json!({"width": width, "height": height})),
            )
            .await;
        }

        /// Runs `script` (a function body) in the page; what it returns.
        async fn execute(&self, script: &str) -> Value {
            self.call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({ "script": script, "args": [] })),
            )
            .await
        }

        async fn screenshot(&self, name: &str) -> PathBuf {
            let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(png.as_str().expect("base64"))
                .expect("a PNG");
            assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
            let dir = super::support::repo_root().join("target/ui-screenshots");
            std::fs::create_dir_all(&dir).expect("screenshot dir");
            let path = dir.join(format!("{name}.png"));
            std::fs::write(&path, bytes).expect("write the screenshot");
            path
        }
    }

    /// Starts a browser and logs in through the form at `base`; the
    /// driver, on /ui.
    async fn logged_in(base: &str) -> Driver {
        let driver = Driver::start().await;
        // The marker does name the browser's processes (so the check after
        // the tour means something).
        assert!(
            !processes_marked(&driver.marker()).is_empty(),
            "no browser process names {}",
            driver.marker()
        );
        driver.go(&format!("{base}/ui")).await;
        assert!(
            driver.url().await.ends_with("/ui/login"),
            "no session: the login"
        );
        let token = driver.element("#token").await;
        driver
            .call(
                reqwest::Method::POST,
                &format!("/element/{token}/value"),
                Some(json!({ "text": ADMIN_TOKEN })),
            )
            .await;
        let submit = driver.element("form button[type=submit]").await;
        driver
            .call(
                reqwest::Method::POST,
                &format!("/element/{submit}/click"),
                Some(json!({})),
            )
            .await;
        let started = Instant::now();
        while !driver.url().await.ends_with("/ui") {
            if started.elapsed() > Duration::from_secs(10) {
                let shot = driver.screenshot("login-failed").await;
                panic!(
                    "the login never led to /ui: at {} showing {:?} ({})",
                    driver.url().await,
                    driver.text("body").await,
                    shot.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver
    }

    /// Logs in through the form and visits every page: the slow query and
    /// the index suggestion are on screen; a screenshot of each. The
    /// browser's marker (its profile directory), to check that nothing of
    /// it is left once this returns.
    pub async fn tour(base: &str) -> String {
        let driver = logged_in(base).await;
        let marker = driver.marker();
        driver.resize(1280, 1600).await;
        let overview = driver.text("main").await;
        assert!(overview.contains("/demo/customers/search"), "{overview}");
        driver.screenshot("overview").await;
        driver.go(&format!("{base}/ui/queries")).await;
        let queries = driver.text("main").await;
        assert!(queries.contains("customers where email"), "{queries}");
        driver.screenshot("queries").await;
        driver.go(&format!("{base}/ui/activity")).await;
        let activity = driver.text("main").await;
        assert!(activity.contains("sessions"), "{activity}");
        driver.screenshot("activity").await;
        driver.go(&format!("{base}/ui/advice")).await;
        let advice = driver.text("main").await;
        assert!(
            advice.contains("CREATE INDEX CONCURRENTLY ON \"public\".\"customers\" (\"email\");"),
            "{advice}"
        );
        driver.screenshot("advice").await;
        driver.go(&format!("{base}/ui/database")).await;
        let database = driver.text("main").await;
        assert!(database.contains("pg_stat_statements"), "{database}");
        driver.screenshot("database").await;
        // A narrow screen: the overview still reads.
        driver.resize(390, 1400).await;
        driver.go(&format!("{base}/ui")).await;
        let narrow = driver.screenshot("overview-narrow").await;
        println!(
            "screenshots in {}",
            narrow
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
        marker
    }
    /// What a page shows of its charts, read in the browser: each chart's
    /// accessible name, the row it sits in, its drawn points (polyline
    /// vertices and lone dots, `[x, y]`), its event markers (`[x, title]`)
    /// and its size; the range notices.
    const CHARTS: &str = r#"
        const charts = [...document.querySelectorAll('main svg.spark')].map(svg => ({
            label: svg.getAttribute('aria-label') || '',
            row: (svg.closest('tr') || svg.closest('.card') || svg).textContent,
            width: Number(svg.getAttribute('width')),
            height: Number(svg.getAttribute('height')),
            points: [...svg.querySelectorAll('polyline')]
                .flatMap(line => line.getAttribute('points').trim().split(/\s+/)
                    .map(xy => xy.split(',').map(Number)))
                .concat([...svg.querySelectorAll('circle')]
                    .map(c => [Number(c.getAttribute('cx')), Number(c.getAttribute('cy'))])),
            markers: [...svg.querySelectorAll('line.marker')]
                .map(line => [Number(line.getAttribute('x1')), line.textContent]),
        }));
        const notices = [...document.querySelectorAll('main p.notice.range')].map(p => p.textContent);
        return { charts, notices };
    "#;

    /// One chart as the page drew it.
    #[derive(Debug, serde::Deserialize)]
    struct Chart {
        label: String,
        row: String,
        width: f64,
        height: f64,
        points: Vec<[f64; 2]>,
        markers: Vec<(f64, String)>,
    }

    #[derive(Debug, serde::Deserialize)]
    struct Drawn {
        charts: Vec<Chart>,
        notices: Vec<String>,
    }

    impl Chart {
        /// Its points' share of the width covered, first to last, 0..=1.
        fn spread(&self) -> f64 {
            let xs = self.points.iter().map(|p| p[0]);
            let (min, max) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
            if self.points.is_empty() {
                0.0
            } else {
                (max - min) / self.width
            }
        }

        fn marked(&self, label: &str) -> Option<f64> {
            self.markers
                .iter()
                .find(|(_, title)| title.contains(label))
                .map(|(x, _)| *x)
        }
    }

    /// Logs in and loads the overview, the Queries page and the regressed
    /// statement's page at each range, then the database (growth) and plan
    /// changes pages: a screenshot each, and what their charts show checked
    /// against the seeded week. The browser's marker.
    pub async fn ranges(base: &str, regressed: i64) -> String {
        use perfscope::testing::history::{DEPLOY_LABEL, MARKER_LABEL, ROUTES};

        let driver = logged_in(base).await;
        let marker = driver.marker();
        driver.resize(1280, 1600).await;
        let statement = format!("/ui/explain?database=default&queryid={regressed}&");
        let pages = [
            ("overview", "/ui?".to_owned()),
            ("queries", "/ui/queries?".to_owned()),
            ("statement", statement),
        ];
        for range in ["1h", "24h", "7d", "30d"] {
            for (page, path) in &pages {
                driver.go(&format!("{base}{path}range={range}")).await;
                let drawn: Drawn = serde_json::from_value(driver.execute(CHARTS).await)
                    .expect("the charts as JSON");
                let shot = driver.screenshot(&format!("history-{page}-{range}")).await;
                let at = format!("{page} at {range} ({})", shot.display());
                // The hour is this process's own (the overview's and the Queries
                // page's): it may have no chart yet.
                assert!(
                    range == "1h" || !drawn.charts.is_empty(),
                    "{at}: no chart: {drawn:?}"
                );
                // The deploy (3 days ago) is on the 7 d and 30 d charts, the
                // marker (6 hours ago) from 24 h on; neither on the hour's.
                let with = |label: &str| {
                    drawn
                        .charts
                        .iter()
                        .filter(|c| c.marked(label).is_some())
                        .count()
                };
                let (deploys, markers) = (with(DEPLOY_LABEL), with(MARKER_LABEL));
                match range {
                    "1h" => assert_eq!((deploys, markers), (0, 0), "{at}: {drawn:?}"),
                    "24h" => assert!(deploys == 0 && markers > 0, "{at}: {drawn:?}"),
                    _ => assert!(deploys > 0 && markers > 0, "{at}: {drawn:?}"),
                }
                // 30 days asked of 8 days kept: the page says so.
                let short = drawn.notices.iter().any(|n| {
                    n.contains("Not enough history for the last 30 days")
                        && n.contains("goes back 8.")
                });
                assert_eq!(short, range == "30d", "{at}: {:?}", drawn.notices);
                if range == "7d" {
                    week(page, &drawn, &at);
                }
                if range == "30d" && *page == "statement" {
                    // Eight days of thirty: the points start past the
                    // chart's first two thirds.
                    let mean = mean_chart(&drawn, &at);
                    let first = mean.points.iter().map(|p| p[0]).fold(f64::MAX, f64::min);
                    assert!(first > 0.6 * mean.width, "{at}: {mean:?}");
                }
            }
        }
        // The overview at 7 d: every seeded route is a row.
        driver.go(&format!("{base}/ui?range=7d")).await;
        let overview = driver.text("main").await;
        for (method, route) in ROUTES {
            assert!(overview.contains(route), "{method} {route}: {overview}");
        }
        driver.go(&format!("{base}/ui/database")).await;
        let database = driver.text("main").await;
        for table in ["public.events", "public.orders", "public.orders_pkey"] {
            assert!(database.contains(table), "{table}: {database}");
        }
        // The seeded linear growth, as the trend reads it.
        assert!(database.contains("+60.0 MiB/day"), "{database}");
        // The growth section, where the seeded sizes are.
        driver
            .execute("document.querySelector('main section.growth').scrollIntoView(); return null;")
            .await;
        driver.screenshot("history-database").await;
        driver.go(&format!("{base}/ui/plan-changes")).await;
        let plans = driver.text("main").await;
        assert!(plans.contains("Plan changes"), "{plans}");
        driver.screenshot("history-plan-changes").await;
        marker
    }

    /// The statement page's mean-time chart.
    fn mean_chart<'a>(drawn: &'a Drawn, at: &str) -> &'a Chart {
        drawn
            .charts
            .iter()
            .find(|c| c.row.contains("Mean time per call"))
            .unwrap_or_else(|| panic!("{at}: no mean time chart: {drawn:?}"))
    }

    /// The checks at 7 days: points over the whole week, and the regressed
    /// statement's mean rising after the deploy.
    fn week(page: &str, drawn: &Drawn, at: &str) {
        use perfscope::testing::history::{DEPLOY_LABEL, ROUTES, SLOW_ROUTE};
        // A point an hour: 169 steps, of which the seeded week fills all.
        let full = |chart: &Chart| chart.points.len() >= 160 && chart.spread() > 0.97;
        match page {
            "overview" => {
                for (method, route) in ROUTES {
                    let name = format!("p95 of {method} {route}");
                    let chart = drawn
                        .charts
                        .iter()
                        .find(|c| c.label == name)
                        .unwrap_or_else(|| panic!("{at}: no chart {name}: {drawn:?}"));
                    assert!(full(chart), "{at}: {chart:?}");
                }
                // The slow route's p95 is higher (y lower) after the deploy.
                let name = format!("p95 of {} {}", SLOW_ROUTE.0, SLOW_ROUTE.1);
                let chart = drawn
                    .charts
                    .iter()
                    .find(|c| c.label == name)
                    .expect("the slow route");
                rises(chart, at);
            }
            "queries" => {
                let charts: Vec<&Chart> = drawn
                    .charts
                    .iter()
                    .filter(|c| c.row.to_lowercase().contains("count(*) from pg_"))
                    .collect();
                assert!(
                    charts.len() >= 3,
                    "{at}: the seeded statements' rows: {:?}",
                    drawn
                        .charts
                        .iter()
                        .map(|c| c.row.chars().take(60).collect::<String>())
                        .collect::<Vec<_>>()
                );
                for chart in charts {
                    assert!(full(chart), "{at}: {chart:?}");
                }
                let regressed = drawn
                    .charts
                    .iter()
                    .find(|c| c.row.contains("pg_class"))
                    .expect("the regressed statement's row");
                rises(regressed, at);
            }
            _ => {
                let mean = mean_chart(drawn, at);
                assert!(full(mean), "{at}: {mean:?}");
                assert!(mean.marked(DEPLOY_LABEL).is_some(), "{at}: {mean:?}");
                rises(mean, at);
            }
        }
    }

    /// The chart's line is higher (smaller y) after its deploy marker than
    /// before it, by more than a quarter of its height.
    fn rises(chart: &Chart, at: &str) {
        use perfscope::testing::history::DEPLOY_LABEL;
        let deploy = chart
            .marked(DEPLOY_LABEL)
            .unwrap_or_else(|| panic!("{at}: no deploy marker on {chart:?}"));
        let mean_y = |side: &dyn Fn(f64) -> bool| {
            let ys: Vec<f64> = chart
                .points
                .iter()
                .filter(|p| side(p[0]))
                .map(|p| p[1])
                .collect();
            assert!(
                ys.len() > 10,
                "{at}: too few points on one side of the deploy: {chart:?}"
            );
            ys.iter().sum::<f64>() / ys.len() as f64
        };
        let before = mean_y(&|x| x < deploy - 2.0);
        let after = mean_y(&|x| x > deploy + 2.0);
        assert!(
            before - after > chart.height / 4.0,
            "{at}: {} does not rise after the deploy (mean y {before:.1} before, {after:.1} after)",
            chart.label
        );
    }
}
