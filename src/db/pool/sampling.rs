//! The pool's side of [`crate::db::samples`]: on the rare call that is
//! due, the statement is prepared here (what the driver does anyway for a
//! SQL text: one Parse, then Bind/Execute) so its parameter types are
//! known, and the bound values are encoded against them into the store.
//!
//! Only a host app's pool samples (one without a connection budget): the
//! agent's own statements are not the workload the advisor plans; and only
//! one with its statement cache on (behind a transaction pooler the
//! preparing round trip could land on another server connection).

use std::sync::atomic::Ordering;

use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Statement};

use super::shared::{CachedStatement, Shared};
use super::timing::TimedSql;
use crate::db::samples::{self, Sample};
use crate::db::statement::Verb;

/// Whether this call's values are sampled: one atomic add per call with
/// parameters, on a host app's pool, for a statement the advisor plans
/// (SELECT, UPDATE, DELETE: never an INSERT's or COPY's values).
pub(super) fn due(shared: &Shared, cached: &CachedStatement, params: usize) -> bool {
    params > 0
        && shared.budget.is_none()
        && shared.statement_cache
        && matches!(cached.info.verb, Verb::Select | Verb::Update | Verb::Delete)
        && samples::due(cached.calls.fetch_add(1, Ordering::Relaxed))
}

/// The prepared statement for `sql` (prepared now for a text: `text`,
/// the caller's or the one with the pool's comment, under a one-off name
/// the driver closes after the call), and its values encoded against it,
/// to [`keep`] once the call succeeded.
pub(super) async fn prepared<C, S>(
    driver: &C,
    sql: &S,
    text: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(Statement, Option<Sample>), tokio_postgres::Error>
where
    C: GenericClient + Sync,
    S: TimedSql + ?Sized,
{
    let statement = match sql.prepared() {
        Some(statement) => statement.clone(),
        None => driver.prepare(text).await?,
    };
    let sample = Sample::encode(statement.params(), params);
    Ok((statement, sample))
}

/// Keeps `sample` when the call it came from succeeded: a value the server
/// refused would fail again when planned, into its log.
pub(super) fn keep<T, E>(cached: &CachedStatement, sample: Option<Sample>, result: &Result<T, E>) {
    if let (Some(sample), Ok(_)) = (sample, result) {
        samples::store().record(&cached.text, sample);
    }
}
