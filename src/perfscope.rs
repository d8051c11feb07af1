//! [`Perfscope`], the handle a host app (or the agent) builds once: it owns
//! the metrics registry and every subsystem's metric set, and hands out the
//! HTTP middleware, the measurement API, the mountable API endpoint and the
//! background monitors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::runtime::RuntimeMonitor;

#[cfg(feature = "store")]
mod ash_history;
mod background;
#[cfg(feature = "postgres")]
mod integration;
#[cfg(feature = "postgres")]
mod postgres;
mod readiness;
#[cfg(feature = "store")]
mod recorder;
#[cfg(feature = "store")]
mod regressions;
#[cfg(feature = "tower")]
mod tower;

pub use background::BackgroundTasks;
#[cfg(feature = "postgres")]
pub use integration::{Integrated, Integration, IntegrationTasks};
pub use readiness::DatabaseHealth;
use readiness::DatabasesHealth;

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
    /// Whether `DATABASE_URL` and each watched database are up.
    databases_health: DatabasesHealth,
    started_at: Instant,
    monitoring: AtomicBool,
    shutting_down: AtomicBool,
    #[cfg(feature = "postgres")]
    watched: Arc<crate::pg::Watched>,
    #[cfg(feature = "postgres")]
    pg_metrics: Arc<crate::metrics::pg::PgMetrics>,
    #[cfg(feature = "postgres")]
    maintenance: std::sync::OnceLock<Arc<crate::pg::actions::maintenance::Maintenance>>,
    /// Every connection the agent opens to a database it watches.
    #[cfg(feature = "postgres")]
    budget: Arc<crate::db::budget::ConnectionBudget>,
    /// The cluster-wide views of each server (and login role) watched,
    /// shared by the readers of its databases.
    #[cfg(feature = "postgres")]
    server_views: crate::pg::readers::server::ServerViewsRegistry,
    /// The active session history of every watched database.
    #[cfg(feature = "postgres")]
    ash: Arc<crate::pg::ash::AshRing>,
    /// The ASH samplers, one per watched server.
    #[cfg(feature = "postgres")]
    ash_samplers: Arc<crate::pg::ash::AshSamplers>,
    /// The OpenTelemetry tracer while OTLP runs.
    #[cfg(feature = "otlp")]
    otlp: Arc<crate::telemetry::otlp::OtlpSlot>,
    /// The web pages' hour of history.
    #[cfg(feature = "ui")]
    history: Arc<crate::history::History>,
    /// The history store's metrics (registered whether or not it runs).
    #[cfg(feature = "store")]
    store_metrics: Arc<crate::metrics::store::StoreMetrics>,
    /// The history store, once [`Perfscope::start`] opened it.
    #[cfg(feature = "store")]
    store: std::sync::OnceLock<crate::store::Store>,
    /// Asks the history recorder to write now.
    #[cfg(feature = "store")]
    record_now: std::sync::OnceLock<tokio::sync::mpsc::Sender<recorder::RecordNow>>,
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
        let accounting =
            SeriesAccounting::register(&mut registry, config.metrics.max_series_per_family);
        let http = HttpMetrics::register(
            &mut registry,
            &accounting,
            config.metrics.http_buckets.clone(),
        );
        let custom = CustomMetrics::register(&mut registry, &accounting);
        let caches = Caches::new(
            CacheMetrics::register(
                &mut registry,
                &accounting,
                config.metrics.db_buckets.clone(),
            ),
            CacheSettings {
                max_entries: usize::try_from(config.caches.max_size).unwrap_or(usize::MAX),
                default_ttl: config.caches.ttl,
            },
        );
        let batches = Batches::new(BatchMetrics::register(&mut registry, &accounting));
        let alerts = Arc::new(Alerts::new(
            &config.alerts,
            &config.runtime,
            config.database.slow_query_threshold,
            AlertMetrics::register(&mut registry),
        ));
        let db = DbMetrics::register(
            &mut registry,
            &accounting,
            config.metrics.db_buckets.clone(),
        );
        let db = DbInsights::new(db, config.database.slow_query_threshold);
        let runtime = RuntimeMetrics::register(&mut registry);
        registry.register_collector(Box::new(ProcessCollector));
        #[cfg(feature = "postgres")]
        let pg = postgres::PgParts::register(&mut registry, &config);
        #[cfg(feature = "store")]
        let store_metrics = Arc::new(crate::metrics::store::StoreMetrics::register(&mut registry));
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
                databases_health: DatabasesHealth::default(),
                #[cfg(feature = "postgres")]
                watched: pg.watched,
                #[cfg(feature = "postgres")]
                pg_metrics: pg.metrics,
                #[cfg(feature = "postgres")]
                maintenance: std::sync::OnceLock::new(),
                #[cfg(feature = "postgres")]
                budget: pg.budget,
                #[cfg(feature = "postgres")]
                server_views: Default::default(),
                #[cfg(feature = "postgres")]
                ash: pg.ash,
                #[cfg(feature = "postgres")]
                ash_samplers: pg.ash_samplers,
                started_at: Instant::now(),
                monitoring: AtomicBool::new(false),
                shutting_down: AtomicBool::new(false),
                #[cfg(feature = "otlp")]
                otlp: Arc::default(),
                #[cfg(feature = "ui")]
                history: Arc::default(),
                #[cfg(feature = "store")]
                store_metrics,
                #[cfg(feature = "store")]
                store: std::sync::OnceLock::new(),
                #[cfg(feature = "store")]
                record_now: std::sync::OnceLock::new(),
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
        RequestMetrics::new(self.request_core())
    }

    /// The request measurement every front end records through (the Poem
    /// middleware, the tower layer).
    pub fn request_core(&self) -> crate::http::RequestCore {
        crate::http::RequestCore::new(self.inner.http.clone(), self.inner.db.clone())
    }

    /// The database insights: query metrics, slow log, N+1 suspects.
    pub fn db(&self) -> &Arc<DbInsights> {
        &self.inner.db
    }

    /// The reader, maintenance and admin-action metrics, which the use
    /// cases of `crate::service` count into.
    #[cfg(feature = "postgres")]
    pub(crate) fn pg_metrics(&self) -> &crate::metrics::pg::PgMetrics {
        &self.inner.pg_metrics
    }

    /// The database's state as `/readyz` reports it.
    pub fn database_health(&self) -> DatabaseHealth {
        self.inner.databases_health.database()
    }

    /// Records the state of a watched database other than `DATABASE_URL`.
    pub fn set_watched_health(&self, name: &str, up: bool) {
        self.inner.databases_health.set_watched(name, up);
    }

    /// The state of each watched database other than `DATABASE_URL`.
    pub fn watched_health(&self) -> Vec<(String, bool)> {
        self.inner.databases_health.watched()
    }

    /// Records the database's state (the pool's health check calls this).
    pub fn set_database_health(&self, up: bool) {
        self.inner.databases_health.set_database(up);
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
            .start(self.inner.config.runtime.sample_interval, cancel);
        #[cfg(not(feature = "otlp"))]
        if self.inner.config.telemetry.otlp.is_some() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but perfscope was built without the `otlp` feature: traces are off"
            );
        }
        let mut others = self.start_alert_sinks(cancel);
        others.push(self.spawn_alert_loop(cancel));
        #[cfg(feature = "ui")]
        others.push(self.spawn_history_sampler(cancel));
        #[cfg(feature = "store")]
        let store = self.start_store(cancel).map(|(store, recorder)| {
            others.push(recorder);
            others.push(self.spawn_regression_check(cancel));
            store
        });
        BackgroundTasks {
            runtime,
            others,
            #[cfg(feature = "store")]
            store,
            #[cfg(feature = "sentry")]
            sentry: self.start_sentry(),
            #[cfg(feature = "otlp")]
            otlp: self.start_otlp(),
        }
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
        if self.inner.otlp.is_hosted() {
            // The app's own tracing-opentelemetry layer bridges its spans.
            return None;
        }
        let tracer = self.inner.otlp.tracer()?;
        Some(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(tracing_subscriber::filter::filter_fn(|_| {
                    crate::telemetry::otlp::in_traced_request()
                })),
        )
    }

    /// Sends perfscope's spans through the app's own OpenTelemetry
    /// pipeline instead of starting an exporter of its own: from the next
    /// [`Perfscope::start`] on, the server, query and measurement spans are
    /// made by `provider`'s tracer (scope `perfscope`), so the app's
    /// resource, sampler, processors and exporter apply, and they land in
    /// the app's traces. When the app's own middleware (or a `tracing`
    /// span bridged by tracing-opentelemetry) has already opened the
    /// request's span, perfscope opens no second server span: its query and
    /// measurement spans become children of the app's span.
    /// `OTEL_EXPORTER_OTLP_*` are then the app's business, and
    /// [`Perfscope::otel_tracing_layer`] is `None` (the app bridges its own
    /// `tracing` spans). The app flushes and shuts down its provider.
    ///
    /// ```no_run
    /// # fn run(perfscope: perfscope::Perfscope) {
    /// use perfscope::telemetry::otel::opentelemetry_sdk::trace::SdkTracerProvider;
    /// let provider = SdkTracerProvider::builder().build(); // the app's exporter here
    /// perfscope.use_tracer_provider(&provider);
    /// # }
    /// ```
    #[cfg(feature = "otlp")]
    pub fn use_tracer_provider(&self, provider: &opentelemetry_sdk::trace::SdkTracerProvider) {
        self.inner
            .otlp
            .set_host(crate::telemetry::otlp::scoped_tracer(provider));
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

    /// The Sentry middleware (what sentry-tower's `SentryHttpLayer` does,
    /// for poem): a transaction per request named by route template, spans for
    /// queries and measurements, 5xx answers as events. It does nothing
    /// until [`Perfscope::start`] has started Sentry (`SENTRY_DSN`). Put it
    /// outside [`Perfscope::middleware`].
    #[cfg(feature = "sentry")]
    pub fn sentry_middleware(&self) -> crate::http::sentry::SentryBridge {
        crate::http::sentry::SentryBridge::new(
            self.inner.config.telemetry.sentry.traces_sample_rate,
        )
    }

    /// Takes one sample of the web pages' history now (the sampler does
    /// every interval; tests and a host app may add one).
    #[cfg(feature = "ui")]
    pub fn sample_history(&self) {
        self.inner
            .history
            .record(crate::history::read(crate::history::Sources {
                http: &self.inner.http,
                runtime: &self.inner.runtime,
                #[cfg(feature = "postgres")]
                watched: &self.inner.watched,
            }));
    }

    /// The history store, once [`Perfscope::start`] opened it (with a data
    /// directory configured).
    #[cfg(feature = "store")]
    pub fn store(&self) -> Option<&crate::store::Store> {
        self.inner.store.get()
    }

    /// The web pages' hour of history.
    #[cfg(feature = "ui")]
    pub(crate) fn history(&self) -> &crate::history::History {
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
