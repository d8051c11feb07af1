//! Watching one database: [`watch()`] builds its readers and its
//! [`WatchedDatabase`], lists it in [`Watched`] and starts the
//! [`super::runner`] loop over them.
//!
//! It is the one place that knows the whole set of readers, so adding a
//! reader is its file under [`super::readers`], a field of
//! [`WatchedDatabase`] and a line in [`watch()`] — the handle
//! ([`crate::Perfscope`]) only delegates. What every database shares (the
//! server views, the registry of watched databases, the reader metrics)
//! comes in as [`Shared`]; what is the same for every database (interval,
//! deadline, thresholds, own roles) as [`WatchSettings`]; what is the
//! database's own (its name, pool and planner) as arguments.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::advisor::IndexAdvisor;
use super::advisor::impact::IndexImpactTracker;
use super::election::Leadership;
use super::planner::Planner;
use super::readers::activity::{ActivityReader, Thresholds};
use super::readers::checks::ChecksReader;
use super::readers::database::DatabaseReader;
use super::readers::io::IoReader;
use super::readers::replication::ReplicationReader;
use super::readers::server::ServerViewsRegistry;
use super::readers::space::SpaceReader;
use super::readers::statements::StatementsReader;
use super::{Reader, runner};
use crate::config::Config;
use crate::db::TimedPool;
use crate::metrics::pg::PgMetrics;

/// What every watched database is read with.
#[derive(Clone, Debug)]
pub struct WatchSettings {
    /// Time between passes (`PERFSCOPE_READ_INTERVAL`); the server views
    /// are reused for half of it.
    pub interval: Duration,
    /// Each pass's deadline (`PERFSCOPE_READ_TIMEOUT`).
    pub timeout: Duration,
    /// The activity reader's flags.
    pub thresholds: Thresholds,
    /// Roles only the agent logs in as (the planner role): all their
    /// statements are the agent's own cost, never the application's.
    pub own_roles: Vec<String>,
}

impl WatchSettings {
    /// The settings `config` asks for.
    pub fn from_config(config: &Config) -> Self {
        Self {
            interval: config.readers.interval,
            timeout: config.readers.timeout,
            thresholds: Thresholds {
                long_query: config.readers.long_query_threshold,
                idle_in_transaction: config.readers.idle_in_transaction_threshold,
            },
            own_roles: config
                .database
                .planner
                .iter()
                .map(|planner| planner.user.clone())
                .collect(),
        }
    }
}

/// What the readers of every watched database share.
#[derive(Clone, Copy, Debug)]
pub struct Shared<'a> {
    /// The cluster-wide views, one per server.
    pub server_views: &'a ServerViewsRegistry,
    /// Every watched database, which the new one joins.
    pub watched: &'a Watched,
    /// The reader metrics the runner records into.
    pub metrics: &'a Arc<PgMetrics>,
    /// The ASH samplers, one per server: a database joins its server's
    /// while its readers run.
    pub samplers: &'a Arc<super::ash::AshSamplers>,
}

/// Starts reading the database behind `pool`, under the `database` label
/// `name`, every `settings.interval` until `cancel` fires; `planner`, when
/// there is one, plans its users' statements for the index advisor.
pub fn watch(
    name: &str,
    pool: TimedPool,
    planner: Option<Planner>,
    settings: &WatchSettings,
    shared: Shared<'_>,
    cancel: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let name: Arc<str> = Arc::from(name);
    let readers = prepare(
        name.clone(),
        pool.clone(),
        planner,
        settings,
        shared,
        Arc::default(),
    );
    shared
        .samplers
        .join(name.clone(), pool.clone(), cancel.clone());
    runner::spawn(
        pool,
        name,
        readers,
        shared.metrics.clone(),
        settings.interval,
        settings.timeout,
        cancel,
    )
}

/// Builds the database's readers and lists it in [`Watched`] without
/// running them: [`watch()`] runs them at once, the reader election
/// ([`super::election`]) only while this process leads (`leadership`).
pub fn prepare(
    name: Arc<str>,
    pool: TimedPool,
    planner: Option<Planner>,
    settings: &WatchSettings,
    shared: Shared<'_>,
    leadership: Arc<Leadership>,
) -> Vec<Arc<dyn Reader>> {
    let (mut database, readers) = build(name, pool, planner, settings, shared);
    database.leadership = leadership;
    shared.watched.add(Arc::new(database));
    readers
}

/// The database's readers, as the API sees them and as the runner runs
/// them (in this order: the advisor reads what the statements reader
/// kept, the impact tracker what both kept).
fn build(
    name: Arc<str>,
    pool: TimedPool,
    planner: Option<Planner>,
    settings: &WatchSettings,
    shared: Shared<'_>,
) -> (WatchedDatabase, Vec<Arc<dyn Reader>>) {
    // pg_stat_statements is read once per server and interval, shared by
    // the readers of every database watched there.
    let views = shared
        .server_views
        .for_server(pool.views_key(), settings.interval / 2);
    let statements = Arc::new(
        StatementsReader::default()
            .with_own_roles(settings.own_roles.clone())
            .with_server_views(views.statements.clone()),
    );
    let database = Arc::new(DatabaseReader::default());
    let checks = Arc::new(ChecksReader::default());
    let activity = Arc::new(ActivityReader::new(settings.thresholds));
    let space = Arc::new(SpaceReader::default());
    let replication =
        Arc::new(ReplicationReader::default().with_server_views(views.replication.clone()));
    let io = Arc::new(
        IoReader::new(name.clone())
            .with_server_views(views.io.clone(), views.io_said_unsupported.clone()),
    );
    let advisor = Arc::new(IndexAdvisor::new(
        name.clone(),
        statements.clone(),
        planner,
        settings.timeout,
    ));
    let impact = Arc::new(IndexImpactTracker::new(
        name.clone(),
        statements.clone(),
        advisor.clone(),
    ));
    let readers: Vec<Arc<dyn Reader>> = vec![
        statements.clone(),
        database.clone(),
        advisor.clone(),
        impact.clone(),
        checks.clone(),
        activity.clone(),
        space.clone(),
        replication.clone(),
        io.clone(),
    ];
    let watched = WatchedDatabase {
        ash: shared.samplers.status(&pool),
        name,
        statements,
        database,
        advisor,
        impact,
        checks,
        activity,
        space,
        replication,
        io,
        pool,
        leadership: Arc::default(),
    };
    (watched, readers)
}

/// The planner of the database `name` at `url`, when `PERFSCOPE_PLANNER_USER`
/// is set and a planner can be made (else it says why in the log).
pub fn planner_at(
    name: &str,
    url: &crate::config::DatabaseUrl,
    config: &Config,
    budget: &Arc<crate::db::budget::ConnectionBudget>,
) -> Option<Planner> {
    let settings = config.database.planner.as_ref()?;
    Planner::new(
        url.expose(),
        settings,
        Some(budget.clone()),
        Arc::from(name),
    )
    .inspect_err(|error| {
        tracing::warn!(database = name, %error, "no planner for this database");
    })
    .ok()
}

/// A watched database and its readers' latest results.
#[derive(Debug)]
pub struct WatchedDatabase {
    /// Its name, the `database` label (`default` for `DATABASE_URL`).
    pub name: Arc<str>,
    /// The pg_stat_statements reader.
    pub statements: Arc<StatementsReader>,
    /// The database figures reader.
    pub database: Arc<DatabaseReader>,
    /// The index advisor.
    pub advisor: Arc<IndexAdvisor>,
    /// Whether new indexes helped the statements they were meant for.
    pub impact: Arc<IndexImpactTracker>,
    /// The checks reader (indexes, vacuum, sequences, wraparound).
    pub checks: Arc<ChecksReader>,
    /// The activity reader (backends, locks).
    pub activity: Arc<ActivityReader>,
    /// The space reader (largest tables and indexes, bloat, growth).
    pub space: Arc<SpaceReader>,
    /// The replication reader (standbys, lag, slots).
    pub replication: Arc<ReplicationReader>,
    /// The I/O reader (`pg_stat_io`, server-wide, PostgreSQL 16+).
    pub io: Arc<IoReader>,
    /// The pool its readers use.
    pub pool: TimedPool,
    /// Whether this process runs its readers or another replica does.
    pub leadership: Arc<Leadership>,
    /// Its server's ASH sampler (shared by the server's databases).
    pub ash: Arc<super::ash::SamplerStatus>,
}

/// Every watched database, for the API and the metrics collector.
#[derive(Debug, Default)]
pub struct Watched {
    databases: RwLock<Vec<Arc<WatchedDatabase>>>,
}

impl Watched {
    /// Adds a database.
    pub fn add(&self, database: Arc<WatchedDatabase>) {
        self.databases
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(database);
    }

    /// A watched database by name.
    pub fn get(&self, name: &str) -> Option<Arc<WatchedDatabase>> {
        self.all().into_iter().find(|db| &*db.name == name)
    }

    /// Every watched database.
    pub fn all(&self) -> Vec<Arc<WatchedDatabase>> {
        self.databases
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}
