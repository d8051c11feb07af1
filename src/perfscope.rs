//! [`Perfscope`], the handle a host app (or the agent) builds once: it owns
//! the metrics registry and every subsystem's metric set, and hands out the
//! HTTP middleware, the measurement API, the mountable API endpoint and the
//! background monitors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::time::Instant;

use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

use crate::alerts::Alerts;
use crate::batch::Batches;
use crate::cache::{CacheSettings, Caches};
use crate::config::Config;
use crate::db::DbInsights;
use crate::http::RequestMetrics;
use crate::measure::Measurements;
use crate::metrics::alerts::AlertMetrics;
use crate::metrics::batch::BatchMetrics;
use crate::metrics::cache::CacheMetrics;
use crate::metrics::custom::CustomMetrics;
use crate::metrics::db::DbMetrics;
use crate::metrics::http::HttpMetrics;
use crate::metrics::process::ProcessCollector;
use crate::metrics::runtime::RuntimeMetrics;
use crate::metrics::{self, SeriesAccounting};
use crate::runtime::{RuntimeMonitor, RuntimeTasks};

/// The shared state of one perfscope instance; cheap to clone.
#[derive(Clone, Debug)]
pub struct Perfscope {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    registry: Registry,
    http: Arc<HttpMetrics>,
    custom: Arc<CustomMetrics>,
    caches: Caches,
    batches: Batches,
    alerts: Arc<Alerts>,
    db: Arc<DbInsights>,
    runtime: RuntimeMonitor,
    database: AtomicU8,
    /// Health of the databases of `PERFSCOPE_WATCH_DATABASES`, by name.
    watched_health: std::sync::Mutex<std::collections::BTreeMap<String, bool>>,
    started_at: Instant,
    monitoring: AtomicBool,
    shutting_down: AtomicBool,
    #[cfg(feature = "postgres")]
    watched: Arc<crate::pg::Watched>,
    #[cfg(feature = "postgres")]
    pg_metrics: Arc<crate::metrics::pg::PgMetrics>,
    #[cfg(feature = "postgres")]
    maintenance: std::sync::OnceLock<Arc<crate::pg::maintenance::Maintenance>>,
    /// Every connection the agent opens to a database it watches.
    #[cfg(feature = "postgres")]
    budget: Arc<crate::db::budget::ConnectionBudget>,
    /// The cluster-wide views of each server (and login role) watched,
    /// shared by the readers of its databases.
    #[cfg(feature = "postgres")]
    server_views:
        std::sync::Mutex<std::collections::HashMap<String, Arc<crate::pg::server::ServerViews>>>,
    /// The OpenTelemetry tracer while OTLP runs.
    #[cfg(feature = "otlp")]
    otlp: Arc<crate::telemetry::otlp::OtlpSlot>,
    /// The web pages' hour of history.
    #[cfg(feature = "ui")]
    history: Arc<crate::ui::history::History>,
}

/// The database as readiness reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum DatabaseHealth {
    /// No database is configured.
    NotConfigured = 0,
    /// The last health check succeeded.
    Up = 1,
    /// The last health check failed.
    Down = 2,
}

/// Background work started by [`Perfscope::start`].
#[derive(Debug)]
pub struct BackgroundTasks {
    runtime: RuntimeTasks,
    /// The alert loop and the alert sinks' workers.
    others: Vec<tokio::task::JoinHandle<()>>,
    /// The Sentry client and its transport's task.
    #[cfg(feature = "sentry")]
    sentry: Option<(
        crate::telemetry::sentry::SentryGuard,
        tokio::task::JoinHandle<()>,
    )>,
    /// The OTLP tracer and its export thread.
    #[cfg(feature = "otlp")]
    otlp: Option<crate::telemetry::otlp::OtlpGuard>,
}

impl BackgroundTasks {
    /// Waits until every background task has stopped (cancel first); the
    /// sinks flush what they hold, each within its deadline.
    pub async fn join(self) {
        self.runtime.join().await;
        for task in self.others {
            let _ = task.await;
        }
        #[cfg(feature = "sentry")]
        if let Some((guard, transport)) = self.sentry {
            // Closing flushes the queue within its deadline; the transport
            // task then only waits on a channel the SDK's options keep open.
            guard.close().await;
            transport.abort();
            let _ = transport.await;
        }
        #[cfg(feature = "otlp")]
        if let Some(guard) = self.otlp {
            guard.close().await;
        }
    }
}

impl Perfscope {
    /// Builds the registry and every metric family from `config`.
    pub fn new(config: Config) -> Self {
        Self::with_registry(config, |_| {})
    }

    /// Like [`Perfscope::new`], letting the host app register its own
    /// families in the same registry before it is frozen and shared, so one
    /// scrape serves both.
    pub fn with_registry(config: Config, register: impl FnOnce(&mut Registry)) -> Self {
        let mut registry = Registry::default();
        let accounting = SeriesAccounting::register(&mut registry, config.max_series_per_family);
        let http = HttpMetrics::register(&mut registry, &accounting, config.http_buckets.clone());
        let custom = CustomMetrics::register(&mut registry, &accounting);
        let caches = Caches::new(
            CacheMetrics::register(&mut registry, &accounting, config.db_buckets.clone()),
            CacheSettings {
                max_entries: usize::try_from(config.max_cache_size).unwrap_or(usize::MAX),
                default_ttl: config.query_cache_ttl,
            },
        );
        let batches = Batches::new(BatchMetrics::register(&mut registry, &accounting));
        let alerts = Arc::new(Alerts::new(&config, AlertMetrics::register(&mut registry)));
        let db = DbMetrics::register(&mut registry, &accounting, config.db_buckets.clone());
        let db = DbInsights::new(db, config.slow_query_threshold);
        let runtime = RuntimeMetrics::register(&mut registry);
        registry.register_collector(Box::new(ProcessCollector));
        #[cfg(feature = "postgres")]
        let watched = Arc::new(crate::pg::Watched::default());
        #[cfg(feature = "postgres")]
        let pg_metrics = Arc::new(crate::metrics::pg::PgMetrics::register(
            &mut registry,
            watched.clone(),
            config.top_statements,
        ));
        #[cfg(feature = "postgres")]
        let budget = {
            let budget = crate::db::budget::ConnectionBudget::new(
                config.max_db_connections,
                config.db_connection_headroom,
                crate::db::pool::DEFAULT_WAIT_TIMEOUT,
                crate::metrics::budget::BudgetMetrics::register(&mut registry),
            );
            Arc::new(if config.planner.is_some() {
                budget.with_planner_lane()
            } else {
                budget
            })
        };
        register(&mut registry);
        Self {
            inner: Arc::new(Inner {
                config,
                registry,
                http: Arc::new(http),
                custom: Arc::new(custom),
                caches,
                batches,
                alerts,
                db: Arc::new(db),
                runtime: RuntimeMonitor::new(runtime),
                database: AtomicU8::new(DatabaseHealth::NotConfigured as u8),
                watched_health: std::sync::Mutex::default(),
                #[cfg(feature = "postgres")]
                watched,
                #[cfg(feature = "postgres")]
                pg_metrics,
                #[cfg(feature = "postgres")]
                maintenance: std::sync::OnceLock::new(),
                #[cfg(feature = "postgres")]
                budget,
                #[cfg(feature = "postgres")]
                server_views: std::sync::Mutex::default(),
                started_at: Instant::now(),
                monitoring: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                #[cfg(feature = "otlp")]
                otlp: Arc::default(),
                #[cfg(feature = "ui")]
                history: Arc::default(),
            }),
        }
    }

    /// The configuration it was built with.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The registry (read-only once built; see [`Perfscope::with_registry`]
    /// to add families).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The whole exposition as OpenMetrics text.
    pub fn encode_metrics(&self) -> Result<String, std::fmt::Error> {
        metrics::encode(&self.inner.registry)
    }

    /// The HTTP metrics middleware, for `Route::with`. It also opens the
    /// per-request database context the timed pool records into.
    pub fn middleware(&self) -> RequestMetrics {
        RequestMetrics::new(self.inner.http.clone(), self.inner.db.clone())
    }

    /// The database insights: query metrics, slow log, N+1 suspects.
    pub fn db(&self) -> &Arc<DbInsights> {
        &self.inner.db
    }

    /// Builds a [`crate::db::TimedPool`] recording into this instance.
    #[cfg(feature = "postgres")]
    pub async fn connect_pool(
        &self,
        url: &str,
        settings: crate::db::PoolSettings,
    ) -> Result<crate::db::TimedPool, crate::db::DbError> {
        crate::db::TimedPool::connect(self.inner.db.clone(), url, settings).await
    }

    /// The agent's connection budget (`PERFSCOPE_MAX_DB_CONNECTIONS`): give
    /// it to the pools the agent opens for itself, never to the host app's.
    #[cfg(feature = "postgres")]
    pub fn connection_budget(&self) -> &Arc<crate::db::budget::ConnectionBudget> {
        &self.inner.budget
    }

    /// The databases the agent reads (pg_stat_statements and, later, the
    /// other views).
    #[cfg(feature = "postgres")]
    pub fn watched(&self) -> &Arc<crate::pg::Watched> {
        &self.inner.watched
    }

    /// Starts reading a database's statistics views through `pool` every
    /// `PERFSCOPE_READ_INTERVAL`, under the `database` label `name`, until
    /// `cancel` fires.
    ///
    /// Nothing is planned this way (index advice comes from statistics):
    /// use [`Self::watch_database_at`] to plan through the planner role.
    #[cfg(feature = "postgres")]
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
    #[cfg(feature = "postgres")]
    pub fn watch_database_at(
        &self,
        name: &str,
        pool: crate::db::TimedPool,
        url: &crate::config::DatabaseUrl,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let planner = self.inner.config.planner.as_ref().and_then(|settings| {
            crate::pg::planner::Planner::new(
                url.expose(),
                settings,
                Some(self.connection_budget().clone()),
                Arc::from(name),
            )
            .inspect_err(|error| {
                tracing::warn!(database = name, %error, "no planner for this database");
            })
            .ok()
        });
        self.watch(name, pool, planner, cancel)
    }

    #[cfg(feature = "postgres")]
    fn watch(
        &self,
        name: &str,
        pool: crate::db::TimedPool,
        planner: Option<crate::pg::planner::Planner>,
        cancel: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        // pg_stat_statements is read once per server and interval, shared
        // by the readers of every database watched there.
        let views = self
            .inner
            .server_views
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(pool.views_key().to_owned())
            .or_insert_with(|| {
                Arc::new(crate::pg::server::ServerViews::new(
                    self.inner.config.read_interval / 2,
                ))
            })
            .clone();
        // The planner role only the agent logs in as: all its statements
        // are the agent's own cost, never the application's.
        let statements = Arc::new(
            crate::pg::statements::StatementsReader::default()
                .with_own_roles(
                    self.inner
                        .config
                        .planner
                        .iter()
                        .map(|planner| planner.user.clone())
                        .collect(),
                )
                .with_server_views(views.clone()),
        );
        let database = Arc::new(crate::pg::database::DatabaseReader::default());
        let health = Arc::new(crate::pg::health::HealthReader::default());
        let activity = Arc::new(crate::pg::activity::ActivityReader::new(
            crate::pg::activity::Thresholds {
                long_query: self.inner.config.long_query_threshold,
                idle_in_transaction: self.inner.config.idle_in_transaction_threshold,
            },
        ));
        let space = Arc::new(crate::pg::space::SpaceReader::default());
        let replication = Arc::new(
            crate::pg::replication::ReplicationReader::default().with_server_views(views.clone()),
        );
        let name: Arc<str> = Arc::from(name);
        let advisor = Arc::new(crate::pg::advisor::IndexAdvisor::new(
            name.clone(),
            statements.clone(),
            planner,
            self.inner.config.read_timeout,
        ));
        self.inner.watched.add(Arc::new(crate::pg::WatchedDatabase {
            name: name.clone(),
            statements: statements.clone(),
            database: database.clone(),
            advisor: advisor.clone(),
            health: health.clone(),
            activity: activity.clone(),
            space: space.clone(),
            replication: replication.clone(),
            pool: pool.clone(),
        }));
        crate::pg::runner::spawn(
            pool,
            name,
            vec![
                statements,
                database,
                advisor,
                health,
                activity,
                space,
                replication,
            ],
            self.inner.pg_metrics.clone(),
            self.inner.config.read_interval,
            self.inner.config.read_timeout,
            cancel,
        )
    }

    /// Enables `POST /api/performance/optimize` on the database at `url`.
    #[cfg(feature = "postgres")]
    pub fn enable_maintenance(&self, url: crate::config::DatabaseUrl) {
        let _ = self.inner.maintenance.set(Arc::new(
            crate::pg::maintenance::Maintenance::new(
                url,
                crate::pg::maintenance::DEFAULT_STATEMENT_TIMEOUT,
            )
            .with_budget(self.inner.budget.clone()),
        ));
    }

    /// The maintenance runner, when a database is configured.
    #[cfg(feature = "postgres")]
    pub fn maintenance(&self) -> Option<&Arc<crate::pg::maintenance::Maintenance>> {
        self.inner.maintenance.get()
    }

    /// Counts a maintenance request or result.
    #[cfg(feature = "postgres")]
    pub fn count_maintenance(&self, task: crate::pg::maintenance::Task, outcome: &'static str) {
        self.inner
            .pg_metrics
            .maintenance
            .get_or_create(&crate::metrics::pg::MaintenanceLabels {
                task: task.as_str(),
                outcome,
            })
            .inc();
    }

    /// Counts a cancel or terminate request in
    /// `perfscope_admin_actions_total`.
    #[cfg(feature = "postgres")]
    pub fn count_admin_action(&self, action: &'static str, outcome: &'static str) {
        self.inner
            .pg_metrics
            .admin_actions
            .get_or_create(&crate::metrics::pg::AdminActionLabels { action, outcome })
            .inc();
    }

    /// The database's state as `/readyz` reports it.
    pub fn database_health(&self) -> DatabaseHealth {
        match self.inner.database.load(Ordering::Relaxed) {
            1 => DatabaseHealth::Up,
            2 => DatabaseHealth::Down,
            _ => DatabaseHealth::NotConfigured,
        }
    }

    /// Records the state of a watched database other than `DATABASE_URL`.
    pub fn set_watched_health(&self, name: &str, up: bool) {
        self.inner
            .watched_health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(name.to_owned(), up);
    }

    /// The state of each watched database other than `DATABASE_URL`.
    pub fn watched_health(&self) -> Vec<(String, bool)> {
        self.inner
            .watched_health
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(name, up)| (name.clone(), *up))
            .collect()
    }

    /// Records the database's state (the pool's health check calls this).
    pub fn set_database_health(&self, up: bool) {
        let state = if up {
            DatabaseHealth::Up
        } else {
            DatabaseHealth::Down
        };
        self.inner.database.store(state as u8, Ordering::Relaxed);
    }

    /// The HTTP metric families.
    pub fn http_metrics(&self) -> &HttpMetrics {
        &self.inner.http
    }

    /// The caches: [`Caches::query_cache`] for a measured query cache,
    /// [`Caches::track`] for caches the app keeps itself.
    pub fn caches(&self) -> &Caches {
        &self.inner.caches
    }

    /// Batch operations: [`Batches::batch_operation`] cuts a slice into batches, runs
    /// them with bounded concurrency and reports each one.
    pub fn batches(&self) -> &Batches {
        &self.inner.batches
    }

    /// Records a lookup on a cache the app keeps itself, named by
    /// `operation` (the seed's `trackCacheOperation(operation, hit)`).
    pub fn track_cache_operation(&self, operation: &str, hit: bool) {
        self.inner
            .caches
            .track(operation, "", crate::cache::TrackedOperation::Get { hit });
    }

    /// The custom-measurement API.
    pub fn measurements(&self) -> Measurements {
        Measurements::new(self.inner.custom.clone())
    }

    /// The runtime monitor (latest readings).
    pub fn runtime(&self) -> &RuntimeMonitor {
        &self.inner.runtime
    }

    /// Seconds since this instance was built.
    pub fn uptime(&self) -> std::time::Duration {
        self.inner.started_at.elapsed()
    }

    /// Starts the background monitors on the current Tokio runtime; they
    /// stop when `cancel` fires.
    pub fn start(&self, cancel: &CancellationToken) -> BackgroundTasks {
        self.inner.monitoring.store(true, Ordering::Relaxed);
        let runtime = self
            .inner
            .runtime
            .start(self.inner.config.runtime_sample_interval, cancel);
        #[cfg(not(feature = "otlp"))]
        if self.inner.config.otlp.is_some() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but perfscope was built without the `otlp` feature: traces are off"
            );
        }
        let mut others = self.start_alert_sinks(cancel);
        others.push(self.spawn_alert_loop(cancel));
        #[cfg(feature = "ui")]
        others.push(self.spawn_history_sampler(cancel));
        #[cfg(feature = "sentry")]
        let sentry = crate::telemetry::sentry::init(
            &self.inner.config,
            self.inner
                .alerts
                .metrics()
                .dropped
                .get_or_create(&crate::metrics::alerts::SinkLabels { sink: "sentry" })
                .clone(),
        );
        #[cfg(feature = "sentry")]
        if sentry.is_some() {
            self.inner
                .alerts
                .add_sink(Arc::new(crate::alerts::sinks::sentry::AlertEvents));
        }
        BackgroundTasks {
            runtime,
            others,
            #[cfg(feature = "sentry")]
            sentry,
            #[cfg(feature = "otlp")]
            otlp: self.start_otlp(),
        }
    }

    /// Starts the OTLP exporter when an endpoint is configured.
    #[cfg(feature = "otlp")]
    fn start_otlp(&self) -> Option<crate::telemetry::otlp::OtlpGuard> {
        let config = self.inner.config.otlp.as_ref()?;
        let dropped = self
            .inner
            .alerts
            .metrics()
            .dropped
            .get_or_create(&crate::metrics::alerts::SinkLabels { sink: "otlp" })
            .clone();
        crate::telemetry::otlp::init(config, self.inner.otlp.clone(), dropped)
    }

    /// A `tracing` layer that turns the host app's spans (`#[instrument]`,
    /// `info_span!`) inside a traced request into OpenTelemetry spans of
    /// that request's trace — children of its server span — and its events
    /// into span events. Spans outside traced requests are ignored, so
    /// background work makes no stray traces. `None` until
    /// [`Perfscope::start`] has started OTLP; add it to the subscriber then
    /// (e.g. through `tracing_subscriber::reload`).
    ///
    /// ```no_run
    /// # async fn run(perfscope: perfscope::Perfscope) {
    /// use tracing_subscriber::prelude::*;
    /// let cancel = tokio_util::sync::CancellationToken::new();
    /// let _tasks = perfscope.start(&cancel);
    /// tracing_subscriber::registry()
    ///     .with(tracing_subscriber::fmt::layer())
    ///     .with(perfscope.otel_tracing_layer())
    ///     .init();
    /// # }
    /// ```
    #[cfg(feature = "otlp")]
    pub fn otel_tracing_layer<S>(&self) -> Option<impl tracing_subscriber::Layer<S> + use<S>>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        use tracing_subscriber::Layer;
        let tracer = self.inner.otlp.tracer()?;
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::filter_fn(|_| {
                    crate::telemetry::otlp::in_traced_request()
                })),
        )
    }

    /// The OpenTelemetry middleware: a server span per request named by
    /// route template, continuing `traceparent` (or `sentry-trace`), with a
    /// client span per query and an internal span per measurement. It does
    /// nothing until [`Perfscope::start`] has started OTLP
    /// (`OTEL_EXPORTER_OTLP_ENDPOINT`). Put it outermost, outside
    /// [`Perfscope::sentry_middleware`], so both tools see one trace id.
    #[cfg(feature = "otlp")]
    pub fn otel_middleware(&self) -> crate::http::otel::OtelTracing {
        crate::http::otel::OtelTracing::new(self.inner.otlp.clone())
    }

    /// The Sentry middleware (sentry-tower's `SentryHttpLayer` bridged to
    /// poem): a transaction per request named by route template, spans for
    /// queries and measurements, 5xx answers as events. It does nothing
    /// until [`Perfscope::start`] has started Sentry (`SENTRY_DSN`). Put it
    /// outside [`Perfscope::middleware`].
    #[cfg(feature = "sentry")]
    pub fn sentry_middleware(&self) -> crate::http::sentry::SentryBridge {
        crate::http::sentry::SentryBridge::new(self.inner.config.sentry_traces_sample_rate)
    }

    /// The webhook workers, when `ALERT_WEBHOOK_URLS` is set.
    fn start_alert_sinks(&self, cancel: &CancellationToken) -> Vec<tokio::task::JoinHandle<()>> {
        let config = &self.inner.config;
        if config.alert_webhook_urls.is_empty() {
            return Vec::new();
        }
        #[cfg(feature = "webhooks")]
        {
            match crate::alerts::webhook::WebhookSink::spawn(
                &config.alert_webhook_urls,
                config.alert_webhook_secret.as_ref(),
                config.webhook_deadline,
                self.inner.alerts.metrics().clone(),
                cancel,
            ) {
                Ok((sink, workers)) => {
                    self.inner.alerts.add_sink(sink);
                    workers
                }
                Err(error) => {
                    tracing::error!(%error, "alert webhooks are off");
                    Vec::new()
                }
            }
        }
        #[cfg(not(feature = "webhooks"))]
        {
            let _ = cancel;
            tracing::warn!(
                "ALERT_WEBHOOK_URLS is set but perfscope was built without the `webhooks` feature: alerts go to the log only"
            );
            Vec::new()
        }
    }

    /// Evaluates the alert rules on every runtime sample until `cancel`.
    fn spawn_alert_loop(&self, cancel: &CancellationToken) -> tokio::task::JoinHandle<()> {
        let perfscope = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(perfscope.inner.config.runtime_sample_interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut slow_seen = perfscope.inner.db.slow_log.since(u64::MAX).1;
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                let (slow, seen) = perfscope.inner.db.slow_log.since(slow_seen);
                slow_seen = seen;
                let readings = crate::alerts::Readings {
                    memory_utilization: crate::runtime::process::ProcessSnapshot::read()
                        .memory_utilization(),
                    lag: Some(perfscope.inner.runtime.snapshot().lag),
                    pools: perfscope.inner.db.pool_readings(),
                    slow,
                };
                perfscope.inner.alerts.evaluate(&readings, Instant::now());
            }
        })
    }

    /// Samples the history of the web pages every
    /// [`crate::ui::history::SAMPLE_INTERVAL`] until `cancel`.
    #[cfg(feature = "ui")]
    fn spawn_history_sampler(&self, cancel: &CancellationToken) -> tokio::task::JoinHandle<()> {
        let perfscope = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(crate::ui::history::SAMPLE_INTERVAL);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                perfscope.sample_history();
            }
        })
    }

    /// Takes one sample of the web pages' history now (the sampler does
    /// every interval; tests and a host app may add one).
    #[cfg(feature = "ui")]
    pub fn sample_history(&self) {
        self.inner.history.record(crate::ui::read(self));
    }

    /// The web pages' hour of history.
    #[cfg(feature = "ui")]
    pub fn history(&self) -> &crate::ui::history::History {
        &self.inner.history
    }

    /// The alert rules, their state and recent notifications.
    pub fn alerts(&self) -> &Alerts {
        &self.inner.alerts
    }

    /// Whether [`Perfscope::start`] has run.
    pub fn is_monitoring(&self) -> bool {
        self.inner.monitoring.load(Ordering::Relaxed)
    }

    /// Marks the instance as shutting down: `/readyz` answers 503 so load
    /// balancers stop sending traffic while in-flight requests drain.
    pub fn begin_shutdown(&self) {
        self.inner.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Relaxed)
    }
}
