//! The forecasts over a real store in a temp dir: 30 simulated days of
//! sizes written as the recorder writes them (several readings a day, the
//! last one winning), read back and fitted.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::*;
use crate::findings::growth::{Fit, WINDOW_DAYS};
use crate::metrics::store::StoreMetrics;
use crate::store::{Clock, RelationKind, RelationSize, Store, StoreSettings, StoreTask, Write};

const DAY: i64 = 86_400;
const START: i64 = 1_780_000_000 - 1_780_000_000 % DAY;
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = 1024.0 * MIB;

struct TestStore {
    store: Store,
    task: StoreTask,
    dir: std::path::PathBuf,
    now: Arc<AtomicI64>,
}

fn open(name: &str) -> TestStore {
    let dir = std::env::temp_dir().join(format!(
        "perfscope-growth-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    let now = Arc::new(AtomicI64::new(START));
    let clock_now = now.clone();
    let (store, task) = Store::open(
        StoreSettings {
            dir: dir.clone(),
            max_bytes: 64 << 20,
            clock: Clock::from_fn(move || clock_now.load(Ordering::Relaxed)),
            maintain_every: 300,
        },
        Arc::new(StoreMetrics::default()),
    );
    TestStore {
        store,
        task,
        dir,
        now,
    }
}

impl TestStore {
    /// Writes `days` days of readings: `size(kind, day)` for each series,
    /// at 01:00 (a stale reading) and 23:00 (the day's last, which wins).
    async fn write_days(
        &self,
        days: i64,
        series: &[(RelationKind, &str)],
        size: impl Fn(&str, i64) -> f64,
    ) {
        for day in 0..days {
            for (hour, stale) in [(1, true), (23, false)] {
                let at = START + day * DAY + hour * 3_600;
                self.now.store(at, Ordering::Relaxed);
                let rows = series
                    .iter()
                    .map(|(kind, name)| RelationSize {
                        kind: *kind,
                        name: (*name).to_owned(),
                        // The stale reading is off by a lot: it must not count.
                        bytes: if stale {
                            1
                        } else {
                            size(name, day).round() as i64
                        },
                    })
                    .collect();
                self.store.record(Write::Sizes {
                    at,
                    database: Arc::from("shop"),
                    rows,
                });
            }
        }
        self.store.flush().await;
    }

    /// The report over what the store holds, as the service builds it.
    async fn report(
        &self,
        target_bytes: Option<i64>,
        bounds: &[(String, f64)],
        limit: usize,
    ) -> GrowthReport {
        let from_day = self.store.now().div_euclid(DAY) - WINDOW_DAYS;
        let series = self
            .store
            .read(move |conn| read_stored(conn, "shop", from_day))
            .await
            .expect("the store reads");
        let mut report = GrowthReport {
            database: "shop".into(),
            history: History::Kept,
            target_bytes,
            total: None,
            objects: Vec::new(),
            sequences: Vec::new(),
        };
        assemble(&mut report, series, bounds, limit);
        report
    }

    async fn close(self) {
        self.task.join().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn object<'a>(report: &'a GrowthReport, name: &str) -> &'a SizeGrowth {
    report
        .objects
        .iter()
        .chain(&report.total)
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("{name} is reported: {report:?}"))
}

fn per_day(growth: &SizeGrowth) -> f64 {
    growth
        .fit
        .trend()
        .unwrap_or_else(|| panic!("a trend: {growth:?}"))
        .per_day
}

fn within(actual: f64, expected: f64, share: f64) -> bool {
    (actual - expected).abs() <= expected.abs() * share
}

#[tokio::test]
async fn linear_growth_is_recovered_with_the_days_until_double_and_target() {
    let store = open("linear");
    store
        .write_days(
            30,
            &[
                (RelationKind::Database, "shop"),
                (RelationKind::Table, "public.orders"),
                (RelationKind::Index, "public.orders_pkey"),
            ],
            |name, day| match name {
                "shop" => 10.0 * GIB + 100.0 * MIB * day as f64,
                "public.orders" => GIB + 20.0 * MIB * day as f64,
                _ => 64.0 * MIB + MIB * day as f64,
            },
        )
        .await;
    let report = store.report(Some((20.0 * GIB) as i64), &[], 20).await;

    let total = report.total.as_ref().expect("the database's row");
    assert!(within(per_day(total), 100.0 * MIB, 0.02), "{total:?}");
    assert_eq!(total.fit.days(), 30);
    // 13 140 MiB now, +100 MiB a day: 131.4 days to double, 73.4 to 20 GiB.
    let double = total.days_until_double.expect("it doubles");
    assert!(within(double, 131.4, 0.01), "{double}");
    let target = total.days_until_target.expect("it reaches the target");
    assert!(within(target, 73.4, 0.01), "{target}");

    let orders = object(&report, "public.orders");
    assert!(within(per_day(orders), 20.0 * MIB, 0.02), "{orders:?}");
    assert_eq!(
        orders.fit.now(),
        Some((GIB + 20.0 * MIB * 29.0).round()),
        "the day's last reading wins"
    );
    assert_eq!(orders.points.len(), 30, "the chart's points");
    // The database is not among the tables and indexes.
    assert_eq!(report.objects[0].name, "public.orders", "fastest first");
    assert_eq!(report.objects.len(), 2, "{report:?}");
    store.close().await;
}

#[tokio::test]
async fn noisy_sizes_and_an_outlier_day_still_give_the_trend() {
    let store = open("noisy");
    store
        .write_days(30, &[(RelationKind::Table, "public.events")], |_, day| {
            // ±30 % of a day's growth, deterministic, and one day of a
            // bulk load that was deleted again the next day.
            let noise = [0.3, -0.2, 0.1, -0.3, 0.25, -0.1, 0.0][(day % 7) as usize];
            let outlier = if day == 17 { 3.0 * GIB } else { 0.0 };
            2.0 * GIB + 50.0 * MIB * (day as f64 + noise) + outlier
        })
        .await;
    let report = store.report(None, &[], 20).await;
    let events = object(&report, "public.events");
    assert!(
        within(per_day(events), 50.0 * MIB, 0.05),
        "{} MiB a day",
        per_day(events) / MIB
    );
    assert!(events.days_until_double.is_some());
    assert_eq!(events.days_until_target, None, "no target asked");
    store.close().await;
}

#[tokio::test]
async fn too_little_history_gives_no_forecast() {
    let store = open("fresh");
    store
        .write_days(2, &[(RelationKind::Table, "public.new")], |_, day| {
            MIB * (1.0 + day as f64)
        })
        .await;
    let report = store.report(Some(1), &[], 20).await;
    let new = object(&report, "public.new");
    assert_eq!(
        new.fit,
        Fit::NotEnoughHistory {
            days: 2,
            now: Some(2.0 * MIB)
        }
    );
    assert_eq!(new.days_until_double, None);
    assert_eq!(new.days_until_target, None);
    assert!(report.total.is_none());
    store.close().await;
}

#[tokio::test]
async fn a_shrinking_table_has_no_date_and_sorts_after_growing_ones() {
    let store = open("shrinking");
    store
        .write_days(
            30,
            &[
                (RelationKind::Table, "public.archive"),
                (RelationKind::Table, "public.flat"),
                (RelationKind::Table, "public.users"),
            ],
            |name, day| match name {
                "public.archive" => 5.0 * GIB - 30.0 * MIB * day as f64,
                "public.flat" => GIB,
                _ => 100.0 * MIB + MIB * day as f64,
            },
        )
        .await;
    let report = store.report(Some((100.0 * GIB) as i64), &[], 2).await;
    let names: Vec<&str> = report.objects.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(
        names,
        ["public.users", "public.flat"],
        "limit 2, fastest first"
    );
    let report = store.report(Some((100.0 * GIB) as i64), &[], 20).await;
    let archive = object(&report, "public.archive");
    assert!(within(per_day(archive), -30.0 * MIB, 0.02), "{archive:?}");
    assert_eq!(archive.days_until_double, None);
    assert_eq!(archive.days_until_target, None);
    let flat = object(&report, "public.flat");
    assert_eq!(per_day(flat), 0.0);
    assert_eq!(flat.days_until_double, None);
    store.close().await;
}

#[tokio::test]
async fn a_sequence_is_forecast_to_its_bound() {
    let store = open("sequence");
    let max = f64::from(i32::MAX);
    store
        .write_days(
            10,
            &[
                (RelationKind::Sequence, "public.orders_id_seq"),
                (RelationKind::Sequence, "public.slow_seq"),
                (RelationKind::Sequence, "public.down_seq"),
            ],
            |name, day| match name {
                "public.orders_id_seq" => 0.8 * max + 1_000_000.0 * day as f64,
                "public.slow_seq" => 0.8 * max + 10.0 * day as f64,
                _ => -0.8 * max - 2_000_000.0 * day as f64,
            },
        )
        .await;
    let bounds = [
        ("public.orders_id_seq".to_owned(), max),
        ("public.slow_seq".to_owned(), max),
        ("public.down_seq".to_owned(), f64::from(i32::MIN)),
    ];
    let report = store.report(None, &bounds, 20).await;
    let names: Vec<&str> = report.sequences.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["public.down_seq", "public.orders_id_seq", "public.slow_seq"],
        "soonest exhausted first"
    );
    let orders = &report.sequences[1];
    let left = max - (0.8 * max + 9_000_000.0).round();
    let days = orders.days_until_exhausted.expect("it runs out");
    assert!(within(days, left / 1_000_000.0, 0.01), "{days}");
    let down = &report.sequences[0];
    assert!(down.days_until_exhausted.is_some(), "{down:?}");
    // 10 a day: over a hundred years, so no date.
    assert_eq!(report.sequences[2].days_until_exhausted, None);
    assert!(report.objects.is_empty(), "sequences are not sizes");
    store.close().await;
}
