//! Seeds a history store for `bench/history-pages`: `seed_history <dir>
//! <days> [statements file]` writes `days` of history ending now into
//! `<dir>`'s store through `perfscope::testing::history` (see its docs for
//! what), then closes it, so an agent started on `PERFSCOPE_DATA_DIR=<dir>`
//! reads it. The statements file holds `queryid<TAB>text` lines (a
//! cluster's pg_stat_statements, so the Queries page lists them); without
//! it the statements are synthetic. A bench tool, not a product command.

use std::sync::Arc;

use perfscope::metrics::store::StoreMetrics;
use perfscope::store::{Store, StoreSettings};
use perfscope::testing::history::{Seed, seed};

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: seed_history <dir> <days> [statements file]";
    let dir = args.next().ok_or(usage)?;
    let days: i64 = args.next().and_then(|d| d.parse().ok()).ok_or(usage)?;
    let statements = match args.next() {
        Some(file) => std::fs::read_to_string(&file)
            .map_err(|e| format!("{file}: {e}"))?
            .lines()
            .filter_map(|line| {
                let (id, text) = line.split_once('\t')?;
                Some((id.trim().parse().ok()?, text.to_owned()))
            })
            .collect(),
        None => Vec::new(),
    };
    let (store, task) = Store::open(
        StoreSettings::new(&dir, perfscope::config::DEFAULT_STORE_MAX_BYTES),
        Arc::new(StoreMetrics::default()),
    );
    store.flush().await;
    let started = std::time::Instant::now();
    let seeded = seed(
        &store,
        &Seed {
            statements,
            ..Seed::of_days(days)
        },
    )
    .await;
    let state = store.state();
    task.join().await;
    println!(
        "seeded {days} days ({} batches, regressed queryid {}) in {:.1} s; store {state:?}",
        seeded.batches,
        seeded.regressed,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
