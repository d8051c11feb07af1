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
use super::auth::{BearerToken, admin_only};
use super::error::{
    ApiError, Failure, NamedBy, Refusal, RefusalStatus, answer, answers_refusals, error_body,
};
use super::payload::StrictJson;
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::service::{Source, explain};

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

answers_refusals!(ExplainResponse {
    NotFound => NotFound,
    Failed => Failed,
    Unavailable => Unavailable,
});

/// The explain operations.
pub struct ExplainApi {
    pub(super) perfscope: Perfscope,
}

impl ExplainApi {
    async fn explain(
        &self,
        token: &BearerToken,
        database: Option<&str>,
        queryid: &str,
        analyze: Option<&[Option<String>]>,
        timeout_ms: Option<u64>,
    ) -> Result<ExplainResponse, Failure> {
        admin_only(&self.perfscope, token)?;
        // The schema's pattern admits digits only; one past i64 names no
        // statement.
        let Ok(id) = queryid.trim().parse::<i64>() else {
            return Err(Refusal {
                status: RefusalStatus::NotFound,
                body: error_body(
                    "not_found",
                    format!("field `queryid`: no statement {queryid}"),
                ),
            }
            .into());
        };
        let in_body = |error| Failure::service(error, NamedBy::Field);
        let statement = explain::statement(&self.perfscope, database, id).map_err(in_body)?;
        let timeout = timeout_ms.map(std::time::Duration::from_millis);
        let plan = explain::plan(&self.perfscope, &statement, analyze, timeout, Source::Api)
            .await
            .map_err(in_body)?;
        Ok(ExplainResponse::Ok(Json(ExplainReport {
            database: statement.watched.name.to_string(),
            queryid: id.to_string(),
            statement: statement.text.to_string(),
            analyzed: analyze.is_some(),
            plan: plan.json,
            text: plan.text,
        })))
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
        answer(
            self.explain(&token, database.0.as_deref(), &queryid.0, None, None)
                .await,
        )
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
        let params = request.params.clone().unwrap_or_default();
        let analyze = request.analyze.then_some(params.as_slice());
        answer(
            self.explain(
                &token,
                request.database.as_deref(),
                &request.queryid,
                analyze,
                request.timeout_ms,
            )
            .await,
        )
    }
}
