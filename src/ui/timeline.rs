//! What a page's charts need past the process's own hour: the history
//! store's routes and statements over a [`ChartRange`], the events to mark
//! on them, and a sentence when the store cannot cover the range (off,
//! unavailable, or younger than the range).
//!
//! Why here and not in each page: the overview, the Queries page and a
//! statement's page read the same store the same way and must say the
//! same thing when it falls short. The reads themselves are the store's
//! ([`crate::store::read`]); this module only turns their rows into the
//! points a chart draws, one per step of the range's axis.

#[cfg(feature = "store")]
pub mod route_cache;
pub mod runtime;

use crate::Perfscope;
use crate::ui::range::ChartRange;

/// Most events marked on a chart.
#[cfg(feature = "store")]
pub const MAX_MARKERS: usize = 50;

/// A page's view of the store for one range.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    /// The range asked for.
    pub range: ChartRange,
    /// Now, Unix seconds (the store's clock when it is on).
    pub now: i64,
    /// Events in the range: time and label (escaped where shown).
    pub events: Vec<(f64, String)>,
    /// Why the charts cover less than the range, when they do.
    pub notice: Option<String>,
    /// The store to read series from: on, and the range past the hour.
    #[cfg(feature = "store")]
    pub store: Option<crate::store::Store>,
}

impl Timeline {
    /// The events and the store's reach for `range`, read now.
    pub async fn load(perfscope: &Perfscope, range: ChartRange) -> Self {
        #[cfg(feature = "store")]
        if let Some(store) = perfscope.store() {
            return Self::from_store(store, range).await;
        }
        let _ = perfscope;
        Self {
            range,
            now: unix_now(),
            notice: range.is_stored().then(|| {
                format!(
                    "The history store is off (PERFSCOPE_DATA_DIR), so there is no history for the last {}: the charts show this process's last hour.",
                    range.words()
                )
            }),
            ..Self::default()
        }
    }

    #[cfg(feature = "store")]
    async fn from_store(store: &crate::store::Store, range: ChartRange) -> Self {
        let now = store.now();
        let from = now - range.span_secs();
        let read = store
            .read(move |conn| {
                Ok((
                    crate::store::span::oldest(conn)?,
                    crate::store::read::events(conn, from, now + 1, MAX_MARKERS)?,
                ))
            })
            .await;
        let (oldest, events) = match read {
            Ok(found) => found,
            Err(error) => {
                return Self {
                    range,
                    now,
                    notice: range.is_stored().then(|| {
                        format!(
                            "The history store is not available ({error}): the charts show this process's last hour."
                        )
                    }),
                    ..Self::default()
                };
            }
        };
        let notice = match oldest {
            _ if !range.is_stored() => None,
            None => Some(format!(
                "Not enough history for the last {} yet: the history store holds no points so far.",
                range.words()
            )),
            Some(oldest) if oldest > from + range.step_secs() => Some(format!(
                "Not enough history for the last {} yet: the history store goes back {}.",
                range.words(),
                crate::ui::format::age((now - oldest) as f64)
            )),
            Some(_) => None,
        };
        Self {
            range,
            now,
            events: events
                .into_iter()
                .map(|event| (event.at as f64, event_label(&event)))
                .collect(),
            notice,
            store: range.is_stored().then(|| store.clone()),
        }
    }
}

/// Now, Unix seconds, by the system clock.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// An event's tooltip: its kind, label and database.
#[cfg(feature = "store")]
fn event_label(event: &crate::store::EventRow) -> String {
    match &event.database {
        Some(database) => format!("{}: {} ({database})", event.kind.as_str(), event.label),
        None => format!("{}: {}", event.kind.as_str(), event.label),
    }
}

/// The store's series, as charts draw them.
#[cfg(feature = "store")]
pub mod stored {
    use std::collections::HashMap;

    use crate::history::{MAX_ROUTES, RouteSummary};
    use crate::store::{Range, RoutePoint, StatementPoint, Store, StoreError, read};
    use crate::ui::range::{Axis, ChartRange};

    /// The busiest routes over `range` ending at `now`, each with its p95
    /// per step, and the axis of those points.
    pub async fn routes(
        store: &Store,
        range: ChartRange,
        now: i64,
    ) -> Result<(Vec<RouteSummary>, Axis), StoreError> {
        let (window, axis) = range.store_range(now);
        let rows = store
            .read(move |conn| {
                let mut totals = read::route_totals(conn, window.from, window.to)?;
                totals.truncate(MAX_ROUTES);
                totals
                    .into_iter()
                    .map(|total| {
                        let series = read::route_series(conn, &total.method, &total.route, window)?;
                        Ok((total, series))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let points = slots(window);
        let routes = rows
            .into_iter()
            .map(|(total, series)| {
                let sums = &total.sums;
                let requests = u64::try_from(sums.requests).unwrap_or(0);
                RouteSummary {
                    key: (total.method, total.route),
                    rate: requests as f64 / range.span_secs() as f64,
                    requests,
                    error_ratio: (sums.requests > 0)
                        .then(|| sums.errors as f64 / sums.requests as f64),
                    p50: sums.histogram.quantile(0.5),
                    p95: sums.histogram.quantile(0.95),
                    p99: sums.histogram.quantile(0.99),
                    p95_points: on_axis(window, points, &series, |p: &RoutePoint| {
                        p.histogram.quantile(0.95)
                    }),
                    // The store keeps bucket counts: no sketch.
                    accuracy: 0.0,
                }
            })
            .collect();
        Ok((routes, axis))
    }

    /// Statements' points over `range` ending at `now`, by `(database,
    /// queryid)`, and the axis; one read for all of them.
    pub async fn statements(
        store: &Store,
        keys: Vec<(String, i64)>,
        range: ChartRange,
        now: i64,
    ) -> Result<(HashMap<(String, i64), StatementTrend>, Axis), StoreError> {
        let (window, axis) = range.store_range(now);
        let rows = store
            .read(move |conn| {
                keys.into_iter()
                    .map(|(database, queryid)| {
                        let series = read::statement_series(conn, &database, queryid, window)?;
                        Ok(((database, queryid), series))
                    })
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let points = slots(window);
        let trends = rows
            .into_iter()
            .map(|(key, series)| (key, StatementTrend::new(window, points, &series)))
            .collect();
        Ok((trends, axis))
    }

    /// A statement's calls and mean time per step.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct StatementTrend {
        /// Calls per step (`None`: no calls).
        pub calls: Vec<Option<f64>>,
        /// Mean time per call per step, ms.
        pub mean_ms: Vec<Option<f64>>,
        /// Calls over the range.
        pub total_calls: i64,
        /// Time over the range, ms.
        pub total_ms: f64,
    }

    impl StatementTrend {
        fn new(window: Range, points: usize, series: &[StatementPoint]) -> Self {
            Self {
                calls: on_axis(window, points, series, |p: &StatementPoint| {
                    Some(p.calls as f64)
                }),
                mean_ms: on_axis(window, points, series, StatementPoint::mean_ms),
                total_calls: series.iter().map(|p| p.calls).sum(),
                total_ms: series.iter().map(|p| p.total_ms).sum(),
            }
        }
    }

    /// The steps of `window`: from the one holding its start to the one
    /// holding now.
    pub(in crate::ui::timeline) fn slots(window: Range) -> usize {
        let first = window.from - window.from.rem_euclid(window.step);
        usize::try_from((window.to - 1 - first) / window.step + 1).unwrap_or(0)
    }

    pub(in crate::ui::timeline) trait Stamped {
        fn ts(&self) -> i64;
    }
    impl Stamped for RoutePoint {
        fn ts(&self) -> i64 {
            self.ts
        }
    }
    impl Stamped for StatementPoint {
        fn ts(&self) -> i64 {
            self.ts
        }
    }

    /// `series` (a point per step that had any) on every step of the
    /// window, `None` where it had none.
    pub(in crate::ui::timeline) fn on_axis<P: Stamped>(
        window: Range,
        points: usize,
        series: &[P],
        value: impl Fn(&P) -> Option<f64>,
    ) -> Vec<Option<f64>> {
        let first = window.from - window.from.rem_euclid(window.step);
        let mut out = vec![None; points];
        for point in series {
            let index = usize::try_from((point.ts() - first) / window.step).ok();
            if let Some(slot) = index.and_then(|i| out.get_mut(i)) {
                *slot = value(point);
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn points_land_on_their_step_and_gaps_stay_empty() {
            let (window, _) = ChartRange::Day.store_range(86_400 * 10 + 30);
            let points = slots(window);
            assert_eq!(points, 145);
            let series = [
                StatementPoint {
                    ts: 86_400 * 9 + 600,
                    calls: 4,
                    total_ms: 8.0,
                    ..StatementPoint::default()
                },
                StatementPoint {
                    ts: 86_400 * 10,
                    calls: 1,
                    total_ms: 5.0,
                    ..StatementPoint::default()
                },
            ];
            let trend = StatementTrend::new(window, points, &series);
            assert_eq!(trend.calls[1], Some(4.0));
            assert_eq!(trend.mean_ms[1], Some(2.0));
            assert_eq!(trend.calls[0], None);
            assert_eq!(trend.mean_ms[144], Some(5.0));
            assert_eq!(trend.total_calls, 5);
        }
    }
}
