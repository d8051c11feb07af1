//! The background work [`Perfscope::start`] starts — the alert loop, the
//! alert sinks' workers, the pages' history sampler, the OTLP exporter —
//! and [`BackgroundTasks`], which waits for all of it to stop.
//!
//! Apart from the handle's file so that file is the handle's surface
//! (accessors, start and stop) and this one the wiring of each task;
//! `start` calls each of these.

use std::time::Instant;

#[cfg(feature = "sentry")]
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::Perfscope;
use crate::runtime::RuntimeTasks;

/// Background work started by [`Perfscope::start`].
#[derive(Debug)]
pub struct BackgroundTasks {
    pub(super) runtime: RuntimeTasks,
    /// The alert loop and the alert sinks' workers.
    pub(super) others: Vec<tokio::task::JoinHandle<()>>,
    /// The Sentry client and its transport's thread.
    #[cfg(feature = "sentry")]
    pub(super) sentry: Option<crate::telemetry::sentry::SentryGuard>,
    /// The OTLP tracer and its export thread.
    #[cfg(feature = "otlp")]
    pub(super) otlp: Option<crate::telemetry::otlp::OtlpGuard>,
    /// The history store's writer thread.
    #[cfg(feature = "store")]
    pub(super) store: Option<crate::store::StoreTask>,
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
        if let Some(guard) = self.sentry {
            // Closing flushes the queue within its deadline, then stops the
            // transport's thread.
            guard.close().await;
        }
        #[cfg(feature = "otlp")]
        if let Some(guard) = self.otlp {
            guard.close().await;
        }
        // Last: the recorder (one of `others`) wrote its final minute.
        #[cfg(feature = "store")]
        if let Some(store) = self.store {
            store.join().await;
        }
    }
}

impl Perfscope {
    /// Starts Sentry when `SENTRY_DSN` is set, alerts becoming its events.
    #[cfg(feature = "sentry")]
    pub(super) fn start_sentry(&self) -> Option<crate::telemetry::sentry::SentryGuard> {
        let metrics = self.inner.alerts.metrics();
        let drops = crate::telemetry::sentry::SentryDrops {
            dropped: metrics
                .dropped
                .get_or_create(&crate::metrics::alerts::SinkLabels { sink: "sentry" })
                .clone(),
            rate_limited: metrics.rate_limited.clone(),
        };
        let sentry = crate::telemetry::sentry::init(&self.inner.config.telemetry.sentry, drops);
        if sentry.is_some() {
            self.inner
                .alerts
                .add_sink(Arc::new(crate::alerts::sinks::sentry::AlertEvents));
        }
        sentry
    }

    /// Starts the OTLP exporter when an endpoint is configured.
    #[cfg(feature = "otlp")]
    pub(super) fn start_otlp(&self) -> Option<crate::telemetry::otlp::OtlpGuard> {
        let own = self.inner.config.telemetry.otlp.as_ref();
        if let Some(guard) = crate::telemetry::otlp::start_hosted(&self.inner.otlp, own.is_some()) {
            return Some(guard);
        }
        let config = own?;
        let dropped = self
            .inner
            .alerts
            .metrics()
            .dropped
            .get_or_create(&crate::metrics::alerts::SinkLabels { sink: "otlp" })
            .clone();
        crate::telemetry::otlp::init(config, self.inner.otlp.clone(), dropped)
    }

    /// The webhook workers, when `ALERT_WEBHOOK_URLS` is set.
    pub(super) fn start_alert_sinks(
        &self,
        cancel: &CancellationToken,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let config = &self.inner.config;
        if config.alerts.webhook_urls.is_empty() {
            return Vec::new();
        }
        #[cfg(feature = "webhooks")]
        {
            match crate::alerts::webhook::WebhookSink::spawn(
                &config.alerts.webhook_urls,
                config.alerts.webhook_secret.as_ref(),
                config.alerts.webhook_deadline,
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
    pub(super) fn spawn_alert_loop(
        &self,
        cancel: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let perfscope = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(perfscope.inner.config.runtime.sample_interval);
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

    /// Opens the history store when a data directory is configured, and
    /// starts its recorder.
    #[cfg(feature = "store")]
    pub(super) fn start_store(
        &self,
        cancel: &CancellationToken,
    ) -> Option<(crate::store::StoreTask, tokio::task::JoinHandle<()>)> {
        let config = &self.inner.config.store;
        let dir = config.dir(false)?;
        let (store, task) = crate::store::Store::open(
            crate::store::StoreSettings::new(dir, config.max_bytes),
            self.inner.store_metrics.clone(),
        );
        tracing::info!(path = %store.path().display(), max_bytes = config.max_bytes, "history store");
        let _ = self.inner.store.set(store.clone());
        let (record_now, requests) = tokio::sync::mpsc::channel(4);
        let _ = self.inner.record_now.set(record_now);
        Some((task, self.spawn_recorder(store, requests, cancel)))
    }

    /// Samples the history of the web pages every
    /// [`crate::history::SAMPLE_INTERVAL`] until `cancel`.
    #[cfg(feature = "ui")]
    pub(super) fn spawn_history_sampler(
        &self,
        cancel: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let perfscope = self.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(crate::history::SAMPLE_INTERVAL);
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
}
