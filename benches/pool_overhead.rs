//! The timed pool against raw deadpool-postgres on the same loopback
//! database, in one run: 16 tasks loop over `get()` + one statement for a
//! fixed time, alternating raw and timed, seven rounds; printed as
//! statements per second and the ratio timed / raw: the median of the
//! rounds' ratios (each round pairs the two back to back, so drift cancels).
//! Goal: ≥ 0.98.
//!
//!     cargo bench --bench pool_overhead
//!
//! With the `otlp` feature it then measures `PERFSCOPE_SQL_COMMENTS`:
//! the same point query, prepared (`prepare`, cached on the connection)
//! and as a text, on three timed pools (`off`, `sampled`, `all`), every
//! call inside a routed request context and a sampled trace (spans go to
//! a black hole and are dropped), so the only difference is the comment:
//! statements per second and client CPU per statement, median of the
//! rounds. `POOL_BENCH=comments` runs only that part.
//!
//!     POOL_BENCH=comments cargo bench --all-features --bench pool_overhead

#[path = "../tests/support/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use perfscope::db::PoolSettings;

const TASKS: usize = 16;
const ROUND: Duration = Duration::from_secs(4);
const ROUNDS: usize = 7;

/// This process's CPU time (user + system) so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Statements per second, and this process's CPU µs per statement (the
/// client side: the pool, the driver and, for the timed pool, perfscope —
/// what the wrapper adds shows here without Postgres' scheduling noise).
async fn run<F, Fut>(query: F) -> (f64, f64)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let query = Arc::new(query);
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + ROUND;
    let cpu_before = cpu_time();
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let query = query.clone();
            let done = done.clone();
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    query().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let statements = done.load(Ordering::Relaxed) as f64;
    let cpu = (cpu_time() - cpu_before).as_secs_f64() * 1e6;
    (statements / ROUND.as_secs_f64(), cpu / statements.max(1.0))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = pg::PgCluster::start();
    runtime.block_on(async {
        cluster
            .exec(
                "postgres",
                "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric NOT NULL);
                 INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, 100000) g;
                 ANALYZE items;",
            )
            .await;
        let url = cluster.url("postgres", "postgres");
        let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
        let settings = PoolSettings {
            min: 10,
            max: 10,
            ..Default::default()
        };
        let timed = perfscope
            .connect_pool(&url, settings.clone())
            .await
            .expect("timed pool");
        let raw = {
            let config: tokio_postgres::Config = url.parse().expect("url");
            let manager = deadpool_postgres::Manager::new(config, tokio_postgres::NoTls);
            let builder = deadpool_postgres::Pool::builder(manager).max_size(10);
            let builder = if std::env::var_os("RAW_TIMEOUTS").is_some() {
                builder
                    .runtime(deadpool_postgres::Runtime::Tokio1)
                    .timeouts(deadpool_postgres::Timeouts {
                        wait: Some(Duration::from_secs(5)),
                        create: Some(Duration::from_secs(5)),
                        recycle: Some(Duration::from_secs(5)),
                    })
            } else {
                builder
            };
            builder.build().expect("raw pool")
        };
        // Open the raw pool's connections too, so neither pays for connects.
        let warm: Vec<_> = futures_join(&raw).await;
        drop(warm);
        let only_comments = std::env::var("POOL_BENCH").as_deref() == Ok("comments");
        for (name, sql) in [
            ("SELECT 1", "SELECT 1"),
            ("point query", "SELECT id, name, price FROM items WHERE id = $1"),
        ] {
            if only_comments {
                break;
            }
            let (mut raw_runs, mut timed_runs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            let (mut cpu_added, mut raw_cpu) = (Vec::new(), Vec::new());
            let with_param = sql.contains("$1");
            for round in 1..=ROUNDS {
                let raw_pool = raw.clone();
                let raw_query = move || {
                    let pool = raw_pool.clone();
                    async move {
                        let client = pool.get().await.expect("raw client");
                        let id = 1 + (rand_id() % 100_000) as i32;
                        if with_param {
                            client.query(sql, &[&id]).await.expect("raw query");
                        } else {
                            client.query(sql, &[]).await.expect("raw query");
                        }
                    }
                };
                let timed_pool = timed.clone();
                let timed_query = move || {
                    let pool = timed_pool.clone();
                    async move {
                        let client = pool.get().await.expect("timed client");
                        let id = 1 + (rand_id() % 100_000) as i32;
                        if with_param {
                            client.query(sql, &[&id]).await.expect("timed query");
                        } else {
                            client.query(sql, &[]).await.expect("timed query");
                        }
                    }
                };
                // Alternate which goes first, so drift favours neither.
                let ((r, r_cpu), (t, t_cpu)) = if round % 2 == 1 {
                    let r = run(raw_query).await;
                    (r, run(timed_query).await)
                } else {
                    let t = run(timed_query).await;
                    (run(raw_query).await, t)
                };
                println!(
                    "{name}, round {round}: raw {r:.0}/s {r_cpu:.1} µs CPU/stmt, timed {t:.0}/s {t_cpu:.1} µs CPU/stmt, ratio {:.3}",
                    t / r
                );
                raw_runs.push(r);
                timed_runs.push(t);
                ratios.push(t / r);
                cpu_added.push(t_cpu - r_cpu);
                raw_cpu.push(r_cpu);
            }
            let (r, t) = (median(raw_runs), median(timed_runs));
            println!(
                "{name}: raw median {r:.0}/s, timed median {t:.0}/s, ratio {:.3} (median of the paired rounds' ratios); client CPU per statement: raw {:.1} µs, timed adds {:.2} µs",
                median(ratios),
                median(raw_cpu),
                median(cpu_added)
            );
        }
        #[cfg(feature = "otlp")]
        comments::compare(&url).await;
    });
}

#[cfg(feature = "otlp")]
mod comments {
    //! `PERFSCOPE_SQL_COMMENTS`: off, sampled and all, per statement.

    use std::sync::Arc;

    use opentelemetry::context::FutureExt;
    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
    };
    use perfscope::config::{RawConfig, RawOtlp, SqlComments};
    use perfscope::db::{PoolSettings, TimedPool};

    use super::{ROUNDS, median, rand_id, run};

    const SQL: &str = "SELECT id, name, price FROM items WHERE id = $1";

    /// A loopback port that accepts and never answers: spans queue and drop.
    async fn black_hole() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address");
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        format!("http://{addr}")
    }

    /// One call: inside a routed request and a sampled trace.
    async fn call(pool: &TimedPool, prepared: bool) {
        let id = 1 + (rand_id() % 100_000) as i32;
        let trace = TraceId::from_bytes((u128::from(rand_id()) + 1).to_be_bytes());
        let span = SpanId::from_bytes(rand_id().max(1).to_be_bytes());
        let context = SpanContext::new(
            trace,
            span,
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = opentelemetry::Context::new().with_remote_span_context(context);
        let work = async {
            let client = pool.get().await.expect("client");
            if prepared {
                let statement = client.prepare(SQL).await.expect("prepare");
                client.query(&statement, &[&id]).await.expect("query");
            } else {
                client.query(SQL, &[&id]).await.expect("query");
            }
        };
        let routed = perfscope::db::context::scope_routed(work, Some(Arc::from("/items/{id}")));
        let ((), _) = routed.with_context(cx).await;
    }

    pub(super) async fn compare(url: &str) {
        let config = RawConfig {
            otlp: RawOtlp {
                endpoint: Some(black_hole().await),
                protocol: Some("grpc".into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .validate()
        .expect("config");
        let perfscope = perfscope::Perfscope::new(config);
        let cancel = tokio_util::sync::CancellationToken::new();
        let _tasks = perfscope.start(&cancel);
        let modes = [SqlComments::Off, SqlComments::Sampled, SqlComments::All];
        let mut pools = Vec::new();
        for mode in modes {
            let settings = PoolSettings {
                name: mode.as_str().into(),
                min: 10,
                max: 10,
                sql_comments: mode,
                ..Default::default()
            };
            pools.push(perfscope.connect_pool(url, settings).await.expect("pool"));
        }
        for prepared in [true, false] {
            let form = if prepared { "prepared" } else { "text" };
            let mut rates = vec![Vec::new(); modes.len()];
            let mut cpus = vec![Vec::new(); modes.len()];
            for round in 1..=ROUNDS {
                // Rotate which mode goes first, so drift favours none.
                for k in 0..modes.len() {
                    let i = (k + round) % modes.len();
                    let pool = pools[i].clone();
                    let (rate, cpu) = run(move || {
                        let pool = pool.clone();
                        async move { call(&pool, prepared).await }
                    })
                    .await;
                    rates[i].push(rate);
                    cpus[i].push(cpu);
                }
            }
            for (i, mode) in modes.iter().enumerate() {
                println!(
                    "comments {mode}, {form} point query: median {:.0}/s, client CPU {:.1} µs/stmt",
                    median(rates[i].clone()),
                    median(cpus[i].clone())
                );
            }
        }
        cancel.cancel();
    }
}

async fn futures_join(pool: &deadpool_postgres::Pool) -> Vec<deadpool_postgres::Object> {
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(pool.get().await.expect("warm"));
    }
    held
}

/// A cheap per-thread pseudo-random id (xorshift), so both pools read the
/// same spread of rows.
fn rand_id() -> u64 {
    use std::cell::Cell;
    thread_local!(static STATE: Cell<u64> = const { Cell::new(0x9E37_79B9_7F4A_7C15) });
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}
