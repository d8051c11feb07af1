//! Logs an operator can read, against a real cluster and the real binary:
//! every database error names Postgres' own reason and SQLSTATE (or the
//! socket's), a reader or health check that keeps failing is not logged on
//! every tick, and logs written to a pipe carry no ANSI colour codes.

#![cfg(feature = "postgres")]

mod support;

use std::io::BufRead;

use perfscope::db::{PoolSettings, TimedPool};
use support::pg::PgCluster;
use support::{ADMIN_TOKEN, Reaper, agent_command, client, eventually, free_port};

async fn pool(url: &str) -> TimedPool {
    perfscope::Perfscope::new(perfscope::Config::default())
        .connect_pool(
            url,
            PoolSettings {
                min: 0,
                max: 1,
                ..Default::default()
            },
        )
        .await
        .expect("the pool is built")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_name_the_server_reason_and_its_sqlstate() {
    let cluster = PgCluster::start();

    // A connection the server refuses: the pool error says why.
    let missing = pool(&cluster.url("postgres", "no_such_db")).await;
    let error = match missing.get().await {
        Ok(_) => panic!("a missing database cannot be connected to"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("database \"no_such_db\" does not exist (SQLSTATE 3D000)"),
        "{error}"
    );
    assert!(!error.contains("db error"), "{error}");
    // The same through a reader's error type.
    let error = match missing.get().await {
        Ok(_) => panic!("still missing"),
        Err(error) => perfscope::pg::ReadError::from(error).to_string(),
    };
    assert!(error.contains("(SQLSTATE 3D000)"), "{error}");

    // A failing statement.
    let good = pool(&cluster.url("postgres", "postgres")).await;
    let client = good.get().await.expect("a connection");
    let error = client
        .query_one("SELECT 1 / 0", &[])
        .await
        .map(|_| ())
        .map_err(perfscope::db::DbError::from)
        .expect_err("division by zero");
    assert_eq!(
        error.to_string(),
        "division by zero (SQLSTATE 22012)",
        "{error:?}"
    );

    // No server at all: the socket's reason, not just "error connecting".
    let port = free_port();
    let nobody = pool(&format!(
        "postgres://postgres@127.0.0.1:{port}/postgres?connect_timeout=2"
    ))
    .await;
    let error = match nobody.get().await {
        Ok(_) => panic!("nothing listens on {port}"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("Connection refused"), "{error}");
}

/// Starts the binary with text logs on a pipe, collecting its stderr.
fn spawn_text_agent(
    extra: &[(&str, &str)],
) -> (Reaper, String, std::thread::JoinHandle<Vec<String>>) {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut command = agent_command();
    command
        .env("PERFSCOPE_LISTEN", &listen)
        .env("PERFSCOPE_LOG_FORMAT", "text")
        .env("PERFSCOPE_ADMIN_TOKEN", ADMIN_TOKEN);
    for (k, v) in extra {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let lines = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .collect()
    });
    (Reaper(child), format!("http://{listen}"), lines)
}

fn counter(scrape: &str, sample: &str) -> f64 {
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(sample)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The agent watching a database it cannot connect to, reading every
/// 200 ms and pinging every second: its log names the reason once per
/// reader and once for the health check, in plain text (stderr is a pipe).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_is_logged_once_in_plain_text_with_its_reason() {
    let cluster = PgCluster::start();
    let url = cluster.url("postgres", "no_such_db");
    let (mut agent, base, lines) =
        spawn_text_agent(&[("DATABASE_URL", &url), ("PERFSCOPE_READ_INTERVAL", "200")]);
    // At least 10 failed passes of the statements reader (and, at one
    // ping a second, a few failed health checks).
    let sample =
        "perfscope_reader_errors_total{database=\"default\",reader=\"pg_stat_statements\"}";
    eventually("10 failed reads", async || {
        let scrape = client()
            .get(format!("{base}/api/performance/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        (counter(&scrape, sample) >= 10.0).then_some(())
    })
    .await;
    let _ = agent.0.kill();
    let _ = agent.0.wait();
    // The reader thread ends with the pipe.
    let log = lines.join().expect("the log").join("\n");

    assert!(!log.contains('\u{1b}'), "ANSI escapes on a pipe:\n{log}");
    assert!(
        log.contains("database \"no_such_db\" does not exist (SQLSTATE 3D000)"),
        "{log}"
    );
    assert!(!log.contains("db error"), "{log}");
    let statements_failed = log
        .lines()
        .filter(|l| l.contains("reader failed") && l.contains("reader=\"pg_stat_statements\""))
        .count();
    assert_eq!(
        statements_failed, 1,
        "one line when the reader starts failing, not one per pass:\n{log}"
    );
    let unreachable = log
        .lines()
        .filter(|l| l.contains("database unreachable"))
        .count();
    assert_eq!(unreachable, 1, "{log}");
    assert!(
        !log.contains("still failing"),
        "a repeat within 5 minutes:\n{log}"
    );
}
