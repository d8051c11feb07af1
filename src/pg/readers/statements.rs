//! The pg_stat_statements reader: the watched database's statements, their
//! cumulative figures and the deltas since the previous pass.
//!
//! - SQL per version band (14–16, 17+; older servers are past end of life
//!   and refused with a clear message), from `sql/queries/`.
//! - Texts are not loaded on every pass (`pg_stat_statements(false)`); a
//!   queryid's text is fetched once, when it first appears, and normalized
//!   again by perfscope (pg_stat_statements keeps utility statements
//!   verbatim: `ALTER ROLE … PASSWORD '…'` arrives with the password).
//! - The agent's own statements are left out of the list and summed into
//!   [`StatementsSnapshot::own`], its cost to the database: those of its
//!   login role whose text is one the agent sends ([`crate::pg::own`]; never a
//!   marker a user can type, never every statement of a role a host app
//!   may share), every statement of the roles listed as the agent's
//!   own (e.g. its planner role), and the statements nested in the
//!   helper functions `sql/install.sql` creates, which run as the
//!   function's owner ([`crate::pg::own::AgentStatements::is_helper_body`]).
//! - Never a reset: the first pass reports the cumulative figures since the
//!   last stats reset, so a fresh agent shows existing slow queries at
//!   once; resets (a new `stats_reset`, or on 14–16 calls going down) and
//!   evictions (`dealloc`) are detected and reported. On 17+ an entry
//!   reset alone (a new `stats_since`) starts only its own window over.
//! - Windows are per entry (queryid, role, top level or nested), never per
//!   queryid alone: one statement run by two roles is two entries.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::db::TimedTransaction;
use crate::db::statement;
use crate::pg::ReadError;

const STATEMENTS_14: &str = include_str!("../../../sql/queries/statements_14.sql");
const STATEMENTS_17: &str = include_str!("../../../sql/queries/statements_17.sql");
const STATEMENT_TEXTS: &str = include_str!("../../../sql/queries/statement_texts.sql");
/// Statements read per pass at most (pg_stat_statements.max's default).
pub const DEFAULT_STATEMENT_LIMIT: i64 = 5_000;
/// Texts kept; past it the cache starts over (refetched as needed).
const TEXT_CACHE_CAPACITY: usize = 20_000;

/// The lowest server version read (`server_version_num`).
pub const MIN_SERVER_VERSION: i32 = 140_000;

/// The SQL for a server version, or why it is refused.
pub fn statements_sql(server_version_num: i32) -> Result<&'static str, ReadError> {
    match server_version_num {
        v if v < MIN_SERVER_VERSION => Err(ReadError::Unsupported(format!(
            "PostgreSQL {}.{} is past end of life; perfscope reads pg_stat_statements on 14 or later",
            v / 10_000,
            v % 10_000 / 100
        ))),
        v if v < 170_000 => Ok(STATEMENTS_14),
        _ => Ok(STATEMENTS_17),
    }
}

/// Cumulative (or windowed) figures of one statement.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Figures {
    /// Executions.
    pub calls: i64,
    /// Total execution time, ms.
    pub total_ms: f64,
    /// Rows returned or affected.
    pub rows: i64,
    /// Shared buffer hits.
    pub shared_hit: i64,
    /// Shared blocks read.
    pub shared_read: i64,
    /// Time in block I/O, ms (with track_io_timing).
    pub io_ms: f64,
    /// Temporary-file blocks written: sorts and hashes that spilled past
    /// `work_mem`.
    pub temp_written: i64,
}

impl Figures {
    /// `self - earlier`, counter by counter (negative where one went
    /// backwards: the caller decides what a reset means).
    pub fn minus(&self, earlier: &Figures) -> Figures {
        Figures {
            calls: self.calls - earlier.calls,
            total_ms: self.total_ms - earlier.total_ms,
            rows: self.rows - earlier.rows,
            shared_hit: self.shared_hit - earlier.shared_hit,
            shared_read: self.shared_read - earlier.shared_read,
            io_ms: self.io_ms - earlier.io_ms,
            temp_written: self.temp_written - earlier.temp_written,
        }
    }

    /// Mean time per call, ms.
    pub fn mean_ms(&self) -> f64 {
        if self.calls > 0 {
            self.total_ms / self.calls as f64
        } else {
            0.0
        }
    }

    /// Shared-buffer hit ratio, when any block was touched.
    pub fn hit_ratio(&self) -> Option<f64> {
        let total = self.shared_hit + self.shared_read;
        (total > 0).then(|| self.shared_hit as f64 / total as f64)
    }
}

/// One statement as the last pass saw it.
#[derive(Clone, Debug)]
pub struct StatementView {
    /// pg_stat_statements' id.
    pub queryid: i64,
    /// The text, normalized by perfscope (`None` until fetched).
    pub text: Option<Arc<str>>,
    /// pg_stat_statements' own text, kept in memory for SELECT, INSERT,
    /// UPDATE and DELETE only (whose constants the server already replaced
    /// with `$n`), for the index advisor's parser and EXPLAIN. Never
    /// served.
    pub raw: Option<Arc<str>>,
    /// Since the last stats reset.
    pub cumulative: Figures,
    /// The slowest execution since the last reset, ms.
    pub max_ms: f64,
    /// Since the previous pass (`None` on the first pass after start or a
    /// reset).
    pub window: Option<Figures>,
    /// The fingerprint of its text ([`statement::StatementInfo`]), which
    /// the timed pool's statements share (`None` until the text is
    /// fetched).
    pub fingerprint: Option<u64>,
    /// When the entry's own statistics started (`stats_since`, 17+).
    pub since: Option<SystemTime>,
    /// The route (or `controller#action`) of the sqlcommenter comment in
    /// the text pg_stat_statements kept: the first execution's, since the
    /// server keeps one text per statement (comments do not change its
    /// `queryid`).
    pub route_tag: Option<Arc<str>>,
}

/// What one pass read.
#[derive(Clone, Debug, Default)]
pub struct StatementsSnapshot {
    /// When it was read.
    pub at: Option<SystemTime>,
    /// When the previous pass read, where each `window` starts (`None` on
    /// the first pass after start or a reset).
    pub previous_at: Option<SystemTime>,
    /// Every statement of the database but the agent's, worst total first.
    pub statements: Vec<StatementView>,
    /// The agent's own statements, summed (cumulative since the last
    /// stats reset): its cost to the database.
    pub own: Figures,
    /// How many distinct statements of the agent that is.
    pub own_statements: usize,
    /// pg_stat_statements' evictions since its last reset (`dealloc`).
    pub evicted: i64,
    /// Its last reset.
    pub stats_reset: Option<SystemTime>,
    /// Resets detected since the agent started.
    pub resets_detected: u64,
}

/// One pg_stat_statements entry: a queryid, the role that ran it, and
/// whether at top level.
type EntryKey = (i64, i64, bool);

#[derive(Debug, Default)]
struct State {
    /// Each entry's figures and `stats_since` (17+) at the previous pass.
    previous: HashMap<EntryKey, (Figures, Option<SystemTime>)>,
    texts: HashMap<i64, Arc<str>>,
    raw: HashMap<i64, Arc<str>>,
    /// The route a sqlcommenter comment named in the text (another app's
    /// tags, read by [`crate::db::sqlcomment`]).
    routes: HashMap<i64, Arc<str>>,
    fingerprints: HashMap<i64, u64>,
    /// Queryids whose text is a statement of one of the agent's helper
    /// functions (its entries nested in them are the agent's).
    helper_texts: HashSet<i64>,
    /// When the previous pass read.
    last_at: Option<SystemTime>,
    /// Queryids whose text under the agent's login role is one the agent
    /// sends.
    agent_texts: HashSet<i64>,
    /// Queryids whose text under the agent's login role was examined.
    agent_checked: HashSet<i64>,
    stats_reset: Option<SystemTime>,
    resets_detected: u64,
}

/// The reader of one database's pg_stat_statements.
#[derive(Debug)]
pub struct StatementsReader {
    limit: i64,
    own_roles: Vec<String>,
    /// Its server's shared cluster-wide views, when it has company there.
    views: Option<Arc<super::shared::SharedRead<StatementsRead>>>,
    state: Mutex<State>,
    latest: crate::pg::Latest<StatementsSnapshot>,
}

impl Default for StatementsReader {
    fn default() -> Self {
        Self::new(DEFAULT_STATEMENT_LIMIT)
    }
}

impl StatementsReader {
    /// A reader reading at most `limit` statements per pass.
    pub fn new(limit: i64) -> Self {
        Self {
            limit,
            own_roles: Vec::new(),
            views: None,
            state: Mutex::default(),
            latest: crate::pg::Latest::default(),
        }
    }

    /// Takes its rows from `views`, shared with the readers of the other
    /// watched databases of the same server (see [`super::server`]).
    #[must_use]
    pub fn with_server_views(
        mut self,
        views: Arc<super::shared::SharedRead<StatementsRead>>,
    ) -> Self {
        self.views = Some(views);
        self
    }

    /// Also counts every statement of `roles` as the agent's own (a role
    /// only the agent logs in as, such as its planner role).
    #[must_use]
    pub fn with_own_roles(mut self, roles: Vec<String>) -> Self {
        self.own_roles = roles;
        self
    }

    /// The last successful pass (`None` until one succeeded).
    pub fn latest(&self) -> Option<Arc<StatementsSnapshot>> {
        self.latest.get()
    }

    async fn pass(&self, tx: &TimedTransaction<'_>) -> Result<(), ReadError> {
        // Read each pass: a database dropped and created again under the
        // same name has a new oid.
        let dbid: i64 = tx
            .query_one(
                "SELECT /* perfscope */ oid::bigint FROM pg_database WHERE datname = current_database()",
                &[],
            )
            .await?
            .try_get(0)?;
        // Every database's rows, read once per server and interval when
        // the readers share their server's views.
        let all = match &self.views {
            Some(views) => {
                views
                    .get(read_statements(tx, self.limit, &self.own_roles))
                    .await?
            }
            None => read_statements(tx, self.limit, &self.own_roles).await?,
        };
        let (evicted, stats_reset) = (all.evicted, all.stats_reset);

        // This database's entries.
        let mut read: Vec<StatementRow> = all
            .rows
            .iter()
            .filter(|row| row.dbid == dbid)
            .copied()
            .collect();

        let missing: Vec<i64> = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let mut missing: Vec<i64> = read
                .iter()
                .filter(|row| {
                    !row.own_role
                        && (!state.texts.contains_key(&row.queryid)
                            || (row.agent_role && !state.agent_checked.contains(&row.queryid)))
                })
                .map(|row| row.queryid)
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        let fetched = if missing.is_empty() {
            Vec::new()
        } else {
            tx.query(STATEMENT_TEXTS, &[&missing]).await?
        };

        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.texts.len() + fetched.len() > TEXT_CACHE_CAPACITY {
            state.texts.clear();
            state.raw.clear();
            state.fingerprints.clear();
            state.routes.clear();
            state.helper_texts.clear();
            state.agent_texts.clear();
            state.agent_checked.clear();
        }
        let agent = crate::pg::own::agent();
        // The agent's login role's texts come first: another role's text
        // of the same queryid replaces it for display.
        for row in &fetched {
            let queryid: i64 = row.try_get(0)?;
            let text: Option<String> = row.try_get(1)?;
            let text = text.unwrap_or_default();
            let agent_role: bool = row.try_get(2)?;
            if agent_role {
                // The text decides only for the agent's login role's entry
                // (below); another role's entry of the same queryid (the
                // statement the advisor explained, say) is listed.
                state.agent_checked.insert(queryid);
                if agent.contains(&text) {
                    state.agent_texts.insert(queryid);
                }
            }
            if agent.is_helper_body(&text) {
                state.helper_texts.insert(queryid);
            }
            let info = statement::parse(&text);
            state.fingerprints.insert(queryid, info.fingerprint);
            if let Some(route) = crate::db::sqlcomment::parse(&text)
                .tags()
                .and_then(|tags| tags.endpoint())
            {
                state.routes.insert(queryid, Arc::from(route));
            }
            if matches!(
                info.verb,
                statement::Verb::Select
                    | statement::Verb::Insert
                    | statement::Verb::Update
                    | statement::Verb::Delete
            ) {
                state.raw.insert(queryid, Arc::from(text.as_str()));
            }
            state.texts.insert(queryid, info.normalized);
        }
        let mut own = Figures::default();
        let mut own_statements = 0;
        read.retain(|row| {
            let is_own = row.own_role
                || (row.agent_role && state.agent_texts.contains(&row.queryid))
                || (!row.toplevel && state.helper_texts.contains(&row.queryid));
            let figures = &row.figures;
            if is_own {
                own.calls += figures.calls;
                own.total_ms += figures.total_ms;
                own.rows += figures.rows;
                own.shared_hit += figures.shared_hit;
                own.shared_read += figures.shared_read;
                own.io_ms += figures.io_ms;
                own.temp_written += figures.temp_written;
                own_statements += 1;
            }
            !is_own
        });

        // A reset of everything: pg_stat_statements_info says so, or (on
        // 14–16, whose entries carry no `stats_since`) calls went down.
        let reset = (state.stats_reset.is_some() && state.stats_reset != stats_reset)
            || read.iter().any(|row| {
                row.since.is_none()
                    && state
                        .previous
                        .get(&row.key())
                        .is_some_and(|(before, _)| row.figures.calls < before.calls)
            });
        if reset {
            state.resets_detected += 1;
            state.previous.clear();
            tracing::info!("pg_stat_statements was reset; windows start over");
        }
        state.stats_reset = stats_reset;

        // An entry reset alone since (17+: its `stats_since` moved) has no
        // window this pass, like a new one.
        let statements: Vec<StatementView> = read
            .iter()
            .map(|row| StatementView {
                queryid: row.queryid,
                text: state.texts.get(&row.queryid).cloned(),
                raw: state.raw.get(&row.queryid).cloned(),
                cumulative: row.figures,
                max_ms: row.max_ms,
                window: state
                    .previous
                    .get(&row.key())
                    .filter(|(_, since)| *since == row.since)
                    .map(|(before, _)| row.figures.minus(before)),
                fingerprint: state.fingerprints.get(&row.queryid).copied(),
                since: row.since,
                route_tag: state.routes.get(&row.queryid).cloned(),
            })
            .collect();
        state.previous = read
            .iter()
            .map(|row| (row.key(), (row.figures, row.since)))
            .collect();
        let at = SystemTime::now();
        let previous_at = if reset { None } else { state.last_at };
        state.last_at = Some(at);
        let snapshot = StatementsSnapshot {
            at: Some(at),
            previous_at,
            statements,
            own,
            own_statements,
            evicted,
            stats_reset,
            resets_detected: state.resets_detected,
        };
        drop(state);
        self.latest.set(snapshot);
        Ok(())
    }
}

const STATEMENTS_INFO: &str = include_str!("../../../sql/queries/statements_info.sql");

/// One pg_stat_statements entry.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StatementRow {
    /// Its database's oid.
    pub dbid: i64,
    /// pg_stat_statements' queryid.
    pub queryid: i64,
    /// Run by the agent's login role.
    pub agent_role: bool,
    /// Run by a role all of whose statements are the agent's.
    pub own_role: bool,
    /// Cumulative figures.
    pub figures: Figures,
    /// Slowest execution, ms.
    pub max_ms: f64,
    /// The role that ran it (its oid).
    pub userid: i64,
    /// Run at top level (not nested in a function).
    pub toplevel: bool,
    /// When the entry's own statistics started (`stats_since`, 17+).
    pub since: Option<SystemTime>,
}

impl StatementRow {
    fn key(&self) -> EntryKey {
        (self.queryid, self.userid, self.toplevel)
    }
}

/// What one read of pg_stat_statements saw, for every database.
#[derive(Clone, Debug)]
pub struct StatementsRead {
    /// Every entry, worst total time first.
    pub rows: Arc<[StatementRow]>,
    /// `pg_stat_statements_info.dealloc`.
    pub evicted: i64,
    /// `pg_stat_statements_info.stats_reset`.
    pub stats_reset: Option<SystemTime>,
}

/// Reads pg_stat_statements (every database) and its info on `tx`.
pub async fn read_statements(
    tx: &TimedTransaction<'_>,
    limit: i64,
    own_roles: &[String],
) -> Result<StatementsRead, ReadError> {
    let version = crate::pg::server_version(tx).await?;
    let sql = statements_sql(version)?;
    let rows = tx.query(sql, &[&limit, &own_roles]).await?;
    let info = tx.query_one(STATEMENTS_INFO, &[]).await?;
    let mut read = Vec::with_capacity(rows.len());
    for row in &rows {
        read.push(StatementRow {
            queryid: row.try_get(0)?,
            agent_role: row.try_get(1)?,
            own_role: row.try_get(2)?,
            figures: Figures {
                calls: row.try_get(3)?,
                total_ms: row.try_get(4)?,
                rows: row.try_get(6)?,
                shared_hit: row.try_get(7)?,
                shared_read: row.try_get(8)?,
                io_ms: row.try_get(9)?,
                temp_written: row.try_get(14)?,
            },
            max_ms: row.try_get(5)?,
            dbid: row.try_get(10)?,
            userid: row.try_get(11)?,
            toplevel: row.try_get(12)?,
            since: row.try_get(13)?,
        });
    }
    Ok(StatementsRead {
        rows: read.into(),
        evicted: info.try_get(0)?,
        stats_reset: info.try_get(1)?,
    })
}

crate::pg::impl_reader!(StatementsReader, "pg_stat_statements");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_is_chosen_by_version_band() {
        assert!(statements_sql(130_012).is_err());
        assert!(
            statements_sql(130_012)
                .unwrap_err()
                .to_string()
                .contains("13.0 is past end of life")
        );
        assert_eq!(statements_sql(140_000).ok(), Some(STATEMENTS_14));
        assert_eq!(statements_sql(160_004).ok(), Some(STATEMENTS_14));
        assert_eq!(statements_sql(170_000).ok(), Some(STATEMENTS_17));
        assert!(STATEMENTS_17.contains("shared_blk_read_time"));
        assert!(STATEMENTS_17.contains("s.stats_since"));
        assert!(STATEMENTS_14.contains("NULL::timestamptz AS stats_since"));
        assert!(STATEMENTS_14.contains("blk_read_time + s.blk_write_time"));
    }

    #[test]
    fn figures_arithmetic() {
        let now = Figures {
            calls: 10,
            total_ms: 100.0,
            rows: 20,
            shared_hit: 90,
            shared_read: 10,
            io_ms: 0.0,
            temp_written: 0,
        };
        let before = Figures {
            calls: 4,
            total_ms: 40.0,
            ..Default::default()
        };
        let window = now.minus(&before);
        assert_eq!(window.calls, 6);
        assert!((window.mean_ms() - 10.0).abs() < 1e-9);
        assert_eq!(now.hit_ratio(), Some(0.9));
        assert_eq!(Figures::default().hit_ratio(), None);
    }
}
