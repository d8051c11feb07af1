//! What the active session history costs, for BENCHMARKS.md:
//!
//! - sampling, on a throwaway loopback cluster with 1, 10 and 100 watched
//!   databases and 50 active sessions spread over them: the sampler's
//!   own query (`sql/queries/ash_sample.sql`) on one kept connection,
//!   its rows made observations and pushed into the ring, 300 samples per
//!   case; the agent's CPU per sample (this process's user + system time,
//!   `getrusage`, over the samples), the wall time per sample and the
//!   server's execution time of the query (pg_stat_statements'
//!   mean_exec_time);
//! - the ring's memory: bytes per observation, per minute of 50 sessions,
//!   and how long `PERFSCOPE_ASH_MEMORY`'s default holds at 10, 50 and
//!   200 active sessions (20 statements, 5 applications, 10 routes, a
//!   third of them waiting), fed simulated samples.
//!
//!     cargo bench --bench ash_sampling --features postgres

#[path = "../tests/support/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use perfscope::config::DEFAULT_ASH_MEMORY;
use perfscope::pg::ash::sample::{SAMPLE, Sample, Texts, observations};
use perfscope::pg::ash::{AshRing, Limits, Observation, StatementRef, WaitClass};

const SESSIONS: usize = 50;
const SAMPLES: usize = 300;

/// This process's user + system CPU time.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given; nothing else is shared.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

async fn connect(url: &str, application: &str) -> tokio_postgres::Client {
    let mut config: tokio_postgres::Config = url.parse().expect("url");
    config.application_name(application);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);
    client
}

async fn sampling(cluster: &pg::PgCluster, databases: usize) {
    let names: Vec<String> = (0..databases).map(|i| format!("bench{i:03}")).collect();
    // 50 sessions, round robin over the databases, each busy for the run:
    // a third sleeping, a third on CPU, a third waiting on a lock.
    let mut held = Vec::new();
    let mut work = Vec::new();
    for s in 0..SESSIONS {
        let name = names[s % databases].clone();
        let url = cluster.url("postgres", &name);
        match s % 3 {
            0 => {
                let client = connect(&url, "sleeper").await;
                work.push(tokio::spawn(async move {
                    let _ = client
                        .query(
                            "SELECT pg_sleep(60) /*route='%2Fapi%2Fsleep',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'*/",
                            &[],
                        )
                        .await;
                }));
            }
            1 => {
                let client = connect(&url, "looper").await;
                work.push(tokio::spawn(async move {
                    let _ = client
                        .batch_execute(
                            "DO $$ BEGIN WHILE clock_timestamp() < now() + interval '60 s' LOOP PERFORM pg_sleep(0.01); END LOOP; END $$",
                        )
                        .await;
                }));
            }
            _ => {
                let holder = connect(&url, "holder").await;
                holder
                    .batch_execute(&format!(
                        "CREATE TABLE IF NOT EXISTS hot{s} (id int PRIMARY KEY); INSERT INTO hot{s} VALUES (1) ON CONFLICT DO NOTHING"
                    ))
                    .await
                    .expect("a row to hold");
                holder
                    .batch_execute(&format!("BEGIN; SELECT * FROM hot{s} FOR UPDATE"))
                    .await
                    .expect("holds");
                held.push(holder);
                let client = connect(&url, "waiter").await;
                work.push(tokio::spawn(async move {
                    // Ends when the run terminates it.
                    let _ = client
                        .query(&format!("SELECT * FROM hot{s} FOR UPDATE"), &[])
                        .await;
                }));
            }
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let sampler = connect(&cluster.url("perfscope", "postgres"), "perfscope").await;
    sampler
        .batch_execute("SET statement_timeout = 500")
        .await
        .expect("set");
    let labels: HashMap<String, Vec<Arc<str>>> = names
        .iter()
        .map(|n| (n.clone(), vec![Arc::<str>::from(n.as_str())]))
        .collect();
    let ticks: Vec<Arc<str>> = names.iter().map(|n| Arc::from(n.as_str())).collect();
    let datnames: Vec<&str> = names.iter().map(String::as_str).collect();
    let own: Vec<String> = Vec::new();
    let ring = AshRing::new(Limits::default());
    let mut texts = Texts::default();
    let statement = sampler.prepare(SAMPLE).await.expect("prepare");
    let cpu = cpu_time();
    let wall = Instant::now();
    let mut seen = 0;
    for s in 0..SAMPLES {
        let rows = sampler
            .query(&statement, &[&own, &datnames])
            .await
            .expect("sample");
        let sample = Sample::of_rows(&rows).expect("rows");
        let (observations, cut) = observations(&sample.sessions, &labels, &mut texts);
        seen += observations.len();
        if s == 0 {
            let mut classes: HashMap<&str, usize> = HashMap::new();
            for o in &observations {
                *classes.entry(o.class.as_str()).or_default() += 1;
            }
            eprintln!("{databases} databases, first sample: {classes:?}");
        }
        ring.push(1_900_000_000 + s as u64, &ticks, observations, cut);
    }
    let cpu = cpu_time() - cpu;
    let wall = wall.elapsed();
    let admin = connect(&cluster.url("postgres", "postgres"), "bench").await;
    let server: f64 = admin
        .query_one(
            "SELECT max(mean_exec_time) FROM pg_stat_statements WHERE query LIKE '%pg_blocking_pids%' AND query LIKE '%max_connections%'",
            &[],
        )
        .await
        .expect("pg_stat_statements")
        .try_get::<_, Option<f64>>(0)
        .expect("mean")
        .unwrap_or(f64::NAN);
    admin
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .expect("reset");
    println!(
        "| {databases} | {:.1} | {:.0} µs | {:.1} µs | {:.0} µs | {:.3} ms |",
        seen as f64 / SAMPLES as f64,
        cpu.as_secs_f64() * 1e6 / SAMPLES as f64,
        cpu.as_secs_f64() * 1e6 / SAMPLES as f64 / databases as f64,
        wall.as_secs_f64() * 1e6 / SAMPLES as f64,
        server,
    );
    // The sessions end with their backends (a sleeping backend would not
    // notice its client leave before its sleep ends).
    admin
        .batch_execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE application_name IN ('sleeper', 'looper', 'holder', 'waiter')",
        )
        .await
        .expect("terminate");
    for task in work {
        let _ = task.await;
    }
    drop(held);
    tokio::time::sleep(Duration::from_millis(500)).await;
}

/// One simulated session of a workload of 20 statements, 5 applications
/// and 10 routes, a third of them waiting.
fn session(i: usize, s: u64, statements: &[Arc<StatementRef>]) -> Observation {
    let k = (i + s as usize) % statements.len();
    let waiting = k.is_multiple_of(3);
    Observation {
        database: Arc::from("shop"),
        class: if waiting {
            WaitClass::Lock
        } else {
            WaitClass::Cpu
        },
        event: waiting.then(|| Arc::from("transactionid")),
        statement: statements[k].clone(),
        role: Arc::from("app"),
        application: Arc::from(format!("service-{}", k % 5).as_str()),
        route: Some(Arc::from(
            format!("/api/v1/resource-{}/:id", k % 10).as_str(),
        )),
        trace_id: None,
        blocked_by: None,
    }
}

/// Bytes of the ring after `minutes` simulated minutes of `sessions`
/// sessions, with room for all of it; and its stats.
fn fill(
    sessions: usize,
    minutes: u64,
    statements: &[Arc<StatementRef>],
) -> perfscope::pg::ash::RingStats {
    let ring = AshRing::new(Limits {
        max_bytes: 1 << 30,
        ..Limits::default()
    });
    let database = [Arc::<str>::from("shop")];
    for s in 0..minutes * 60 {
        let observations = (0..sessions).map(|i| session(i, s, statements)).collect();
        ring.push(1_900_000_020 + s, &database, observations, 0);
    }
    ring.stats()
}

fn memory() {
    let statements: Vec<Arc<StatementRef>> = (0..20)
        .map(|k| {
            Arc::new(StatementRef::of_text(
                &format!("SELECT a, b, c FROM orders_{k} o JOIN items i ON i.order_id = o.id WHERE o.customer_id = $1 AND o.created_at > now() - interval '1 day'"),
                Some(1_000 + k),
            ))
        })
        .collect();
    let max = DEFAULT_ASH_MEMORY as f64;
    println!(
        "\n| active sessions | bytes per observation (whole seconds) | bytes per minute (counts) | 10 min of whole seconds | {} MiB holds |",
        DEFAULT_ASH_MEMORY >> 20
    );
    println!("|---|---|---|---|---|");
    for sessions in [10usize, 50, 200] {
        // 10 minutes (the whole seconds at their longest), then 60 more
        // minutes: the difference is the minutes' cost.
        let ten = fill(sessions, 10, &statements);
        let seventy = fill(sessions, 70, &statements);
        let minute_bytes =
            (seventy.bytes - ten.bytes) as f64 / (seventy.minutes - ten.minutes) as f64;
        let raw = ten.bytes as f64 - ten.minutes as f64 * minute_bytes;
        let per_observation = raw / (600 * sessions) as f64;
        // The ring keeps the whole seconds down to a quarter of its bytes,
        // then drops the oldest minutes: the minutes get the rest.
        let minutes_room = max - raw.min(max / 4.0);
        let held_hours = minutes_room / minute_bytes / 60.0;
        println!(
            "| {sessions} | {per_observation:.0} | {minute_bytes:.0} | {:.2} MiB | {:.0} h of minutes (and {:.0} min of whole seconds) |",
            raw / (1 << 20) as f64,
            held_hours,
            (raw.min(max / 4.0) / (per_observation * sessions as f64)) / 60.0,
        );
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let cluster = pg::PgCluster::start_with("max_connections = 200");
        cluster.install().await;
        let install =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sql/install.sql"))
                .expect("sql/install.sql");
        cluster.exec("template1", &install).await;
        for i in 0..100 {
            cluster
                .exec(
                    "postgres",
                    &format!("CREATE DATABASE bench{i:03} STRATEGY = FILE_COPY"),
                )
                .await;
        }
        println!(
            "| databases | sessions seen per sample | agent CPU per sample | per database | wall per sample | server time per sample |"
        );
        println!("|---|---|---|---|---|---|");
        for databases in [1, 10, 100] {
            sampling(&cluster, databases).await;
        }
    });
    memory();
}
