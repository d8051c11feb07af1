//! `GET /api/performance/activity` and
//! `POST /api/performance/activity/{pid}/{action}` (admin): what runs in a
//! watched database right now — its client sessions with their ages, wait
//! events and normalized statements, flagged long-running,
//! idle-in-transaction, blocked or blocking, and the lock chains root
//! blocker first — and cancelling a query or terminating a session (see
//! [`crate::pg::readers::activity`]). Every signal request is logged and counted in
//! `perfscope_admin_actions_total{action, outcome}`.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::BearerToken;
use super::error::{ApiError, answer, answers_refusals};
use super::guard::{admin_database, unreadable};
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::actions::signal::Signal;
use crate::pg::readers::activity::{Backend, LockChain};
use crate::service::Source;

/// The activity of one database.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ActivityReport {
    /// The watched database.
    pub database: String,
    /// When it was read, seconds since the Unix epoch.
    pub read_at: f64,
    /// `PERFSCOPE_LONG_QUERY_THRESHOLD`, seconds.
    pub long_query_seconds: f64,
    /// `PERFSCOPE_IDLE_IN_TRANSACTION_THRESHOLD`, seconds.
    pub idle_in_transaction_seconds: f64,
    /// The longest-running active query, seconds.
    pub longest_query_seconds: f64,
    /// The oldest open transaction, seconds.
    pub longest_transaction_seconds: f64,
    /// The client sessions (the agent's own left out), oldest query first.
    pub sessions: Vec<Backend>,
    /// Each root blocker and the sessions waiting behind it.
    pub lock_chains: Vec<LockChain>,
}

/// What a signal did.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SignalResult {
    /// The backend.
    pub pid: i32,
    /// `cancel` or `terminate`.
    pub action: Signal,
    /// Whether Postgres delivered the signal (false: the process was
    /// already gone).
    pub signalled: bool,
    /// What happened, in words.
    pub message: String,
}

#[derive(ApiResponse)]
enum ActivityResponse {
    /// The sessions and lock chains.
    #[oai(status = 200)]
    Ok(Json<ActivityReport>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The database cannot be reached.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum SignalResponse {
    /// The signal was sent (or the process was already gone).
    #[oai(status = 200)]
    Ok(Json<SignalResult>),
    /// The agent's role may not signal that backend.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No watched database by that name, or the pid is not one of its
    /// client sessions.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The database cannot be reached.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

answers_refusals!(ActivityResponse {
    NotFound => NotFound,
    Unavailable => Unavailable,
});
answers_refusals!(SignalResponse {
    Forbidden => Forbidden,
    NotFound => NotFound,
    Unavailable => Unavailable,
});

/// The activity operations.
pub struct ActivityApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl ActivityApi {
    /// The database's client sessions now (state, wait event, query and
    /// transaction age, normalized statement, flags) and its lock chains,
    /// root blocker first. Admin token required.
    #[oai(
        path = "/api/performance/activity",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getActivity"
    )]
    async fn activity(
        &self,
        token: BearerToken,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<ActivityResponse, ApiError> {
        answer(self.activity_of(&token, database.0.as_deref()).await)
    }
    /// Cancels a session's running query (`cancel`, `pg_cancel_backend`)
    /// or ends the session (`terminate`, `pg_terminate_backend`). Only a
    /// client session of the watched database that the activity view
    /// lists: never the agent's own, another database's, or a background
    /// process. Logged and counted. Admin token required.
    #[oai(
        path = "/api/performance/activity/:pid/:action",
        method = "post",
        tag = "ApiTags::Performance",
        operation_id = "signalBackend"
    )]
    async fn signal(
        &self,
        token: BearerToken,
        /// The backend's pid (from the activity view).
        #[oai(validator(minimum(value = "1")))]
        pid: Path<i32>,
        /// `cancel` or `terminate`.
        action: Path<Signal>,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
        /// The session's `backendStart` from the activity view: when given,
        /// the signal goes only to that session, never to a later one that
        /// reused the pid.
        #[oai(name = "backendStart", validator(min_length = 1, max_length = 64))]
        backend_start: Query<Option<String>>,
    ) -> Result<SignalResponse, ApiError> {
        let (pid, action) = (pid.0, action.0);
        answer(
            async {
                let watched = admin_database(&self.perfscope, &token, database.0.as_deref())?;
                let signalled = crate::service::signal::send(
                    &self.perfscope,
                    &watched,
                    pid,
                    action,
                    backend_start.0.as_deref(),
                    Source::Api,
                )
                .await?;
                Ok(SignalResponse::Ok(Json(signal_result(
                    pid, action, signalled,
                ))))
            }
            .await,
        )
    }
}

/// What the signal did, in words.
fn signal_result(pid: i32, action: Signal, signalled: bool) -> SignalResult {
    SignalResult {
        pid,
        action,
        signalled,
        message: match (action, signalled) {
            (Signal::Cancel, true) => format!("pid {pid}: its running query was asked to cancel"),
            (Signal::Terminate, true) => format!("pid {pid}: its session was asked to end"),
            (_, false) => format!("pid {pid}: the signal was not delivered (the process is gone)"),
        },
    }
}

impl ActivityApi {
    async fn activity_of(
        &self,
        token: &BearerToken,
        database: Option<&str>,
    ) -> Result<ActivityResponse, super::error::Failure> {
        let watched = admin_database(&self.perfscope, token, database)?;
        let name = &*watched.name;
        let thresholds = watched.activity.thresholds();
        let timeout = self.perfscope.config().readers.timeout;
        let snapshot = crate::pg::readers::activity::read_now(&watched.pool, thresholds, timeout)
            .await
            .map_err(|error| unreadable(name, "activity", error))?;
        let summary = snapshot.summary();
        Ok(ActivityResponse::Ok(Json(ActivityReport {
            database: name.to_owned(),
            read_at: snapshot
                .at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
            long_query_seconds: thresholds.long_query.as_secs_f64(),
            idle_in_transaction_seconds: thresholds.idle_in_transaction.as_secs_f64(),
            longest_query_seconds: summary.longest_query,
            longest_transaction_seconds: summary.longest_transaction,
            lock_chains: snapshot.lock_chains(),
            sessions: snapshot.sessions,
        })))
    }
}
