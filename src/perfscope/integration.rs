//! [`Integration`]: perfscope in a host app in one step, from the same
//! environment variables as the agent.
//!
//! Without it a host app had to build the handle, connect its pool from
//! `DATABASE_URL` by hand (passing the URL a second time), start the
//! monitors, and find `watch_database` on its own — which, given the
//! app's pool, ran the readers on the app's connections and under its
//! `application_name`. Here the readers get connections of their own
//! (through the connection budget, named [`READERS_APPLICATION_NAME`], so
//! the activity view tells them from the app's sessions even when both log
//! in with one `DATABASE_URL`), plan only through the planner role, and —
//! since every replica of the app would otherwise read the same views —
//! run in one process per database, elected by an advisory lock (see
//! [`crate::pg::election`]).
//!
//! The app's statements are never hidden: a statement counts as the
//! agent's own only when its role is the readers' *and* its text is one
//! the agent sends ([`crate::pg::own`]), so an app logging in as the same
//! role keeps all of its statements in the figures.

use tokio_util::sync::CancellationToken;

use super::{BackgroundTasks, Perfscope};
use crate::config::{Config, ConfigError, DatabaseUrl};
use crate::db::{PoolSettings, TimedPool};

/// The `application_name` (and pool name) of the readers' connections.
pub(crate) const READERS_APPLICATION_NAME: &str = "perfscope-readers";

/// The pool name of the reader lock's connection (it logs in under
/// [`READERS_APPLICATION_NAME`] too).
const ELECTION_POOL: &str = "perfscope-election";

/// Connections of the readers' pool: a pass and an API read at once.
const READERS_POOL_SIZE: u32 = 2;

/// Builds perfscope for a host app: the handle, the app's timed pool and
/// the background work (monitors, and the readers of `DATABASE_URL` when
/// this process wins their election).
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let cancel = tokio_util::sync::CancellationToken::new();
/// let perfscope::Integrated { perfscope, pool, tasks } = perfscope::Integration::from_env()?
///     .pool_settings(perfscope::PoolSettings { max: 16, ..Default::default() })
///     .start(&cancel)
///     .await?;
/// let client = pool.get().await?;
/// client.query_one("SELECT 1", &[]).await?;
/// // … serve with perfscope.middleware(); then, once the server drained:
/// # let _ = perfscope;
/// cancel.cancel();
/// tasks.join().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Integration {
    config: Config,
    pool: PoolSettings,
}

/// What [`Integration::start`] hands back.
#[derive(Debug)]
pub struct Integrated {
    /// The handle: middleware, metrics, the API and pages to mount.
    pub perfscope: Perfscope,
    /// The app's own pool on `DATABASE_URL`, timed into `perfscope`.
    pub pool: TimedPool,
    /// Stop them by cancelling the token given to `start`, then join.
    pub tasks: IntegrationTasks,
}

/// The background work of an [`Integration`].
#[derive(Debug)]
pub struct IntegrationTasks {
    background: BackgroundTasks,
    database: Vec<tokio::task::JoinHandle<()>>,
}

impl IntegrationTasks {
    /// Waits until everything has stopped (cancel first): the readers
    /// finish their pass, the reader lock's connection is closed (another
    /// replica may take over), the exporters flush.
    pub async fn join(self) {
        for task in self.database {
            let _ = task.await;
        }
        self.background.join().await;
    }
}

impl Integration {
    /// The settings from the environment, as the agent reads them
    /// ([`Config::from_env`]); errors name the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Config::from_env().map(Self::new)
    }

    /// From a configuration built in code. The app's pool takes
    /// `DATABASE_POOL_MIN`, `DATABASE_POOL_MAX` and
    /// `PERFSCOPE_SQL_COMMENTS`.
    pub fn new(config: Config) -> Self {
        let pool = PoolSettings {
            min: config.database.pool_min,
            max: config.database.pool_max,
            sql_comments: config.database.sql_comments,
            ..Default::default()
        };
        Self { config, pool }
    }

    /// The app's own pool settings, instead of `DATABASE_POOL_*`.
    pub fn pool_settings(mut self, settings: PoolSettings) -> Self {
        self.pool = settings;
        self
    }

    /// Connects the app's pool to `DATABASE_URL`, starts the monitors
    /// ([`Perfscope::start`]) and the election of `DATABASE_URL`'s reader;
    /// all of it stops when `cancel` fires. A database that is down is not
    /// fatal (the pool connects on demand); a missing or malformed
    /// `DATABASE_URL` is.
    pub async fn start(self, cancel: &CancellationToken) -> Result<Integrated, ConfigError> {
        let Some(url) = self.config.database.url.clone() else {
            return Err(ConfigError {
                var: "DATABASE_URL",
                value: String::new(),
                expected:
                    "expected the app's database as a postgres:// URL or key=value connection string"
                        .into(),
            });
        };
        if !self.config.database.watch.is_empty() {
            tracing::warn!(
                "PERFSCOPE_WATCH_DATABASES is read by the agent only: a host app watches DATABASE_URL"
            );
        }
        let perfscope = Perfscope::new(self.config);
        let pool = connect(&perfscope, &url, self.pool).await?;
        // perfscope's tasks stop with the caller's token, but a failed
        // start stops only them, never the host's other work.
        let cancel = &cancel.child_token();
        let background = perfscope.start(cancel);
        let health = perfscope.clone();
        let status = pool.spawn_status(cancel.clone(), move |up| {
            health.set_database_health(up);
        });
        let readers = match perfscope.watch_elected(&url, cancel).await {
            Ok(task) => task,
            Err(error) => {
                cancel.cancel();
                background.join().await;
                let _ = status.await;
                return Err(error);
            }
        };
        perfscope.enable_maintenance(url);
        Ok(Integrated {
            perfscope,
            pool,
            tasks: IntegrationTasks {
                background,
                database: vec![status, readers],
            },
        })
    }
}

/// A pool on `url`; a malformed URL names `DATABASE_URL`, never showing
/// its password.
async fn connect(
    perfscope: &Perfscope,
    url: &DatabaseUrl,
    settings: PoolSettings,
) -> Result<TimedPool, ConfigError> {
    perfscope
        .connect_pool(url.expose(), settings)
        .await
        .map_err(|error| ConfigError {
            var: "DATABASE_URL",
            value: url.redacted(),
            expected: format!(
                "expected a postgres:// URL or key=value connection string ({error})"
            ),
        })
}

impl Perfscope {
    /// Watches `DATABASE_URL` (label `default`) on pools of its own, its
    /// readers running while this process holds the reader lock.
    async fn watch_elected(
        &self,
        url: &DatabaseUrl,
        cancel: &CancellationToken,
    ) -> Result<tokio::task::JoinHandle<()>, ConfigError> {
        let config = &self.inner.config;
        let budgeted = |name: &str, max| PoolSettings {
            name: name.to_owned(),
            min: 0,
            max,
            // Databases take turns for the budget: a pass may wait its
            // interval for a connection.
            wait_timeout: config.readers.interval,
            budget: Some(self.inner.budget.clone()),
            application_name: Some(READERS_APPLICATION_NAME.to_owned()),
            ..Default::default()
        };
        let readers = connect(
            self,
            url,
            budgeted(READERS_APPLICATION_NAME, READERS_POOL_SIZE),
        )
        .await?;
        let lock = connect(self, url, budgeted(ELECTION_POOL, 1)).await?;
        // The readers' statements are perfscope's, not the app's.
        readers.mark_beside_app();
        lock.mark_beside_app();
        let planner = crate::pg::watch::planner_at("default", url, config, &self.inner.budget);
        Ok(crate::pg::election::watch_elected(
            "default",
            readers,
            lock,
            planner,
            &crate::pg::watch::WatchSettings::from_config(config),
            crate::pg::watch::Shared {
                server_views: &self.inner.server_views,
                watched: &self.inner.watched,
                metrics: &self.inner.pg_metrics,
                samplers: &self.inner.ash_samplers,
            },
            cancel.clone(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn without_database_url_it_names_the_variable() {
        let cancel = CancellationToken::new();
        let error = Integration::new(Config::default())
            .start(&cancel)
            .await
            .expect_err("DATABASE_URL is required");
        assert!(error.to_string().starts_with("DATABASE_URL"), "{error}");
    }

    #[tokio::test]
    async fn a_malformed_database_url_names_the_variable_without_its_password() {
        let mut config = Config::default();
        config.database.url = Some(DatabaseUrl::new("postgres://app:s3cret@[bad/app"));
        let cancel = CancellationToken::new();
        let error = Integration::new(config)
            .start(&cancel)
            .await
            .expect_err("a malformed DATABASE_URL is refused");
        let error = error.to_string();
        assert!(error.starts_with("DATABASE_URL"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn the_app_pool_takes_the_pool_settings() {
        let mut config = Config::default();
        config.database.pool_min = 1;
        config.database.pool_max = 7;
        config.database.sql_comments = crate::config::SqlComments::Sampled;
        let integration = Integration::new(config);
        assert_eq!((integration.pool.min, integration.pool.max), (1, 7));
        assert_eq!(
            integration.pool.sql_comments,
            crate::config::SqlComments::Sampled
        );
        assert!(integration.pool.budget.is_none());
        let integration = integration.pool_settings(PoolSettings {
            max: 3,
            ..Default::default()
        });
        assert_eq!(integration.pool.max, 3);
    }
}
