//! Error texts an operator can act on.
//!
//! tokio-postgres prints a server error as the bare words "db error" and a
//! failed connection as "error connecting to server", keeping the reason
//! (Postgres' message and SQLSTATE, or the socket error) in fields and in
//! the `source()` chain; deadpool wraps that once more. A log line made of
//! those words hid "sorry, too many clients already (53300)" behind 837
//! copies of "db error". [`postgres`] and [`chain`] are the one place every
//! error of the database path is turned into text: the server's message
//! with its SQLSTATE, or the whole chain of causes.

use std::error::Error;

/// A tokio-postgres error as `message (SQLSTATE xxxxx)` when the server
/// sent one, else the error with its chain of causes (`error connecting
/// to server: Connection refused (os error 111)`).
pub fn postgres(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => chain(error),
    }
}

/// `error: cause: cause …`, each cause once; a server error met along
/// the chain is written as `message (SQLSTATE xxxxx)` and ends it.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current = Some(error);
    while let Some(error) = current {
        if let Some(db) = error
            .downcast_ref::<tokio_postgres::Error>()
            .and_then(tokio_postgres::Error::as_db_error)
        {
            parts.push(format!("{} (SQLSTATE {})", db.message(), db.code().code()));
            break;
        }
        let piece = error.to_string();
        // Some errors repeat their cause in their own text.
        if !piece.is_empty() && !parts.last().is_some_and(|last| last.ends_with(&piece)) {
            parts.push(piece);
        }
        current = error.source();
    }
    parts.join(": ")
}

/// A deadpool-postgres pool error: the timeout it hit, or why a new
/// connection could not be opened.
pub fn pool(error: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::{PoolError, TimeoutType};
    match error {
        PoolError::Timeout(TimeoutType::Wait) => {
            "no free connection within the wait timeout".into()
        }
        PoolError::Timeout(TimeoutType::Create) => {
            "opening a connection took longer than the create timeout".into()
        }
        PoolError::Timeout(TimeoutType::Recycle) => {
            "checking a returned connection took longer than the recycle timeout".into()
        }
        PoolError::Backend(error) => format!("could not open a connection: {}", postgres(error)),
        PoolError::Closed => "the pool is closed".into(),
        PoolError::NoRuntimeSpecified => "no runtime specified".into(),
        PoolError::PostCreateHook(hook) => {
            format!("a new connection's set-up failed: {}", chain(hook))
        }
    }
}
