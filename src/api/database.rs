//! `GET /api/performance/database` (admin): the capability self-check of a
//! watched database (see [`crate::pg::actions::self_check`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::BearerToken;
use super::error::{
    ApiError, Failure, Refusal, RefusalStatus, answer, answers_refusals, error_body,
};
use super::guard::admin_database;
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::actions::self_check::{self, SelfCheck};

#[derive(ApiResponse)]
enum DatabaseResponse {
    /// The self-check.
    #[oai(status = 200)]
    Ok(Json<SelfCheck>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The database cannot be reached.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

answers_refusals!(DatabaseResponse {
    NotFound => NotFound,
    Unavailable => Unavailable,
});

/// The self-check operation.
pub struct DatabaseApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl DatabaseApi {
    /// What perfscope can do in the database and, for each missing piece,
    /// which features are off and the SQL or configuration that fixes it.
    /// Admin token required.
    #[oai(
        path = "/api/performance/database",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getDatabase"
    )]
    async fn database(
        &self,
        token: BearerToken,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<DatabaseResponse, ApiError> {
        answer(
            async {
                let watched = admin_database(&self.perfscope, &token, database.0.as_deref())?;
                let check = self_check::run(&watched).await.map_err(|error| {
                    tracing::warn!(database = %watched.name, %error, "self-check failed");
                    Failure::from(Refusal {
                        status: RefusalStatus::Unavailable,
                        body: error_body(
                            "unavailable",
                            format!("database {:?} cannot be reached", &*watched.name),
                        ),
                    })
                })?;
                Ok(DatabaseResponse::Ok(Json(check)))
            }
            .await,
        )
    }
}
