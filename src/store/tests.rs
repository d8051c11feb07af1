//! The store on real files: restart, retention over a simulated month,
//! the size cap, a corrupt, newer, locked or full file.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::registry::Registry;

use super::*;
use crate::metrics::store::{DropLabels, DropReason, StoreMetrics};

const DAY: i64 = 86_400;
const START: i64 = 1_780_000_000 - 1_780_000_000 % DAY;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "perfscope-store-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

struct TestStore {
    store: Store,
    task: StoreTask,
    metrics: Arc<StoreMetrics>,
    now: Arc<AtomicI64>,
}

fn open_at(dir: &std::path::Path, max_bytes: u64, maintain_every: i64) -> TestStore {
    let now = Arc::new(AtomicI64::new(START));
    let clock_now = now.clone();
    let metrics = Arc::new(StoreMetrics::register(&mut Registry::default()));
    let (store, task) = Store::open(
        StoreSettings {
            dir: dir.to_owned(),
            max_bytes,
            clock: Clock::from_fn(move || clock_now.load(Ordering::Relaxed)),
            maintain_every,
        },
        metrics.clone(),
    );
    TestStore {
        store,
        task,
        metrics,
        now,
    }
}

async fn opened(store: &Store) -> StoreState {
    store.flush().await;
    store.state()
}

fn dropped(metrics: &StoreMetrics, reason: DropReason) -> u64 {
    metrics.dropped.get_or_create(&DropLabels { reason }).get()
}

fn statements(at: i64, n: i64, calls: i64) -> Write {
    Write::Statements {
        at,
        database: Arc::from("shop"),
        rows: (0..n)
            .map(|q| StatementDelta {
                queryid: 1_000 + q,
                text: Some(Arc::from(format!("SELECT * FROM t{q} WHERE id = $1"))),
                calls,
                total_ms: calls as f64 * 2.0,
                rows: calls,
                shared_hit: calls * 3,
                shared_read: calls,
                temp_written: 0,
                io_ms: 0.0,
            })
            .collect(),
    }
}

fn routes(at: i64, requests: u64) -> Write {
    Write::Routes {
        at,
        bounds: Arc::from(vec![0.01, 0.1, 1.0, f64::INFINITY]),
        rows: vec![RouteDelta {
            method: "GET".into(),
            route: "/users/:id".into(),
            requests,
            errors: 1,
            sum_seconds: requests as f64 * 0.05,
            buckets: vec![0, requests, 0, 0],
        }],
    }
}

#[tokio::test]
async fn history_survives_a_restart_and_the_file_is_private() {
    let dir = temp_dir("restart");
    {
        let s = open_at(&dir, 64 << 20, 300);
        assert_eq!(opened(&s.store).await, StoreState::Writing);
        s.store.record(statements(START + 10, 3, 5));
        s.store.record(routes(START + 60, 40));
        s.store.record(Write::Sizes {
            at: START + 70,
            database: Arc::from("shop"),
            rows: vec![RelationSize {
                kind: RelationKind::Table,
                name: "public.orders".into(),
                bytes: 8_192,
            }],
        });
        s.store.record(Write::Event(Event {
            at: START + 80,
            kind: EventKind::Deploy,
            database: None,
            label: "v1.2.3".into(),
            detail: None,
        }));
        s.store.flush().await;
        assert_eq!(s.metrics.writes.get(), 4);
        s.task.join().await;
    }
    let mode = |p: PathBuf| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(dir.join(FILE_NAME)), 0o600);
    assert_eq!(mode(dir.clone()), 0o700);

    let s = open_at(&dir, 64 << 20, 300);
    assert_eq!(opened(&s.store).await, StoreState::Writing);
    let range = Range {
        from: START,
        to: START + DAY,
        step: 3_600,
    };
    let points = s
        .store
        .read(move |c| read::statement_series(c, "shop", 1_001, range))
        .await
        .expect("read");
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].calls, 5);
    assert_eq!(points[0].mean_ms(), Some(2.0));
    let totals = s
        .store
        .read(|c| read::statement_totals(c, "shop", START, START + DAY, 10))
        .await
        .expect("totals");
    assert_eq!(totals.len(), 3);
    assert_eq!(
        totals[0].text.as_deref().map(|t| t.starts_with("SELECT")),
        Some(true)
    );
    let route = s
        .store
        .read(move |c| read::route_series(c, "GET", "/users/:id", range))
        .await
        .expect("route");
    assert_eq!(route.len(), 1);
    assert_eq!(route[0].requests, 40);
    assert_eq!(route[0].histogram.count, 40);
    let sizes = s
        .store
        .read(|c| read::sizes(c, "shop", RelationKind::Table, "public.orders", 0))
        .await
        .expect("sizes");
    assert_eq!(
        sizes,
        vec![SizePoint {
            day: START / DAY,
            bytes: 8_192
        }]
    );
    let events = s
        .store
        .read(|c| read::events(c, START, START + DAY, 10))
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].label, "v1.2.3");
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_simulated_month_is_downsampled_and_sums_are_kept() {
    let dir = temp_dir("month");
    // Maintained every six hours of the test clock.
    let s = open_at(&dir, 64 << 20, 6 * 3_600);
    assert_eq!(opened(&s.store).await, StoreState::Writing);
    let step = 900;
    let passes = 30 * DAY / step;
    for pass in 0..passes {
        let at = START + pass * step;
        s.now.store(at, Ordering::Relaxed);
        s.store.record(statements(at, 4, 10));
        s.store.record(routes(at, 7));
        if pass % 64 == 0 {
            s.store.flush().await;
        }
    }
    let end = START + passes * step;
    s.now.store(end, Ordering::Relaxed);
    s.store.maintain().await;
    assert_eq!(dropped(&s.metrics, DropReason::queue_full), 0);

    let tiers = s
        .store
        .read(move |c| {
            let mut stmt = c.prepare(
                "SELECT tier, min(ts), max(ts), count(*), sum(calls) FROM statement_points GROUP BY tier ORDER BY tier",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, i64>(4)?))
            })?;
            rows.collect::<Result<Vec<_>, _>>()
        })
        .await
        .expect("tiers");
    let total_calls: i64 = tiers.iter().map(|t| t.4).sum();
    assert_eq!(
        total_calls,
        passes * 4 * 10,
        "rollups keep every call: {tiers:?}"
    );
    let raw = tiers.iter().find(|t| t.0 == 0).expect("raw rows");
    assert!(
        raw.1 >= end - DAY - 300,
        "raw rows older than a day: {tiers:?}"
    );
    let five = tiers.iter().find(|t| t.0 == 1).expect("5-minute rows");
    assert!(
        five.1 >= end - 14 * DAY - 3_600,
        "5-minute rows past 14 days: {tiers:?}"
    );
    assert_eq!(five.1 % 300, 0);
    let hourly = tiers.iter().find(|t| t.0 == 2).expect("hourly rows");
    assert_eq!(hourly.1 % 3_600, 0);
    assert_eq!(hourly.1, START, "{tiers:?}");

    // The route's requests survive downsampling too, buckets and all.
    let month = Range {
        from: START,
        to: end + 1,
        step: 30 * DAY + 3_600,
    };
    let route = s
        .store
        .read(move |c| read::route_series(c, "GET", "/users/:id", month))
        .await
        .expect("route");
    assert_eq!(route.iter().map(|p| p.requests).sum::<i64>(), passes * 7);
    assert_eq!(
        route.iter().map(|p| p.histogram.count).sum::<u64>(),
        (passes * 7) as u64
    );
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_size_cap_holds_and_keeps_the_recent_past() {
    let dir = temp_dir("cap");
    let cap: u64 = 1 << 20;
    let s = open_at(&dir, cap, 3_600);
    assert_eq!(opened(&s.store).await, StoreState::Writing);
    let step = 300;
    let mut last = START;
    for pass in 0..(20 * DAY / step) {
        last = START + pass * step;
        s.now.store(last, Ordering::Relaxed);
        s.store.record(statements(last, 40, 3));
        if pass % 32 == 0 {
            s.store.flush().await;
        }
    }
    s.store.maintain().await;
    let bytes = s.store.bytes();
    assert!(
        bytes <= cap,
        "the store is {bytes} bytes, above its cap of {cap}"
    );
    assert_eq!(s.metrics.bytes.get() as u64, bytes);
    let newest = s
        .store
        .read(|c| {
            c.query_row("SELECT max(ts), min(ts) FROM statement_points", [], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
        })
        .await
        .expect("span");
    assert_eq!(newest.0, last, "the newest pass is kept");
    assert!(newest.1 > START, "the oldest went first: {newest:?}");
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_full_store_drops_and_counts_and_keeps_going() {
    let dir = temp_dir("full");
    // A cap so small the first big batch cannot fit: SQLite answers FULL.
    let s = open_at(&dir, 64 << 10, 1 << 40);
    assert_eq!(opened(&s.store).await, StoreState::Writing);
    for n in 0..20 {
        s.store.record(statements(START + n, 500, 1));
    }
    s.store.flush().await;
    assert!(
        dropped(&s.metrics, DropReason::full) > 0,
        "nothing was counted as full"
    );
    assert_eq!(
        s.store.state(),
        StoreState::Writing,
        "a full store stays on"
    );
    s.store.record(statements(START + 100, 1, 1));
    s.store.flush().await;
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_corrupt_file_is_reported_and_writes_are_dropped() {
    let dir = temp_dir("corrupt");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(dir.join(FILE_NAME), vec![0x5a; 64 * 1024]).expect("garbage");
    let s = open_at(&dir, 64 << 20, 300);
    let state = opened(&s.store).await;
    assert!(
        matches!(&state, StoreState::Unavailable(why) if why.contains("corrupt")),
        "{state:?}"
    );
    assert_eq!(s.metrics.up.get(), 0);
    s.store.record(statements(START, 1, 1));
    assert_eq!(dropped(&s.metrics, DropReason::unavailable), 1);
    let error = s
        .store
        .read(|c| read::events(c, 0, i64::MAX, 1))
        .await
        .expect_err("no reads");
    assert!(error.to_string().contains("corrupt"), "{error}");
    // The file is left as it was, for inspection.
    assert_eq!(std::fs::read(dir.join(FILE_NAME)).expect("read")[0], 0x5a);
    s.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_newer_or_locked_store_is_refused() {
    let dir = temp_dir("newer");
    std::fs::create_dir_all(&dir).expect("dir");
    {
        let conn = rusqlite::Connection::open(dir.join(FILE_NAME)).expect("create");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("version");
    }
    let s = open_at(&dir, 64 << 20, 300);
    let state = opened(&s.store).await;
    assert!(
        matches!(&state, StoreState::Unavailable(why) if why.contains("newer")),
        "{state:?}"
    );
    s.task.join().await;

    let dir = temp_dir("locked");
    let first = open_at(&dir, 64 << 20, 300);
    assert_eq!(opened(&first.store).await, StoreState::Writing);
    let second = open_at(&dir, 64 << 20, 300);
    let state = opened(&second.store).await;
    assert!(
        matches!(&state, StoreState::Unavailable(why) if why.contains("another process")),
        "{state:?}"
    );
    second.task.join().await;
    first.task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

mod ash;
mod runtime;

#[tokio::test]
async fn a_read_that_comes_while_the_file_opens_waits_for_it() {
    let dir = temp_dir("read-while-opening");
    let s = open_at(&dir, 64 << 20, 300);
    // No flush first: the writer thread is most likely still opening.
    let answer = s
        .store
        .read(|conn| conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0)))
        .await;
    assert_eq!(answer.ok(), Some(1), "the read waited for the open");
    s.task.join().await;

    // A file that cannot open answers why at once, not "still opening".
    let blocked = temp_dir("read-unopenable");
    std::fs::write(&blocked, b"a file where the directory should be").expect("write");
    let s = open_at(&blocked, 64 << 20, 300);
    let answer = s
        .store
        .read(|conn| conn.query_row("SELECT 1", [], |row| row.get::<_, i64>(0)))
        .await;
    match answer {
        Err(StoreError::Unavailable(why)) => assert_ne!(why, "still opening"),
        other => panic!("expected unavailable, got {:?}", other.map(|_| ())),
    }
    s.task.join().await;
    let _ = std::fs::remove_file(&blocked);
    let _ = std::fs::remove_dir_all(&dir);
}
