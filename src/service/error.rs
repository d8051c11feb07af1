//! [`ServiceError`], the one error type of the use cases.
//!
//! It keeps the domain error it came from (a maintenance, signal or
//! explain refusal) instead of flattening it to a status, because each
//! front end words its answers its own way: the API's JSON bodies and the
//! pages' sentences are both part of their contract.

use crate::pg::actions::explain::ExplainError;
use crate::pg::actions::maintenance::MaintenanceError;
use crate::pg::actions::signal::SignalError;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No database is configured (`DATABASE_URL` unset).
    #[error("no database is configured; set DATABASE_URL")]
    NoDatabase,
    /// No watched database has this name.
    #[error("no watched database {0:?}")]
    UnknownDatabase(String),
    /// The maintenance runner refused or failed.
    #[error("{0}")]
    Maintenance(MaintenanceError),
    /// The signal was refused or could not be sent, in `database`.
    #[error("{error}")]
    Signal {
        /// The watched database.
        database: String,
        /// What went wrong.
        error: SignalError,
    },
    /// The statement was not found, or not planned, in `database`.
    #[error("{error}")]
    Explain {
        /// The watched database.
        database: String,
        /// What went wrong.
        error: ExplainError,
    },
}
