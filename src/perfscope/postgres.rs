//! The handle's Postgres side, in one file behind the `postgres` feature
//! rather than a `cfg` on each method: the parts built with the registry
//! (the watched databases, the reader metrics, the connection budget),
//! the agent's pools, watching a database (which [`crate::pg::watch()`]
//! does) and the maintenance runner.

use std::sync::Arc;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use super::Perfscope;
use crate::config::Config;
use crate::db::budget::ConnectionBudget;
use crate::metrics::pg::PgMetrics;
use crate::pg::Watched;

/// What the Postgres side registers with the registry.
pub(super) struct PgParts {
    /// The watched databases, which the reader metrics collect from.
    pub(super) watched: Arc<Watched>,
    /// The reader, maintenance and admin-action metrics.
    pub(super) metrics: Arc<PgMetrics>,
    /// Every connection the agent opens to a database it watches.
    pub(super) budget: Arc<ConnectionBudget>,
    /// The active session history of every watched database.
    pub(super) ash: Arc<crate::pg::ash::AshRing>,
    /// The ASH samplers, one per watched server.
    pub(super) ash_samplers: Arc<crate::pg::ash::AshSamplers>,
}

impl PgParts {
    /// Registers the Postgres families and builds the parts `config` asks
    /// for.
    pub(super) fn register(registry: &mut Registry, config: &Config) -> Self {
        let watched = Arc::new(Watched::default());
        let metrics = Arc::new(PgMetrics::register(
            registry,
            watched.clone(),
            config.readers.top_statements,
        ));
        let budget = ConnectionBudget::new(
            config.database.max_connections,
            config.database.connection_headroom,
            crate::db::pool::DEFAULT_WAIT_TIMEOUT,
            crate::metrics::budget::BudgetMetrics::register(registry),
        );
        let budget = Arc::new(if config.database.planner.is_some() {
            budget.with_planner_lane()
        } else {
            budget
        });
        let ash = Arc::new(crate::pg::ash::AshRing::new(crate::pg::ash::Limits {
            max_bytes: config.ash.max_bytes,
            interval: config
                .ash
                .interval
                .unwrap_or(std::time::Duration::from_secs(1)),
            ..crate::pg::ash::Limits::default()
        }));
        let ash_samplers = Arc::new(crate::pg::ash::AshSamplers::new(
            ash.clone(),
            config.ash.interval,
            crate::pg::watch::WatchSettings::from_config(config).own_roles,
        ));
        let parts = Self {
            watched,
            metrics,
            budget,
            ash,
            ash_samplers,
        };
        registry.register_collector(Box::new(crate::metrics::pg_ash::AshCollector {
            ring: parts.ash.clone(),
            watched: parts.watched.clone(),
        }));
        parts
    }
}

impl Perfscope {
    /// Builds a [`crate::db::TimedPool`] recording into this instance:
    /// every statement run through it is timed by verb and table, kept in
    /// the slow log when slow, and counted per route for N+1 detection.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    /// let pool = perfscope
    ///     .connect_pool(
    ///         "postgres://app@localhost/app",
    ///         perfscope::db::PoolSettings { max: 16, ..Default::default() },
    ///     )
    ///     .await?;
    /// let client = pool.get().await?;
    /// let row = client.query_one("SELECT count(*) FROM users", &[]).await?;
    /// let users: i64 = row.get(0);
    /// # let _ = users;
    /// # Ok(()) }
    /// ```
    pub async fn connect_pool(
        &self,
        url: &str,
        settings: crate::db::PoolSettings,
    ) -> Result<crate::db::TimedPool, crate::db::DbError> {
        crate::db::TimedPool::connect(self.inner.db.clone(), url, settings).await
    }

    /// The agent's connection budget (`PERFSCOPE_MAX_DB_CONNECTIONS`): give
    /// it to the pools the agent opens for itself, never to the host app's.
    pub fn connection_budget(&self) -> &Arc<crate::db::budget::ConnectionBudget> {
        &self.inner.budget
    }

    /// The active session history of every watched database: where their
    /// time goes, by wait, statement, route, application and role.
    pub fn ash(&self) -> &Arc<crate::pg::ash::AshRing> {
        &self.inner.ash
    }

    /// The ASH samplers (one per watched server): their counters and
    /// state.
    pub fn ash_samplers(&self) -> &Arc<crate::pg::ash::AshSamplers> {
        &self.inner.ash_samplers
    }

    /// The databases the agent reads (pg_stat_statements and, later, the
    /// other views).
    pub fn watched(&self) -> &Arc<crate::pg::Watched> {
        &self.inner.watched
    }

    /// Starts reading a database's statistics views through `pool` every
    /// `PERFSCOPE_READ_INTERVAL`, under the `database` label `name`, until
    /// `cancel` fires.
    ///
    /// Nothing is planned this way (index advice comes from statistics):
    /// use [`Self::watch_database_at`] to plan through the planner role.
    ///
    /// Give it a pool of its own (budgeted, as below), not the
    /// application's: the readers would take the app's connections and its
    /// `application_name`. The pool's role may be the app's: only the
    /// statements of that role whose text the agent sends are left out as
    /// its own (`crate::pg::own`). [`crate::Integration`] does all of this
    /// from the environment, one reader per database among replicas.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let perfscope = perfscope::Perfscope::new(perfscope::Config::default());
    /// let cancel = tokio_util::sync::CancellationToken::new();
    /// let monitor = perfscope
    ///     .connect_pool(
    ///         "postgres://perfscope@localhost/app",
    ///         perfscope::db::PoolSettings {
    ///             max: 2,
    ///             budget: Some(perfscope.connection_budget().clone()),
    ///             ..Default::default()
    ///         },
    ///     )
    ///     .await?;
    /// let reader = perfscope.watch_database("app", monitor, cancel.clone());
    /// // … serve; then:
    /// cancel.cancel();
    /// reader.await?;
    /// # Ok(()) }
    /// ```
    pub fn watch_database(
        &self,
        name: &str,
        pool: crate::db::TimedPool,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        self.watch(name, pool, None, cancel)
    }

    /// As [`Self::watch_database`], and plans the database users'
    /// statements (index advice, EXPLAIN) on connections to `url` that log
    /// in as the planner role of `PERFSCOPE_PLANNER_USER`, when it is set
    /// (see `crate::pg::planner`).
    pub fn watch_database_at(
        &self,
        name: &str,
        pool: crate::db::TimedPool,
        url: &crate::config::DatabaseUrl,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let planner =
            crate::pg::watch::planner_at(name, url, &self.inner.config, &self.inner.budget);
        self.watch(name, pool, planner, cancel)
    }

    fn watch(
        &self,
        name: &str,
        pool: crate::db::TimedPool,
        planner: Option<crate::pg::planner::Planner>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        // Watched without an election (the agent): this process is the
        // database's reader, as an elected leader says it is.
        self.inner
            .pg_metrics
            .reader_leader
            .get_or_create(&crate::metrics::pg::LeaderLabels {
                database: Arc::from(name),
            })
            .set(1);
        crate::pg::watch(
            name,
            pool,
            planner,
            &crate::pg::watch::WatchSettings::from_config(&self.inner.config),
            crate::pg::watch::Shared {
                server_views: &self.inner.server_views,
                watched: &self.inner.watched,
                metrics: &self.inner.pg_metrics,
                samplers: &self.inner.ash_samplers,
            },
            cancel,
        )
    }

    /// Enables `POST /api/performance/optimize` on the database at `url`.
    pub fn enable_maintenance(&self, url: crate::config::DatabaseUrl) {
        let _ = self.inner.maintenance.set(Arc::new(
            crate::pg::actions::maintenance::Maintenance::new(
                url,
                crate::pg::actions::maintenance::DEFAULT_STATEMENT_TIMEOUT,
            )
            .with_budget(self.inner.budget.clone()),
        ));
    }

    /// The maintenance runner, when a database is configured.
    pub fn maintenance(&self) -> Option<&Arc<crate::pg::actions::maintenance::Maintenance>> {
        self.inner.maintenance.get()
    }
}
