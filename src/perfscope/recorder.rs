//! The history recorder: after every reader pass (`PERFSCOPE_READ_INTERVAL`)
//! it looks at what changed and, once a minute, hands the store each
//! statement's and each route's differences since the minute before and
//! a summary of the runtime's minute (each
//! hour each database's sizes and its sequences' positions), with the
//! events it can see from here (a deploy at start, a pg_stat_statements
//! reset, an index that appeared, a statement's plan that changed shape). It reads cumulative figures and
//! keeps the previous reading, so it needs no hook in the readers and a
//! missed minute is folded into the next.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Perfscope;
use crate::pg::readers::statements::Figures;
use crate::store::{
    Event, EventKind, RelationKind, RelationSize, RouteDelta, RuntimeMinute, StatementDelta, Store,
    StoreState, Write,
};

/// How often statement and route figures are written (and once more at
/// shutdown): a raw point is a minute, whatever the reader interval.
pub const POINT_INTERVAL: i64 = crate::store::RAW_POINT_SECS;
/// Statements kept per database and minute, by time; the rest are summed
/// into one row, [`OTHER_STATEMENTS`]. With 5,000 statements all busy, a
/// row each would be about 390 MiB a day (BENCHMARKS.md); most of a
/// workload's time is in far fewer.
pub const MAX_STATEMENTS_PER_POINT: usize = 500;
/// The queryid of the row the tail is summed into (pg_stat_statements
/// never gives 0).
pub const OTHER_STATEMENTS: i64 = 0;

/// Statements remembered per database between readings; past it the least
/// recently seen are forgotten (and counted again from their next reading).
const MAX_REMEMBERED: usize = 20_000;

/// A statement's cumulative figures at the previous reading, and the tick
/// it was last seen.
type Seen = (Figures, u64);

/// A route's cumulative requests, 5xx, sum of seconds and bucket counts.
type RouteFigures = (u64, u64, f64, Vec<u64>);

#[derive(Default)]
struct Recorder {
    tick: u64,
    deploy_checked: bool,
    points_written: i64,
    routes: HashMap<(String, String), RouteFigures>,
    statements: HashMap<Arc<str>, HashMap<i64, Seen>>,
    resets: HashMap<Arc<str>, u64>,
    indexes: HashMap<Arc<str>, HashSet<String>>,
    sizes_day: HashMap<Arc<str>, i64>,
    /// The newest plan change written, per database.
    plan_seq: HashMap<Arc<str>, u64>,
    /// The active session history's minutes written.
    ash: super::ash_history::AshRecorder,
}

/// A request to write now, answered once written.
pub(super) type RecordNow = tokio::sync::oneshot::Sender<()>;

impl Perfscope {
    /// Records into `store` after every reader pass until `cancel`, and
    /// once more then; a message on `now` writes at once (points
    /// included) and is answered after.
    pub(super) fn spawn_recorder(
        &self,
        store: Store,
        mut now: tokio::sync::mpsc::Receiver<RecordNow>,
        cancel: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let perfscope = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut recorder = Recorder::default();
            let every = perfscope
                .inner
                .config
                .readers
                .interval
                .max(Duration::from_secs(1));
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => {
                        recorder.record(&perfscope, &store, true).await;
                        return;
                    }
                    Some(done) = now.recv() => {
                        recorder.record(&perfscope, &store, true).await;
                        store.flush().await;
                        let _ = done.send(());
                        continue;
                    }
                    _ = ticker.tick() => {}
                }
                recorder.record(&perfscope, &store, false).await;
            }
        })
    }

    /// Writes what the recorder would write at its next minute now, and
    /// waits until it is in the store (tests; the recorder otherwise
    /// writes points once a minute). Returns at once without a store.
    #[doc(hidden)]
    pub async fn record_history_now(&self) {
        let Some(sender) = self.inner.record_now.get() else {
            return;
        };
        let (done, written) = tokio::sync::oneshot::channel();
        if sender.send(done).await.is_ok() {
            let _ = written.await;
        }
    }

    /// The release this process runs, for the deploy marker (see
    /// [`crate::config::TelemetryConfig::release_label`]).
    fn release_label(&self) -> String {
        self.inner
            .config
            .telemetry
            .release_label(env!("CARGO_PKG_VERSION"))
    }
}

/// A difference of cumulative figures with no counter below zero (one that
/// went backwards was reset: it counts from zero).
fn not_negative(delta: Figures) -> Figures {
    Figures {
        calls: delta.calls.max(0),
        total_ms: delta.total_ms.max(0.0),
        rows: delta.rows.max(0),
        shared_hit: delta.shared_hit.max(0),
        shared_read: delta.shared_read.max(0),
        io_ms: delta.io_ms.max(0.0),
        temp_written: delta.temp_written.max(0),
    }
}

/// The runtime's last minute, from the history's samples of it (each a
/// 10-second interval's worst lag, utilization and resident memory): the
/// means and maxima of those, or the runtime now before the first sample
/// (and in a build without the pages, which keeps no samples).
fn runtime_minute(perfscope: &Perfscope, now: i64) -> RuntimeMinute {
    #[cfg(feature = "ui")]
    if let Some(minute) = sampled_minute(perfscope, now) {
        return minute;
    }
    let runtime = perfscope.runtime().snapshot();
    let resident = crate::runtime::process::ProcessSnapshot::read().resident_bytes;
    let lag = runtime.lag.as_secs_f64();
    RuntimeMinute {
        at: now,
        lag_mean: lag,
        lag_max: lag,
        utilization: runtime.utilization,
        resident_mean: resident,
        resident_max: resident,
    }
}

/// The means and maxima of the history's samples of the last minute, if
/// it has any.
#[cfg(feature = "ui")]
fn sampled_minute(perfscope: &Perfscope, now: i64) -> Option<RuntimeMinute> {
    let per_minute = usize::try_from(
        POINT_INTERVAL.unsigned_abs() / crate::history::SAMPLE_INTERVAL.as_secs().max(1),
    )
    .unwrap_or(1)
    .max(1);
    let samples = perfscope.history().runtime();
    let last = &samples[samples.len().saturating_sub(per_minute)..];
    if last.is_empty() {
        return None;
    }
    let n = last.len() as f64;
    Some(RuntimeMinute {
        at: now,
        lag_mean: last.iter().map(|p| p.lag).sum::<f64>() / n,
        lag_max: last.iter().map(|p| p.lag).fold(0.0, f64::max),
        utilization: last.iter().map(|p| p.utilization).sum::<f64>() / n,
        resident_mean: (last.iter().map(|p| p.resident as f64).sum::<f64>() / n) as u64,
        resident_max: last.iter().map(|p| p.resident).max().unwrap_or(0),
    })
}

/// Keeps the [`MAX_STATEMENTS_PER_POINT`] statements with the most time
/// and sums the rest into one [`OTHER_STATEMENTS`] row.
fn fold_the_tail(rows: &mut Vec<StatementDelta>) {
    if rows.len() <= MAX_STATEMENTS_PER_POINT {
        return;
    }
    rows.sort_by(|a, b| b.total_ms.total_cmp(&a.total_ms));
    let mut other = StatementDelta {
        queryid: OTHER_STATEMENTS,
        text: Some(Arc::from("(other statements)")),
        ..StatementDelta::default()
    };
    for row in rows.drain(MAX_STATEMENTS_PER_POINT..) {
        other.calls += row.calls;
        other.total_ms += row.total_ms;
        other.rows += row.rows;
        other.shared_hit += row.shared_hit;
        other.shared_read += row.shared_read;
        other.temp_written += row.temp_written;
        other.io_ms += row.io_ms;
    }
    rows.push(other);
}

impl Recorder {
    async fn record(&mut self, perfscope: &Perfscope, store: &Store, last: bool) {
        // Unavailable: the store counts what it drops; the readings go on
        // so the deltas stay right.
        if store.state() == StoreState::Opening {
            return;
        }
        self.tick += 1;
        let now = store.now();
        if !self.deploy_checked && store.state() == StoreState::Writing {
            self.deploy_checked = true;
            self.record_deploy(perfscope, store, now).await;
        }
        let points = last || now - self.points_written >= POINT_INTERVAL;
        if points {
            self.points_written = now;
            self.record_routes(perfscope, store, now);
            store.record(Write::Runtime(runtime_minute(perfscope, now)));
            self.ash.record(perfscope, store, now);
        }
        for db in perfscope.inner.watched.all() {
            if points {
                self.record_statements(&db, store, now);
            } else {
                self.record_reset(&db, store, now);
            }
            self.record_space(&db, store, now);
            self.record_plan_changes(&db, store, now);
        }
    }

    async fn record_deploy(&self, perfscope: &Perfscope, store: &Store, now: i64) {
        if let Some(reason) = &perfscope.config().telemetry.resource.ignored {
            tracing::warn!(%reason, "the deploy marker is named without OTEL_RESOURCE_ATTRIBUTES");
        }
        let label = perfscope.release_label();
        let last = store
            .read(|conn| crate::store::read::last_event(conn, EventKind::Deploy))
            .await;
        let known = matches!(&last, Ok(Some(event)) if event.label == label);
        if !known {
            store.record(Write::Event(Event {
                at: now,
                kind: EventKind::Deploy,
                database: None,
                label,
                detail: None,
            }));
        }
    }

    fn record_routes(&mut self, perfscope: &Perfscope, store: &Store, now: i64) {
        let mut bounds: Option<Arc<[f64]>> = None;
        let mut current: HashMap<(String, String), RouteFigures> = HashMap::new();
        perfscope
            .inner
            .http
            .request_duration
            .for_each(|labels, histogram| {
                let snapshot = histogram.snapshot();
                if bounds.is_none() {
                    bounds = Some(snapshot.buckets.iter().map(|(bound, _)| *bound).collect());
                }
                let key = (
                    labels.method.as_str().to_owned(),
                    labels.route.as_str().to_owned(),
                );
                let entry = current
                    .entry(key)
                    .or_insert_with(|| (0, 0, 0.0, vec![0; snapshot.buckets.len()]));
                entry.0 += snapshot.count;
                if labels.status_code.0.is_some_and(|code| code >= 500) {
                    entry.1 += snapshot.count;
                }
                entry.2 += snapshot.sum;
                for (into, (_, count)) in entry.3.iter_mut().zip(&snapshot.buckets) {
                    *into += count;
                }
            });
        let mut rows = Vec::new();
        for (key, now_figures) in &current {
            let before = self.routes.get(key);
            let (requests, errors, sum, buckets) = match before {
                Some(before)
                    if before.0 <= now_figures.0 && before.3.len() == now_figures.3.len() =>
                {
                    (
                        now_figures.0 - before.0,
                        now_figures.1.saturating_sub(before.1),
                        (now_figures.2 - before.2).max(0.0),
                        now_figures
                            .3
                            .iter()
                            .zip(&before.3)
                            .map(|(n, b)| n.saturating_sub(*b))
                            .collect(),
                    )
                }
                _ => (
                    now_figures.0,
                    now_figures.1,
                    now_figures.2,
                    now_figures.3.clone(),
                ),
            };
            if requests > 0 {
                rows.push(RouteDelta {
                    method: key.0.clone(),
                    route: key.1.clone(),
                    requests,
                    errors,
                    sum_seconds: sum,
                    buckets,
                });
            }
        }
        self.routes = current;
        if let (Some(bounds), false) = (bounds, rows.is_empty()) {
            store.record(Write::Routes {
                at: now,
                bounds,
                rows,
            });
        }
    }

    /// Records a reset pg_stat_statements had since the last look; the
    /// last pass's snapshot.
    fn record_reset(
        &mut self,
        db: &crate::pg::WatchedDatabase,
        store: &Store,
        now: i64,
    ) -> Option<Arc<crate::pg::readers::statements::StatementsSnapshot>> {
        let snapshot = db.statements.latest()?;
        let resets = self
            .resets
            .entry(db.name.clone())
            .or_insert(snapshot.resets_detected);
        if *resets != snapshot.resets_detected {
            *resets = snapshot.resets_detected;
            store.record(Write::Event(Event {
                at: now,
                kind: EventKind::Reset,
                database: Some(db.name.to_string()),
                label: "pg_stat_statements reset".into(),
                detail: None,
            }));
        }
        Some(snapshot)
    }

    fn record_statements(&mut self, db: &crate::pg::WatchedDatabase, store: &Store, now: i64) {
        let Some(snapshot) = self.record_reset(db, store, now) else {
            return;
        };
        let tick = self.tick;
        let seen = self.statements.entry(db.name.clone()).or_default();
        let first = seen.is_empty();
        let mut rows = Vec::new();
        for statement in &snapshot.statements {
            let now_figures = statement.cumulative;
            let before = seen.insert(statement.queryid, (now_figures, tick));
            // The first reading of a statement only sets its baseline: its
            // figures so far are not this minute's.
            let delta = match before {
                Some((before, _)) if before.calls <= now_figures.calls => {
                    not_negative(now_figures.minus(&before))
                }
                // Reset since: everything now is new.
                Some(_) => now_figures,
                None if first => continue,
                None => now_figures,
            };
            if delta.calls > 0 {
                rows.push(StatementDelta {
                    queryid: statement.queryid,
                    text: statement.text.clone(),
                    calls: delta.calls,
                    total_ms: delta.total_ms,
                    rows: delta.rows,
                    shared_hit: delta.shared_hit,
                    shared_read: delta.shared_read,
                    temp_written: delta.temp_written,
                    io_ms: delta.io_ms,
                });
            }
        }
        if seen.len() > MAX_REMEMBERED {
            let mut ticks: Vec<u64> = seen.values().map(|(_, tick)| *tick).collect();
            ticks.sort_unstable();
            let cutoff = ticks[ticks.len() - MAX_REMEMBERED];
            seen.retain(|_, (_, tick)| *tick >= cutoff);
        }
        fold_the_tail(&mut rows);
        if !rows.is_empty() {
            store.record(Write::Statements {
                at: now,
                database: db.name.clone(),
                rows,
            });
        }
    }

    /// Each new plan change as an event, both shapes in its detail.
    fn record_plan_changes(&mut self, db: &crate::pg::WatchedDatabase, store: &Store, now: i64) {
        let written = self.plan_seq.entry(db.name.clone()).or_insert(0);
        for change in db.advisor.plan_changes().changes_since(*written) {
            if change.seq <= *written {
                continue;
            }
            *written = change.seq;
            let detail = serde_json::json!({
                "queryid": change.queryid,
                "beforeFingerprint": change.before_fingerprint,
                "afterFingerprint": change.after_fingerprint,
                "beforeShape": change.before_shape,
                "afterShape": change.after_shape,
            });
            store.record(Write::Event(Event {
                at: now,
                kind: EventKind::PlanChange,
                database: Some(db.name.to_string()),
                label: format!(
                    "queryid {}: plan {} → {}",
                    change.queryid, change.before_fingerprint, change.after_fingerprint
                ),
                detail: Some(detail.to_string()),
            }));
        }
    }

    fn record_space(&mut self, db: &crate::pg::WatchedDatabase, store: &Store, now: i64) {
        let Some(space) = db.space.latest() else {
            return;
        };
        let names: HashSet<String> = space
            .indexes
            .iter()
            .map(|index| format!("{}.{}", index.schema, index.name))
            .collect();
        // The reader lists the largest indexes only: a name is new only
        // when both lists were whole (fewer than that many), not one that
        // grew into the list.
        let whole = |n: usize| n < usize::try_from(crate::pg::readers::space::LISTED).unwrap_or(0);
        if let Some(before) = self.indexes.get(&db.name)
            && whole(before.len())
            && whole(names.len())
        {
            for name in names.difference(before).take(20) {
                store.record(Write::Event(Event {
                    at: now,
                    kind: EventKind::IndexCreated,
                    database: Some(db.name.to_string()),
                    label: name.clone(),
                    detail: None,
                }));
            }
        }
        self.indexes.insert(db.name.clone(), names);
        // Sizes: the day's last reading wins; written hourly-ish (every
        // tick would rewrite the same day's rows for nothing).
        let day_hour = now.div_euclid(3_600);
        if self.sizes_day.get(&db.name) == Some(&day_hour) {
            return;
        }
        // The hour counts as written once every source had read: until
        // the checks and database readers' first passes, the next tick
        // writes again.
        if db.checks.latest().is_some() && db.database.latest().is_some() {
            self.sizes_day.insert(db.name.clone(), day_hour);
        }
        let mut rows: Vec<RelationSize> = space
            .tables
            .iter()
            .map(|table| RelationSize {
                kind: RelationKind::Table,
                name: format!("{}.{}", table.schema, table.name),
                bytes: table.total_bytes,
            })
            .chain(space.indexes.iter().map(|index| RelationSize {
                kind: RelationKind::Index,
                name: format!("{}.{}", index.schema, index.name),
                bytes: index.bytes,
            }))
            .collect();
        // Sequences: their position, for the days until one runs out. The
        // checks reader reads those past 75% of their range, the ones
        // that matter.
        if let Some(checks) = db.checks.latest() {
            rows.extend(
                checks
                    .iter()
                    .filter(|check| check.kind == "sequence")
                    .map(|check| RelationSize {
                        kind: RelationKind::Sequence,
                        name: check.object.clone(),
                        bytes: check.value as i64,
                    }),
            );
        }
        if let Some(database) = db.database.latest() {
            rows.push(RelationSize {
                kind: RelationKind::Database,
                name: db.name.to_string(),
                bytes: database.size_bytes,
            });
        }
        store.record(Write::Sizes {
            at: now,
            database: db.name.clone(),
            rows,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_is_summed_into_one_row_and_the_busiest_are_kept() {
        let mut rows: Vec<StatementDelta> = (0..MAX_STATEMENTS_PER_POINT as i64 + 10)
            .map(|q| StatementDelta {
                queryid: q + 1,
                calls: 2,
                total_ms: q as f64,
                ..StatementDelta::default()
            })
            .collect();
        let calls: i64 = rows.iter().map(|r| r.calls).sum();
        fold_the_tail(&mut rows);
        assert_eq!(rows.len(), MAX_STATEMENTS_PER_POINT + 1);
        assert_eq!(rows.iter().map(|r| r.calls).sum::<i64>(), calls);
        let other = rows.last().expect("other");
        assert_eq!(other.queryid, OTHER_STATEMENTS);
        assert_eq!(other.calls, 20);
        assert!(
            rows.iter()
                .any(|r| r.queryid == MAX_STATEMENTS_PER_POINT as i64 + 10)
        );
        assert!(!rows.iter().any(|r| r.queryid == 1));
    }
}
