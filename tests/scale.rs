//! One agent watching 100 databases of a server with the default
//! `max_connections = 100`, as the least-privilege role, while an
//! application holds 70 connections and opens and closes more on random
//! databases: the application never sees SQLSTATE 53300, the agent never
//! holds more than its budget, its log stays short, and every database is
//! read within a bounded time. Prints the agent's resident memory, CPU
//! share and round time (`bench/watch-many` runs it for BENCHMARKS.md).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use support::pg::PgCluster;
use support::{ADMIN_TOKEN, client, resident_bytes, spawn_agent};

const DATABASES: usize = 100;
/// Connections the application keeps open throughout.
const APP_HELD: usize = 70;
/// Application tasks that connect, query and disconnect in a loop.
const APP_CHURN: usize = 4;
/// The agent's default budget.
const BUDGET: i64 = perfscope::config::DEFAULT_MAX_DB_CONNECTIONS as i64;

fn database(i: usize) -> String {
    format!("db{:03}", i + 1)
}

async fn connect(url: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

/// user+system CPU time of `pid`, in clock ticks (100 per second).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    // Fields after the command's closing parenthesis; utime and stime are
    // the 14th and 15th of the line.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime")
}

/// Databases whose `database` reader has succeeded at least once.
fn read_databases(metrics: &str) -> usize {
    metrics
        .lines()
        .filter(|l| {
            l.starts_with("perfscope_reader_success{database=\"db")
                && l.contains("reader=\"database\"")
                && l.ends_with(" 1")
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_agent_watches_100_databases_without_crowding_the_application() {
    let cluster = PgCluster::start_with("max_connections = 100");
    let install = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/install.sql"))
        .expect("sql/install.sql");
    // Every database is made from template1, extensions included.
    cluster.exec("template1", &install).await;
    cluster.exec("postgres", "CREATE ROLE app LOGIN").await;
    let admin = connect(&cluster.url("postgres", "postgres"))
        .await
        .expect("superuser connects");
    let created = Instant::now();
    for i in 0..DATABASES {
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} STRATEGY = FILE_COPY",
                database(i)
            ))
            .await
            .expect("create database");
    }
    eprintln!("created {DATABASES} databases in {:?}", created.elapsed());

    // The application: connections held open, and a churn of short ones.
    let mut held = Vec::new();
    for i in 0..APP_HELD {
        held.push(
            connect(&cluster.url("app", &database(i % DATABASES)))
                .await
                .expect("the application connects"),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut churn = Vec::new();
    for task in 0..APP_CHURN {
        let (stop, cluster_urls) = (
            stop.clone(),
            (0..DATABASES)
                .map(|i| cluster.url("app", &database(i)))
                .collect::<Vec<_>>(),
        );
        churn.push(tokio::spawn(async move {
            let mut seed = 0x9E37_79B9_7F4A_7C15_u64 ^ task as u64;
            let (mut connections, mut refused) = (0u64, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let url = &cluster_urls[(seed >> 33) as usize % cluster_urls.len()];
                match connect(url).await {
                    Ok(client) => {
                        client.simple_query("SELECT 1").await.expect("SELECT 1");
                        connections += 1;
                    }
                    Err(error) => refused.push(format!("{url}: {error} ({:?})", error.code())),
                }
            }
            (connections, refused)
        }));
    }
    // The agent's connections, sampled every 50 ms by the superuser.
    let most = Arc::new(AtomicI64::new(0));
    let sampler = {
        let (stop, most) = (stop.clone(), most.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let now: i64 = admin
                    .query_one(
                        "SELECT count(*) FROM pg_stat_activity WHERE usename = 'perfscope'",
                        &[],
                    )
                    .await
                    .expect("pg_stat_activity")
                    .get(0);
                most.fetch_max(now, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let watch = (0..DATABASES)
        .map(|i| format!("{}={}", database(i), cluster.url("perfscope", &database(i))))
        .collect::<Vec<_>>()
        .join(",");
    let interval = Duration::from_secs(5);
    let started = Instant::now();
    let (agent, address, logs) = spawn_agent(&[
        ("PERFSCOPE_WATCH_DATABASES", &watch),
        ("PERFSCOPE_READ_INTERVAL", &interval.as_millis().to_string()),
    ]);
    let pid = agent.0.id();
    let metrics = || async {
        client()
            .get(format!("http://{address}/api/performance/metrics"))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    };
    let round = loop {
        let text = metrics().await.unwrap_or_default();
        if read_databases(&text) == DATABASES {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "only {} of {DATABASES} databases read after 90 s (a loaded machine)",
            read_databases(&text)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // Three more intervals of steady state, measured: the agent's CPU, and
    // how often it read pg_stat_statements (once per server and half
    // interval, not once per database).
    let observer = connect(&cluster.url("postgres", &database(0)))
        .await
        .expect("superuser connects");
    // Calls of the agent's statements whose text starts with `prefix`,
    // summed over every database.
    let agent_calls = async |prefix: &str| -> i64 {
        observer
            .query_one(
                "SELECT coalesce(sum(s.calls), 0)::bigint FROM pg_stat_statements s
                 JOIN pg_roles r ON r.oid = s.userid
                 WHERE r.rolname = 'perfscope' AND starts_with(s.query, $1)",
                &[&prefix],
            )
            .await
            .expect("pg_stat_statements")
            .get(0)
    };
    const STATEMENTS: &str = "-- pg_stat_statements for PostgreSQL";
    const REPLICATION: &str = "-- Replication as this server sees it";
    let (statements_before, replication_before) = (
        agent_calls(STATEMENTS).await,
        agent_calls(REPLICATION).await,
    );
    let (ticks_before, measured) = (cpu_ticks(pid), Instant::now());
    tokio::time::sleep(interval * 3).await;
    let cpu = (cpu_ticks(pid) - ticks_before) as f64 / 100.0 / measured.elapsed().as_secs_f64();
    let statement_reads = agent_calls(STATEMENTS).await - statements_before;
    let replication_reads = agent_calls(REPLICATION).await - replication_before;
    let resident = resident_bytes(pid);
    let text = metrics().await.unwrap_or_default();
    stop.store(true, Ordering::Relaxed);
    sampler.await.expect("sampler");
    let (mut connections, mut refused) = (0, Vec::new());
    for task in churn {
        let (n, errors) = task.await.expect("churn");
        connections += n;
        refused.extend(errors);
    }
    drop(agent);
    let lines = logs.join().expect("logs");

    println!(
        "figures: databases={DATABASES} first_round_s={:.2} cpu_share={:.3} resident_mib={:.1} agent_connections_max={} app_connections={connections} pg_stat_statements_reads_in_3_intervals={statement_reads} replication_reads_in_3_intervals={replication_reads}",
        round.as_secs_f64(),
        cpu,
        resident as f64 / (1024.0 * 1024.0),
        most.load(Ordering::Relaxed),
    );
    assert!(
        refused.is_empty(),
        "the application was refused: {refused:?}"
    );
    assert!(
        connections > 100,
        "the application kept connecting ({connections})"
    );
    assert!(
        most.load(Ordering::Relaxed) <= BUDGET,
        "the agent held {} connections, over its budget of {BUDGET}",
        most.load(Ordering::Relaxed)
    );
    assert!(
        lines.len() <= 20,
        "{} log lines:\n{}",
        lines.len(),
        lines.join("\n")
    );
    assert!(
        text.contains(&format!("perfscope_db_connection_budget {BUDGET}")),
        "{text}"
    );
    assert_eq!(read_databases(&text), DATABASES);
    // Read once per server and half interval (a little more as passes
    // straddle the freshness window), never once per database (300 here).
    assert!(
        (1..=12).contains(&statement_reads),
        "pg_stat_statements read {statement_reads} times in three intervals"
    );
    assert!(
        (1..=12).contains(&replication_reads),
        "replication read {replication_reads} times in three intervals"
    );
    // pgwatch's sizing is 100 databases on one vCPU under 20 %.
    assert!(cpu < 0.2, "the agent used {cpu:.3} of a CPU");
    drop(held);
}
