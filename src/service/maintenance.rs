//! Starting safe maintenance (ANALYZE, VACUUM, REINDEX) on request, from
//! the API's `optimize` or the Advice page's ANALYZE button: one place
//! counts every request and result in
//! `perfscope_maintenance_total{task, outcome}` and writes the audit line.

use super::{ServiceError, Source};
use crate::Perfscope;
use crate::pg::actions::maintenance::MaintenanceOutcome;
use crate::pg::actions::maintenance::{Job, MaintenanceError, Task};

/// Starts `task` on `table` (the whole database when `None`) in the
/// background; the job's end is counted too.
pub async fn start(
    perfscope: &Perfscope,
    task: Task,
    table: Option<&str>,
    source: Source,
) -> Result<Job, ServiceError> {
    let Some(maintenance) = perfscope.maintenance() else {
        return Err(ServiceError::NoDatabase);
    };
    let counter = perfscope.clone();
    let started = maintenance
        .start(task, table, move |task, ok| {
            count(
                &counter,
                task,
                if ok {
                    MaintenanceOutcome::Succeeded
                } else {
                    MaintenanceOutcome::Failed
                },
            );
        })
        .await;
    let outcome = started
        .as_ref()
        .map_or_else(MaintenanceError::outcome, |_| MaintenanceOutcome::Started);
    count(perfscope, task, outcome);
    tracing::info!(
        task = task.as_str(),
        table = ?table,
        outcome = outcome.as_str(),
        source = source.as_str(),
        "maintenance requested"
    );
    started.map_err(ServiceError::Maintenance)
}

/// A job by id, while the runner remembers it.
pub async fn job(perfscope: &Perfscope, id: u64) -> Option<Job> {
    match perfscope.maintenance() {
        Some(maintenance) => maintenance.job(id).await,
        None => None,
    }
}

/// Counts a maintenance request or result.
fn count(perfscope: &Perfscope, task: Task, outcome: MaintenanceOutcome) {
    perfscope
        .pg_metrics()
        .maintenance
        .get_or_create(&crate::metrics::pg::MaintenanceLabels { task, outcome })
        .inc();
}
