//! `GET /api/performance/replication` (admin): the server of a watched
//! database as a primary (each standby's state and write/flush/replay lag)
//! or a standby (its replay lag), and its replication slots with the WAL
//! each retains (see [`crate::pg::readers::replication`]).

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use super::ApiTags;
use super::auth::BearerToken;
use super::error::{ApiError, answer, answers_refusals};
use super::guard::{admin_database, unreadable};
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::readers::replication::{ReplicationSnapshot, Slot, Standby};

/// Replication of one database's server.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct ReplicationReport {
    /// The watched database.
    pub database: String,
    /// `primary` or `standby`.
    pub role: String,
    /// On a primary, its standbys (empty: none connected); on a standby,
    /// itself (`name` `self`).
    pub standbys: Vec<Standby>,
    /// The replication slots.
    pub slots: Vec<Slot>,
    /// In words: e.g. "primary with no standby and no replication slot".
    pub summary: String,
}

#[derive(ApiResponse)]
enum ReplicationResponse {
    /// The replication state.
    #[oai(status = 200)]
    Ok(Json<ReplicationReport>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The database cannot be read.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

answers_refusals!(ReplicationResponse {
    NotFound => NotFound,
    Unavailable => Unavailable,
});

/// The replication operation.
pub struct ReplicationApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl ReplicationApi {
    /// Standbys and their lag (on a primary), this standby's replay lag (on
    /// a standby), and the replication slots with the WAL they retain.
    /// Admin token required.
    #[oai(
        path = "/api/performance/replication",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getReplication"
    )]
    async fn replication(
        &self,
        token: BearerToken,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<ReplicationResponse, ApiError> {
        answer(
            async {
                let watched = admin_database(&self.perfscope, &token, database.0.as_deref())?;
                let timeout = self.perfscope.config().readers.timeout;
                let snapshot = crate::pg::readers::replication::read_now(&watched.pool, timeout)
                    .await
                    .map_err(|error| unreadable(&watched.name, "replication", error))?;
                Ok(ReplicationResponse::Ok(Json(report(
                    &watched.name,
                    snapshot,
                ))))
            }
            .await,
        )
    }
}

/// The report of `snapshot`, with its summary in words.
fn report(database: &str, snapshot: ReplicationSnapshot) -> ReplicationReport {
    let role = if snapshot.standby {
        "standby"
    } else {
        "primary"
    };
    let standbys = match (snapshot.standby, snapshot.standbys.len()) {
        (true, _) => "replaying from its primary".to_owned(),
        (false, 0) => "with no standby connected".to_owned(),
        (false, 1) => "with 1 standby".to_owned(),
        (false, n) => format!("with {n} standbys"),
    };
    let inactive = snapshot.inactive_slots().len();
    let slots = match (snapshot.slots.len(), inactive) {
        (0, _) => "no replication slot".to_owned(),
        (n, 0) => format!("{n} replication slot(s), all active"),
        (n, i) => format!("{n} replication slot(s), {i} inactive and holding WAL"),
    };
    ReplicationReport {
        database: database.to_owned(),
        role: role.to_owned(),
        summary: format!("{role} {standbys}; {slots}"),
        standbys: snapshot.standbys,
        slots: snapshot.slots,
    }
}
