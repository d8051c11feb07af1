//! The timed pool's statement paths, one client in a loop of
//! `SELECT v FROM kv WHERE id = $1`, in one run: with the statement cache
//! on (the default: the driver prepares a named statement, binds and
//! executes it, closes it), off (the unnamed statement in one round trip),
//! a statement prepared once (`prepare` + `query(&statement)`), on a direct
//! connection and, with the cache off, through a real PgBouncer in
//! transaction mode. Seven rounds of 2,000 statements per path, the paths
//! alternating within each round; printed as the median µs per statement.
//!
//!     cargo bench --bench statement_cache

#[path = "../tests/support/pg.rs"]
#[allow(dead_code)]
mod pg;
#[path = "../tests/support/pgbouncer.rs"]
#[allow(dead_code)]
mod pgbouncer;

use std::time::Instant;

use perfscope::Perfscope;
use perfscope::config::RawConfig;
use perfscope::db::{PoolSettings, TimedPool};

const STATEMENTS: i32 = 2_000;
const ROUNDS: usize = 7;
const SQL: &str = "SELECT v FROM kv WHERE id = $1";

/// µs per statement of one loop.
async fn loop_text(pool: &TimedPool) -> f64 {
    let client = pool.get().await.expect("client");
    let started = Instant::now();
    for i in 0..STATEMENTS {
        let id = i % 1000;
        client.query_one(SQL, &[&id]).await.expect("select");
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(STATEMENTS)
}

/// µs per statement of one loop over a statement prepared once.
async fn loop_prepared(pool: &TimedPool) -> f64 {
    let client = pool.get().await.expect("client");
    let statement = client.prepare(SQL).await.expect("prepare");
    let started = Instant::now();
    for i in 0..STATEMENTS {
        let id = i % 1000;
        client.query_one(&statement, &[&id]).await.expect("select");
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(STATEMENTS)
}

async fn pool(perfscope: &Perfscope, url: &str, statement_cache: bool) -> TimedPool {
    perfscope
        .connect_pool(
            url,
            PoolSettings {
                min: 1,
                max: 1,
                statement_cache,
                ..Default::default()
            },
        )
        .await
        .expect("pool")
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = pg::PgCluster::start();
    let binary = pgbouncer::PgBouncer::binary();
    let bouncer = binary.map(|binary| pgbouncer::PgBouncer::start(binary, cluster.port, 2, ""));
    runtime.block_on(async {
        cluster
            .exec(
                "postgres",
                "CREATE TABLE kv (id int PRIMARY KEY, v text NOT NULL);
                 INSERT INTO kv SELECT g, 'value ' || g FROM generate_series(0, 999) g;",
            )
            .await;
        let perfscope = Perfscope::new(RawConfig::default().validate().expect("config"));
        let direct = cluster.url("postgres", "postgres");
        let cache_on = pool(&perfscope, &direct, true).await;
        let cache_off = pool(&perfscope, &direct, false).await;
        let pooled = match &bouncer {
            Some(bouncer) => Some(pool(&perfscope, &bouncer.url(), false).await),
            None => None,
        };
        let mut results: [Vec<f64>; 4] = Default::default();
        for _ in 0..ROUNDS {
            results[0].push(loop_text(&cache_on).await);
            results[1].push(loop_text(&cache_off).await);
            results[2].push(loop_prepared(&cache_on).await);
            if let Some(pooled) = &pooled {
                results[3].push(loop_text(pooled).await);
            }
        }
        let names = [
            "direct, statement cache on (text: named prepare, bind/execute, close)",
            "direct, statement cache off (text: unnamed, one round trip)",
            "direct, prepared once (cache on)",
            "PgBouncer transaction mode, statement cache off",
        ];
        for (name, values) in names.iter().zip(results) {
            if values.is_empty() {
                println!("{name}: not run (no pgbouncer)");
            } else {
                println!("{name}: {:.1} µs per statement", median(values));
            }
        }
    });
}
