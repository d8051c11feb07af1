//! When a repeating task's failure is worth a log line.
//!
//! A reader or a health check that fails on every tick would otherwise log
//! on every tick: with 100 watched databases that was 837 identical lines in
//! 30 s, burying the one line that said why. [`FailureLog`] keeps one small
//! state per task and answers, for each outcome, whether to log: when the
//! task starts failing, then at most once per [`DEFAULT_REPEAT_EVERY`]
//! while it keeps failing (with the count of failures since the previous
//! line), then once when it recovers (with how many failures it took and
//! for how long). It decides and never logs itself, so each caller keeps
//! its own fields and message, and the decisions are unit-tested with
//! Tokio's paused clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Duration;

use tokio::time::Instant;

/// How often a task that keeps failing is logged again.
pub const DEFAULT_REPEAT_EVERY: Duration = Duration::from_secs(5 * 60);

/// What to log after an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// Nothing (still failing and logged recently, or still working).
    Quiet,
    /// The task has just started failing.
    Started,
    /// Still failing: `failures` since the previous line (this one
    /// included), failing for `for_` in all.
    Still { failures: u64, for_: Duration },
    /// Working again after `failures` failures over `lasted`.
    Recovered { failures: u64, lasted: Duration },
}

/// The failure state of one task.
#[derive(Clone, Debug)]
pub struct FailureLog {
    every: Duration,
    failing: Option<Failing>,
}

#[derive(Clone, Copy, Debug)]
struct Failing {
    since: Instant,
    logged_at: Instant,
    /// Failures since the last line.
    unlogged: u64,
    /// Failures since `since`.
    total: u64,
}

impl Default for FailureLog {
    fn default() -> Self {
        Self::new(DEFAULT_REPEAT_EVERY)
    }
}

impl FailureLog {
    /// A task logged again at most every `every` while it keeps failing.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            failing: None,
        }
    }

    /// Whether the task is failing.
    pub fn is_failing(&self) -> bool {
        self.failing.is_some()
    }

    /// Records a failure at `now`.
    pub fn failed(&mut self, now: Instant) -> Report {
        match &mut self.failing {
            None => {
                self.failing = Some(Failing {
                    since: now,
                    logged_at: now,
                    unlogged: 0,
                    total: 1,
                });
                Report::Started
            }
            Some(failing) => {
                failing.unlogged += 1;
                failing.total += 1;
                if now.saturating_duration_since(failing.logged_at) < self.every {
                    return Report::Quiet;
                }
                let report = Report::Still {
                    failures: failing.unlogged,
                    for_: now.saturating_duration_since(failing.since),
                };
                failing.logged_at = now;
                failing.unlogged = 0;
                report
            }
        }
    }

    /// Records a success at `now`.
    pub fn succeeded(&mut self, now: Instant) -> Report {
        match self.failing.take() {
            None => Report::Quiet,
            Some(failing) => Report::Recovered {
                failures: failing.total,
                lasted: now.saturating_duration_since(failing.since),
            },
        }
    }

    /// Records `result` at `now`.
    pub fn record<T, E>(&mut self, result: &Result<T, E>, now: Instant) -> Report {
        match result {
            Ok(_) => self.succeeded(now),
            Err(_) => self.failed(now),
        }
    }
}

/// One [`FailureLog`] per key (e.g. per reader of a database).
#[derive(Debug)]
pub struct FailureLogs<K> {
    every: Duration,
    logs: HashMap<K, FailureLog>,
}

impl<K> Default for FailureLogs<K> {
    fn default() -> Self {
        Self {
            every: DEFAULT_REPEAT_EVERY,
            logs: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash> FailureLogs<K> {
    /// Logs that repeat at most every `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            logs: HashMap::new(),
        }
    }

    /// Records `result` for `key` at `now`.
    pub fn record<T, E>(&mut self, key: K, result: &Result<T, E>, now: Instant) -> Report {
        if result.is_ok() && !self.logs.contains_key(&key) {
            return Report::Quiet;
        }
        let every = self.every;
        let log = self
            .logs
            .entry(key)
            .or_insert_with(|| FailureLog::new(every));
        let report = log.record(result, now);
        if !log.is_failing() {
            // Only failing tasks are kept: the map stays as small as the
            // set of tasks failing right now.
            self.logs.retain(|_, log| log.is_failing());
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Duration = Duration::from_secs(15);

    #[tokio::test(start_paused = true)]
    async fn logs_the_start_then_once_per_period_then_the_recovery() {
        let mut log = FailureLog::new(Duration::from_secs(300));
        let ok: Result<(), ()> = Ok(());
        let err: Result<(), ()> = Err(());
        assert_eq!(log.record(&ok, Instant::now()), Report::Quiet);
        assert_eq!(log.record(&err, Instant::now()), Report::Started);
        let mut lines = Vec::new();
        // 30 minutes of failures, one every 15 s: 120 failures.
        for _ in 1..120 {
            tokio::time::advance(TICK).await;
            let report = log.record(&err, Instant::now());
            if report != Report::Quiet {
                lines.push(report);
            }
        }
        // 119 failures after the first: a line every 300 s (20 ticks),
        // each counting the 20 failures since the previous one.
        assert_eq!(lines.len(), 5, "{lines:?}");
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(
                *line,
                Report::Still {
                    failures: 20,
                    for_: Duration::from_secs(300 * (i as u64 + 1)),
                }
            );
        }
        tokio::time::advance(TICK).await;
        assert_eq!(
            log.record(&ok, Instant::now()),
            Report::Recovered {
                failures: 120,
                lasted: Duration::from_secs(120 * 15),
            }
        );
        assert_eq!(log.record(&ok, Instant::now()), Report::Quiet);
        // A new failure is a new start.
        assert_eq!(log.record(&err, Instant::now()), Report::Started);
    }

    #[tokio::test(start_paused = true)]
    async fn keys_are_independent_and_recovered_ones_are_forgotten() {
        let mut logs = FailureLogs::new(Duration::from_secs(60));
        let err: Result<(), ()> = Err(());
        let ok: Result<(), ()> = Ok(());
        assert_eq!(logs.record("a", &err, Instant::now()), Report::Started);
        assert_eq!(logs.record("b", &ok, Instant::now()), Report::Quiet);
        assert_eq!(logs.record("b", &err, Instant::now()), Report::Started);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(logs.record("a", &err, Instant::now()), Report::Quiet);
        assert_eq!(
            logs.record("b", &ok, Instant::now()),
            Report::Recovered {
                failures: 1,
                lasted: Duration::from_secs(10)
            }
        );
        assert_eq!(logs.logs.len(), 1);
        tokio::time::advance(Duration::from_secs(50)).await;
        assert_eq!(
            logs.record("a", &err, Instant::now()),
            Report::Still {
                failures: 2,
                for_: Duration::from_secs(60)
            }
        );
    }
}
