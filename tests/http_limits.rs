//! The HTTP limits of the agent's own listener, over real sockets:
//!
//! - HTTP/2 is refused: hundreds of connections that send only its preface
//!   are closed at once (the agent's descriptors come back down), and a
//!   half-sent preface is cut at `PERFSCOPE_HEADER_TIMEOUT`; over TLS, ALPN
//!   offers HTTP/1.1 only.
//! - A body dribbled a byte at a time is cut at `PERFSCOPE_BODY_TIMEOUT`
//!   with a 408 and the connection closed.
//! - Past `PERFSCOPE_MAX_HTTP_CONNECTIONS` a new connection waits (counted)
//!   and is served when a slot frees.
//! - The pages' POSTs refuse `Origin: null`.
//! - Failed logins are limited per address (429 with `Retry-After`, even
//!   for the right token), while another address logs in.
//! - Every 405 carries `Allow`, templated paths included.
//! - `perfscope demo` never prints an admin token the operator set.

mod support;

use std::time::{Duration, Instant};

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use support::{ADMIN_TOKEN, TestAgent, client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame, as a client sends right after the preface.
const H2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];

/// Open descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Reads until the peer closes (or resets) or `limit` passes; what was
/// read and whether it closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
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

/// Waits for `probe` with a deadline of `limit`, naming `what` on failure.
async fn within(what: &str, limit: Duration, mut probe: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !probe() {
        assert!(Instant::now() < deadline, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_preface_floods_are_closed_and_tls_offers_only_http_1_1() {
    const FLOOD: usize = 300;
    const HALF: usize = 50;
    let (agent, address, _logs) = support::spawn_agent(&[("PERFSCOPE_HEADER_TIMEOUT", "1000")]);
    let pid = agent.0.id();
    let healthz = format!("http://{address}/healthz");
    // The agent at rest (its first requests served).
    for _ in 0..3 {
        let status = client().get(&healthz).send().await.map(|r| r.status());
        assert!(matches!(status, Ok(s) if s.is_success()), "{status:?}");
    }
    let baseline = open_fds(pid);

    // Preface-only connections: refused as soon as the preface is in.
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream.write_all(H2_PREFACE).await.expect("preface");
        stream.write_all(H2_SETTINGS).await.expect("settings");
        flood.push(stream);
    }
    // Half a preface: a slow head like any other, cut at the head deadline.
    let mut halves = Vec::new();
    for _ in 0..HALF {
        let mut stream = TcpStream::connect(&address).await.expect("connect");
        stream.write_all(&H2_PREFACE[..10]).await.expect("part");
        halves.push(stream);
    }
    let started = Instant::now();
    let peak = open_fds(pid);
    let readers: Vec<_> = flood
        .into_iter()
        .chain(halves)
        .map(|mut stream| {
            tokio::spawn(async move {
                // Half a preface gets the 1 s head deadline; 5 s is plenty.
                read_until_closed(&mut stream, Duration::from_secs(5)).await
            })
        })
        .collect();
    let mut closed = 0;
    for reader in readers {
        let (got, was_closed) = reader.await.expect("reader");
        assert!(
            !got.contains("HTTP/"),
            "an HTTP/2 client got an answer: {got}"
        );
        closed += usize::from(was_closed);
    }
    let cut_after = started.elapsed();
    assert_eq!(
        closed,
        FLOOD + HALF,
        "connections left open after the head deadline"
    );
    within(
        "the agent's descriptors back at their baseline",
        Duration::from_secs(5),
        || open_fds(pid) <= baseline + 5,
    )
    .await;
    eprintln!(
        "HTTP/2 flood: {FLOOD} preface-only + {HALF} half-preface connections all closed within {cut_after:?} \
         (head timeout 1 s); agent fds {baseline} at rest, {peak} at most while reading, {} after",
        open_fds(pid)
    );
    let status = client().get(&healthz).send().await.map(|r| r.status());
    assert!(matches!(status, Ok(s) if s.is_success()), "{status:?}");
    drop(agent);

    #[cfg(feature = "tls")]
    {
        use std::process::Command;
        use support::tool;
        let dir = support::temp_dir("h2-tls");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new(tool("openssl"))
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs");
        assert!(made.status.success());
        let (_agent, address, _logs) = support::spawn_agent(&[
            ("PERFSCOPE_TLS_CERT", cert.to_str().expect("utf-8")),
            ("PERFSCOPE_TLS_KEY", key.to_str().expect("utf-8")),
        ]);
        // curl asks for h2 by ALPN; the agent must pick HTTP/1.1.
        let output = Command::new(tool("curl"))
            .args(["-sS", "--http2", "--max-time", "10", "-o", "/dev/null"])
            .args(["-w", "%{http_version} %{http_code}", "--cacert"])
            .arg(&cert)
            .arg(format!("https://{address}/healthz"))
            .output()
            .expect("curl runs");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "1.1 200",
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dribbled_body_is_cut_at_the_body_deadline() {
    let agent = TestAgent::start_with(|raw| {
        raw.header_timeout = Some("1000".into());
        raw.body_timeout = Some("1500".into());
    })
    .await;
    let body = r#"{"operation": "GET /users/:id", "duration": 12}"#;
    let mut stream = TcpStream::connect(agent.addr).await.expect("connect");
    stream
        .write_all(
            format!(
                "POST /api/performance/analyze HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .expect("head");
    let started = Instant::now();
    // One byte every 400 ms: the body would take 19 s.
    let (got, closed) = {
        let (mut reader, mut writer) = stream.split();
        let dribble = async {
            for byte in body.as_bytes() {
                if writer.write_all(&[*byte]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(400)).await;
            }
            std::future::pending::<()>().await;
        };
        let read = async {
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            let deadline = tokio::time::Instant::now() + Duration::from_secs(8);
            loop {
                match tokio::time::timeout_at(deadline, reader.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        return (String::from_utf8_lossy(&got).into_owned(), true);
                    }
                    Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
                    Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
                }
            }
        };
        tokio::select! {
            result = read => result,
            () = dribble => unreachable!(),
        }
    };
    let elapsed = started.elapsed();
    eprintln!("dribbled body: answered and closed after {elapsed:?} (body timeout 1.5 s)");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("PERFSCOPE_BODY_TIMEOUT"), "{got}");
    assert!(closed, "the connection stayed open after the 408");
    assert!(elapsed < Duration::from_secs(8), "{elapsed:?}");

    // A body that arrives in time, even split, is served.
    let response = client()
        .post(agent.url("/api/performance/analyze"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("analyze");
    assert!(response.status().is_success(), "{}", response.status());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_a_connection_waits_and_is_counted() {
    const CAP: usize = 4;
    let config = RawConfig {
        listen: Some("127.0.0.1:0".into()),
        max_http_connections: Some(CAP.to_string()),
        header_timeout: Some("30000".into()),
        ..Default::default()
    }
    .validate()
    .expect("config");
    let perfscope = Perfscope::new(config);
    let app = support::HostApp::start(&perfscope, poem::Route::new()).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let http = perfscope.http_metrics();
    assert_eq!(http.connections_limit.get(), CAP as i64);

    // CAP silent connections take every slot (the head deadline is 30 s).
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    within("every slot taken", Duration::from_secs(10), || {
        http.connections.open.get() == CAP as i64
    })
    .await;

    // One more: the kernel completes the handshake, the agent does not
    // take it, and it waits (counted).
    let mut waiting = TcpStream::connect(&addr).await.expect("connect");
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("request");
    within("the wait counted", Duration::from_secs(10), || {
        http.connections.waits.get() == 1
    })
    .await;
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(700), waiting.read(&mut buf)).await;
    assert!(early.is_err(), "served past the cap: {early:?}");
    assert_eq!(http.connections.open.get(), CAP as i64);

    // A slot frees: the waiting connection is served.
    drop(held.pop());
    let (got, closed) = read_until_closed(&mut waiting, Duration::from_secs(10)).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    assert!(closed);
    drop(held);
    within("every connection closed", Duration::from_secs(10), || {
        http.connections.open.get() == 0
    })
    .await;
    app.stop().await;
}

/// Posts `form` to `/ui{path}` with `origin`, from `local` when given.
async fn ui_form(
    base: &str,
    path: &str,
    form: &[(&str, &str)],
    headers: &[(&str, &str)],
    local: Option<std::net::IpAddr>,
) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let mut request = client.post(format!("{base}/ui{path}")).form(form);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("post")
}

#[cfg(feature = "ui")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_refuse_origin_null() {
    let agent = TestAgent::start().await;
    let base = format!("http://{}", agent.addr);
    // The right token, from an opaque origin: refused, no session.
    for headers in [
        &[("origin", "null")][..],
        &[("origin", "null"), ("sec-fetch-site", "same-origin")][..],
    ] {
        let refused = ui_form(&base, "/login", &[("token", ADMIN_TOKEN)], headers, None).await;
        assert_eq!(refused.status(), 403, "{headers:?}");
        assert!(refused.headers().get("set-cookie").is_none());
    }
    // With a session and its CSRF token, a change from `null` is refused.
    let cookie = support::ui_session(&base).await;
    let (_, overview) = support::ui_page(&base, "/ui", &cookie).await;
    let csrf = support::csrf_of(&overview);
    let refused = ui_form(
        &base,
        "/logout",
        &[("csrf", &csrf)],
        &[("origin", "null"), ("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(refused.status(), 403);
    // The same with the page's own origin goes through.
    let origin = base.clone();
    let done = ui_form(
        &base,
        "/logout",
        &[("csrf", &csrf)],
        &[("origin", &origin), ("cookie", &cookie)],
        None,
    )
    .await;
    assert_eq!(done.status(), 303);
    agent.stop().await;
}

#[cfg(feature = "ui")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_limited_per_address() {
    use perfscope::ui::login_limit::{FAILURES_PER_ADDRESS, WINDOW};
    let agent = TestAgent::start().await;
    let base = format!("http://{}", agent.addr);
    let first: std::net::IpAddr = "127.0.0.1".parse().expect("ip");
    let second: std::net::IpAddr = "127.0.0.2".parse().expect("ip");
    for _ in 0..FAILURES_PER_ADDRESS {
        let wrong = ui_form(
            &base,
            "/login",
            &[("token", "not-the-token")],
            &[],
            Some(first),
        )
        .await;
        assert_eq!(wrong.status(), 401);
    }
    // Over the limit: 429 with Retry-After, even for the right token.
    for token in ["not-the-token", ADMIN_TOKEN] {
        let limited = ui_form(&base, "/login", &[("token", token)], &[], Some(first)).await;
        assert_eq!(limited.status(), 429);
        assert!(limited.headers().get("set-cookie").is_none());
        let retry: u64 = limited
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("a Retry-After in seconds");
        assert!((1..=WINDOW.as_secs()).contains(&retry), "{retry}");
    }
    // Another address logs in with the right token.
    let other = ui_form(
        &base,
        "/login",
        &[("token", ADMIN_TOKEN)],
        &[],
        Some(second),
    )
    .await;
    assert_eq!(other.status(), 303);
    assert!(other.headers().get("set-cookie").is_some());
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_405_carries_allow() {
    let agent = TestAgent::start().await;
    let mut cases = vec![
        ("DELETE", "/healthz", "GET, HEAD"),
        ("PUT", "/api/performance/analyze", "POST"),
    ];
    #[cfg(feature = "postgres")]
    cases.extend([
        ("TRACE", "/api/performance/activity/12/cancel", "POST"),
        ("GET", "/api/performance/activity/12/terminate", "POST"),
        ("DELETE", "/api/performance/activity", "GET, HEAD"),
    ]);
    #[cfg(feature = "ui")]
    cases.extend([
        ("PUT", "/ui/login", "GET, HEAD, POST"),
        ("TRACE", "/ui/logout", "POST"),
        ("DELETE", "/ui/queries", "GET, HEAD"),
    ]);
    for (method, path, allow) in cases {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = client()
            .request(method.clone(), agent.url(path))
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(
            response
                .headers()
                .get("allow")
                .and_then(|v| v.to_str().ok()),
            Some(allow),
            "{method} {path}"
        );
    }
    agent.stop().await;
}

/// `perfscope demo` with the operator's own token: it is never printed.
#[cfg(feature = "postgres")]
#[test]
fn the_demo_never_prints_the_operators_token() {
    use std::io::{BufRead, BufReader};
    const GIVEN: &str = "operator-chosen-token-5e1f0c0ffee";
    let mut command = support::agent_command();
    command
        .arg("demo")
        .env("PERFSCOPE_LISTEN", "127.0.0.1:0")
        .env("PERFSCOPE_ADMIN_TOKEN", GIVEN);
    let mut child = support::Reaper(command.spawn().expect("demo starts"));
    let stdout = child.0.stdout.take().expect("stdout");
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let last = line.trim_start().starts_with("try:");
        printed.push(line);
        if last {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(
        text.contains("admin token:"),
        "the demo never got ready: {text}"
    );
    assert!(
        !text.contains(GIVEN),
        "the demo printed the operator's token:\n{text}"
    );
    assert!(text.contains("$PERFSCOPE_ADMIN_TOKEN"), "{text}");
    // The token works though it was not shown.
    let base = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Swagger UI:"))
        .map(|url| url.trim().trim_end_matches("/docs").to_owned())
        .expect("the Swagger UI line");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let status = runtime.block_on(async {
        client()
            .get(format!("{base}/api/performance/slow-queries"))
            .bearer_auth(GIVEN)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    assert_eq!(status.ok(), Some(200));
}
