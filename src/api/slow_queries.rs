//! `GET /api/performance/slow-queries` (admin): the union of the
//! in-process slow log of the timed pool (statements over
//! `SLOW_QUERY_THRESHOLD`, with the route that issued them) and
//! pg_stat_statements' worst statements of each watched database, by mean
//! and by total time (over the window since the previous pass, or since the
//! last stats reset on the first pass). Every text is normalized by
//! perfscope.

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{BearerToken, admin_only};
use super::error::ApiError;
use crate::Perfscope;
use crate::service::slow_queries::{SlowQueries, report};

#[derive(ApiResponse)]
enum SlowQueriesResponse {
    /// The report.
    #[oai(status = 200)]
    Ok(Json<SlowQueries>),
}

/// The slow-queries operation.
pub struct SlowQueriesApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl SlowQueriesApi {
    /// Statements slower than SLOW_QUERY_THRESHOLD, with their route.
    /// Admin token required.
    #[oai(
        path = "/api/performance/slow-queries",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getSlowQueries"
    )]
    async fn slow_queries(
        &self,
        token: BearerToken,
        /// Only this watched database's pg_stat_statements entries (the
        /// in-process slow log is always included).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<SlowQueriesResponse, ApiError> {
        admin_only(&self.perfscope, &token)?;
        Ok(SlowQueriesResponse::Ok(Json(report(
            &self.perfscope,
            database.0.as_deref(),
        ))))
    }
}
