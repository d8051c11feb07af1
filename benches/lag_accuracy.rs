//! Accuracy of `runtime_event_loop_lag_seconds`: blocks one worker of a
//! two-worker runtime for known durations and prints what perfscope
//! reported. The other worker stays free, so a timer probe alone would see
//! almost nothing; the watchdog must. Goal: within ±10 ms.
//!
//!     cargo bench --bench lag_accuracy

use std::time::Duration;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = perfscope::config::RawConfig {
            runtime_sample_interval: Some("250".into()),
            ..Default::default()
        }
        .validate()
        .expect("config");
        let perfscope = perfscope::Perfscope::new(config);
        let cancel = tokio_util::sync::CancellationToken::new();
        let monitors = perfscope.start(&cancel);
        tokio::time::sleep(Duration::from_millis(600)).await;

        let mut worst_error: f64 = 0.0;
        println!("{:>10} {:>12} {:>10}", "blocked", "reported", "error");
        for blocked_ms in [10u64, 50, 100, 250] {
            for _ in 0..3 {
                // Quiet windows first, so earlier blocks do not count.
                tokio::time::sleep(Duration::from_millis(600)).await;
                tokio::spawn(async move {
                    std::thread::sleep(Duration::from_millis(blocked_ms));
                })
                .await
                .expect("blocking task");
                tokio::time::sleep(Duration::from_millis(800)).await;
                let snapshot = perfscope.runtime().snapshot();
                // The windows since the block began: 800 ms at 250 ms each,
                // plus the one it started in.
                let reported = snapshot
                    .recent_lag
                    .iter()
                    .rev()
                    .take(5)
                    .max()
                    .copied()
                    .unwrap_or_default();
                let reported_ms = reported.as_secs_f64() * 1_000.0;
                let error = reported_ms - blocked_ms as f64;
                worst_error = worst_error.max(error.abs());
                println!("{blocked_ms:>8} ms {reported_ms:>9.1} ms {error:>+8.1} ms");
            }
        }
        println!("worst error: {worst_error:.1} ms (goal: within ±10 ms)");
        cancel.cancel();
        monitors.join().await;
    });
}
