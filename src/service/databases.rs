//! Looking a watched database up by the name a request gives, the first
//! step of every per-database use case.

use std::sync::Arc;

use super::ServiceError;
use crate::Perfscope;
use crate::pg::WatchedDatabase;

/// The name used when a request names none: the `DATABASE_URL` database.
pub const DEFAULT: &str = "default";

/// The watched database `name` (default: [`DEFAULT`]).
pub fn watched(
    perfscope: &Perfscope,
    name: Option<&str>,
) -> Result<Arc<WatchedDatabase>, ServiceError> {
    let name = name.unwrap_or(DEFAULT);
    perfscope
        .watched()
        .get(name)
        .ok_or_else(|| ServiceError::UnknownDatabase(name.to_owned()))
}
