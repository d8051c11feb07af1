//! `GET /api/performance/plan-changes` (admin, like EXPLAIN: plan shapes
//! name relations and indexes): the statements of a watched database whose
//! generic plan changed shape between two passes of the index advisor,
//! with both shapes and the figures before and after (see
//! [`crate::pg::plans`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::BearerToken;
use super::error::{ApiError, Refusal, answer};
use super::guard::admin_database;
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::plans::PlanChange;

/// The plan changes of one database.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct PlanChangesReport {
    /// The watched database.
    pub database: String,
    /// Statements whose current generic plan is remembered (those the
    /// advisor planned: top statements of a role in
    /// `PERFSCOPE_PLAN_ROLES`).
    pub tracked_statements: u64,
    /// The advisor's passes whose plans were compared, since the agent
    /// started.
    pub passes: u64,
    /// The changes kept (at most 200), newest first.
    pub changes: Vec<PlanChange>,
}

#[derive(ApiResponse)]
enum PlanChangesResponse {
    /// The plan changes.
    #[oai(status = 200)]
    Ok(Json<PlanChangesReport>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
}

/// Its only refusal is an unknown database (it reads memory, never the
/// database itself).
impl From<Refusal> for PlanChangesResponse {
    fn from(refusal: Refusal) -> Self {
        Self::NotFound(refusal.body)
    }
}

/// The plan changes operation.
pub struct PlanChangesApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl PlanChangesApi {
    /// Statements whose generic plan changed shape (node types, join
    /// types, relations and indexes; costs left out) between two passes
    /// of the index advisor, with both shapes and the mean time and blocks
    /// per call before and after. The generic plan the agent computes is
    /// fingerprinted, not each custom plan the application runs: a plan
    /// that flips with a parameter's value is not seen. Admin token
    /// required.
    #[oai(
        path = "/api/performance/plan-changes",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getPlanChanges"
    )]
    async fn plan_changes(
        &self,
        token: BearerToken,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<PlanChangesResponse, ApiError> {
        answer(
            async {
                let watched = admin_database(&self.perfscope, &token, database.0.as_deref())?;
                let plans = watched.advisor.plan_changes();
                let mut changes = plans.changes();
                changes.reverse();
                Ok(PlanChangesResponse::Ok(Json(PlanChangesReport {
                    database: watched.name.to_string(),
                    tracked_statements: u64::try_from(plans.tracked()).unwrap_or(u64::MAX),
                    passes: plans.passes(),
                    changes,
                })))
            }
            .await,
        )
    }
}
