//! What the advisor publishes: its suggestions ([`IndexSuggestion`]), the
//! top statements it gives none for and why ([`NotAdvised`]), and a pass's
//! whole [`Advice`] (with what the stats read off the plans). Apart from
//! the pass so the API's shapes, and their redaction for callers without
//! the admin token, read in one place.

use std::collections::{BTreeMap, HashMap};

/// One suggested index.
#[derive(Clone, Debug, Default, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct IndexSuggestion {
    /// The watched database.
    pub database: String,
    /// `schema.table` (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub table: Option<String>,
    /// The index's columns, in order; an expression's element is its SQL,
    /// `lower("email")` (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub columns: Option<Vec<String>>,
    /// The ready statement (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub create_statement: Option<String>,
    /// The other indexes planned with this one, whose ready statements
    /// they are: the branches of an `OR` are served only together, by an
    /// index each (a BitmapOr), so create them all (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub together: Option<Vec<String>>,
    /// The normalized statements it helps (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub helps: Option<Vec<String>>,
    /// Their queryids.
    pub queryids: Vec<String>,
    /// Their calls.
    pub calls: u64,
    /// Their total time, ms.
    pub total_ms: f64,
    /// The planner's cost of the statement without the index (hypopg).
    #[oai(skip_serializing_if_is_none)]
    pub cost_before: Option<f64>,
    /// With the hypothetical index (hypopg).
    #[oai(skip_serializing_if_is_none)]
    pub cost_after: Option<f64>,
    /// `1 - after / before`, when confirmed by hypopg.
    #[oai(skip_serializing_if_is_none)]
    pub estimated_saving: Option<f64>,
    /// `hypopg` (a hypothetical index was planned) or `statistics` (hypopg
    /// is not installed).
    pub confirmed_by: String,
    /// What the statement was planned with: `generic` (its generic plan,
    /// the parameters unknown, as pg_stat_statements keeps it; always so in
    /// the agent alone) or `sampled_values` (custom plans for real values
    /// the host app's pool sampled in this process, where the generic plan
    /// showed no saving: the costs are those of the value helped most).
    pub planned_with: String,
    /// With `sampled_values`: how many of the planned samples the index
    /// helps (by at least 10 %), e.g. 1 of `sampledValuesPlanned`.
    #[oai(skip_serializing_if_is_none)]
    pub sampled_values_helped: Option<u32>,
    /// With `sampled_values`: how many samples were planned.
    #[oai(skip_serializing_if_is_none)]
    pub sampled_values_planned: Option<u32>,
    /// How many top statements it serves (its own candidates', and those
    /// whose candidate is a prefix of it, confirmed by hypopg).
    pub serves_statements: u32,
    /// The planner cost per second it saves those statements: calls per
    /// second × cost saved per call (hypopg's before − after, or from
    /// statistics the table's sequential read).
    pub read_saving_per_second: f64,
    /// The planner cost per second its index entries add to the table's
    /// writes (inserts, deletes, non-HOT updates, and the HOT updates it
    /// would make non-HOT), see the README's Index advice.
    pub write_cost_per_second: f64,
    /// The drops that go with it: `DROP INDEX CONCURRENTLY` of the
    /// table's unused and redundant indexes the health checks found (admin
    /// only; on the table's first suggestion).
    #[oai(skip_serializing_if_is_none)]
    pub drop_with: Option<Vec<String>>,
    /// How many drops go with it (`dropWith`'s length).
    pub drops: u32,
}

impl IndexSuggestion {
    /// A copy without table, column and statement names, for callers
    /// without the admin token.
    pub fn redacted(&self) -> Self {
        Self {
            table: None,
            columns: None,
            create_statement: None,
            together: None,
            helps: None,
            drop_with: None,
            ..self.clone()
        }
    }
}

/// A top statement the advisor made no suggestion for, and why.
#[derive(Clone, Debug, PartialEq, poem_openapi::Object)]
#[oai(rename_all = "camelCase")]
pub struct NotAdvised {
    /// The watched database.
    pub database: String,
    /// The statement's queryid.
    pub queryid: String,
    /// Why: `unparsable`, `unsupported` (not a plain SELECT, UPDATE or
    /// DELETE), `no_candidate` (no column, nor a call or cast of one
    /// column, compared with a value), `table_not_found`, `small_table`
    /// (under 10,000 rows), `low_selectivity`, `already_indexed`,
    /// `expression_unconfirmed` (an expression index is suggested only
    /// once hypopg planned it: the server then checked it can hold it),
    /// `pattern_unconfirmed` (a column compared with `LIKE $1`: a pattern
    /// index, in `createStatement`, serves prefix values, but a generic
    /// plan cannot show it), `pattern_trigram_only` (`LIKE '%…'`: only a
    /// trigram index, pg_trgm, would serve),
    /// `no_saving` (hypopg: the index would not lower the plan's cost by
    /// 10 %), `write_cost` (its index would cost the table's writes more
    /// than it saves the reads), `catalog_error`.
    pub reason: String,
    /// The normalized statement (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub statement: Option<String>,
    /// The tables it filters, as written (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub tables: Option<Vec<String>>,
    /// Its calls.
    pub calls: u64,
    /// Its total time, ms.
    pub total_ms: f64,
    /// For `pattern_unconfirmed`: the pattern index that would serve
    /// prefix values, unconfirmed (admin only).
    #[oai(skip_serializing_if_is_none)]
    pub create_statement: Option<String>,
}

impl NotAdvised {
    /// A copy without the statement and table names, for callers without
    /// the admin token.
    pub fn redacted(&self) -> Self {
        Self {
            statement: None,
            tables: None,
            create_statement: None,
            ..self.clone()
        }
    }
}

/// What the advisor saw on its last pass.
#[derive(Clone, Debug, Default)]
pub struct Advice {
    /// The suggestions, largest saving (or total time) first.
    pub suggestions: Vec<IndexSuggestion>,
    /// Statements the parser rejected.
    pub unparsable: u64,
    /// Statements (or plans) not advised on, by reason: those of
    /// [`NotAdvised::reason`] and, for plans, `no_planner`,
    /// `role_not_listed`, `untrusted_code`, `plan_failed`, `plan_timeout`,
    /// `sample_types_differ`, `sample_would_be_logged` (a sampled value's
    /// plan, see `sampled.rs`),
    /// … (see `PlanError::reason`).
    pub skipped: BTreeMap<&'static str, u64>,
    /// The considered statements that got no suggestion, each with the
    /// reason, in the order considered (the worst by total time first).
    pub not_advised: Vec<NotAdvised>,
    /// Whether hypopg was available.
    pub hypopg: bool,
    /// For each statement (by queryid) whose generic plan scans a table of
    /// at least [`super::MIN_ROWS`] rows sequentially: `(schema.table, rows)`.
    pub seq_scans: HashMap<i64, Vec<(String, i64)>>,
    /// For each statement (by queryid) whose generic plan joins in a
    /// nested loop at least [`super::NESTED_LOOP_ROWS`] row pairs with no index on
    /// the inner side: the largest one's `(outer rows, inner rows)`.
    pub nested_loops: HashMap<i64, (f64, f64)>,
}
