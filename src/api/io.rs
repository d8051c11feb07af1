//! `GET /api/performance/io` (admin): the server of a watched database's
//! I/O by backend type, object and context (`pg_stat_io`, PostgreSQL
//! 16+), from the I/O reader's last pass (see
//! [`crate::pg::readers::io`]): no query of its own. Before 16 it says
//! the server has no such view rather than failing.

use poem_openapi::param::Query;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Enum, Object, OpenApi};

use super::ApiTags;
use super::auth::BearerToken;
use super::error::{ApiError, answer, answers_refusals};
use super::guard::admin_database;
use crate::Perfscope;
use crate::http::ErrorBody;
use crate::pg::readers::io::{IoRow, IoSnapshot, NEEDS};

/// Whether there are figures.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum IoState {
    /// The last pass's rows.
    Read,
    /// The reader has not read the server yet.
    NotRead,
    /// The server is older than PostgreSQL 16: no `pg_stat_io`.
    Unsupported,
}

/// The I/O of one database's server.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct IoReport {
    /// The watched database (the figures are its server's, shared by every
    /// database there).
    pub database: String,
    /// Whether there are figures.
    pub state: IoState,
    /// The server's `server_version_num`, once read.
    #[oai(skip_serializing_if_is_none)]
    pub server_version_num: Option<i32>,
    /// Whether `track_io_timing` is on (the rows carry times).
    pub timing: bool,
    /// The rows with any operation, cumulative since the server's
    /// statistics reset, by backend type, object and context.
    pub rows: Vec<IoRow>,
    /// Whether rows were left out past the reader's cap.
    pub truncated: bool,
    /// In words.
    pub summary: String,
}

#[derive(ApiResponse)]
enum IoResponse {
    /// The server's I/O, or why there is none.
    #[oai(status = 200)]
    Ok(Json<IoReport>),
    /// No watched database by that name.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The agent cannot answer for the database now.
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

answers_refusals!(IoResponse {
    NotFound => NotFound,
    Unavailable => Unavailable,
});

/// The I/O operation.
pub struct IoApi {
    pub(super) perfscope: Perfscope,
}

#[OpenApi]
impl IoApi {
    /// The server's reads, writes, extends, buffer hits and evictions by
    /// backend type, object and context (`pg_stat_io`, PostgreSQL 16+),
    /// from the last pass of the readers. Admin token required.
    #[oai(
        path = "/api/performance/io",
        method = "get",
        tag = "ApiTags::Performance",
        operation_id = "getIo"
    )]
    async fn io(
        &self,
        token: BearerToken,
        /// The watched database (default: `default`, the `DATABASE_URL`).
        #[oai(validator(min_length = 1, max_length = 63))]
        database: Query<Option<String>>,
    ) -> Result<IoResponse, ApiError> {
        answer(
            async {
                let watched = admin_database(&self.perfscope, &token, database.0.as_deref())?;
                Ok(IoResponse::Ok(Json(report(
                    &watched.name,
                    watched.io.latest().as_deref(),
                ))))
            }
            .await,
        )
    }
}

/// The report of `snapshot` (none: not read yet), with its summary.
pub fn report(database: &str, snapshot: Option<&IoSnapshot>) -> IoReport {
    let Some(snapshot) = snapshot else {
        return IoReport {
            database: database.to_owned(),
            state: IoState::NotRead,
            server_version_num: None,
            timing: false,
            rows: Vec::new(),
            truncated: false,
            summary: "not read yet".to_owned(),
        };
    };
    let (state, summary) = if snapshot.supported() {
        let reads: i64 = snapshot.rows.iter().map(|r| r.reads).sum();
        let hits: i64 = snapshot.rows.iter().map(|r| r.hits).sum();
        let writes: i64 = snapshot.rows.iter().map(|r| r.writes).sum();
        let timing = if snapshot.timing {
            "with I/O timing"
        } else {
            "without I/O timing (track_io_timing is off)"
        };
        (
            IoState::Read,
            format!(
                "{} rows: {reads} reads, {hits} buffer hits, {writes} writes since the statistics reset, {timing}",
                snapshot.rows.len()
            ),
        )
    } else {
        (
            IoState::Unsupported,
            format!(
                "{NEEDS}; this server runs {}",
                snapshot.server_version_num / 10_000
            ),
        )
    };
    IoReport {
        database: database.to_owned(),
        state,
        server_version_num: Some(snapshot.server_version_num),
        timing: snapshot.timing,
        rows: snapshot.rows.clone(),
        truncated: snapshot.truncated,
        summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_says_what_is_missing() {
        let none = report("default", None);
        assert_eq!(none.state, IoState::NotRead);
        let old = report(
            "default",
            Some(&IoSnapshot {
                server_version_num: 150_018,
                ..IoSnapshot::default()
            }),
        );
        assert_eq!(old.state, IoState::Unsupported);
        assert_eq!(
            old.summary,
            "pg_stat_io needs PostgreSQL 16+; this server runs 15"
        );
        let new = report(
            "default",
            Some(&IoSnapshot {
                server_version_num: 180_001,
                rows: vec![IoRow {
                    reads: 2,
                    hits: 8,
                    ..IoRow::default()
                }],
                ..IoSnapshot::default()
            }),
        );
        assert_eq!(new.state, IoState::Read);
        assert!(new.summary.starts_with("1 rows: 2 reads, 8 buffer hits"));
        assert!(new.summary.ends_with("(track_io_timing is off)"));
    }
}
