//! One sample of the figures the pages chart, taken every
//! [`super::SAMPLE_INTERVAL`] into the [`super::History`]. It reads the
//! pieces it needs (the request metrics, the runtime, the watched
//! databases), not the handle, so the history sits below the handle that
//! owns it.

use std::collections::HashMap;

use super::{Reading, RouteKey, RouteReading, RuntimePoint, StatementKey};
use crate::metrics::http::{HttpLabels, HttpMetrics};
use crate::runtime::RuntimeMonitor;

/// What one sample reads.
#[derive(Clone, Copy, Debug)]
pub struct Sources<'a> {
    /// The request-duration histograms by route.
    pub http: &'a HttpMetrics,
    /// The runtime's lag and utilization.
    pub runtime: &'a RuntimeMonitor,
    /// The watched databases' statements.
    #[cfg(feature = "postgres")]
    pub watched: &'a crate::pg::Watched,
}

/// One sample for the history: the routes' cumulative histograms and
/// duration sketches, the runtime, and each watched database's statements.
pub fn read(sources: Sources<'_>) -> Reading {
    let mut routes: HashMap<RouteKey, RouteReading> = HashMap::new();
    sources.http.request_duration.for_each(|labels, histogram| {
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
    let overflow = <HttpLabels as crate::metrics::OverflowLabels>::overflow();
    sources.http.route_sketches.for_each(|labels, sketch| {
        if *labels == overflow {
            return;
        }
        let key = (
            labels.method.as_str().to_owned(),
            labels.route.as_str().to_owned(),
        );
        routes
            .entry(key)
            .or_default()
            .sketch
            .merge(&sketch.snapshot());
    });
    let runtime = sources.runtime.snapshot();
    #[cfg_attr(not(feature = "postgres"), allow(unused_mut))]
    let mut statements: HashMap<StatementKey, (u64, f64)> = HashMap::new();
    #[cfg(feature = "postgres")]
    for db in sources.watched.all() {
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
        runtime: RuntimePoint {
            lag: runtime.lag.as_secs_f64(),
            utilization: runtime.utilization,
            resident: crate::runtime::process::ProcessSnapshot::read().resident_bytes,
        },
        statements,
    }
}
