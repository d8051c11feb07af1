//! Runtime and process monitoring: what the seed read from Node's
//! `perf_hooks`, measured for a Tokio runtime.
//!
//! Measuring lives here; the metric families it feeds are defined in
//! [`crate::metrics::runtime`] and [`crate::metrics::process`]. The sampler
//! and the lag probe are tasks, the watchdog a thread; all stop when the
//! cancellation token given to [`RuntimeMonitor::start`] fires.

pub mod lag;
pub mod process;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::runtime::RuntimeMetrics;
use lag::StallWindow;

/// Lag samples kept for "sustained lag" advice: at the default 1 s
/// interval, the last minute.
pub const LAG_HISTORY_LEN: usize = 60;

/// The latest runtime reading, for the stats endpoint and advice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuntimeSnapshot {
    /// Worker threads.
    pub workers: usize,
    /// Tasks alive.
    pub live_tasks: usize,
    /// Tasks in the global queue.
    pub global_queue_depth: usize,
    /// Busy share averaged over workers, 0..1.
    pub utilization: f64,
    /// Worst lag of the last interval.
    pub lag: Duration,
    /// Worst lag of each of the last intervals, oldest first.
    pub recent_lag: VecDeque<Duration>,
}

impl RuntimeSnapshot {
    /// How many of the recent intervals had lag over `threshold`.
    pub fn intervals_over(&self, threshold: Duration) -> usize {
        self.recent_lag.iter().filter(|l| **l > threshold).count()
    }
}

/// Samples the runtime into [`RuntimeMetrics`] and keeps the latest
/// [`RuntimeSnapshot`].
#[derive(Debug, Clone)]
pub struct RuntimeMonitor {
    metrics: RuntimeMetrics,
    latest: Arc<Mutex<RuntimeSnapshot>>,
    stalls: Arc<StallWindow>,
    /// Worst probe sample since the sampler last read it, in nanoseconds.
    lag_window: Arc<StallWindow>,
}

/// The monitor's background work; await [`RuntimeTasks::join`] after
/// cancelling to be sure it stopped.
#[derive(Debug)]
pub struct RuntimeTasks {
    sampler: JoinHandle<()>,
    probe: JoinHandle<()>,
    watchdog: Option<std::thread::JoinHandle<()>>,
}

impl RuntimeTasks {
    /// Waits for every task and the watchdog thread to stop.
    pub async fn join(self) {
        let _ = self.sampler.await;
        let _ = self.probe.await;
        if let Some(watchdog) = self.watchdog {
            let _ = tokio::task::spawn_blocking(move || watchdog.join()).await;
        }
    }
}

impl RuntimeMonitor {
    /// A monitor feeding `metrics`.
    pub fn new(metrics: RuntimeMetrics) -> Self {
        Self {
            metrics,
            latest: Arc::default(),
            stalls: Arc::default(),
            lag_window: Arc::default(),
        }
    }

    /// The latest reading.
    pub fn snapshot(&self) -> RuntimeSnapshot {
        self.latest
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Starts the sampler (every `interval`), the lag probe and the
    /// watchdog on the current runtime. Must be called from inside it.
    pub fn start(&self, interval: Duration, cancel: &CancellationToken) -> RuntimeTasks {
        let handle = Handle::current();
        let watchdog = match lag::spawn_watchdog(
            &handle,
            self.stalls.clone(),
            cancel.clone(),
            lag::WATCHDOG_INTERVAL,
        ) {
            Ok(thread) => Some(thread),
            Err(error) => {
                tracing::warn!(%error, "could not start the lag watchdog; lag is measured by the probe only");
                None
            }
        };
        let probe = {
            let histogram = self.metrics.scheduling_delay.clone();
            let lag_window = self.lag_window.clone();
            tokio::spawn(lag::run_probe(
                self.stalls.clone(),
                cancel.clone(),
                lag::PROBE_INTERVAL,
                move |sample| {
                    histogram.observe(sample.as_secs_f64());
                    lag_window.record(sample);
                },
            ))
        };
        let sampler = {
            let monitor = self.clone();
            let cancel = cancel.clone();
            tokio::spawn(async move {
                let runtime_monitor = tokio_metrics::RuntimeMonitor::new(&handle);
                let mut intervals = runtime_monitor.intervals();
                let mut ticker = tokio::time::interval(interval);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        _ = ticker.tick() => {}
                    }
                    if let Some(reading) = intervals.next() {
                        monitor.record(&reading);
                    }
                }
            })
        };
        RuntimeTasks {
            sampler,
            probe,
            watchdog,
        }
    }

    fn record(&self, reading: &tokio_metrics::RuntimeMetrics) {
        let workers = reading.workers_count.max(1);
        let utilization = if reading.elapsed.is_zero() {
            0.0
        } else {
            (reading.busy_ratio() / workers as f64).clamp(0.0, 1.0)
        };
        let lag = self.lag_window.take();
        self.metrics.workers.set(to_i64(reading.workers_count));
        self.metrics
            .live_tasks
            .set(to_i64(reading.live_tasks_count));
        self.metrics
            .global_queue_depth
            .set(to_i64(reading.global_queue_depth));
        self.metrics.utilization.set(utilization);
        self.metrics.lag.set(lag.as_secs_f64());

        let mut latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest.workers = reading.workers_count;
        latest.live_tasks = reading.live_tasks_count;
        latest.global_queue_depth = reading.global_queue_depth;
        latest.utilization = utilization;
        latest.lag = lag;
        if latest.recent_lag.len() == LAG_HISTORY_LEN {
            latest.recent_lag.pop_front();
        }
        latest.recent_lag.push_back(lag);
    }
}

fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
