//! `pg_activity_*{database}`: what the activity reader saw on its last pass
//! of each watched database — the longest-running query and the oldest
//! open transaction (seconds), and how many sessions are blocked,
//! long-running or idle in a transaction. Read at scrape time from the
//! reader's latest pass; one series per family and database, so inside
//! the series cap by construction. Sessions by state are
//! `pg_database_connections{state}` (the database reader).
//!
//! It stays in `metrics/` rather than beside the readers in `pg/`: every
//! metric family of the crate is defined under `metrics/` (names, units,
//! labels and the series cap in one place, which the dashboards, the
//! alert rules and the docs are checked against), and a collector is only
//! the scrape-time view of what [`crate::pg::readers`] keep — it depends
//! on the readers, never the other way round.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use crate::pg::Watched;
use crate::pg::readers::activity::ActivitySummary;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DatabaseLabels {
    database: Arc<str>,
}

type Value = fn(&ActivitySummary) -> f64;

/// The families, in one table.
const FAMILIES: [(&str, &str, Option<Unit>, Value); 5] = [
    (
        "pg_activity_longest_query",
        "Age of the longest-running active query",
        Some(Unit::Seconds),
        |s| s.longest_query,
    ),
    (
        "pg_activity_longest_transaction",
        "Age of the oldest open transaction",
        Some(Unit::Seconds),
        |s| s.longest_transaction,
    ),
    (
        "pg_activity_blocked_sessions",
        "Sessions waiting on a lock another session holds",
        None,
        |s| s.blocked as f64,
    ),
    (
        "pg_activity_long_running_queries",
        "Active queries running longer than PERFSCOPE_LONG_QUERY_THRESHOLD",
        None,
        |s| s.long_running as f64,
    ),
    (
        "pg_activity_idle_in_transaction_sessions",
        "Sessions idle in a transaction longer than PERFSCOPE_IDLE_IN_TRANSACTION_THRESHOLD",
        None,
        |s| s.idle_in_transaction as f64,
    ),
];

/// Encodes the latest activity pass of every watched database.
#[derive(Debug)]
pub struct ActivityCollector {
    /// The databases.
    pub watched: Arc<Watched>,
}

impl Collector for ActivityCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let summaries: Vec<(Arc<str>, ActivitySummary)> = self
            .watched
            .all()
            .iter()
            .filter_map(|db| db.activity.latest().map(|a| (db.name.clone(), a.summary())))
            .collect();
        if summaries.is_empty() {
            return Ok(());
        }
        for (name, help, unit, value) in FAMILIES {
            let mut family =
                encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
            for (database, summary) in &summaries {
                let labels = DatabaseLabels {
                    database: database.clone(),
                };
                ConstGauge::new(value(summary)).encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}
