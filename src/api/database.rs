//! `GET /api/performance/database` (admin): the capability self-check of a
//! watched database (see [`crate::pg::actions::self_check`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTags;
use super::auth::{Access, BearerToken, authorize};
use super::error::{ApiError, error_body, unknown_database};
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
        let config = self.perfscope.config();
        authorize(
            &token,
            Access::Admin,
            config.server.admin_token.as_ref(),
            None,
        )?;
        let name = database.0.as_deref().unwrap_or("default");
        let Some(watched) = self.perfscope.watched().get(name) else {
            return Ok(DatabaseResponse::NotFound(unknown_database(name)));
        };
        match self_check::run(&watched).await {
            Ok(check) => Ok(DatabaseResponse::Ok(Json(check))),
            Err(error) => {
                tracing::warn!(database = name, %error, "self-check failed");
                Ok(DatabaseResponse::Unavailable(error_body(
                    "unavailable",
                    format!("database {name:?} cannot be reached"),
                )))
            }
        }
    }
}
