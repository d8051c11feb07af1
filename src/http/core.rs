//! The request measurement both front ends drive: the Poem middleware
//! ([`super::RequestMetrics`]) and the tower layer (`super::tower`, for
//! axum, tonic and any tower server).
//!
//! A front end knows its framework (where the route template is, when a
//! response is over); this core knows what a request is worth recording:
//! the in-flight gauge, the duration by method, route template and status
//! with the trace id as exemplar (and into that series' quantile sketch,
//! for honest percentiles), and the attribution of the request's
//! database work (per-route database time, N+1 suspects, the route of its
//! slow queries) from the context the timed pool recorded into
//! ([`crate::db::context`]). One place, so both front ends cannot drift.

use std::sync::Arc;
use std::time::Instant;

use crate::db::DbInsights;
use crate::db::context::RequestDb;
use crate::metrics::http::{HttpLabels, HttpMethod, HttpMetrics, RouteLabel, StatusLabel};

/// What a front end records into; cheap to clone.
#[derive(Clone, Debug)]
pub struct RequestCore {
    metrics: Arc<HttpMetrics>,
    db: Arc<DbInsights>,
}

impl RequestCore {
    /// A core recording into `metrics`, attributing database work through
    /// `db`.
    pub fn new(metrics: Arc<HttpMetrics>, db: Arc<DbInsights>) -> Self {
        Self { metrics, db }
    }

    /// A request begins: it counts as in flight until the returned value
    /// is finished or dropped (a cancelled request leaves the gauge too).
    pub fn begin(&self, method: &poem::http::Method) -> Started {
        self.metrics.in_flight.inc();
        Started {
            method: HttpMethod::from(method),
            started: Instant::now(),
            _in_flight: InFlight(self.metrics.clone()),
        }
    }

    /// The request is over: records its duration under `route` and
    /// `status` (an HTTP status code) with the request's sampled trace id
    /// as the exemplar (`trace_id`: the front end knows where its span
    /// is), and attributes `db`, the database work the request's scope
    /// collected, to `route`.
    pub fn finish(
        &self,
        started: Started,
        route: RouteLabel,
        status: u16,
        db: Option<&RequestDb>,
        trace_id: impl FnOnce() -> Option<[u8; 16]>,
    ) {
        let elapsed = started.started.elapsed().as_secs_f64();
        if let Some(db) = db {
            self.db.finish_request(&route, db);
        }
        let labels = HttpLabels {
            method: started.method,
            route,
            status_code: StatusLabel(Some(status)),
        };
        self.metrics.observe_traced(&labels, elapsed, trace_id);
        self.metrics.route_sketches.observe(&labels, elapsed);
    }
}

/// A request in progress; see [`RequestCore::begin`].
#[derive(Debug)]
pub struct Started {
    method: HttpMethod,
    started: Instant,
    _in_flight: InFlight,
}

/// Decrements the in-flight gauge when the request ends, however it ends.
#[derive(Debug)]
struct InFlight(Arc<HttpMetrics>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}
