//! [`DbInsights`]: where every timed statement lands — the query metrics,
//! the slow log, the request context — and where a finished request's
//! database work is attributed to its route (per-route database time, N+1
//! suspects, the route of its slow entries).
//!
//! It needs no database driver, so the HTTP middleware uses it whether or
//! not the `postgres` feature is on.

use std::borrow::Cow;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use super::context::{self, RequestDb};
use super::n_plus_one::NPlusOne;
use super::slow_log::{SlowLog, SlowQuery};
use super::statement::StatementInfo;
use crate::metrics::db::{DbMetrics, ErrorKind, QueryErrorLabels, QueryLabels, RouteDbLabels};
use crate::metrics::http::RouteLabel;
use crate::metrics::{AtomicHistogram, SketchMap};
use crate::telemetry::current_trace_id;

/// The database side of one perfscope instance.
#[derive(Debug)]
pub struct DbInsights {
    /// The metric families.
    pub metrics: DbMetrics,
    /// The slow-query log.
    pub slow_log: SlowLog,
    /// N+1 suspects.
    pub n_plus_one: NPlusOne,
    slow_threshold: Duration,
    /// How each pool reads its own state, for the alert rules.
    pools: parking_lot::Mutex<Vec<PoolProbe>>,
    /// The route that last ran each statement (by fingerprint), so reports
    /// of pg_stat_statements can name it; at most [`MAX_STATEMENT_ROUTES`].
    statement_routes: parking_lot::RwLock<std::collections::HashMap<u64, Arc<str>>>,
    /// Every execution's duration by statement fingerprint, as quantile
    /// sketches (the reports' honest p50/p95); at most
    /// [`MAX_STATEMENT_SKETCHES`] statements, the first come.
    pub statement_sketches: SketchMap<u64>,
}

/// Statements with a duration sketch (a few KiB each); later ones have
/// none (their reports show the mean and the max).
pub const MAX_STATEMENT_SKETCHES: usize = 256;

/// Statements whose route is remembered; later ones are not (the first
/// come are the app's steady statements).
pub const MAX_STATEMENT_ROUTES: usize = 4096;

/// Reads one pool's state (registered by the pool, driver-free here).
pub struct PoolProbe(Box<dyn Fn() -> Option<crate::alerts::PoolReading> + Send + Sync>);

impl PoolProbe {
    /// A probe calling `read`.
    pub fn new(
        read: impl Fn() -> Option<crate::alerts::PoolReading> + Send + Sync + 'static,
    ) -> Self {
        Self(Box::new(read))
    }
}

impl std::fmt::Debug for PoolProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PoolProbe")
    }
}

impl DbInsights {
    /// Insights recording statements slower than `slow_threshold`.
    pub fn new(metrics: DbMetrics, slow_threshold: Duration) -> Self {
        Self {
            metrics,
            slow_log: SlowLog::default(),
            n_plus_one: NPlusOne::default(),
            slow_threshold,
            pools: parking_lot::Mutex::default(),
            statement_routes: parking_lot::RwLock::default(),
            statement_sketches: SketchMap::new(MAX_STATEMENT_SKETCHES, None),
        }
    }

    /// Registers a pool for the alert rules.
    pub fn register_pool(&self, probe: PoolProbe) {
        self.pools.lock().push(probe);
    }

    /// Every registered pool's state.
    pub fn pool_readings(&self) -> Vec<crate::alerts::PoolReading> {
        self.pools
            .lock()
            .iter()
            .filter_map(|probe| (probe.0)())
            .collect()
    }

    /// The slow-query threshold.
    pub fn slow_threshold(&self) -> Duration {
        self.slow_threshold
    }

    /// The `db_query_duration_seconds` series of a statement under its
    /// default operation (its verb), for callers that cache it per
    /// statement and skip the family lookup on every execution.
    pub fn duration_series(&self, statement: &StatementInfo) -> AtomicHistogram {
        self.metrics
            .query_duration
            .get(&QueryLabels {
                operation: Cow::Borrowed(statement.verb.as_str()),
                model: statement.model.clone(),
            })
            .clone()
    }

    /// Records one finished statement: its duration (and error kind) in
    /// the metrics, the slow log when over the threshold, and the current
    /// request's context. `series` is the statement's cached duration
    /// series when `operation` is its default. A statement of perfscope's
    /// own inside a host app (`own`: the readers an `Integration` runs) is
    /// timed and its errors counted, but it is not the app's: it never
    /// enters the slow log (nor the slow-query alerts and the slow-query
    /// list) or a request's context.
    pub fn record(
        &self,
        statement: &Arc<StatementInfo>,
        operation: Option<&Cow<'static, str>>,
        series: Option<&AtomicHistogram>,
        elapsed: Duration,
        error: Option<ErrorKind>,
        own: bool,
    ) {
        let labels = || QueryLabels {
            operation: operation
                .cloned()
                .unwrap_or(Cow::Borrowed(statement.verb.as_str())),
            model: statement.model.clone(),
        };
        match (series, operation) {
            (Some(series), None) => series.observe_traced(elapsed.as_secs_f64(), current_trace_id),
            _ => self
                .metrics
                .query_duration
                .get(&labels())
                .observe_traced(elapsed.as_secs_f64(), current_trace_id),
        }
        if !own {
            self.statement_sketches
                .observe(&statement.fingerprint, elapsed.as_secs_f64());
        }
        if error.is_none() && (own || elapsed < self.slow_threshold) {
            if !own {
                context::record(statement, elapsed, None);
            }
            return;
        }
        let labels = labels();
        if let Some(kind) = error {
            self.metrics
                .query_errors
                .get(&QueryErrorLabels {
                    operation: labels.operation.clone(),
                    model: labels.model.clone(),
                    kind,
                })
                .inc();
        }
        if own {
            return;
        }
        let slow = (elapsed >= self.slow_threshold).then(|| {
            self.metrics.slow_queries.get(&labels).inc();
            let entry = Arc::new(SlowQuery {
                statement: statement.clone(),
                operation: Arc::from(labels.operation.as_ref()),
                duration: elapsed,
                at: SystemTime::now(),
                failed: error.is_some(),
                route: OnceLock::new(),
            });
            self.slow_log.push(entry.clone());
            entry
        });
        context::record(statement, elapsed, slow.as_ref());
    }

    /// Attributes a finished request's database work to its route.
    pub fn finish_request(&self, route: &RouteLabel, db: &RequestDb) {
        let route_name: Arc<str> = match route {
            RouteLabel::Template(template) => template.clone(),
            other => Arc::from(other.as_str()),
        };
        for entry in &db.slow {
            let _ = entry.route.set(route_name.clone());
        }
        let labels = RouteDbLabels {
            route: route.clone(),
        };
        self.metrics
            .route_duration
            .get(&labels)
            .observe(db.db_time.as_secs_f64());
        self.metrics.route_queries.get(&labels).inc_by(db.queries);
        let mut suspect = false;
        for statement in &db.statements {
            suspect |= self
                .n_plus_one
                .observe(&route_name, &statement.statement, statement.count);
        }
        self.remember_routes(&route_name, db);
        if suspect {
            self.metrics.n_plus_one.get(&labels).inc();
        }
    }

    /// Notes `route` as the issuer of each of the request's statements: a
    /// read lock when nothing changed (the steady state), a write only for
    /// a new statement or a route change.
    fn remember_routes(&self, route: &Arc<str>, db: &RequestDb) {
        if db.statements.is_empty() {
            return;
        }
        // The same route's requests share one `Arc`: a pointer compare
        // settles the steady state without comparing text.
        let same = |known: &Arc<str>| Arc::ptr_eq(known, route) || known == route;
        let stale = {
            let known = self.statement_routes.read();
            db.statements.iter().any(|s| {
                known
                    .get(&s.statement.fingerprint)
                    .map_or(known.len() < MAX_STATEMENT_ROUTES, |r| !same(r))
            })
        };
        if !stale {
            return;
        }
        let mut known = self.statement_routes.write();
        for s in &db.statements {
            let len = known.len();
            match known.get_mut(&s.statement.fingerprint) {
                Some(existing) if !same(existing) => *existing = route.clone(),
                Some(_) => {}
                None if len < MAX_STATEMENT_ROUTES => {
                    known.insert(s.statement.fingerprint, route.clone());
                }
                None => {}
            }
        }
    }

    /// The route that last ran the statement of `fingerprint`, when known.
    pub fn route_of(&self, fingerprint: u64) -> Option<Arc<str>> {
        self.statement_routes.read().get(&fingerprint).cloned()
    }
}
