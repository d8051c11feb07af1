//! The comparison on a real store file: rows written with a test clock on
//! both sides of a marker, then compared.

use std::sync::Arc;

use super::*;
use crate::metrics::store::StoreMetrics;
use crate::store::{
    Clock, Event, EventKind, RouteDelta, StatementDelta, StoreSettings, StoreTask, Write,
};

const AT: i64 = 1_780_000_000;
const BOUNDS: [f64; 4] = [0.01, 0.1, 1.0, f64::INFINITY];

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "perfscope-compare-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

async fn open(dir: &std::path::Path) -> (Store, StoreTask) {
    let (store, task) = Store::open(
        StoreSettings {
            dir: dir.to_owned(),
            max_bytes: 64 << 20,
            clock: Clock::from_fn(|| AT + 3_600),
            maintain_every: 1_000_000,
        },
        Arc::new(StoreMetrics::default()),
    );
    store.flush().await;
    (store, task)
}

fn statement(queryid: i64, calls: i64, mean_ms: f64, reads: i64) -> StatementDelta {
    StatementDelta {
        queryid,
        text: Some(Arc::from(format!("SELECT * FROM t{queryid} WHERE id = $1"))),
        calls,
        total_ms: calls as f64 * mean_ms,
        rows: calls,
        shared_hit: 0,
        shared_read: reads,
        temp_written: 0,
        io_ms: 0.0,
    }
}

/// `requests` to `route`, all in the bucket of index `bucket`, each
/// lasting `seconds`; `errors` of them 5xx.
fn route(route: &str, requests: u64, errors: u64, bucket: usize, seconds: f64) -> RouteDelta {
    let mut buckets = vec![0; BOUNDS.len()];
    buckets[bucket] = requests;
    RouteDelta {
        method: "GET".into(),
        route: route.into(),
        requests,
        errors,
        sum_seconds: requests as f64 * seconds,
        buckets,
    }
}

fn write_side(store: &Store, at: i64, statements: Vec<StatementDelta>, routes: Vec<RouteDelta>) {
    store.record(Write::Statements {
        at,
        database: Arc::from("shop"),
        rows: statements,
    });
    store.record(Write::Routes {
        at,
        bounds: Arc::from(BOUNDS.to_vec()),
        rows: routes,
    });
}

#[tokio::test]
async fn a_marker_splits_routes_and_statements_into_before_and_after() {
    let dir = temp_dir("split");
    let (store, task) = open(&dir).await;
    // Before: 1 is fast, 2 steady, 3 has too few calls; the orders route
    // is fast, the health route too quiet.
    write_side(
        &store,
        AT - 1_800,
        vec![
            statement(1, 30, 2.0, 30),
            statement(2, 40, 1.0, 0),
            statement(3, 5, 9.0, 0),
        ],
        vec![
            route("/orders", 40, 0, 1, 0.05),
            route("/health", 10, 0, 0, 0.001),
        ],
    );
    // Outside both windows: never counted.
    write_side(
        &store,
        AT - 7_200,
        vec![statement(1, 1_000, 100.0, 0)],
        vec![route("/orders", 1_000, 0, 3, 5.0)],
    );
    store.record(Write::Event(Event {
        at: AT,
        kind: EventKind::Deploy,
        database: None,
        label: "v2".into(),
        detail: None,
    }));
    // After: 1 three times slower and reading from disk, 2 steady, 4 new;
    // orders slower with errors.
    write_side(
        &store,
        AT + 1_800,
        vec![
            statement(1, 30, 6.0, 300),
            statement(2, 40, 1.1, 0),
            statement(4, 50, 1.0, 0),
        ],
        vec![
            route("/orders", 50, 5, 2, 0.5),
            route("/health", 10, 0, 0, 0.001),
        ],
    );
    store.flush().await;

    let comparison = compare(Some(&store), "shop", AT, 3_600)
        .await
        .expect("compared");
    assert_eq!(comparison.minimum_samples, 20);

    let ids: Vec<&str> = comparison
        .statements
        .iter()
        .map(|s| s.queryid.as_str())
        .collect();
    assert_eq!(
        ids,
        ["1", "2"],
        "the largest change first; 3 and 4 lack a side"
    );
    assert_eq!(comparison.statements_left_out, 2);
    let slower = &comparison.statements[0];
    assert_eq!(slower.before.calls, 30);
    assert!((slower.before.mean_ms - 2.0).abs() < 1e-6);
    assert!((slower.after.mean_ms - 6.0).abs() < 1e-6);
    assert!((slower.mean_change.expect("a change") - 2.0).abs() < 1e-6);
    assert!((slower.before.blocks_read_per_call - 1.0).abs() < 1e-9);
    assert!((slower.after.blocks_read_per_call - 10.0).abs() < 1e-9);
    assert_eq!(
        slower.text.as_deref(),
        Some("SELECT * FROM t1 WHERE id = $1")
    );

    assert_eq!(comparison.routes.len(), 1, "{:?}", comparison.routes);
    assert_eq!(comparison.routes_left_out, 1);
    let orders = &comparison.routes[0];
    assert_eq!(
        (orders.method.as_str(), orders.route.as_str()),
        ("GET", "/orders")
    );
    assert_eq!((orders.before.requests, orders.after.requests), (40, 50));
    assert_eq!(orders.before.error_ratio, 0.0);
    assert!((orders.after.error_ratio - 0.1).abs() < 1e-9);
    assert!((orders.before.mean_ms - 50.0).abs() < 1e-3);
    assert!((orders.after.mean_ms - 500.0).abs() < 1e-3);
    assert!((orders.mean_change.expect("a change") - 9.0).abs() < 1e-3);
    // p95 inside the bucket that holds it: (0.01, 0.1] before, (0.1, 1] after.
    assert!(orders.before.p95_ms > 10.0 && orders.before.p95_ms <= 100.0);
    assert!(orders.after.p95_ms > 100.0 && orders.after.p95_ms <= 1_000.0);

    // Another database's statements are not this one's.
    let other = compare(Some(&store), "other", AT, 3_600)
        .await
        .expect("compared");
    assert!(other.statements.is_empty());
    assert_eq!(other.statements_left_out, 0);
    task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn windows_are_validated_and_no_store_is_said() {
    assert!(matches!(
        compare(None, "shop", AT, 3_600).await,
        Err(HistoryError::NoStore)
    ));
    let dir = temp_dir("validate");
    let (store, task) = open(&dir).await;
    for (at, window, field) in [
        (AT, 10, "window"),
        (AT, 31 * 86_400, "window"),
        (-1, 60, "at"),
    ] {
        match compare(Some(&store), "shop", at, window).await {
            Err(HistoryError::BadRequest(message)) => {
                assert!(message.contains(&format!("`{field}`")), "{message}");
            }
            other => panic!("{at} {window}: {other:?}"),
        }
    }
    // A moment nearer the epoch than the window: the window before it
    // starts at 0, it is not refused.
    let early = compare(Some(&store), "shop", 5, 60).await;
    assert!(early.is_ok(), "{early:?}");
    task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn statement_total(queryid: i64, before: f64, after: f64) -> (StatementTotal, StatementTotal) {
    let total = |mean: f64| StatementTotal {
        queryid,
        text: None,
        sums: read::StatementPoint {
            calls: 100,
            total_ms: 100.0 * mean,
            ..Default::default()
        },
    };
    (total(before), total(after))
}

#[test]
fn twice_as_fast_weighs_as_much_as_twice_as_slow_and_the_list_is_capped() {
    let mut before = Window::default();
    let mut after = Window::default();
    let mut add = |queryid, from, to| {
        let (b, a) = statement_total(queryid, from, to);
        before.statements.push(b);
        after.statements.push(a);
    };
    add(1, 10.0, 11.0);
    add(2, 10.0, 5.0);
    add(3, 10.0, 20.0);
    add(4, 10.0, 40.0);
    for queryid in 100..160 {
        add(queryid, 10.0, 10.0);
    }
    let comparison = compare_windows("shop", AT, 3_600, &before, &after);
    let first: Vec<&str> = comparison.statements[..4]
        .iter()
        .map(|s| s.queryid.as_str())
        .collect();
    assert_eq!(&first[..1], ["4"]);
    assert!(
        first[1..3].contains(&"2") && first[1..3].contains(&"3"),
        "{first:?}"
    );
    assert_eq!(first[3], "1");
    assert_eq!(comparison.statements.len(), MAX_ENTRIES);
    assert_eq!(comparison.statements_left_out, 64 - MAX_ENTRIES);
}

#[tokio::test]
async fn a_comparison_is_read_once_a_minute_whoever_asks() {
    use std::sync::atomic::{AtomicI64, Ordering};

    let dir = temp_dir("shared");
    let now = Arc::new(AtomicI64::new(AT + 3_600));
    let clock = now.clone();
    let (store, task) = Store::open(
        StoreSettings {
            dir: dir.clone(),
            max_bytes: 64 << 20,
            clock: Clock::from_fn(move || clock.load(Ordering::Relaxed)),
            maintain_every: 1_000_000,
        },
        Arc::new(StoreMetrics::default()),
    );
    write_side(&store, AT - 600, vec![statement(1, 100, 1.0, 0)], vec![]);
    write_side(&store, AT + 600, vec![statement(1, 100, 3.0, 0)], vec![]);
    store.flush().await;
    let shared = Comparisons::default();
    let calls = |c: &Comparison| c.statements.first().map(|s| s.after.calls);

    let first = shared
        .compare(Some(&store), "shop", AT, 3_600)
        .await
        .expect("compared");
    assert_eq!(calls(&first), Some(100));
    // More calls after the moment, asked again within the minute: the
    // same answer; the uncached use case sees them.
    write_side(&store, AT + 900, vec![statement(1, 50, 3.0, 0)], vec![]);
    store.flush().await;
    now.fetch_add(59, Ordering::Relaxed);
    let again = shared
        .compare(Some(&store), "shop", AT, 3_600)
        .await
        .expect("compared");
    assert_eq!(again, first);
    let fresh = compare(Some(&store), "shop", AT, 3_600)
        .await
        .expect("compared");
    assert_eq!(calls(&fresh), Some(150));
    // A minute on, a new read.
    now.fetch_add(1, Ordering::Relaxed);
    let later = shared
        .compare(Some(&store), "shop", AT, 3_600)
        .await
        .expect("compared");
    assert_eq!(calls(&later), Some(150));
    // Bad parameters are refused before anything is kept.
    assert!(matches!(
        shared.compare(Some(&store), "shop", AT, 10).await,
        Err(HistoryError::BadRequest(_))
    ));
    assert!(matches!(
        shared.compare(None, "shop", AT, 3_600).await,
        Err(HistoryError::NoStore)
    ));
    task.join().await;
    let _ = std::fs::remove_dir_all(&dir);
}
