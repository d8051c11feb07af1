//! Explaining a statement of the slow-query list: find it by queryid in a
//! watched database, then plan it (or, with values, run it under EXPLAIN
//! ANALYZE). Split in two steps because the Plan page shows the statement
//! even when its plan cannot be had.

use std::sync::Arc;
use std::time::Duration;

use super::{ServiceError, Source, databases};
use crate::Perfscope;
use crate::pg::WatchedDatabase;
use crate::pg::actions::explain::{DEFAULT_ANALYZE_TIMEOUT, ExplainError, Explained};

/// A statement found by its queryid.
pub struct Statement {
    /// Its database.
    pub watched: Arc<WatchedDatabase>,
    /// pg_stat_statements' queryid.
    pub queryid: i64,
    /// The text as the server has it (what is planned).
    pub raw: Arc<str>,
    /// The normalized text (what is shown).
    pub text: Arc<str>,
}

impl Statement {
    /// Whether it may run under EXPLAIN ANALYZE (a single SELECT), and
    /// with how many parameters (the plan page's question).
    #[cfg(feature = "ui")]
    pub fn analyzable(&self) -> Option<usize> {
        let params = crate::pg::planner::inventory::read(&self.raw).map_or(0, |i| i.params);
        crate::pg::actions::explain::may_analyze(&self.raw).then_some(params)
    }
}

/// Statement `queryid` of the watched database `database`.
pub fn statement(
    perfscope: &Perfscope,
    database: Option<&str>,
    queryid: i64,
) -> Result<Statement, ServiceError> {
    let watched = databases::watched(perfscope, database)?;
    let (raw, text) = crate::pg::actions::explain::statement(&watched.statements, queryid)
        .map_err(|error| ServiceError::Explain {
            database: watched.name.to_string(),
            error,
        })?;
    Ok(Statement {
        watched,
        queryid,
        raw,
        text,
    })
}

/// The plan of `statement`: generic when `analyze` is `None`, else run
/// with those parameter values under `timeout` (default 10 s).
pub async fn plan(
    perfscope: &Perfscope,
    statement: &Statement,
    analyze: Option<&[Option<String>]>,
    timeout: Option<Duration>,
    source: Source,
) -> Result<Explained, ServiceError> {
    let timeout = match analyze {
        Some(_) => timeout.unwrap_or(DEFAULT_ANALYZE_TIMEOUT),
        None => perfscope.config().readers.timeout,
    };
    let Statement {
        watched,
        queryid,
        raw,
        ..
    } = statement;
    let result =
        crate::pg::actions::explain::explain(watched, *queryid, raw, analyze, timeout).await;
    let (database, source) = (&*watched.name, source.as_str());
    match &result {
        Ok(_) => tracing::info!(
            database,
            queryid,
            analyzed = analyze.is_some(),
            source,
            "explained"
        ),
        Err(error @ (ExplainError::Refused(_) | ExplainError::Failed(_))) => {
            tracing::info!(database, queryid, %error, source, "explain refused");
        }
        Err(ExplainError::Unavailable(detail)) => {
            tracing::warn!(database, queryid, %detail, source, "explain failed");
        }
        Err(_) => {}
    }
    result.map_err(|error| ServiceError::Explain {
        database: database.to_owned(),
        error,
    })
}
