//! Tokio runtime metrics, fed by [`crate::runtime`]: workers, live tasks,
//! global queue depth, event-loop utilization and lag.

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use super::histogram::{AtomicHistogram, Buckets};

/// The runtime's metric families (no labels: one runtime per process).
#[derive(Debug, Clone)]
pub struct RuntimeMetrics {
    /// `runtime_workers`.
    pub workers: Gauge,
    /// `runtime_live_tasks`.
    pub live_tasks: Gauge,
    /// `runtime_global_queue_depth`.
    pub global_queue_depth: Gauge,
    /// `runtime_event_loop_utilization`: busy time over elapsed time,
    /// averaged over workers (0..1).
    pub utilization: Gauge<f64, AtomicU64>,
    /// `runtime_event_loop_lag_seconds`: the worst lag of the last interval.
    pub lag: Gauge<f64, AtomicU64>,
    /// `runtime_scheduling_delay_seconds`: every lag sample.
    pub scheduling_delay: AtomicHistogram,
}

impl RuntimeMetrics {
    /// Defines and registers the families.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            workers: Gauge::default(),
            live_tasks: Gauge::default(),
            global_queue_depth: Gauge::default(),
            utilization: Gauge::default(),
            lag: Gauge::default(),
            scheduling_delay: AtomicHistogram::new(
                Buckets::new(Buckets::RUNTIME_DEFAULT).unwrap_or_else(|_| Buckets::default_http()),
            ),
        };
        registry.register(
            "runtime_workers",
            "Worker threads of the Tokio runtime",
            metrics.workers.clone(),
        );
        registry.register(
            "runtime_live_tasks",
            "Tasks alive in the Tokio runtime",
            metrics.live_tasks.clone(),
        );
        registry.register(
            "runtime_global_queue_depth",
            "Tasks waiting in the runtime's global (injection) queue",
            metrics.global_queue_depth.clone(),
        );
        registry.register(
            "runtime_event_loop_utilization",
            "Share of time the runtime's workers were busy over the last sampling interval, averaged over workers (0..1)",
            metrics.utilization.clone(),
        );
        registry.register_with_unit(
            "runtime_event_loop_lag",
            "Worst event-loop lag seen over the last sampling interval: timer overshoot or the longest a worker ran without yielding",
            Unit::Seconds,
            metrics.lag.clone(),
        );
        registry.register_with_unit(
            "runtime_scheduling_delay",
            "Event-loop lag samples, one per probe tick",
            Unit::Seconds,
            metrics.scheduling_delay.clone(),
        );
        metrics
    }
}
