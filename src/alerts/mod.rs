//! Alerts: rules over what perfscope already measures, evaluated in the
//! process on every runtime sample, told to sinks that never block.
//!
//! Condition rules fire once and resolve once per subject, with a hold
//! (`PERFSCOPE_ALERT_FOR`) and a lower resolve level ([`state`]):
//! - `high_memory`: resident memory over `HIGH_MEMORY_THRESHOLD` of the
//!   cgroup limit (only when there is a limit); resolves 5 points lower;
//! - `event_loop_lag`: the worst lag of each interval over
//!   `EVENT_LOOP_LAG_THRESHOLD`; resolves under 80 % of it;
//! - `pool_exhausted`, per pool: no idle connection while callers wait, or
//!   a wait timeout since the last evaluation.
//!
//! `slow_query` is an event: a statement slower than
//! `SLOW_QUERY_THRESHOLD` notifies once per statement fingerprint per
//! `PERFSCOPE_ALERT_DEDUP_WINDOW`, with its normalized text (never a
//! literal) and route, and has nothing to resolve.
//!
//! `statement_regression` and `route_regression` are conditions too, but
//! fed by the history store's check every few minutes rather than the
//! runtime sample (`alerts/regressions.rs`): a statement (mean time or blocks read
//! per call) or a route (p95) at least twice its 7-day baseline fires with
//! the before/after numbers, and resolves when it no longer is.
//!
//! Every notification goes to each sink ([`sinks`]: the log, webhooks with
//! the `webhooks` feature, Sentry with the `sentry` feature). A sink takes it without waiting — a bounded queue,
//! dropped and counted when full — so a slow or dead receiver costs the
//! request path nothing.
//!
//! Over 600 lines with its unit tests (from `mod tests` on), which stay
//! beside the rule evaluation they pin down; the code itself is under 500.

#[cfg(feature = "store")]
mod regressions;
pub mod sinks;
pub mod state;

pub use self::sinks::Sink;
/// The webhook sink, at its former path.
#[cfg(feature = "webhooks")]
pub use self::sinks::webhook;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};
use serde::Serialize;

use self::sinks::log::LogSink;
use self::state::{ConditionState, Levels, Transition};
use crate::config::{AlertsConfig, RuntimeConfig};
use crate::db::slow_log::SlowQuery;
use crate::metrics::alerts::{AlertMetrics, RuleLabels};

/// How many times its baseline a regression is (the threshold the
/// regression rules report).
const REGRESSION_RATIO: f64 = 2.0;

/// Notifications kept for `GET /api/performance/alerts`.
pub const RECENT_CAPACITY: usize = 100;
/// Subjects tracked per condition rule (pools are the only open set).
pub const MAX_SUBJECTS: usize = 64;

/// The rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Resident memory near the container limit.
    HighMemory,
    /// Event-loop lag over the threshold.
    EventLoopLag,
    /// A pool with waiters and no idle connection, or wait timeouts.
    PoolExhausted,
    /// A statement slower than the slow-query threshold (an event).
    SlowQuery,
    /// A statement at least twice as slow as its baseline (from the store).
    StatementRegression,
    /// A route's p95 at least twice its baseline (from the store).
    RouteRegression,
}

impl Rule {
    /// Every rule.
    pub const ALL: [Rule; 6] = [
        Self::HighMemory,
        Self::EventLoopLag,
        Self::PoolExhausted,
        Self::SlowQuery,
        Self::StatementRegression,
        Self::RouteRegression,
    ];

    /// Its name in payloads and labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HighMemory => "high_memory",
            Self::EventLoopLag => "event_loop_lag",
            Self::PoolExhausted => "pool_exhausted",
            Self::SlowQuery => "slow_query",
            Self::StatementRegression => "statement_regression",
            Self::RouteRegression => "route_regression",
        }
    }
}

/// What sinks receive (the webhook body, as JSON).
#[derive(Clone, Debug, PartialEq, Serialize, poem_openapi::Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct Notification {
    /// `high_memory`, `event_loop_lag`, `pool_exhausted`, `slow_query`,
    /// `statement_regression` or `route_regression`.
    pub rule: String,
    /// `firing`, `resolved` or (for `slow_query`) `event`.
    pub state: String,
    /// What it is about: `process`, `runtime`, a pool's name, a
    /// statement fingerprint (hex), `database/queryid` or `METHOD route`.
    pub subject: String,
    /// The measured value (a share for memory, seconds for lag and slow
    /// queries, waiters for pools, times the baseline for regressions).
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// What happened, in words, with the numbers.
    pub message: String,
    /// For `slow_query` and `statement_regression`: the normalized
    /// statement (no literal values).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// For `slow_query` and `statement_regression`: the route that ran
    /// it, when known; for `route_regression`: the route.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// For a regression: the baseline's value (ms per call, blocks read
    /// per call, or p95 seconds).
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<f64>,
    /// For a regression: the last window's value, in the same unit.
    #[oai(skip_serializing_if_is_none)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<f64>,
    /// When the condition began (ms since the Unix epoch).
    pub started_at: u64,
    /// When this notification was made (ms since the Unix epoch).
    pub at: u64,
}

impl Notification {
    /// Its rule as a `'static` label value (every notification is made
    /// from a [`Rule`]).
    pub fn rule_label(&self) -> &'static str {
        Rule::ALL
            .into_iter()
            .find(|r| r.as_str() == self.rule)
            .unwrap_or(Rule::SlowQuery)
            .as_str()
    }
}

/// A condition firing now.
#[derive(Clone, Debug, PartialEq, Serialize, poem_openapi::Object)]
#[serde(rename_all = "camelCase")]
#[oai(rename_all = "camelCase")]
pub struct FiringAlert {
    /// The rule.
    pub rule: String,
    /// Its subject.
    pub subject: String,
    /// The last value seen.
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// When it began (ms since the Unix epoch).
    pub started_at: u64,
}

/// One pool as the rules see it.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolReading {
    /// The pool's name.
    pub name: Arc<str>,
    /// Connections open.
    pub size: usize,
    /// The pool's limit.
    pub max: usize,
    /// Idle connections.
    pub idle: usize,
    /// Callers waiting for one.
    pub waiting: usize,
    /// Wait timeouts so far.
    pub wait_timeouts: u64,
}

/// What the rules read on one evaluation.
#[derive(Clone, Debug, Default)]
pub struct Readings {
    /// Resident memory over the container limit, when there is a limit.
    pub memory_utilization: Option<f64>,
    /// The worst event-loop lag of the last interval.
    pub lag: Option<Duration>,
    /// Every pool.
    pub pools: Vec<PoolReading>,
    /// Slow statements logged since the last evaluation.
    pub slow: Vec<Arc<SlowQuery>>,
}

#[derive(Debug)]
struct Condition {
    state: ConditionState,
    started_wall: u64,
}

#[derive(Debug, Default)]
struct Book {
    conditions: BTreeMap<(Rule, String), Condition>,
    last_wait_timeouts: HashMap<Arc<str>, u64>,
    slow_notified: HashMap<u64, Instant>,
    recent: VecDeque<Arc<Notification>>,
    /// The last regression check's list (at most
    /// `findings::regressions::MAX_REGRESSIONS`).
    #[cfg(feature = "store")]
    regressions: Vec<crate::findings::regressions::Regression>,
}

/// The rules, their state and the sinks.
#[derive(Debug)]
pub struct Alerts {
    lag_threshold: Duration,
    memory_threshold: f64,
    slow_threshold: Duration,
    hold: Duration,
    dedup_window: Duration,
    book: Mutex<Book>,
    sinks: RwLock<Vec<Arc<dyn Sink>>>,
    metrics: AlertMetrics,
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Alerts {
    /// The rules with `config`'s timing, the runtime monitor's thresholds
    /// and the slow-query log's.
    pub fn new(
        config: &AlertsConfig,
        runtime: &RuntimeConfig,
        slow_query_threshold: Duration,
        metrics: AlertMetrics,
    ) -> Self {
        for rule in Rule::ALL {
            metrics
                .firing
                .get_or_create(&RuleLabels {
                    rule: rule.as_str(),
                })
                .set(0);
        }
        Self {
            lag_threshold: runtime.event_loop_lag_threshold,
            memory_threshold: runtime.high_memory_threshold,
            slow_threshold: slow_query_threshold,
            hold: config.hold_for,
            dedup_window: config.dedup_window,
            book: Mutex::default(),
            sinks: RwLock::new(vec![Arc::new(LogSink::new(metrics.clone()))]),
            metrics,
        }
    }

    /// Adds a sink.
    pub fn add_sink(&self, sink: Arc<dyn Sink>) {
        self.sinks.write().push(sink);
    }

    /// The metrics the sinks count into.
    pub fn metrics(&self) -> &AlertMetrics {
        &self.metrics
    }

    /// Evaluates every rule on `readings` at `now`, notifying what changed.
    pub fn evaluate(&self, readings: &Readings, now: Instant) {
        let mut out = Vec::new();
        {
            let mut book = self.book.lock();
            if let Some(share) = readings.memory_utilization {
                let levels = Levels {
                    threshold: self.memory_threshold,
                    hold: self.hold,
                    resolve_below: self.memory_threshold - 0.05,
                };
                self.condition(
                    &mut book,
                    Rule::HighMemory,
                    "process",
                    share,
                    levels,
                    now,
                    &mut out,
                );
            }
            if let Some(lag) = readings.lag {
                let threshold = self.lag_threshold.as_secs_f64();
                let levels = Levels {
                    threshold,
                    hold: self.hold,
                    resolve_below: threshold * 0.8,
                };
                self.condition(
                    &mut book,
                    Rule::EventLoopLag,
                    "runtime",
                    lag.as_secs_f64(),
                    levels,
                    now,
                    &mut out,
                );
            }
            for pool in &readings.pools {
                let last = book
                    .last_wait_timeouts
                    .insert(pool.name.clone(), pool.wait_timeouts)
                    .unwrap_or(pool.wait_timeouts);
                let timed_out = pool.wait_timeouts > last;
                let exhausted = (pool.idle == 0 && pool.waiting > 0) || timed_out;
                let value = if exhausted {
                    pool.waiting.max(1) as f64
                } else {
                    0.0
                };
                let levels = Levels {
                    threshold: 1.0,
                    hold: self.hold,
                    resolve_below: 1.0,
                };
                self.condition(
                    &mut book,
                    Rule::PoolExhausted,
                    &pool.name,
                    value,
                    levels,
                    now,
                    &mut out,
                );
            }
            for slow in &readings.slow {
                let fingerprint = slow.statement.fingerprint;
                let recent = book
                    .slow_notified
                    .get(&fingerprint)
                    .is_some_and(|at| now.duration_since(*at) < self.dedup_window);
                if recent {
                    continue;
                }
                if book.slow_notified.len() >= 10_000 {
                    let window = self.dedup_window;
                    book.slow_notified
                        .retain(|_, at| now.duration_since(*at) < window);
                }
                book.slow_notified.insert(fingerprint, now);
                let at = unix_ms(slow.at);
                out.push(Notification {
                    rule: Rule::SlowQuery.as_str().into(),
                    state: "event".into(),
                    subject: format!("{fingerprint:016x}"),
                    value: slow.duration.as_secs_f64(),
                    threshold: self.slow_threshold.as_secs_f64(),
                    message: format!(
                        "A {} statement on {} took {} ms (threshold {} ms); told once per {} s per statement.",
                        slow.operation,
                        slow.statement.model,
                        slow.duration.as_millis(),
                        self.slow_threshold.as_millis(),
                        self.dedup_window.as_secs()
                    ),
                    statement: Some(slow.statement.normalized.to_string()),
                    route: slow.route.get().map(|r| r.to_string()),
                    before: None,
                    after: None,
                    started_at: at,
                    at,
                });
            }
            self.publish(
                &mut book,
                &out,
                &[Rule::HighMemory, Rule::EventLoopLag, Rule::PoolExhausted],
            );
        }
        for notification in out {
            self.notify(Arc::new(notification));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn condition(
        &self,
        book: &mut Book,
        rule: Rule,
        subject: &str,
        value: f64,
        levels: Levels,
        now: Instant,
        out: &mut Vec<Notification>,
    ) {
        let key = (rule, subject.to_owned());
        if !book.conditions.contains_key(&key) {
            let subjects = book.conditions.keys().filter(|(r, _)| *r == rule).count();
            if subjects >= MAX_SUBJECTS {
                return;
            }
        }
        let condition = book.conditions.entry(key).or_insert_with(|| Condition {
            state: ConditionState::default(),
            started_wall: 0,
        });
        let transition = condition.state.observe(value, levels, now);
        let wall = unix_ms(SystemTime::now());
        let (state, started_at) = match transition {
            Transition::None => return,
            Transition::Fired { since } => {
                let started = wall.saturating_sub(
                    u64::try_from(now.duration_since(since).as_millis()).unwrap_or(0),
                );
                condition.started_wall = started;
                ("firing", started)
            }
            Transition::Resolved { .. } => ("resolved", condition.started_wall),
        };
        out.push(Notification {
            rule: rule.as_str().into(),
            state: state.into(),
            subject: subject.to_owned(),
            value,
            threshold: levels.threshold,
            message: describe(rule, state, subject, value, levels),
            statement: None,
            route: None,
            before: None,
            after: None,
            started_at,
            at: wall,
        });
    }

    /// Keeps `out` among the recent notifications and sets
    /// `perfscope_alerts_firing` of each of `rules` from the book.
    fn publish(&self, book: &mut Book, out: &[Notification], rules: &[Rule]) {
        for notification in out {
            if book.recent.len() == RECENT_CAPACITY {
                book.recent.pop_front();
            }
            book.recent.push_back(Arc::new(notification.clone()));
        }
        for &rule in rules {
            let firing = book
                .conditions
                .iter()
                .filter(|((r, _), c)| *r == rule && c.state.is_firing())
                .count();
            self.metrics
                .firing
                .get_or_create(&RuleLabels {
                    rule: rule.as_str(),
                })
                .set(i64::try_from(firing).unwrap_or(i64::MAX));
        }
    }

    fn notify(&self, notification: Arc<Notification>) {
        for sink in self.sinks.read().iter() {
            sink.send(notification.clone());
        }
    }

    /// What fires now.
    pub fn firing(&self) -> Vec<FiringAlert> {
        self.book
            .lock()
            .conditions
            .iter()
            .filter(|(_, c)| c.state.is_firing())
            .map(|((rule, subject), c)| FiringAlert {
                rule: rule.as_str().into(),
                subject: subject.clone(),
                value: c.state.value,
                threshold: match rule {
                    Rule::HighMemory => self.memory_threshold,
                    Rule::EventLoopLag => self.lag_threshold.as_secs_f64(),
                    Rule::StatementRegression | Rule::RouteRegression => REGRESSION_RATIO,
                    _ => 1.0,
                },
                started_at: c.started_wall,
            })
            .collect()
    }

    /// The last notifications, newest first.
    pub fn recent(&self) -> Vec<Notification> {
        self.book
            .lock()
            .recent
            .iter()
            .rev()
            .map(|n| Notification::clone(n))
            .collect()
    }
}

fn describe(rule: Rule, state: &str, subject: &str, value: f64, levels: Levels) -> String {
    let resolved = state == "resolved";
    match rule {
        Rule::HighMemory if resolved => format!(
            "Resident memory is back to {:.0}% of the container limit.",
            value * 100.0
        ),
        Rule::HighMemory => format!(
            "Resident memory is {:.0}% of the container limit (threshold {:.0}%) for {} s: the process risks being OOM-killed.",
            value * 100.0,
            levels.threshold * 100.0,
            levels.hold.as_secs()
        ),
        Rule::EventLoopLag if resolved => {
            format!("Event-loop lag is back to {:.0} ms.", value * 1000.0)
        }
        Rule::EventLoopLag => format!(
            "Event-loop lag is {:.0} ms (threshold {:.0} ms) for {} s: a task blocks a Tokio worker.",
            value * 1000.0,
            levels.threshold * 1000.0,
            levels.hold.as_secs()
        ),
        Rule::PoolExhausted if resolved => {
            format!("Pool {subject} has idle connections again and no one waits.")
        }
        Rule::PoolExhausted => format!(
            "Pool {subject} has no idle connection and {value:.0} caller(s) waiting (or wait timeouts) for {} s.",
            levels.hold.as_secs()
        ),
        Rule::SlowQuery | Rule::StatementRegression | Rule::RouteRegression => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::statement;

    fn alerts(hold_ms: u64) -> (Alerts, prometheus_client::registry::Registry) {
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = AlertMetrics::register(&mut registry);
        let config = crate::Config::default();
        let timing = AlertsConfig {
            hold_for: Duration::from_millis(hold_ms),
            ..AlertsConfig::default()
        };
        let slow = config.database.slow_query_threshold;
        (
            Alerts::new(&timing, &config.runtime, slow, metrics),
            registry,
        )
    }

    fn lag(ms: u64) -> Readings {
        Readings {
            lag: Some(Duration::from_millis(ms)),
            ..Readings::default()
        }
    }

    #[test]
    fn lag_fires_once_after_the_hold_and_resolves_once() {
        let (alerts, _) = alerts(3_000);
        let start = Instant::now();
        for s in 0..10 {
            alerts.evaluate(&lag(250), start + Duration::from_secs(s));
        }
        for s in 10..15 {
            alerts.evaluate(&lag(5), start + Duration::from_secs(s));
        }
        let states: Vec<String> = alerts.recent().into_iter().rev().map(|n| n.state).collect();
        assert_eq!(states, vec!["firing", "resolved"]);
        let firing = &alerts.recent()[1];
        assert_eq!(firing.rule, "event_loop_lag");
        assert_eq!(firing.value, 0.25);
        assert_eq!(firing.threshold, 0.1);
        assert!(
            firing.message.contains("250 ms (threshold 100 ms)"),
            "{}",
            firing.message
        );
        assert!(alerts.firing().is_empty());
    }

    #[test]
    fn pools_fire_on_waiters_without_idle_or_on_timeouts() {
        let (alerts, registry) = alerts(0);
        let pool = |idle, waiting, wait_timeouts| Readings {
            pools: vec![PoolReading {
                name: "default".into(),
                size: 10,
                max: 10,
                idle,
                waiting,
                wait_timeouts,
            }],
            ..Readings::default()
        };
        let now = Instant::now();
        alerts.evaluate(&pool(2, 0, 0), now);
        alerts.evaluate(&pool(0, 3, 0), now);
        assert_eq!(alerts.firing().len(), 1);
        alerts.evaluate(&pool(1, 0, 0), now);
        alerts.evaluate(&pool(1, 0, 1), now);
        let states: Vec<String> = alerts.recent().into_iter().rev().map(|n| n.state).collect();
        assert_eq!(states, vec!["firing", "resolved", "firing"]);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encodes");
        assert!(
            text.contains("perfscope_alerts_firing{rule=\"pool_exhausted\"} 1"),
            "{text}"
        );
    }

    #[test]
    fn a_slow_statement_notifies_once_per_window() {
        let (alerts, _) = alerts(0);
        let info = Arc::new(statement::parse("SELECT * FROM orders WHERE total > 1000"));
        let other = Arc::new(statement::parse("SELECT pg_sleep(2)"));
        let slow = |statement: &Arc<statement::StatementInfo>| {
            Arc::new(SlowQuery {
                statement: statement.clone(),
                operation: "select".into(),
                duration: Duration::from_millis(1500),
                at: SystemTime::now(),
                failed: false,
                route: std::sync::OnceLock::new(),
            })
        };
        let start = Instant::now();
        let readings = |s: Vec<Arc<SlowQuery>>| Readings {
            slow: s,
            ..Readings::default()
        };
        alerts.evaluate(&readings(vec![slow(&info), slow(&info)]), start);
        alerts.evaluate(
            &readings(vec![slow(&info), slow(&other)]),
            start + Duration::from_secs(60),
        );
        alerts.evaluate(
            &readings(vec![slow(&info)]),
            start + Duration::from_secs(601),
        );
        let events = alerts.recent();
        assert_eq!(events.len(), 3, "{events:#?}");
        assert!(events.iter().all(|n| n.state == "event"));
        let texts: Vec<&str> = events
            .iter()
            .filter_map(|n| n.statement.as_deref())
            .collect();
        assert!(
            texts.iter().all(|t| !t.contains("1000")),
            "no literal values: {texts:?}"
        );
    }
}
