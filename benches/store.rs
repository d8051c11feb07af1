//! The history store's size and write cost for a large workload: 5,000
//! statements and 200 routes with calls every minute (the recorder's raw
//! point), written through the store's own queue and writer thread.
//! `STATEMENTS=500` gives what the recorder writes for any workload (it
//! keeps the 500 busiest of a minute and sums the rest into one row).
//!
//!   cargo bench --bench store --features store
//!   HOURS=24 cargo bench --bench store --features store
//!
//! Prints the bytes per raw point, the file after the simulated hours, the
//! day it extrapolates to, the steady state of the three tiers (a raw day,
//! 14 days of 5-minute sums, 90 days of hourly sums) and the time one
//! minute's batch takes the writer.

use std::sync::Arc;
use std::time::Instant;

use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{RouteDelta, StatementDelta, Store, StoreSettings, Write};

const ROUTES: usize = 200;

fn main() {
    let statements: i64 = std::env::var("STATEMENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(5_000);
    let hours: i64 = std::env::var("HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(2);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = std::env::temp_dir().join(format!("perfscope-store-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let bounds: Arc<[f64]> = Arc::from(
        perfscope::metrics::Buckets::HTTP_DEFAULT
            .iter()
            .copied()
            .chain([f64::INFINITY])
            .collect::<Vec<_>>(),
    );
    runtime.block_on(async {
        let (store, task) = Store::open(
            StoreSettings::new(&dir, 1 << 40),
            Arc::new(StoreMetrics::default()),
        );
        store.flush().await;
        let start = 1_780_000_000i64;
        let minutes = hours * 60;
        let mut batch_times = Vec::with_capacity(minutes as usize);
        for minute in 0..minutes {
            let at = start + minute * 60;
            let rows = (0..statements)
                .map(|q| StatementDelta {
                    queryid: 7_000_000_000 + q * 7_919,
                    text: Some(Arc::from(format!(
                        "SELECT o.id, o.total FROM orders_{} o WHERE o.customer_id = $1 AND o.status = $2 ORDER BY o.created_at DESC LIMIT $3",
                        q % 97
                    ))),
                    calls: 1 + (q + minute) % 40,
                    total_ms: 0.7 * (1 + q % 13) as f64 * (1 + (q + minute) % 40) as f64,
                    rows: (q + minute) % 400,
                    shared_hit: 12 * (1 + (q + minute) % 40),
                    shared_read: (q + minute) % 5,
                    temp_written: 0,
                    io_ms: 0.0,
                })
                .collect();
            let routes = (0..ROUTES)
                .map(|r| RouteDelta {
                    method: "GET".into(),
                    route: format!("/api/v1/resource_{r}/:id"),
                    requests: 600 + (r as u64 * 7 + minute as u64) % 300,
                    errors: (r as u64 + minute as u64) % 3,
                    sum_seconds: 12.5,
                    buckets: (0..bounds.len())
                        .map(|b| if (3..8).contains(&b) { 100 + b as u64 } else { 0 })
                        .collect(),
                })
                .collect();
            let began = Instant::now();
            store.record(Write::Statements { at, database: Arc::from("app"), rows });
            store.record(Write::Routes { at, bounds: bounds.clone(), rows: routes });
            store.flush().await;
            batch_times.push(began.elapsed());
        }
        let bytes = store.bytes();
        task.join().await;
        batch_times.sort();
        let points = minutes * (statements + ROUTES as i64);
        let per_point = bytes as f64 / points as f64;
        let day = per_point * (24 * 60 * (statements + ROUTES as i64)) as f64;
        // A raw day, 14 days at a fifth of the points, 90 at a sixtieth.
        let steady = day * (1.0 + 14.0 / 5.0 + 90.0 / 60.0);
        let mib = |b: f64| b / (1 << 20) as f64;
        println!("store: {statements} statements and {ROUTES} routes with calls every minute, {hours} h simulated");
        println!("  file after {hours} h: {:.1} MiB ({per_point:.1} bytes per raw point)", mib(bytes as f64));
        println!("  a raw day: {:.0} MiB; steady state (1 d raw + 14 d 5-min + 90 d hourly): {:.0} MiB", mib(day), mib(steady));
        println!(
            "  one minute's batch ({} rows) through the writer: median {:.1} ms, p95 {:.1} ms",
            statements + ROUTES as i64,
            batch_times[batch_times.len() / 2].as_secs_f64() * 1e3,
            batch_times[batch_times.len() * 95 / 100].as_secs_f64() * 1e3
        );
    });
    let _ = std::fs::remove_dir_all(&dir);
}
