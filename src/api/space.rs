//! `GET /api/performance/space` (admin): the largest tables and indexes of
//! a watched database with row estimates, heap, TOAST and index sizes,
//! bloat estimates and growth since the agent first saw each table (see
//! [`crate::pg::readers::space`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::BearerToken;
use super::error::{ApiError, answer, answers_refusals};
use super::guard::{admin_database, unreadable};
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

answers_refusals!(SpaceResponse {
    NotFound => NotFound,
    Unavailable => Unavailable,
});

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
        answer(
            async {
                let watched = admin_database(&self.perfscope, &token, database.0.as_deref())?;
                let timeout = self.perfscope.config().readers.timeout;
                let snapshot =
                    crate::pg::readers::space::read_now(&watched.pool, &watched.space, timeout)
                        .await
                        .map_err(|error| unreadable(&watched.name, "space", error))?;
                Ok(SpaceResponse::Ok(Json(SpaceReport {
                    database: watched.name.to_string(),
                    tables: snapshot.tables,
                    indexes: snapshot.indexes,
                })))
            }
            .await,
        )
    }
}
