//! [`TimedPool`] itself and the half of it that opens connections:
//! building the deadpool pool from a connection string, warming it, and
//! handing out [`TimedClient`]s — through the agent's
//! [`ConnectionBudget`](crate::db::budget::ConnectionBudget) when the pool
//! has one (a permit first, the server's free slots read on opening, the
//! connection discarded rather than kept when the server is nearly full).
//!
//! Split from the pool's reporting half (`status`) because this is where
//! the budget rules live and where a change needs the most care; the two
//! halves share only the struct's fields.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use deadpool_postgres::{ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use parking_lot::RwLock;

use super::client::{Lease, TimedClient};
use super::error::DbError;
use super::settings::PoolSettings;
use super::shared::Shared;
use crate::db::budget::{self, ServerReading};
use crate::db::connect::ConnectOptions;
use crate::db::insights::{DbInsights, PoolProbe};
use crate::metrics::db::PoolLabels;

/// A pool of timed Postgres connections; cheap to clone.
#[derive(Clone, Debug)]
pub struct TimedPool {
    pub(super) pool: Pool,
    pub(super) shared: Arc<Shared>,
    /// How long `get` waits for a budget permit.
    pub(super) wait_timeout: Duration,
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
        if let Some(name) = &settings.application_name {
            pg_config.application_name(name);
        } else if pg_config.get_application_name().is_none() {
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
        let application = pg_config.get_application_name().map(Box::from);
        // The agent's own statements never carry a comment.
        let sql_comments = if settings.budget.is_some() {
            crate::config::SqlComments::Off
        } else {
            settings.sql_comments
        };
        let server = budget::server_key(&pg_config);
        let dbname: Arc<str> = Arc::from(
            pg_config
                .get_dbname()
                .or(pg_config.get_user())
                .unwrap_or(""),
        );
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
                dbname,
                budget: settings.budget,
                statement_cache: settings.statement_cache,
                sql_comments,
                application,
                last_connect: AtomicU8::new(0),
                attempts: AtomicU64::new(0),
                beside_app: std::sync::atomic::AtomicBool::new(false),
            }),
        };
        {
            let pool = timed.pool.weak();
            let shared = Arc::downgrade(&timed.shared);
            timed.shared.insights.register_pool(PoolProbe::new(move || {
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
                    let error = crate::db::error_text::pool(&error);
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
        self.open_with(permit, started).await
    }

    /// A connection to keep open between uses (the active session
    /// history's), its permit from the budget's kept lane (at most half
    /// of the budget; see [`crate::db::budget`]) and held until the
    /// client drops. The server's free slots are checked on opening as for
    /// any other; the caller checks them again while it keeps it. A pool
    /// without a budget opens it as any other.
    pub async fn get_kept(&self, wait: Duration) -> Result<TimedClient, DbError> {
        let started = Instant::now();
        self.shared.attempts.fetch_add(1, Ordering::Relaxed);
        let permit = match &self.shared.budget {
            Some(budget) => Some(
                budget
                    .acquire_kept_within(&self.shared.server, &self.shared.name, wait)
                    .await?,
            ),
            None => None,
        };
        self.open_with(permit, started).await
    }

    async fn open_with(
        &self,
        permit: Option<budget::BudgetPermit>,
        started: Instant,
    ) -> Result<TimedClient, DbError> {
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
}
