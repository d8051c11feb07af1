//! Event-loop lag that sees a block on any worker.
//!
//! A timer probe alone measures only the worker that happens to run it: on a
//! two-worker runtime, a task blocking one worker leaves the probe free to
//! run on the other, and the overshoot stays near zero. So two sources are
//! combined, and the lag is the larger of the two:
//!
//! - **the probe**, a task sleeping a fixed interval and measuring how late
//!   it wakes (timer and scheduling delay as tasks feel it);
//! - **the watchdog**, an OS thread outside the runtime that reads, for each
//!   worker, Tokio's stable `worker_park_unpark_count` (odd while parked)
//!   and `worker_total_busy_duration`. A running worker publishes one of
//!   them at least every 61 polls (its maintenance tick) and whenever it
//!   parks, so a worker that is unparked and has published nothing for
//!   `t` has been inside one poll (or one slow batch) for about `t`.
//!
//! The watchdog's resolution is its interval ([`WATCHDOG_INTERVAL`]), or
//! half of [`WATCHDOG_IDLE_INTERVAL`] for a block that starts right after
//! every worker was parked; it reads two atomics per worker per tick.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How often the watchdog reads the workers' counters.
pub const WATCHDOG_INTERVAL: Duration = Duration::from_millis(2);
/// How often the watchdog reads while every worker is parked.
pub const WATCHDOG_IDLE_INTERVAL: Duration = Duration::from_millis(5);
/// How often the probe wakes.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// The worst stall seen since it was last taken, in nanoseconds.
#[derive(Debug, Default)]
pub struct StallWindow {
    max_nanos: AtomicU64,
}

impl StallWindow {
    /// Raises the window's maximum to `stall` if it is larger.
    pub fn record(&self, stall: Duration) {
        let nanos = u64::try_from(stall.as_nanos()).unwrap_or(u64::MAX);
        self.max_nanos.fetch_max(nanos, Ordering::Relaxed);
    }

    /// The maximum since the last call, resetting it.
    pub fn take(&self) -> Duration {
        Duration::from_nanos(self.max_nanos.swap(0, Ordering::Relaxed))
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct WorkerReading {
    park_unpark: u64,
    busy: Duration,
}

/// Starts the watchdog thread for `handle`'s runtime. It stops when
/// `cancel` fires.
pub fn spawn_watchdog(
    handle: &Handle,
    window: Arc<StallWindow>,
    cancel: CancellationToken,
    interval: Duration,
) -> std::io::Result<thread::JoinHandle<()>> {
    let metrics = handle.metrics();
    thread::Builder::new()
        .name("perfscope-lag-watchdog".into())
        .spawn(move || {
            let workers = metrics.num_workers();
            let read = |worker: usize| WorkerReading {
                park_unpark: metrics.worker_park_unpark_count(worker),
                busy: metrics.worker_total_busy_duration(worker),
            };
            let start = Instant::now();
            let mut last: Vec<(WorkerReading, Instant)> =
                (0..workers).map(|w| (read(w), start)).collect();
            let mut previous_tick = start;
            while !cancel.is_cancelled() {
                // With every worker parked nothing can block, so the
                // watchdog backs off to keep an idle service idle.
                let all_parked = last.iter().all(|(r, _)| r.park_unpark % 2 == 1);
                thread::sleep(if all_parked {
                    WATCHDOG_IDLE_INTERVAL
                } else {
                    interval
                });
                let now = Instant::now();
                for (worker, (reading, since)) in last.iter_mut().enumerate() {
                    let current = read(worker);
                    if current != *reading {
                        // The change happened somewhere since the previous
                        // tick; the midpoint halves the error of a long
                        // (idle) tick.
                        *since = previous_tick + now.duration_since(previous_tick) / 2;
                        *reading = current;
                    } else if current.park_unpark % 2 == 0 {
                        window.record(now.duration_since(*since));
                    }
                }
                previous_tick = now;
            }
        })
}

/// Runs the probe until `cancel` fires, calling `on_sample` with each lag
/// sample: the probe's own overshoot or the watchdog's worst stall since the
/// previous tick, whichever is larger.
pub async fn run_probe(
    window: Arc<StallWindow>,
    cancel: CancellationToken,
    interval: Duration,
    mut on_sample: impl FnMut(Duration),
) {
    let mut deadline = tokio::time::Instant::now() + interval;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(deadline) => {}
        }
        let now = tokio::time::Instant::now();
        let overshoot = now.saturating_duration_since(deadline);
        on_sample(overshoot.max(window.take()));
        deadline = now + interval;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_keeps_the_maximum_until_taken() {
        let window = StallWindow::default();
        window.record(Duration::from_millis(5));
        window.record(Duration::from_millis(50));
        window.record(Duration::from_millis(7));
        assert_eq!(window.take(), Duration::from_millis(50));
        assert_eq!(window.take(), Duration::ZERO);
    }

    /// A block on one worker of two is seen even though the other worker
    /// stays free to run timers. What is seen must be about the block's
    /// real length (measured, since a loaded sleep overruns): at least
    /// 90 ms of a 120 ms block, at most the block plus a few watchdog
    /// ticks. On a crowded machine the watchdog thread itself may be
    /// descheduled through a block (missing it, or stretching a tick), so
    /// a block is tried until one is seen right, for up to 20 tries: a
    /// watchdog that misses or inflates blocks fails every one.
    #[test]
    fn watchdog_sees_a_blocked_worker() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let window = Arc::new(StallWindow::default());
        let cancel = CancellationToken::new();
        let watchdog = spawn_watchdog(
            runtime.handle(),
            window.clone(),
            cancel.clone(),
            WATCHDOG_INTERVAL,
        )
        .expect("thread");
        let mut tries = Vec::new();
        for _ in 0..20 {
            let blocked = runtime.block_on(async {
                tokio::time::sleep(Duration::from_millis(20)).await;
                window.take();
                tokio::spawn(async {
                    let started = Instant::now();
                    std::thread::sleep(Duration::from_millis(120));
                    started.elapsed()
                })
                .await
                .expect("task")
            });
            let seen = window.take();
            tries.push((seen, blocked));
            if seen >= Duration::from_millis(90) && seen <= blocked + Duration::from_millis(100) {
                break;
            }
        }
        cancel.cancel();
        watchdog.join().expect("watchdog joins");
        let (seen, blocked) = tries.last().copied().expect("a try");
        assert!(
            seen >= Duration::from_millis(90) && seen <= blocked + Duration::from_millis(100),
            "no block seen right in {} tries (seen, blocked): {tries:?}",
            tries.len()
        );
    }
}
