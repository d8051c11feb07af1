//! [`DbError`]: why a pool operation failed.
//!
//! Its own module because every other part of the pool (opening, the
//! clients, COPY, pagination) returns it and it depends on none of them:
//! only on the driver's errors, the budget's refusal and the error texts.

use deadpool_postgres::PoolError;

use crate::db::budget::BudgetError;
use crate::db::error_text;

/// Why a pool operation failed.
///
/// In a Poem or axum handler it is the error half of the answer: a handler
/// returning `Result<T, DbError>` can use `?` on the pool and on every
/// statement, and a failure answers 503 (`database_unavailable`: a pool
/// timeout, an unreachable server, [`DbError::is_unavailable`]) or 500
/// (`database_error`) with a JSON body that never holds the SQL or the
/// server's message (examples in the README's "The timed Postgres pool").
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string is not valid.
    #[error("invalid database URL: {0}")]
    Config(String),
    /// No connection could be had (timeout, closed pool, backend error);
    /// shown with Postgres' own reason (message and SQLSTATE).
    #[error("database pool: {}", error_text::pool(.0))]
    Pool(#[from] PoolError),
    /// A statement failed; shown as the server's message and SQLSTATE.
    #[error("{}", error_text::postgres(.0))]
    Query(#[from] tokio_postgres::Error),
    /// A table or column name is not a valid identifier, does not exist,
    /// or (for keyset pagination) does not order rows uniquely.
    #[error("{0}")]
    Invalid(String),
    /// The agent's connection budget held the connection back.
    #[error(transparent)]
    Budget(#[from] BudgetError),
}

impl DbError {
    /// Whether the server refused the connection with SQLSTATE 53300
    /// (too many connections).
    pub fn is_too_many_connections(&self) -> bool {
        let code = match self {
            Self::Pool(PoolError::Backend(error)) | Self::Query(error) => error.code(),
            _ => None,
        };
        code == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS)
    }
}
