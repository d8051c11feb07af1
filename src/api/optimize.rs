//! `POST /api/performance/optimize` and `GET /api/performance/optimize/{id}`
//! (admin): safe maintenance on the database (see [`crate::pg::actions::maintenance`]).
//! Every request is logged and counted in
//! `perfscope_maintenance_total{task, outcome}`.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::{BearerToken, admin_only};
use super::error::{ApiError, answer, answers_refusals, error_body};
use super::payload::StrictJson;
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::actions::maintenance::{Job, Task};
use crate::service::Source;

/// A maintenance request.
#[derive(Object, Debug, serde::Deserialize)]
#[oai(deny_unknown_fields)]
#[serde(deny_unknown_fields)]
pub struct OptimizeRequest {
    /// `analyze`, `vacuum` or `reindex`.
    pub task: Task,
    /// `table` or `schema.table` (letters, digits, underscores), the
    /// exact, case-sensitive catalog names (`public.Orders` is the table
    /// created as `"Orders"`); omitted: the whole database (not for
    /// `reindex`).
    #[oai(validator(min_length = 1, max_length = 127))]
    pub table: Option<String>,
}

#[derive(ApiResponse)]
enum OptimizeResponse {
    /// Started in the background; poll `GET /api/performance/optimize/{id}`.
    #[oai(status = 202)]
    Accepted(Json<Job>),
    /// The agent's role may not maintain that table.
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// No such table.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Another task is running.
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// No database configured, or it is unreachable.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

#[derive(ApiResponse)]
enum JobResponse {
    /// The job.
    #[oai(status = 200)]
    Ok(Json<Job>),
    /// No such job.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

answers_refusals!(OptimizeResponse {
    Forbidden => Forbidden,
    NotFound => NotFound,
    Conflict => Conflict,
    Unavailable => Unavailable,
});

/// The maintenance operations.
pub struct OptimizeApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl OptimizeApi {
    /// Runs ANALYZE, VACUUM (ANALYZE) or REINDEX TABLE CONCURRENTLY in the
    /// background, one task at a time, under lock and statement timeouts.
    /// Admin token required.
    #[oai(
        path = "/api/performance/optimize",
        method = "post",
        tag = "ApiTags::Performance",
        operation_id = "optimize"
    )]
    async fn optimize(
        &self,
        token: BearerToken,
        request: StrictJson<OptimizeRequest>,
    ) -> Result<OptimizeResponse, ApiError> {
        answer(
            async {
                admin_only(&self.perfscope, &token)?;
                let job = crate::service::maintenance::start(
                    &self.perfscope,
                    request.task,
                    request.table.as_deref(),
                    Source::Api,
                )
                .await?;
                Ok(OptimizeResponse::Accepted(Json(job)))
            }
            .await,
        )
    }

    /// A maintenance job's state, duration and, for VACUUM, progress.
    /// Admin token required.
    #[oai(
        path = "/api/performance/optimize/:id",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getOptimizeJob"
    )]
    async fn job(&self, token: BearerToken, id: Path<u64>) -> Result<JobResponse, ApiError> {
        admin_only(&self.perfscope, &token)?;
        let job = crate::service::maintenance::job(&self.perfscope, id.0).await;
        Ok(match job {
            Some(job) => JobResponse::Ok(Json(job)),
            None => JobResponse::NotFound(error_body(
                "not_found",
                format!("no maintenance job {}", id.0),
            )),
        })
    }
}
