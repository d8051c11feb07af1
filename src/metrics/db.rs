//! Database metrics, fed by the timed pool ([`crate::db`]):
//! `db_query_duration_seconds{operation, model}`,
//! `db_query_errors_total{operation, model, kind}`, the pool's gauges and
//! wait histogram, and per-route database time.
//!
//! `operation` is the SQL verb or a caller-given name (`findMany`), `model`
//! the main table; both can take outside values, so both families are
//! capped. Pool families carry a `pool` label (the pool's name, `default`
//! for `DATABASE_URL`) and stay empty until a pool exists.

use std::borrow::Cow;
use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

use super::bounded::{BoundedFamily, OverflowLabels, SeriesAccounting};
use super::histogram::{AtomicHistogram, Buckets, TracedBuckets};
use super::http::RouteLabel;

/// Labels of `db_query_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub operation: Cow<'static, str>,
    pub model: Arc<str>,
}

impl OverflowLabels for QueryLabels {
    fn overflow() -> Self {
        Self {
            operation: Cow::Borrowed("__overflow__"),
            model: Arc::from("__overflow__"),
        }
    }
}

/// Why a query failed, from its SQLSTATE class: a closed set, never the
/// error message.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum ErrorKind {
    /// The connection failed or closed.
    Connection,
    /// `statement_timeout` or a cancel (57014).
    Timeout,
    /// Unique, foreign-key, not-null or check violation (23xxx).
    Constraint,
    /// Deadlock or serialization failure (40xxx).
    Conflict,
    /// Syntax error or an undefined object (42xxx).
    Syntax,
    /// Insufficient privilege (42501).
    Permission,
    /// Bad input data (22xxx).
    Data,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connection => "connection",
            Self::Timeout => "timeout",
            Self::Constraint => "constraint",
            Self::Conflict => "conflict",
            Self::Syntax => "syntax",
            Self::Permission => "permission",
            Self::Data => "data",
            Self::Other => "other",
        }
    }

    /// The kind of a five-character SQLSTATE, or `Connection` without one.
    pub fn from_sqlstate(code: Option<&str>) -> Self {
        let Some(code) = code else {
            return Self::Connection;
        };
        match code {
            "57014" => Self::Timeout,
            "42501" => Self::Permission,
            _ => match code.get(..2) {
                Some("08") | Some("57") => Self::Connection,
                Some("23") => Self::Constraint,
                Some("40") => Self::Conflict,
                Some("42") => Self::Syntax,
                Some("22") => Self::Data,
                _ => Self::Other,
            },
        }
    }
}

impl EncodeLabelValue for ErrorKind {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of `db_query_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryErrorLabels {
    pub operation: Cow<'static, str>,
    pub model: Arc<str>,
    pub kind: ErrorKind,
}

impl OverflowLabels for QueryErrorLabels {
    fn overflow() -> Self {
        Self {
            operation: Cow::Borrowed("__overflow__"),
            model: Arc::from("__overflow__"),
            kind: ErrorKind::Other,
        }
    }
}

/// `pool` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    pub pool: Arc<str>,
}

/// `pool` and `state` labels of `db_pool_connections`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolStateLabels {
    pub pool: Arc<str>,
    pub state: &'static str,
}

/// `pool` and `kind` (wait, create, recycle) of `db_pool_timeouts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolTimeoutLabels {
    pub pool: Arc<str>,
    pub kind: &'static str,
}

/// `route` label of the per-route database families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteDbLabels {
    pub route: RouteLabel,
}

impl OverflowLabels for RouteDbLabels {
    fn overflow() -> Self {
        Self {
            route: RouteLabel::Overflow,
        }
    }
}

/// The database metric families.
#[derive(Debug)]
pub struct DbMetrics {
    /// `db_query_duration_seconds{operation, model}`.
    pub query_duration: BoundedFamily<QueryLabels, AtomicHistogram, TracedBuckets>,
    /// `db_query_errors_total{operation, model, kind}`.
    pub query_errors: BoundedFamily<QueryErrorLabels, Counter>,
    /// `db_slow_queries_total{operation, model}`.
    pub slow_queries: BoundedFamily<QueryLabels, Counter>,
    /// `db_pool_connections{pool, state}`.
    pub pool_connections: Family<PoolStateLabels, Gauge>,
    /// `db_pool_max{pool}`.
    pub pool_max: Family<PoolLabels, Gauge>,
    /// `db_pool_waiting{pool}`.
    pub pool_waiting: Family<PoolLabels, Gauge>,
    /// `db_pool_wait_duration_seconds{pool}`.
    pub pool_wait: Family<PoolLabels, AtomicHistogram, Buckets>,
    /// `db_pool_timeouts_total{pool, kind}`.
    pub pool_timeouts: Family<PoolTimeoutLabels, Counter>,
    /// `db_route_duration_seconds{route}`: database time per request.
    pub route_duration: BoundedFamily<RouteDbLabels, AtomicHistogram, Buckets>,
    /// `db_route_queries_total{route}`.
    pub route_queries: BoundedFamily<RouteDbLabels, Counter>,
    /// `db_n_plus_one_requests_total{route}`.
    pub n_plus_one: BoundedFamily<RouteDbLabels, Counter>,
}

impl DbMetrics {
    /// Defines and registers the families.
    pub fn register(
        registry: &mut Registry,
        accounting: &SeriesAccounting,
        buckets: Buckets,
    ) -> Self {
        let pool_wait = Family::new_with_constructor(buckets.clone());
        let metrics = Self {
            query_duration: BoundedFamily::register(
                registry,
                accounting,
                "db_query_duration",
                "Duration of database statements by operation (SQL verb or caller-given name) and model (main table)",
                Some(Unit::Seconds),
                TracedBuckets(buckets.clone()),
            ),
            query_errors: BoundedFamily::register(
                registry,
                accounting,
                "db_query_errors",
                "Failed database statements by operation, model and error kind",
                None,
                Counter::default,
            ),
            slow_queries: BoundedFamily::register(
                registry,
                accounting,
                "db_slow_queries",
                "Statements slower than SLOW_QUERY_THRESHOLD, by operation and model",
                None,
                Counter::default,
            ),
            pool_connections: Family::default(),
            pool_max: Family::default(),
            pool_waiting: Family::default(),
            pool_wait,
            pool_timeouts: Family::default(),
            route_duration: BoundedFamily::register(
                registry,
                accounting,
                "db_route_duration",
                "Database time per HTTP request, by route template",
                Some(Unit::Seconds),
                buckets,
            ),
            route_queries: BoundedFamily::register(
                registry,
                accounting,
                "db_route_queries",
                "Database statements run by HTTP requests, by route template",
                None,
                Counter::default,
            ),
            n_plus_one: BoundedFamily::register(
                registry,
                accounting,
                "db_n_plus_one_requests",
                "Requests that ran one statement at least the N+1 threshold's number of times, by route",
                None,
                Counter::default,
            ),
        };
        registry.register(
            "db_pool_connections",
            "Connections of the pool by state (idle, in_use)",
            metrics.pool_connections.clone(),
        );
        registry.register(
            "db_pool_max",
            "Maximum size of the pool (DATABASE_POOL_MAX)",
            metrics.pool_max.clone(),
        );
        registry.register(
            "db_pool_waiting",
            "Callers waiting for a connection",
            metrics.pool_waiting.clone(),
        );
        registry.register_with_unit(
            "db_pool_wait_duration",
            "Time to get a connection from the pool",
            Unit::Seconds,
            metrics.pool_wait.clone(),
        );
        registry.register(
            "db_pool_timeouts",
            "Pool timeouts by kind (wait, create, recycle)",
            metrics.pool_timeouts.clone(),
        );
        metrics
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorKind;

    #[test]
    fn sqlstate_classes() {
        assert_eq!(ErrorKind::from_sqlstate(Some("57014")), ErrorKind::Timeout);
        assert_eq!(
            ErrorKind::from_sqlstate(Some("23505")),
            ErrorKind::Constraint
        );
        assert_eq!(ErrorKind::from_sqlstate(Some("40P01")), ErrorKind::Conflict);
        assert_eq!(ErrorKind::from_sqlstate(Some("42P01")), ErrorKind::Syntax);
        assert_eq!(
            ErrorKind::from_sqlstate(Some("42501")),
            ErrorKind::Permission
        );
        assert_eq!(
            ErrorKind::from_sqlstate(Some("08006")),
            ErrorKind::Connection
        );
        assert_eq!(ErrorKind::from_sqlstate(None), ErrorKind::Connection);
        assert_eq!(ErrorKind::from_sqlstate(Some("XX000")), ErrorKind::Other);
    }
}
