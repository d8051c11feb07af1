//! EXPLAIN on request, for a statement of the slow-query list (by its
//! pg_stat_statements queryid): its generic plan (a prepared statement
//! under `plan_cache_mode = force_generic_plan`, the advisor's mechanism)
//! or, only when asked and only for a SELECT, `EXPLAIN (ANALYZE, BUFFERS)`
//! with the caller's parameter values.
//!
//! It plans through [`crate::pg::planner`]: on a connection of the planner
//! role, never the agent's, only for a listed role's statement whose
//! reachable code is trusted, in a READ ONLY transaction that is always
//! rolled back, under `statement_timeout` and a client-side deadline. Only
//! a single statement whose verb is SELECT is analyzed, and the name list
//! below refuses early what would outlive the rollback or run SQL given as
//! text (an early "why", not the boundary: the planner role is).
//! Parameter values reach the server as an array and are quoted by the
//! server itself (`quote_nullable`), never by string building here. The
//! plan comes back as Postgres' JSON and as an indented text rendered from
//! it (so a statement is executed at most once).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use crate::db::statement::Verb;
use crate::pg::ReadError;

/// `statement_timeout` of an EXPLAIN ANALYZE by default.
pub const DEFAULT_ANALYZE_TIMEOUT: Duration = Duration::from_secs(10);

/// A plan.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    /// Postgres' `FORMAT JSON` output.
    pub json: Value,
    /// An indented text rendering of it.
    pub text: String,
}

/// Why a plan could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    /// No statement with that queryid in the last pass, or its text is not
    /// one perfscope keeps (only SELECT, INSERT, UPDATE and DELETE).
    #[error(
        "parameter `queryid`: no explainable statement {0} in the last pg_stat_statements pass"
    )]
    NotFound(i64),
    /// ANALYZE of anything but a single SELECT.
    #[error("field `analyze`: only a SELECT is run with ANALYZE; this statement is {0}")]
    NotSelect(&'static str),
    /// Wrong parameter values.
    #[error("field `params`: {0}")]
    Params(String),
    /// Postgres refused to plan or run it (privileges, timeout, …).
    #[error("the statement could not be explained: {0}")]
    Failed(String),
    /// perfscope does not plan it (no planner role, a role not listed,
    /// code owned outside the trusted set, a text it does not read).
    #[error("the statement is not planned: {0}")]
    Refused(String),
    /// No connection.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

impl From<tokio_postgres::Error> for ExplainError {
    fn from(error: tokio_postgres::Error) -> Self {
        if error.as_db_error().is_some() {
            Self::Failed(crate::pg::describe(&error))
        } else {
            Self::Unavailable(crate::pg::describe(&error))
        }
    }
}

impl From<ReadError> for ExplainError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Query(e) => e.into(),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// Functions whose effects outlive a rolled-back read-only transaction
/// (session locks, signals, remote writes, large objects, settings,
/// notifications, server files and replication state) or that run SQL
/// given as text, by name prefix.
const LASTING_EFFECTS: &[&str] = &[
    "pg_advisory",
    "pg_try_advisory",
    "pg_cancel_backend",
    "pg_terminate_backend",
    "pg_signal",
    "dblink",
    "lo_",
    "set_config",
    "pg_notify",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "pg_switch_wal",
    "pg_create_",
    "pg_drop_",
    "pg_replication_",
    "pg_promote",
    "pg_log_backend",
    "pg_stat_reset",
    "pg_file_",
    "pg_read_",
    "pg_import_",
    "setval",
    "nextval",
    // Built-ins that run SQL given as text (it would run as the planner
    // role, beyond what the trust check read).
    "query_to_xml",
    "cursor_to_xml",
    "ts_stat",
];

/// Parameters a statement may have (the protocol's limit).
const MAX_PARAMS: usize = 65_535;

/// Whether `sql` is a single statement.
fn single_statement(sql: &str) -> Result<(), ExplainError> {
    let trimmed = sql.trim().trim_end_matches(';');
    if crate::db::statement::normalize(trimmed).contains(';') {
        return Err(ExplainError::NotSelect("several statements"));
    }
    Ok(())
}

/// Whether `sql` is one SELECT that may run: no second statement, no
/// write or lock, no function whose effect outlives the rollback.
fn single_select(sql: &str) -> Result<(), ExplainError> {
    let info = crate::db::statement::parse(sql);
    if info.verb != Verb::Select {
        return Err(ExplainError::NotSelect(info.verb.as_str()));
    }
    single_statement(sql)?;
    let normalized = crate::db::statement::normalize(sql.trim().trim_end_matches(';'));
    let lasting = normalized
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .any(|word| {
            LASTING_EFFECTS
                .iter()
                .any(|prefix| word.starts_with(prefix))
        });
    if lasting {
        return Err(ExplainError::NotSelect(
            "a SELECT calling a function whose effect outlives the rollback (locks, signals, remote or file writes) or that runs SQL given as text",
        ));
    }
    // A data-modifying CTE, SELECT INTO or a locking clause (the READ ONLY
    // transaction would refuse them too; this says why up front).
    let writes = normalized
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .any(|word| {
            matches!(
                word,
                "insert" | "update" | "delete" | "merge" | "into" | "share"
            )
        });
    if writes {
        return Err(ExplainError::NotSelect(
            "a SELECT that writes or locks rows",
        ));
    }
    Ok(())
}

/// Statement `queryid` of the statements reader's last pass: the server's
/// text (what is explained) and perfscope's normalized text (what is
/// shown). Only SELECT, INSERT, UPDATE and DELETE keep the former.
pub fn statement(
    statements: &crate::pg::readers::statements::StatementsReader,
    queryid: i64,
) -> Result<(std::sync::Arc<str>, std::sync::Arc<str>), ExplainError> {
    statements
        .latest()
        .unwrap_or_default()
        .statements
        .iter()
        .find(|s| s.queryid == queryid)
        .and_then(|s| Some((s.raw.clone()?, s.text.clone()?)))
        .ok_or(ExplainError::NotFound(queryid))
}

/// Whether `sql` may be run with EXPLAIN ANALYZE (see [`explain`]).
pub fn may_analyze(sql: &str) -> bool {
    single_select(sql).is_ok()
}

/// Plans (and with `analyze`, runs) statement `queryid` of `watched`,
/// whose server text is `sql`, on a planner connection (see
/// [`crate::pg::planner`]): never as the agent's role, only for a role of
/// `PERFSCOPE_PLAN_ROLES`, only when its reachable code is trusted.
pub async fn explain(
    watched: &crate::pg::WatchedDatabase,
    queryid: i64,
    sql: &str,
    analyze: Option<&[Option<String>]>,
    timeout: Duration,
) -> Result<Explained, ExplainError> {
    single_statement(sql)?;
    let params = match crate::pg::planner::inventory::read(sql) {
        Ok(found) => found.params,
        Err(crate::pg::planner::inventory::Refused::TooManyParams) => {
            return Err(ExplainError::Params(format!(
                "statement {queryid} names a parameter past the protocol's {MAX_PARAMS}"
            )));
        }
        Err(refused) => return Err(ExplainError::Refused(refused.to_string())),
    };
    if let Some(values) = analyze {
        single_select(sql)?;
        if values.len() != params {
            return Err(ExplainError::Params(format!(
                "statement {queryid} has {params} parameter(s) ($1…): give exactly {params} value(s), not {}",
                values.len()
            )));
        }
        if values.iter().flatten().any(|v| v.contains('\0')) {
            return Err(ExplainError::Params(
                "a value contains a NUL character".into(),
            ));
        }
    }
    let planner = watched.advisor.planner().ok_or_else(|| {
        ExplainError::Refused(crate::pg::planner::PlanError::NotConfigured.to_string())
    })?;
    // The role that ran it (one the operator listed), read as the agent.
    let role = {
        let mut client = watched
            .pool
            .get()
            .await
            .map_err(|e| ExplainError::Unavailable(e.to_string()))?;
        let tx = crate::pg::read_only(&mut client, timeout).await?;
        let roles: Vec<&str> = planner.roles().iter().map(String::as_str).collect();
        let role: Option<String> = tx
            .query_opt(ROLES, &[&vec![queryid], &roles])
            .await?
            .map(|row| row.try_get(1))
            .transpose()?;
        let _ = tx.rollback().await;
        role
    };
    let role = role.ok_or_else(|| {
        ExplainError::Refused(crate::pg::planner::PlanError::RoleNotListed.to_string())
    })?;
    let mode = match analyze {
        Some(values) => crate::pg::planner::Mode::Analyze(values),
        None => crate::pg::planner::Mode::Generic,
    };
    let mut session = planner.session(timeout).await.map_err(plan_error)?;
    let statement = crate::pg::planner::Statement { sql, role: &role };
    let result = session.plan(statement, mode).await;
    session.close().await;
    let json = result.map_err(plan_error)?;
    let text = render(&json);
    Ok(Explained { json, text })
}

const ROLES: &str = include_str!("../../../sql/queries/advisor_roles.sql");

fn plan_error(error: crate::pg::planner::PlanError) -> ExplainError {
    use crate::pg::planner::PlanError;
    match error {
        PlanError::Failed(detail) => ExplainError::Failed(detail),
        PlanError::Unavailable(detail) => ExplainError::Unavailable(detail),
        PlanError::Timeout => ExplainError::Failed(error.to_string()),
        other => ExplainError::Refused(other.to_string()),
    }
}

/// An indented text of a `FORMAT JSON` plan: one line per node with its
/// relation, estimates and, when analyzed, actual time, rows, loops and
/// buffers.
pub fn render(json: &Value) -> String {
    let mut out = String::new();
    let Some(top) = json.get(0) else {
        return out;
    };
    if let Some(root) = top.get("Plan") {
        node(root, 0, &mut out);
    }
    for (key, label) in [
        ("Planning Time", "Planning"),
        ("Execution Time", "Execution"),
    ] {
        if let Some(ms) = top.get(key).and_then(Value::as_f64) {
            let _ = writeln!(out, "{label} time: {ms:.3} ms");
        }
    }
    out
}

fn node(plan: &Value, depth: usize, out: &mut String) {
    let text = |key: &str| plan.get(key).and_then(Value::as_str);
    let number = |key: &str| plan.get(key).and_then(Value::as_f64);
    let indent = "  ".repeat(depth);
    let arrow = if depth == 0 { "" } else { "-> " };
    let _ = write!(out, "{indent}{arrow}{}", text("Node Type").unwrap_or("?"));
    if let Some(index) = text("Index Name") {
        let _ = write!(out, " using {index}");
    }
    if let Some(relation) = text("Relation Name") {
        match text("Schema") {
            Some(schema) => {
                let _ = write!(out, " on {schema}.{relation}");
            }
            None => {
                let _ = write!(out, " on {relation}");
            }
        }
    }
    if let (Some(start), Some(total), Some(rows)) = (
        number("Startup Cost"),
        number("Total Cost"),
        number("Plan Rows"),
    ) {
        let _ = write!(out, "  (cost={start:.2}..{total:.2} rows={rows:.0})");
    }
    if let (Some(start), Some(total), Some(rows), Some(loops)) = (
        number("Actual Startup Time"),
        number("Actual Total Time"),
        number("Actual Rows"),
        number("Actual Loops"),
    ) {
        // PostgreSQL 18 gives the rows per loop with two decimals (0.10
        // over 10 loops); older servers a whole number.
        let rows = if rows.fract() == 0.0 {
            format!("{rows:.0}")
        } else {
            format!("{rows:.2}")
        };
        let _ = write!(
            out,
            " (actual time={start:.3}..{total:.3} rows={rows} loops={loops:.0})"
        );
    }
    let _ = writeln!(out);
    let hit = number("Shared Hit Blocks").unwrap_or(0.0);
    let read = number("Shared Read Blocks").unwrap_or(0.0);
    if plan.get("Shared Hit Blocks").is_some() && (hit > 0.0 || read > 0.0) {
        let _ = writeln!(
            out,
            "{indent}   Buffers: shared hit={hit:.0} read={read:.0}"
        );
    }
    for key in ["Index Cond", "Filter", "Hash Cond", "Join Filter"] {
        if let Some(condition) = text(key) {
            let _ = writeln!(out, "{indent}   {key}: {condition}");
        }
    }
    if let Some(children) = plan.get("Plans").and_then(Value::as_array) {
        for child in children {
            node(child, depth + 1, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_select_is_analyzed() {
        assert!(single_select("SELECT * FROM t WHERE id = $1").is_ok());
        assert!(single_select("select 1;").is_ok());
        assert!(matches!(
            single_select("UPDATE t SET a = $1"),
            Err(ExplainError::NotSelect("update"))
        ));
        assert!(matches!(
            single_select("SELECT 1; DELETE FROM t"),
            Err(ExplainError::NotSelect(_))
        ));
        assert!(matches!(
            single_select("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"),
            Err(ExplainError::NotSelect(_))
        ));
        // Found in review: effects that outlive the rollback.
        for lasting in [
            "SELECT pg_advisory_lock($1)",
            "select pg_try_advisory_xact_lock(1)",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1",
            "SELECT dblink_exec('x', 'DELETE FROM t')",
            "SELECT set_config('a.b', $1, false)",
            "SELECT lo_unlink($1)",
        ] {
            assert!(
                matches!(single_select(lasting), Err(ExplainError::NotSelect(_))),
                "{lasting}"
            );
        }
        assert!(single_select("SELECT pg_size_pretty(pg_relation_size($1))").is_ok());
    }

    #[test]
    fn the_text_follows_the_json() {
        let json: Value = serde_json::json!([{
            "Plan": {
                "Node Type": "Nested Loop", "Startup Cost": 0.29, "Total Cost": 16.6, "Plan Rows": 1.0,
                "Actual Startup Time": 0.02, "Actual Total Time": 0.05, "Actual Rows": 1.0, "Actual Loops": 1.0,
                "Plans": [{
                    "Node Type": "Index Scan", "Index Name": "orders_pkey", "Relation Name": "orders",
                    "Schema": "public", "Startup Cost": 0.29, "Total Cost": 8.3, "Plan Rows": 1.0,
                    "Index Cond": "(id = 42)", "Shared Hit Blocks": 3, "Shared Read Blocks": 1
                }]
            },
            "Planning Time": 0.1, "Execution Time": 0.07
        }]);
        let text = render(&json);
        assert!(
            text.starts_with(
                "Nested Loop  (cost=0.29..16.60 rows=1) (actual time=0.020..0.050 rows=1 loops=1)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "  -> Index Scan using orders_pkey on public.orders  (cost=0.29..8.30 rows=1)"
            ),
            "{text}"
        );
        assert!(text.contains("Buffers: shared hit=3 read=1"), "{text}");
        assert!(text.contains("Index Cond: (id = 42)"), "{text}");
        assert!(text.ends_with("Execution time: 0.070 ms\n"), "{text}");
    }

    #[test]
    fn fractional_rows_per_loop_are_kept() {
        // As PostgreSQL 18 writes an inner side run ten times.
        let json: Value = serde_json::json!([{
            "Plan": {
                "Node Type": "Index Scan", "Relation Name": "t", "Startup Cost": 0.29,
                "Total Cost": 8.3, "Plan Rows": 1, "Actual Startup Time": 0.002,
                "Actual Total Time": 0.002, "Actual Rows": 0.10, "Actual Loops": 10
            }
        }]);
        let text = render(&json);
        assert!(text.contains("rows=0.10 loops=10)"), "{text}");
    }
}
