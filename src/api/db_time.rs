//! `GET /api/performance/db-time` (admin, since its rows carry statement
//! texts, routes, roles, applications and trace ids): where a watched
//! database's time went over a range, from the active session history —
//! average active sessions (AAS) over time by wait class, and the top
//! waits, statements, routes, applications or roles by sampled database
//! time, each with its wait profile, the trace ids its statements carried
//! and, while waiting on locks, the statements that held them (see
//! [`crate::service::db_time`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{BearerToken, admin_only};
use super::error::{ApiError, Failure, answer, answers_refusals};
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::ash::{By, DbTime};
use crate::service::db_time::{self as service, DbTimeError, DbTimeQuery};

#[derive(ApiResponse)]
enum DbTimeResponse {
    /// Where the time went (empty when the range holds no sample).
    #[oai(status = 200)]
    Ok(Json<Box<DbTime>>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// No database is configured.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

answers_refusals!(DbTimeResponse {
    NotFound => NotFound,
    Unavailable => Unavailable,
});

/// The database-time operation.
pub struct DbTimeApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl DbTimeApi {
    /// Where database time went: the average active sessions (AAS) over
    /// the range by wait class (CPU, IO, Lock, LWLock, Client, IPC, …),
    /// and the top rows by sampled database time grouped `by` wait event,
    /// statement (normalized text, fingerprint, `query_id`), route (from
    /// the statements' sqlcommenter tags), application or role, each with
    /// its wait profile, up to 5 trace ids and its blockers. Sampled from
    /// `pg_stat_activity` (active session history); an empty range answers
    /// an empty result. Admin token required.
    #[oai(
        path = "/api/performance/db-time",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getDbTime"
    )]
    async fn db_time(
        &self,
        token: BearerToken,
        /// The watched database (default: every watched database).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
        /// The range's start, Unix seconds (default: `until` − 15 minutes;
        /// at most 31 days before `until`; before 2100).
        #[oai(validator(minimum(value = "0"), maximum(value = "4102444800")))]
        since: Query<Option<i64>>,
        /// The range's end, Unix seconds (default: now; before 2100).
        #[oai(validator(minimum(value = "0"), maximum(value = "4102444800")))]
        until: Query<Option<i64>>,
        /// What the top rows are grouped by (default: `wait`).
        by: Query<Option<By>>,
        /// Top rows, 1–100 (default 20); the rest are summed as `other`.
        #[oai(validator(minimum(value = "1"), maximum(value = "100")))]
        top: Query<Option<u32>>,
    ) -> Result<DbTimeResponse, ApiError> {
        let query = DbTimeQuery {
            database: database.0,
            since: since.0,
            until: until.0,
            by: by.0.unwrap_or_default(),
            top: top.0,
        };
        answer(self.answer(&token, &query).await)
    }
}

impl DbTimeApi {
    async fn answer(
        &self,
        token: &BearerToken,
        query: &DbTimeQuery,
    ) -> Result<DbTimeResponse, Failure> {
        admin_only(&self.perfscope, token)?;
        match service::db_time(&self.perfscope, query, service::unix_now()).await {
            Ok(answer) => Ok(DbTimeResponse::Ok(Json(Box::new(answer)))),
            Err(error @ DbTimeError::Invalid { .. }) => {
                Err(ApiError::bad_request(error.to_string()).into())
            }
            Err(DbTimeError::Refused(error)) => Err(error.into()),
        }
    }
}
