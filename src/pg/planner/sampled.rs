//! EXPLAIN with real parameter values ([`Mode::Sampled`](super::Mode)):
//! the custom plan a statement gets for values the host app's pool
//! sampled ([`crate::db::samples`]).
//!
//! Apart from the generic EXPLAIN because the values are the app's users'
//! data and must reach the server only as bound parameters: the statement
//! `EXPLAIN (COSTS, FORMAT JSON) <text>` is prepared over the extended protocol
//! (the text keeps its `$n`; the protocol refuses a second command) and
//! executed with the stored bytes bound, under `plan_cache_mode =
//! force_custom_plan` (bound parameters are constants to the planner, so
//! the plan is the one those values get). So no value is in any statement
//! text: not in pg_stat_statements, pg_stat_activity or a logged
//! statement. What the server would log beside a statement, its bound
//! parameters, is refused too: a session that would log them
//! (`log_parameter_max_length` not 0; `sql/install.sql` sets it to 0 for
//! the planner role) or the custom plan (auto_explain loaded and on) plans
//! no sample; the session turns off what it may itself (parameters logged
//! with an error, `debug_print_*` plan trees); and errors are reported
//! without the server's text (a folded cast can quote a value in its
//! message).

use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::{PlanError, SEARCH_PATH, Statement};
use crate::db::samples::Sample;

/// The custom plan of `statement` for `values`, in the caller's savepoint
/// (the hypothetical index, if any, already created).
pub(super) async fn explain(
    client: &tokio_postgres::Client,
    statement: Statement<'_>,
    params: usize,
    values: &Sample,
) -> Result<Value, PlanError> {
    if values.params().len() != params {
        return Err(PlanError::SampleRefused("sample_types_differ"));
    }
    // Bound parameters beside logged statements (superuser-only to
    // change), and auto_explain, which would log the custom plan with the
    // values folded into it: either refuses the sample.
    let row = client
        .query_one(
            "SELECT /* perfscope */ pg_catalog.current_setting('log_parameter_max_length'), COALESCE(pg_catalog.current_setting('auto_explain.log_min_duration', true), '-1')",
            &[],
        )
        .await?;
    let (parameters, auto_explain): (String, String) = (row.try_get(0)?, row.try_get(1)?);
    if parameters != "0" || auto_explain != "-1" {
        return Err(PlanError::SampleRefused("sample_would_be_logged"));
    }
    // What a session may turn off itself: parameters logged with an
    // error, and plan trees (with the values as constants) printed to the
    // log.
    client
        .batch_execute(
            "/* perfscope */ SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL log_parameter_max_length_on_error = 0; SET LOCAL debug_print_plan = off; SET LOCAL debug_print_parse = off; SET LOCAL debug_print_rewritten = off",
        )
        .await?;
    client.execute(SEARCH_PATH, &[&statement.role]).await?;
    bound(client, statement.sql, values)
        .await
        .map_err(|error| {
            if error.is_closed() {
                PlanError::Unavailable("the planner connection closed".into())
            } else {
                // Never the server's text: it may quote a value.
                PlanError::Failed("planning with sampled values failed".into())
            }
        })?
}

/// Prepares `EXPLAIN (COSTS, FORMAT JSON) <sql>` (the options spelt so
/// the agent's own statements list tells it from an app's) and runs it with the values
/// bound; a sample the server now types differently is refused.
async fn bound(
    client: &tokio_postgres::Client,
    sql: &str,
    values: &Sample,
) -> Result<Result<Value, PlanError>, tokio_postgres::Error> {
    let prepared = client
        .prepare(format!("/* perfscope */ EXPLAIN (COSTS, FORMAT JSON) {sql}").as_str())
        .await?;
    let same = prepared.params().len() == values.params().len()
        && prepared
            .params()
            .iter()
            .zip(values.params())
            .all(|(server, sampled)| server == sampled.ty());
    if !same {
        return Ok(Err(PlanError::SampleRefused("sample_types_differ")));
    }
    let bind: Vec<&(dyn ToSql + Sync)> = values
        .params()
        .iter()
        .map(|p| p as &(dyn ToSql + Sync))
        .collect();
    let row = client.query_one(&prepared, &bind).await?;
    Ok(Ok(row.try_get(0)?))
}
