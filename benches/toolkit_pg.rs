//! The Postgres side of the optimization toolkit, side by side in one run
//! on a throwaway loopback cluster (the test harness):
//!
//! - 100,000-row insert: one INSERT per row, multi-row INSERTs of 1,000
//!   rows, and `copy_in` (COPY … FROM STDIN BINARY), all through the timed
//!   pool, best of three runs each;
//! - page latency at page 1 and page 1,000 (100 rows a page) of a
//!   1,000,000-row table: the keyset stream (`cursor_paginate`) against
//!   `LIMIT … OFFSET`, medians of the pages around each.
//!
//!     cargo bench --bench toolkit_pg

#[path = "../tests/support/pg.rs"]
#[allow(dead_code)]
mod pg;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use perfscope::db::{Keyset, PoolSettings, TimedPool};
use tokio_postgres::types::ToSql;

const ROWS: i64 = 100_000;
const BATCH: usize = 1_000;
const PAGE: u32 = 100;

type Row = (i64, String, i64);

fn rows() -> Vec<Row> {
    (1..=ROWS)
        .map(|i| (i, format!("item {i}"), i * 3))
        .collect()
}

async fn reset(pool: &TimedPool) {
    let client = pool.get().await.expect("client");
    client
        .batch_execute("DROP TABLE IF EXISTS items; CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL, price bigint NOT NULL)")
        .await
        .expect("reset");
}

async fn per_row(pool: &TimedPool, rows: &[Row]) {
    let client = pool.get().await.expect("client");
    let insert = client
        .prepare("INSERT INTO items (id, name, price) VALUES ($1, $2, $3)")
        .await
        .expect("prepare");
    for (id, name, price) in rows {
        client
            .execute(&insert, &[id, name, price])
            .await
            .expect("insert");
    }
}

async fn multi_row(pool: &TimedPool, rows: &[Row]) {
    let client = pool.get().await.expect("client");
    let values: Vec<String> = (0..BATCH)
        .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
        .collect();
    let insert = client
        .prepare(&format!(
            "INSERT INTO items (id, name, price) VALUES {}",
            values.join(", ")
        ))
        .await
        .expect("prepare");
    for chunk in rows.chunks(BATCH) {
        let params: Vec<&(dyn ToSql + Sync)> = chunk
            .iter()
            .flat_map(|(id, name, price)| [id as &(dyn ToSql + Sync), name, price])
            .collect();
        client.execute(&insert, &params).await.expect("insert");
    }
}

async fn copy(pool: &TimedPool, rows: &[Row]) {
    let client = pool.get().await.expect("client");
    let written = client
        .copy_in(
            "items",
            &["id", "name", "price"],
            rows.iter()
                .map(|(id, name, price)| [id as &(dyn ToSql + Sync), name, price]),
        )
        .await
        .expect("copy");
    assert_eq!(written, ROWS as u64);
}

async fn best_of_three<F, Fut>(pool: &TimedPool, rows: &[Row], run: F) -> Duration
where
    F: Fn(TimedPool, Vec<Row>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut best = Duration::MAX;
    for _ in 0..3 {
        reset(pool).await;
        let started = Instant::now();
        run(pool.clone(), rows.to_vec()).await;
        best = best.min(started.elapsed());
        let client = pool.get().await.expect("client");
        let count: i64 = client
            .query_one("SELECT count(*) FROM items", &[])
            .await
            .expect("count")
            .get(0);
        assert_eq!(count, ROWS);
    }
    best
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

async fn pages(pool: &TimedPool) {
    let client = pool.get().await.expect("client");
    client
        .batch_execute(
            "DROP TABLE IF EXISTS big; CREATE TABLE big (id bigint PRIMARY KEY, payload text NOT NULL);
             INSERT INTO big SELECT g, md5(g::text) FROM generate_series(1, 1000000) g; ANALYZE big;",
        )
        .await
        .expect("big table");
    let offset_sql = "SELECT id, payload FROM big ORDER BY id LIMIT $1 OFFSET $2";
    let offset_page = |page: i64| {
        let client = &client;
        async move {
            let started = Instant::now();
            let rows = client
                .query(
                    offset_sql,
                    &[&i64::from(PAGE), &((page - 1) * i64::from(PAGE))],
                )
                .await
                .expect("offset page");
            assert_eq!(rows.len(), PAGE as usize);
            assert_eq!(rows[0].get::<_, i64>(0), (page - 1) * i64::from(PAGE) + 1);
            started.elapsed()
        }
    };
    // Keyset: walk the stream to page 1,010, timing each page.
    let mut keyset_times = Vec::new();
    let mut stream = std::pin::pin!(
        pool.cursor_paginate(
            Keyset::new("big", &["id"])
                .select(&["payload"])
                .page_size(PAGE)
        )
    );
    for page in 1..=1010i64 {
        let started = Instant::now();
        let rows = stream.next().await.expect("a page").expect("keyset page");
        keyset_times.push(started.elapsed());
        assert_eq!(rows[0].get::<_, i64>(1), (page - 1) * i64::from(PAGE) + 1);
    }
    // Page 1: the median of 11 first pages (a fresh stream each time, which
    // includes its one-off key check and prepares).
    let mut first_keyset = Vec::new();
    for _ in 0..11 {
        let mut stream = std::pin::pin!(
            pool.cursor_paginate(
                Keyset::new("big", &["id"])
                    .select(&["payload"])
                    .page_size(PAGE)
            )
        );
        let started = Instant::now();
        stream.next().await.expect("a page").expect("keyset page");
        first_keyset.push(started.elapsed());
    }
    let keyset_first_steady = median(keyset_times[1..12].to_vec());
    let keyset_1000 = median(keyset_times[994..1005].to_vec());
    let mut offset_first = Vec::new();
    let mut offset_1000 = Vec::new();
    for i in 0..11 {
        offset_first.push(offset_page(1).await);
        offset_1000.push(offset_page(995 + i).await);
    }
    let (offset_first, offset_1000) = (median(offset_first), median(offset_1000));
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "page latency, 100 rows a page of 1,000,000 (medians of 11):\n  \
         keyset page 1 (fresh stream, incl. key check): {:.0} µs\n  \
         keyset pages 2-12: {:.0} µs\n  \
         keyset pages 995-1005: {:.0} µs\n  \
         OFFSET page 1: {:.0} µs\n  \
         OFFSET pages 995-1005: {:.0} µs\n  \
         page 1,000 / page 1: keyset {:.2}, OFFSET {:.2}; OFFSET / keyset at page 1,000: {:.1}",
        us(median(first_keyset)),
        us(keyset_first_steady),
        us(keyset_1000),
        us(offset_first),
        us(offset_1000),
        keyset_1000.as_secs_f64() / keyset_first_steady.as_secs_f64(),
        offset_1000.as_secs_f64() / offset_first.as_secs_f64(),
        offset_1000.as_secs_f64() / keyset_1000.as_secs_f64(),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = pg::PgCluster::start();
    runtime.block_on(async {
        let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
        let pool = perfscope
            .connect_pool(
                &cluster.url("postgres", "postgres"),
                PoolSettings::default(),
            )
            .await
            .expect("pool");
        let rows = rows();
        let single = best_of_three(&pool, &rows, |pool, rows| async move {
            per_row(&pool, &rows).await
        })
        .await;
        let multi = best_of_three(&pool, &rows, |pool, rows| async move {
            multi_row(&pool, &rows).await
        })
        .await;
        let copied = best_of_three(&pool, &rows, |pool, rows| async move {
            copy(&pool, &rows).await
        })
        .await;
        let rate = |d: Duration| ROWS as f64 / d.as_secs_f64();
        println!(
            "100,000-row insert (best of 3):\n  \
             one INSERT per row: {:.0} ms ({:.0} rows/s)\n  \
             multi-row INSERT, 1,000 rows each: {:.0} ms ({:.0} rows/s)\n  \
             copy_in (COPY BINARY): {:.0} ms ({:.0} rows/s)\n  \
             COPY is {:.1}x per-row and {:.1}x multi-row",
            single.as_secs_f64() * 1e3,
            rate(single),
            multi.as_secs_f64() * 1e3,
            rate(multi),
            copied.as_secs_f64() * 1e3,
            rate(copied),
            single.as_secs_f64() / copied.as_secs_f64(),
            multi.as_secs_f64() / copied.as_secs_f64(),
        );
        pages(&pool).await;
    });
}
