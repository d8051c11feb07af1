//! The preamble of the admin operations on one watched database, once:
//! the admin check, the database the `database` parameter names (404
//! when it names none), and the 503 of a read that failed. Each handler
//! is left with its own read and its own answer.

use std::fmt::Display;
use std::sync::Arc;

use super::auth::{BearerToken, admin_only};
use super::error::{Failure, Refusal, RefusalStatus, error_body};
use crate::Perfscope;
use crate::pg::WatchedDatabase;

/// After the admin check, the watched database `name` (default:
/// `default`).
pub(super) fn admin_database(
    perfscope: &Perfscope,
    token: &BearerToken,
    name: Option<&str>,
) -> Result<Arc<WatchedDatabase>, Failure> {
    admin_only(perfscope, token)?;
    Ok(crate::service::databases::watched(perfscope, name)?)
}

/// The 503 of a failed read of `what` in `database`, logged.
pub(super) fn unreadable(database: &str, what: &str, error: impl Display) -> Refusal {
    tracing::warn!(database, %error, "{what} read failed");
    Refusal {
        status: RefusalStatus::Unavailable,
        body: error_body(
            "unavailable",
            format!("database {database:?} cannot be read now"),
        ),
    }
}
