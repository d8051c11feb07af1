//! The in-process slow-query log: a bounded ring of the statements that ran
//! longer than `SLOW_QUERY_THRESHOLD`, with their normalized text (never a
//! literal value), duration, the route that issued them and the time.
//!
//! The route is known only when the response comes back (Poem sets the
//! route template after routing), so an entry holds a slot that the request
//! context fills in then.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use super::statement::StatementInfo;

/// Entries the log keeps; the oldest go first.
pub const DEFAULT_SLOW_LOG_CAPACITY: usize = 500;

/// One slow statement execution.
#[derive(Debug)]
pub struct SlowQuery {
    /// The statement (normalized text, verb, table).
    pub statement: Arc<StatementInfo>,
    /// The `operation` label it was recorded under.
    pub operation: Arc<str>,
    /// How long it ran.
    pub duration: Duration,
    /// When it finished.
    pub at: SystemTime,
    /// Whether it failed.
    pub failed: bool,
    /// The route template of the request that issued it, once known.
    pub route: OnceLock<Arc<str>>,
}

/// A bounded ring of [`SlowQuery`] entries.
#[derive(Debug)]
pub struct SlowLog {
    entries: Mutex<VecDeque<Arc<SlowQuery>>>,
    capacity: usize,
    /// Entries ever pushed (under the same lock), for [`SlowLog::since`].
    pushed: std::sync::atomic::AtomicU64,
}

impl Default for SlowLog {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_SLOW_LOG_CAPACITY)
    }
}

impl SlowLog {
    /// A log keeping at most `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            pushed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Adds an entry, dropping the oldest when full.
    pub fn push(&self, entry: Arc<SlowQuery>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() == self.capacity {
            entries.pop_front();
        }
        entries.push_back(entry);
        self.pushed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// The entries pushed after the first `seen` (oldest first, as many as
    /// the ring still holds) and the new count to pass next time.
    pub fn since(&self, seen: u64) -> (Vec<Arc<SlowQuery>>, u64) {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let pushed = self.pushed.load(std::sync::atomic::Ordering::Relaxed);
        let new = usize::try_from(pushed.saturating_sub(seen))
            .unwrap_or(usize::MAX)
            .min(entries.len());
        let skip = entries.len() - new;
        (entries.iter().skip(skip).cloned().collect(), pushed)
    }

    /// When the oldest entry still held finished, once the ring has
    /// dropped older ones (`None` while it holds every slow execution since
    /// the process started): where the log's window starts.
    pub fn dropped_before(&self) -> Option<SystemTime> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let pushed = self.pushed.load(std::sync::atomic::Ordering::Relaxed);
        (pushed > entries.len() as u64)
            .then(|| entries.front().map(|entry| entry.at))
            .flatten()
    }

    /// The entries, newest first.
    pub fn recent(&self) -> Vec<Arc<SlowQuery>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .rev()
            .cloned()
            .collect()
    }

    /// The entries grouped by statement fingerprint (and route), worst
    /// total first.
    pub fn summary(&self) -> Vec<SlowStatement> {
        let mut groups: Vec<SlowStatement> = Vec::new();
        for entry in self.recent() {
            let route = entry.route.get().cloned();
            match groups.iter_mut().find(|g| {
                g.statement.fingerprint == entry.statement.fingerprint && g.route == route
            }) {
                Some(group) => {
                    group.count += 1;
                    group.total += entry.duration;
                    group.max = group.max.max(entry.duration);
                }
                None => groups.push(SlowStatement {
                    statement: entry.statement.clone(),
                    route,
                    count: 1,
                    total: entry.duration,
                    max: entry.duration,
                    last_at: entry.at,
                }),
            }
        }
        groups.sort_by_key(|g| std::cmp::Reverse(g.total));
        groups
    }
}

/// Slow executions of one statement from one route.
#[derive(Clone, Debug)]
pub struct SlowStatement {
    /// The statement.
    pub statement: Arc<StatementInfo>,
    /// The route, when known.
    pub route: Option<Arc<str>>,
    /// Slow executions in the log.
    pub count: u64,
    /// Their total duration.
    pub total: Duration,
    /// The slowest.
    pub max: Duration,
    /// When the newest finished.
    pub last_at: SystemTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statement::parse;

    fn entry(sql: &str, ms: u64) -> Arc<SlowQuery> {
        Arc::new(SlowQuery {
            statement: Arc::new(parse(sql)),
            operation: "select".into(),
            duration: Duration::from_millis(ms),
            at: SystemTime::now(),
            failed: false,
            route: OnceLock::new(),
        })
    }

    #[test]
    fn bounded_and_newest_first() {
        let log = SlowLog::with_capacity(2);
        log.push(entry("select 1", 5));
        log.push(entry("select 2", 6));
        log.push(entry("select 3", 7));
        let recent = log.recent();
        assert_eq!(recent.len(), 2);
        assert_eq!(recent[0].duration, Duration::from_millis(7));
        // The window now starts at the oldest entry kept.
        assert_eq!(log.dropped_before(), Some(recent[1].at));
        let whole = SlowLog::with_capacity(2);
        whole.push(entry("select 1", 5));
        assert_eq!(whole.dropped_before(), None);
    }

    #[test]
    fn summary_groups_by_fingerprint_and_route() {
        let log = SlowLog::default();
        let a = entry("select * from t where id = 1", 10);
        let _ = a.route.set("/t/:id".into());
        log.push(a);
        let b = entry("select * from t where id = 2", 30);
        let _ = b.route.set("/t/:id".into());
        log.push(b);
        log.push(entry("select pg_sleep(1)", 5));
        let summary = log.summary();
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].count, 2);
        assert_eq!(summary[0].total, Duration::from_millis(40));
        assert_eq!(summary[0].max, Duration::from_millis(30));
        assert_eq!(summary[0].route.as_deref(), Some("/t/:id"));
    }
}
