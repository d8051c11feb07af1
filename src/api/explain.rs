//! `GET /api/performance/explain` (the generic plan) and `POST
//! /api/performance/explain` (with `analyze`: `EXPLAIN (ANALYZE, BUFFERS)`
//! of a SELECT with the caller's parameter values, in a read-only
//! transaction that is rolled back), admin: the plan of a statement of the
//! slow-query list by its queryid, as JSON and text (see
//! [`crate::pg::actions::explain`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::{Access, BearerToken, authorize};
use super::error::{ApiError, error_body};
use super::payload::StrictJson;
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::actions::explain::{DEFAULT_ANALYZE_TIMEOUT, ExplainError};

/// What to explain.
#[derive(Object, Debug, serde::Deserialize)]
#[oai(rename_all = "camelCase", deny_unknown_fields)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExplainRequest {
    /// pg_stat_statements' queryid (as in the slow-query list): an integer.
    #[oai(validator(pattern = r"^-?[0-9]{1,19}$"))]
    pub queryid: String,
    /// The watched database (default: `default`).
    #[oai(validator(min_length = 1, max_length = 63))]
    pub database: Option<String>,
    /// Run it (`EXPLAIN (ANALYZE, BUFFERS)`, SELECT only) instead of
    /// planning it.
    #[oai(default)]
    #[serde(default)]
    pub analyze: bool,
    /// The values of `$1`, `$2`, … as text (`null` for NULL), for
    /// `analyze`; Postgres converts them to the parameters' types.
    #[oai(validator(max_items = 100))]
    pub params: Option<Vec<Option<String>>>,
    /// `statement_timeout` of the run, ms (default 10,000).
    #[oai(validator(minimum(value = "100"), maximum(value = "60000")))]
    pub timeout_ms: Option<u64>,
}

/// A plan.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ExplainReport {
    /// The watched database.
    pub database: String,
    /// The queryid.
    pub queryid: String,
    /// The statement, normalized (no literal values).
    pub statement: String,
    /// Whether it was run (`EXPLAIN ANALYZE`) or only planned (the generic
    /// plan).
    pub analyzed: bool,
    /// Postgres' `FORMAT JSON` plan.
    pub plan: serde_json::Value,
    /// The same plan as indented text.
    pub text: String,
}

#[derive(ApiResponse)]
enum ExplainResponse {
    /// The plan.
    #[oai(status = 200)]
    Ok(Json<ExplainReport>),
    /// No watched database or statement by that name or id.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// Postgres refused to plan or run it (privileges, timeout, …), or
    /// perfscope does not plan it (no planner role, a role not listed in
    /// `PERFSCOPE_PLAN_ROLES`, code owned outside the trusted set).
    #[oai(status = 422)]
    Failed(Json<ErrorBody>),
    /// The database cannot be reached.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// The explain operations.
pub struct ExplainApi {
    pub(super) perfscope: Perfscope,
}

impl ExplainApi {
    async fn explain(
        &self,
        database: Option<&str>,
        queryid: &str,
        analyze: Option<&[Option<String>]>,
        timeout_ms: Option<u64>,
    ) -> Result<ExplainResponse, ApiError> {
        let name = database.unwrap_or("default");
        // The schema's pattern admits digits only; one past i64 names no
        // statement.
        let Ok(id) = queryid.trim().parse::<i64>() else {
            return Ok(ExplainResponse::NotFound(error_body(
                "not_found",
                format!("field `queryid`: no statement {queryid}"),
            )));
        };
        let Some(watched) = self.perfscope.watched().get(name) else {
            return Ok(ExplainResponse::NotFound(error_body(
                "not_found",
                format!("field `database`: no watched database {name:?}"),
            )));
        };
        let (raw, text) = match crate::pg::actions::explain::statement(&watched.statements, id) {
            Ok(found) => found,
            Err(error) => {
                return Ok(ExplainResponse::NotFound(error_body(
                    "not_found",
                    error.to_string(),
                )));
            }
        };
        let timeout = if analyze.is_some() {
            timeout_ms.map_or(DEFAULT_ANALYZE_TIMEOUT, std::time::Duration::from_millis)
        } else {
            self.perfscope.config().readers.timeout
        };
        match crate::pg::actions::explain::explain(&watched, id, &raw, analyze, timeout).await {
            Ok(plan) => {
                tracing::info!(
                    database = name,
                    queryid = id,
                    analyzed = analyze.is_some(),
                    "explained"
                );
                Ok(ExplainResponse::Ok(Json(ExplainReport {
                    database: name.to_owned(),
                    queryid: id.to_string(),
                    statement: text.to_string(),
                    analyzed: analyze.is_some(),
                    plan: plan.json,
                    text: plan.text,
                })))
            }
            Err(error @ (ExplainError::NotSelect(_) | ExplainError::Params(_))) => {
                Err(ApiError::bad_request(error.to_string()))
            }
            Err(error @ ExplainError::NotFound(_)) => Ok(ExplainResponse::NotFound(error_body(
                "not_found",
                error.to_string(),
            ))),
            Err(error @ ExplainError::Refused(_)) => {
                tracing::info!(database = name, queryid = id, %error, "explain refused");
                Ok(ExplainResponse::Failed(error_body(
                    "explain_refused",
                    error.to_string(),
                )))
            }
            Err(error @ ExplainError::Failed(_)) => {
                tracing::info!(database = name, queryid = id, %error, "explain refused");
                Ok(ExplainResponse::Failed(error_body(
                    "explain_failed",
                    error.to_string(),
                )))
            }
            Err(ExplainError::Unavailable(detail)) => {
                tracing::warn!(database = name, queryid = id, %detail, "explain failed");
                Ok(ExplainResponse::Unavailable(error_body(
                    "unavailable",
                    format!("database {name:?} cannot be reached"),
                )))
            }
        }
    }
}

#[OpenApi]
impl ExplainApi {
    /// The generic plan of a statement of the slow-query list (by
    /// queryid): nothing is executed. Admin token required.
    #[oai(
        path = "/api/performance/explain",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getExplain"
    )]
    async fn generic_plan(
        &self,
        token: BearerToken,
        /// pg_stat_statements' queryid (as in the slow-query list): an
        /// integer.
        #[oai(validator(pattern = r"^-?[0-9]{1,19}$"))]
        queryid: Query<String>,
        /// The watched database (default: `default`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<ExplainResponse, ApiError> {
        let config = self.perfscope.config();
        authorize(
            &token,
            Access::Admin,
            config.server.admin_token.as_ref(),
            None,
        )?;
        self.explain(database.0.as_deref(), &queryid.0, None, None)
            .await
    }

    /// The generic plan (`analyze` false) or, for a SELECT only,
    /// `EXPLAIN (ANALYZE, BUFFERS)` with `params` as the values of `$1`…,
    /// in a read-only transaction that is rolled back, under
    /// `statement_timeout` (`timeoutMs`, default 10 s). Admin token
    /// required.
    #[oai(
        path = "/api/performance/explain",
        method = "post",
        tag = "ApiTags::Performance",
        operation_id = "explain"
    )]
    async fn explain_request(
        &self,
        token: BearerToken,
        request: StrictJson<ExplainRequest>,
    ) -> Result<ExplainResponse, ApiError> {
        let config = self.perfscope.config();
        authorize(
            &token,
            Access::Admin,
            config.server.admin_token.as_ref(),
            None,
        )?;
        let params = request.params.clone().unwrap_or_default();
        let analyze = request.analyze.then_some(params.as_slice());
        self.explain(
            request.database.as_deref(),
            &request.queryid,
            analyze,
            request.timeout_ms,
        )
        .await
    }
}
