//! Cancelling or terminating one backend of a watched database, on an
//! operator's request (the API's and the pages' admin buttons).
//!
//! [`signal`] sends it only if the pid is one of the client backends the
//! activity view lists ([`crate::pg::readers::activity`]: never another
//! database's, a background process or the agent's own), in one statement
//! (`sql/queries/signal_backend.sql`), so there is no window between the
//! check and the signal. It is apart from the activity reader because it
//! writes to the server (a signal) where the reader only reads.

const SIGNAL: &str = include_str!("../../../sql/queries/signal_backend.sql");

/// Cancel the backend's query, or end its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, poem_openapi::Enum)]
#[oai(rename_all = "lowercase")]
pub enum Signal {
    /// `pg_cancel_backend`: the running query is cancelled, the session
    /// stays.
    Cancel,
    /// `pg_terminate_backend`: the session ends (its transaction rolls
    /// back).
    Terminate,
}

impl Signal {
    /// The `action` label and SQL argument.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Terminate => "terminate",
        }
    }
}

/// Why a signal was not sent.
#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    /// Not one of the database's listed client sessions.
    #[error(
        "pid {0} is not a client session of this database (other databases' sessions, background processes and the agent's own are never signalled)"
    )]
    NotASession(i32),
    /// The agent's role may not signal it.
    #[error(
        "the agent's role may not signal pid {0}: GRANT pg_signal_backend TO the agent's role (superusers' sessions can only be signalled by a superuser)"
    )]
    Forbidden(i32),
    /// The database could not be asked.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

/// What a cancel or terminate request came to.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum AdminOutcome {
    /// Postgres delivered the signal.
    Signalled,
    /// The backend was gone by then.
    NotSignalled,
    /// Not one of the database's client sessions.
    Refused,
    /// The agent's role may not signal it.
    Forbidden,
    /// The database could not be reached.
    Unavailable,
}

impl AdminOutcome {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Signalled => "signalled",
            Self::NotSignalled => "not_signalled",
            Self::Refused => "refused",
            Self::Forbidden => "forbidden",
            Self::Unavailable => "unavailable",
        }
    }
}

impl SignalError {
    /// The `outcome` label.
    pub fn outcome(&self) -> AdminOutcome {
        match self {
            Self::NotASession(_) => AdminOutcome::Refused,
            Self::Forbidden(_) => AdminOutcome::Forbidden,
            Self::Unavailable(_) => AdminOutcome::Unavailable,
        }
    }
}

/// Sends `signal` to `pid` through `pool`, if it is one of the database's
/// listed client sessions (and, with `backend_start`, still the session
/// that started then); whether Postgres delivered it.
pub async fn signal(
    pool: &crate::db::TimedPool,
    pid: i32,
    signal: Signal,
    backend_start: Option<&str>,
) -> Result<bool, SignalError> {
    let client = pool
        .get()
        .await
        .map_err(|e| SignalError::Unavailable(e.to_string()))?;
    let action = signal.as_str();
    match client
        .query_opt(SIGNAL, &[&pid, &action, &backend_start])
        .await
    {
        Ok(Some(row)) => Ok(row
            .try_get::<_, Option<bool>>(0)
            .ok()
            .flatten()
            .unwrap_or(false)),
        Ok(None) => Err(SignalError::NotASession(pid)),
        Err(error)
            if error.code() == Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE) =>
        {
            Err(SignalError::Forbidden(pid))
        }
        Err(error) => Err(SignalError::Unavailable(crate::pg::describe(&error))),
    }
}
