//! Shared helpers of the integration tests: an agent served in-process on a
//! real loopback socket, the agent binary as a child process, and the
//! external tools (Python's OpenMetrics parser, Prometheus) that
//! `bash tests/run.sh` installs.

#![allow(dead_code)]

#[cfg(feature = "postgres")]
pub mod ash;
pub mod otlp;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod pgbouncer;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use perfscope::config::{Config, RawConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// An agent served by this test's runtime on 127.0.0.1:0.
pub struct TestAgent {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), perfscope::agent::AgentError>>,
}

impl TestAgent {
    /// Starts an agent with both tokens and `tweak` applied to its raw config.
    pub async fn start_with(tweak: impl FnOnce(&mut RawConfig)) -> Self {
        let mut raw = RawConfig {
            listen: Some("127.0.0.1:0".into()),
            admin_token: Some(ADMIN_TOKEN.into()),
            metrics_token: Some(METRICS_TOKEN.into()),
            runtime_sample_interval: Some("200".into()),
            // Each agent its own history store, never the working directory.
            data_dir: Some(temp_dir("agent-history").display().to_string()),
            ..Default::default()
        };
        tweak(&mut raw);
        let config: Config = raw.validate().expect("test config is valid");
        let (bound_tx, bound_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(perfscope::agent::serve(
            config,
            async move {
                let _ = stopped.await;
            },
            move |addr| {
                let _ = bound_tx.send(addr);
            },
        ));
        let addr = tokio::time::timeout(Duration::from_secs(10), bound_rx)
            .await
            .expect("agent binds within 10 s")
            .expect("agent reports its address");
        Self {
            addr,
            stop: Some(stop),
            task,
        }
    }

    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs `body` (JSON, or nothing) to `path` with the admin token: the
    /// status and the JSON answer (`Null` when there is none).
    pub async fn admin_post(
        &self,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = client().post(self.url(path)).bearer_auth(ADMIN_TOKEN);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// GETs `path` with `query` and the admin token: the status and the
    /// JSON answer (`Null` when there is none), or `None` when the request
    /// itself failed (for `eventually`).
    pub async fn admin_get(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Option<(reqwest::StatusCode, serde_json::Value)> {
        let response = client()
            .get(self.url(path))
            .query(query)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?;
        let status = response.status();
        Some((
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        ))
    }

    /// GETs `path` with the admin token: its JSON answer, or `None` while
    /// the request fails or the answer is not JSON (for `eventually`).
    pub async fn admin_json(&self, path: &str) -> Option<serde_json::Value> {
        client()
            .get(self.url(path))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// The metrics exposition, read with the admin token.
    pub async fn metrics(&self) -> String {
        client()
            .get(self.url("/api/performance/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("text")
    }

    /// Stops the agent and waits until it has shut down.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("agent stops within 15 s")
            .expect("agent task joins")
            .expect("agent served without error");
    }
}

/// A host app: the agent's routes plus `routes` of the test's own, served
/// for a `Perfscope` the test built (through `agent::serve_with`, which
/// starts its background tasks and, on stop, joins them).
pub struct HostApp {
    pub base: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl HostApp {
    pub async fn start(perfscope: &perfscope::Perfscope, routes: poem::Route) -> Self {
        let (bound_tx, bound_rx) = oneshot::channel();
        let (stop, stopped) = oneshot::channel::<()>();
        let perfscope = perfscope.clone();
        let task = tokio::spawn(async move {
            perfscope::agent::serve_with(
                &perfscope,
                routes,
                async move {
                    let _ = stopped.await;
                },
                move |addr| {
                    let _ = bound_tx.send(addr);
                },
            )
            .await
            .expect("served");
        });
        let addr = tokio::time::timeout(Duration::from_secs(10), bound_rx)
            .await
            .expect("binds within 10 s")
            .expect("reports its address");
        Self {
            base: format!("http://{addr}"),
            stop,
            task,
        }
    }

    /// Stops it and waits until it has shut down (sinks flushed).
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("the app stops");
    }
}

/// Waits until `probe` holds, polling every 50 ms, failing after `limit`.
pub async fn until(what: &str, limit: Duration, mut probe: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + limit;
    while !probe() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Serves `app` on 127.0.0.1:0 in the background (a receiver for the
/// sinks under test); its address.
pub async fn serve_loopback(app: impl poem::Endpoint + 'static) -> SocketAddr {
    use poem::listener::{Acceptor, Listener};
    let acceptor = poem::listener::TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .expect("bind a loopback port");
    let addr = acceptor
        .local_addr()
        .into_iter()
        .find_map(|a| a.as_socket_addr().copied())
        .expect("a socket address");
    tokio::spawn(poem::Server::new_with_acceptor(acceptor).run(app));
    addr
}

/// A loopback port that accepts connections and never reads or answers
/// them (a sink that is black-holed); its address.
pub async fn black_hole() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let addr = listener.local_addr().expect("a socket address");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python with `prometheus_client` that tests/run.sh prepares.
pub fn python() -> PathBuf {
    if let Ok(python) = std::env::var("PERFSCOPE_TEST_PYTHON") {
        return PathBuf::from(python);
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: run `bash tests/run.sh`, which creates it with the test tools",
        venv.display()
    );
    venv
}

/// A tool on PATH, or a clear failure saying how to get it.
pub fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!("`{name}` is not installed: run `bash tests/run.sh`, which installs it")
        })
}

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A fresh temporary directory under the target dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The agent binary this test run built.
pub const BIN: &str = env!("CARGO_BIN_EXE_perfscope");

/// Kills a child process when dropped, so a failing test leaves nothing
/// running.
pub struct Reaper(pub std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `examples/<name>`, built (or found fresh) by cargo with the features of
/// the README's test command, so a stale binary is never run.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = std::process::Command::new(cargo)
        .args(["build", "--quiet", "--example", name, "--all-features"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cargo build --example {name}");
    profile_dir.join("examples").join(name)
}

/// The agent binary with a clean environment and piped output.
pub fn agent_command() -> std::process::Command {
    let mut command = std::process::Command::new(BIN);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        // Its own history store, never the working directory.
        .env("PERFSCOPE_DATA_DIR", temp_dir("agent-history"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    command
}

/// Starts the binary on port 0 with JSON logs and returns it with the
/// address it logged.
pub fn spawn_agent(
    extra: &[(&str, &str)],
) -> (Reaper, String, std::thread::JoinHandle<Vec<String>>) {
    let mut command = agent_command();
    command
        .env("PERFSCOPE_LISTEN", "127.0.0.1:0")
        .env("PERFSCOPE_LOG_FORMAT", "json")
        .env("PERFSCOPE_ADMIN_TOKEN", ADMIN_TOKEN);
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    let logs = std::thread::spawn(move || {
        let mut lines = Vec::new();
        let mut sent = false;
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
            if !sent
                && let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
                && entry["fields"]["message"] == "perfscope listening"
            {
                let _ = tx.send(entry["fields"]["address"].as_str().unwrap_or("").to_owned());
                sent = true;
            }
            lines.push(line);
        }
        lines
    });
    let address = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the agent logs its address as JSON");
    (Reaper(child), address, logs)
}

/// Resident memory of process `pid` (this one: `std::process::id()`).
pub fn resident_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .expect("VmRSS in /proc/<pid>/status")
        * 1024
}

/// What a Sentry envelope receiver got: each item as (type, payload), and
/// the raw text (to search for what must not be there).
#[derive(Default)]
pub struct SentryInbox {
    pub items: parking_lot::Mutex<Vec<(String, serde_json::Value)>>,
    pub raw: parking_lot::Mutex<String>,
}

impl SentryInbox {
    /// The payloads of the items of `kind` (`transaction`, `event`).
    pub fn of(&self, kind: &str) -> Vec<serde_json::Value> {
        self.items
            .lock()
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

#[poem::handler]
async fn sentry_envelope(
    body: Vec<u8>,
    inbox: poem::web::Data<&std::sync::Arc<SentryInbox>>,
) -> &'static str {
    let text = String::from_utf8_lossy(&body).into_owned();
    inbox.raw.lock().push_str(&text);
    let mut lines = text.lines().skip(1);
    while let Some(item_header) = lines.next() {
        let Ok(header) = serde_json::from_str::<serde_json::Value>(item_header) else {
            continue;
        };
        let kind = header["type"].as_str().unwrap_or("").to_owned();
        let payload = lines.next().unwrap_or("");
        let value = serde_json::from_str(payload).unwrap_or(serde_json::Value::Null);
        inbox.items.lock().push((kind, value));
    }
    "{}"
}

/// A Sentry receiver on loopback speaking the envelope endpoint; its DSN
/// and inbox.
pub async fn sentry_receiver() -> (String, std::sync::Arc<SentryInbox>) {
    use poem::EndpointExt;
    let inbox = std::sync::Arc::new(SentryInbox::default());
    let app = poem::Route::new()
        .at("/api/1/envelope/", poem::post(sentry_envelope))
        .data(inbox.clone());
    let addr = serve_loopback(app).await;
    (format!("http://public@{addr}/1"), inbox)
}

/// Logs in to the web pages at `base` with the admin token; the session
/// cookie as a `Cookie` header value (`perfscope_session=…`).
pub async fn ui_session(base: &str) -> String {
    let login = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{base}/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN_TOKEN}"))
        .send()
        .await
        .expect("login");
    assert_eq!(login.status().as_u16(), 303, "logged in");
    login.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("a pair")
        .to_owned()
}

/// A page of the web pages with the session `cookie`: status and body.
pub async fn ui_page(base: &str, path: &str, cookie: &str) -> (u16, String) {
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// POSTs a form of the web pages with the session `cookie`: status,
/// `Location` and body.
pub async fn ui_post(
    base: &str,
    path: &str,
    cookie: &str,
    form: &[(&str, &str)],
) -> (u16, Option<String>, String) {
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.replace('%', "%25")
                    .replace('&', "%26")
                    .replace('=', "%3D")
                    .replace('+', "%2B")
                    .replace(' ', "+")
            )
        })
        .collect();
    let response = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .expect("post");
    let status = response.status().as_u16();
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    (status, location, response.text().await.expect("body"))
}

/// The CSRF token the forms of a page carry.
pub fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token");
    page[at + 19..at + 19 + 64].to_owned()
}

/// Polls `probe` every 100 ms until it gives a value; panics naming `what`
/// after 30 s.
pub async fn eventually<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts an error answer: `status`, and a `message` naming `fragment`
/// (the field or the reason).
#[track_caller]
pub fn assert_refused(
    status: reqwest::StatusCode,
    answer: &serde_json::Value,
    expected: reqwest::StatusCode,
    fragment: &str,
) {
    assert_eq!(status, expected, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .is_some_and(|m| m.contains(fragment)),
        "{answer}"
    );
}

/// The status of a GET of `url`.
pub async fn status_of(url: &str) -> u16 {
    client()
        .get(url)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

/// The count of `http_request_duration_seconds` for one method, route and
/// status in the exposition `text` (0 when the series is absent).
pub fn request_count(text: &str, method: &str, route: &str, status: u16) -> u64 {
    let prefix = format!(
        "http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\",status_code=\"{status}\"}} "
    );
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map_or(0, |n| n.trim().parse().expect("a count"))
}

/// Serves an axum `app` on a loopback port until the test ends; its base
/// URL.
pub async fn serve_axum(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// Reads a child's `stdout` until it has printed a line starting with each
/// of `prefixes`: the rest of each line, in the order of `prefixes`.
pub async fn printed(
    stdout: std::process::ChildStdout,
    prefixes: &'static [&'static str],
) -> Vec<String> {
    use std::io::BufRead;
    tokio::task::spawn_blocking(move || {
        let mut found = vec![None; prefixes.len()];
        let mut lines = std::io::BufReader::new(stdout).lines();
        while found.iter().any(Option::is_none) {
            let line = lines
                .next()
                .expect("the child prints its addresses")
                .expect("a line");
            for (slot, prefix) in found.iter_mut().zip(prefixes) {
                if let Some(rest) = line.strip_prefix(prefix) {
                    *slot = Some(rest.to_owned());
                }
            }
        }
        found.into_iter().flatten().collect()
    })
    .await
    .expect("reader")
}
