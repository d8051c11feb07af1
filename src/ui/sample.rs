//! One sample of the figures the pages chart, taken by the agent every
//! [`super::history::SAMPLE_INTERVAL`] into the [`super::history::History`].

use std::collections::HashMap;

use super::history::{self, Reading, RouteKey, RouteReading, StatementKey};
use crate::Perfscope;

/// One sample for the history: the routes' cumulative histograms, the
/// runtime, and each watched database's statements.
pub fn read(perfscope: &Perfscope) -> Reading {
    let mut routes: HashMap<RouteKey, RouteReading> = HashMap::new();
    perfscope
        .http_metrics()
        .request_duration
        .for_each(|labels, histogram| {
            let snapshot = histogram.snapshot();
            let key = (
                labels.method.as_str().to_owned(),
                labels.route.as_str().to_owned(),
            );
            let entry = routes.entry(key).or_default();
            if labels.status_code.0.is_some_and(|code| code >= 500) {
                entry.errors += snapshot.count;
            }
            entry.histogram.merge(&snapshot);
        });
    let runtime = perfscope.runtime().snapshot();
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut statements: HashMap<StatementKey, (u64, f64)> = HashMap::new();
    #[cfg(feature = "postgres")]
    for db in perfscope.watched().all() {
        for s in &db.statements.latest().unwrap_or_default().statements {
            statements.insert(
                (db.name.clone(), s.queryid),
                (
                    u64::try_from(s.cumulative.calls).unwrap_or(0),
                    s.cumulative.total_ms,
                ),
            );
        }
    }
    Reading {
        routes,
        runtime: history::RuntimePoint {
            lag: runtime.lag.as_secs_f64(),
            utilization: runtime.utilization,
            resident: crate::runtime::process::ProcessSnapshot::read().resident_bytes,
        },
        statements,
    }
}
