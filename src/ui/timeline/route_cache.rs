//! The overview's stored route rows, one read per range and minute.
//!
//! Past the hour the overview reads every route row of its range twice
//! (the totals, then each route's series): at 30 days that is a month of
//! rows, tens of milliseconds on a quiet machine, each read holding one of
//! the store's two read slots. Thirty-two clients loading the 30-day page
//! at once held both slots for every other page (12 requests a second of
//! mixed load, BENCHMARKS.md) and a month's rows in memory per read.
//!
//! The recorder writes route points once a minute
//! ([`crate::store::RAW_POINT_SECS`]), so a read younger than that shows
//! the same rows (only the window's first, partial step may start up to a
//! minute earlier): loads of a range within a minute share one read, and
//! loads that find it stale wait for the one read in flight instead of
//! each starting their own. A failed read is not kept.

use tokio::sync::Mutex;

use super::stored;
use crate::history::RouteSummary;
use crate::store::{RAW_POINT_SECS, Store, StoreError};
use crate::ui::range::{Axis, ChartRange};

/// The last read of each stored range (see the module docs).
#[derive(Debug, Default)]
pub struct RouteCache {
    slots: [Mutex<Option<Kept>>; ChartRange::ALL.len()],
}

#[derive(Debug)]
struct Kept {
    /// The `now` it was read at.
    at: i64,
    routes: Vec<RouteSummary>,
    axis: Axis,
}

impl RouteCache {
    /// The busiest routes over `range` ending at `now` and their axis:
    /// the last read of `range` if it is younger than a minute, else a
    /// new one (see [`stored::routes`]).
    pub async fn routes(
        &self,
        store: &Store,
        range: ChartRange,
        now: i64,
    ) -> Result<(Vec<RouteSummary>, Axis), StoreError> {
        let index = ChartRange::ALL
            .iter()
            .position(|r| *r == range)
            .unwrap_or_default();
        let mut slot = self.slots[index].lock().await;
        if let Some(kept) = slot
            .as_ref()
            .filter(|kept| (0..RAW_POINT_SECS).contains(&(now - kept.at)))
        {
            return Ok((kept.routes.clone(), kept.axis));
        }
        let (routes, axis) = stored::routes(store, range, now).await?;
        *slot = Some(Kept {
            at: now,
            routes: routes.clone(),
            axis,
        });
        Ok((routes, axis))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::store::StoreMetrics;
    use crate::store::{Clock, RouteDelta, StoreSettings, Write};

    const NOW: i64 = 1_780_000_000;

    fn checkout(at: i64, requests: u64) -> Write {
        let bounds: Arc<[f64]> = Arc::from(vec![0.01, 0.1, f64::INFINITY]);
        Write::Routes {
            at,
            bounds,
            rows: vec![RouteDelta {
                method: "POST".into(),
                route: "/checkout".into(),
                requests,
                errors: 0,
                sum_seconds: requests as f64 * 0.05,
                buckets: vec![0, requests, 0],
            }],
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_range_is_read_once_a_minute_whoever_asks() {
        let dir = std::env::temp_dir().join(format!(
            "perfscope-route-cache-{}-{}",
            std::process::id(),
            NOW
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let (store, task) = Store::open(
            StoreSettings {
                dir: dir.clone(),
                max_bytes: 64 << 20,
                clock: Clock::from_fn(|| NOW),
                maintain_every: 3_600,
            },
            Arc::new(StoreMetrics::default()),
        );
        store.record(checkout(NOW - 3_600, 10));
        store.flush().await;
        let cache = RouteCache::default();
        let requests = |routes: &[RouteSummary]| routes.first().map(|r| r.requests);

        let (first, _) = cache
            .routes(&store, ChartRange::Day, NOW)
            .await
            .expect("a read");
        assert_eq!(requests(&first), Some(10));
        // A point written since, read again within the minute: the same
        // rows (the recorder writes once a minute).
        store.record(checkout(NOW - 60, 5));
        store.flush().await;
        let (within, _) = cache
            .routes(&store, ChartRange::Day, NOW + 59)
            .await
            .expect("a read");
        assert_eq!(requests(&within), Some(10));
        // Another range is its own read; a minute on, a new one.
        let (week, _) = cache
            .routes(&store, ChartRange::Week, NOW + 59)
            .await
            .expect("a read");
        assert_eq!(requests(&week), Some(15));
        let (later, _) = cache
            .routes(&store, ChartRange::Day, NOW + 60)
            .await
            .expect("a read");
        assert_eq!(requests(&later), Some(15));
        task.join().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
