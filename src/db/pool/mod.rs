//! [`TimedPool`]: a deadpool-postgres pool whose clients time every
//! statement.
//!
//! deadpool and tokio-postgres have no per-query hook and their client
//! traits are sealed, so the wrapper is ours: [`TimedClient`] and
//! [`TimedTransaction`] offer `query`, `query_one`, `query_opt`, `execute`,
//! `batch_execute` and `prepare`, each timed into
//! `db_query_duration_seconds{operation, model}`, failures into
//! `db_query_errors_total`, slow ones into the slow log and every one into
//! the current request's context. `named("findMany")` overrides the
//! `operation` label; `raw()` is the escape hatch to the driver's client.
//!
//! Wait, create and recycle timeouts are always set, so a black-holed
//! database cannot hang a caller; `DATABASE_POOL_MIN` connections are opened
//! at start-up to warm the pool (deadpool has no minimum of its own).
//!
//! A pool given a [`ConnectionBudget`] (the agent's own pools, never the
//! host app's) is transient instead: each connection takes a permit before
//! it is opened, reads the server's free slots on opening (see
//! [`super::budget::SESSION_SETUP`]) and is closed when released, so the
//! agent holds no idle connection between passes. A connection whose
//! statement outlived its deadline is [`TimedClient::discard`]ed, never
//! recycled: it may still be busy on the server.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime, Timeouts};
use parking_lot::RwLock;
use rustc_hash::FxBuildHasher;
use tokio_postgres::ToStatement;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};
use tokio_util::sync::CancellationToken;

use super::budget::{BudgetError, BudgetPermit, ConnectionBudget, ServerReading};
use super::connect::{ConnectOptions, Connector};
use super::insights::DbInsights;
use super::statement::{self, StatementInfo};
use crate::failure_log::{FailureLog, Report};
use crate::metrics::AtomicHistogram;
use crate::metrics::db::{ErrorKind, PoolLabels, PoolStateLabels, PoolTimeoutLabels};
use crate::telemetry::EXPORTERS;
use crate::trace::{SpanEnd, SpanExporter};

/// How long a caller waits for a free connection.
pub const DEFAULT_WAIT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long opening a connection may take.
pub const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long checking a returned connection may take.
pub const DEFAULT_RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the pool's gauges and health are refreshed.
pub const STATUS_INTERVAL: Duration = Duration::from_secs(1);
/// Distinct statement texts whose analysis is cached; past it the cache
/// starts over (applications have a bounded set of statements; a
/// pathological one that builds texts with values inside stays bounded).
pub const STATEMENT_CACHE_CAPACITY: usize = 4_096;

/// Why a pool operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The connection string is not valid.
    #[error("invalid database URL: {0}")]
    Config(String),
    /// No connection could be had (timeout, closed pool, backend error);
    /// shown with Postgres' own reason (message and SQLSTATE).
    #[error("database pool: {}", super::error_text::pool(.0))]
    Pool(#[from] PoolError),
    /// A statement failed; shown as the server's message and SQLSTATE.
    #[error("{}", super::error_text::postgres(.0))]
    Query(#[from] tokio_postgres::Error),
    /// A table or column name is not a valid identifier, does not exist,
    /// or (for keyset pagination) does not order rows uniquely.
    #[error("{0}")]
    Invalid(String),
    /// The agent's connection budget held the connection back.
    #[error(transparent)]
    Budget(#[from] BudgetError),
}

impl DbError {
    /// Whether the server refused the connection with SQLSTATE 53300
    /// (too many connections).
    pub fn is_too_many_connections(&self) -> bool {
        let code = match self {
            Self::Pool(PoolError::Backend(error)) | Self::Query(error) => error.code(),
            _ => None,
        };
        code == Some(&tokio_postgres::error::SqlState::TOO_MANY_CONNECTIONS)
    }
}

/// A statement's analysis and its duration series, cached per text.
#[derive(Debug)]
#[doc(hidden)]
pub struct CachedStatement {
    info: Arc<StatementInfo>,
    series: AtomicHistogram,
}

/// What the pool and its clients share.
#[derive(Debug)]
pub(super) struct Shared {
    name: Arc<str>,
    insights: Arc<DbInsights>,
    /// By text; FxHash, as the texts are the application's own.
    statements: RwLock<HashMap<Box<str>, Arc<CachedStatement>, FxBuildHasher>>,
    wait_series: AtomicHistogram,
    /// Cancels a connection's running statement.
    connector: Connector,
    /// `host:port`, the budget's key.
    server: String,
    /// `role@host:port`: the databases whose cluster-wide views read alike.
    views_key: String,
    /// The agent's budget; `None` for a host app's pool.
    budget: Option<Arc<ConnectionBudget>>,
    /// The last connection attempt: 0 none yet, 1 opened, 2 failed.
    last_connect: AtomicU8,
    /// Connection requests so far (the health probe skips a ping when
    /// some were made since the last).
    attempts: AtomicU64,
}

impl Shared {
    pub(super) fn statement(&self, sql: &str) -> Arc<CachedStatement> {
        if let Some(info) = self.statements.read().get(sql) {
            return info.clone();
        }
        let info = Arc::new(statement::parse(sql));
        let info = Arc::new(CachedStatement {
            series: self.insights.duration_series(&info),
            info,
        });
        let mut cache = self.statements.write();
        if cache.len() >= STATEMENT_CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(sql.into(), info.clone());
        info
    }

    fn wait_timeouts(&self) -> u64 {
        self.insights
            .metrics
            .pool_timeouts
            .get_or_create(&PoolTimeoutLabels {
                pool: self.name.clone(),
                kind: "wait",
            })
            .get()
    }

    fn pool_labels(&self) -> PoolLabels {
        PoolLabels {
            pool: self.name.clone(),
        }
    }

    fn count_timeout(&self, error: &PoolError) {
        let kind = match error {
            PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) => "wait",
            PoolError::Timeout(deadpool_postgres::TimeoutType::Create) => "create",
            PoolError::Timeout(deadpool_postgres::TimeoutType::Recycle) => "recycle",
            _ => return,
        };
        self.insights
            .metrics
            .pool_timeouts
            .get_or_create(&PoolTimeoutLabels {
                pool: self.name.clone(),
                kind,
            })
            .inc();
    }
}

/// A pool of timed Postgres connections; cheap to clone.
#[derive(Clone, Debug)]
pub struct TimedPool {
    pool: Pool,
    shared: Arc<Shared>,
    /// How long `get` waits for a budget permit.
    wait_timeout: Duration,
}

/// Settings of a [`TimedPool`].
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// The pool's name, its `pool` label (`default` for `DATABASE_URL`).
    pub name: String,
    /// Connections opened at start-up.
    pub min: u32,
    /// Pool size.
    pub max: u32,
    /// Waiting for a free connection.
    pub wait_timeout: Duration,
    /// Opening a connection.
    pub create_timeout: Duration,
    /// Checking a returned connection.
    pub recycle_timeout: Duration,
    /// The agent's connection budget: the pool becomes transient (see the
    /// module docs). `None` (the default) for a host app's own pool.
    pub budget: Option<Arc<ConnectionBudget>>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            name: "default".into(),
            min: crate::config::DEFAULT_POOL_MIN,
            max: crate::config::DEFAULT_POOL_MAX,
            wait_timeout: DEFAULT_WAIT_TIMEOUT,
            create_timeout: DEFAULT_CREATE_TIMEOUT,
            recycle_timeout: DEFAULT_RECYCLE_TIMEOUT,
            budget: None,
        }
    }
}

impl TimedPool {
    /// Builds the pool for `url` and opens `settings.min` connections. A
    /// database that is down at start-up is not fatal: the warm-up failure
    /// is logged and connections are opened on demand later.
    pub async fn connect(
        insights: Arc<DbInsights>,
        url: &str,
        settings: PoolSettings,
    ) -> Result<Self, DbError> {
        let options = ConnectOptions::parse(url).map_err(DbError::Config)?;
        let connector = options.connector().map_err(DbError::Config)?;
        let mut pg_config = options.config;
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(settings.create_timeout);
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("perfscope");
        }
        if settings.budget.is_some() {
            // The agent's own connections resolve names in pg_catalog first,
            // then public (where sql/install.sql creates the extensions),
            // whatever a database owner sets for the database or the role:
            // no schema named after the agent's role ("$user") and no
            // ALTER DATABASE … SET search_path can put a function or view
            // of theirs in front of the agent's queries.
            let options = pg_config.get_options().unwrap_or("").to_owned();
            pg_config.options(format!("{options} -c search_path=pg_catalog,public").trim());
        }
        let server = super::budget::server_key(&pg_config);
        let views_key = format!("{}@{server}", pg_config.get_user().unwrap_or(""));
        let manager = connector.clone().manager(
            pg_config,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(settings.max.max(1) as usize)
            .runtime(Runtime::Tokio1)
            .timeouts(Timeouts {
                wait: Some(settings.wait_timeout),
                create: Some(settings.create_timeout),
                recycle: Some(settings.recycle_timeout),
            })
            .build()
            .map_err(|e| DbError::Config(e.to_string()))?;
        let name: Arc<str> = settings.name.into();
        let wait_series = insights
            .metrics
            .pool_wait
            .get_or_create(&PoolLabels { pool: name.clone() })
            .clone();
        let timed = Self {
            pool,
            wait_timeout: settings.wait_timeout,
            shared: Arc::new(Shared {
                name,
                insights,
                statements: RwLock::default(),
                wait_series,
                connector,
                server,
                views_key,
                budget: settings.budget,
                last_connect: AtomicU8::new(0),
                attempts: AtomicU64::new(0),
            }),
        };
        {
            let pool = timed.pool.weak();
            let shared = Arc::downgrade(&timed.shared);
            timed
                .shared
                .insights
                .register_pool(super::insights::PoolProbe::new(move || {
                    // A dropped pool reads as nothing.
                    let (pool, shared) = (pool.upgrade()?, shared.upgrade()?);
                    let status = pool.status();
                    Some(crate::alerts::PoolReading {
                        name: shared.name.clone(),
                        size: status.size,
                        max: status.max_size,
                        idle: status.available,
                        waiting: status.waiting,
                        wait_timeouts: shared.wait_timeouts(),
                    })
                }));
        }
        timed.refresh_status();
        if timed.shared.budget.is_none() {
            timed.warm(settings.min).await;
        }
        Ok(timed)
    }

    /// Opens up to `min` connections at once and returns them to the pool.
    async fn warm(&self, min: u32) {
        let mut held = Vec::new();
        for _ in 0..min.min(self.pool.status().max_size as u32) {
            match self.pool.get().await {
                Ok(client) => held.push(client),
                Err(error) => {
                    let error = super::error_text::pool(&error);
                    tracing::warn!(pool = %self.shared.name, %error, "could not warm the pool; connecting on demand");
                    break;
                }
            }
        }
        drop(held);
        self.refresh_status();
    }

    /// A connection, timed into `db_pool_wait_duration_seconds`. From a
    /// budgeted pool it is a new one, opened within the budget (or
    /// [`DbError::Budget`] says why not).
    pub async fn get(&self) -> Result<TimedClient, DbError> {
        self.get_within(self.wait_timeout).await
    }

    /// [`TimedPool::get`], waiting at most `wait` for a budget permit
    /// (the readers wait their turn however long it takes: the permits are
    /// handed out in order, so every database is read in turn even when
    /// a round takes longer than the read interval).
    pub async fn get_within(&self, wait: Duration) -> Result<TimedClient, DbError> {
        let started = Instant::now();
        self.shared.attempts.fetch_add(1, Ordering::Relaxed);
        let permit = match &self.shared.budget {
            Some(budget) => Some(
                budget
                    .acquire_within(&self.shared.server, &self.shared.name, wait)
                    .await?,
            ),
            None => None,
        };
        let result = self.pool.get().await;
        self.shared
            .wait_series
            .observe(started.elapsed().as_secs_f64());
        let object = match result {
            Ok(object) => object,
            Err(error) => {
                self.shared.count_timeout(&error);
                let error = DbError::from(error);
                if let Some(budget) = &self.shared.budget
                    && error.is_too_many_connections()
                {
                    budget.refused(&self.shared.server, &self.shared.name);
                }
                self.shared.last_connect.store(2, Ordering::Relaxed);
                return Err(error);
            }
        };
        let mut client = TimedClient {
            object,
            shared: self.shared.clone(),
            pid: None,
            lease: None,
        };
        if let (Some(budget), Some(permit)) = (&self.shared.budget, permit) {
            client.lease = Some(Lease {
                pool: self.pool.clone(),
                _permit: permit,
            });
            let (pid, reading) = match ServerReading::read(&client.object).await {
                Ok(read) => read,
                Err(error) => {
                    client.discard();
                    self.shared.last_connect.store(2, Ordering::Relaxed);
                    return Err(error.into());
                }
            };
            client.pid = Some(pid);
            if let Err(error) = budget.observe(&self.shared.server, &self.shared.name, reading) {
                // Never keep one of the server's last free slots.
                client.discard();
                return Err(error.into());
            }
        }
        self.shared.last_connect.store(1, Ordering::Relaxed);
        Ok(client)
    }

    /// Whether the last connection attempt succeeded (`None` before any).
    pub fn last_connect(&self) -> Option<bool> {
        match self.shared.last_connect.load(Ordering::Relaxed) {
            1 => Some(true),
            2 => Some(false),
            _ => None,
        }
    }

    /// `role@host:port`: pools with the same key see the same cluster-wide
    /// views (see `crate::pg::readers::server`).
    pub fn views_key(&self) -> &str {
        &self.shared.views_key
    }

    /// Whether the pool is the agent's (budgeted and transient).
    pub fn is_budgeted(&self) -> bool {
        self.shared.budget.is_some()
    }

    /// The underlying deadpool pool (escape hatch; its statements are not
    /// timed).
    pub fn raw(&self) -> &Pool {
        &self.pool
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Updates the pool gauges from deadpool's status.
    pub fn refresh_status(&self) {
        let status = self.pool.status();
        let metrics = &self.shared.insights.metrics;
        let labels = self.shared.pool_labels();
        let in_use = status.size.saturating_sub(status.available);
        for (state, value) in [("idle", status.available), ("in_use", in_use)] {
            metrics
                .pool_connections
                .get_or_create(&PoolStateLabels {
                    pool: self.shared.name.clone(),
                    state,
                })
                .set(i64::try_from(value).unwrap_or(i64::MAX));
        }
        metrics
            .pool_max
            .get_or_create(&labels)
            .set(i64::try_from(status.max_size).unwrap_or(i64::MAX));
        metrics
            .pool_waiting
            .get_or_create(&labels)
            .set(i64::try_from(status.waiting).unwrap_or(i64::MAX));
    }

    /// Checks the database answers (`SELECT 1` on a pooled connection).
    pub async fn ping(&self) -> Result<(), DbError> {
        let client = self.get().await?;
        client.object.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// Refreshes the gauges and the health every [`STATUS_INTERVAL`] until
    /// `cancel` fires; `on_health` gets each ping's result. A failing ping
    /// is logged with its cause when it starts failing, then at most every
    /// few minutes, then when it answers again (a [`FailureLog`]), not
    /// once a second.
    pub fn spawn_status(
        &self,
        cancel: CancellationToken,
        on_health: impl Fn(bool) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        self.spawn_status_probing(cancel, Duration::ZERO, on_health)
    }

    /// Like [`TimedPool::spawn_status`], but pings only when no connection
    /// was attempted for `probe_after` (otherwise the health is the last
    /// attempt's): a budgeted pool opens a connection per ping, so its
    /// readers' passes stand for the pings.
    pub fn spawn_status_probing(
        &self,
        cancel: CancellationToken,
        probe_after: Duration,
        on_health: impl Fn(bool) + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        let pool = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(STATUS_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut seen = None;
            let mut since = Instant::now();
            let mut failures = FailureLog::default();
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let attempts = pool.attempts();
                if attempts != seen {
                    seen = attempts;
                    since = Instant::now();
                }
                if since.elapsed() >= probe_after || pool.last_connect().is_none() {
                    let result = tokio::select! {
                        () = cancel.cancelled() => return,
                        result = pool.ping() => result,
                    };
                    // A pass the budget held back says nothing of the
                    // database.
                    if !matches!(result, Err(DbError::Budget(_))) {
                        let name = &*pool.shared.name;
                        match (
                            failures.record(&result, tokio::time::Instant::now()),
                            &result,
                        ) {
                            (Report::Started, Err(error)) => {
                                tracing::warn!(pool = name, %error, "database unreachable");
                            }
                            (Report::Still { failures, for_ }, Err(error)) => tracing::warn!(
                                pool = name,
                                %error,
                                failures,
                                failing_for_s = for_.as_secs(),
                                "database still unreachable ({failures} failed checks since the last line)"
                            ),
                            (Report::Recovered { failures, lasted }, _) => tracing::info!(
                                pool = name,
                                failures,
                                failed_for_s = lasted.as_secs(),
                                "database reachable again"
                            ),
                            _ => {}
                        }
                        on_health(result.is_ok());
                    }
                    seen = pool.attempts();
                    since = Instant::now();
                } else if let Some(up) = pool.last_connect() {
                    on_health(up);
                }
                pool.refresh_status();
            }
        })
    }

    /// Changes whenever a connection is asked for.
    fn attempts(&self) -> Option<u64> {
        Some(self.shared.attempts.load(Ordering::Relaxed))
    }
}

/// A SQL text or a prepared [`TimedStatement`].
pub trait TimedSql: Sync {
    /// What the driver executes.
    type Statement: ToStatement + Sync + Send + ?Sized;
    /// The driver's statement.
    fn statement(&self) -> &Self::Statement;
    /// What perfscope records about it.
    #[doc(hidden)]
    fn cached(&self, pool: &SharedRef<'_>) -> Arc<CachedStatement>;
}

/// Opaque access to the pool's statement cache, for [`TimedSql`].
#[doc(hidden)]
pub struct SharedRef<'a>(&'a Shared);

impl TimedSql for str {
    type Statement = str;

    fn statement(&self) -> &str {
        self
    }

    fn cached(&self, pool: &SharedRef<'_>) -> Arc<CachedStatement> {
        pool.0.statement(self)
    }
}

/// A prepared statement that remembers its text's analysis.
#[derive(Clone, Debug)]
pub struct TimedStatement {
    statement: Statement,
    cached: Arc<CachedStatement>,
}

impl TimedStatement {
    /// The driver's statement.
    pub fn raw(&self) -> &Statement {
        &self.statement
    }
}

impl TimedSql for TimedStatement {
    type Statement = Statement;

    fn statement(&self) -> &Statement {
        &self.statement
    }

    fn cached(&self, _pool: &SharedRef<'_>) -> Arc<CachedStatement> {
        self.cached.clone()
    }
}

fn error_kind(error: &tokio_postgres::Error) -> ErrorKind {
    ErrorKind::from_sqlstate(error.code().map(|c| c.code()))
}

/// Times `future` and records it under `cached`.
pub(super) async fn timed<T>(
    shared: &Shared,
    cached: &CachedStatement,
    operation: Option<&Cow<'static, str>>,
    future: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    let start = super::query_span::start(&cached.info);
    let span = EXPORTERS.start(&start);
    let started = Instant::now();
    let result = future.await;
    let elapsed = started.elapsed();
    let end = SpanEnd {
        elapsed,
        ok: result.is_ok(),
    };
    let error = result.as_ref().err();
    EXPORTERS.finish(span, &start, &end, &|| {
        super::query_span::details(&cached.info, error)
    });
    let kind = error.map(error_kind);
    shared
        .insights
        .record(&cached.info, operation, Some(&cached.series), elapsed, kind);
    result
}

/// Generates the timed statement methods for a client-like type whose
/// `driver()` derefs to a tokio-postgres client or transaction.
macro_rules! timed_methods {
    () => {
        /// Runs a statement and returns its rows.
        pub async fn query<S: TimedSql + ?Sized>(
            &self,
            sql: &S,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<Vec<Row>, tokio_postgres::Error> {
            let (driver, shared, op) = self.parts();
            let cached = sql.cached(&SharedRef(shared));
            timed(shared, &cached, op, driver.query(sql.statement(), params)).await
        }

        /// Runs a statement that returns exactly one row.
        pub async fn query_one<S: TimedSql + ?Sized>(
            &self,
            sql: &S,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<Row, tokio_postgres::Error> {
            let (driver, shared, op) = self.parts();
            let cached = sql.cached(&SharedRef(shared));
            timed(
                shared,
                &cached,
                op,
                driver.query_one(sql.statement(), params),
            )
            .await
        }

        /// Runs a statement that returns at most one row.
        pub async fn query_opt<S: TimedSql + ?Sized>(
            &self,
            sql: &S,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<Option<Row>, tokio_postgres::Error> {
            let (driver, shared, op) = self.parts();
            let cached = sql.cached(&SharedRef(shared));
            timed(
                shared,
                &cached,
                op,
                driver.query_opt(sql.statement(), params),
            )
            .await
        }

        /// Runs a statement and returns the rows it affected.
        pub async fn execute<S: TimedSql + ?Sized>(
            &self,
            sql: &S,
            params: &[&(dyn ToSql + Sync)],
        ) -> Result<u64, tokio_postgres::Error> {
            let (driver, shared, op) = self.parts();
            let cached = sql.cached(&SharedRef(shared));
            timed(shared, &cached, op, driver.execute(sql.statement(), params)).await
        }

        /// Bulk-inserts `rows` (each one value per column, in `columns`
        /// order) into `table` with `COPY … FROM STDIN BINARY`, timed as
        /// one statement; returns the rows written. `table` (`name` or
        /// `schema.name`) and `columns` are quoted as identifiers, and
        /// their types come from the catalog.
        ///
        /// The rows are gathered (as references) before the future
        /// starts, so an iterator with a closure does not become part of a
        /// future that must be `Send`.
        pub fn copy_in<'s, 'r, R, Rows>(
            &'s self,
            table: &'s str,
            columns: &'s [&'s str],
            rows: Rows,
        ) -> impl std::future::Future<Output = Result<u64, DbError>> + Send + use<'s, 'r, R, Rows>
        where
            R: AsRef<[&'r (dyn ToSql + Sync)]> + Send + Sync,
            Rows: IntoIterator<Item = R>,
        {
            let rows: Vec<R> = rows.into_iter().collect();
            let (driver, shared, op) = self.parts();
            super::copy::copy_in(driver, shared, op, table, columns, rows)
        }

        /// Runs several statements separated by `;` (simple protocol, no
        /// parameters), timed as one.
        pub async fn batch_execute(&self, sql: &str) -> Result<(), tokio_postgres::Error> {
            let (driver, shared, op) = self.parts();
            let cached = shared.statement(sql);
            timed(shared, &cached, op, driver.batch_execute(sql)).await
        }
    };
}

/// A pooled connection whose statements are timed.
pub struct TimedClient {
    // Dropped first: back into the pool, which the lease then empties.
    object: deadpool_postgres::Object,
    shared: Arc<Shared>,
    /// The backend's pid, once known.
    pid: Option<i32>,
    /// A budgeted pool's permit for this connection.
    lease: Option<Lease>,
}

/// What a budgeted pool's connection holds: on release the pool's idle
/// connections (this one) are closed, then the permit is given back.
struct Lease {
    pool: Pool,
    _permit: BudgetPermit,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.retain(|_, _| false);
    }
}

impl std::fmt::Debug for TimedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedClient")
            .field("pool", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl TimedClient {
    fn parts(&self) -> (&tokio_postgres::Client, &Shared, Option<&Cow<'static, str>>) {
        (&self.object, &self.shared, None)
    }

    timed_methods!();

    /// Prepares (and caches on the connection) a statement.
    pub async fn prepare(&self, sql: &str) -> Result<TimedStatement, tokio_postgres::Error> {
        let statement = self.object.prepare_cached(sql).await?;
        Ok(TimedStatement {
            statement,
            cached: self.shared.statement(sql),
        })
    }

    /// Starts a transaction whose statements are timed too.
    pub async fn transaction(&mut self) -> Result<TimedTransaction<'_>, tokio_postgres::Error> {
        let shared = self.shared.clone();
        let tx = self.object.transaction().await?;
        Ok(TimedTransaction { tx, shared })
    }

    /// The same statements recorded under a caller-given `operation` label
    /// (e.g. `findMany`) instead of the SQL verb.
    pub fn named(&self, operation: impl Into<Cow<'static, str>>) -> NamedClient<'_> {
        NamedClient {
            driver: &self.object,
            shared: &self.shared,
            operation: operation.into(),
        }
    }

    /// The driver's client (escape hatch; statements run on it are not
    /// timed).
    pub fn raw(&self) -> &deadpool_postgres::Object {
        &self.object
    }

    /// The backend's pid (asked once, untimed).
    pub async fn backend_pid(&mut self) -> Result<i32, tokio_postgres::Error> {
        if let Some(pid) = self.pid {
            return Ok(pid);
        }
        let pid: i32 = self
            .object
            .query_one("SELECT /* perfscope */ pg_backend_pid()", &[])
            .await?
            .try_get(0)?;
        self.pid = Some(pid);
        Ok(pid)
    }

    /// Asks the server to cancel the statement this connection runs.
    pub async fn cancel_query(&self) -> Result<(), tokio_postgres::Error> {
        self.shared
            .connector
            .cancel(&self.object.cancel_token())
            .await
    }

    /// Closes the connection instead of returning it to the pool (it may
    /// still be busy on the server, or in an unknown state).
    pub fn discard(self) {
        let Self { object, lease, .. } = self;
        drop(deadpool_postgres::Object::take(object));
        drop(lease);
    }
}

/// A transaction whose statements are timed.
pub struct TimedTransaction<'a> {
    tx: deadpool_postgres::Transaction<'a>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TimedTransaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedTransaction")
            .field("pool", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl TimedTransaction<'_> {
    fn parts(
        &self,
    ) -> (
        &tokio_postgres::Transaction<'_>,
        &Shared,
        Option<&Cow<'static, str>>,
    ) {
        (&self.tx, &self.shared, None)
    }

    timed_methods!();

    /// Prepares (and caches on the connection) a statement.
    pub async fn prepare(&self, sql: &str) -> Result<TimedStatement, tokio_postgres::Error> {
        let statement = self.tx.prepare_cached(sql).await?;
        Ok(TimedStatement {
            statement,
            cached: self.shared.statement(sql),
        })
    }

    /// The driver's transaction (escape hatch; statements run on it are
    /// not timed — the index advisor's probes, whose expected failures are
    /// not the application's errors, use it).
    pub fn raw(&self) -> &deadpool_postgres::Transaction<'_> {
        &self.tx
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), tokio_postgres::Error> {
        let cached = self.shared.statement("COMMIT");
        let shared = self.shared.clone();
        timed(&shared, &cached, None, self.tx.commit()).await
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), tokio_postgres::Error> {
        let cached = self.shared.statement("ROLLBACK");
        let shared = self.shared.clone();
        timed(&shared, &cached, None, self.tx.rollback()).await
    }

    /// The same statements under a caller-given `operation` label.
    pub fn named(&self, operation: impl Into<Cow<'static, str>>) -> NamedTransaction<'_> {
        NamedTransaction {
            driver: &self.tx,
            shared: &self.shared,
            operation: operation.into(),
        }
    }
}

/// [`TimedClient::named`].
pub struct NamedClient<'a> {
    driver: &'a tokio_postgres::Client,
    shared: &'a Shared,
    operation: Cow<'static, str>,
}

impl NamedClient<'_> {
    fn parts(&self) -> (&tokio_postgres::Client, &Shared, Option<&Cow<'static, str>>) {
        (self.driver, self.shared, Some(&self.operation))
    }

    timed_methods!();
}

/// [`TimedTransaction::named`].
pub struct NamedTransaction<'a> {
    driver: &'a tokio_postgres::Transaction<'a>,
    shared: &'a Shared,
    operation: Cow<'static, str>,
}

impl NamedTransaction<'_> {
    fn parts(
        &self,
    ) -> (
        &tokio_postgres::Transaction<'_>,
        &Shared,
        Option<&Cow<'static, str>>,
    ) {
        (self.driver, self.shared, Some(&self.operation))
    }

    timed_methods!();
}
