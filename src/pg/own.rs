//! The agent's own statements, recognised by what the agent sends.
//!
//! pg_stat_statements lists the agent's reads beside the application's;
//! they must be left out of the application's figures and counted as the
//! agent's own cost. Two tests that looked right are wrong:
//! - a `/* perfscope */` marker at the start of the text: any database
//!   user can type it and hide a statement from the agent;
//! - every statement of the agent's role: a host app whose timed pool and
//!   watched database share one role would see none of its own statements.
//!
//! So a statement is the agent's when its role is the agent's login role
//! *and* its text is one the agent sends: the SQL files under
//! `sql/queries/`, the fixed texts of `src/pg/`, and the prefixes of the
//! texts built at run time (EXPLAIN of a listed statement, maintenance of a
//! quoted table). Texts are compared by [`shape`] (perfscope's normalizer,
//! with parameters and constants alike written `?`), because
//! pg_stat_statements stores the agent's constants as `$n`. A role whose
//! every statement is the agent's (a separate planner role) is listed by
//! the operator instead. Where an app shares the agent's role and sends
//! a text of exactly the same shape (`BEGIN`, `COMMIT`, `SELECT 1`),
//! pg_stat_statements merges the two into one entry and it counts as the
//! agent's. The marker stays in the agent's SQL (it helps reading the
//! server log) but is never the test; a unit test checks that every text
//! of `src/` that carries it is recognised.
//!
//! One more kind is the agent's whoever ran it: a statement nested in a
//! helper function `sql/install.sql` creates (`perfscope.sequence_positions()`,
//! `SECURITY DEFINER`), which pg_stat_statements (with `track = all`)
//! records under the function's owner, often the app's own role. Only an
//! entry below top level whose text is such a body is taken: a user who
//! copies the body into a function of their own hides nothing but that
//! read of the catalog.

use std::collections::HashSet;
use std::sync::LazyLock;

use crate::db::statement::shape;

/// The agent's SQL files (those it sends to a watched database).
const SQL_FILES: &[&str] = &[
    include_str!("../../sql/queries/activity.sql"),
    include_str!("../../sql/queries/advisor_index_expressions.sql"),
    include_str!("../../sql/queries/advisor_indexes.sql"),
    include_str!("../../sql/queries/advisor_pattern.sql"),
    include_str!("../../sql/queries/advisor_roles.sql"),
    include_str!("../../sql/queries/advisor_stats.sql"),
    include_str!("../../sql/queries/advisor_table.sql"),
    include_str!("../../sql/queries/advisor_writes.sql"),
    include_str!("../../sql/queries/ash_sample.sql"),
    include_str!("../../sql/queries/connections.sql"),
    include_str!("../../sql/queries/database.sql"),
    include_str!("../../sql/queries/health_indexes.sql"),
    include_str!("../../sql/queries/health_sequence_helper.sql"),
    include_str!("../../sql/queries/health_sequences.sql"),
    include_str!("../../sql/queries/health_sequences_fallback.sql"),
    include_str!("../../sql/queries/health_tables.sql"),
    include_str!("../../sql/queries/impact_index_details.sql"),
    include_str!("../../sql/queries/impact_indexes.sql"),
    include_str!("../../sql/queries/io_16.sql"),
    include_str!("../../sql/queries/io_18.sql"),
    include_str!("../../sql/queries/io_settings.sql"),
    include_str!("../../sql/queries/keyset_unique.sql"),
    include_str!("../../sql/queries/maintenance_table.sql"),
    include_str!("../../sql/queries/planner_role.sql"),
    include_str!("../../sql/queries/planner_untrusted.sql"),
    include_str!("../../sql/queries/replication.sql"),
    include_str!("../../sql/queries/replication_slots.sql"),
    include_str!("../../sql/queries/self_check.sql"),
    include_str!("../../sql/queries/signal_backend.sql"),
    include_str!("../../sql/queries/space_indexes.sql"),
    include_str!("../../sql/queries/space_tables.sql"),
    include_str!("../../sql/queries/statement_texts.sql"),
    include_str!("../../sql/queries/statements_14.sql"),
    include_str!("../../sql/queries/statements_17.sql"),
    include_str!("../../sql/queries/statements_info.sql"),
    include_str!("../../sql/queries/vacuum_progress.sql"),
];

/// `sql/install.sql`, whose `perfscope.*` functions' bodies are the
/// agent's helper statements.
const INSTALL: &str = include_str!("../../sql/install.sql");

/// The shapes of the statements in the bodies of the `perfscope.*`
/// functions `install` creates (`CREATE FUNCTION perfscope.… AS $$ … $$`).
fn helper_bodies(install: &str) -> HashSet<String> {
    let mut bodies = HashSet::new();
    let mut rest = install;
    while let Some(start) = rest.find("CREATE FUNCTION perfscope.") {
        rest = &rest[start..];
        let Some(open) = rest.find("AS $$") else {
            break;
        };
        let body = &rest[open + "AS $$".len()..];
        let Some(close) = body.find("$$") else {
            break;
        };
        for piece in shape(&body[..close]).split(';') {
            let piece = piece.trim();
            if !piece.is_empty() {
                bodies.insert(piece.to_owned());
            }
        }
        rest = &body[close..];
    }
    bodies
}

/// The fixed texts the agent sends (values may differ: shapes compare),
/// including what the driver and the pool send for it.
const FIXED: &[&str] = &[
    // tokio-postgres' transactions and the pool's health check.
    "BEGIN",
    "START TRANSACTION",
    "START TRANSACTION READ ONLY",
    "COMMIT",
    "ROLLBACK",
    "SELECT 1",
    // src/pg/mod.rs
    "SELECT current_setting('server_version_num')::int",
    "SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = 1",
    // src/pg/readers/replication.rs, src/pg/actions/maintenance.rs
    "SELECT pg_is_in_recovery()",
    "SELECT pg_backend_pid()",
    // src/pg/readers/statements.rs: its database's oid, once.
    "SELECT oid::bigint FROM pg_database WHERE datname = current_database()",
    // src/pg/runner.rs: a read past its deadline stopped.
    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND usename = current_user",
    // src/pg/election.rs: a host app's replicas electing the reader.
    crate::pg::election::TRY_LOCK,
    // src/db/budget.rs: what each new connection of the agent reads.
    crate::db::budget::SESSION_SETUP,
    "SET lock_timeout = 1; SET statement_timeout = 1",
    "ANALYZE",
    "VACUUM (ANALYZE)",
    // src/pg/advisor/mod.rs
    "SAVEPOINT perfscope_advice",
    "RELEASE SAVEPOINT perfscope_advice",
    "ROLLBACK TO SAVEPOINT perfscope_advice",
    // What hypopg runs inside hypopg_create_index (listed with
    // pg_stat_statements.track = all).
    "SELECT max(oid) FROM pg_catalog.pg_class WHERE oid < $1",
    "SET LOCAL plan_cache_mode = force_generic_plan",
    "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')",
    // src/pg/planner/: sent as the planner role (whose statements are all
    // the agent's once it is listed), kept here so the source check holds.
    "BEGIN READ ONLY; SET LOCAL statement_timeout = 1; SET LOCAL lock_timeout = 1000",
    "SAVEPOINT perfscope_stats",
    "RELEASE SAVEPOINT perfscope_stats",
    "ROLLBACK TO SAVEPOINT perfscope_stats",
    "SAVEPOINT perfscope_plan",
    "RELEASE SAVEPOINT perfscope_plan",
    "ROLLBACK TO SAVEPOINT perfscope_plan",
    "SELECT pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hypopg'",
    "SELECT pg_catalog.set_config('search_path', 'pg_catalog, ' || pg_catalog.quote_ident($1) || ', public', true)",
    "SELECT \"public\".hypopg_reset()",
    "SELECT * FROM \"public\".hypopg_create_index($1)",
    "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND backend_start = $2 AND usename = current_user",
    // Planning with sampled parameter values (src/pg/planner/sampled.rs).
    "SELECT pg_catalog.current_setting('log_parameter_max_length'), COALESCE(pg_catalog.current_setting('auto_explain.log_min_duration', true), '-1')",
    "SET LOCAL plan_cache_mode = force_custom_plan; SET LOCAL log_parameter_max_length_on_error = 0; SET LOCAL debug_print_plan = off; SET LOCAL debug_print_parse = off; SET LOCAL debug_print_rewritten = off",
    // The EXPLAIN API's value quoting (in the planner session).
    "SELECT pg_catalog.string_agg(pg_catalog.quote_nullable(v), ', ' ORDER BY i) FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS t(v, i)",
];

/// The shapes' beginnings of the texts built at run time: EXPLAIN and
/// PREPARE of a listed statement under the agent's own statement names,
/// maintenance of a table quoted from the catalog.
const PREFIXES: &[&str] = &[
    "explain(format json) execute perfscope_",
    "explain(analyze, buffers, format json) execute perfscope_",
    // The planner's EXPLAIN with sampled values bound (planner role).
    "explain(costs, format json) ",
    "prepare perfscope_",
    "deallocate perfscope_",
    "analyze \"",
    "vacuum(analyze) \"",
    "reindex table concurrently \"",
];

/// The set of shapes the agent sends.
#[derive(Debug)]
pub struct AgentStatements {
    exact: HashSet<String>,
    prefixes: &'static [&'static str],
    helpers: HashSet<String>,
}

impl AgentStatements {
    fn build() -> Self {
        let mut exact = HashSet::new();
        for text in SQL_FILES.iter().chain(FIXED) {
            // A batch is stored by pg_stat_statements one statement at a
            // time; the agent's own texts have no `;` inside a literal.
            for piece in shape(text).split(';') {
                let piece = piece.trim();
                if !piece.is_empty() {
                    exact.insert(piece.to_owned());
                }
            }
        }
        Self {
            exact,
            prefixes: PREFIXES,
            helpers: helper_bodies(INSTALL),
        }
    }

    /// Whether `text` (as pg_stat_statements stores it) is a statement of
    /// one of the agent's helper functions: the agent's when its entry is
    /// nested (not top level), whatever role owns the function.
    pub fn is_helper_body(&self, text: &str) -> bool {
        let shaped = shape(text);
        self.helpers
            .contains(shaped.trim_end_matches(';').trim_end())
    }

    /// Whether `text` (as pg_stat_statements stores it) is one the agent
    /// sends.
    pub fn contains(&self, text: &str) -> bool {
        let shaped = shape(text);
        let shaped = shaped.trim_end_matches(';').trim_end();
        self.exact.contains(shaped) || self.prefixes.iter().any(|p| shaped.starts_with(p))
    }
}

/// The agent's statements, built once.
pub fn agent() -> &'static AgentStatements {
    static AGENT: LazyLock<AgentStatements> = LazyLock::new(AgentStatements::build);
    &AGENT
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_texts_are_recognised_whoever_replaced_their_values() {
        let agent = agent();
        // As pg_stat_statements stores them: constants as $n, comments
        // kept or not.
        for text in [
            "/* perfscope */ SET LOCAL statement_timeout = 5000",
            "SET LOCAL statement_timeout = 5000",
            "/* perfscope */ SET TRANSACTION READ ONLY",
            "SELECT /* perfscope */ current_setting($1)::int",
            "begin",
            "SELECT 1",
            "ANALYZE \"public\".\"Orders\"",
            "VACUUM (ANALYZE) \"public\".\"orders\"",
            "/* perfscope */ PREPARE perfscope_plan_3 AS SELECT * FROM t WHERE id = $1",
            "/* perfscope */ EXPLAIN (FORMAT JSON) EXECUTE perfscope_advice(NULL, NULL)",
            "/* perfscope */ EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) EXECUTE perfscope_plan_7($1)",
            "SET lock_timeout = 5000",
            "SELECT /* perfscope */ EXISTS (SELECT $1 FROM pg_extension WHERE extname = $2)",
            // advisor_table.sql as pg_stat_statements 18 stores it: lists
            // of constants and parameters squashed, ARRAY[…] too.
            "SELECT /* perfscope */ c.oid::bigint, n.nspname::text, c.relname::text,
                    CASE WHEN c.reltuples < $1 THEN pg_relation_size(c.oid) / $2
                         ELSE c.reltuples::bigint END AS row_estimate
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relname = $3::text AND c.relkind IN ($4 /*, ... */)
               AND CASE WHEN $5::text IS NOT NULL THEN n.nspname = $6::text
                        ELSE n.nspname = ANY (ARRAY[$7 /*, ... */]) END
             ORDER BY array_position(ARRAY[$8 /*, ... */], n.nspname::text) LIMIT $9",
        ] {
            assert!(agent.contains(text), "{text}");
        }
        for text in SQL_FILES {
            assert!(agent.contains(text), "{text}");
        }
    }

    #[test]
    fn the_helper_functions_bodies_are_known_as_stored() {
        let agent = agent();
        assert_eq!(helper_bodies(INSTALL).len(), 1);
        // As pg_stat_statements (track = all) stores the nested statement.
        assert!(agent.is_helper_body(
            "SELECT n.nspname::text, c.relname::text, pg_sequence_last_value(c.oid), s.seqmax,\n         s.seqmin, s.seqincrement, s.seqstart, s.seqcycle\n  FROM pg_sequence s\n  JOIN pg_class c ON c.oid = s.seqrelid\n  JOIN pg_namespace n ON n.oid = c.relnamespace\n  WHERE NOT pg_is_other_temp_schema(n.oid)"
        ));
        assert!(!agent.is_helper_body("SELECT n.nspname::text FROM pg_namespace n"));
        assert!(!agent.is_helper_body("SELECT pg_stat_statements_reset()"));
    }

    #[test]
    fn the_marker_is_not_the_test() {
        let agent = agent();
        for text in [
            "/* perfscope */ SELECT * FROM orders WHERE id = $1",
            "SELECT /* perfscope */ pg_sleep($1)",
            "/* perfscope */ DELETE FROM audit",
            "SELECT 2 + 2",
            "EXPLAIN SELECT 1",
            "ANALYZE orders",
            "SELECT pg_is_in_recovery(), 1",
        ] {
            assert!(!agent.contains(text), "{text}");
        }
    }

    /// Every string literal under `src/` that carries the marker (the
    /// texts the agent sends itself) is recognised, `format!` holes filled
    /// with what the code puts there: a new query cannot be forgotten.
    #[test]
    fn every_marked_text_in_the_source_is_recognised() {
        let holes: &[(&str, &str)] = &[
            ("{}", "5000"),
            ("{name}", "perfscope_explain_1"),
            ("{sql}", "SELECT * FROM t WHERE id = $1"),
            ("{options}", "FORMAT JSON"),
            ("{execute}", "EXECUTE perfscope_advice($1)"),
            ("{arguments}", "(NULL)"),
            ("{create}", "\"public\".hypopg_create_index($1)"),
            ("{reset}", "\"public\".hypopg_reset()"),
        ];
        let mut checked = 0;
        let mut stack = vec![std::path::PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/src"
        ))];
        while let Some(path) = stack.pop() {
            if path.is_dir() {
                for entry in std::fs::read_dir(&path).expect("src is readable") {
                    stack.push(entry.expect("an entry").path());
                }
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || path.ends_with("own.rs") {
                continue;
            }
            let source = std::fs::read_to_string(&path).expect("a source file");
            for literal in string_literals(&source) {
                if !literal.contains("/* perfscope */") {
                    continue;
                }
                let mut text = literal.replace("\\\"", "\"");
                for (hole, value) in holes {
                    text = text.replace(hole, value);
                }
                assert!(
                    !text.contains('{'),
                    "{}: fill the hole in {text:?} in this test",
                    path.display()
                );
                for piece in text.split(';').filter(|p| !p.trim().is_empty()) {
                    assert!(
                        agent().contains(piece),
                        "{}: {piece:?} is sent by the agent but not recognised as its own: add it to src/pg/own.rs",
                        path.display()
                    );
                }
                checked += 1;
            }
        }
        assert!(checked >= 15, "only {checked} marked texts found");
    }

    /// The contents of the `"…"` literals of a Rust source (not raw ones).
    fn string_literals(source: &str) -> Vec<String> {
        let mut literals = Vec::new();
        let mut chars = source.chars();
        while let Some(c) = chars.next() {
            if c == '/' {
                // Skip line comments, which may hold quotes.
                let rest = chars.as_str();
                if rest.starts_with('/') {
                    let skip = rest.find('\n').unwrap_or(rest.len());
                    chars = rest[skip..].chars();
                }
                continue;
            }
            if c == '\'' {
                // A char literal such as '"'.
                let rest = chars.as_str();
                if rest.len() >= 2 && rest.as_bytes()[1] == b'\'' {
                    chars = rest[2..].chars();
                } else if rest.starts_with('\\') && rest.len() >= 3 && rest.as_bytes()[2] == b'\'' {
                    chars = rest[3..].chars();
                }
                continue;
            }
            if c != '"' {
                continue;
            }
            let mut literal = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        // A line continuation: the newline and the next
                        // line's leading whitespace are not in the string.
                        Some('\n') => {
                            let rest = chars.as_str();
                            chars = rest.trim_start().chars();
                        }
                        Some(next) => {
                            literal.push('\\');
                            literal.push(next);
                        }
                        None => {}
                    },
                    '"' => break,
                    _ => literal.push(c),
                }
            }
            literals.push(literal);
        }
        literals
    }
}
