//! Cancelling a backend's query or terminating its session, from the API
//! or the Activity page: one place sends the signal, counts it in
//! `perfscope_admin_actions_total{action, outcome}` and writes the audit
//! line, whatever came of it.

use super::{ServiceError, Source};
use crate::Perfscope;
use crate::pg::WatchedDatabase;
use crate::pg::actions::signal::AdminOutcome;
use crate::pg::actions::signal::Signal;

/// Sends `action` to `pid` in `watched` (only to the session that started
/// at `backend_start`, when given). `Ok(false)`: the process was gone.
pub async fn send(
    perfscope: &Perfscope,
    watched: &WatchedDatabase,
    pid: i32,
    action: Signal,
    backend_start: Option<&str>,
    source: Source,
) -> Result<bool, ServiceError> {
    let result =
        crate::pg::actions::signal::signal(&watched.pool, pid, action, backend_start).await;
    let outcome = match &result {
        Ok(true) => AdminOutcome::Signalled,
        Ok(false) => AdminOutcome::NotSignalled,
        Err(error) => error.outcome(),
    };
    perfscope
        .pg_metrics()
        .admin_actions
        .get_or_create(&crate::metrics::pg::AdminActionLabels { action, outcome })
        .inc();
    tracing::info!(
        database = %watched.name,
        pid,
        action = action.as_str(),
        outcome = outcome.as_str(),
        source = source.as_str(),
        "backend signal requested"
    );
    if let Err(crate::pg::actions::signal::SignalError::Unavailable(detail)) = &result {
        tracing::warn!(database = %watched.name, pid, %detail, "backend signal failed");
    }
    result.map_err(|error| ServiceError::Signal {
        database: watched.name.to_string(),
        error,
    })
}
