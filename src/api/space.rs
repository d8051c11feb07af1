//! `GET /api/performance/space` (admin): the largest tables and indexes of
//! a watched database with row estimates, heap, TOAST and index sizes,
//! bloat estimates and growth since the agent first saw each table (see
//! [`crate::pg::readers::space`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::{Access, BearerToken, authorize};
use super::error::{ApiError, error_body, unknown_database};
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::readers::space::{IndexSpace, TableSpace};

/// The space of one database.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SpaceReport {
    /// The watched database.
    pub database: String,
    /// The largest tables, largest first (at most 20).
    pub tables: Vec<TableSpace>,
    /// The largest indexes, largest first (at most 20).
    pub indexes: Vec<IndexSpace>,
}

#[derive(ApiResponse)]
enum SpaceResponse {
    /// The tables and indexes.
    #[oai(status = 200)]
    Ok(Json<SpaceReport>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The database cannot be read.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

/// The space operation.
pub struct SpaceApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl SpaceApi {
    /// The largest tables and indexes now, with bloat estimates (tables
    /// need SELECT for their statistics) and growth since the agent first
    /// saw them. Admin token required.
    #[oai(
        path = "/api/performance/space",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getSpace"
    )]
    async fn space(
        &self,
        token: BearerToken,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<SpaceResponse, ApiError> {
        let config = self.perfscope.config();
        authorize(
            &token,
            Access::Admin,
            config.server.admin_token.as_ref(),
            None,
        )?;
        let name = database.0.as_deref().unwrap_or("default");
        let Some(watched) = self.perfscope.watched().get(name) else {
            return Ok(SpaceResponse::NotFound(unknown_database(name)));
        };
        match crate::pg::readers::space::read_now(
            &watched.pool,
            &watched.space,
            config.readers.timeout,
        )
        .await
        {
            Ok(snapshot) => Ok(SpaceResponse::Ok(Json(SpaceReport {
                database: name.to_owned(),
                tables: snapshot.tables,
                indexes: snapshot.indexes,
            }))),
            Err(error) => {
                tracing::warn!(database = name, %error, "space read failed");
                Ok(SpaceResponse::Unavailable(error_body(
                    "unavailable",
                    format!("database {name:?} cannot be read now"),
                )))
            }
        }
    }
}
