//! Starting safe maintenance (ANALYZE, VACUUM, REINDEX) on request, from
//! the API's `optimize` or the Advice page's ANALYZE button: one place
//! counts every request and result in
//! `perfscope_maintenance_total{task, outcome}`, writes the audit line and
//! records each finished run as a `maintenance` event of the history store
//! (a marker on the charts, listed by `GET /api/performance/events`).

use super::{ServiceError, Source};
use crate::Perfscope;
use crate::pg::actions::maintenance::MaintenanceOutcome;
use crate::pg::actions::maintenance::{Job, JobState, MaintenanceError, Task};

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
        .start(task, table, move |job| {
            count(
                &counter,
                job.task,
                if job.state == JobState::Succeeded {
                    MaintenanceOutcome::Succeeded
                } else {
                    MaintenanceOutcome::Failed
                },
            );
            #[cfg(feature = "store")]
            if let Some(store) = counter.store() {
                store.record(crate::store::Write::Event(run_event(job, store.now())));
            }
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

/// A finished run as a history event: the task and the table (the
/// catalog's names, checked as plain identifiers before the run) as its
/// label, the outcome and duration as its detail. The job's error text is
/// left out: Postgres' messages can carry values (a REINDEX's duplicate
/// key), and it stays with the job, behind the admin token.
#[cfg(feature = "store")]
fn run_event(job: &Job, at: i64) -> crate::store::Event {
    let outcome = match job.state {
        JobState::Succeeded => MaintenanceOutcome::Succeeded,
        JobState::Running | JobState::Failed => MaintenanceOutcome::Failed,
    };
    let label = match &job.table {
        Some(table) => format!("{} {table}", job.task.as_str()),
        None => format!("{} (whole database)", job.task.as_str()),
    };
    let detail = serde_json::json!({
        "job": job.id,
        "task": job.task.as_str(),
        "table": job.table,
        "outcome": outcome.as_str(),
        "durationMs": (job.duration_ms * 1_000.0).round() / 1_000.0,
    });
    crate::store::Event {
        at,
        kind: crate::store::EventKind::Maintenance,
        database: Some(crate::pg::actions::maintenance::DATABASE.to_owned()),
        label,
        detail: Some(detail.to_string()),
    }
}

#[cfg(all(test, feature = "store"))]
mod tests {
    use super::*;

    fn job(table: Option<&str>, state: JobState, error: Option<&str>) -> Job {
        Job {
            id: 7,
            task: Task::Vacuum,
            table: table.map(str::to_owned),
            state,
            started_at: 1_700_000_000.0,
            duration_ms: 12.345_678,
            error: error.map(str::to_owned),
            phase: None,
            progress: None,
        }
    }

    #[test]
    fn a_run_is_labelled_by_task_and_table_with_its_outcome_and_duration() {
        let event = run_event(
            &job(Some("public.accounts"), JobState::Succeeded, None),
            1_700_000_001,
        );
        assert_eq!(event.kind, crate::store::EventKind::Maintenance);
        assert_eq!(event.at, 1_700_000_001);
        assert_eq!(event.database.as_deref(), Some("default"));
        assert_eq!(event.label, "vacuum public.accounts");
        let detail: serde_json::Value =
            serde_json::from_str(event.detail.as_deref().expect("detail")).expect("json");
        assert_eq!(detail["outcome"], "succeeded");
        assert_eq!(detail["task"], "vacuum");
        assert_eq!(detail["table"], "public.accounts");
        assert_eq!(detail["durationMs"], 12.346);
        assert_eq!(detail["job"], 7);
    }

    #[test]
    fn a_failed_run_keeps_its_error_text_out_of_the_event() {
        let error = "could not create unique index \"users_email\": Key (email)=(ann@example.com) is duplicated";
        let event = run_event(&job(None, JobState::Failed, Some(error)), 1);
        assert_eq!(event.label, "vacuum (whole database)");
        let detail = event.detail.expect("detail");
        assert!(detail.contains("\"outcome\":\"failed\""), "{detail}");
        assert!(!detail.contains("ann@example.com"), "{detail}");
        assert!(!event.label.contains("ann@example.com"));
    }
}
