//! Planning statements that database users wrote, without lending them the
//! agent's privileges.
//!
//! The index advisor and EXPLAIN on request plan pg_stat_statements texts,
//! and planning is not inert: the planner folds IMMUTABLE functions with
//! constant arguments, calls operators' selectivity estimators, expands
//! views, column defaults and row-level security policies. A function that
//! falsely claims IMMUTABLE runs inside EXPLAIN, as whoever plans. So the
//! agent never plans on its own connections. What holds, together:
//!
//! - **A separate planner role** (`PERFSCOPE_PLANNER_USER`, created by
//!   `sql/install.sql`): it logs in itself (so `RESET ROLE` leads nowhere),
//!   is a member of no role (no `pg_monitor`, no `pg_signal_backend`),
//!   owns nothing, has no attribute beyond LOGIN and SELECT on the tables
//!   to advise on. Checked on every session before anything is planned
//!   ([`ROLE_CHECK`]); a planner that fails the check plans nothing.
//! - **A fresh connection per pass, never pooled**: whatever a statement
//!   leaves in a session (an advisory lock, a setting, a prepared
//!   statement) ends with the connection, which is closed after its one
//!   READ ONLY transaction, always rolled back.
//! - **Only statements of the roles the operator lists**
//!   (`PERFSCOPE_PLAN_ROLES`, matched on pg_stat_statements' `userid`),
//!   with `search_path` pinned to `pg_catalog, "<that role>", public`.
//! - **Only statements whose reachable code is trusted** ([`inventory`]
//!   reads every name and operator; `sql/queries/planner_untrusted.sql`
//!   looks them up, any overload, views through pg_depend): built-in,
//!   owned by a superuser or a role of `PERFSCOPE_TRUSTED_OWNERS`, or in an
//!   extension such a role owns.
//! - **Deadlines that stop the server too**: `statement_timeout`, a
//!   client-side deadline, then the query is cancelled and, after a short
//!   grace, its backend terminated from a second planner connection (a role
//!   may signal its own backends), and `client_connection_check_interval`
//!   ends a backend whose client went away. A function that catches
//!   `query_canceled` does not outlive it.
//!
//! Kept in one file of about 680 lines on purpose: everything the agent
//! runs as the planner role (the role check, the trust check, PREPARE,
//! EXPLAIN, the rollback and the backstop that ends a stuck backend) is
//! read in one place when auditing what users' statements can reach; the
//! lexer that feeds the trust check is apart in `inventory.rs`, and the
//! EXPLAIN with real parameter values bound (never written into SQL) in
//! `sampled.rs`.

pub mod inventory;
mod sampled;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::config::PlannerConfig;
use crate::db::budget::{BudgetPermit, ConnectionBudget, server_key};
use crate::db::connect::{ConnectOptions, Connector};
use crate::db::samples::Sample;

const UNTRUSTED: &str = include_str!("../../../sql/queries/planner_untrusted.sql");
/// Why the session's own role may not plan, or NULL: a superuser or a role
/// with other attributes, a member of any role, an owner of anything in
/// this database.
pub const ROLE_CHECK: &str = include_str!("../../../sql/queries/planner_role.sql");

/// How long a cancelled statement gets before its backend is terminated.
const TERMINATE_GRACE: Duration = Duration::from_secs(1);
/// How often the server checks that the planner's client is still there
/// (`client_connection_check_interval`, ms).
const CONNECTION_CHECK_MS: u64 = 1_000;

/// Why a statement was not planned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// No planner role is configured.
    #[error(
        "no planner role is configured (PERFSCOPE_PLANNER_USER); the agent's own role never plans"
    )]
    NotConfigured,
    /// The statement's role is not one the operator listed.
    #[error("the statement's role is not listed in PERFSCOPE_PLAN_ROLES")]
    RoleNotListed,
    /// The text is refused by the lexer.
    #[error(transparent)]
    Refused(#[from] inventory::Refused),
    /// It could reach code owned outside the trusted set.
    #[error("the statement could run code owned outside PERFSCOPE_TRUSTED_OWNERS: {0}")]
    Untrusted(String),
    /// The planner role is not safe to plan with.
    #[error("the planner role may not plan: {0}")]
    UnsafeRole(String),
    /// Postgres refused to plan it (privileges, syntax, …).
    #[error("{0}")]
    Failed(String),
    /// The statement, or the connection, outlived its deadline; its
    /// backend was cancelled and terminated.
    #[error("planning took longer than its deadline; the backend was stopped")]
    Timeout,
    /// No planner connection.
    #[error("the planner could not connect: {0}")]
    Unavailable(String),
    /// The advisor's pass has spent the time it has for planning.
    #[error("the pass has no time left to plan")]
    PassDeadline,
    /// A sample of real parameter values was not planned (its reason: the
    /// server types a parameter differently now, or it would log bound
    /// values); see [`Mode::Sampled`].
    #[error("the sampled values were not planned: {0}")]
    SampleRefused(&'static str),
}

impl PlanError {
    /// A short, stable reason for counts and labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotConfigured => "no_planner",
            Self::RoleNotListed => "role_not_listed",
            Self::Refused(inventory::Refused::TooLong) => "too_long",
            Self::Refused(inventory::Refused::TooManyParams) => "too_many_params",
            Self::Refused(inventory::Refused::Unsupported(_)) => "unsupported_text",
            Self::Untrusted(_) => "untrusted_code",
            Self::UnsafeRole(_) => "unsafe_planner_role",
            Self::Failed(_) => "plan_failed",
            Self::Timeout => "plan_timeout",
            Self::Unavailable(_) => "planner_unavailable",
            Self::PassDeadline => "pass_deadline",
            Self::SampleRefused(reason) => reason,
        }
    }
}

impl From<tokio_postgres::Error> for PlanError {
    fn from(error: tokio_postgres::Error) -> Self {
        if error.as_db_error().is_some() {
            Self::Failed(super::describe(&error))
        } else {
            Self::Unavailable(error.to_string())
        }
    }
}

/// How one watched database's statements are planned.
#[derive(Clone)]
pub struct Planner {
    config: tokio_postgres::Config,
    connector: Connector,
    roles: Arc<[String]>,
    trusted_owners: Arc<[String]>,
    agent_user: Option<String>,
    /// The agent's connection budget: a planner connection holds a permit
    /// like any other of the agent's.
    budget: Option<Arc<ConnectionBudget>>,
    /// The watched database's name (the budget's `database` label).
    database: Arc<str>,
    server: String,
}

impl std::fmt::Debug for Planner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("user", &self.config.get_user())
            .field("roles", &self.roles)
            .field("trusted_owners", &self.trusted_owners)
            .finish_non_exhaustive()
    }
}

/// A value for `-c` in the startup options (spaces and backslashes
/// escaped as libpq's `options` expects).
fn option_value(value: &str) -> String {
    value.replace('\\', "\\\\").replace(' ', "\\ ")
}

impl Planner {
    /// A planner for the database `url` names: same host, port, database
    /// and TLS, logged in as the planner role; its connections count
    /// against `budget` under the label `database`.
    pub fn new(
        url: &str,
        settings: &PlannerConfig,
        budget: Option<Arc<ConnectionBudget>>,
        database: Arc<str>,
    ) -> Result<Self, String> {
        let options = ConnectOptions::parse(url)?;
        let connector = options.connector()?;
        let base = &options.config;
        let mut config = tokio_postgres::Config::new();
        for host in base.get_hosts() {
            match host {
                tokio_postgres::config::Host::Tcp(name) => {
                    config.host(name);
                }
                #[cfg(unix)]
                tokio_postgres::config::Host::Unix(path) => {
                    config.host_path(path);
                }
            }
        }
        for port in base.get_ports() {
            config.port(*port);
        }
        if let Some(dbname) = base.get_dbname() {
            config.dbname(dbname);
        }
        config.ssl_mode(base.get_ssl_mode());
        config.connect_timeout(
            base.get_connect_timeout()
                .copied()
                .unwrap_or(Duration::from_secs(5)),
        );
        config.user(&settings.user);
        if let Some(password) = &settings.password {
            config.password(password.expose());
        }
        config.application_name("perfscope-planner");
        // The statement is lexed as if standard_conforming_strings were on
        // (the default a database owner could change): so it is.
        config.options(format!(
            "-c client_connection_check_interval={CONNECTION_CHECK_MS} -c idle_in_transaction_session_timeout=60000 -c standard_conforming_strings=on -c local_preload_libraries= -c search_path={}",
            option_value("pg_catalog")
        ));
        let server = server_key(&config);
        Ok(Self {
            roles: settings.roles.clone().into(),
            trusted_owners: settings.trusted_owners.clone().into(),
            agent_user: base.get_user().map(str::to_owned),
            config,
            connector,
            budget,
            database,
            server,
        })
    }

    /// The roles whose statements may be planned.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }

    /// The planner's login role.
    pub fn user(&self) -> Option<&str> {
        self.config.get_user()
    }

    /// Opens a session: connects as the planner role, checks the role,
    /// begins a READ ONLY transaction with `statement_timeout` = `timeout`.
    pub async fn session(&self, timeout: Duration) -> Result<Session, PlanError> {
        let deadline = timeout + Duration::from_secs(5);
        let opened = tokio::time::timeout(deadline, self.open(timeout)).await;
        match opened {
            Ok(result) => result,
            Err(_) => Err(PlanError::Timeout),
        }
    }

    /// A budget permit for one planner connection (none without a budget).
    async fn permit(&self, wait: Duration) -> Result<Option<BudgetPermit>, PlanError> {
        match &self.budget {
            None => Ok(None),
            // With one permit the planner would hold up every reader while
            // its own pass holds that permit: it only takes a free one.
            Some(budget) => budget
                .acquire_planner_within(
                    &self.server,
                    &self.database,
                    if budget.max() < 2 {
                        Duration::ZERO
                    } else {
                        wait
                    },
                )
                .await
                .map(Some)
                .map_err(|e| PlanError::Unavailable(e.to_string())),
        }
    }

    /// Connects within the budget (a refusal for too many connections makes
    /// the server back off).
    async fn connect(
        &self,
        wait: Duration,
    ) -> Result<(tokio_postgres::Client, Option<BudgetPermit>), PlanError> {
        let permit = self.permit(wait).await?;
        match self.connector.connect(&self.config).await {
            Ok(client) => {
                // Like every connection of the agent's: never one of the
                // server's last free slots.
                if let Some(budget) = &self.budget {
                    let (_, reading) = crate::db::budget::ServerReading::read(&client).await?;
                    budget
                        .observe(&self.server, &self.database, reading)
                        .map_err(|e| PlanError::Unavailable(e.to_string()))?;
                }
                Ok((client, permit))
            }
            Err(error) => {
                if let Some(budget) = &self.budget
                    && error.code() == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS)
                {
                    budget.refused(&self.server, &self.database);
                }
                Err(PlanError::Unavailable(super::describe(&error)))
            }
        }
    }

    async fn open(&self, timeout: Duration) -> Result<Session, PlanError> {
        let (client, permit) = self.connect(timeout).await?;
        let row = client.query_one(ROLE_CHECK, &[&self.agent_user]).await?;
        let pid: i32 = row.try_get(0)?;
        let unsafe_reason: Option<String> = row.try_get(1)?;
        let started: Option<std::time::SystemTime> = row.try_get(2)?;
        if let Some(reason) = unsafe_reason {
            return Err(PlanError::UnsafeRole(reason));
        }
        client
            .batch_execute(&format!(
                "/* perfscope */ BEGIN READ ONLY; SET LOCAL statement_timeout = {}; SET LOCAL lock_timeout = 1000",
                timeout.as_millis().max(1)
            ))
            .await?;
        Ok(Session {
            client: Some(client),
            permit,
            pid,
            started,
            planner: self.clone(),
            timeout,
            trusted: HashSet::new(),
        })
    }

    /// Stops backend `pid` of the planner role: a cancel now, then after
    /// [`TERMINATE_GRACE`] a `pg_terminate_backend` from a second planner
    /// connection (a function that catches `query_canceled` survives a
    /// cancel, never a terminate). Runs in the background, bounded by the
    /// connect timeout.
    fn stop_backend(
        &self,
        client: tokio_postgres::Client,
        permit: Option<BudgetPermit>,
        pid: i32,
        started: Option<std::time::SystemTime>,
    ) {
        let planner = self.clone();
        let token = client.cancel_token();
        tokio::spawn(async move {
            let _ = planner.connector.cancel(&token).await;
            // Closing the socket lets client_connection_check_interval end
            // it too; its permit goes to the connection that terminates it.
            drop(client);
            drop(permit);
            tokio::time::sleep(TERMINATE_GRACE).await;
            let Ok(Ok((killer, _permit))) = tokio::time::timeout(
                Duration::from_secs(10),
                planner.connect(Duration::from_secs(5)),
            )
            .await
            else {
                tracing::warn!(
                    pid,
                    "could not connect to terminate a planner backend; its closed socket ends it"
                );
                return;
            };
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                killer.execute(
                    "SELECT /* perfscope */ pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND backend_start = $2 AND usename = current_user",
                    &[&pid, &started],
                ),
            )
            .await;
        });
    }
}

/// A statement to plan.
#[derive(Clone, Copy, Debug)]
pub struct Statement<'a> {
    /// Its text, as pg_stat_statements keeps it.
    pub sql: &'a str,
    /// The role that ran it (its `search_path` is followed).
    pub role: &'a str,
}

/// One planner connection inside one READ ONLY transaction; closed (and
/// rolled back) when dropped or closed.
pub struct Session {
    client: Option<tokio_postgres::Client>,
    permit: Option<BudgetPermit>,
    pid: i32,
    /// Its backend's start: a terminate matches it, so a pid reused by
    /// another session is never signalled.
    started: Option<std::time::SystemTime>,
    planner: Planner,
    timeout: Duration,
    /// (statement, role) pairs this session found trusted and planned:
    /// the trust check is not run again for them in the same session (one
    /// advisor pass plans a statement up to a few times: generic, with a
    /// hypothetical index, a claim, samples). At most
    /// [`TRUSTED_PER_SESSION`].
    trusted: HashSet<(String, String)>,
}

/// Trust verdicts a session keeps, at most.
const TRUSTED_PER_SESSION: usize = 1_000;

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("pid", &self.pid).finish()
    }
}

/// What to plan.
#[derive(Clone, Copy, Debug)]
pub enum Mode<'a> {
    /// The generic plan.
    Generic,
    /// The generic plan with hypothetical indexes (hypopg) created first:
    /// each a `CREATE INDEX` statement.
    Hypothetical(&'a [String]),
    /// EXPLAIN (ANALYZE, BUFFERS) with these values, quoted by the server.
    Analyze(&'a [Option<String>]),
    /// The custom plan for real parameter values sampled by the host app's
    /// pool ([`crate::db::samples`]), with hypothetical indexes (hypopg)
    /// created first when `indexes` is not empty. The values are bound over
    /// the extended protocol, never written into a statement's text; see
    /// `planner/sampled.rs`.
    Sampled {
        /// The sampled values, bound as they were encoded.
        values: &'a Sample,
        /// The hypothetical indexes: each a `CREATE INDEX` statement.
        indexes: &'a [String],
    },
}

/// Pins `search_path` to `pg_catalog, "<the statement's role>", public`
/// for the rest of the transaction ($1: the role).
const SEARCH_PATH: &str = "SELECT /* perfscope */ pg_catalog.set_config('search_path', 'pg_catalog, ' || pg_catalog.quote_ident($1) || ', public', true)";

static PREPARED: AtomicU64 = AtomicU64::new(0);

impl Session {
    /// The backend's pid.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Plans `statement` (FORMAT JSON), in a savepoint of its own, after
    /// the trust check. On its deadline the backend is stopped and the
    /// session is spent (later calls answer [`PlanError::Timeout`]).
    pub async fn plan(
        &mut self,
        statement: Statement<'_>,
        mode: Mode<'_>,
    ) -> Result<Value, PlanError> {
        if !self.planner.roles.iter().any(|r| r == statement.role) {
            return Err(PlanError::RoleNotListed);
        }
        let found = inventory::read(statement.sql)?;
        let Some(client) = self.client.take() else {
            return Err(PlanError::Timeout);
        };
        let deadline = self.timeout + Duration::from_secs(2);
        let key = (statement.sql.to_owned(), statement.role.to_owned());
        let checked = self.trusted.contains(&key);
        let work = plan_in_savepoint(&client, &self.planner, statement, &found, mode, checked);
        match tokio::time::timeout(deadline, work).await {
            Ok(Ok(result)) => {
                self.client = Some(client);
                if result.is_ok() && !checked && self.trusted.len() < TRUSTED_PER_SESSION {
                    self.trusted.insert(key);
                }
                result
            }
            Ok(Err(broken)) => {
                // Its transaction may be aborted: never plan on it again.
                self.planner
                    .stop_backend(client, self.permit.take(), self.pid, self.started);
                Err(PlanError::Unavailable(format!(
                    "the planner session broke: {broken}"
                )))
            }
            Err(_) => {
                self.planner
                    .stop_backend(client, self.permit.take(), self.pid, self.started);
                Err(PlanError::Timeout)
            }
        }
    }

    /// Distinct values per column of a table from `pg_stats` as the
    /// planner role sees them (`sql` takes the schema and the table), in a
    /// savepoint of its own and under the session's deadline.
    pub async fn column_stats(
        &mut self,
        sql: &str,
        schema: &str,
        table: &str,
    ) -> Result<Vec<(String, f64)>, PlanError> {
        let Some(client) = self.client.take() else {
            return Err(PlanError::Timeout);
        };
        let work = async {
            client
                .batch_execute("/* perfscope */ SAVEPOINT perfscope_stats")
                .await?;
            let rows = client.query(sql, &[&schema, &table]).await;
            let end = if rows.is_ok() {
                "/* perfscope */ RELEASE SAVEPOINT perfscope_stats"
            } else {
                "/* perfscope */ ROLLBACK TO SAVEPOINT perfscope_stats"
            };
            client.batch_execute(end).await?;
            let mut out = Vec::new();
            for row in rows? {
                out.push((row.try_get(0)?, row.try_get(1)?));
            }
            Ok(out)
        };
        match tokio::time::timeout(self.timeout + Duration::from_secs(2), work).await {
            Ok(result) => {
                self.client = Some(client);
                result
            }
            Err(_) => {
                self.planner
                    .stop_backend(client, self.permit.take(), self.pid, self.started);
                Err(PlanError::Timeout)
            }
        }
    }

    /// Rolls back and closes the connection.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(2),
                client.batch_execute("/* perfscope */ ROLLBACK"),
            )
            .await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A session dropped before `close` (its caller went away, perhaps
        // mid-statement) is stopped like one past its deadline; outside a
        // runtime its socket just closes (client_connection_check_interval
        // ends the backend).
        if let Some(client) = self.client.take()
            && !client.is_closed()
            && tokio::runtime::Handle::try_current().is_ok()
        {
            self.planner
                .stop_backend(client, self.permit.take(), self.pid, self.started);
        }
    }
}

/// Operators SQL keywords imply (BETWEEN, IN, CASE, NULLIF, IS DISTINCT
/// FROM, LIKE, SIMILAR TO…) without writing them: always looked up.
const IMPLIED_OPERATORS: &[&str] = &[
    "=", "<>", "<", ">", "<=", ">=", "~~", "~~*", "!~~", "!~~*", "~", "~*", "!~", "!~*",
];

/// The schema-qualified call of a hypopg function, from its extension's
/// schema (never through the statement's search_path, where a function of
/// the same name could come first).
async fn hypopg_call(
    client: &tokio_postgres::Client,
    call: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    client
        .query_opt(
            "SELECT /* perfscope */ pg_catalog.quote_ident(n.nspname) FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hypopg'",
            &[],
        )
        .await?
        .map(|row| row.try_get::<_, String>(0))
        .transpose()
        .map(|schema| schema.map(|schema| format!("{schema}.{call}")))
}

/// Plans one statement in a savepoint. The outer error means the session
/// itself is broken (its cleanup failed, so its transaction may be
/// aborted): the caller closes it. The inner result is the statement's.
async fn plan_in_savepoint(
    client: &tokio_postgres::Client,
    planner: &Planner,
    statement: Statement<'_>,
    found: &inventory::Inventory,
    mode: Mode<'_>,
    checked: bool,
) -> Result<Result<Value, PlanError>, PlanError> {
    let names: Vec<&str> = found.names.iter().map(String::as_str).collect();
    let operators: Vec<&str> = found
        .operators
        .iter()
        .map(String::as_str)
        .chain(IMPLIED_OPERATORS.iter().copied())
        .collect();
    let owners: Vec<&str> = planner.trusted_owners.iter().map(String::as_str).collect();
    client
        .batch_execute("/* perfscope */ SAVEPOINT perfscope_plan")
        .await?;
    let name = format!(
        "perfscope_plan_{}",
        PREPARED.fetch_add(1, Ordering::Relaxed)
    );
    let mut prepared = false;
    let result = async {
        // Checked once per session and statement: what it reaches is read
        // afresh by each session (a pass), and the planner role, not this
        // check, is the boundary (see SECURITY.md).
        if !checked {
            let untrusted: Vec<String> = client
                .query(UNTRUSTED, &[&names, &operators, &owners])
                .await?
                .iter()
                .filter_map(|row| row.try_get(0).ok())
                .collect();
            if !untrusted.is_empty() {
                return Err(PlanError::Untrusted(untrusted.join(", ")));
            }
        }
        explain(client, statement, found.params, mode, &name, &mut prepared).await
    }
    .await;
    client
        .batch_execute("/* perfscope */ ROLLBACK TO SAVEPOINT perfscope_plan")
        .await?;
    // Hypothetical indexes and prepared statements outlive a savepoint.
    let hypothetical = match mode {
        Mode::Hypothetical(_) => true,
        Mode::Sampled { indexes, .. } => !indexes.is_empty(),
        _ => false,
    };
    if hypothetical && let Some(reset) = hypopg_call(client, "hypopg_reset()").await? {
        client
            .batch_execute(&format!("/* perfscope */ SELECT {reset}"))
            .await?;
    }
    if prepared {
        client
            .batch_execute(&format!("/* perfscope */ DEALLOCATE {name}"))
            .await?;
    }
    client
        .batch_execute("/* perfscope */ RELEASE SAVEPOINT perfscope_plan")
        .await?;
    Ok(result)
}

/// EXPLAINs the statement. Everything the agent itself calls runs before
/// the statement's `search_path` is set, schema-qualified, so no function
/// of a user can stand in for it; the statement's text reaches the server
/// only over the extended protocol, which refuses a second command.
async fn explain(
    client: &tokio_postgres::Client,
    statement: Statement<'_>,
    params: usize,
    mode: Mode<'_>,
    name: &str,
    prepared: &mut bool,
) -> Result<Value, PlanError> {
    let hypothetical = match mode {
        Mode::Hypothetical(indexes) | Mode::Sampled { indexes, .. } => indexes,
        _ => &[],
    };
    if !hypothetical.is_empty() {
        let Some(create) = hypopg_call(client, "hypopg_create_index($1)").await? else {
            return Err(PlanError::Failed("hypopg is not installed".into()));
        };
        for index in hypothetical {
            client
                .query(
                    format!("/* perfscope */ SELECT * FROM {create}").as_str(),
                    &[index],
                )
                .await?;
        }
    }
    if let Mode::Sampled { values, .. } = mode {
        return sampled::explain(client, statement, params, values).await;
    }
    let analyze = match mode {
        Mode::Analyze(values) => Some(values),
        _ => None,
    };
    let arguments = match analyze {
        Some(values) if params > 0 => {
            let values: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
            let row = client
                .query_one(
                    "/* perfscope */ SELECT pg_catalog.string_agg(pg_catalog.quote_nullable(v), ', ' ORDER BY i) FROM pg_catalog.unnest($1::pg_catalog.text[]) WITH ORDINALITY AS t(v, i)",
                    &[&values],
                )
                .await?;
            let quoted: String = row.try_get(0)?;
            format!("({quoted})")
        }
        _ if params > 0 => format!("({})", vec!["NULL"; params].join(", ")),
        _ => String::new(),
    };
    if analyze.is_none() {
        client
            .batch_execute("/* perfscope */ SET LOCAL plan_cache_mode = force_generic_plan")
            .await?;
    }
    client.execute(SEARCH_PATH, &[&statement.role]).await?;
    // A prepared statement under force_generic_plan on every version
    // (EXPLAIN (GENERIC_PLAN) of PostgreSQL 16 refuses `$n` sent over the
    // extended protocol, which the statement text must use).
    let sql = statement.sql;
    client
        .execute(
            format!("/* perfscope */ PREPARE {name} AS {sql}").as_str(),
            &[],
        )
        .await?;
    *prepared = true;
    let options = if analyze.is_some() {
        "ANALYZE, BUFFERS, FORMAT JSON"
    } else {
        "FORMAT JSON"
    };
    let row = client
        .query_one(
            format!("/* perfscope */ EXPLAIN ({options}) EXECUTE {name}{arguments}").as_str(),
            &[],
        )
        .await?;
    Ok(row.try_get(0)?)
}
