//! [`DbError`] as an HTTP answer, so that `?` on the pool and on a
//! statement works inside a Poem or axum handler.
//!
//! Without it `pool.get().await?` and `client.query(…).await?` do not
//! compile in a handler (E0277): neither the pool's error nor the driver's
//! is a response error. The choice: **a handler returns
//! `Result<T, DbError>`**. Both `?`s then convert on their own — the pool's
//! error is already a `DbError`, the driver's `tokio_postgres::Error`
//! becomes one through `From` — and the same handler body works in both
//! frameworks. In Poem a handler returning `poem::Result<T>` works too for
//! the pool (`DbError` is a [`poem::error::ResponseError`], and poem turns
//! any of those into its `Error`), but a statement's error needs
//! `.map_err(DbError::from)?` there: no crate may write the conversion
//! from the driver's error to poem's (both are foreign to us).
//!
//! What is answered, decided once by [`DbError::is_unavailable`]:
//!
//! - **503** `{"error": "database_unavailable", …}` when retrying later may
//!   work: no free connection within the wait timeout (or any pool
//!   timeout), a closed pool, a database that cannot be reached (a socket
//!   error, a connection closed under the statement), the agent's
//!   connection budget, and the server's SQLSTATE classes 08 (connection
//!   exception), 53 (insufficient resources: too many connections, out of
//!   memory, disk full) and 57P01–57P05 (shut down, starting up, dropped);
//! - **500** `{"error": "database_error", …}` otherwise: a failed
//!   statement, a refused login, an invalid URL or identifier.
//!
//! The body has the shape of the agent's own errors
//! (`crate::http::json_errors::ErrorBody`: `error` and `message`; written
//! here, not imported, because `http` depends on `db`) with a fixed
//! message. Never the SQL, the server's message, its detail or hint: they
//! can hold literal values (a unique violation's detail names the
//! duplicate key). The error is logged once, at `warn`, when the answer is
//! built, with its kind and SQLSTATE only, for the same reason.
//!
//! In a Poem handler (a pool timeout answers 503, a failed statement 500):
//!
//! ```
//! use perfscope::db::{DbError, TimedPool};
//! use poem::web::{Data, Json};
//! use poem::{Route, get, handler};
//!
//! #[handler]
//! async fn count(Data(pool): Data<&TimedPool>) -> Result<Json<i64>, DbError> {
//!     let client = pool.get().await?;
//!     let row = client.query_one("SELECT count(*) FROM items", &[]).await?;
//!     Ok(Json(row.get(0)))
//! }
//!
//! // Or with poem's own Result: the statement's error through DbError.
//! #[handler]
//! async fn names(Data(pool): Data<&TimedPool>) -> poem::Result<Json<Vec<String>>> {
//!     let client = pool.get().await?;
//!     let rows = client
//!         .query("SELECT name FROM items ORDER BY id LIMIT 10", &[])
//!         .await
//!         .map_err(DbError::from)?;
//!     Ok(Json(rows.iter().map(|row| row.get(0)).collect()))
//! }
//!
//! fn app(pool: TimedPool) -> impl poem::Endpoint {
//!     use poem::EndpointExt;
//!     Route::new()
//!         .at("/items/count", get(count))
//!         .at("/items/names", get(names))
//!         .data(pool)
//! }
//! ```
//!
//! In an axum handler (with the `axum` feature):
//!
//! ```
//! # #[cfg(feature = "axum")]
//! # mod axum_app {
//! use axum::extract::State;
//! use axum::routing::get;
//! use axum::{Json, Router};
//! use perfscope::db::{DbError, TimedPool};
//!
//! async fn count(State(pool): State<TimedPool>) -> Result<Json<i64>, DbError> {
//!     let client = pool.get().await?;
//!     let row = client.query_one("SELECT count(*) FROM items", &[]).await?;
//!     Ok(Json(row.get(0)))
//! }
//!
//! pub fn app(pool: TimedPool) -> Router {
//!     Router::new().route("/items/count", get(count)).with_state(pool)
//! }
//! # }
//! ```

use deadpool_postgres::PoolError;
use serde::Serialize;

use super::error::DbError;

/// `error` of a 503 answer.
const UNAVAILABLE: &str = "database_unavailable";
/// `error` of a 500 answer.
const FAILED: &str = "database_error";

/// The JSON body, the shape of the agent's `ErrorBody`.
#[derive(Serialize)]
struct Body {
    error: &'static str,
    message: &'static str,
}

/// SQLSTATEs after which trying again later may work: classes 08
/// (connection exception) and 53 (insufficient resources), and 57P01 to
/// 57P05 (admin or crash shutdown, cannot connect now, database dropped,
/// idle session timeout).
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0")
}

/// Whether the driver's error means the server could not be reached or
/// cannot serve now: an unavailable SQLSTATE, or no SQLSTATE and a closed
/// connection or a socket error along the causes.
fn driver_unavailable(error: &tokio_postgres::Error) -> bool {
    if let Some(code) = error.code() {
        return unavailable_sqlstate(code.code());
    }
    if error.is_closed() {
        return true;
    }
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        if error.is::<std::io::Error>() {
            return true;
        }
        cause = error.source();
    }
    false
}

impl DbError {
    /// Whether this error means the database cannot serve now (a pool
    /// timeout or a closed pool, an unreachable server, the connection
    /// budget, SQLSTATE classes 08 and 53, 57P01–57P05): answered 503 in a
    /// handler, 500 otherwise.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Pool(PoolError::Timeout(_) | PoolError::Closed) | Self::Budget(_) => true,
            Self::Pool(PoolError::Backend(error)) | Self::Query(error) => driver_unavailable(error),
            Self::Pool(_) | Self::Config(_) | Self::Invalid(_) => false,
        }
    }

    /// The server's SQLSTATE, when it sent one.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Self::Pool(PoolError::Backend(error)) | Self::Query(error) => {
                error.code().map(|code| code.code())
            }
            _ => None,
        }
    }

    /// What went wrong, as a word for the log (never a message).
    fn kind(&self) -> &'static str {
        match self {
            Self::Config(_) => "config",
            Self::Pool(PoolError::Timeout(_)) => "pool_timeout",
            Self::Pool(PoolError::Closed) => "pool_closed",
            Self::Pool(PoolError::Backend(_)) => "connect",
            Self::Pool(_) => "pool",
            Self::Query(_) => "statement",
            Self::Invalid(_) => "invalid",
            Self::Budget(_) => "budget",
        }
    }

    /// The status, the JSON body, and the one log line.
    fn answer(&self) -> (u16, Vec<u8>) {
        let (status, body) = if self.is_unavailable() {
            let message = "the database is unavailable; try again later";
            (
                503,
                Body {
                    error: UNAVAILABLE,
                    message,
                },
            )
        } else {
            let message = "a database operation failed; see the service's log";
            (
                500,
                Body {
                    error: FAILED,
                    message,
                },
            )
        };
        tracing::warn!(
            status,
            kind = self.kind(),
            sqlstate = self.sqlstate().unwrap_or("none"),
            "database error answered"
        );
        let json = serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec());
        (status, json)
    }
}

/// The content type of the body.
const JSON: &str = "application/json; charset=utf-8";

impl poem::error::ResponseError for DbError {
    fn status(&self) -> poem::http::StatusCode {
        if self.is_unavailable() {
            poem::http::StatusCode::SERVICE_UNAVAILABLE
        } else {
            poem::http::StatusCode::INTERNAL_SERVER_ERROR
        }
    }

    fn as_response(&self) -> poem::Response {
        let (_, json) = self.answer();
        poem::Response::builder()
            .status(poem::error::ResponseError::status(self))
            .content_type(JSON)
            .body(json)
    }
}

#[cfg(feature = "axum")]
impl axum::response::IntoResponse for DbError {
    fn into_response(self) -> axum::response::Response {
        let (status, json) = self.answer();
        let status = axum::http::StatusCode::from_u16(status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        (status, [(axum::http::header::CONTENT_TYPE, JSON)], json).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_classes_are_08_53_and_57p0x() {
        for code in [
            "08006", "08001", "53300", "53200", "57P01", "57P03", "57P05",
        ] {
            assert!(unavailable_sqlstate(code), "{code}");
        }
        for code in ["23505", "42P01", "57014", "40001", "28P01", "XX000"] {
            assert!(!unavailable_sqlstate(code), "{code}");
        }
    }

    #[test]
    fn pool_timeouts_and_a_closed_pool_are_unavailable_bad_input_is_not() {
        use deadpool_postgres::TimeoutType;
        assert!(DbError::Pool(PoolError::Timeout(TimeoutType::Wait)).is_unavailable());
        assert!(DbError::Pool(PoolError::Closed).is_unavailable());
        assert!(!DbError::Invalid("no such column".into()).is_unavailable());
        assert!(!DbError::Config("bad url".into()).is_unavailable());
    }

    #[test]
    fn the_body_is_the_agents_error_shape_with_a_fixed_message() {
        let (status, json) = DbError::Invalid("secret 'value'".into()).answer();
        assert_eq!(status, 500);
        let body: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(body["error"], FAILED);
        let message = body["message"].as_str().expect("message");
        assert!(!message.contains("secret"), "{message}");
        assert_eq!(body.as_object().map(|o| o.len()), Some(2), "{body}");
    }
}
