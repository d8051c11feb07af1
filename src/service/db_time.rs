//! Where database time went, for the API (`GET /api/performance/db-time`)
//! and the "Database time" page: the request's parameters checked once
//! (each refusal names its parameter), then the answer read from the
//! active session history ([`crate::pg::ash::AshRing`]).
//!
//! The ring holds the recent minutes; a range that starts before its
//! oldest minute is answered from the history store's per-minute counts
//! joined with the ring's (`older_than_ring`; without a store, or when it
//! cannot be read, the ring answers with what it holds and the answer's
//! `since` says where that starts).
//! An empty range, or one with no sample, is an empty answer, never an
//! error: a dashboard asking about a quiet minute is not a mistake.

use crate::Perfscope;
use crate::pg::ash::{By, DbTime};

use super::ServiceError;

/// The range when the request names no `since`: the last 15 minutes.
pub const DEFAULT_RANGE_SECS: i64 = 15 * 60;
/// The longest range asked at once: 31 days (the store keeps minutes
/// that long at most; a longer range is a mistake, and its series would
/// be as coarse as a day per point).
pub const MAX_RANGE_SECS: i64 = 31 * 86_400;
/// Top rows when the request names no `top`.
pub const DEFAULT_TOP: u32 = 20;
/// The most top rows.
pub const MAX_TOP: u32 = 100;

/// What a request asks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DbTimeQuery {
    /// A watched database's name; `None`: every watched database.
    pub database: Option<String>,
    /// The range's start, Unix seconds (default: `until` − 15 min).
    pub since: Option<i64>,
    /// The range's end, Unix seconds (default: now).
    pub until: Option<i64>,
    /// What the rows are grouped by.
    pub by: By,
    /// Top rows, 1–100 (default 20).
    pub top: Option<u32>,
}

/// Why the answer was refused.
#[derive(Debug, thiserror::Error)]
pub enum DbTimeError {
    /// A parameter is out of range; the message names it.
    #[error("parameter `{parameter}`: {reason}")]
    Invalid {
        /// The parameter's name as the request spells it.
        parameter: &'static str,
        /// What is accepted.
        reason: String,
    },
    /// The database lookup refused (no watched database by that name).
    #[error(transparent)]
    Refused(#[from] ServiceError),
}

fn invalid(parameter: &'static str, reason: impl Into<String>) -> DbTimeError {
    DbTimeError::Invalid {
        parameter,
        reason: reason.into(),
    }
}

/// The checked range and top, or the refusal naming the parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// Unix seconds.
    pub since: u64,
    /// Unix seconds.
    pub until: u64,
    /// Top rows.
    pub top: usize,
}

/// Checks `since`, `until` and `top` of `query` at `now` (Unix seconds).
pub fn check(query: &DbTimeQuery, now: i64) -> Result<Checked, DbTimeError> {
    let until = query.until.unwrap_or(now);
    if until < 0 {
        return Err(invalid("until", "Unix seconds, not negative"));
    }
    let since = query
        .since
        .unwrap_or_else(|| until.saturating_sub(DEFAULT_RANGE_SECS).max(0));
    if since < 0 {
        return Err(invalid("since", "Unix seconds, not negative"));
    }
    if since > until {
        return Err(invalid("since", "must not be after `until`"));
    }
    if until - since > MAX_RANGE_SECS {
        return Err(invalid(
            "since",
            format!("the range is at most {} days", MAX_RANGE_SECS / 86_400),
        ));
    }
    let top = query.top.unwrap_or(DEFAULT_TOP);
    if !(1..=MAX_TOP).contains(&top) {
        return Err(invalid("top", format!("from 1 to {MAX_TOP}")));
    }
    Ok(Checked {
        since: since.unsigned_abs(),
        until: until.unsigned_abs(),
        top: top as usize,
    })
}

/// Where the time of the database `query` names (every watched one when
/// none) went over its range, at `now` (Unix seconds).
pub async fn db_time(
    perfscope: &Perfscope,
    query: &DbTimeQuery,
    now: i64,
) -> Result<DbTime, DbTimeError> {
    let checked = check(query, now)?;
    // The watched database's own name: the ring's label, never the
    // request's text.
    let database = match query.database.as_deref() {
        Some(name) => Some(
            super::databases::watched(perfscope, Some(name))?
                .name
                .clone(),
        ),
        None => None,
    };
    let ring = perfscope.ash();
    let before_ring = ring
        .stats()
        .oldest
        .is_some_and(|oldest| checked.since < oldest);
    if before_ring
        && let Some(answer) =
            older_than_ring(perfscope, database.as_deref(), checked, query.by).await
    {
        return Ok(answer);
    }
    Ok(ring.db_time(
        database.as_deref(),
        checked.since,
        checked.until,
        query.by,
        checked.top,
    ))
}

/// The answer for a range older than the ring's oldest minute: the
/// history store's minutes before it joined with the ring's
/// ([`Perfscope::db_time_from_store`]); `None` without a store, or when
/// it cannot be read (logged), so the ring answers with what it holds.
#[cfg(feature = "store")]
async fn older_than_ring(
    perfscope: &Perfscope,
    database: Option<&str>,
    checked: Checked,
    by: By,
) -> Option<DbTime> {
    perfscope.store()?;
    perfscope
        .db_time_from_store(database, checked.since, checked.until, by, checked.top)
        .await
        .inspect_err(|error| {
            tracing::warn!(%error, "db-time: the history store could not be read; answering from the ring");
        })
        .ok()
}

/// Without the history store, the ring answers every range.
#[cfg(not(feature = "store"))]
async fn older_than_ring(
    _perfscope: &Perfscope,
    _database: Option<&str>,
    _checked: Checked,
    _by: By,
) -> Option<DbTime> {
    None
}

/// Now, Unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(since: Option<i64>, until: Option<i64>, top: Option<u32>) -> DbTimeQuery {
        DbTimeQuery {
            since,
            until,
            top,
            ..DbTimeQuery::default()
        }
    }

    fn parameter(result: Result<Checked, DbTimeError>) -> &'static str {
        match result {
            Err(DbTimeError::Invalid { parameter, .. }) => parameter,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn the_range_defaults_to_the_last_fifteen_minutes_and_top_to_twenty() {
        let checked = check(&DbTimeQuery::default(), 10_000).expect("valid");
        assert_eq!(
            checked,
            Checked {
                since: 10_000 - 900,
                until: 10_000,
                top: 20
            }
        );
        // Near the epoch the default start is the epoch, not negative.
        assert_eq!(check(&query(None, Some(60), None), 0).expect("ok").since, 0);
        // An empty range is an answer, not a refusal.
        assert!(check(&query(Some(50), Some(50), Some(1)), 0).is_ok());
    }

    #[test]
    fn each_refusal_names_its_parameter() {
        assert_eq!(parameter(check(&query(None, Some(-1), None), 0)), "until");
        assert_eq!(parameter(check(&query(Some(-5), None, None), 0)), "since");
        assert_eq!(
            parameter(check(&query(Some(20), Some(10), None), 0)),
            "since"
        );
        assert_eq!(
            parameter(check(&query(Some(0), Some(MAX_RANGE_SECS + 1), None), 0)),
            "since"
        );
        assert_eq!(parameter(check(&query(None, None, Some(0)), 100)), "top");
        assert_eq!(parameter(check(&query(None, None, Some(101)), 100)), "top");
        // The widest range and the largest `until` are still answers.
        assert!(check(&query(Some(0), Some(MAX_RANGE_SECS), Some(100)), 0).is_ok());
        assert!(check(&query(None, Some(i64::MAX), None), 0).is_ok());
    }
}
