//! The regression check's task: every [`REGRESSION_INTERVAL`] it asks the
//! history store what regressed ([`crate::findings::regressions`]), names
//! each statement's route from the slow log when it knows it, hands the
//! list to the alert rules and writes the findings that opened or closed
//! into the store: the regressions and every threshold finding (runtime,
//! caches, each watched database's health, in their public form), so the
//! store's findings say what was wrong when, at a 5-minute grain.
//!
//! Beside the recorder because it reads what the recorder wrote; it keeps
//! no state of its own (the open findings are read back from the store),
//! so a restart neither reopens nor forgets a regression.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::Perfscope;
use crate::findings::recorded::{self, Recorded};
use crate::findings::regressions::{self, Regression};
use crate::store::{Store, StoreError, Write, read};

/// How often the check runs (its window is an hour, so more often would
/// tell nothing new).
pub const REGRESSION_INTERVAL: Duration = Duration::from_secs(300);

impl Perfscope {
    /// Runs the regression check every [`REGRESSION_INTERVAL`] until
    /// `cancel`.
    pub(super) fn spawn_regression_check(
        &self,
        cancel: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let perfscope = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(REGRESSION_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick is at once: let the store open first.
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                if let Err(error) = perfscope.check_regressions().await {
                    tracing::debug!(%error, "regression check skipped");
                }
            }
        })
    }

    /// Runs the regression check once now: what regressed over the last
    /// hour against the 7 days before it, told to the alert rules and
    /// written to the store's findings. The agent does this every five
    /// minutes; tests call it.
    #[doc(hidden)]
    pub async fn check_regressions(&self) -> Result<Vec<Regression>, StoreError> {
        let store = self
            .store()
            .cloned()
            .ok_or_else(|| StoreError::Unavailable("no data directory".into()))?;
        let now = store.now();
        let (mut found, open) = store
            .read(move |conn| {
                Ok((
                    regressions::check(conn, now)?,
                    read::open_findings(conn, "", read::MAX_ROWS)?,
                ))
            })
            .await?;
        self.name_routes(&mut found);
        self.inner
            .alerts
            .evaluate_regressions(&found, Instant::now());
        let mut current: Vec<Recorded> = found.iter().map(Regression::recorded).collect();
        current.extend(self.threshold_findings().iter().map(Recorded::of));
        record_findings(&store, &open, &current, now);
        Ok(found)
    }

    /// Every threshold finding now, in its public form (no object names).
    fn threshold_findings(&self) -> Vec<crate::findings::Recommendation> {
        let runtime = &self.inner.config.runtime;
        let mut findings = crate::findings::runtime_advice(
            &self.runtime().snapshot(),
            &crate::runtime::process::ProcessSnapshot::read(),
            runtime.event_loop_lag_threshold,
            runtime.high_memory_threshold,
        );
        findings.extend(crate::findings::cache_advice(self.caches(), false));
        let (cache, health) = crate::findings::database_advice(self.watched(), false);
        findings.extend(cache);
        findings.extend(health);
        findings
    }

    /// Each statement's route, from the slow log's groups of the same
    /// fingerprint (the busiest route first).
    fn name_routes(&self, found: &mut [Regression]) {
        let mut routes: HashMap<u64, String> = HashMap::new();
        for group in self.inner.db.slow_log.summary() {
            if let Some(route) = group.route {
                routes
                    .entry(group.statement.fingerprint)
                    .or_insert_with(|| route.to_string());
            }
        }
        if routes.is_empty() {
            return;
        }
        for regression in found.iter_mut().filter(|r| r.queryid.is_some()) {
            if let Some(text) = regression.statement.as_deref() {
                let fingerprint = crate::db::statement::parse(text).fingerprint;
                regression.route = routes.get(&fingerprint).cloned();
            }
        }
    }
}

fn record_findings(
    store: &Store,
    open: &[crate::store::FindingRow],
    current: &[Recorded],
    now: i64,
) {
    for change in recorded::changes(open, current, now) {
        store.record(Write::Finding(change));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};
    use std::time::SystemTime;

    use super::*;
    use crate::db::slow_log::SlowQuery;
    use crate::findings::regressions::Measure;

    #[test]
    fn a_statement_is_named_by_the_route_the_slow_log_saw_run_it() {
        let perfscope = Perfscope::new(crate::Config::default());
        let route = OnceLock::new();
        let _ = route.set(Arc::from("GET /orders/:id"));
        perfscope.db().slow_log.push(Arc::new(SlowQuery {
            statement: Arc::new(crate::db::statement::parse(
                "SELECT * FROM orders WHERE customer = 7",
            )),
            operation: "select".into(),
            duration: Duration::from_secs(1),
            at: SystemTime::now(),
            failed: false,
            route,
        }));
        let regression = |text: &str| Regression {
            measure: Measure::MeanTime,
            database: Some(Arc::from("shop")),
            queryid: Some(1),
            statement: Some(Arc::from(text)),
            route: None,
            before: 1.0,
            after: 3.0,
            before_count: 100,
            after_count: 100,
        };
        // pg_stat_statements' text of the same statement, and another one.
        let mut found = vec![
            regression("select * from orders where customer = $1"),
            regression("select * from invoices where customer = $1"),
        ];
        perfscope.name_routes(&mut found);
        assert_eq!(found[0].route.as_deref(), Some("GET /orders/:id"));
        assert_eq!(found[1].route, None);
    }
}
