//! `GET /api/performance/slow-queries` (admin): the statements that ran
//! longer than `SLOW_QUERY_THRESHOLD`, from the in-process slow log of the
//! timed pool (with the route that issued them), worst total first.

use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::{Access, BearerToken, authorize};
use super::error::ApiError;
use crate::Perfscope;

/// Entries returned at most.
const MAX_ENTRIES: usize = 100;

/// One slow statement.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SlowQueryEntry {
    /// Where it was seen: `app` (this process's timed pool).
    pub source: String,
    /// The normalized statement (no literal values).
    pub statement: String,
    /// A stable id of the normalized statement (hex).
    pub fingerprint: String,
    /// Its SQL verb.
    pub operation: String,
    /// Its main table.
    pub table: String,
    /// The route template that issued it, when known.
    #[oai(skip_serializing_if_is_none)]
    pub route: Option<String>,
    /// Slow executions.
    pub calls: u64,
    /// Mean duration, ms.
    pub mean_ms: f64,
    /// Slowest, ms.
    pub max_ms: f64,
    /// Total, ms.
    pub total_ms: f64,
    /// When the newest finished, seconds since the Unix epoch.
    pub last_seen: f64,
}

/// The slow-query report.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SlowQueries {
    /// `SLOW_QUERY_THRESHOLD`, ms.
    pub threshold_ms: f64,
    /// Worst total first.
    pub queries: Vec<SlowQueryEntry>,
}

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
    async fn slow_queries(&self, token: BearerToken) -> Result<SlowQueriesResponse, ApiError> {
        let config = self.perfscope.config();
        authorize(&token, Access::Admin, config.admin_token.as_ref(), None)?;
        let db = self.perfscope.db();
        let queries = db
            .slow_log
            .summary()
            .into_iter()
            .take(MAX_ENTRIES)
            .map(|slow| {
                let millis = |d: std::time::Duration| d.as_secs_f64() * 1_000.0;
                SlowQueryEntry {
                    source: "app".into(),
                    statement: slow.statement.normalized.to_string(),
                    fingerprint: format!("{:016x}", slow.statement.fingerprint),
                    operation: slow.statement.verb.as_str().into(),
                    table: slow.statement.model.to_string(),
                    route: slow.route.as_deref().map(str::to_owned),
                    calls: slow.count,
                    mean_ms: millis(slow.total) / slow.count.max(1) as f64,
                    max_ms: millis(slow.max),
                    total_ms: millis(slow.total),
                    last_seen: slow
                        .last_at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64()),
                }
            })
            .collect();
        Ok(SlowQueriesResponse::Ok(Json(SlowQueries {
            threshold_ms: db.slow_threshold().as_secs_f64() * 1_000.0,
            queries,
        })))
    }
}
