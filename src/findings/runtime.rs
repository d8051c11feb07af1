//! Runtime findings: sustained event-loop lag, saturated workers, memory
//! near the container limit. Each carries the numbers behind it.

use std::time::Duration;

use super::{Kind, Recommendation, Severity};
use crate::runtime::RuntimeSnapshot;
use crate::runtime::process::ProcessSnapshot;

/// Share of recent intervals over the lag threshold that makes lag
/// "sustained".
pub const SUSTAINED_LAG_SHARE: f64 = 0.5;
/// Fewest intervals needed before lag can be called sustained.
pub const SUSTAINED_LAG_MIN_SAMPLES: usize = 5;
/// Utilization that means the workers are saturated.
pub const SATURATED_UTILIZATION: f64 = 0.9;

/// Advice from the latest runtime and process readings.
pub fn runtime_advice(
    runtime: &RuntimeSnapshot,
    process: &ProcessSnapshot,
    lag_threshold: Duration,
    memory_threshold: f64,
) -> Vec<Recommendation> {
    let mut advice = Vec::new();
    let samples = runtime.recent_lag.len();
    let over = runtime.intervals_over(lag_threshold);
    if samples >= SUSTAINED_LAG_MIN_SAMPLES && over as f64 >= samples as f64 * SUSTAINED_LAG_SHARE {
        let worst = runtime.recent_lag.iter().max().copied().unwrap_or_default();
        advice.push(Recommendation {
            kind: Kind::EventLoopLag.into(),
            severity: if worst > lag_threshold * 5 {
                Severity::High
            } else {
                Severity::Medium
            },
            message: format!(
                "Event-loop lag exceeded {} ms in {over} of the last {samples} intervals (worst {} ms): some task blocks a worker. Move CPU-heavy or blocking work (sync I/O, large serialization, hashing) to tokio::task::spawn_blocking.",
                lag_threshold.as_millis(),
                worst.as_millis()
            ),
            value: worst.as_secs_f64(),
            threshold: lag_threshold.as_secs_f64(),
            objects: None,
        });
    }
    if runtime.utilization >= SATURATED_UTILIZATION {
        advice.push(Recommendation {
            kind: Kind::RuntimeSaturated.into(),
            severity: Severity::Medium,
            message: format!(
                "The runtime's workers were busy {:.0}% of the last interval: requests queue behind each other. Add CPU or replicas, or find the hot handlers in http_request_duration_seconds.",
                runtime.utilization * 100.0
            ),
            value: runtime.utilization,
            threshold: SATURATED_UTILIZATION,
            objects: None,
        });
    }
    if let (Some(utilization), Some(limit)) =
        (process.memory_utilization(), process.memory_limit_bytes)
        && utilization >= memory_threshold
    {
        advice.push(Recommendation {
                kind: Kind::HighMemory.into(),
                severity: Severity::High,
                message: format!(
                    "Resident memory is {:.0}% of the container limit ({} of {} bytes): the process risks being OOM-killed. Raise the limit or bound the caches and buffers that grow.",
                    utilization * 100.0,
                    process.resident_bytes,
                    limit
                ),
                value: utilization,
                threshold: memory_threshold,
                objects: None,
            });
    }
    advice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime_with_lags(lags_ms: &[u64]) -> RuntimeSnapshot {
        RuntimeSnapshot {
            recent_lag: lags_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn sustained_lag_is_reported_with_numbers() {
        let runtime = runtime_with_lags(&[5, 150, 200, 120, 900, 130]);
        let advice = runtime_advice(
            &runtime,
            &ProcessSnapshot::default(),
            Duration::from_millis(100),
            0.9,
        );
        assert_eq!(advice.len(), 1, "{advice:?}");
        assert_eq!(advice[0].kind, "event_loop_lag");
        assert_eq!(advice[0].severity, Severity::High);
        assert!((advice[0].value - 0.9).abs() < 1e-9);
        assert!(
            advice[0].message.contains("5 of the last 6"),
            "{}",
            advice[0].message
        );
    }

    #[test]
    fn brief_lag_is_not_sustained() {
        let runtime = runtime_with_lags(&[5, 150, 5, 5, 5, 5]);
        assert!(
            runtime_advice(
                &runtime,
                &ProcessSnapshot::default(),
                Duration::from_millis(100),
                0.9
            )
            .is_empty()
        );
    }

    #[test]
    fn memory_near_the_limit() {
        let process = ProcessSnapshot {
            resident_bytes: 950,
            memory_limit_bytes: Some(1_000),
            ..Default::default()
        };
        let advice = runtime_advice(
            &RuntimeSnapshot::default(),
            &process,
            Duration::from_millis(100),
            0.9,
        );
        assert_eq!(advice.len(), 1);
        assert_eq!(advice[0].kind, "high_memory");
    }
}
