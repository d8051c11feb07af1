//! A seeded history for the history store: days of plausible routes,
//! statements, sizes and events written through the store's own API, so
//! the pages' ranges (`?range=24h|7d|30d`) can be looked at, screenshotted
//! and timed without waiting a month. The browser tour (`tests/ui.rs`)
//! and the page-load benchmark (`bench/history-pages`, through
//! `examples/seed_history.rs`) both use it.
//!
//! What [`seed`] writes, ending at the store's clock's now and going back
//! [`Seed::days`]:
//!
//! - **routes**: the ten of [`ROUTES`], each a minute's bucket counts of
//!   the request-duration histogram ([`Buckets::HTTP_DEFAULT`]), with a
//!   daily cycle (busiest mid-afternoon UTC, a fifth of that at night);
//!   [`SLOW_ROUTE`] answers in the 100–250 ms bucket instead of 25–50 ms
//!   after the deploy, and 1 % of its answers are errors;
//! - **statements**: twenty per pass for [`Seed::database`] (the ones
//!   given, then synthetic ones up to twenty), calls on the same cycle;
//!   the first is [`Seeded::regressed`]: 2 ms per call before the deploy,
//!   three times that after;
//! - **runtime**: one minute per pass, lag and utilization on the same
//!   cycle, resident memory 22–28 MiB, 2 MiB more after the deploy;
//! - **sizes**: one reading a day (the store keeps a day's last) of the
//!   database, three tables and two indexes, each growing linearly, and
//!   the position of one sequence;
//! - **events**: a deploy [`DEPLOY_AGO`] ago (label [`DEPLOY_LABEL`]), a
//!   marker [`MARKER_AGO`] ago ([`MARKER_LABEL`]), a plan change of the
//!   regressed statement with its two plan shapes a little after the
//!   deploy, and a pg_stat_statements reset five days ago; each only when
//!   it falls inside the seeded days.
//!
//! Why passes are not all a minute apart: the store keeps raw passes for a
//! day, 5-minute sums for 14 and hourly sums after that, so the seeder
//! writes each part of the past as one pass per step of the tier it ends
//! in (a minute, 5 minutes, an hour), with that step's worth of calls and
//! requests; then [`Store::maintain`] rolls them up as it would have.
//! The sums the pages read are the same and a month seeds in seconds.
//!
//! Deterministic: the same seed and now write the same rows (a SplitMix64
//! jitter, no `rand`).

use std::sync::Arc;

use crate::metrics::Buckets;
use crate::store::{
    Event, EventKind, RelationKind, RelationSize, RouteDelta, RuntimeMinute, StatementDelta, Store,
    Write,
};

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// The seeded routes: method and template.
pub const ROUTES: [(&str, &str); 10] = [
    ("GET", "/"),
    ("GET", "/products"),
    ("GET", "/products/:id"),
    ("GET", "/search"),
    ("POST", "/cart/items"),
    ("GET", "/cart"),
    ("POST", "/checkout"),
    ("GET", "/orders/:id"),
    ("POST", "/login"),
    ("GET", "/healthz"),
];

/// The route that gets slower after the deploy.
pub const SLOW_ROUTE: (&str, &str) = ("POST", "/checkout");

/// How long before now the deploy happened.
pub const DEPLOY_AGO: i64 = 3 * DAY;
/// The deploy's label.
pub const DEPLOY_LABEL: &str = "shop v2.4.0";
/// How long before now the marker was posted (inside 24 hours, outside
/// the last hour).
pub const MARKER_AGO: i64 = 6 * HOUR;
/// The marker's label.
pub const MARKER_LABEL: &str = "load test";
/// How long before now pg_stat_statements was reset.
pub const RESET_AGO: i64 = 5 * DAY;
/// Statements per pass.
pub const STATEMENTS: usize = 20;
/// Mean time per call of the regressed statement before the deploy, ms
/// (three times that after).
pub const REGRESSED_MS: f64 = 2.0;
/// Batches queued before waiting for the writer (its queue holds 256).
const FLUSH_EVERY: usize = 128;

/// What to seed.
#[derive(Clone, Debug)]
pub struct Seed {
    /// Days back from now (at most 90, the store's longest tier).
    pub days: i64,
    /// The database the statements and sizes belong to.
    pub database: String,
    /// Statements to use first, `(queryid, normalized text)` (e.g. real
    /// ones of a cluster's pg_stat_statements, so its pages list them);
    /// synthetic ones fill up to [`STATEMENTS`].
    pub statements: Vec<(i64, String)>,
    /// The jitter's seed.
    pub seed: u64,
}

impl Seed {
    /// `days` of history for database `default`, synthetic statements.
    pub fn of_days(days: i64) -> Self {
        Self {
            days,
            database: "default".into(),
            statements: Vec::new(),
            seed: 19,
        }
    }
}

/// What was seeded, for the checks that follow.
#[derive(Clone, Debug, PartialEq)]
pub struct Seeded {
    /// The first and last pass, Unix seconds.
    pub from: i64,
    /// The last pass.
    pub to: i64,
    /// When the deploy happened.
    pub deploy_at: i64,
    /// The statements, in order: queryid and text.
    pub statements: Vec<(i64, String)>,
    /// The queryid that regressed after the deploy.
    pub regressed: i64,
    /// Batches handed to the store.
    pub batches: usize,
}

/// Writes `seed.days` of history ending at `store.now()` (see the module
/// docs), waits until it is written, then runs the store's maintenance
/// (rollups, retention) once.
pub async fn seed(store: &Store, seed: &Seed) -> Seeded {
    let now = store.now();
    let days = seed.days.clamp(1, 90);
    let from = now - days * DAY;
    let statements = statements(seed);
    let regressed = statements[0].0;
    let deploy_at = now - DEPLOY_AGO;
    let mut writer = Writer {
        store,
        queued: 0,
        batches: 0,
    };
    let mut jitter = SplitMix(seed.seed);
    let bounds: Arc<[f64]> = Buckets::HTTP_DEFAULT
        .iter()
        .copied()
        .chain([f64::INFINITY])
        .collect();
    let database: Arc<str> = Arc::from(seed.database.as_str());
    let texts: Vec<Arc<str>> = statements
        .iter()
        .map(|(_, text)| Arc::from(text.as_str()))
        .collect();
    let mut at = align(from, step_at(now, from));
    let mut last = at;
    while at <= now {
        let step = step_at(now, at);
        let after = at >= deploy_at;
        writer
            .write(routes(at, step, after, &bounds, &mut jitter))
            .await;
        writer.write(runtime(at, after, &mut jitter)).await;
        writer
            .write(Write::Statements {
                at,
                database: database.clone(),
                rows: statement_rows(&statements, &texts, at, step, after, &mut jitter),
            })
            .await;
        last = at;
        at += step;
    }
    let mut day = from.div_euclid(DAY);
    while day * DAY <= now {
        let reading = (day * DAY + 23 * HOUR).min(now);
        if reading >= from {
            writer
                .write(sizes(
                    &database,
                    reading,
                    (reading - from) as f64 / DAY as f64,
                ))
                .await;
        }
        day += 1;
    }
    for event in events(&seed.database, now, regressed) {
        if event.at >= from {
            writer.write(Write::Event(event)).await;
        }
    }
    store.flush().await;
    store.maintain().await;
    Seeded {
        from: align(from, step_at(now, from)),
        to: last,
        deploy_at,
        statements,
        regressed,
        batches: writer.batches,
    }
}

/// Hands batches to the store, waiting for the writer every
/// [`FLUSH_EVERY`] so its bounded queue never drops one.
struct Writer<'a> {
    store: &'a Store,
    queued: usize,
    batches: usize,
}

impl Writer<'_> {
    async fn write(&mut self, write: Write) {
        self.store.record(write);
        self.queued += 1;
        self.batches += 1;
        if self.queued >= FLUSH_EVERY {
            self.store.flush().await;
            self.queued = 0;
        }
    }
}

/// The pass length at `at`: a minute in the last day, 5 minutes in the
/// last 14, an hour before.
fn step_at(now: i64, at: i64) -> i64 {
    match now - at {
        age if age <= DAY => MINUTE,
        age if age <= 14 * DAY => 5 * MINUTE,
        _ => HOUR,
    }
}

fn align(at: i64, step: i64) -> i64 {
    at - at.rem_euclid(step)
}

/// The daily cycle at `at`: 0.2 at 03:00 UTC to 1.0 at 15:00.
fn cycle(at: i64) -> f64 {
    let hour = at.rem_euclid(DAY) as f64 / HOUR as f64;
    0.6 - 0.4 * (std::f64::consts::TAU * (hour - 3.0) / 24.0).cos()
}

/// The statements: the given ones first, then synthetic ones up to
/// [`STATEMENTS`].
fn statements(seed: &Seed) -> Vec<(i64, String)> {
    const TABLES: [&str; 5] = ["orders", "products", "customers", "cart_items", "events"];
    let mut out: Vec<(i64, String)> = seed.statements.iter().take(STATEMENTS).cloned().collect();
    let mut n: i64 = 0;
    while out.len() < STATEMENTS {
        let table = TABLES[usize::try_from(n).unwrap_or(0) % TABLES.len()];
        let text = match n % 4 {
            0 => format!("SELECT * FROM {table} WHERE id = $1"),
            1 => format!("SELECT count(*) FROM {table} WHERE created_at > $1"),
            2 => format!("UPDATE {table} SET updated_at = now() WHERE id = $1"),
            _ => format!("INSERT INTO {table} (payload) VALUES ($1)"),
        };
        let queryid = 7_000_000_000_000_000_000 + n;
        if !out.iter().any(|(id, _)| *id == queryid) {
            out.push((queryid, text));
        }
        n += 1;
    }
    out
}

fn statement_rows(
    statements: &[(i64, String)],
    texts: &[Arc<str>],
    at: i64,
    step: i64,
    after_deploy: bool,
    jitter: &mut SplitMix,
) -> Vec<StatementDelta> {
    let minutes = step as f64 / MINUTE as f64;
    statements
        .iter()
        .zip(texts)
        .enumerate()
        .map(|(i, ((queryid, _), text))| {
            let base = 60.0 / (1.0 + i as f64);
            let calls = (base * cycle(at) * minutes * jitter.around(1.0, 0.1)).round() as i64 + 1;
            let mean_ms = match (i, after_deploy) {
                (0, false) => REGRESSED_MS,
                (0, true) => 3.0 * REGRESSED_MS,
                _ => 0.3 + 0.4 * i as f64,
            } * jitter.around(1.0, 0.05);
            let reads = if i == 0 && after_deploy { 40 } else { 1 };
            StatementDelta {
                queryid: *queryid,
                text: Some(text.clone()),
                calls,
                total_ms: calls as f64 * mean_ms,
                rows: calls,
                shared_hit: calls * 4,
                shared_read: calls * reads,
                temp_written: 0,
                io_ms: 0.0,
            }
        })
        .collect()
}

fn routes(
    at: i64,
    step: i64,
    after_deploy: bool,
    bounds: &Arc<[f64]>,
    jitter: &mut SplitMix,
) -> Write {
    let minutes = step as f64 / MINUTE as f64;
    let rows = ROUTES
        .iter()
        .enumerate()
        .map(|(i, &(method, route))| {
            let requests =
                (120.0 / (1.0 + i as f64) * cycle(at) * minutes * jitter.around(1.0, 0.1)).round()
                    as u64
                    + 1;
            // The bucket most requests land in: 2.5–5 ms for the fast
            // routes, 25–50 ms for the slow one, 100–250 ms after the
            // deploy.
            let typical = match ((method, route) == SLOW_ROUTE, after_deploy) {
                (true, false) => 5,
                (true, true) => 8,
                _ => 2 + i % 3,
            };
            let mut buckets = vec![0u64; bounds.len()];
            let tail = requests / 20;
            let next = requests / 5;
            buckets[typical] = requests - tail - next;
            buckets[typical + 1] += next;
            buckets[typical + 3] += tail;
            let sum_seconds = buckets
                .iter()
                .zip(bounds.iter())
                .map(|(count, bound)| *count as f64 * bound.min(10.0) * 0.8)
                .sum();
            RouteDelta {
                method: method.into(),
                route: route.into(),
                requests,
                // 1 % of the checkout's answers fail, on average.
                errors: if (method, route) == SLOW_ROUTE {
                    (requests as f64 * 0.01 + jitter.around(0.5, 1.0)).floor() as u64
                } else {
                    0
                },
                sum_seconds,
                buckets,
            }
        })
        .collect();
    Write::Routes {
        at,
        bounds: bounds.clone(),
        rows,
    }
}

/// The runtime's minute at `at`: lag and utilization on the daily cycle,
/// resident memory a few MiB higher at the busy hours and after the
/// deploy.
fn runtime(at: i64, after_deploy: bool, jitter: &mut SplitMix) -> Write {
    const MIB: f64 = 1024.0 * 1024.0;
    let busy = cycle(at);
    let lag_mean = 0.000_4 * busy * jitter.around(1.0, 0.2);
    let resident = (22.0 + 4.0 * busy + if after_deploy { 2.0 } else { 0.0 }) * MIB;
    Write::Runtime(RuntimeMinute {
        at,
        lag_mean,
        lag_max: lag_mean * (1.0 + jitter.around(3.0, 0.5)),
        utilization: (0.35 * busy * jitter.around(1.0, 0.1)).min(1.0),
        resident_mean: resident as u64,
        resident_max: (resident * jitter.around(1.05, 0.02)) as u64,
    })
}

/// The sizes read `days` after the seed's start.
fn sizes(database: &Arc<str>, at: i64, days: f64) -> Write {
    const MIB: f64 = 1_048_576.0;
    let grow = |start_mib: f64, mib_per_day: f64| ((start_mib + mib_per_day * days) * MIB) as i64;
    let rows = vec![
        (RelationKind::Table, "public.orders", grow(800.0, 24.0)),
        (RelationKind::Table, "public.events", grow(1_500.0, 60.0)),
        (RelationKind::Table, "public.customers", grow(200.0, 2.0)),
        (RelationKind::Index, "public.orders_pkey", grow(90.0, 3.0)),
        (
            RelationKind::Index,
            "public.events_created_at_idx",
            grow(150.0, 6.0),
        ),
        (
            RelationKind::Sequence,
            "public.orders_id_seq",
            (1_500_000_000.0 + 20_000_000.0 * days) as i64,
        ),
        (RelationKind::Database, &**database, grow(3_000.0, 95.0)),
    ]
    .into_iter()
    .map(|(kind, name, bytes)| RelationSize {
        kind,
        name: name.to_owned(),
        bytes,
    })
    .collect();
    Write::Sizes {
        at,
        database: database.clone(),
        rows,
    }
}

fn events(database: &str, now: i64, regressed: i64) -> Vec<Event> {
    let plan_at = now - DEPLOY_AGO + 20 * MINUTE;
    let detail = serde_json::json!({
        "queryid": regressed,
        "beforeFingerprint": "5f1c0a9e",
        "afterFingerprint": "b7d2e413",
        "beforeShape": "Index Scan using orders_pkey on orders",
        "afterShape": "Seq Scan on orders",
    });
    vec![
        Event {
            at: now - RESET_AGO,
            kind: EventKind::Reset,
            database: Some(database.to_owned()),
            label: "pg_stat_statements reset".into(),
            detail: None,
        },
        Event {
            at: now - DEPLOY_AGO,
            kind: EventKind::Deploy,
            database: None,
            label: DEPLOY_LABEL.into(),
            detail: None,
        },
        Event {
            at: plan_at,
            kind: EventKind::PlanChange,
            database: Some(database.to_owned()),
            label: format!("queryid {regressed}: plan 5f1c0a9e → b7d2e413"),
            detail: Some(detail.to_string()),
        },
        Event {
            at: now - MARKER_AGO,
            kind: EventKind::Marker,
            database: None,
            label: MARKER_LABEL.into(),
            detail: None,
        },
    ]
}

/// SplitMix64: a few lines of deterministic jitter.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `mid` ± `spread` × `mid`, uniformly.
    fn around(&mut self, mid: f64, spread: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        mid * (1.0 + spread * (2.0 * unit - 1.0))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};

    use super::*;
    use crate::metrics::store::StoreMetrics;
    use crate::store::{Clock, Range, StoreSettings, read};

    const NOW: i64 = 1_780_000_000;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_week_is_seeded_as_the_doc_says() {
        let dir = std::env::temp_dir().join(format!(
            "perfscope-seed-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        let now = Arc::new(AtomicI64::new(NOW));
        let clock_now = now.clone();
        let metrics = Arc::new(StoreMetrics::default());
        let (store, task) = Store::open(
            StoreSettings {
                dir: dir.clone(),
                max_bytes: 256 << 20,
                clock: Clock::from_fn(move || clock_now.load(Ordering::Relaxed)),
                maintain_every: 300,
            },
            metrics.clone(),
        );
        let given = vec![(42, "SELECT * FROM orders WHERE id = $1".to_owned())];
        let seeded = seed(
            &store,
            &Seed {
                days: 8,
                statements: given,
                ..Seed::of_days(8)
            },
        )
        .await;
        assert_eq!(seeded.regressed, 42);
        assert_eq!(seeded.statements.len(), STATEMENTS);
        assert_eq!(seeded.deploy_at, NOW - DEPLOY_AGO);

        let week = Range {
            from: NOW - 7 * DAY,
            to: NOW + 1,
            step: DAY,
        };
        let deploy = seeded.deploy_at;
        let (series, routes, slow, sizes, events, tiers, runtime) = store
            .read(move |c| {
                let slow_week = Range { step: HOUR, ..week };
                Ok((
                    read::statement_series(c, "default", 42, week)?,
                    read::route_totals(c, week.from, week.to)?,
                    read::route_series(c, SLOW_ROUTE.0, SLOW_ROUTE.1, slow_week)?,
                    read::sizes(c, "default", RelationKind::Table, "public.orders", 0)?,
                    read::events(c, 0, NOW + 1, 50)?,
                    c.prepare("SELECT DISTINCT tier FROM statement_points ORDER BY tier")?
                        .query_map([], |r| r.get::<_, i64>(0))?
                        .collect::<Result<Vec<_>, _>>()?,
                    read::runtime_series(c, week)?,
                ))
            })
            .await
            .expect("the store reads");

        // A point in each of the week's days (the step's buckets are
        // aligned to days, so 7 or 8 of them).
        assert!(series.len() >= 7, "{series:?}");
        let days: std::collections::BTreeSet<i64> =
            series.iter().map(|p| p.ts.div_euclid(DAY)).collect();
        assert_eq!(days.len(), series.len(), "one point per day");
        assert!(series.iter().all(|p| p.calls > 0), "{series:?}");
        // The regressed statement: ~2 ms before the deploy, ~6 ms after.
        let mean = |ps: &[crate::store::StatementPoint]| {
            ps.iter().map(|p| p.total_ms).sum::<f64>()
                / ps.iter().map(|p| p.calls).sum::<i64>() as f64
        };
        let before: Vec<_> = series
            .iter()
            .filter(|p| p.ts + DAY <= deploy)
            .cloned()
            .collect();
        let after: Vec<_> = series.iter().filter(|p| p.ts > deploy).cloned().collect();
        assert!((1.8..2.2).contains(&mean(&before)), "{before:?}");
        assert!((5.4..6.6).contains(&mean(&after)), "{after:?}");

        // Every route, the slow one slower after the deploy.
        assert_eq!(routes.len(), ROUTES.len(), "{routes:?}");
        let p95 = |after: bool| {
            let mut merged = crate::metrics::HistogramSnapshot::default();
            let side = |ts: i64| {
                if after {
                    ts >= deploy + HOUR
                } else {
                    ts + HOUR <= deploy
                }
            };
            for point in slow.iter().filter(|p| side(p.ts)) {
                merged.merge(&point.histogram);
            }
            merged.quantile(0.95).expect("points")
        };
        assert!(
            p95(true) > 2.0 * p95(false),
            "{} vs {}",
            p95(true),
            p95(false)
        );

        // The runtime: a step a day, memory higher after the deploy.
        assert!(runtime.len() >= 7, "{runtime:?}");
        assert!(
            runtime.iter().all(|s| s.lag_max >= s.lag_mean),
            "{runtime:?}"
        );
        let first = runtime.first().expect("a first day");
        let last = runtime.last().expect("a last day");
        assert!(last.resident_mean > first.resident_mean, "{runtime:?}");

        // A reading a day, growing.
        assert!(sizes.len() >= 8, "{sizes:?}");
        assert!(
            sizes.windows(2).all(|w| w[1].bytes > w[0].bytes),
            "{sizes:?}"
        );

        // The four events, at their times.
        let at = |kind: EventKind| events.iter().find(|e| e.kind == kind).map(|e| e.at);
        assert_eq!(at(EventKind::Deploy), Some(NOW - DEPLOY_AGO));
        assert_eq!(at(EventKind::Marker), Some(NOW - MARKER_AGO));
        assert_eq!(at(EventKind::Reset), Some(NOW - RESET_AGO));
        assert!(
            at(EventKind::PlanChange).is_some_and(|t| t > deploy),
            "{events:?}"
        );

        // Rolled up as the store would have: raw passes and 5-minute sums.
        assert_eq!(tiers, vec![0, 1], "{tiers:?}");
        assert_eq!(
            metrics
                .dropped
                .get_or_create(&crate::metrics::store::DropLabels {
                    reason: crate::metrics::store::DropReason::queue_full
                })
                .get(),
            0
        );
        task.join().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
