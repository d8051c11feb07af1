//! The active session history between the ring and the history store:
//! the recorder hands the store each minute the ring has closed, and a
//! range older than the ring is answered from the store's minutes by the
//! ring's own code ([`crate::pg::ash::answer_minutes`]).
//!
//! It lives with the handle because it names both sides: the store knows
//! nothing of Postgres (it keeps plain [`AshMinute`]s), and `pg` knows no
//! store.

use std::sync::Arc;
use std::time::Duration;

use crate::pg::ash::{By, DbTime, MinuteCount, MinuteCounts, StatementRef, WaitClass};
use crate::store::{AshCount, AshMinute, Store, StoreError, Write};

use super::Perfscope;

/// What the recorder remembers between minutes: the end of the last
/// minute written.
#[derive(Debug, Default)]
pub(super) struct AshRecorder {
    written_until: u64,
}

impl AshRecorder {
    /// Writes the minutes the ring closed since the last call (up to
    /// `now`, Unix seconds). The first call writes none older than the
    /// previous minute (a restart does not write what the store has).
    pub(super) fn record(&mut self, perfscope: &Perfscope, store: &Store, now: i64) {
        let now = u64::try_from(now).unwrap_or(0);
        if self.written_until == 0 {
            self.written_until = (now - now % 60).saturating_sub(60);
        }
        let minutes = perfscope.ash().closed_minutes(self.written_until, now);
        for minute in &minutes {
            store.record(Write::Ash(to_store(minute)));
            self.written_until = self.written_until.max(minute.at + 60);
        }
    }
}

/// A ring minute as the store keeps it.
pub fn to_store(minute: &MinuteCounts) -> AshMinute {
    AshMinute {
        at: i64::try_from(minute.at).unwrap_or(i64::MAX),
        ticks: minute.ticks.clone(),
        counts: minute
            .counts
            .iter()
            .map(|c| AshCount {
                database: c.database.clone(),
                class: Arc::from(c.class.as_str()),
                event: c.event.clone(),
                fingerprint: c.statement.fingerprint,
                query_id: c.statement.query_id,
                text: c.statement.text.clone(),
                role: c.role.clone(),
                application: c.application.clone(),
                route: c.route.clone(),
                samples: c.samples,
            })
            .collect(),
    }
}

/// The store's minutes as the ring's.
pub fn from_store(minutes: Vec<AshMinute>) -> Vec<MinuteCounts> {
    minutes
        .into_iter()
        .map(|m| MinuteCounts {
            at: u64::try_from(m.at).unwrap_or(0),
            ticks: m.ticks,
            counts: m
                .counts
                .into_iter()
                .map(|c| MinuteCount {
                    database: c.database,
                    class: WaitClass::parse(&c.class).unwrap_or(WaitClass::Other),
                    event: c.event,
                    statement: Arc::new(StatementRef {
                        fingerprint: c.fingerprint,
                        query_id: c.query_id,
                        text: c.text,
                    }),
                    role: c.role,
                    application: c.application,
                    route: c.route,
                    samples: c.samples,
                    trace_ids: Vec::new(),
                    blocked_by: Vec::new(),
                })
                .collect(),
        })
        .collect()
}

impl Perfscope {
    /// Where the time of `database` (every database when `None`) went
    /// from `since` to `until` (Unix seconds), for a range older than the
    /// in-memory ring ([`Perfscope::ash`]): the history store's minutes
    /// before the ring's oldest joined with the ring's from it, grouped
    /// `by`, the `top` rows and the rest as `other`. Without a store,
    /// [`StoreError::Unavailable`].
    pub async fn db_time_from_store(
        &self,
        database: Option<&str>,
        since: u64,
        until: u64,
        by: By,
        top: usize,
    ) -> Result<DbTime, StoreError> {
        let store = self
            .store()
            .ok_or_else(|| StoreError::Unavailable("no history store".into()))?;
        let span = until.saturating_sub(since);
        // About 180 steps, whole minutes (the store's finest).
        let step = i64::try_from((span / 180).div_ceil(60).max(1) * 60).unwrap_or(60);
        let (from, to) = (
            i64::try_from(since).unwrap_or(i64::MAX),
            i64::try_from(until).unwrap_or(i64::MAX),
        );
        let wanted = database.map(str::to_owned);
        // The store's minutes up to the ring's oldest, the ring's after
        // it (the ring holds the minute still open, the store only closed
        // ones).
        let ring_from = self.ash().stats().oldest.unwrap_or(until);
        let store_to = to.min(i64::try_from(ring_from).unwrap_or(i64::MAX));
        let mut minutes = from_store(
            store
                .read(move |conn| {
                    crate::store::ash::read(conn, from, store_to, step, wanted.as_deref())
                })
                .await?,
        );
        minutes.retain(|m| m.at < ring_from);
        minutes.extend(
            self.ash()
                .closed_minutes(ring_from, until.saturating_add(60)),
        );
        let interval = self.ash().limits().interval;
        Ok(crate::pg::ash::answer_minutes(
            &minutes,
            database,
            since,
            until,
            by,
            top,
            interval.max(Duration::from_millis(100)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minute_round_trips_through_the_store_records() {
        let statement = Arc::new(StatementRef::of_text(
            "SELECT * FROM t WHERE id = 1",
            Some(9),
        ));
        let minute = MinuteCounts {
            at: 600,
            ticks: vec![(Arc::from("shop"), 60)],
            counts: vec![MinuteCount {
                database: Arc::from("shop"),
                class: WaitClass::Lock,
                event: Some(Arc::from("tuple")),
                statement,
                role: Arc::from("app"),
                application: Arc::from("api"),
                route: Some(Arc::from("/orders")),
                samples: 42,
                trace_ids: Vec::new(),
                blocked_by: Vec::new(),
            }],
        };
        assert_eq!(from_store(vec![to_store(&minute)]), vec![minute]);
    }
}
