//! The connection budget's families: what the agent itself costs each
//! watched server in connections, the budget it keeps to, and how often it
//! held back instead of connecting (SQLSTATE 53300, or too few free slots).

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `database`: the pool's name (`default`, a `PERFSCOPE_WATCH_DATABASES`
/// name, or `maintenance`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BudgetLabels {
    pub database: Arc<str>,
}

/// The budget's families.
#[derive(Debug, Default, Clone)]
pub struct BudgetMetrics {
    /// `perfscope_db_connections{database}`: connections the agent holds
    /// open now.
    pub connections: Family<BudgetLabels, Gauge>,
    /// `perfscope_db_connection_budget`: `PERFSCOPE_MAX_DB_CONNECTIONS`.
    pub budget: Gauge,
    /// `perfscope_db_connect_backoff_total{database}`: connections held
    /// back (refused with SQLSTATE 53300, or not opened because the server
    /// had fewer free slots than the headroom, or while backing off).
    pub backoff: Family<BudgetLabels, Counter>,
}

impl BudgetMetrics {
    /// Defines and registers the families.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "perfscope_db_connections",
            "Connections the agent holds open, by watched database",
            metrics.connections.clone(),
        );
        registry.register(
            "perfscope_db_connection_budget",
            "Most connections the agent opens across every database it watches (PERFSCOPE_MAX_DB_CONNECTIONS)",
            metrics.budget.clone(),
        );
        registry.register(
            "perfscope_db_connect_backoff",
            "Connections the agent held back: refused by the server (SQLSTATE 53300), or not opened because the server was short of free slots or backing off",
            metrics.backoff.clone(),
        );
        metrics
    }
}
