//! The rule on a real store in a temp dir, on a test clock: a week of
//! baseline, then an hour three times slower.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use prometheus_client::registry::Registry;

use super::*;
use crate::metrics::store::StoreMetrics;
use crate::store::FindingRow;
use crate::store::{Clock, RouteDelta, StatementDelta, Store, StoreSettings, StoreTask, Write};

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
/// Where the week of baseline starts.
const START: i64 = 1_780_000_000 - 1_780_000_000 % DAY;
/// The end of the baseline, the start of the slow hour.
const SLOW: i64 = START + 7 * DAY;

struct Opened {
    store: Store,
    task: StoreTask,
    now: Arc<AtomicI64>,
    dir: PathBuf,
}

async fn open(name: &str) -> Opened {
    let dir = std::env::temp_dir().join(format!(
        "perfscope-regressions-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let now = Arc::new(AtomicI64::new(START));
    let clock = now.clone();
    let (store, task) = Store::open(
        StoreSettings {
            dir: dir.clone(),
            max_bytes: 64 << 20,
            clock: Clock::from_fn(move || clock.load(Ordering::Relaxed)),
            maintain_every: 1 << 40,
        },
        Arc::new(StoreMetrics::register(&mut Registry::default())),
    );
    store.flush().await;
    Opened {
        store,
        task,
        now,
        dir,
    }
}

/// Statement 7 (`calls` a pass at `ms` each, 2 blocks read a call) and
/// statement 8 (`few` calls a pass at the same speed).
fn statements(at: i64, calls: i64, few: i64, ms: f64) -> Write {
    let delta = |queryid, calls: i64| StatementDelta {
        queryid,
        text: Some(Arc::from(format!("SELECT * FROM t{queryid} WHERE id = $1"))),
        calls,
        total_ms: calls as f64 * ms,
        rows: calls,
        shared_hit: calls * 4,
        shared_read: calls * 2,
        temp_written: 0,
        io_ms: 0.0,
    };
    Write::Statements {
        at,
        database: Arc::from("shop"),
        rows: vec![delta(7, calls), delta(8, few)],
    }
}

/// `requests` to `GET /orders`, all in the bucket up to `upper`.
fn routes(at: i64, requests: u64, upper: usize) -> Write {
    let mut buckets = vec![0; 4];
    buckets[upper] = requests;
    Write::Routes {
        at,
        bounds: Arc::from(vec![0.01, 0.1, 1.0, f64::INFINITY]),
        rows: vec![RouteDelta {
            method: "GET".into(),
            route: "/orders".into(),
            requests,
            errors: 0,
            sum_seconds: 0.0,
            buckets,
        }],
    }
}

/// A week at 2 ms a call (10 calls an hour; statement 8 one call an hour)
/// and p95 under 10 ms (30 requests an hour), flushed as it goes so the
/// writer's queue never drops a batch.
async fn baseline(store: &Store) {
    for hour in 0..7 * 24 {
        let at = START + hour * HOUR + 600;
        store.record(statements(at, 10, 1, 2.0));
        store.record(routes(at, 30, 0));
        if hour % 32 == 0 {
            store.flush().await;
        }
    }
}

/// One hour from `from`, six passes at `ms` a call (10 calls each;
/// statement 8 one each), requests in bucket `upper`.
fn hour(store: &Store, from: i64, ms: f64, upper: usize) {
    for pass in 0..6 {
        let at = from + pass * 600 + 60;
        store.record(statements(at, 10, 1, ms));
        store.record(routes(at, 40, upper));
    }
}

async fn run(opened: &Opened, at: i64) -> (Vec<Regression>, Vec<FindingRow>) {
    opened.now.store(at, Ordering::Relaxed);
    opened.store.flush().await;
    let (found, open) = opened
        .store
        .read(move |conn| Ok((check(conn, at)?, read::open_findings(conn, "", 100)?)))
        .await
        .expect("check");
    let current: Vec<_> = found.iter().map(Regression::recorded).collect();
    for change in crate::findings::recorded::changes(&open, &current, at) {
        opened.store.record(Write::Finding(change));
    }
    opened.store.flush().await;
    (found, open)
}

async fn findings(opened: &Opened) -> Vec<FindingRow> {
    opened
        .store
        .read(|conn| read::findings(conn, 0, i64::MAX))
        .await
        .expect("findings")
}

#[tokio::test]
async fn three_times_slower_for_an_hour_regresses_then_resolves() {
    let opened = open("slower").await;
    baseline(&opened.store).await;
    hour(&opened.store, SLOW, 6.0, 2);

    let (found, _) = run(&opened, SLOW + HOUR).await;
    // Statement 8 tripled too, but with 6 calls in the hour: not enough.
    assert_eq!(found.len(), 2, "{found:#?}");
    let statement = found
        .iter()
        .find(|r| r.measure == Measure::MeanTime)
        .expect("the statement regressed");
    assert_eq!(statement.queryid, Some(7));
    assert_eq!(statement.database.as_deref(), Some("shop"));
    assert_eq!((statement.before, statement.after), (2.0, 6.0));
    assert_eq!(
        (statement.before_count, statement.after_count),
        (7 * 24 * 10, 60)
    );
    assert_eq!(statement.key(), "statement_regression:shop/7");
    assert!(
        statement.summary().contains("6.00 ms per call")
            && statement.summary().contains("2.00 ms per call")
            && statement.summary().contains("3.0×"),
        "{}",
        statement.summary()
    );
    let route = found
        .iter()
        .find(|r| r.measure == Measure::RouteP95)
        .expect("the route regressed");
    assert_eq!(route.route.as_deref(), Some("GET /orders"));
    assert!(route.before < 0.01 && route.after > 0.1, "{route:?}");
    assert_eq!(route.after_count, 240);
    // Without the token the statement's text stays out of the finding.
    let public = statement.recommendation(false);
    assert_eq!(public.kind, "statement_regression");
    assert!(!public.message.contains("SELECT"), "{}", public.message);
    assert!(public.objects.is_none());
    assert!(statement.recommendation(true).message.contains("SELECT"));

    let stored = findings(&opened).await;
    assert_eq!(stored.len(), 2, "{stored:#?}");
    assert!(stored.iter().all(|f| f.closed.is_none()));

    // Five minutes later nothing changed: nothing is reopened.
    let (again, open) = run(&opened, SLOW + HOUR + 300).await;
    assert_eq!(again.len(), 2);
    assert_eq!(open.len(), 2);
    assert_eq!(findings(&opened).await.len(), 2);

    // Back to 2 ms for the next hour: no regression, the findings close.
    hour(&opened.store, SLOW + HOUR, 2.0, 0);
    let (found, _) = run(&opened, SLOW + 2 * HOUR + 1).await;
    assert!(found.is_empty(), "{found:#?}");
    let stored = findings(&opened).await;
    assert_eq!(stored.len(), 2);
    assert!(
        stored.iter().all(|f| f.closed == Some(SLOW + 2 * HOUR + 1)),
        "{stored:#?}"
    );
    opened.task.join().await;
    let _ = std::fs::remove_dir_all(&opened.dir);
}

#[tokio::test]
async fn too_few_calls_or_no_baseline_is_no_regression() {
    let opened = open("few").await;
    // Two days of baseline only at 10 calls a day: 20 calls, under 50.
    for day in 0..2 {
        opened
            .store
            .record(statements(SLOW - (day + 1) * DAY, 10, 0, 2.0));
    }
    hour(&opened.store, SLOW, 20.0, 2);
    let (found, _) = run(&opened, SLOW + HOUR).await;
    assert!(found.is_empty(), "{found:#?}");
    assert!(findings(&opened).await.is_empty());
    opened.task.join().await;
    let _ = std::fs::remove_dir_all(&opened.dir);
}

#[tokio::test]
async fn a_small_absolute_rise_is_not_a_regression() {
    let opened = open("small").await;
    for hour in 0..7 * 24 {
        opened
            .store
            .record(statements(START + hour * HOUR, 10, 0, 0.02));
        if hour % 32 == 0 {
            opened.store.flush().await;
        }
    }
    hour(&opened.store, SLOW, 0.06, 0);
    let (found, _) = run(&opened, SLOW + HOUR).await;
    assert!(found.is_empty(), "20 µs to 60 µs: {found:#?}");
    // The figures were there: both sides had their calls.
    let store = &opened.store;
    let calls = |from, to| async move {
        store
            .read(move |conn| read::statement_totals(conn, "shop", from, to, 10))
            .await
            .expect("totals")
            .iter()
            .find(|total| total.queryid == 7)
            .map(|total| total.sums.calls)
    };
    assert_eq!(calls(START, SLOW).await, Some(7 * 24 * 10));
    assert_eq!(calls(SLOW, SLOW + HOUR).await, Some(60));
    opened.task.join().await;
    let _ = std::fs::remove_dir_all(&opened.dir);
}
