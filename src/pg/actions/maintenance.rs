//! Safe maintenance: ANALYZE, VACUUM and REINDEX CONCURRENTLY on request.
//!
//! The task is an allow-list; the table name must look like
//! `[schema.]identifier`, is resolved through the catalog by its exact
//! names (as parameters, with no case folding: the advisor names a table
//! `public.Orders` as the catalog spells it, and that must never ANALYZE
//! a lowercase `orders` beside it) and is then written back from the
//! catalog's own names, quoted as identifiers — never interpolated from
//! the request (this class
//! of bug gave pgAdmin a CVSS 8.8 CVE). Every task runs on its own
//! connection with `lock_timeout` and `statement_timeout`, one at a time,
//! in the background; its state is kept in a bounded list.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::db::budget::{BudgetPermit, ConnectionBudget, server_key};
use crate::db::connect::ConnectOptions;

use crate::pg::advisor::quote_ident;
use crate::pg::describe;

const TABLE: &str = include_str!("../../../sql/queries/maintenance_table.sql");
const VACUUM_PROGRESS: &str = include_str!("../../../sql/queries/vacuum_progress.sql");

/// How long a task waits for a lock before giving up.
pub const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a task may run by default.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Finished tasks remembered.
pub const JOBS_KEPT: usize = 50;
/// The watched database maintenance runs on: `DATABASE_URL`'s, which the
/// agent and a host app's integration both watch under this name.
pub const DATABASE: &str = "default";

/// A maintenance task.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, poem_openapi::Enum, serde::Deserialize)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// `ANALYZE`: refresh the planner's statistics.
    Analyze,
    /// `VACUUM (ANALYZE)`: reclaim dead tuples and refresh statistics.
    Vacuum,
    /// `REINDEX TABLE CONCURRENTLY`: rebuild a table's indexes without
    /// blocking writes (a table is required).
    Reindex,
}

impl Task {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Analyze => "analyze",
            Self::Vacuum => "vacuum",
            Self::Reindex => "reindex",
        }
    }
}

/// A job's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum JobState {
    Running,
    Succeeded,
    Failed,
}

/// A maintenance job as the API shows it.
#[derive(Clone, Debug, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct Job {
    /// Its id.
    pub id: u64,
    /// The task.
    pub task: Task,
    /// `schema.table`, or none for the whole database.
    #[oai(skip_serializing_if_is_none)]
    pub table: Option<String>,
    /// Its state.
    pub state: JobState,
    /// When it started, seconds since the Unix epoch.
    pub started_at: f64,
    /// How long it ran (so far), ms.
    pub duration_ms: f64,
    /// Why it failed.
    #[oai(skip_serializing_if_is_none)]
    pub error: Option<String>,
    /// VACUUM's phase, while it runs.
    #[oai(skip_serializing_if_is_none)]
    pub phase: Option<String>,
    /// VACUUM's share of heap blocks scanned, while it runs (0..1).
    #[oai(skip_serializing_if_is_none)]
    pub progress: Option<f64>,
}

#[derive(Debug)]
struct JobRecord {
    job: Job,
    started: Instant,
    pid: Option<i32>,
}

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// The request itself is wrong (names the field).
    #[error("{0}")]
    BadRequest(String),
    /// The table does not exist.
    #[error("field `table`: no table {0:?} in the database")]
    NotFound(String),
    /// The agent's role may not maintain it.
    #[error("{0}")]
    Forbidden(String),
    /// Another task is running.
    #[error("maintenance task {0} is still running; one task runs at a time")]
    Busy(u64),
    /// The database cannot be reached.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

/// What a maintenance request came to: refused up front, started, then
/// succeeded or failed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum MaintenanceOutcome {
    /// Accepted; the job runs.
    Started,
    /// The job finished.
    Succeeded,
    /// The job failed.
    Failed,
    /// An unknown task or a bad table name.
    BadRequest,
    /// No such table.
    NotFound,
    /// The agent's role may not maintain the table.
    Forbidden,
    /// Another task is running.
    Busy,
    /// The database could not be reached.
    Unavailable,
}

impl MaintenanceOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::BadRequest => "bad_request",
            Self::NotFound => "not_found",
            Self::Forbidden => "forbidden",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
        }
    }
}

impl MaintenanceError {
    /// The `outcome` label of `perfscope_maintenance_total` for this refusal.
    pub fn outcome(&self) -> MaintenanceOutcome {
        match self {
            Self::BadRequest(_) => MaintenanceOutcome::BadRequest,
            Self::NotFound(_) => MaintenanceOutcome::NotFound,
            Self::Forbidden(_) => MaintenanceOutcome::Forbidden,
            Self::Busy(_) => MaintenanceOutcome::Busy,
            Self::Unavailable(_) => MaintenanceOutcome::Unavailable,
        }
    }
}

/// Runs maintenance on one database.
#[derive(Debug)]
pub struct Maintenance {
    url: crate::config::DatabaseUrl,
    statement_timeout: Duration,
    jobs: Mutex<VecDeque<JobRecord>>,
    next_id: AtomicU64,
    /// The agent's connection budget, when it runs inside the agent.
    budget: Option<Arc<ConnectionBudget>>,
}

/// A maintenance connection and the budget permit it holds while open.
struct BudgetedClient {
    client: tokio_postgres::Client,
    _permit: Option<BudgetPermit>,
}

impl std::ops::Deref for BudgetedClient {
    type Target = tokio_postgres::Client;

    fn deref(&self) -> &tokio_postgres::Client {
        &self.client
    }
}

/// Checks a table name is `identifier` or `schema.identifier`.
pub fn valid_table_name(name: &str) -> bool {
    let ident = |part: &str| {
        let mut chars = part.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && part.len() <= 63
    };
    let parts: Vec<&str> = name.split('.').collect();
    matches!(parts.len(), 1 | 2) && parts.iter().all(|p| ident(p))
}

impl Maintenance {
    /// Maintenance on the database at `url`.
    pub fn new(url: crate::config::DatabaseUrl, statement_timeout: Duration) -> Self {
        Self {
            url,
            statement_timeout,
            jobs: Mutex::default(),
            next_id: AtomicU64::new(1),
            budget: None,
        }
    }

    /// Opens its connections within `budget` (a task holds one for as
    /// long as it runs).
    pub fn with_budget(mut self, budget: Arc<ConnectionBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    async fn connect(&self) -> Result<BudgetedClient, MaintenanceError> {
        let options =
            ConnectOptions::parse(self.url.expose()).map_err(MaintenanceError::Unavailable)?;
        let connector = options.connector().map_err(MaintenanceError::Unavailable)?;
        let mut config = options.config;
        config.application_name("perfscope-maintenance");
        config.connect_timeout(Duration::from_secs(5));
        let server = server_key(&config);
        let permit = match &self.budget {
            Some(budget) => Some(
                budget
                    .acquire(&server, "maintenance")
                    .await
                    .map_err(|e| MaintenanceError::Unavailable(e.to_string()))?,
            ),
            None => None,
        };
        match connector.connect(&config).await {
            Ok(client) => Ok(BudgetedClient {
                client,
                _permit: permit,
            }),
            Err(error) => {
                if let Some(budget) = &self.budget
                    && error.code() == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS)
                {
                    budget.refused(&server, "maintenance");
                }
                Err(MaintenanceError::Unavailable(describe(&error)))
            }
        }
    }

    /// Starts `task` on `table` in the background and returns its job;
    /// `on_done` is handed the job as it finished (its state, duration and
    /// error).
    pub async fn start(
        self: &Arc<Self>,
        task: Task,
        table: Option<&str>,
        on_done: impl FnOnce(&Job) + Send + 'static,
    ) -> Result<Job, MaintenanceError> {
        // Bad input is refused before "busy": the caller should learn what
        // is wrong with the request whatever else is running.
        let client = self.connect().await?;
        let target = match table {
            None => None,
            Some(name) => {
                if !valid_table_name(name) {
                    return Err(MaintenanceError::BadRequest(
                        "field `table`: expected `table` or `schema.table` made of letters, digits and underscores".into(),
                    ));
                }
                // Exact names, as the catalog (and the advisor) spell
                // them: `Orders` is the table "Orders", never `orders`.
                let (schema, relation) = match name.split_once('.') {
                    Some((schema, relation)) => (Some(schema), relation),
                    None => (None, name),
                };
                let row = client
                    .query_opt(TABLE, &[&schema, &relation])
                    .await
                    .map_err(|e| MaintenanceError::Unavailable(describe(&e)))?
                    .ok_or_else(|| MaintenanceError::NotFound(name.to_owned()))?;
                let (schema, relation, may): (String, String, bool) = (
                    row.try_get(0)
                        .map_err(|e| MaintenanceError::Unavailable(describe(&e)))?,
                    row.try_get(1)
                        .map_err(|e| MaintenanceError::Unavailable(describe(&e)))?,
                    row.try_get(2)
                        .map_err(|e| MaintenanceError::Unavailable(describe(&e)))?,
                );
                if !may {
                    return Err(MaintenanceError::Forbidden(format!(
                        "the agent's role may not maintain {schema}.{relation}: make it a member of the table's owner (or GRANT pg_maintain on PostgreSQL 17+)"
                    )));
                }
                Some((schema, relation))
            }
        };
        let quoted = target
            .as_ref()
            .map(|(schema, table)| format!("{}.{}", quote_ident(schema), quote_ident(table)));
        let sql = match (task, &quoted) {
            (Task::Analyze, Some(t)) => format!("ANALYZE {t}"),
            (Task::Analyze, None) => "ANALYZE".to_owned(),
            (Task::Vacuum, Some(t)) => format!("VACUUM (ANALYZE) {t}"),
            (Task::Vacuum, None) => "VACUUM (ANALYZE)".to_owned(),
            (Task::Reindex, Some(t)) => format!("REINDEX TABLE CONCURRENTLY {t}"),
            (Task::Reindex, None) => {
                return Err(MaintenanceError::BadRequest(
                    "field `table`: reindex needs a table".into(),
                ));
            }
        };
        if let Some(running) = self.running() {
            return Err(MaintenanceError::Busy(running));
        }
        let pid: Option<i32> = client
            .query_one("SELECT /* perfscope */ pg_backend_pid()", &[])
            .await
            .ok()
            .and_then(|row| row.try_get(0).ok());
        let id = {
            let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(running) = jobs.iter().find(|j| j.job.state == JobState::Running) {
                return Err(MaintenanceError::Busy(running.job.id));
            }
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if jobs.len() == JOBS_KEPT {
                jobs.pop_front();
            }
            jobs.push_back(JobRecord {
                job: Job {
                    id,
                    task,
                    table: target.as_ref().map(|(s, t)| format!("{s}.{t}")),
                    state: JobState::Running,
                    started_at: SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                    duration_ms: 0.0,
                    error: None,
                    phase: None,
                    progress: None,
                },
                started: Instant::now(),
                pid,
            });
            id
        };
        tracing::info!(job = id, task = task.as_str(), table = ?target, "maintenance started");
        let this = self.clone();
        let timeouts = format!(
            "SET lock_timeout = {}; SET statement_timeout = {}",
            LOCK_TIMEOUT.as_millis(),
            self.statement_timeout.as_millis()
        );
        tokio::spawn(async move {
            let result = async {
                client.batch_execute(&timeouts).await?;
                client.batch_execute(&sql).await
            }
            .await;
            let ok = result.is_ok();
            let finished = this.finish(id, result.err().map(|e| describe(&e)));
            tracing::info!(job = id, task = task.as_str(), ok, "maintenance finished");
            if let Some(job) = finished {
                on_done(&job);
            }
        });
        self.job(id)
            .await
            .ok_or(MaintenanceError::Unavailable("job vanished".into()))
    }

    fn running(&self) -> Option<u64> {
        self.jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|j| j.job.state == JobState::Running)
            .map(|j| j.job.id)
    }

    /// Marks job `id` finished and answers it as it now stands.
    fn finish(&self, id: u64, error: Option<String>) -> Option<Job> {
        let mut jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
        let record = jobs.iter_mut().find(|j| j.job.id == id)?;
        record.job.duration_ms = record.started.elapsed().as_secs_f64() * 1_000.0;
        record.job.state = if error.is_some() {
            JobState::Failed
        } else {
            JobState::Succeeded
        };
        record.job.error = error;
        Some(record.job.clone())
    }

    /// A job by id, with VACUUM's progress while it runs.
    pub async fn job(&self, id: u64) -> Option<Job> {
        let (mut job, pid, started) = {
            let jobs = self.jobs.lock().unwrap_or_else(PoisonError::into_inner);
            let record = jobs.iter().find(|j| j.job.id == id)?;
            (record.job.clone(), record.pid, record.started)
        };
        if job.state == JobState::Running {
            job.duration_ms = started.elapsed().as_secs_f64() * 1_000.0;
            if let (Task::Vacuum, Some(pid)) = (job.task, pid)
                && let Ok(client) = self.connect().await
                && let Ok(Some(row)) = client.query_opt(VACUUM_PROGRESS, &[&pid]).await
            {
                job.phase = row.try_get(0).ok();
                let total: i64 = row.try_get(1).unwrap_or(0);
                let scanned: i64 = row.try_get(2).unwrap_or(0);
                job.progress = (total > 0).then(|| scanned as f64 / total as f64);
            }
        }
        Some(job)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_table_name;

    #[test]
    fn only_plain_names_pass() {
        for ok in ["orders", "public.orders", "_t1", "s.t$2"] {
            assert!(valid_table_name(ok), "{ok}");
        }
        for bad in [
            "",
            "orders; DROP TABLE orders",
            "a.b.c",
            "\"Orders\"",
            "1orders",
            "orders--",
            "o rders",
            "orders)",
        ] {
            assert!(!valid_table_name(bad), "{bad}");
        }
    }
}
